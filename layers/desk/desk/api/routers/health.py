# mypy: disable-error-code="no-untyped-call"
"""Liveness without authorisation: the function runs, and whether PostgreSQL and Redis answer."""

from __future__ import annotations

from typing import Annotated

import psycopg
import redis
from aws_lambda_powertools.event_handler import Depends
from aws_lambda_powertools.event_handler.api_gateway import Router

from desk.api import deps
from desk.api.models import HealthResponse
from desk.store import PostgresStore

router = Router()
VERSION = "1.0.0"


def _postgres_ok(store: PostgresStore) -> bool:
    try:
        store.kill_switch()
    except psycopg.Error:
        return False
    return True


def _redis_ok(client: redis.Redis) -> bool:
    try:
        return bool(client.ping())
    except redis.RedisError:
        return False


@router.get("/health", tags=["health"], summary="Liveness and dependency checks (no token needed)", security=[{}])
def health(
    store: Annotated[PostgresStore, Depends(deps.store)],
    client: Annotated[redis.Redis, Depends(deps.redis_client)],
) -> HealthResponse:
    checks = {"postgres": _postgres_ok(store), "redis": _redis_ok(client)}
    return HealthResponse(status="ok" if all(checks.values()) else "degraded", version=VERSION, checks=checks)
