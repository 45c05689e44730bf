"""``python -m services.streamer`` (from the repo) or ``python -m streamer`` (in the image).

``--replay`` starts the fake venues in-process (Binance replaying the captures; Alpaca's msgpack
stream for ``kind: alpaca`` venues) and points the feeds at them (local runs, ``make stream``).
SIGTERM / SIGINT stop the loop; the streamer drains within its timeout and the process exits 0.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from contextlib import ExitStack
from pathlib import Path

if __package__ == "services.streamer":  # run from the repo: make ``streamer`` importable by its own name
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from desk.cache import BucketLimit, RedisQuoteCache, make_client
from desk.clock import SystemClock
from desk.local.memory import MemoryEventBus
from desk.observability import logger
from desk.ports import EventBus
from streamer.app import Streamer
from streamer.config import StreamerConfig, load_config


def _bus(replay: bool) -> EventBus:
    if replay:
        return MemoryEventBus()
    from desk.aws.bus import EventBridgeBus
    from desk.settings import get_settings

    settings = get_settings()
    return EventBridgeBus(settings.event_bus_name, settings.event_source)


def _replay_config(config: StreamerConfig, stack: ExitStack, speed: float, max_lines: int) -> StreamerConfig:
    from desk.local.fakes.ws_alpaca import FakeAlpacaWs
    from desk.local.fakes.ws_binance import FakeBinanceWs

    binance: FakeBinanceWs | None = None
    venues = []
    for venue in config.venues:
        if venue.kind == "alpaca":
            alpaca = stack.enter_context(FakeAlpacaWs(symbols=venue.symbols))
            update = {"ws_url": alpaca.url, "api_key": alpaca.key, "secret": alpaca.secret}
        else:
            binance = binance or stack.enter_context(FakeBinanceWs(speed=speed, max_lines=max_lines, loops=1_000))
            ws, _ = binance.ccxt_urls("spot" if venue.market == "spot" else "usdm")
            update = {"ws_url": ws, "rest_url": binance.base_url}
        venues.append(venue.model_copy(update=update))
    return config.model_copy(update={"venues": tuple(venues)})


async def _main(config: StreamerConfig, bus: EventBus) -> None:
    # Every venue's subscribe bucket gets the configured pace (shared by all tasks through Redis).
    limit = BucketLimit(config.subscribe_capacity, config.subscribe_refill_per_s)
    cache = RedisQuoteCache(make_client(config.redis_url, client_name="streamer"), default_limit=limit)
    app = Streamer(config, cache, bus, SystemClock())
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, app.stopping.set)
    await app.run()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="streamer")
    parser.add_argument("--config", help="JSON file with the StreamerConfig")
    parser.add_argument("--redis-url")
    parser.add_argument("--health-port", type=int)
    parser.add_argument("--replay", action="store_true", help="replay the Binance captures from a local fake")
    parser.add_argument("--speed", type=float, default=1.0)
    parser.add_argument("--max-lines", type=int, default=20_000, help="capture lines per replayed tape")
    args = parser.parse_args(argv)
    config = load_config(args.config, redis_url=args.redis_url, health_port=args.health_port)
    with ExitStack() as stack:
        if args.replay:
            config = _replay_config(config, stack, args.speed, args.max_lines)
        asyncio.run(_main(config, _bus(args.replay)))
    logger.info("exit")
    return 0


if __name__ == "__main__":
    sys.exit(main())
