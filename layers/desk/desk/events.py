"""The event envelope, the registry of event types, and the EventBridge / SQS wire shapes.

Every domain event is ``{type, version, id, occurred_at, correlation_id, data}``:

* ``type`` names what happened (``fill.recorded``); ``version`` is the integer version of ``data``'s
  schema. A registry maps ``(type, version)`` to the pydantic model of ``data``; parsing an unknown
  pair raises :class:`UnknownEventType`, so a consumer never guesses at a shape it does not know.
* ``id`` is a uuid4 string unless given; consumers use it as the idempotency key.
* ``occurred_at`` is when it happened, UTC. It comes from the caller or a :class:`~desk.ports.Clock`
  passed in; nothing here reads the system clock, so a replay clock drives the same code.
* ``correlation_id`` threads a chain of events (bars → signal → plan → orders → fills); a new chain
  starts with ``correlation_id == id``.

On EventBridge the whole envelope is the ``Detail`` (JSON; Decimals as strings) and ``DetailType``
is ``type``, so rules can route on ``detail-type`` and consumers parse one shape whether the event
arrives directly, from EventBridge, or from SQS behind an EventBridge rule.
"""

from __future__ import annotations

import builtins
import json
import re
import uuid
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

from pydantic import Field, SerializeAsAny

from desk.domain.errors import InvalidEvent, UnknownEventType
from desk.schemas.analytics import CorrelationSnapshot, RegimeChanged, RiskBreach, Signal
from desk.schemas.base import DeskModel, Identifier, UtcDatetime
from desk.schemas.market import BarsIngested, FeedRecovered, QuoteStale
from desk.schemas.trading import ExecutionPlan, FillRecord, OrderCompleted

if TYPE_CHECKING:
    from desk.ports import Clock

__all__ = [
    "EVENTBRIDGE_MAX_ENTRY_BYTES",
    "REGISTRY",
    "Envelope",
    "EventRegistry",
    "event_type",
    "new_event",
]

M = TypeVar("M", bound=DeskModel)
_TYPE_PATTERN = r"[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+"
_TYPE_NAME = re.compile(_TYPE_PATTERN)
EventTypeName = Annotated[str, Field(pattern=f"^{_TYPE_PATTERN}$", max_length=64)]
# PutEvents counts Time, Source, DetailType, Detail and Resources against 256 KiB per entry.
EVENTBRIDGE_MAX_ENTRY_BYTES = 256 * 1024
_TIME_BYTES = 14


class Envelope(DeskModel):
    """One domain event. Build with :func:`new_event`; read with :meth:`parse` and friends."""

    type: EventTypeName
    version: Annotated[int, Field(ge=1)]
    id: Identifier
    occurred_at: UtcDatetime
    correlation_id: Identifier
    # SerializeAsAny: serialise the concrete data model, not the (empty) DeskModel base.
    data: SerializeAsAny[DeskModel]

    @classmethod
    def parse(cls, raw: str | bytes | Mapping[str, Any]) -> Envelope:
        """Parse a JSON text or dict with the default :data:`REGISTRY` (see :meth:`EventRegistry.parse`)."""
        return REGISTRY.parse(raw)

    @classmethod
    def from_eventbridge(cls, event: Mapping[str, Any]) -> Envelope:
        """Parse an EventBridge event (``{"detail-type": ..., "detail": {envelope}, ...}``)."""
        return REGISTRY.from_eventbridge(event)

    @classmethod
    def from_sqs_record(cls, record: Mapping[str, Any]) -> Envelope:
        """Parse an SQS record whose ``body`` is an EventBridge event (an EventBridge → SQS rule target)."""
        return REGISTRY.from_sqs_record(record)

    def data_as(self, model: builtins.type[M]) -> M:  # the field ``type`` shadows the builtin here
        """``data`` typed as ``model``; :class:`InvalidEvent` if it is another model."""
        if not isinstance(self.data, model):
            raise InvalidEvent(f"event {self.type} carries {self.data.__class__.__name__}, not {model.__name__}")
        return self.data

    def to_json(self) -> str:
        return self.model_dump_json()

    def to_eventbridge_entry(self, source: str, bus_name: str | None = None) -> dict[str, Any]:
        """A ``PutEvents`` entry: ``Source``, ``DetailType`` = type, ``Detail`` = envelope JSON, ``Time``.

        Raises :class:`InvalidEvent` if the entry exceeds EventBridge's 256 KiB limit (put large
        payloads in the store and send a reference instead).
        """
        detail = self.to_json()
        size = _TIME_BYTES + len(source.encode()) + len(self.type.encode()) + len(detail.encode())
        if size > EVENTBRIDGE_MAX_ENTRY_BYTES:
            raise InvalidEvent(f"event {self.id} ({self.type}) is {size} bytes, over the EventBridge limit")
        entry: dict[str, Any] = {"Source": source, "DetailType": self.type, "Detail": detail, "Time": self.occurred_at}
        if bus_name is not None:
            entry["EventBusName"] = bus_name
        return entry


