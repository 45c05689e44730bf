"""US equities through alpaca-py's StockDataStream: quotes, trades and minute bars over msgpack.

alpaca-py owns the socket and its reconnect loop (``_run_forever``); the desk hooks in by
subclassing a few of its methods, so the streamer keeps the same rules as for the ccxt venues:

* every (re)connection first takes tokens from the shared rate limiter (``_start_ws``);
* the reconnect delay is the streamer's jittered :class:`~streamer.backoff.Backoff`, reset by data;
* a frame that does not decode (or a message that does not parse) is logged, counted as
  ``Malformed`` and skipped, without dropping the connection (``_consume``);
* connection state is reported to the app (``connected``), and the watchdog's reconnect request
  closes the socket so alpaca-py's loop reconnects and resubscribes.

These are alpaca-py internals (``_start_ws``, ``_consume``, ``_reconnect_delay``), pinned by
``uv.lock`` and exercised end to end against :class:`~desk.local.fakes.ws_alpaca.FakeAlpacaWs`.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from alpaca.data.enums import DataFeed
from alpaca.data.live.stock import StockDataStream
from alpaca.data.models import Bar as AlpacaBar
from alpaca.data.models import Quote as AlpacaQuote
from alpaca.data.models import Trade as AlpacaTrade

from desk.observability import logger
from desk.venues.alpaca.mapping import bar_from_alpaca, quote_from_alpaca
from desk.venues.errors import VenueError
from streamer.backoff import Backoff
from streamer.config import VenueConfig
from streamer.feeds import FeedHandler

__all__ = ["AlpacaFeed"]

# What one bad frame or message raises while alpaca-py decodes or parses it (msgpack's errors and
# pydantic's ValidationError are ValueErrors); transport errors are not among them.
_MALFORMED = (ValueError, TypeError, KeyError, AttributeError)
_CLOSE_TIMEOUT_S = 2.0


class _DeskStockStream(StockDataStream):  # type: ignore[misc]  # alpaca-py is untyped
    def __init__(self, owner: AlpacaFeed, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._feed = owner

    async def _start_ws(self) -> None:
        await self._feed.before_connect()
        await super()._start_ws()

    async def _send_subscribe_msg(self) -> None:
        await super()._send_subscribe_msg()
        self._feed.subscribed()

    async def close(self) -> None:
        try:
            await super().close()
        finally:
            self._feed.closed()

    def _reconnect_delay(self, retries: int) -> float:
        return self._feed.backoff.delay()

    async def _consume(self) -> bool:
        while True:
            try:
                stale: bool = await super()._consume()
                return stale
            except _MALFORMED as exc:
                if self._ws is None:  # closed under us: a transport problem, not a bad frame
                    raise
                self._feed.malformed(exc)


class AlpacaFeed:
    def __init__(
        self,
        cfg: VenueConfig,
        handler: FeedHandler,
        *,
        resubscribe: Callable[[str, float], Awaitable[float]],
        backoff: Backoff,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.cfg = cfg
        self.backoff = backoff
        self._handler = handler
        self._resubscribe = resubscribe
        self._now = now
        self._connects = 0
        self._fresh = False  # data seen on the current connection (resets the backoff once)
        self.stream: _DeskStockStream | None = None

    # ---------------------------------------------------------------- lifecycle
    def _build(self) -> _DeskStockStream:
        feed = DataFeed.SIP if self.cfg.data_feed == "sip" else DataFeed.IEX
        stream = _DeskStockStream(self, api_key=self.cfg.api_key, secret_key=self.cfg.secret, feed=feed,
                                  url_override=self.cfg.ws_url)  # fmt: skip
        symbols = self.cfg.symbols
        if "quote" in self.cfg.channels:
            stream.subscribe_quotes(self._on_quote, *symbols)
        if "trades" in self.cfg.channels:
            stream.subscribe_trades(self._on_trade, *symbols)
        if "bars" in self.cfg.channels:
            stream.subscribe_bars(self._on_bar, *symbols)
        return stream

    async def run(self) -> None:
        while True:
            self.stream = self._build()
            try:
                await self.stream._run_forever()
                logger.warning("alpaca stream returned", extra={"venue": self.cfg.venue})
            finally:
                self._handler.connected(self.cfg.venue, False)
                # Bounded: a peer that never answers the close handshake would otherwise hold the drain
                # for websockets' close timeout (10 s per wait) and overrun ECS's stop timeout.
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(asyncio.shield(self.stream.close()), _CLOSE_TIMEOUT_S)
            await asyncio.sleep(self.backoff.delay())

    def request_reconnect(self) -> None:
        ws = self.stream._ws if self.stream is not None else None
        if ws is not None:  # alpaca-py's loop sees the closed socket, reconnects and resubscribes
            task = asyncio.ensure_future(ws.close())
            task.add_done_callback(lambda t: t.cancelled() or t.exception())

    # ---------------------------------------------------------------- hooks from the stream
    async def before_connect(self) -> None:
        if self._connects:
            self._handler.count("Reconnects", self.cfg.venue)
        self._connects += 1
        streams = len(self.cfg.symbols) * len(self.cfg.channels)
        await self._resubscribe(self.cfg.bucket, self.cfg.subscribe_cost * streams)

    def subscribed(self) -> None:
        self._fresh = False
        self._handler.connected(self.cfg.venue, True)

    def closed(self) -> None:
        self._handler.connected(self.cfg.venue, False)

    def malformed(self, exc: BaseException) -> None:
        logger.warning("malformed message skipped", extra={"venue": self.cfg.venue, "error": repr(exc)})
        self._handler.count("Malformed", self.cfg.venue)

    def _data(self) -> None:
        if not self._fresh:
            self._fresh = True
            self.backoff.reset()

    # ---------------------------------------------------------------- messages
    async def _on_quote(self, q: AlpacaQuote | dict[Any, Any]) -> None:
        if not isinstance(q, AlpacaQuote):  # raw dicts only come with raw_data=True, never set here
            return
        rx = self._now()
        self._data()
        self._handler.seen(self.cfg.venue, q.symbol, "quote", q.timestamp)
        try:
            quote = quote_from_alpaca(q, self.cfg.venue, q.symbol)
        except VenueError as exc:  # an empty or crossed side on a thin feed: nothing to trade on
            logger.debug("unusable quote", extra={"venue": self.cfg.venue, "error": str(exc)})
            self._handler.count("UnusableQuotes", self.cfg.venue)
            return
        self._handler.on_quote(quote.model_copy(update={"received_at": rx}))

    async def _on_trade(self, t: AlpacaTrade | dict[Any, Any]) -> None:
        if not isinstance(t, AlpacaTrade):
            return
        self._data()
        self._handler.seen(self.cfg.venue, t.symbol, "trades", t.timestamp)

    async def _on_bar(self, b: AlpacaBar | dict[Any, Any]) -> None:
        if not isinstance(b, AlpacaBar):
            return
        self._data()
        self._handler.on_bar(bar_from_alpaca(b, self.cfg.venue, b.symbol, "1m"))
