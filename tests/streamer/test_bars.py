"""Closed minute bars: built from the replayed trades, written to Redis, equal to the offline bars."""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from types import SimpleNamespace

import pytest
from streamer.app import Streamer
from streamer.backoff import Backoff
from streamer.config import StreamerConfig, VenueConfig

from desk.cache import RedisQuoteCache, make_client
from desk.clock import SystemClock
from desk.local.catalogue import tick_lines
from desk.local.fakes import ws_binance
from desk.local.fakes.ws_binance import FakeBinanceWs
from desk.local.memory import MemoryEventBus
from desk.schemas.market import Bar
from tests.streamer.test_ccxt_feed import SPOT, config, running
from tests.streamer.test_memory import until
from tests.streamer.test_service import _IdleFeed

LINES = 4000  # ~38 s of tape: ~680 trades
LEAD_S = 3.0  # the tape starts this long before a minute boundary, so it spans two minutes
OHLCV = tuple[datetime, Decimal, Decimal, Decimal, Decimal, Decimal]


@dataclass
class ShiftedClock:
    """The system clock moved forward by ``shift`` (never back): the fake venue's clock moves with it."""

    shift: timedelta = timedelta(0)

    def now(self) -> datetime:
        return SystemClock().now() + self.shift


def capture_trades(name: str, limit: int) -> list[tuple[Decimal, Decimal]]:
    """(price, amount) of every trade in the first ``limit`` lines, in tape order."""
    out = []
    with tick_lines(name) as lines:
        for n, line in enumerate(lines):
            if n >= limit:
                break
            data = json.loads(line.partition(" ")[2]).get("data", {})
            if data.get("e") == "trade":
                out.append((Decimal(data["p"]), Decimal(data["q"])))
    return out


def offline_bars(trades: list[tuple[datetime, Decimal, Decimal]]) -> list[OHLCV]:
    """Minute bars by plain grouping: open time, first / max / min / last price, summed amount."""
    bars: dict[datetime, list[tuple[Decimal, Decimal]]] = {}
    for ts, price, amount in trades:
        bars.setdefault(ts.replace(second=0, microsecond=0), []).append((price, amount))
    return [(minute, rows[0][0], max(p for p, _ in rows), min(p for p, _ in rows), rows[-1][0],
             sum((a for _, a in rows), Decimal(0))) for minute, rows in sorted(bars.items())]  # fmt: skip


def ohlcv(bar: Bar) -> OHLCV:
    return bar.ts, bar.open, bar.high, bar.low, bar.close, bar.volume


