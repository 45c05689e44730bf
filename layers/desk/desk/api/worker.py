"""The API function's other entry point: the internal job events it sends itself (see :mod:`desk.api.jobs`).

``functions/api/handler.py`` passes every event that is not an HTTP event here. The ports are the
routes' own (``desk.api.deps``), with ``app.dependency_overrides`` honoured as the resolver does, so
the local server and tests run jobs on the same adapters as the requests that queued them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar, cast

from pydantic import ValidationError

from desk.api import deps
from desk.api.app import app
from desk.api.jobs import parse_job_event
from desk.api.routers.strategy import run_backtest_job
from desk.observability import logger

__all__ = ["handle_job_event", "is_job_event"]

T = TypeVar("T")


def _port(dependency: Callable[[], T]) -> T:
    return cast(T, app.dependency_overrides.get(dependency, dependency)())


def is_job_event(event: Any) -> bool:
    """An internal job event (``{"desk_job": ...}``), not an API Gateway one."""
    return isinstance(event, dict) and "desk_job" in event and "requestContext" not in event


def handle_job_event(event: dict[str, Any]) -> dict[str, Any]:
    """Run the job the event names, once; a malformed event or an unknown job is logged and ignored."""
    try:
        parsed = parse_job_event(event)
    except ValidationError as exc:
        logger.error("malformed job event ignored", extra={"event": event, "errors": exc.errors(include_url=False)})
        return {"status": "ignored"}
    if parsed is None:
        logger.error("not a job event", extra={"event": event})
        return {"status": "ignored"}
    logger.append_keys(job_id=parsed.job_id)
    status = run_backtest_job(_port(deps.store), _port(deps.redis_client), parsed.job_id)
    return {"desk_job": parsed.desk_job, "job_id": parsed.job_id, "status": status}