class EventRegistry:
    """Maps ``(type, version)`` to the data model; parses and builds envelopes against it."""

    def __init__(self) -> None:
        self._models: dict[tuple[str, int], type[DeskModel]] = {}

    def register(self, type_: str, version: int = 1) -> Callable[[type[M]], type[M]]:
        """Class decorator: ``@registry.register("fill.recorded", 1)``. Re-registering a pair with
        another model raises ``ValueError`` (two shapes for one name would make parsing ambiguous)."""
        if version < 1 or len(type_) > 64 or not _TYPE_NAME.fullmatch(type_):
            raise ValueError(f"invalid event type/version {type_!r}/{version!r}")

        def decorate(model: type[M]) -> type[M]:
            current = self._models.setdefault((type_, version), model)
            if current is not model:
                raise ValueError(f"{type_} v{version} is already registered to {current.__name__}")
            return model

        return decorate

    def model_for(self, type_: str, version: int) -> type[DeskModel]:
        try:
            return self._models[(type_, version)]
        except KeyError:
            raise UnknownEventType(type_, version) from None

    def latest_version(self, type_: str) -> int:
        versions = [v for t, v in self._models if t == type_]
        if not versions:
            raise UnknownEventType(type_, None)
        return max(versions)

    def types(self) -> frozenset[tuple[str, int]]:
        return frozenset(self._models)

    def new_event(
        self,
        type_: str,
        data: DeskModel | Mapping[str, Any],
        *,
        occurred_at: datetime | None = None,
        clock: Clock | None = None,
        correlation_id: str | None = None,
        event_id: str | None = None,
        version: int | None = None,
    ) -> Envelope:
        """Build an envelope; see :func:`new_event`."""
        version = self.latest_version(type_) if version is None else version
        model = self.model_for(type_, version)
        if isinstance(data, Mapping):
            data = model.model_validate(data)
        elif not isinstance(data, model):
            raise InvalidEvent(f"{type_} v{version} carries {model.__name__}, got {type(data).__name__}")
        if occurred_at is None:
            if clock is None:
                raise InvalidEvent("new_event needs occurred_at or a clock: the domain never reads the system clock")
            occurred_at = clock.now()
        event_id = event_id or str(uuid.uuid4())
        return Envelope(
            type=type_,
            version=version,
            id=event_id,
            occurred_at=occurred_at,
            correlation_id=correlation_id or event_id,
            data=data,
        )

    def parse(self, raw: str | bytes | Mapping[str, Any]) -> Envelope:
        """Validate an envelope and its ``data`` against the registered model.

        Raises
        ------
        InvalidEvent
            Not JSON, not an object, or no ``type``/``version``.
        UnknownEventType
            ``(type, version)`` is not registered.
        pydantic.ValidationError
            The header or the data do not match their models.
        """
        obj = _load_object(raw, "envelope")
        type_, version = obj.get("type"), obj.get("version")
        if not isinstance(type_, str) or isinstance(version, bool) or not isinstance(version, int):
            raise InvalidEvent("an envelope needs a string 'type' and an integer 'version'")
        model = self.model_for(type_, version)
        data = model.model_validate(obj.get("data"))
        return Envelope.model_validate({**obj, "data": data})

    def from_eventbridge(self, event: Mapping[str, Any]) -> Envelope:
        detail, detail_type = event.get("detail"), event.get("detail-type")
        if detail is None or not isinstance(detail_type, str):
            raise InvalidEvent("not an EventBridge event: 'detail' and 'detail-type' are required")
        envelope = self.parse(detail)
        if envelope.type != detail_type:
            raise InvalidEvent(f"detail-type {detail_type!r} disagrees with envelope type {envelope.type!r}")
        return envelope

    def from_sqs_record(self, record: Mapping[str, Any]) -> Envelope:
        body = record.get("body")
        if not isinstance(body, str):
            raise InvalidEvent("not an SQS record: 'body' must be a string")
        return self.from_eventbridge(_load_object(body, "SQS body"))


def _load_object(raw: str | bytes | Mapping[str, Any], what: str) -> Mapping[str, Any]:
    if isinstance(raw, str | bytes):
        try:
            raw = json.loads(raw)
        except ValueError as exc:
            raise InvalidEvent(f"{what} is not valid JSON: {exc}") from None
    if not isinstance(raw, Mapping):
        raise InvalidEvent(f"{what} must be a JSON object, got {type(raw).__name__}")
    return raw


REGISTRY = EventRegistry()


def event_type(type_: str, version: int = 1) -> Callable[[type[M]], type[M]]:
    """Register a data model in the default registry: ``@event_type("quote.stale", 1)``."""
    return REGISTRY.register(type_, version)


def new_event(
    type_: str,
    data: DeskModel | Mapping[str, Any],
    *,
    occurred_at: datetime | None = None,
    clock: Clock | None = None,
    correlation_id: str | None = None,
    event_id: str | None = None,
    version: int | None = None,
) -> Envelope:
    """Build an envelope in the default registry.

    ``data`` is the registered model (or a mapping validated into it). ``occurred_at`` is taken as
    given, else from ``clock.now()``; with neither, :class:`InvalidEvent` (no hidden clock read).
    ``version`` defaults to the latest registered one; ``correlation_id`` to the new event's id.
    """
    return REGISTRY.new_event(
        type_,
        data,
        occurred_at=occurred_at,
        clock=clock,
        correlation_id=correlation_id,
        event_id=event_id,
        version=version,
    )


# The desk's event catalogue, version 1. A breaking change to a data model registers version 2
# beside it; consumers parse both until every producer has moved.
for _type, _model in (
    ("bars.ingested", BarsIngested),
    ("regime.changed", RegimeChanged),
    ("correlation.updated", CorrelationSnapshot),
    ("signal.generated", Signal),
    ("plan.created", ExecutionPlan),
    ("order.completed", OrderCompleted),
    ("fill.recorded", FillRecord),
    ("risk.breached", RiskBreach),
    ("quote.stale", QuoteStale),
    ("feed.recovered", FeedRecovered),
):
    event_type(_type, 1)(_model)
