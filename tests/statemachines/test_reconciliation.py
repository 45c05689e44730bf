"""Reconciliation: injected drift against FakeBinance (real ccxt) and PostgreSQL, directly and through the ASL.

Every scenario starts from a ledger the order flow kept in step with the venue (one filled order with
its fills, one resting order), checked clean by a baseline run. Then one kind of drift is injected and
the runs that follow must detect it at once; repairable drift is gone by the second run, unrepairable
drift latches the kill switch at the third run and not before.
"""

from __future__ import annotations

import json
import random
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import psycopg
import pytest

from desk import wiring
from desk.aws import clients, secrets
from desk.aws.executions import start_execution
from desk.clock import SystemClock
from desk.domain.errors import DeskError
from desk.domain.ids import client_order_id, plan_id_from
from desk.domain.orders import Fill, OrderState, OrderType, Side
from desk.domain.reconciliation import OrphanPolicy
from desk.local.cloud import LocalCloud
from desk.local.fakes import FakeBinance, Fault
from desk.schemas.trading import OrderIntent
from desk.settings import get_settings
from desk.store import PostgresStore, migrate
from desk.store.connection import LambdaConnection
from desk.topology import topology
from desk.usecases.reconciliation import RunConfig, RunOutcome, reconcile_venue
from desk.venues import errors as venue_errors
from desk.venues.ccxt import CcxtVenue, CcxtVenueConfig

ROOT = Path(__file__).resolve().parents[2]
ASL = ROOT / "statemachines" / "reconciliation.asl.json"
SUBSTITUTIONS = ROOT / "statemachines" / "substitutions_reconciliation.json"
KINDS = ("missing_fill", "finished_order", "orphan", "phantom_fill", "balance_mismatch")
REPAIRABLE = {"missing_fill", "finished_order", "orphan"}
EXPECTED_DRIFT = {"phantom_fill": "phantom_fill", "balance_mismatch": "balance_mismatch"}
PRICES = {  # bid, ask (the fake's book) and a test order's quantity
    "BTC/USDT": (Decimal("8035.87"), Decimal("8035.89"), Decimal("0.001")),
    "ETH/USDT": (Decimal("176.52"), Decimal("176.53"), Decimal("0.1")),
}
LAMBDA_SERVICE_ERRORS = {  # AWS's own names for a failed invoke (not raised by our code)
    "Lambda.ServiceException",
    "Lambda.AWSLambdaException",
    "Lambda.SdkClientException",
    "Lambda.TooManyRequestsException",
}


class Alerts:
    def __init__(self) -> None:
        self.sent: list[tuple[str, str]] = []

    def publish(self, subject: str, message: str) -> None:
        self.sent.append((subject, message))


@dataclass(frozen=True)
class Scenario:
    number: int
    kind: str
    symbol: str
    variant: bool  # partial fill / partially filled before the cancel / adopt policy / deposit vs withdrawal

    @property
    def venue(self) -> str:
        return f"bn{self.number:03d}"

    @property
    def policy(self) -> OrphanPolicy:
        return OrphanPolicy.ADOPT if self.kind == "orphan" and self.variant else OrphanPolicy.CANCEL


def scenarios(count: int = 200, seed: int = 20240601) -> list[Scenario]:
    rng = random.Random(seed)
    return [Scenario(n, KINDS[n % len(KINDS)], rng.choice(sorted(PRICES)), rng.random() < 0.5) for n in range(count)]


def sample(per_case: int, seed: int = 7) -> list[Scenario]:
    """A seeded sample: ``per_case`` scenarios of every kind and variant (so both orphan policies)."""
    rng, picked = random.Random(seed), []
    for kind in KINDS:
        for variant in (False, True):
            picked += rng.sample([s for s in scenarios() if (s.kind, s.variant) == (kind, variant)], per_case)
    return sorted(picked, key=lambda s: s.number)


