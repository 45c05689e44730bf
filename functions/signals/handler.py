"""signals: ``regime.changed`` / ``correlation.updated`` (SQS) → strategies run → ``signal.generated``.

A record that raises is reported as a batch item failure (retried, then dead-lettered); each
envelope id is processed once (Powertools idempotency on DynamoDB), and the signals themselves are
idempotent on their deterministic ids, so a redelivery after the idempotency record expired is
harmless too.
"""

from __future__ import annotations

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
from desk.usecases.signals import run_signals
from desk.usecases.strategies import enabled_strategies

processor = BatchProcessor(event_type=EventType.SQS)


# One idempotency store and config for every handler (desk.wiring); named here for tests.
persistence = wiring.idempotency_persistence
idempotency_config = wiring.idempotency_config


def generate(event: dict[str, Any], envelope: Envelope) -> dict[str, Any]:
    run = run_signals(
        envelope,
        store=wiring.store(),
        bus=wiring.event_bus(),
        clock=wiring.clock(),
        strategies=enabled_strategies(),
    )
    metrics.add_metric(name="SignalsGenerated", unit=MetricUnit.Count, value=len(run.signals))
    metrics.add_metric(name="SignalsStored", unit=MetricUnit.Count, value=run.stored)
    if run.waiting:
        logger.info("strategies waiting for bars", extra={"strategies": list(run.waiting)})
    return run.summary()


def record_handler(record: SQSRecord) -> dict[str, Any]:
    return run_once(Envelope.from_sqs_record(record.raw_event), generate, key_prefix="signals")


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    idempotency_config().register_lambda_context(context)
    return process_partial_response(event=event, record_handler=record_handler, processor=processor, context=context)
