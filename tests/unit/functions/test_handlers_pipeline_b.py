"""Pipeline B handlers (signals, cost optimiser, risk) on their sample events.

The ports are the in-memory ones (desk.wiring's factories replaced); idempotency records live in
moto's DynamoDB and the order-placement execution is started in moto's Step Functions (a placeholder
Pass state machine) through desk.aws.executions, so duplicates go through the real code paths.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import boto3
import pytest
from aws_lambda_powertools.utilities.parser.models import EventBridgeModel, SqsModel
from moto import mock_aws

from desk import wiring
from desk.aws import clients
from desk.aws.executions import start_execution
from desk.clock import FixedClock
from desk.domain.orders import Fill, Side
from desk.events import Envelope
from desk.local import catalogue
from desk.local.memory import FrameMarketData, MemoryEventBus, MemoryQuoteCache, MemoryStore
from desk.schemas.analytics import Regime
from desk.settings import get_settings
from desk.usecases.risk import RiskConfig
from functions.cost_optimiser import handler as cost_optimiser
from functions.risk import handler as risk
from functions.signals import handler as signals
from quant.limits import Limit

SAMPLES = Path(__file__).resolve().parents[3] / "events" / "functions"
HANDLERS = (signals, cost_optimiser, risk)
PLACEHOLDER_ASL = json.dumps({"StartAt": "Done", "States": {"Done": {"Type": "Pass", "End": True}}})


class Context:
    function_name = "test"
    memory_limit_in_mb = 1024
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:test"
    aws_request_id = "req-1"

    def get_remaining_time_in_millis(self) -> int:
        return 60_000


def _sample(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((SAMPLES / f"{name}.json").read_text())
    return loaded


class RecordingAlerts:
    def __init__(self) -> None:
        self.sent: list[tuple[str, str]] = []

    def publish(self, subject: str, message: str) -> None:
        self.sent.append((subject, message))


class SfnStarter:
    """The integrator's starter in miniature: desk.aws.executions against one state machine."""

    def __init__(self, state_machine_arn: str) -> None:
        self.state_machine_arn = state_machine_arn

    def start(self, name: str, input: Mapping[str, Any]) -> str:
        return start_execution(self.state_machine_arn, name, input)


class Ports:
    def __init__(self) -> None:
        self.store, self.cache, self.bus = MemoryStore(), MemoryQuoteCache(), MemoryEventBus()
        self.alerts = RecordingAlerts()
        self.clock = FixedClock(datetime(2020, 1, 18, 0, 1, tzinfo=UTC))
        daily = catalogue.bitstamp_daily()
        self.feed = FrameMarketData(
            "binance", {(f"{a}/USDT", "1d"): daily[a] for a in ("BTC", "ETH")}, clock=self.clock
        )
        for symbol in ("BTC/USDT", "ETH/USDT"):
            self.store.upsert_bars(self.feed.series(symbol, "1d"))
        self.cache.put_quote(self.feed.fetch_ticker("BTC/USDT"))
        self.sfn: Any = None
        self.machine_arn = ""

    def starter(self) -> SfnStarter:
        return SfnStarter(self.machine_arn)