# -- the world of one scenario ----------------------------------------------------------------------
def make_venue(fake: FakeBinance, name: str) -> CcxtVenue:
    config = CcxtVenueConfig(
        exchange_id="binance",
        api_key="test-key",
        secret="not-a-secret",  # noqa: S106 - the fake accepts any signature
        base_url=fake.base_url,
        venue=name,
        timeout_ms=2000,
    )
    return CcxtVenue(config, clock=SystemClock())


def _intent(s: Scenario, slice_no: int, *, marketable: bool, side: Side = Side.BUY, plan: str = "") -> OrderIntent:
    bid, ask, qty = PRICES[s.symbol]
    plan = plan or plan_id_from(s.venue, s.kind)
    price = (ask if side is Side.BUY else bid) if marketable else (bid - 10 if side is Side.BUY else ask + 10)
    return OrderIntent(
        client_order_id=client_order_id(plan, slice_no),
        plan_id=plan,
        slice_no=slice_no,
        venue=s.venue,
        symbol=s.symbol,
        side=side,
        order_type=OrderType.LIMIT,
        quantity=qty,
        limit_price=price,
    )


def order_flow(venue: CcxtVenue, store: PostgresStore, s: Scenario) -> tuple[str, str]:
    """What the order state machine leaves behind: a filled order with its fills, a resting order."""
    since = datetime.now(UTC) - timedelta(minutes=1)
    filled = venue.create_order(_intent(s, 0, marketable=True))
    resting = venue.create_order(_intent(s, 1, marketable=False))
    for record in (filled, resting):
        store.upsert_order(record)
    for fill in venue.fetch_fills(since, s.symbol):
        store.record_fill(fill)
    return filled.client_order_id, resting.client_order_id


def inject(s: Scenario, fake: FakeBinance, venue: CcxtVenue, store: PostgresStore, resting: str) -> None:
    _, _, qty = PRICES[s.symbol]
    if s.kind == "missing_fill":
        fake.fill_resting(resting, qty / 2 if s.variant else None)
    elif s.kind == "finished_order":
        if s.variant:
            fake.fill_resting(resting, qty / 2)
        venue.cancel_order(s.symbol, resting)
    elif s.kind == "orphan":
        plan = plan_id_from(s.venue, "orphan") if s.variant else ""
        venue.create_order(_intent(s, 7, marketable=False, side=Side.SELL, plan=plan))
    elif s.kind == "phantom_fill":
        bid, _, _ = PRICES[s.symbol]
        phantom = Fill(s.venue, f"phantom-{s.number}", "ldphantom-0", s.symbol, Side.SELL, qty, bid, datetime.now(UTC))
        store.record_fill(phantom)
    else:
        asset = s.symbol.split("/")[1] if s.variant else s.symbol.split("/")[0]
        with fake.ledger.lock:
            fake.ledger.balances[asset][0] += Decimal("1.5") if s.variant else Decimal("-0.25")


def adjustment_flags(pg: str, venue: str) -> list[bool]:
    with psycopg.connect(pg) as conn:
        rows = conn.execute("SELECT adjustment FROM fills WHERE venue = %s ORDER BY occurred_at", (venue,)).fetchall()
    return [r[0] for r in rows]


def check_run(s: Scenario, run: int, outcome: RunOutcome, store: PostgresStore) -> None:
    """The contract: detected at once, repaired within two runs, latched at the third if unrepairable."""
    where = f"scenario {s}, run {run}: {outcome}"
    if s.kind in REPAIRABLE:
        assert outcome.status == ("repaired" if run == 1 else "clean"), where
        assert not store.kill_switch().latched, where
        return
    assert outcome.status == "drift", where
    details = store.recent_reconciliation_runs(s.venue, 1)[0].details
    assert EXPECTED_DRIFT[s.kind] in {d["kind"] for d in details["drift"]}, where
    assert outcome.consecutive_drift_runs == run, where
    assert outcome.latched_kill_switch is (run == 3), where
    assert store.kill_switch().latched is (run >= 3), where


