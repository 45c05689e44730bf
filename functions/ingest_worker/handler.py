"""ingest-worker: one ``ingest.requested`` job per SQS record → bars stored, quote refreshed, ``bars.ingested``.

Partial batch failures: a record that raises (poison message, venue error, rate limit) is reported
in ``batchItemFailures`` so SQS retries only it and finally moves it to the DLQ. Each job runs once
per envelope id (Powertools idempotency on DynamoDB), so a duplicate delivery changes nothing.
"""

from __future__ import annotations

import json
import time
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from desk import wiring
from desk.events import Envelope
from desk.handlers import run_once
from desk.observability import logger, metrics, tracer
from desk.usecases.ingest import GapLog, IngestJob, InstrumentLog, run_ingest

processor = BatchProcessor(event_type=EventType.SQS)


# One idempotency store and config for every handler (desk.wiring); named here for tests.
persistence = wiring.idempotency_persistence
idempotency_config = wiring.idempotency_config


def envelope_of(record: SQSRecord) -> Envelope:
    """The planner sends envelopes straight to the queue; an EventBridge rule target wraps them."""
    body = json.loads(record.body)
    if isinstance(body, dict) and "detail-type" in body:
        return Envelope.from_eventbridge(body)
    return Envelope.parse(body)


def ingest(event: dict[str, Any], envelope: Envelope) -> dict[str, Any]:
    job = envelope.data_as(IngestJob)
    store = wiring.store()
    result = run_ingest(
        job,
        store=store,
        market_data=wiring.market_data(job.venue),
        cache=wiring.quote_cache(),
        bus=wiring.event_bus(),
        clock=wiring.clock(),
        gap_log=store if isinstance(store, GapLog) else None,
        instrument_log=store if isinstance(store, InstrumentLog) else None,
        correlation_id=envelope.correlation_id,
        sleep=time.sleep,
    )
    metrics.add_metric(name="BarsIngested", unit=MetricUnit.Count, value=result.stored)
    metrics.add_metric(name="BarsRejected", unit=MetricUnit.Count, value=len(result.rejections))
    metrics.add_metric(name="GapsRecorded", unit=MetricUnit.Count, value=len(result.gaps))
    if result.lag is not None:
        metrics.add_metric(name="IngestLag", unit=MetricUnit.Seconds, value=result.lag.total_seconds())
    if result.rejections or result.gaps:
        logger.warning(
            "bars rejected or missing",
            extra={"rejected": result.rejected_by_reason, "gaps": [g.model_dump(mode="json") for g in result.gaps]},
        )
    return {
        "stored": result.stored,
        "rejected": len(result.rejections),
        "gaps": len(result.gaps),
        "complete": result.complete,
        "event_id": result.event.id if result.event else None,
    }


def record_handler(record: SQSRecord) -> dict[str, Any]:
    return run_once(envelope_of(record), ingest, key_prefix="ingest_worker")


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    idempotency_config().register_lambda_context(context)
    return process_partial_response(event=event, record_handler=record_handler, processor=processor, context=context)
