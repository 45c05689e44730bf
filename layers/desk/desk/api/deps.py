"""How routes get their ports: ``Annotated[..., Depends(deps.store)]`` and friends.

Each dependency asks :mod:`desk.wiring` for the cached factory of the same name (``store``,
``quote_cache``, ``redis_client``, ``execution_starter``, ``clock``); until the integrator adds one
there, the fallback here builds the same adapter from the settings. Tests replace any of them with
``app.dependency_overrides[deps.store] = lambda: their_store``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from functools import cache
from typing import Any, TypeVar, cast

import redis
from aws_lambda_powertools.event_handler import Request
from aws_lambda_powertools.event_handler.api_gateway import BaseRouter

from desk import wiring
from desk.api.auth import Claims, claims_from_event
from desk.api.errors import ServiceUnavailable
from desk.api.jobs import JobRunner, LambdaRuntime, SelfInvokeRunner, thread_runner
from desk.api.pretrade import default_gate_config
from desk.clock import SystemClock
from desk.domain.controls_config import GateConfig
from desk.ports import Clock, QuoteCache
from desk.settings import get_settings
from desk.store import PostgresStore
from desk.usecases.cost_optimiser import ExecutionStarter

__all__ = [
    "JobRunner",
    "StepFunctionsStarter",
    "caller",
    "clock",
    "execution_starter",
    "gate_config",
    "job_runner",
    "quote_cache",
    "redis_client",
    "store",
]

T = TypeVar("T")


def _wired(name: str, fallback: Callable[[], T]) -> T:
    factory = getattr(wiring, name, None)  # the integrator's factory wins once it exists
    return cast(T, factory()) if callable(factory) else fallback()


@cache
def _store() -> PostgresStore:
    from desk.store import LambdaConnection

    return PostgresStore(LambdaConnection(get_settings().database_url))


@cache
def _redis() -> redis.Redis:
    from desk.cache import get_client

    return get_client(get_settings().redis_url)


@cache
def _quote_cache() -> QuoteCache:
    from desk.cache import RedisQuoteCache

    return RedisQuoteCache(redis_client())


class StepFunctionsStarter:
    """The order-placement state machine, started idempotently by name (the plan id)."""

    def __init__(self, state_machine_arn: str) -> None:
        self.state_machine_arn = state_machine_arn

    def start(self, name: str, input: Mapping[str, Any]) -> str:
        if not self.state_machine_arn:
            raise ServiceUnavailable("order placement is not configured (DESK_ORDER_STATE_MACHINE_ARN)")
        from desk.aws.executions import start_execution

        return start_execution(self.state_machine_arn, name, input)


def store() -> PostgresStore:
    return _wired("store", _store)


def quote_cache() -> QuoteCache:
    return _wired("quote_cache", _quote_cache)


def redis_client() -> redis.Redis:
    return _wired("redis_client", _redis)


def execution_starter() -> ExecutionStarter:
    return _wired("execution_starter", lambda: StepFunctionsStarter(get_settings().order_state_machine_arn))


def clock() -> Clock:
    return _wired("clock", SystemClock)


def gate_config() -> GateConfig:
    return _wired("gate_config", default_gate_config)


def _lambda_client() -> Any:
    from desk.aws.clients import client

    return client("lambda")


def _job_runner() -> JobRunner:
    """In Lambda the function invokes itself per job (a thread would be frozen with the container); else a thread."""
    runtime = LambdaRuntime()
    if not runtime.in_lambda:
        return thread_runner
    context = BaseRouter.lambda_context if hasattr(BaseRouter, "lambda_context") else None
    function = getattr(context, "invoked_function_arn", None) or runtime.function_name
    return SelfInvokeRunner(function, _lambda_client)


def job_runner() -> JobRunner:
    return _wired("job_runner", _job_runner)


def caller(request: Request) -> Claims:
    return claims_from_event(request.resolved_event.raw_event)
