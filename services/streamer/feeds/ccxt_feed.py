"""Crypto venues through the real ccxt.pro client: watch_ticker / watch_order_book / watch_trades.

One connection task per venue runs one watch loop per (symbol, channel). ccxt.pro keeps the L2 book
by Binance's snapshot + diff rules (see :mod:`streamer.books`); on a sequence gap it rejects the
watch (``ChecksumError`` / ``InvalidNonce``) and the next ``watch_order_book`` resubscribes and
fetches a new snapshot, which this module counts as a resnapshot. A frame that does not decode (or
that ccxt's handler chokes on) is logged, counted as ``Malformed`` and skipped: left to ccxt, the
exception escapes its receive-loop callback and the socket stops being read. Network errors or the
watchdog's request close the exchange and reconnect with backoff; every (re)subscription first
takes tokens from the shared rate limiter.
"""

from __future__ import annotations

import asyncio
import importlib
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from desk.observability import logger
from desk.schemas.market import Quote
from streamer.backoff import Backoff
from streamer.books import order_book_from_levels
from streamer.config import VenueConfig
from streamer.feeds import FeedHandler

__all__ = ["CcxtFeed", "build_pro_exchange"]

_CCXT_OPTIONS: dict[str, Any] = {"fetchCurrencies": False, "adjustForTimeDifference": False}


def build_pro_exchange(cfg: VenueConfig) -> Any:
    """A ccxt.pro exchange; ``ws_url`` / ``rest_url`` replace every WebSocket and REST base URL."""
    import ccxt.pro as ccxtpro  # lazily: large, untyped

    options = {**_CCXT_OPTIONS, "fetchMarkets": {"types": [cfg.market]}}
    if cfg.market == "linear":
        options["defaultType"] = "swap"
    exchange = getattr(ccxtpro, cfg.exchange_id)({"enableRateLimit": False, "options": options})
    api = exchange.urls["api"]
    if cfg.ws_url:
        api["ws"] = {k: cfg.ws_url if isinstance(v, str) else v for k, v in api["ws"].items()}
    if cfg.rest_url:
        base = cfg.rest_url.rstrip("/")  # scheme://host:port; each endpoint keeps its own path

        def rewrite(value: Any) -> Any:
            if isinstance(value, str) and value.startswith("http"):
                return f"{base}/{value.partition('://')[2].partition('/')[2]}"
            return {k: rewrite(v) for k, v in value.items()} if isinstance(value, dict) else value

        exchange.urls["api"] = {k: (v if k == "ws" else rewrite(v)) for k, v in api.items()}
    return exchange


def _ms(value: Any) -> datetime | None:
    return datetime.fromtimestamp(value / 1000, UTC) if isinstance(value, int | float) and value > 0 else None


