"""regime: ``bars.ingested`` (SQS, from the EventBridge rule) → regime stored; ``regime.changed`` on a change.

A record that raises is reported as a batch item failure (retried, then dead-lettered); each
envelope id is processed once (Powertools idempotency on DynamoDB).
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
from desk.schemas.market import BarsIngested
from desk.settings import get_settings
from desk.usecases.regime import run_regime, thresholds_for
from desk.usecases.universe import parse_universe

processor = BatchProcessor(event_type=EventType.SQS)


# One idempotency store and config for every handler (desk.wiring); named here for tests.
persistence = wiring.idempotency_persistence
idempotency_config = wiring.idempotency_config


def _is_crypto(ingested: BarsIngested) -> bool:
    universe = parse_universe(get_settings().universe)
    for series in universe.series(ingested.timeframe):
        if (series.venue, series.symbol) == (ingested.venue, ingested.symbol):
            return series.asset_class == "crypto"
    return True


def classify(event: dict[str, Any], envelope: Envelope) -> dict[str, Any]:
    ingested = envelope.data_as(BarsIngested)
    result = run_regime(
        ingested,
        store=wiring.store(),
        bus=wiring.event_bus(),
        clock=wiring.clock(),
        thresholds=thresholds_for(ingested.timeframe, crypto=_is_crypto(ingested)),
        correlation_id=envelope.correlation_id,
    )
    metrics.add_metric(name="RegimeChanges", unit=MetricUnit.Count, value=int(result.changed))
    if result.regime is None:
        logger.info("regime still warming up", extra={"bars": result.bars, "symbol": ingested.symbol})
    return {
        "label": result.regime.label if result.regime else None,
        "previous": result.previous,
        "changed": result.changed,
        "event_id": result.event.id if result.event else None,
    }


def record_handler(record: SQSRecord) -> dict[str, Any]:
    return run_once(Envelope.from_sqs_record(record.raw_event), classify, key_prefix="regime")


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    idempotency_config().register_lambda_context(context)
    return process_partial_response(event=event, record_handler=record_handler, processor=processor, context=context)
