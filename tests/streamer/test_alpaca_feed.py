"""The Alpaca equities feed through the real alpaca-py StockDataStream against the msgpack fake, with real Redis."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError
from streamer.app import Streamer
from streamer.config import StreamerConfig, VenueConfig

from desk.cache import BucketLimit, RedisQuoteCache, make_client
from desk.clock import SystemClock
from desk.local.fakes.ws_alpaca import FakeAlpacaWs
from desk.local.memory import MemoryEventBus
from desk.schemas.market import Bar


def alpaca_config(fake: FakeAlpacaWs, redis_url: str) -> StreamerConfig:
    venue = {"venue": "alpaca", "kind": "alpaca", "symbols": list(fake.symbols), "ws_url": fake.url,
             "api_key": fake.key, "secret": fake.secret, "channels": ["quote", "trades", "bars"],
             "thresholds": {"quote": 0.5, "trades": 0.5}}  # fmt: skip
    return StreamerConfig.model_validate({"venues": [venue], "redis_url": redis_url, "health_host": "127.0.0.1",
                                          "health_port": 0, "backoff_base_s": 0.05, "backoff_cap_s": 0.2})  # fmt: skip


@asynccontextmanager
async def running(cfg: StreamerConfig) -> AsyncIterator[Streamer]:
    cache = RedisQuoteCache(make_client(cfg.redis_url), default_limit=BucketLimit(100, 100))
    app = Streamer(cfg, cache, MemoryEventBus(), SystemClock())
    task = asyncio.create_task(app.run())
    try:
        yield app
    finally:
        app.stopping.set()
        await asyncio.wait_for(task, 30)


async def until(predicate: Callable[[], bool], timeout: float, step: float = 0.02) -> None:
    deadline = time.monotonic() + 3 * timeout  # slack for a loaded CI machine; bounds are asserted on measured times
    while not predicate():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(step)


def test_quotes_land_in_redis_and_a_dropped_connection_reconnects(redis_url: str) -> None:
    asyncio.run(_scenario(redis_url))


async def _scenario(redis_url: str) -> None:
    # Given the Alpaca-shaped stream of two symbols and the streamer subscribed through alpaca-py
    with FakeAlpacaWs(symbols=("SPY", "AAPL"), rate=40, bar_every=10) as fake:
        bars: list[Bar] = []
        async with running(alpaca_config(fake, redis_url)) as app:
            app.bar_observers.append(bars.append)
            quotes = app.cache.quotes
            # When quotes flow
            await until(lambda: quotes.get_quote_entry("alpaca", "AAPL") is not None, 15)
            await until(lambda: len(bars) >= 2, 10)
            first = quotes.get_quote_entry("alpaca", "SPY")
            # Then they are in Redis with the venue, venue time and receive time, and minute bars close
            assert first is not None and first.received_at is not None
            assert first.value.venue == "alpaca" and first.value.bid < first.value.ask
            assert abs(datetime.now(UTC) - first.value.ts) < timedelta(seconds=5)
            assert first.value.ts - timedelta(seconds=1) <= first.received_at
            assert {b.symbol for b in bars} == {"SPY", "AAPL"} and all(b.timeframe == "1m" for b in bars)
            assert fake.stats["auth"] == 1

            # When the venue drops every connection
            dropped_at = datetime.now(UTC)
            fake.drop()
            # Then alpaca-py reconnects, resubscribes, and newer quotes land again
            await until(lambda: fake.stats["subscribe"] >= 2, 10)
            await until(lambda: _newer("SPY", dropped_at, app), 10)
            assert fake.stats["connections"] == 2
            assert app.metrics.totals[("Reconnects", "alpaca")] == 1
            assert app.readiness()[1]["disconnected"] == []

            # When one frame is not msgpack at all
            garbage_at = datetime.now(UTC)
            fake.send_malformed()
            # Then it is counted and skipped: the same connection keeps delivering quotes
            await until(lambda: app.metrics.totals[("Malformed", "alpaca")] == 1, 5)
            await until(lambda: _newer("AAPL", garbage_at, app), 5)
            assert fake.stats["connections"] == 2


def _newer(symbol: str, after: datetime, app: Streamer) -> bool:
    quote = app.cache.get_quote("alpaca", symbol)
    return quote is not None and quote.ts > after


def test_an_alpaca_venue_refuses_a_book_channel() -> None:
    # Given an Alpaca venue asking for depth, which Alpaca does not publish for equities
    raw = {"venue": "alpaca", "kind": "alpaca", "symbols": ["SPY"], "channels": ["quote", "book"]}
    # When it is validated / Then it is refused (the channel would be stale for ever)
    with pytest.raises(ValidationError, match="no book channel"):
        VenueConfig.model_validate(raw)
