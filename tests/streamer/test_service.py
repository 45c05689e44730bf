"""The streamer as a service: ``python -m streamer --replay`` in a subprocess (health, readiness, SIGTERM drain),
and the private-stream guard's cancel-all with an injected callback."""

from __future__ import annotations

import asyncio
import json
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path

from streamer.app import Streamer
from streamer.backoff import Backoff
from streamer.config import StreamerConfig, VenueConfig

from desk.cache import RedisQuoteCache, make_client
from desk.clock import FixedClock
from desk.local.memory import MemoryEventBus

DRAIN_TIMEOUT = 5.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def status(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310  # http://127.0.0.1 only
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return exc.code
    except OSError:
        return 0


def wait_status(url: str, expected: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while (code := status(url)) != expected:
        assert time.monotonic() < deadline, f"{url} answered {code}, not {expected}"
        time.sleep(0.1)


def test_replay_service_is_healthy_becomes_ready_and_drains_on_sigterm(redis_url: str, tmp_path: Path) -> None:
    # Given a config for one Binance symbol and the streamer started as its container would start it
    port = free_port()
    venue = {"venue": "binance", "symbols": ["BTC/USDT"], "thresholds": {"quote": 1.0, "book": 1.0, "trades": 20}}
    config = {"venues": [venue], "redis_url": redis_url, "health_host": "127.0.0.1", "health_port": port,
              "drain_timeout_s": DRAIN_TIMEOUT, "backoff_base_s": 0.05, "backoff_cap_s": 0.2}  # fmt: skip
    (tmp_path / "streamer.json").write_text(json.dumps(config))
    log = (tmp_path / "streamer.log").open("w")
    args = ["--replay", "--config", str(tmp_path / "streamer.json"), "--speed", "4", "--max-lines", "3000"]
    proc = subprocess.Popen([sys.executable, "-m", "streamer", *args], stdout=log, stderr=subprocess.STDOUT)  # noqa: S603
    try:
        # When it runs against the replay and real Redis
        # Then /health answers 200 while it starts, and /ready turns 200 once the feed is fresh
        wait_status(f"http://127.0.0.1:{port}/health", 200, 60)
        wait_status(f"http://127.0.0.1:{port}/ready", 200, 60)
        # and a quote reaches Redis: on the writer's next flush, which can come just after /ready turns 200
        cache, deadline = RedisQuoteCache(make_client(redis_url)), time.monotonic() + 5
        while cache.get_quote("binance", "BTC/USDT") is None:
            assert time.monotonic() < deadline, "no quote in Redis 5 s after /ready"
            time.sleep(0.05)
        # When ECS stops the task
        proc.send_signal(signal.SIGTERM)
        # Then it drains and exits 0 within the stop timeout
        assert proc.wait(timeout=DRAIN_TIMEOUT + 5) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
        log.close()
    output = (tmp_path / "streamer.log").read_text()
    assert "streamer stopping: draining" in output and "streamer stopped" in output


class _IdleFeed:
    def __init__(self, cfg: VenueConfig) -> None:
        self.cfg = cfg

    async def run(self) -> None:
        await asyncio.Event().wait()

    def request_reconnect(self) -> None:
        pass


def test_private_stream_down_longer_than_configured_requests_cancel_all_once(redis_url: str) -> None:
    asyncio.run(_guard_scenario(redis_url))


async def _guard_scenario(redis_url: str) -> None:
    # Given a streamer whose private stream guard calls back after 30 s down, on a clock the test moves
    clock = FixedClock(datetime(2024, 8, 8, 12, tzinfo=UTC))
    requested: list[str] = []
    called = asyncio.Event()

    async def cancel_all(venue: str) -> None:
        requested.append(venue)
        called.set()

    cfg = StreamerConfig.model_validate({"venues": [{"venue": "binance", "symbols": ["BTC/USDT"]}],
                                         "redis_url": redis_url, "health_host": "127.0.0.1", "health_port": 0,
                                         "cancel_all_after_s": 30})  # fmt: skip

    def factory(venue: VenueConfig, app: Streamer, backoff: Backoff) -> _IdleFeed:
        return _IdleFeed(venue)

    app = Streamer(cfg, RedisQuoteCache(make_client(redis_url)), MemoryEventBus(), clock, feed_factory=factory,
                   cancel_all=cancel_all)  # fmt: skip
    # When the private stream drops for less than the configured time
    app.private_stream("binance", False)
    clock.advance(timedelta(seconds=29))
    # Then nothing is cancelled
    assert await app.private_guard.check() == [] and requested == []

    # When the outage passes 30 s while the service runs
    task = asyncio.create_task(app.run())
    clock.advance(timedelta(seconds=2))
    # Then the housekeeping loop requests cancel-all for that venue, once per outage
    await asyncio.wait_for(called.wait(), 5)
    clock.advance(timedelta(seconds=60))
    assert await app.private_guard.check() == []
    assert requested == ["binance"]
    # When the stream comes back and drops again for too long, a new outage asks again
    app.private_stream("binance", True)
    app.private_stream("binance", False)
    clock.advance(timedelta(seconds=31))
    assert await app.private_guard.check() == ["binance"]
    assert requested == ["binance", "binance"]
    app.stopping.set()
    await asyncio.wait_for(task, 10)
