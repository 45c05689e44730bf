"""risk: the EventBridge schedule and ``fill.recorded`` (SQS) → VaR/CVaR, stress, limits; breaches alert.

Two event shapes reach this function: a scheduled EventBridge event (one measurement, idempotent on
the event id) and an SQS batch of ``fill.recorded`` envelopes (one measurement per record, each
idempotent on the envelope id, failures reported per record). A breach publishes ``risk.breached``,
alerts through SNS and, when hard, latches the kill switch.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.idempotency import (
    idempotent_function,
)
from aws_lambda_powertools.utilities.parser import parse
from aws_lambda_powertools.utilities.parser.models import EventBridgeModel
from aws_lambda_powertools.utilities.typing import LambdaContext

from desk import wiring
from desk.domain.errors import InvalidEvent
from desk.events import Envelope
from desk.observability import logger, metrics, tracer
from desk.usecases.risk import RiskConfig, measure_risk

processor = BatchProcessor(event_type=EventType.SQS)


# One idempotency store and config for every handler (desk.wiring); named here for tests.
persistence = wiring.idempotency_persistence
idempotency_config = wiring.idempotency_config


@cache
def risk_config() -> RiskConfig:
    return RiskConfig()


def measure(trigger: dict[str, Any]) -> dict[str, Any]:
    report = measure_risk(
        store=wiring.store(),
        quotes=wiring.quote_cache(),
        bus=wiring.event_bus(),
        alerts=wiring.alerts(),
        clock=wiring.clock(),
        config=risk_config(),
        correlation_id=trigger["correlation_id"],
    )
    metrics.add_metric(name="VaR", unit=MetricUnit.NoUnit, value=report.snapshot.var)
    metrics.add_metric(name="CVaR", unit=MetricUnit.NoUnit, value=report.snapshot.cvar)
    metrics.add_metric(name="RiskBreaches", unit=MetricUnit.Count, value=len(report.breaches))
    if report.breaches:
        logger.warning("risk limits breached", extra=report.summary())
    return report.summary()


def _once(trigger: dict[str, Any]) -> dict[str, Any]:
    once = idempotent_function(
        data_keyword_argument="trigger",
        persistence_store=persistence(),
        config=idempotency_config(),
        key_prefix="risk",
    )(measure)
    result: dict[str, Any] = once(trigger=trigger)
    return result


def record_handler(record: SQSRecord) -> dict[str, Any]:
    envelope = Envelope.from_sqs_record(record.raw_event)
    logger.append_keys(correlation_id=envelope.correlation_id, event_id=envelope.id)
    if envelope.type != "fill.recorded":
        raise InvalidEvent(f"risk consumes fill.recorded, not {envelope.type}")
    return _once({"id": envelope.id, "correlation_id": envelope.correlation_id})


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    idempotency_config().register_lambda_context(context)
    if "Records" in event:
        return dict(
            process_partial_response(event=event, record_handler=record_handler, processor=processor, context=context)
        )
    scheduled = parse(event=event, model=EventBridgeModel)
    logger.append_keys(correlation_id=scheduled.id, event_id=scheduled.id)
    return _once({"id": scheduled.id, "correlation_id": scheduled.id})
