"""Staleness: injected silences on the replaying fake are detected, reported and recovered; bad frames skipped.

The normal run injects a seeded 10 silences with 0.5 s thresholds; the issue's full 100 run under
``soak``. Latency is measured from the moment the tape goes silent to the ``quote.stale`` event's
``detected_at`` (both on the wall clock) and must stay below 3 s: a behaviour bound, not a benchmark.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import cast

import pytest

from desk.events import Envelope
from desk.local.fakes.ws_binance import FakeBinanceWs
from desk.local.memory import MemoryEventBus
from desk.schemas.market import FeedRecovered, QuoteStale
from tests.streamer.test_ccxt_feed import SPOT, config, running

VENUE, SYMBOL = "binance", "BTC/USDT"
THRESHOLD = 0.5
DETECTION_BOUND = 3.0
IN_FLIGHT = 0.1  # a frame already on its way when the tape is silenced


async def until(predicate: Callable[[], bool], timeout: float, probe: Callable[[], None] = lambda: None) -> None:
    deadline = time.monotonic() + 3 * timeout  # slack for a loaded CI machine; bounds are asserted on measured times
    while not predicate():
        probe()
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.01)


def test_a_malformed_frame_is_skipped_and_ten_seeded_silences_are_detected_within_3s(redis_url: str) -> None:
    # (one streamer start serves both behaviours: starting ccxt.pro is most of the cost)
    latencies = asyncio.run(_silences(redis_url, count=10, seed=20240808, max_lines=5000, speed=4))
    assert len(latencies) == 10 and max(latencies) < DETECTION_BOUND
    print(f"detection latency (s): min {min(latencies):.3f} max {max(latencies):.3f}")


@pytest.mark.soak
def test_a_hundred_seeded_silences_are_detected_within_3s_and_recovered(redis_url: str) -> None:
    latencies = asyncio.run(_silences(redis_url, count=100, seed=7, max_lines=60000, speed=2))
    assert len(latencies) == 100 and max(latencies) < DETECTION_BOUND


async def _silences(redis_url: str, *, count: int, seed: int, max_lines: int, speed: float) -> list[float]:
    rng = random.Random(seed)
    latencies: list[float] = []
    with FakeBinanceWs(captures={"spot": (SPOT,)}, speed=speed, max_lines=max_lines, autostart=False) as fake:
        cfg = config(fake, redis_url, trades=5.0)
        assert cfg.venues[0].thresholds.quote == cfg.venues[0].thresholds.book == THRESHOLD
        async with running(cfg) as app:
            bus = cast(MemoryEventBus, app.bus)
            cache, totals = app.cache, app.metrics.totals
            # Given the streamer following the tape with every channel fresh
            await until(lambda: fake.stats["subscribe"] >= 3, 20)
            fake.start()
            await until(lambda: app.watchdog.all_fresh() and cache.get_quote(VENUE, SYMBOL) is not None, 20)

            # When one frame is not JSON
            opened, sockets, garbage_at = fake.stats["connections"], fake.connections("spot"), datetime.now(UTC)
            stale_so_far = len(bus.of_type("quote.stale"))
            fake.send_malformed("spot")  # to each of ccxt's sockets
            # Then each is logged and counted, and the same connections keep producing newer quotes
            await until(lambda: totals[("Malformed", VENUE)] == sockets, 5)
            await until(lambda: (q := cache.get_quote(VENUE, SYMBOL)) is not None and q.ts > garbage_at, 5)
            assert fake.stats["connections"] == opened and len(bus.of_type("quote.stale")) == stale_so_far

            for _ in range(count):
                flowing = totals[("Messages", VENUE)] + rng.randint(20, 120)
                await until(lambda n=flowing: totals[("Messages", VENUE)] >= n and app.watchdog.all_fresh(), 10)
                stale_before, recovered_before = len(bus.of_type("quote.stale")), len(bus.of_type("feed.recovered"))

                # When the venue goes silent (connections open, nothing sent) for a seeded while
                silent_at = datetime.now(UTC)
                fake.silence("spot")

                def probe(silent_at: datetime = silent_at) -> None:
                    # Then no quote older than the threshold is ever served as fresh during the silence
                    now = datetime.now(UTC)
                    served_fresh = not cache.is_stale(VENUE, SYMBOL, now, timedelta(seconds=THRESHOLD))
                    overdue = now - silent_at > timedelta(seconds=THRESHOLD + IN_FLIGHT)
                    assert not (served_fresh and overdue), f"a quote {now - silent_at} into a silence is fresh"

                await until(lambda n=stale_before: len(bus.of_type("quote.stale")) > n, DETECTION_BOUND, probe)
                stale = bus.of_type("quote.stale")[stale_before]
                latencies.append((_stale(stale).detected_at - silent_at).total_seconds())
                keep_until = time.monotonic() + rng.uniform(0.05, 0.3)
                await until(lambda t=keep_until: time.monotonic() >= t, 2, probe)

                # When the tape resumes
                resumed_at = datetime.now(UTC)
                fake.resume("spot")
                # Then the symbol recovers: one quote.stale, then one feed.recovered, and a fresh quote
                await until(lambda n=recovered_before: len(bus.of_type("feed.recovered")) > n, 10)
                recovered = _recovered(bus.of_type("feed.recovered")[recovered_before])
                assert (recovered.venue, recovered.symbol) == (VENUE, SYMBOL)
                assert recovered.down_since == _stale(stale).detected_at
                assert recovered.recovered_at > resumed_at
                assert len(bus.of_type("quote.stale")) == stale_before + 1
                assert bus.published.index(stale) < len(bus.published) - 1
                await until(lambda t=resumed_at: (q := cache.get_quote(VENUE, SYMBOL)) is not None and q.ts > t, 5)
    assert all(0 < s < DETECTION_BOUND for s in latencies), latencies
    return latencies


def _stale(event: Envelope) -> QuoteStale:
    assert isinstance(event.data, QuoteStale)
    return event.data


def _recovered(event: Envelope) -> FeedRecovered:
    assert isinstance(event.data, FeedRecovered)
    return event.data
