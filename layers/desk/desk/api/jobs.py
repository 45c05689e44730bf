"""Background jobs of the API (large backtests): their Redis records, runners and the idempotent executor.

A route that queues a job writes its public record (:class:`BacktestJob`, status ``queued``) and its
input under :func:`job_key` and :func:`input_key`, then hands a :class:`Job` to the ``job_runner``
port. Which runner serves depends on where the API runs:

* in Lambda (``AWS_LAMBDA_FUNCTION_NAME`` is set) the execution environment is frozen once the
  response is sent, so a thread would never finish: :class:`SelfInvokeRunner` invokes the API
  function itself asynchronously (``InvocationType="Event"``) with the small internal event
  ``{"desk_job": "backtest", "job_id": ...}``, which ``functions/api/handler.py`` routes to
  :mod:`desk.api.worker` instead of the HTTP resolver;
* locally (``make api``, tests) :func:`thread_runner` runs the job on a daemon thread.

Either way the job runs through :func:`execute`: it reads the record, does nothing for an unknown or
expired job or one already finished (asynchronous invocations are delivered at least once and
retried), claims it with ``SET NX`` so two deliveries never run it together, and stores the
outcome, ``completed`` with the result or ``failed`` with a reason.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Literal, Protocol

import redis
from botocore.exceptions import BotoCoreError, ClientError
from pydantic import BaseModel, ConfigDict, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from desk.api.errors import ApiError, ServiceUnavailable
from desk.api.models import BacktestJob, BacktestSummary, ErrorBody
from desk.observability import logger

__all__ = [
    "CLAIM_LEASE",
    "JOB_TTL",
    "Job",
    "JobEvent",
    "JobRunner",
    "LambdaRuntime",
    "SelfInvokeRunner",
    "execute",
    "input_key",
    "job_event",
    "job_key",
    "parse_job_event",
    "thread_runner",
]

JOB_TTL = timedelta(hours=24)
CLAIM_LEASE = timedelta(minutes=15)  # the longest a Lambda invocation may run
JobKind = Literal["backtest"]
FINISHED = frozenset({"completed", "failed"})


def job_key(job_id: str) -> str:
    """The job's public record (what ``GET /v1/strategy/backtest/{job_id}`` answers)."""
    return f"desk:api:backtest-job:{job_id}"


def input_key(job_id: str) -> str:
    """The job's input (the validated request), kept beside the record for the worker."""
    return f"desk:api:backtest-job-input:{job_id}"


def claim_key(job_id: str) -> str:
    return f"desk:api:backtest-job-claim:{job_id}"


@dataclass(frozen=True)
class Job:
    """A queued job: what a runner needs to start it here (``run``) or elsewhere (``kind`` and ``job_id``)."""

    kind: JobKind
    job_id: str
    run: Callable[[], object]

    def __call__(self) -> None:
        self.run()


class JobRunner(Protocol):
    """Runs a job after the response is sent (large backtests)."""

    def __call__(self, job: Job) -> None: ...


def thread_runner(job: Job) -> None:
    """The local runner: a daemon thread in this process (``make api``, tests)."""
    threading.Thread(target=job, name=f"desk-api-job-{job.job_id}", daemon=True).start()


class LambdaRuntime(BaseSettings):
    """What the Lambda runtime tells a function about itself (its reserved environment variables)."""

    model_config = SettingsConfigDict(extra="ignore", frozen=True)

    function_name: str = Field(default="", validation_alias="AWS_LAMBDA_FUNCTION_NAME")

    @property
    def in_lambda(self) -> bool:
        return bool(self.function_name)


class JobEvent(BaseModel):
    """The internal event the API function sends itself: never an HTTP event, never from a client."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    desk_job: JobKind
    job_id: str = Field(pattern=r"^[0-9a-f]{32}$")


def job_event(job: Job) -> dict[str, str]:
    return {"desk_job": job.kind, "job_id": job.job_id}


def parse_job_event(event: Any) -> JobEvent | None:
    """The job event in ``event``, or ``None`` when it is not one (an HTTP event goes to the resolver)."""
    if not isinstance(event, dict) or "desk_job" not in event:
        return None
    return JobEvent.model_validate(event)


class SelfInvokeRunner:
    """The Lambda runner: an asynchronous invocation of this same function with the job's event.

    ``function`` is the invoked function's ARN from the Lambda context when there is one (it keeps
    the alias or version that served the request), else the function name from the runtime.
    """

    def __init__(self, function: str, client: Callable[[], Any]) -> None:
        self.function = function
        self.client = client

    def __call__(self, job: Job) -> None:
        payload = json.dumps(job_event(job)).encode()
        try:
            reply = self.client().invoke(FunctionName=self.function, InvocationType="Event", Payload=payload)
        except (ClientError, BotoCoreError) as exc:
            logger.exception("could not start the job", extra={"job_id": job.job_id, "function": self.function})
            raise ServiceUnavailable("the job could not be started; submit it again") from exc
        status = reply.get("StatusCode")
        if status != 202:
            raise ServiceUnavailable(f"the job could not be started (invoke answered {status}); submit it again")
        logger.info("job started", extra={"job_id": job.job_id, "kind": job.kind, "function": self.function})


def _save(cache: redis.Redis, job: BacktestJob) -> None:
    cache.set(job_key(job.job_id), job.model_dump_json(), ex=int(JOB_TTL.total_seconds()))


def fail(cache: redis.Redis, job: BacktestJob, code: str, message: str) -> BacktestJob:
    failed = job.model_copy(update={"status": "failed", "error": ErrorBody(code=code, message=message)})
    _save(cache, failed)
    return failed


def execute(cache: redis.Redis, job_id: str, compute: Callable[[str], BacktestSummary]) -> str:
    """Run job ``job_id`` once, ``compute`` given its stored input; the outcome is its status.

    ``unknown`` (no record: never queued, or expired) and ``skipped`` (already finished, or claimed
    by another delivery) change nothing. Otherwise the record ends ``completed`` or ``failed`` with a
    reason; a job's failure is its record's business, never the invocation's (no retry storms).
    """
    raw = cache.get(job_key(job_id))
    if raw is None:
        logger.warning("unknown or expired job ignored", extra={"job_id": job_id})
        return "unknown"
    job = BacktestJob.model_validate_json(raw)
    if job.status in FINISHED:
        logger.info("job already finished: not run again", extra={"job_id": job_id, "status": job.status})
        return "skipped"
    if not cache.set(claim_key(job_id), "1", nx=True, ex=int(CLAIM_LEASE.total_seconds())):
        logger.info("job already claimed by another delivery", extra={"job_id": job_id})
        return "skipped"
    stored = cache.get(input_key(job_id))
    if stored is None:
        logger.warning("job input missing", extra={"job_id": job_id})
        return fail(cache, job, "internal", "the job's input is missing or expired; submit it again").status
    _save(cache, job.model_copy(update={"status": "running"}))
    try:
        result = compute(stored.decode() if isinstance(stored, bytes) else str(stored))
    except ApiError as exc:
        logger.info("job failed", extra={"job_id": job_id, "code": exc.code, "reason": exc.message})
        return fail(cache, job, exc.code, exc.message).status
    except Exception as exc:  # recorded, not raised: the job is over either way
        logger.exception("job failed", extra={"job_id": job_id})
        return fail(cache, job, "internal", f"the backtest failed ({type(exc).__name__})").status
    done = job.model_copy(update={"status": "completed", "result": result})
    _save(cache, done)
    logger.info("job completed", extra={"job_id": job_id})
    return done.status
