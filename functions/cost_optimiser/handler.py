"""cost-optimiser: ``signal.generated`` (SQS) → execution plan stored → order-placement execution started.

A record that raises is reported as a batch item failure (retried, then dead-lettered); each
envelope id is processed once (Powertools idempotency on DynamoDB). Beneath that, the plan id is
derived from the signal and names the execution, so even a late redelivery starts nothing new.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from desk import wiring
from desk.domain.errors import InvalidEvent
from desk.events import Envelope
from desk.handlers import run_once
from desk.observability import logger, metrics, tracer
from desk.usecases.cost_optimiser import optimise
from desk.usecases.strategies import enabled_strategies

processor = BatchProcessor(event_type=EventType.SQS)


# One idempotency store and config for every handler (desk.wiring); named here for tests.
persistence = wiring.idempotency_persistence
idempotency_config = wiring.idempotency_config


def plan(event: dict[str, Any], envelope: Envelope) -> dict[str, Any]:
    if envelope.type != "signal.generated":
        raise InvalidEvent(f"cost-optimiser consumes signal.generated, not {envelope.type}")
    outcome = optimise(
        envelope,
        store=wiring.store(),
        quotes=wiring.quote_cache(),
        market_data=wiring.market_data,
        starter=wiring.execution_starter(),
        bus=wiring.event_bus(),
        clock=wiring.clock(),
        strategies=enabled_strategies(),
    )
    metrics.add_metric(name="PlansCreated", unit=MetricUnit.Count, value=int(outcome.created))
    if outcome.plan is not None and outcome.plan.expected_cost_bps is not None:
        metrics.add_metric(name="PlanExpectedCostBps", unit=MetricUnit.NoUnit, value=outcome.plan.expected_cost_bps)
    if outcome.reason:
        logger.info("no plan", extra={"reason": outcome.reason, "signal_id": outcome.signal_id})
    return outcome.summary()


def record_handler(record: SQSRecord) -> dict[str, Any]:
    return run_once(Envelope.from_sqs_record(record.raw_event), plan, key_prefix="cost_optimiser")


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    idempotency_config().register_lambda_context(context)
    return process_partial_response(event=event, record_handler=record_handler, processor=processor, context=context)
