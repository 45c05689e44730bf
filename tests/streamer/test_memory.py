"""Bounded memory: replaying the capture again and again must not grow the streamer's state.

Every structure the streamer keeps per key is bounded by design (latest-value conflation of pending
writes, ``deque(maxlen)`` bar buffers, one watchdog entry per channel, ccxt's capped trade cache,
a book cut to the price range the tape visits); this holds them to it, and checks with tracemalloc
that the heap does not grow from the end of loop 2 to the end of loop N.
"""

from __future__ import annotations

import asyncio
import gc
import time
import tracemalloc
from collections.abc import Callable

import pytest
from streamer.app import Streamer

from desk.local.fakes.ws_binance import FakeBinanceWs
from tests.streamer.test_ccxt_feed import SPOT, config, running

GROWTH_BOUND = 2_000_000  # bytes from loop 2 to loop N (~10^4 frames): one leaked object per frame would be more


async def until(predicate: Callable[[], bool], timeout: float) -> None:
    deadline = time.monotonic() + 3 * timeout  # slack for a loaded CI machine; bounds are asserted on measured times
    while not predicate():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.05)


def heap(snapshot: tracemalloc.Snapshot) -> int:
    # The test's own machinery (pytest's log capture, tracemalloc) is not the streamer's memory.
    ignored = [tracemalloc.Filter(False, pattern) for pattern in ("*/_pytest/*", "*/logging/*", "*/tracemalloc.py")]
    return sum(stat.size for stat in snapshot.filter_traces(ignored).statistics("filename"))


def tracked_sizes(app: Streamer) -> dict[str, int]:
    exchange = app.feeds["binance"].exchange  # type: ignore[attr-defined]
    book = exchange.orderbooks.get("BTC/USDT") if exchange is not None else None
    trades = exchange.trades.get("BTC/USDT") if exchange is not None and exchange.trades else None
    return {
        "pending": len(app._pending),
        "tasks": len(app._tasks),
        "bars": max((len(d) for d in app.bars.closed.values()), default=0),
        "book_levels": len(book["bids"]) + len(book["asks"]) if book is not None else 0,
        "trades": len(trades) if trades is not None else 0,
        "clients": len(exchange.clients or {}) if exchange is not None else 0,
        "watchdog": len(app.watchdog._channels),
    }


def test_replaying_the_capture_five_times_keeps_every_tracked_structure_bounded(redis_url: str) -> None:
    asyncio.run(_replays(redis_url, loops=5, max_lines=2000, speed=10, check_heap=False))


@pytest.mark.soak
def test_thirty_minutes_of_replay_keep_memory_bounded(redis_url: str) -> None:
    # The requirement (no heap growth over a 30-minute soak). Known to fail today: each reconnect
    # leaves the replaced ccxt.pro exchange alive (see the closing note of session 1); keep this strict.
    asyncio.run(_replays(redis_url, loops=36, max_lines=20000, speed=4, check_heap=True))  # ~50 s of tape per loop


async def _replays(redis_url: str, *, loops: int, max_lines: int, speed: float, check_heap: bool) -> None:
    # Given the fake replaying the capture `loops` times (each loop drops the connections, like maintenance)
    try:
        with FakeBinanceWs(captures={"spot": (SPOT,)}, speed=speed, max_lines=max_lines, loops=loops,
                           autostart=False) as fake:  # fmt: skip
            async with running(config(fake, redis_url, trades=5.0)) as app:
                await until(lambda: fake.stats["subscribe"] >= 3, 30)
                fake.start()
                await until(lambda: app.metrics.totals[("Messages", "binance")] > 100, 30)
                tracemalloc.start()  # after ccxt's import and first session: tracing those only slows the test
                # When the streamer has followed two loops, and then the rest
                await until(lambda: fake.stats["loop:spot"] >= 3, 60)
                gc.collect()
                after_two, sizes_two = heap(tracemalloc.take_snapshot()), tracked_sizes(app)
                await until(fake.finished.is_set, 30 + loops * max_lines / speed / 50)
                gc.collect()
                after_all, sizes_all = heap(tracemalloc.take_snapshot()), tracked_sizes(app)
                messages = fake.stats["sent"]
    finally:
        tracemalloc.stop()
    # Then the heap did not grow with the messages, and every tracked structure stayed within its bound
    print(f"heap growth loop 2 -> {loops}: {after_all - after_two} B over {messages} messages; {sizes_all}")
    assert messages > 5000
    if check_heap:
        assert after_all - after_two < GROWTH_BOUND
    assert sizes_all["pending"] <= 2 and sizes_all["watchdog"] == 3 and sizes_all["tasks"] <= 4
    assert sizes_all["bars"] <= 120 and sizes_all["trades"] <= 1000
    assert sizes_all["book_levels"] <= max(2 * sizes_two["book_levels"], 5000)
    assert sizes_all["clients"] <= max(sizes_two["clients"], 4)