def check_repairs(s: Scenario, fake: FakeBinance, store: PostgresStore, pg: str, resting: str) -> None:
    """After the runs, the ledger tells the venue's story."""
    order = store.load_order(resting)
    assert order is not None
    if s.kind == "missing_fill":
        assert adjustment_flags(pg, s.venue)[-1] is True, "the missing fill is recorded as a flagged adjustment"
        assert order.state is (OrderState.PARTIALLY_FILLED if s.variant else OrderState.FILLED)
    elif s.kind == "finished_order":
        assert order.state is OrderState.CANCELLED
        assert order.filled_quantity == (PRICES[s.symbol][2] / 2 if s.variant else 0)
    elif s.kind == "orphan":
        orphan = fake.ledger.orders[-1]
        adopted = store.load_order(orphan.client_order_id)
        if s.policy is OrphanPolicy.ADOPT:
            assert orphan.status == "NEW" and adopted is not None and adopted.state is OrderState.ACCEPTED
        else:
            assert orphan.status == "CANCELED" and adopted is None


# -- the use case directly: all 200 scenarios -------------------------------------------------------
@pytest.fixture
def store(database_url: str, pg_schema: str, pg_url: str) -> Iterator[PostgresStore]:
    migrate(database_url, pg_schema)
    s = PostgresStore(LambdaConnection(pg_url))
    yield s
    s.close()


def run_direct(s: Scenario, store: PostgresStore, pg: str) -> None:
    clock, alerts = SystemClock(), Alerts()
    with FakeBinance() as fake:
        venue = make_venue(fake, s.venue)
        _, resting = order_flow(venue, store, s)
        config = RunConfig(orphan_policy=s.policy)

        def run(n: int) -> RunOutcome:
            return reconcile_venue(
                s.venue, f"{s.venue}-{n}", config, venue=venue, store=store, clock=clock, alerts=alerts
            )

        # Given a ledger in step with the venue (the baseline run is clean)
        assert run(0).status == "clean", s
        # When drift is injected, Then each following run meets the contract
        inject(s, fake, venue, store, resting)
        for n in range(1, 3 if s.kind in REPAIRABLE else 4):
            check_run(s, n, run(n), store)
        check_repairs(s, fake, store, pg, resting)
        # And unrepairable drift alerted once when found and once when it latched; repairs alerted nothing
        subjects = [subject.split(" on ")[0] for subject, _ in alerts.sent]
        unrepaired = ["Reconciliation drift", "Kill switch latched: reconciliation drift"]
        assert subjects == ([] if s.kind in REPAIRABLE else unrepaired), alerts.sent
        assert all(s.venue in subject for subject, _ in alerts.sent)
    if store.kill_switch().latched:
        store.release_kill_switch(datetime.now(UTC), "test", reason="next scenario")


def test_all_200_scenarios_through_the_use_case(store: PostgresStore, pg_url: str) -> None:
    # Given 200 seeded scenarios covering every kind of drift, When each is reconciled run after run
    cases = scenarios()
    assert {s.kind for s in cases} == set(KINDS) and len(cases) == 200
    for s in cases:
        run_direct(s, store, pg_url)
    # Then every run is stored (a baseline and two or three runs per scenario)
    with psycopg.connect(pg_url) as conn:
        stored = conn.execute("SELECT count(*) FROM reconciliation_runs").fetchone()
    assert stored == (sum(3 if s.kind in REPAIRABLE else 4 for s in cases),)


def test_a_venue_error_is_recorded_as_a_failed_run_and_alerted(store: PostgresStore) -> None:
    # Given a venue that refuses the desk's key
    s, alerts = scenarios()[0], Alerts()
    with FakeBinance(api_key="another-key") as fake:
        venue = make_venue(fake, s.venue)
        # When a run is attempted, Then the error propagates
        with pytest.raises(venue_errors.AuthenticationFailed):
            reconcile_venue(s.venue, "r-1", RunConfig(), venue=venue, store=store, clock=SystemClock(), alerts=alerts)
    # And the run is stored as failed, and alerted
    [run] = store.recent_reconciliation_runs(s.venue)
    assert (run.status, run.details["error"]) == ("failed", "AuthenticationFailed")
    assert [subject for subject, _ in alerts.sent] == [f"Reconciliation failed on {s.venue}: AuthenticationFailed"]


