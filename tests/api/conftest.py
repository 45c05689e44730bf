"""API tests: the resolver against real PostgreSQL and Redis, seeded with real bars from the catalogue.

Ports are built from the integration fixtures and swapped in through ``app.dependency_overrides``;
only the execution starter (Step Functions) is a recording fake. ``Api`` calls the resolver with
API Gateway HTTP API v2 events, claims included as the JWT authorizer would pass them.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal
from typing import Any, cast

import pandas as pd
import pytest
import redis

from desk.api import deps
from desk.api.app import app
from desk.api.auth import READ, TRADE
from desk.cache import RedisQuoteCache
from desk.clock import FixedClock
from desk.domain.controls_config import GateConfig
from desk.domain.instruments import Instrument, PrecisionMode
from desk.events import Envelope, new_event
from desk.local import catalogue
from desk.local.api_server import build_event
from desk.schemas.analytics import Regime, RegimeChanged, RiskSnapshot, Signal
from desk.schemas.market import Bar, BookLevel, OrderBook, Quote
from desk.store import LambdaConnection, PostgresStore, migrate
from desk.usecases.regime import MODEL, STATES
from desk.usecases.signals import run_signals
from desk.usecases.strategies import STRATEGIES
from tests.integration.conftest import database_url, pg_schema, pg_url, redis_base_url, redis_url  # noqa: F401

VENUE = "binance"
SYMBOLS = {"BTC": "BTC/USDT", "ETH": "ETH/USDT", "LTC": "LTC/USDT"}
BARS = 420


def _price(value: float) -> Decimal:
    return Decimal(repr(float(value)))  # what Bar does with a float (desk.domain.instruments.as_decimal)


def real_bars(asset: str, symbol: str, count: int = BARS) -> list[Bar]:
    """The last ``count`` consistent Bitstamp daily bars of ``asset``, relabelled as ``symbol`` on binance."""
    frame = catalogue.bitstamp_daily()[asset].dropna()
    frame = frame[(frame["high"] >= frame[["open", "close"]].max(axis=1)) & (frame["low"] > 0)]
    frame = frame[frame["low"] <= frame[["open", "close"]].min(axis=1)].iloc[-count:]
    return [
        Bar(
            venue=VENUE,
            symbol=symbol,
            timeframe="1d",
            ts=cast(pd.Timestamp, ts).tz_localize("UTC").to_pydatetime(),
            open=_price(r.open),
            high=_price(r.high),
            low=_price(r.low),
            close=_price(r.close),
            volume=_price(r.volume),
        )
        for ts, r in frame.iterrows()
    ]


class RecordingStarter:
    """The order-placement starter, recorded: idempotent on the name as Step Functions is."""

    def __init__(self) -> None:
        self.started: dict[str, Mapping[str, Any]] = {}

    def start(self, name: str, input: Mapping[str, Any]) -> str:
        self.started.setdefault(name, input)
        return f"arn:aws:states:us-east-1:000000000000:execution:order-placement:{name}"


@dataclass
class Desk:
    store: PostgresStore
    quotes: RedisQuoteCache
    redis: redis.Redis
    clock: FixedClock
    starter: RecordingStarter
    jobs: list[Callable[[], None]] = field(default_factory=list)


@dataclass(frozen=True)
class Reply:
    status: int
    body: Any
    headers: Mapping[str, str]


class Api:
    """Calls the resolver in-process with v2 events (claims as API Gateway's JWT authorizer passes them)."""

    def __init__(self, subject: str = "tester", scopes: tuple[str, ...] = (READ, TRADE)) -> None:
        self.claims: dict[str, Any] | None = {"sub": subject, "scope": " ".join(scopes)}

    def call(
        self,
        method: str,
        path: str,
        body: Any = None,
        headers: Mapping[str, str] | None = None,
        anonymous: bool = False,
    ) -> Reply:
        raw = b"" if body is None else (body if isinstance(body, bytes) else json.dumps(body).encode())
        all_headers = {"content-type": "application/json", **(headers or {})}
        event = build_event(method, path, all_headers, raw, None if anonymous else self.claims)
        result = app.resolve(event, None)  # type: ignore[arg-type]
        text = result.get("body") or ""
        return Reply(result["statusCode"], json.loads(text) if text else None, result.get("headers") or {})

    def get(self, path: str, **kwargs: Any) -> Reply:
        return self.call("GET", path, **kwargs)

    def post(self, path: str, body: Any, **kwargs: Any) -> Reply:
        return self.call("POST", path, body, **kwargs)


def seed(store: PostgresStore, quotes: RedisQuoteCache, clock: FixedClock) -> None:
    for asset, symbol in SYMBOLS.items():
        store.upsert_bars(real_bars(asset, symbol), now=clock.now())
    store.upsert_instruments(
        Instrument(
            venue=VENUE,
            symbol=s,
            base=s.split("/")[0],
            quote="USDT",
            precision_mode=PrecisionMode.TICK_SIZE,
            price_precision=Decimal("0.01"),
            amount_precision=Decimal("0.0001"),
            min_amount=Decimal("0.0001"),
            min_notional=Decimal(5),
        )
        for s in SYMBOLS.values()
    )
    last = store.load_bars(VENUE, "BTC/USDT", "1d", clock.now() - timedelta(days=3), clock.now())[-1].close
    now = clock.now()
    quotes.put_quote(
        Quote(
            venue=VENUE, symbol="BTC/USDT", ts=now, bid=last - 1, ask=last + 1, bid_size=Decimal(3), ask_size=Decimal(2)
        )
    )
    quotes.put_book(
        OrderBook(
            venue=VENUE,
            symbol="BTC/USDT",
            ts=now,
            bids=tuple(BookLevel(price=last - 1 - k, quantity=Decimal("0.5")) for k in range(5)),
            asks=tuple(BookLevel(price=last + 1 + k, quantity=Decimal("0.5")) for k in range(5)),
        )
    )
    store.save_risk_snapshot(
        RiskSnapshot(
            portfolio="desk",
            ts=now - timedelta(hours=1),
            confidence=0.99,
            horizon_days=1.0,
            var=0.02,
            cvar=0.03,
            method="historical",
            equity=Decimal(1_000_000),
            gross_exposure=Decimal(0),
            net_exposure=Decimal(0),
        )
    )


class RecordingBus:
    """The event bus, recorded (signals publish what they store)."""

    def __init__(self) -> None:
        self.events: list[Envelope] = []

    def publish(self, events: Sequence[Envelope]) -> None:
        self.events.extend(events)


def btc_regimes(desk: Desk, bars: int) -> list[Regime]:
    """A regime for each of the last ``bars`` stored BTC/USDT bars (the label cycles through the states)."""
    now = desk.clock.now()
    stored = desk.store.load_bars(VENUE, "BTC/USDT", "1d", now - timedelta(days=2 * bars), now)[-bars:]
    return [
        Regime(
            symbol="BTC/USDT",
            timeframe="1d",
            ts=bar.ts,
            model=MODEL,
            label=STATES[k % len(STATES)],
            state=k % len(STATES),
            probabilities=tuple(1.0 if j == k % len(STATES) else 0.0 for j in range(len(STATES))),
        )
        for k, bar in enumerate(stored)
    ]


def record_signals(desk: Desk, bars: int) -> list[Signal]:
    """What the signals function stores when BTC/USDT's regime changes on each of its last ``bars`` bars."""
    signals: list[Signal] = []
    for regime in btc_regimes(desk, bars):
        desk.store.save_regime(regime)
        event = new_event("regime.changed", RegimeChanged(previous=None, current=regime), clock=desk.clock)
        run = run_signals(event, store=desk.store, bus=RecordingBus(), clock=desk.clock, strategies=STRATEGIES)
        signals.extend(run.signals)
    return signals


def build_desk(url: str, schema: str, redis_location: str) -> Desk:
    migrate(url, schema)
    last = real_bars("BTC", "BTC/USDT", 1)[-1].ts
    clock = FixedClock(last + timedelta(days=1))
    client = redis.Redis.from_url(redis_location)
    desk = Desk(PostgresStore(LambdaConnection(url)), RedisQuoteCache(client), client, clock, RecordingStarter())
    seed(desk.store, desk.quotes, clock)
    return desk


def install(desk: Desk, *, inline_jobs: bool = True) -> None:
    app.dependency_overrides.update(
        {
            deps.store: lambda: desk.store,
            deps.quote_cache: lambda: desk.quotes,
            deps.redis_client: lambda: desk.redis,
            deps.clock: lambda: desk.clock,
            deps.execution_starter: lambda: desk.starter,
            deps.gate_config: lambda: GateConfig(allowed_symbols=frozenset(SYMBOLS.values())),
            deps.job_runner: lambda: (lambda job: job()) if inline_jobs else desk.jobs.append,
        }
    )


@pytest.fixture
def desk(pg_url: str, pg_schema: str, redis_url: str) -> Iterator[Desk]:  # noqa: F811
    built = build_desk(pg_url, pg_schema, redis_url)
    install(built)
    yield built
    app.dependency_overrides.clear()
    built.store.close()
    built.redis.close()


@pytest.fixture
def api(desk: Desk) -> Api:
    return Api()