class CcxtFeed:
    def __init__(
        self,
        cfg: VenueConfig,
        handler: FeedHandler,
        *,
        resubscribe: Callable[[str, float], Awaitable[float]],
        backoff: Backoff,
        factory: Callable[[VenueConfig], Any] = build_pro_exchange,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.cfg = cfg
        self._handler = handler
        self._resubscribe = resubscribe
        self._backoff = backoff
        self._factory = factory
        self._now = now
        self._reconnect = asyncio.Event()
        self.exchange: Any = None

    def request_reconnect(self) -> None:
        self._reconnect.set()

    async def run(self) -> None:
        # ccxt takes seconds to import: off the loop, so /health and the other feeds keep answering.
        await asyncio.to_thread(importlib.import_module, "ccxt.pro")
        while True:
            self._reconnect.clear()
            self.exchange = self._factory(self.cfg)
            self._guard_frames(self.exchange)
            try:
                await self._session()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # a session ends on any failure; the loop is the recovery
                logger.warning("venue session ended", extra={"venue": self.cfg.venue, "error": repr(exc)})
            finally:
                self._handler.connected(self.cfg.venue, False)
                await asyncio.shield(self._close())
            self._handler.count("Reconnects", self.cfg.venue)
            await asyncio.sleep(self._backoff.delay())

    def _guard_frames(self, exchange: Any) -> None:
        """Wrap each ccxt WebSocket client's frame handler so one bad frame is skipped, not fatal."""
        make_client = exchange.client

        def client(url: str) -> Any:
            found = make_client(url)
            if not getattr(found, "_desk_guarded", False):
                inner = found.handle_text_or_binary_message

                def guarded(data: Any) -> None:
                    try:
                        inner(data)
                    except Exception as exc:
                        self._malformed(exc)

                found.handle_text_or_binary_message = guarded
                found._desk_guarded = True
            return found

        exchange.client = client

    def _malformed(self, exc: BaseException) -> None:
        logger.warning("malformed message skipped", extra={"venue": self.cfg.venue, "error": repr(exc)})
        self._handler.count("Malformed", self.cfg.venue)

    async def _close(self) -> None:
        if self.exchange is not None:
            exchange, self.exchange = self.exchange, None
            try:
                # clean_instance_data drops the books, caches and markets the closed instance holds, so a
                # reference kept elsewhere (ccxt's own futures/callbacks) cannot pin them across reconnects.
                await exchange.close(clean_instance_data=True)
            except Exception as exc:
                logger.debug("close failed", extra={"venue": self.cfg.venue, "error": repr(exc)})

    async def _session(self) -> None:
        await self.exchange.load_markets()
        streams = [(s, c) for s in self.cfg.symbols for c in self.cfg.channels if c != "bars"]
        await self._resubscribe(self.cfg.bucket, self.cfg.subscribe_cost * len(streams))
        self._handler.connected(self.cfg.venue, True)
        tasks = [asyncio.create_task(self._watch(s, c)) for s, c in streams]
        waiter = asyncio.create_task(self._reconnect.wait())
        try:
            done, _ = await asyncio.wait([*tasks, waiter], return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                if task is not waiter and task.exception() is not None:
                    raise task.exception()  # type: ignore[misc]
        finally:
            for task in [*tasks, waiter]:
                task.cancel()
            await asyncio.gather(*tasks, waiter, return_exceptions=True)

    async def _watch(self, symbol: str, channel: str) -> None:
        import ccxt

        venue = self.cfg.venue
        while True:
            try:
                if channel == "quote":
                    self._on_ticker(symbol, await self._watch_quote(symbol))
                elif channel == "book":
                    self._on_book(symbol, await self.exchange.watch_order_book(symbol))
                else:
                    self._on_trades(symbol, await self.exchange.watch_trades(symbol))
                self._backoff.reset()
            except (ccxt.ChecksumError, ccxt.InvalidNonce) as exc:
                # ccxt dropped the book on a sequence gap: the next watch fetches a new snapshot.
                logger.warning("book sequence gap: resnapshot", extra={"venue": venue, "symbol": symbol,
                                                                       "error": str(exc)})  # fmt: skip
                self._handler.count("Resnapshots", venue)
            except (ccxt.BadResponse, ccxt.BadRequest, ValueError, KeyError, TypeError) as exc:
                self._malformed(exc)  # a payload ccxt parsed but the desk cannot use: keep reading

    async def _watch_quote(self, symbol: str) -> dict[str, Any]:
        if self.cfg.market == "spot":
            result: dict[str, Any] = await self.exchange.watch_ticker(symbol, {"name": "ticker"})
            return result
        found: dict[str, Any] = await self.exchange.watch_bids_asks([symbol])
        return dict(found[symbol])

    def _on_ticker(self, symbol: str, t: dict[str, Any]) -> None:
        rx = self._now()
        ts = _ms(t.get("timestamp")) or rx
        self._handler.seen(self.cfg.venue, symbol, "quote", ts)
        if not t.get("bid") or not t.get("ask"):
            return
        quote = Quote(venue=self.cfg.venue, symbol=symbol, ts=ts, bid=Decimal(str(t["bid"])),
                      ask=Decimal(str(t["ask"])), bid_size=Decimal(str(t.get("bidVolume") or 0)),
                      ask_size=Decimal(str(t.get("askVolume") or 0)), received_at=rx)  # fmt: skip
        self._handler.on_quote(quote)

    def _on_book(self, symbol: str, ob: Any) -> None:
        rx = self._now()
        ts = _ms(ob.get("timestamp")) or rx
        self._handler.seen(self.cfg.venue, symbol, "book", ts)
        nonce = ob.get("nonce")
        book = order_book_from_levels(self.cfg.venue, symbol, ob["bids"], ob["asks"], ts=ts, received_at=rx,
                                      sequence=int(nonce) if nonce is not None else None,
                                      depth=self.cfg.book_depth)  # fmt: skip
        self._handler.on_book(book)

    def _on_trades(self, symbol: str, trades: list[dict[str, Any]]) -> None:
        self._handler.seen(self.cfg.venue, symbol, "trades", _ms(trades[-1].get("timestamp")) if trades else None)
        for trade in trades:  # ccxt.pro returns only the new trades (its newUpdates default)
            ts = _ms(trade.get("timestamp"))
            if ts is not None and trade.get("price") and trade.get("amount"):
                amount, price = Decimal(str(trade["amount"])), Decimal(str(trade["price"]))
                self._handler.on_trade(self.cfg.venue, symbol, ts, price, amount)