def test_bars_closed_from_the_replayed_trades_land_in_redis_equal_to_the_offline_bars(
    redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given the fake venue on a clock the test moves forward with the streamer's (bars follow venue times)
    clock = ShiftedClock()
    monkeypatch.setattr(ws_binance, "time", SimpleNamespace(time=lambda: time.time() + clock.shift.total_seconds(),
                                                            monotonic=time.monotonic))  # fmt: skip
    asyncio.run(_bars_scenario(redis_url, clock))


async def _bars_scenario(redis_url: str, clock: ShiftedClock) -> None:
    expected_trades = capture_trades(SPOT, LINES)
    received: list[tuple[datetime, Decimal, Decimal]] = []
    with FakeBinanceWs(captures={"spot": (SPOT,)}, speed=4, max_lines=LINES, autostart=False) as fake:
        # Thresholds no replay pause reaches: a watchdog reconnect would lose trades and fail the comparison.
        async with running(config(fake, redis_url, quote=30, book=30, trades=60), clock) as app:
            on_trade = app.on_trade

            def record(venue: str, symbol: str, ts: datetime, price: Decimal, amount: Decimal) -> None:
                received.append((ts, price, amount))
                on_trade(venue, symbol, ts, price, amount)

            app.on_trade = record  # type: ignore[method-assign]
            await until(lambda: fake.stats["subscribe"] >= 3, 30)
            # When the tape plays from just before a minute boundary, and the streamer's clock then passes
            # the last minute's end (closing the bar the last trades opened)
            now = clock.now()
            boundary = now.replace(second=0, microsecond=0) + timedelta(minutes=1)
            while boundary - now < timedelta(seconds=LEAD_S):
                boundary += timedelta(minutes=1)
            clock.shift += boundary - timedelta(seconds=LEAD_S) - now
            fake.start()
            assert await asyncio.to_thread(fake.finished.wait, 60)
            await until(lambda: len(received) >= len(expected_trades), 10)
            # Capture prices and amounts at the times the streamer got them (the sequences are compared below)
            timed = zip(received, expected_trades, strict=False)
            expected = offline_bars([(ts, price, amount) for (ts, _, _), (price, amount) in timed])
            clock.shift += timedelta(minutes=2)
            await until(lambda: sum(len(d) for d in app.bars.closed.values()) >= len(expected), 10)
            await app.flush_writes()
    stored = app.cache.bars.get_bars("binance", "BTC/USDT", "1m")
    # Then the streamer got the capture's trades in order, and Redis holds a bar per minute they span,
    # each equal to the bar built offline from the same trades
    assert [(p, a) for _, p, a in received] == expected_trades
    assert len(expected) >= 2 and expected[1][0] == boundary
    assert [ohlcv(b) for b in stored] == expected
    assert all(b.venue == "binance" and b.symbol == "BTC/USDT" and b.timeframe == "1m" for b in stored)


def _bar(minute: int, close: str = "100") -> Bar:
    ts = datetime(2024, 8, 8, 12, tzinfo=UTC) + timedelta(minutes=minute)
    price = Decimal(close)
    return Bar(venue="binance", symbol="BTC/USDT", timeframe="1m", ts=ts, open=price, high=price, low=price,
               close=price, volume=Decimal("1.5"))  # fmt: skip


def test_bars_kept_while_redis_fails_are_written_in_order_once_it_answers(redis_url: str) -> None:
    asyncio.run(_retry_scenario(redis_url))


async def _retry_scenario(redis_url: str) -> None:
    # Given a streamer whose Redis refuses the first bar write, and a store keeping three bars
    venue = {"venue": "binance", "symbols": ["BTC/USDT"]}
    cfg = StreamerConfig.model_validate({"venues": [venue], "redis_url": redis_url, "health_port": 0})

    def factory(venue: VenueConfig, app: Streamer, backoff: Backoff) -> _IdleFeed:
        return _IdleFeed(venue)

    cache = RedisQuoteCache(make_client(redis_url), bars_keep=3)
    app = Streamer(cfg, cache, MemoryEventBus(), SystemClock(), feed_factory=factory)
    put_bar, calls = cache.bars.put_bar, []

    def flaky(bar: Bar) -> bool:
        calls.append(bar.ts)
        if len(calls) == 2:  # the first bar is stored, the connection drops on the second
            raise ConnectionError("redis down")
        return put_bar(bar)

    cache.bars.put_bar = flaky  # type: ignore[method-assign]
    # When two bars close, the write fails half way, two more close, and the next write succeeds
    app.on_bar(_bar(0))
    app.on_bar(_bar(1))
    with pytest.raises(ConnectionError):
        await app.flush_writes()
    app.on_bar(_bar(2))
    app.on_bar(_bar(3, "101"))
    await app.flush_writes()
    # Then Redis holds the last three bars in order, each once (the bar stored before the failure was
    # refused as not newer on the retry), and nothing waits in the backlog
    stored = cache.bars.get_bars("binance", "BTC/USDT", "1m")
    assert [b.ts.minute for b in stored] == [1, 2, 3] and stored[-1].close == Decimal("101")
    assert not app._bars_out
    assert put_bar(_bar(3)) is False and put_bar(_bar(2)) is False
    since = cache.bars.get_bars("binance", "BTC/USDT", "1m", since=_bar(2).ts - timedelta(seconds=1))
    assert [b.ts.minute for b in since] == [2, 3]
