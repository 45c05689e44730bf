"""api: API Gateway HTTP API (payload v2) → the desk's resolver (:mod:`desk.api.app`).

The same function also receives the internal job events it sends itself for large backtests
(``{"desk_job": "backtest", "job_id": ...}``, asynchronous invocations): those go to
:mod:`desk.api.worker`, which runs the job and stores its outcome in Redis before returning.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from desk.api.app import app
from desk.api.worker import handle_job_event, is_job_event
from desk.observability import logger, metrics, tracer


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP, clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    if is_job_event(event):
        return handle_job_event(event)
    return app.resolve(event, context)
