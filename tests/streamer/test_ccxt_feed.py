"""The streamer through the real ccxt.pro client against the replaying fake venue, with real Redis."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from decimal import Decimal

from streamer.app import Streamer
from streamer.config import StreamerConfig

from desk.cache import BucketLimit, RedisQuoteCache, make_client
from desk.clock import SystemClock
from desk.local.fakes.ws_binance import FakeBinanceWs
from desk.local.memory import MemoryEventBus
from desk.ports import Clock
from desk.schemas.market import OrderBook
from tests.streamer.test_books import offline, read

SPOT = "ticks/hftbacktest_spot_btcusdt_20240808.gz"


def config(fake: FakeBinanceWs, redis_url: str, **thresholds: float) -> StreamerConfig:
    ws, _ = fake.ccxt_urls("spot")
    venue = {"venue": "binance", "symbols": ["BTC/USDT"], "ws_url": ws, "rest_url": fake.base_url,
             "thresholds": {"quote": 0.5, "book": 0.5, "trades": 5.0, **thresholds}}  # fmt: skip
    return StreamerConfig.model_validate({"venues": [venue], "redis_url": redis_url, "health_host": "127.0.0.1",
                                          "health_port": 0, "backoff_base_s": 0.05, "backoff_cap_s": 0.2})  # fmt: skip


@asynccontextmanager
async def running(cfg: StreamerConfig, clock: Clock | None = None) -> AsyncIterator[Streamer]:
    cache = RedisQuoteCache(make_client(cfg.redis_url), default_limit=BucketLimit(100, 100))
    app = Streamer(cfg, cache, MemoryEventBus(), clock or SystemClock())
    task = asyncio.create_task(app.run())
    try:
        yield app
    finally:
        app.stopping.set()
        await asyncio.wait_for(task, 30)


def top(book: OrderBook) -> tuple[list[tuple[Decimal, Decimal]], list[tuple[Decimal, Decimal]]]:
    return [(lv.price, lv.quantity) for lv in book.bids], [(lv.price, lv.quantity) for lv in book.asks]


def test_books_in_redis_equal_the_offline_reconstruction_and_a_gap_resnapshots(redis_url: str) -> None:
    asyncio.run(_books_scenario(redis_url))


async def _books_scenario(redis_url: str) -> None:
    # Given the fake replaying the BTCUSDT spot capture and the offline book from the same lines
    snapshot, diffs = read(SPOT, 3000)
    expected = offline(snapshot, diffs, 20)
    with FakeBinanceWs(captures={"spot": (SPOT,)}, speed=15, max_lines=3000, autostart=False) as fake:
        seen: list[OrderBook] = []
        async with running(config(fake, redis_url)) as app:
            app.book_observers.append(seen.append)
            await asyncio.wait_for(_until(lambda: fake.stats["subscribe"] >= 3), 60)
            fake.start()
            # When the streamer follows the tape, one diff goes missing and one frame is garbage
            await asyncio.wait_for(_until(lambda: len(seen) > 20), 40)
            fake.skip_sequence("spot", "BTCUSDT")
            fake.send_malformed("spot")
            assert await asyncio.to_thread(fake.finished.wait, 30)
            await asyncio.sleep(0.3)  # let the last frames reach the writer (no timing is asserted)
            stored = app.cache.get_book("binance", "BTC/USDT")
            quote = app.cache.get_quote("binance", "BTC/USDT")
    # Then every checkpoint book equals the offline one, the gap forced a new snapshot,
    # and Redis holds the last book and a quote
    checked = [b for b in seen if b.sequence in expected]
    assert len(checked) > 50
    for book in checked:
        assert top(book) == expected[book.sequence], book.sequence
    assert fake.stats["skipped"] == 1
    assert fake.stats["snapshot:spot:BTCUSDT"] >= 2
    assert stored is not None and stored.sequence == max(b.sequence or 0 for b in seen)
    assert quote is not None and quote.received_at is not None


async def _until(predicate: object, step: float = 0.02) -> None:
    while not predicate():  # type: ignore[operator]
        await asyncio.sleep(step)
