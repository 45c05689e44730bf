"""The streamer process: one asyncio loop, one task per venue connection, Redis writes off the loop.

Updates are conflated per key (the latest quote / book per venue and symbol) and written by one
writer task through ``asyncio.to_thread``, so a slow Redis never blocks the sockets and memory stays
bounded by the number of keys however fast the venue sends. Closed minute bars are not conflated:
the same writer appends each one, in order, to the venue's capped bar stream in Redis, where the
ingest path reconciles against them; while Redis is down they wait in a bounded backlog. On stop
(SIGTERM) feeds are cancelled, the pending writes are flushed, metrics are emitted, and ``run``
returns within the drain timeout.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, Protocol

from desk.cache import RedisQuoteCache
from desk.events import Envelope
from desk.observability import logger
from desk.ports import Clock, EventBus
from desk.schemas.market import Bar, OrderBook, Quote
from streamer.backoff import Backoff, acquire_tokens
from streamer.bars import MinuteBars
from streamer.config import StreamerConfig, VenueConfig
from streamer.health import HealthServer
from streamer.metrics import Emf
from streamer.watchdog import PrivateStreamGuard, Watchdog

__all__ = ["Feed", "Streamer"]

# Closed bars waiting for Redis (a minute bar per symbol per minute): a day of one symbol's bars, after
# which the oldest are dropped rather than growing the heap while Redis stays down.
BAR_BACKLOG = 1_440


class Feed(Protocol):
    cfg: VenueConfig

    async def run(self) -> None: ...

    def request_reconnect(self) -> None: ...


FeedFactory = Callable[[VenueConfig, "Streamer", Backoff], Feed]


def default_feed(cfg: VenueConfig, app: Streamer, backoff: Backoff) -> Feed:
    if cfg.kind == "alpaca":
        from streamer.feeds.alpaca_feed import AlpacaFeed

        return AlpacaFeed(cfg, app, resubscribe=app.resubscribe, backoff=backoff, now=app.clock.now)
    from streamer.feeds.ccxt_feed import CcxtFeed

    return CcxtFeed(cfg, app, resubscribe=app.resubscribe, backoff=backoff, now=app.clock.now)


async def _no_cancel(venue: str) -> None:
    logger.warning("cancel-all requested but no order path is wired", extra={"venue": venue})


class Streamer:
    def __init__(
        self,
        config: StreamerConfig,
        cache: RedisQuoteCache,
        bus: EventBus,
        clock: Clock,
        *,
        feed_factory: FeedFactory = default_feed,
        cancel_all: Callable[[str], Awaitable[None]] = _no_cancel,
        rng: random.Random | None = None,
    ) -> None:
        self.config = config
        self.cache = cache
        self.bus = bus
        self.clock = clock
        self.metrics = Emf()
        self.bars = MinuteBars()
        self.watchdog = Watchdog(clock=clock, publish=self._publish, reconnect=self._reconnect)
        self.private_guard = PrivateStreamGuard(cancel_all, timedelta(seconds=config.cancel_all_after_s), clock)
        self.health = HealthServer(self.readiness, config.health_host, config.health_port)
        self.book_observers: list[Callable[[OrderBook], None]] = []  # tests and diagnostics
        self.bar_observers: list[Callable[[Bar], None]] = []
        self.stopping = asyncio.Event()
        self._pending: dict[tuple[str, str, str], Quote | OrderBook] = {}
        self._bars_out: deque[Bar] = deque(maxlen=BAR_BACKLOG)
        self._dirty = asyncio.Event()
        self._connected: dict[str, bool] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        rng = rng or random.Random()  # noqa: S311  # jitter, not security
        self.feeds: dict[str, Feed] = {}
        for venue in config.venues:
            backoff = Backoff(config.backoff_base_s, config.backoff_cap_s, random.Random(rng.random()))  # noqa: S311
            self.feeds[venue.venue] = feed_factory(venue, self, backoff)
            for symbol in venue.symbols:
                for channel in venue.channels:
                    if channel != "bars":
                        self.watchdog.register(venue.venue, symbol, channel, venue.thresholds.of(channel))

    # ---------------------------------------------------------------- FeedHandler
    def on_quote(self, quote: Quote) -> None:
        self._pending[("q", quote.venue, quote.symbol)] = quote
        self._dirty.set()

    def on_book(self, book: OrderBook) -> None:
        self._pending[("b", book.venue, book.symbol)] = book
        self._dirty.set()
        for observer in self.book_observers:
            observer(book)

    def on_bar(self, bar: Bar) -> None:
        self.bars.add_closed(bar)
        self._bar_closed(bar)

    def on_trade(self, venue: str, symbol: str, ts: datetime, price: Decimal, amount: Decimal) -> None:
        for bar in self.bars.on_trade(venue, symbol, ts, price, amount):
            self._bar_closed(bar)

    def seen(self, venue: str, symbol: str, channel: str, venue_ts: datetime | None) -> None:
        self.metrics.count("Messages", venue)
        if venue_ts is not None:
            self.metrics.lag(venue, max(0.0, (self.clock.now() - venue_ts).total_seconds() * 1000))
        event = self.watchdog.seen(venue, symbol, channel)
        if event is not None:
            self._spawn(self._publish([event]))

    def count(self, name: str, venue: str) -> None:
        self.metrics.count(name, venue)

    def connected(self, venue: str, up: bool) -> None:
        self._connected[venue] = up

    def private_stream(self, venue: str, up: bool) -> None:
        """A venue's private (orders and fills) stream went up or down; the guard times the outage."""
        if up:
            self.private_guard.connected(venue)
        else:
            self.private_guard.disconnected(venue)

    # ---------------------------------------------------------------- plumbing
    async def resubscribe(self, bucket: str, cost: float) -> float:
        cost = min(cost, self.config.subscribe_capacity)
        return await acquire_tokens(self.cache.acquire, bucket, cost)

    def _reconnect(self, venue: str) -> None:
        # A venue still connecting is left alone: killing its handshake would only delay the data.
        feed = self.feeds.get(venue)
        if feed is not None and self._connected.get(venue):
            feed.request_reconnect()

    async def _publish(self, events: Sequence[Envelope]) -> None:
        for event in events:
            name = "StaleSymbols" if event.type == "quote.stale" else "Recoveries"
            self.metrics.count(name, str(getattr(event.data, "venue", "")))
        try:
            await asyncio.to_thread(self.bus.publish, list(events))
        except Exception as exc:
            logger.error("publish failed", extra={"error": repr(exc), "types": [e.type for e in events]})

    def _spawn(self, coro: Awaitable[Any]) -> None:
        task: asyncio.Task[Any] = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _feed_ended(self, task: asyncio.Task[Any]) -> None:
        # A feed loop only ends by cancellation; anything else is a bug that /ready must show.
        if not task.cancelled() and task.exception() is not None:
            logger.error("feed task died", extra={"task": task.get_name(), "error": repr(task.exception())})

    def _bar_closed(self, bar: Bar) -> None:
        self.metrics.count("BarsClosed", bar.venue)
        logger.info("bar closed", extra={"venue": bar.venue, "symbol": bar.symbol, "ts": bar.ts.isoformat(),
                                          "close": str(bar.close)})  # fmt: skip
        self._bars_out.append(bar)
        self._dirty.set()
        for observer in self.bar_observers:
            observer(bar)

    def readiness(self) -> tuple[bool, dict[str, Any]]:
        down = [v for v in self.feeds if not self._connected.get(v)]
        stale = [f"{v}:{s}" for v, s in self.watchdog.stale_symbols()]
        return (not down and not stale and not self.stopping.is_set()), {"disconnected": down, "stale": stale}

    def _write(self, items: list[Quote | OrderBook], bars: list[Bar]) -> None:
        for item in items:
            if isinstance(item, Quote):
                self.cache.quotes.put_quote(item, item.received_at)
            else:
                self.cache.books.put_book(item, item.received_at)
        for bar in bars:  # oldest first: the store refuses a bar older than the last one it holds
            self.cache.bars.put_bar(bar)

    async def flush_writes(self) -> None:
        if not self._pending and not self._bars_out:
            return
        items, self._pending = list(self._pending.values()), {}
        bars = list(self._bars_out)
        self._bars_out.clear()
        try:
            await asyncio.to_thread(self._write, items, bars)
        except BaseException:
            # Quotes and books are superseded by the next update; bars are not, so they go back in front
            # of any closed meanwhile (a bar already appended is refused as not newer on the retry).
            self._bars_out = deque([*bars, *self._bars_out], maxlen=BAR_BACKLOG)
            raise

    async def _writer(self) -> None:
        while True:
            await self._dirty.wait()
            self._dirty.clear()
            try:
                await self.flush_writes()
            except Exception as exc:  # Redis down: keep the socket tasks alive, the next write retries
                logger.error("redis write failed", extra={"error": repr(exc)})
            await asyncio.sleep(self.config.write_interval_s)

    async def _housekeeping(self) -> None:
        last_metrics = time.monotonic()
        while True:
            await asyncio.sleep(0.5)
            for bar in self.bars.close_due(self.clock.now()):
                self._bar_closed(bar)
            await self.private_guard.check()
            if time.monotonic() - last_metrics >= self.config.metrics_interval_s:
                self.metrics.gauge("StaleSymbolsNow", "all", len(self.watchdog.stale_symbols()))
                self.metrics.flush()
                last_metrics = time.monotonic()

    # ---------------------------------------------------------------- lifecycle
    async def run(self) -> None:
        """Run until :attr:`stopping` is set, then drain and return."""
        await self.health.start()
        logger.info("streamer started", extra={"venues": list(self.feeds), "health_port": self.health.port})
        tasks = [asyncio.create_task(feed.run(), name=f"feed:{name}") for name, feed in self.feeds.items()]
        for task in tasks:
            task.add_done_callback(self._feed_ended)
        tasks += [asyncio.create_task(self._writer()), asyncio.create_task(self._housekeeping())]
        watchdog = asyncio.create_task(self.watchdog.run(self.stopping))
        try:
            await self.stopping.wait()
        finally:
            logger.info("streamer stopping: draining")
            for task in tasks:
                task.cancel()
            await asyncio.wait_for(asyncio.gather(*tasks, watchdog, return_exceptions=True),
                                   self.config.drain_timeout_s)  # fmt: skip
            await self.flush_writes()
            if self._tasks:
                await asyncio.wait(list(self._tasks), timeout=self.config.drain_timeout_s / 4)
            self.metrics.flush()
            await self.health.stop()
            logger.info("streamer stopped")
