"""correlation: hourly schedule (every timeframe) or ``bars.ingested`` on SQS (that timeframe) → snapshots.

Both triggers are idempotent on their event id (Powertools idempotency on DynamoDB). On SQS, a
batch of ``bars.ingested`` for several symbols of one timeframe and bar computes the matrix once;
a record that raises is reported as a batch item failure (retried, then dead-lettered).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.idempotency import (
    idempotent_function,
)
from aws_lambda_powertools.utilities.parser import parse
from aws_lambda_powertools.utilities.parser.models import EventBridgeModel
from aws_lambda_powertools.utilities.typing import LambdaContext

from desk import wiring
from desk.events import Envelope
from desk.observability import logger, metrics, tracer
from desk.schemas.market import BarsIngested
from desk.settings import get_settings
from desk.usecases.correlation import CorrelationResult, run_correlation
from desk.usecases.ingest import STEPS
from desk.usecases.universe import parse_universe

processor = BatchProcessor(event_type=EventType.SQS)


# One idempotency store and config for every handler (desk.wiring); named here for tests.
persistence = wiring.idempotency_persistence
idempotency_config = wiring.idempotency_config


def _once(function: Any) -> Any:
    return idempotent_function(
        data_keyword_argument="event",
        persistence_store=persistence(),
        config=idempotency_config(),
        key_prefix="correlation",
    )(function)


def _correlate(timeframe: str, end: datetime | None, correlation_id: str) -> CorrelationResult:
    result = run_correlation(
        timeframe,
        parse_universe(get_settings().universe),
        store=wiring.store(),
        bus=wiring.event_bus(),
        clock=wiring.clock(),
        end=end,
        correlation_id=correlation_id,
    )
    if result.skipped:
        logger.info("correlation skipped", extra={"timeframe": timeframe, "reason": result.skipped})
    else:
        metrics.add_metric(name="CorrelationSnapshots", unit=MetricUnit.Count, value=len(result.snapshots))
        logger.info(
            "correlation updated",
            extra={
                "timeframe": timeframe,
                "pca_explained": result.pca_explained,
                "diversification_ratio": result.diversification_ratio,
                "failures": result.failures,
            },
        )
    return result


def _summary(result: CorrelationResult) -> dict[str, Any]:
    return {
        "timeframe": result.timeframe,
        "methods": sorted(result.snapshots),
        "skipped": result.skipped,
        "event_id": result.event.id if result.event else None,
    }


def on_schedule(event: dict[str, Any]) -> list[dict[str, Any]]:
    """Every timeframe of the universe, up to now."""
    timeframes = parse_universe(get_settings().universe).timeframes()
    return [_summary(_correlate(tf, None, str(event["id"]))) for tf in timeframes]


def _record_handler(done: dict[tuple[str, datetime], dict[str, Any]]) -> Any:
    def on_bars(event: dict[str, Any], envelope: Envelope) -> dict[str, Any]:
        ingested = envelope.data_as(BarsIngested)
        key = (ingested.timeframe, ingested.last_ts + STEPS[ingested.timeframe])
        if key not in done:  # the batch's other symbols at the same bar share one computation
            done[key] = _summary(_correlate(key[0], key[1], envelope.correlation_id))
        return done[key]

    def record_handler(record: SQSRecord) -> dict[str, Any]:
        envelope = Envelope.from_sqs_record(record.raw_event)
        logger.append_keys(correlation_id=envelope.correlation_id, event_id=envelope.id)
        result: dict[str, Any] = _once(on_bars)(event=envelope.model_dump(mode="json"), envelope=envelope)
        return result

    return record_handler


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse | dict[str, Any]:
    idempotency_config().register_lambda_context(context)
    if "Records" in event:
        return process_partial_response(
            event=event, record_handler=_record_handler({}), processor=processor, context=context
        )
    scheduled = parse(event=event, model=EventBridgeModel)
    logger.append_keys(correlation_id=scheduled.id)
    results: list[dict[str, Any]] = _once(on_schedule)(event=scheduled.model_dump(mode="json", by_alias=True))
    return {"snapshots": results}