# -- the ASL: placeholders and error names -----------------------------------------------------------
def _asl_errors(node: Any) -> set[str]:
    if isinstance(node, dict):
        found = set(node.get("ErrorEquals", ()))
        return found.union(*(_asl_errors(v) for v in node.values()))
    if isinstance(node, list):
        return set().union(*(_asl_errors(v) for v in node))
    return set()


def _subclasses(cls: type) -> set[type]:
    return {cls}.union(*(_subclasses(c) for c in cls.__subclasses__()))


def test_every_placeholder_has_a_substitution_in_every_environment() -> None:
    # Given the ASL's placeholders and the substitutions file
    names = set(re.findall(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}", ASL.read_text()))
    per_env = json.loads(SUBSTITUTIONS.read_text())["reconciliation"]
    functions = {n for n in names if n.endswith("FunctionArn")}
    # Then function ARNs name topology functions, and every other placeholder has a value everywhere
    snake = {re.sub(r"(?<!^)(?=[A-Z])", "_", n.removesuffix("FunctionArn")).lower() for n in functions}
    assert snake == {"reconcile_tasks"} and snake <= set(topology().functions)
    assert set(per_env) == {"local", "dev", "staging", "prod"}
    for env, values in per_env.items():
        assert set(values) == names - functions, env


def test_every_error_name_is_raised_by_the_desk_or_defined_by_aws() -> None:
    # Given every ErrorEquals of the ASL and the desk's error classes
    names = _asl_errors(json.loads(ASL.read_text()))
    desk = {c.__name__ for c in _subclasses(DeskError)}
    # Then each name is a desk error, States.* or one of Lambda's service errors
    assert {n for n in names if not n.startswith("States.")} - desk - LAMBDA_SERVICE_ERRORS == set()
    # And the retried venue errors are exactly the retryable ones a read can raise (no ambiguous creates)
    retryable = {c.__name__ for c in _subclasses(venue_errors.RetryableVenueError)} - {"AmbiguousOrderState"}
    assert names & ({c.__name__ for c in _subclasses(venue_errors.VenueError)} | {"RetryableVenueError"}) == retryable


# -- the ASL in moto: a seeded sample, the schedule, retries and failures ------------------------------
@pytest.fixture
def cloud(
    monkeypatch: pytest.MonkeyPatch,
    database_url: str,
    pg_schema: str,
    pg_url: str,
    redis_url: str,
) -> Iterator[LocalCloud]:
    migrate(database_url, pg_schema)
    monkeypatch.setenv("DESK_DATABASE_URL", pg_url)
    monkeypatch.setenv("DESK_REDIS_URL", redis_url)
    monkeypatch.setenv("DESK_RATE_LIMIT_CAPACITY", "100000")  # the shared limiter is not under test here
    with LocalCloud() as running:
        sfn = clients.client("stepfunctions")
        # The local cloud creates the machine without the non-ARN substitutions; recreate it with them.
        sfn.delete_state_machine(stateMachineArn=running.state_machine_arns["reconciliation"])
        local = json.loads(SUBSTITUTIONS.read_text())["reconciliation"]["local"]
        values = local | {"ReconcileTasksFunctionArn": running.function_arns["reconcile_tasks"]}
        arn = running.create_state_machine("reconciliation", ASL.read_text(), substitutions=values)
        adopting = values | {"ReconOrphanPolicy": OrphanPolicy.ADOPT.value}  # the other policy, for orphan scenarios
        running.create_state_machine("reconciliation-adopt", ASL.read_text(), substitutions=adopting)
        monkeypatch.setenv("DESK_RECONCILIATION_STATE_MACHINE_ARN", arn)
        secret = json.dumps({"api_key": "test-key", "secret": "not-a-secret"})
        clients.client("secretsmanager").put_secret_value(SecretId="venues/binance", SecretString=secret)
        yield running
    secrets.reset()
    wiring.reset()


def point_venue_at(monkeypatch: pytest.MonkeyPatch, name: str, fake: FakeBinance) -> None:
    """The handler's venue ``name`` is the fake (through settings, secrets and the rate limiter, as deployed)."""
    spec = {"kind": "ccxt", "exchange_id": "binance", "credentials_id": "venues/binance", "base_url": fake.base_url}
    spec["rate_limit"] = [1e6, 1e6]  # Binance's published budget is not under test here
    monkeypatch.setenv("DESK_VENUES", json.dumps({name: spec}))
    get_settings.cache_clear()
    secrets.reset()
    wiring.venue.cache_clear()
    wiring.quote_cache.cache_clear()


def execute(cloud: LocalCloud, name: str, venue: str, policy: OrphanPolicy = OrphanPolicy.CANCEL) -> dict[str, Any]:
    machine = cloud.state_machine_arns["reconciliation" if policy is OrphanPolicy.CANCEL else "reconciliation-adopt"]
    arn = start_execution(machine, name, {"venue": venue, "trigger": "manual"})
    cloud.wait_for_executions()
    described = clients.client("stepfunctions").describe_execution(executionArn=arn)
    return dict(described)


def _failure(execution_arn: str) -> list[dict[str, Any]]:
    history = clients.client("stepfunctions").get_execution_history(executionArn=execution_arn)["events"]
    return [e["taskFailedEventDetails"] for e in history if e["type"] == "TaskFailed"]


def outcome_of(described: dict[str, Any]) -> RunOutcome:
    assert described["status"] == "SUCCEEDED", described
    return RunOutcome.model_validate_json(described["output"])


def test_a_seeded_sample_through_the_state_machine(
    cloud: LocalCloud,
    monkeypatch: pytest.MonkeyPatch,
    pg_url: str,
) -> None:
    run_machine(cloud, monkeypatch, pg_url, sample(per_case=2))


@pytest.mark.soak
def test_all_200_scenarios_through_the_state_machine(
    cloud: LocalCloud,
    monkeypatch: pytest.MonkeyPatch,
    pg_url: str,
) -> None:
    run_machine(cloud, monkeypatch, pg_url, scenarios())


def run_machine(cloud: LocalCloud, monkeypatch: pytest.MonkeyPatch, pg: str, cases: list[Scenario]) -> None:
    store = PostgresStore(LambdaConnection(pg))
    assert {s.kind for s in cases} == set(KINDS)
    for s in cases:
        with FakeBinance() as fake:
            point_venue_at(monkeypatch, s.venue, fake)
            venue = make_venue(fake, s.venue)
            # Given the order flow's ledger, in step with the venue
            _, resting = order_flow(venue, store, s)
            assert outcome_of(execute(cloud, f"{s.venue}-0", s.venue, s.policy)).status == "clean"
            # When drift is injected and the state machine runs again
            inject(s, fake, venue, store, resting)
            for n in range(1, 3 if s.kind in REPAIRABLE else 4):
                # Then each run meets the contract
                check_run(s, n, outcome_of(execute(cloud, f"{s.venue}-{n}", s.venue, s.policy)), store)
            check_repairs(s, fake, store, pg, resting)
        if store.kill_switch().latched:
            store.release_kill_switch(datetime.now(UTC), "test", reason="next scenario")
    store.close()


def test_the_schedule_starts_one_execution_per_venue_and_minute(
    cloud: LocalCloud, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given the reconciled venue served by the fake, and quiet handlers for the other schedules
    with FakeBinance() as fake:
        point_venue_at(monkeypatch, "binance", fake)
        monkeypatch.setenv("DESK_RECONCILIATION_VENUES", "binance")
        from functions.reconcile_tasks import handler as tasks

        tasks.reconcile_settings.cache_clear()
        for function in {s.function for s in topology().schedules.values()} - {"reconcile_tasks"}:
            cloud.register(function, lambda event, context: None)
        start = datetime(2024, 1, 1, tzinfo=UTC)
        scheduler = cloud.scheduler(start)
        # When two simulated minutes pass, and the second minute's event is delivered again
        firings = [f for f in scheduler.advance(start + timedelta(minutes=2)) if f.function == "reconcile_tasks"]
        repeat = cloud.shim.call("reconcile_tasks", firings[-1].event)
        cloud.wait_for_executions()
        tasks.reconcile_settings.cache_clear()
    # Then one execution per minute exists, named by venue and minute, and the repeat started nothing new
    sfn = clients.client("stepfunctions")
    listed = sfn.list_executions(stateMachineArn=cloud.state_machine_arns["reconciliation"])["executions"]
    assert sorted(e["name"] for e in listed) == ["recon-binance-202401010001", "recon-binance-202401010002"]
    assert [f.error for f in firings] == [None, None]
    assert repeat["executions"]["binance"].endswith(":recon-binance-202401010002")
    # And the runs succeeded (the venue is in step with an empty ledger)
    described = [sfn.describe_execution(executionArn=e["executionArn"]) for e in listed]
    assert {d["status"] for d in described} == {"SUCCEEDED"}, [_failure(d["executionArn"]) for d in described]


def test_a_rate_limited_snapshot_is_retried_with_jittered_backoff(
    cloud: LocalCloud, monkeypatch: pytest.MonkeyPatch
) -> None:
    from moto.stepfunctions.parser.asl.component.common.retry import retrier_decl

    # Given a venue that answers 429 to the first open-orders request, and moto's retry sleeps recorded
    sleeps: list[float] = []
    monkeypatch.setattr(retrier_decl, "time", type("RecordingTime", (), {"sleep": staticmethod(sleeps.append)}))
    with FakeBinance() as fake:
        fake.faults.retry_after = 0
        fake.faults.queue("GET /api/v3/openOrders", Fault.RATE_LIMIT)
        point_venue_at(monkeypatch, "bnretry", fake)
        # When a run executes
        described = execute(cloud, "bnretry-0", "bnretry")
        # Then the Snapshot task failed once with RateLimited, waited a jittered interval, and succeeded
        assert outcome_of(described).status == "clean"
        assert fake.faults.injected == [("GET /api/v3/openOrders", Fault.RATE_LIMIT)]
    assert len(sleeps) == 1 and 0 <= sleeps[0] <= 1
    history = clients.client("stepfunctions").get_execution_history(executionArn=described["executionArn"])
    failed = [e for e in history["events"] if e["type"] == "TaskFailed"]
    assert [e["taskFailedEventDetails"]["error"] for e in failed] == ["RateLimited"]


def test_a_permanent_error_records_a_failed_run_alerts_and_fails(
    cloud: LocalCloud,
    monkeypatch: pytest.MonkeyPatch,
    pg_url: str,
) -> None:
    # Given an operator subscribed to the alerts, and a venue that refuses the desk's key
    sqs, sns = clients.client("sqs"), clients.client("sns")
    inbox = sqs.create_queue(QueueName="operator")["QueueUrl"]
    inbox_arn = sqs.get_queue_attributes(QueueUrl=inbox, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=cloud.topic_arns["alerts"], Protocol="sqs", Endpoint=inbox_arn)
    with FakeBinance(api_key="another-key") as fake:
        point_venue_at(monkeypatch, "bnfail", fake)
        # When a run executes
        described = execute(cloud, "bnfail-0", "bnfail")
    # Then the execution fails with the machine's own error, after storing a failed run
    assert (described["status"], described.get("error")) == ("FAILED", "ReconciliationFailed")
    store = PostgresStore(LambdaConnection(pg_url))
    [run] = store.recent_reconciliation_runs("bnfail")
    store.close()
    assert (run.run_id, run.status, run.details["error"]) == ("bnfail-0", "failed", "AuthenticationFailed")
    # And the operator was alerted
    messages = sqs.receive_message(QueueUrl=inbox, MaxNumberOfMessages=10).get("Messages", [])
    subjects = [json.loads(m["Body"])["Subject"] for m in messages]
    assert subjects == ["Reconciliation failed on bnfail: AuthenticationFailed"]
