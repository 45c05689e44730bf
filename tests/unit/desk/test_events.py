"""desk.events: the envelope, the registry, JSON round trips, EventBridge and SQS shapes, samples."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from desk.domain.errors import InvalidEvent, UnknownEventType
from desk.events import REGISTRY, Envelope, EventRegistry, new_event
from desk.schemas import BarsIngested, DeskModel, FillRecord, QuoteStale

EVENTS_DIR = Path(__file__).resolve().parents[3] / "events"
T0 = datetime(2024, 3, 1, 12, 0, tzinfo=UTC)
REQUIRED_TYPES = {
    "bars.ingested",
    "regime.changed",
    "correlation.updated",
    "signal.generated",
    "plan.created",
    "order.completed",
    "fill.recorded",
    "risk.breached",
    "quote.stale",
    "feed.recovered",
}


class FixedClock:
    def __init__(self, at: datetime) -> None:
        self.at = at

    def now(self) -> datetime:
        return self.at


def _fill() -> FillRecord:
    return FillRecord(
        venue="binance",
        venue_trade_id="3417845521",
        client_order_id="ldplan-0",
        symbol="BTC/USDT",
        side="buy",  # type: ignore[arg-type]
        quantity=Decimal("0.00600"),
        price=Decimal("61240.01"),
        occurred_at=T0,
        fee=Decimal("0.000006"),
        fee_currency="BTC",
    )


def _eventbridge(entry: dict[str, Any]) -> dict[str, Any]:
    """What EventBridge delivers to a rule target for a PutEvents entry."""
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": entry["DetailType"],
        "source": entry["Source"],
        "account": "123456789012",
        "time": "2024-03-01T12:00:00Z",
        "region": "eu-west-1",
        "resources": [],
        "detail": json.loads(entry["Detail"]),
    }


def test_new_event_fills_in_the_envelope() -> None:
    # Given fill data and a clock
    # When an event is built without id or correlation id
    event = new_event("fill.recorded", _fill(), clock=FixedClock(T0))
    # Then the id is a uuid4, the chain starts at this event, and the time is the clock's
    assert uuid.UUID(event.id).version == 4
    assert event.correlation_id == event.id and event.occurred_at == T0
    assert (event.type, event.version) == ("fill.recorded", 1)
    assert event.data_as(FillRecord).price == Decimal("61240.01")


def test_an_explicit_time_wins_and_no_time_at_all_is_an_error() -> None:
    later = datetime(2024, 3, 2, tzinfo=UTC)
    assert new_event("fill.recorded", _fill(), occurred_at=later, clock=FixedClock(T0)).occurred_at == later
    with pytest.raises(InvalidEvent, match="clock"):
        new_event("fill.recorded", _fill())


def test_data_must_be_the_registered_model() -> None:
    stale = QuoteStale(venue="binance", symbol="BTC/USDT", last_quote_at=None, detected_at=T0, max_age_seconds=5)
    with pytest.raises(InvalidEvent, match="FillRecord"):
        new_event("fill.recorded", stale, occurred_at=T0)
    # And a mapping is validated into the model
    event = new_event("quote.stale", stale.model_dump(), occurred_at=T0, correlation_id="c-1", event_id="e-1")
    assert event.data == stale and (event.id, event.correlation_id) == ("e-1", "c-1")


def test_json_round_trip_keeps_decimals_exact_as_strings() -> None:
    # Given an event carrying Decimals
    event = new_event("fill.recorded", _fill(), occurred_at=T0)
    # When serialised and parsed back
    text = event.to_json()
    parsed = Envelope.parse(text)
    # Then it is equal, and the JSON holds Decimals as strings
    assert parsed == event
    assert json.loads(text)["data"]["quantity"] == "0.006"
    assert Envelope.parse(text.encode()) == event


@pytest.mark.parametrize(
    ("mutate", "error"),
    [
        (lambda e: e | {"type": "bars.vanished"}, UnknownEventType),
        (lambda e: e | {"version": 99}, UnknownEventType),
        (lambda e: {k: v for k, v in e.items() if k != "version"}, InvalidEvent),
        (lambda e: e | {"version": True}, InvalidEvent),
        (lambda e: e | {"data": e["data"] | {"quantity": "-1"}}, ValidationError),
        (lambda e: e | {"occurred_at": "2024-03-01T12:00:00"}, ValidationError),
        (lambda e: e | {"extra": 1}, ValidationError),
    ],
)
def test_bad_envelopes_raise_typed_errors(mutate: Any, error: type[Exception]) -> None:
    raw = json.loads(new_event("fill.recorded", _fill(), occurred_at=T0).to_json())
    with pytest.raises(error):
        Envelope.parse(mutate(raw))


@pytest.mark.parametrize("raw", ["not json", "[1, 2]", b"\xff"])
def test_non_objects_are_invalid_events(raw: str | bytes) -> None:
    with pytest.raises(InvalidEvent):
        Envelope.parse(raw)


def test_eventbridge_entry_and_delivery_round_trip() -> None:
    # Given an event
    event = new_event("fill.recorded", _fill(), occurred_at=T0, correlation_id="plan-1")
    # When it becomes a PutEvents entry
    entry = event.to_eventbridge_entry("lambda-desk.orders", bus_name="desk-dev")
    # Then DetailType is the event type and Detail the envelope JSON
    assert entry["Source"] == "lambda-desk.orders" and entry["DetailType"] == "fill.recorded"
    assert entry["EventBusName"] == "desk-dev" and entry["Time"] == T0
    assert json.loads(entry["Detail"])["id"] == event.id
    # And what EventBridge delivers, directly or through SQS, parses back to the same event
    delivered = _eventbridge(entry)
    assert Envelope.from_eventbridge(delivered) == event
    assert Envelope.from_sqs_record({"messageId": "m-1", "body": json.dumps(delivered)}) == event


def test_malformed_transport_wrappers_are_rejected() -> None:
    entry = new_event("fill.recorded", _fill(), occurred_at=T0).to_eventbridge_entry("src")
    with pytest.raises(InvalidEvent, match="disagrees"):
        Envelope.from_eventbridge(_eventbridge(entry) | {"detail-type": "quote.stale"})
    with pytest.raises(InvalidEvent):
        Envelope.from_eventbridge({"detail": {}})
    with pytest.raises(InvalidEvent):
        Envelope.from_sqs_record({"body": "{"})
    with pytest.raises(InvalidEvent):
        Envelope.from_sqs_record({})


def test_entries_over_the_eventbridge_size_limit_are_refused() -> None:
    registry = EventRegistry()

    @registry.register("test.big")
    class Big(DeskModel):
        blob: str

    event = registry.new_event("test.big", Big(blob="x" * 300_000), occurred_at=T0)
    with pytest.raises(InvalidEvent, match="limit"):
        event.to_eventbridge_entry("src")


def test_a_registry_maps_type_and_version_to_one_model() -> None:
    # Given a fresh registry with two versions of one event type
    registry = EventRegistry()

    @registry.register("test.thing", 1)
    class ThingV1(DeskModel):
        a: int

    @registry.register("test.thing", 2)
    class ThingV2(DeskModel):
        a: int
        b: int

    # Then new events default to the latest version, and each version parses with its own model
    v2 = registry.new_event("test.thing", {"a": 1, "b": 2}, occurred_at=T0)
    v1 = registry.new_event("test.thing", {"a": 1}, occurred_at=T0, version=1)
    assert isinstance(registry.parse(v2.to_json()).data, ThingV2)
    assert isinstance(registry.parse(v1.to_json()).data, ThingV1)
    # And a second model for the same pair, or a malformed name, is refused
    with pytest.raises(ValueError, match="already registered"):
        registry.register("test.thing", 1)(ThingV2)
    with pytest.raises(ValueError):
        registry.register("NoDots", 1)
    # And the default registry does not know test types
    with pytest.raises(UnknownEventType):
        REGISTRY.model_for("test.thing", 1)
    with pytest.raises(InvalidEvent, match="BarsIngested"):
        v2.data_as(BarsIngested)


def test_the_catalogue_covers_the_required_event_types() -> None:
    assert {t for t, _ in REGISTRY.types()} >= REQUIRED_TYPES


def test_every_sample_event_parses_with_its_model() -> None:
    # Given the sample payloads under events/, one per event type
    samples = sorted(EVENTS_DIR.glob("*.json"))
    assert {p.stem for p in samples} >= REQUIRED_TYPES
    for path in samples:
        raw = path.read_text()
        # When parsed, Then the type matches the file, the data is the registered model, and it round-trips
        event = Envelope.parse(raw)
        assert event.type == path.stem
        assert isinstance(event.data, REGISTRY.model_for(event.type, event.version))
        assert Envelope.parse(event.to_json()) == event
