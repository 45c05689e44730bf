"""ingest-planner: the EventBridge schedule → one ``ingest.requested`` per series on the ingest-jobs queue.

Idempotent on the schedule event id (Powertools idempotency on DynamoDB); the job ids are also
derived from the series and the minute, so even a re-run enqueues ids the worker has seen.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.idempotency import (
    idempotent_function,
)
from aws_lambda_powertools.utilities.parser import parse
from aws_lambda_powertools.utilities.parser.models import EventBridgeModel
from aws_lambda_powertools.utilities.typing import LambdaContext

from desk import wiring
from desk.events import Envelope
from desk.observability import logger, metrics, tracer
from desk.settings import get_settings
from desk.usecases.ingest import JobSender, plan_ingest
from desk.usecases.universe import parse_universe

# One idempotency store and config for every handler (desk.wiring); named here for tests.
persistence = wiring.idempotency_persistence
idempotency_config = wiring.idempotency_config


@cache
def job_sender() -> JobSender:
    """Sends job envelopes to the ingest-jobs queue, keyed by envelope id (built on first use)."""
    from desk.aws.queues import send_messages

    queue_url = get_settings().ingest_queue_url

    def send(jobs: Sequence[Envelope]) -> None:
        send_messages(queue_url, {job.id: job.to_json() for job in jobs})

    return send


def plan(event: dict[str, Any]) -> dict[str, Any]:
    scheduled = EventBridgeModel.model_validate(event)
    jobs = plan_ingest(
        parse_universe(get_settings().universe), at=scheduled.time, send=job_sender(), correlation_id=scheduled.id
    )
    metrics.add_metric(name="IngestJobsPlanned", unit=MetricUnit.Count, value=len(jobs))
    return {"jobs": [job.id for job in jobs]}


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    scheduled = parse(event=event, model=EventBridgeModel)
    logger.append_keys(correlation_id=scheduled.id)
    idempotency_config().register_lambda_context(context)
    once = idempotent_function(
        data_keyword_argument="event",
        persistence_store=persistence(),
        config=idempotency_config(),
        key_prefix="ingest_planner",
    )(plan)
    result: dict[str, Any] = once(event=scheduled.model_dump(mode="json", by_alias=True))
    return result
