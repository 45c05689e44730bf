"""What every SQS-driven handler does with one record, in one place.

A record's envelope tags the logs with its correlation and event ids, then the handler's work runs
at most once per event id (Powertools idempotency on the shared DynamoDB table, one key prefix per
function), so a redelivered message returns the stored result instead of repeating side effects.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aws_lambda_powertools.utilities.idempotency import idempotent_function

from desk import wiring
from desk.events import Envelope
from desk.observability import logger

Work = Callable[..., dict[str, Any]]


def run_once(envelope: Envelope, work: Work, *, key_prefix: str) -> dict[str, Any]:
    """Run ``work(event=<envelope as JSON>, envelope=envelope)`` once per envelope id."""
    logger.append_keys(correlation_id=envelope.correlation_id, event_id=envelope.id)
    once = idempotent_function(
        data_keyword_argument="event",
        persistence_store=wiring.idempotency_persistence(),
        config=wiring.idempotency_config(),
        key_prefix=key_prefix,
    )(work)
    result: dict[str, Any] = once(event=envelope.model_dump(mode="json"), envelope=envelope)
    return result
