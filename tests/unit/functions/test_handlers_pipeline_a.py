"""Pipeline A handlers (ingest planner/worker, regime, correlation) on their sample events.

The ports are the in-memory ones (desk.wiring's factories replaced); idempotency records live in
moto's DynamoDB, so duplicate deliveries go through the real Powertools code path.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
import pytest
from aws_lambda_powertools.utilities.parser.models import EventBridgeModel, SqsModel
from moto import mock_aws

from desk import wiring
from desk.aws import clients
from desk.clock import FixedClock
from desk.events import Envelope
from desk.local import catalogue
from desk.local.memory import FrameMarketData, MemoryEventBus, MemoryQuoteCache, MemoryStore
from desk.settings import get_settings
from functions.correlation import handler as correlation
from functions.ingest_planner import handler as planner
from functions.ingest_worker import handler as worker
from functions.regime import handler as regime

SAMPLES = Path(__file__).resolve().parents[3] / "events" / "functions"
HANDLERS = (planner, worker, regime, correlation)


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


class Ports:
    def __init__(self) -> None:
        self.store, self.cache, self.bus = MemoryStore(), MemoryQuoteCache(), MemoryEventBus()
        self.clock = FixedClock(datetime(2020, 1, 18, tzinfo=UTC))
        hourly, daily = catalogue.coinbase_btcusd_hourly(), catalogue.bitstamp_daily()
        frames = {("BTC/USDT", "1h"): hourly} | {(f"{a}/USDT", "1d"): daily[a] for a in ("BTC", "ETH", "LTC")}
        self.feed = FrameMarketData("binance", frames, drop_empty=True, page_limit=1000, clock=self.clock)


@pytest.fixture
def ports(monkeypatch: pytest.MonkeyPatch) -> Iterator[Ports]:
    universe = [{"venue": "binance", "symbol": f"{a}/USDT", "timeframes": ["1h", "1d"]} for a in ("BTC", "ETH", "LTC")]
    for key, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "DESK_IDEMPOTENCY_TABLE": "idempotency-test",
        "DESK_UNIVERSE": json.dumps(universe),
    }.items():
        monkeypatch.setenv(key, value)
    p = Ports()
    for name, factory in {
        "store": lambda: p.store,
        "quote_cache": lambda: p.cache,
        "event_bus": lambda: p.bus,
        "clock": lambda: p.clock,
        "market_data": lambda venue: p.feed,
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
        yield p
        clients.reset()
        for module in HANDLERS:
            module.persistence.cache_clear()
    get_settings.cache_clear()


def test_every_sample_event_parses_with_its_model() -> None:
    # Given the sample trigger of each function, When parsed, Then the transport and the envelope validate
    EventBridgeModel.model_validate(_sample("ingest_planner"))
    for name, expected in (
        ("ingest_worker", "ingest.requested"),
        ("regime", "bars.ingested"),
        ("correlation", "bars.ingested"),
    ):
        batch = SqsModel.model_validate(_sample(name))
        body = json.loads(batch.Records[0].body)
        envelope = Envelope.from_eventbridge(body) if "detail-type" in body else Envelope.parse(body)
        assert envelope.type == expected


def test_the_planner_enqueues_one_job_per_series_once_per_schedule_event(
    ports: Ports, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a sender that records what reaches the queue
    sent: list[Envelope] = []
    monkeypatch.setattr(planner, "job_sender", lambda: sent.extend)

    # When the sample schedule event is delivered twice
    first = planner.lambda_handler(_sample("ingest_planner"), Context())
    second = planner.lambda_handler(_sample("ingest_planner"), Context())

    # Then six jobs (3 symbols x 2 timeframes) are sent once; the duplicate returns the stored result
    assert len(sent) == 6 and {e.type for e in sent} == {"ingest.requested"}
    assert first == second == {"jobs": [e.id for e in sent]}


def test_the_worker_ingests_and_a_duplicate_delivery_changes_nothing(ports: Ports) -> None:
    # Given the sample job (BTC/USDT 1h from 2019-10-01)
    event = _sample("ingest_worker")

    # When it is delivered, then delivered again
    response = worker.lambda_handler(event, Context())
    stored = ports.store.bar_count("binance", "BTC/USDT", "1h")
    again = worker.lambda_handler(event, Context())

    # Then the bars are stored and announced once; the duplicate stores and publishes nothing
    assert response == again == {"batchItemFailures": []}
    assert stored > 300 and ports.store.bar_count("binance", "BTC/USDT", "1h") == stored
    assert len(ports.bus.of_type("bars.ingested")) == 1
    assert ports.cache.get_quote("binance", "BTC/USDT") is not None


def test_a_poison_message_is_reported_as_a_batch_item_failure(ports: Ports) -> None:
    # Given a batch with the sample job and a record whose body is not an envelope
    event = _sample("ingest_worker")
    poison = dict(event["Records"][0], messageId="poison-1", body='{"type": "ingest.requested"}')
    event["Records"].append(poison)

    # When handled
    response = worker.lambda_handler(event, Context())

    # Then only the poison record is reported (SQS retries it, then dead-letters it); the good one is done
    assert response == {"batchItemFailures": [{"itemIdentifier": "poison-1"}]}
    assert len(ports.bus.of_type("bars.ingested")) == 1


def test_regime_publishes_on_the_first_label_and_not_on_a_redelivery(ports: Ports) -> None:
    # Given the hourly history stored
    ports.store.upsert_bars(ports.feed.series("BTC/USDT", "1h"))

    # When the sample bars.ingested is delivered twice
    assert regime.lambda_handler(_sample("regime"), Context()) == {"batchItemFailures": []}
    assert regime.lambda_handler(_sample("regime"), Context()) == {"batchItemFailures": []}

    # Then one regime is stored and one regime.changed (the first label) published
    (changed,) = ports.bus.of_type("regime.changed")
    assert changed.correlation_id == "53dc4d37-cffa-4f76-80c9-8b7d4a4d2eaa"
    assert len(ports.store.regimes) == 1


def test_correlation_runs_from_the_queue_and_from_the_schedule(ports: Ports) -> None:
    # Given daily bars of three coins stored
    for asset in ("BTC", "ETH", "LTC"):
        ports.store.upsert_bars(ports.feed.series(f"{asset}/USDT", "1d"))

    # When the sample bars.ingested arrives, and then the hourly schedule fires
    assert correlation.lambda_handler(_sample("correlation"), Context()) == {"batchItemFailures": []}
    scheduled = correlation.lambda_handler(_sample("ingest_planner"), Context())

    # Then the queue run stores three snapshots and publishes one;
    # the schedule covers 1h (no common bars: skipped) and 1d
    assert len(ports.bus.of_type("correlation.updated")) == 2
    assert [s["skipped"] is None for s in scheduled["snapshots"]] == [False, True]
    assert {key[1] for key in ports.store.correlations} == {"ewma", "ledoit_wolf", "dcc"}