@pytest.fixture
def ports(monkeypatch: pytest.MonkeyPatch) -> Iterator[Ports]:
    for key, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "DESK_IDEMPOTENCY_TABLE": "idempotency-test",
    }.items():
        monkeypatch.setenv(key, value)
    p = Ports()
    for name, factory in {
        "store": lambda: p.store,
        "quote_cache": lambda: p.cache,
        "event_bus": lambda: p.bus,
        "clock": lambda: p.clock,
        "market_data": lambda venue: p.feed,
        "alerts": lambda: p.alerts,
        "execution_starter": p.starter,
    }.items():
        monkeypatch.setattr(wiring, name, factory, raising=False)
    with mock_aws():
        get_settings.cache_clear()
        clients.reset()
        for module in HANDLERS:
            module.persistence.cache_clear()
        boto3.client("dynamodb", region_name="us-east-1").create_table(
            TableName="idempotency-test",
            KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        p.sfn = boto3.client("stepfunctions", region_name="us-east-1")
        p.machine_arn = p.sfn.create_state_machine(
            name="order-placement", definition=PLACEHOLDER_ASL, roleArn="arn:aws:iam::123456789012:role/sfn"
        )["stateMachineArn"]
        yield p
        clients.reset()
        for module in HANDLERS:
            module.persistence.cache_clear()
    get_settings.cache_clear()


def _envelope(sample: dict[str, Any]) -> Envelope:
    return Envelope.from_sqs_record(sample["Records"][0])


def _with_poison(sample: dict[str, Any]) -> dict[str, Any]:
    poison = {**sample["Records"][0], "messageId": "poison-1", "body": "{not json"}
    return {"Records": [*sample["Records"], poison]}


def test_every_sample_event_parses_with_its_model() -> None:
    # Given each function's sample trigger, When parsed, Then the transport and the envelope validate
    EventBridgeModel.model_validate(_sample("risk"))
    for name, expected in (("signals", "regime.changed"), ("cost_optimiser", "signal.generated")):
        batch = SqsModel.model_validate(_sample(name))
        assert Envelope.from_eventbridge(json.loads(batch.Records[0].body)).type == expected


def test_signals_runs_the_book_once_and_reports_a_poison_message(ports: Ports) -> None:
    # Given ETH already TRENDING and the sample BTC regime change, plus an unparseable record
    ports.store.save_regime(
        Regime(
            symbol="ETH/USDT",
            timeframe="1d",
            ts=datetime(2020, 1, 17, tzinfo=UTC),
            model="rules",
            label="TRENDING",
            state=0,
            probabilities=(1.0,),
        )
    )
    event = _with_poison(_sample("signals"))

    # When the batch is delivered twice
    first = signals.lambda_handler(event, Context())
    second = signals.lambda_handler(event, Context())

    # Then momentum_crypto's two signals are stored and published once; the poison fails both times
    assert first == second == {"batchItemFailures": [{"itemIdentifier": "poison-1"}]}
    published = ports.bus.of_type("signal.generated")
    assert len(ports.store.signals) == 2 and len(published) == 2
    assert {e.data_as(type(next(iter(ports.store.signals.values())))).symbol for e in published} == {
        "BTC/USDT",
        "ETH/USDT",
    }
    assert all(e.correlation_id == _envelope(_sample("signals")).correlation_id for e in published)


def test_the_cost_optimiser_stores_a_plan_and_starts_one_execution(ports: Ports) -> None:
    # Given the sample signal (half the capital in BTC, nothing held)
    event = _with_poison(_sample("cost_optimiser"))

    # When it is delivered twice
    first = cost_optimiser.lambda_handler(event, Context())
    second = cost_optimiser.lambda_handler(event, Context())

    # Then one plan is stored and one order-placement execution, named by the plan id, is started
    assert first == second == {"batchItemFailures": [{"itemIdentifier": "poison-1"}]}
    (plan,) = ports.store.plans.values()
    executions = ports.sfn.list_executions(stateMachineArn=ports.machine_arn)["executions"]
    assert [e["name"] for e in executions] == [plan.plan_id]
    assert plan.side is Side.BUY and plan.venue == "binance" and sum(s.quantity for s in plan.slices) == plan.quantity
    started = json.loads(ports.sfn.describe_execution(executionArn=executions[0]["executionArn"])["input"])
    assert started["plan_id"] == plan.plan_id and Decimal(started["quantity"]) == plan.quantity
    assert len(ports.bus.of_type("plan.created")) == 1


def test_a_redelivery_after_the_idempotency_record_expired_starts_nothing_new(ports: Ports) -> None:
    # Given a planned signal whose idempotency record is gone (expired, or a new event id for the same signal)
    sample = _sample("cost_optimiser")
    cost_optimiser.lambda_handler(sample, Context())
    body = json.loads(sample["Records"][0]["body"])
    body["detail"]["id"] = "9d3e1f20-4c5b-4a6d-8e7f-000000000c02"
    again = {"Records": [{**sample["Records"][0], "body": json.dumps(body)}]}

    # When it arrives again
    response = cost_optimiser.lambda_handler(again, Context())

    # Then the stored plan is reused and Step Functions still holds one execution
    assert response == {"batchItemFailures": []}
    assert len(ports.store.plans) == 1
    assert len(ports.sfn.list_executions(stateMachineArn=ports.machine_arn)["executions"]) == 1


def _hold_btc(ports: Ports) -> None:
    ports.store.record_fill(
        Fill(
            venue="binance",
            venue_trade_id="3417845521",
            client_order_id="ldsample-0",
            symbol="BTC/USDT",
            side=Side.BUY,
            quantity=Decimal(20),
            price=Decimal(8000),
            occurred_at=datetime(2020, 1, 10, tzinfo=UTC),
        )
    )


def test_risk_on_schedule_stores_a_snapshot_and_a_hard_breach_latches_once(
    ports: Ports, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given 20 BTC held and a hard VaR limit the book breaches
    _hold_btc(ports)
    config = RiskConfig(capital=Decimal(500_000), limits=(Limit("var", "var", 0.001, hard=True),))
    monkeypatch.setattr(risk, "risk_config", lambda: config)

    # When the schedule event is delivered twice
    first = risk.lambda_handler(_sample("risk"), Context())
    second = risk.lambda_handler(_sample("risk"), Context())

    # Then one snapshot is stored, one breach published, one alert sent, and the kill switch latched
    assert first == second and first["breaches"] == ["var"] and first["latched"]
    snapshot = ports.store.latest_risk_snapshot("desk")
    assert snapshot is not None and snapshot.var == first["var"]["historical"] > 0.001
    assert len(ports.bus.of_type("risk.breached")) == 1 and len(ports.alerts.sent) == 1
    assert ports.store.kill_switch().latched


def test_risk_on_fills_reports_each_record_and_refuses_other_events(ports: Ports) -> None:
    # Given a fill.recorded record and a signal.generated record on the risk queue
    _hold_btc(ports)
    fill = json.loads((SAMPLES.parent / "fill.recorded.json").read_text())
    body = {
        "version": "0",
        "id": "eb-fill-1",
        "detail-type": "fill.recorded",
        "source": "lambda-desk",
        "account": "123456789012",
        "time": fill["occurred_at"],
        "region": "us-east-1",
        "resources": [],
        "detail": fill,
    }
    fill_record = {**_sample("signals")["Records"][0], "messageId": "fill-1", "body": json.dumps(body)}
    wrong = {**_sample("cost_optimiser")["Records"][0], "messageId": "wrong-1"}

    # When the batch is delivered
    response = risk.lambda_handler({"Records": [fill_record, wrong]}, Context())

    # Then the fill is measured (a snapshot within the default limits) and the other record fails
    assert response == {"batchItemFailures": [{"itemIdentifier": "wrong-1"}]}
    snapshot = ports.store.latest_risk_snapshot("desk")
    assert snapshot is not None and snapshot.gross_exposure > 0
    assert ports.alerts.sent == [] and not ports.store.kill_switch().latched
