"""Fixtures for integration tests: real servers, a clean schema and a clean Redis db per test."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import psycopg
import pytest
import redis

from desk.local.servers import postgres_server, redis_server


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/integration/" in str(item.fspath):
            item.add_marker(pytest.mark.integration)


@pytest.fixture(scope="session")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with postgres_server(tmp_path_factory.mktemp("pg")) as url:
        yield url


@pytest.fixture
def pg_schema(database_url: str) -> Iterator[str]:
    """A fresh, empty schema for one test; dropped afterwards. Connect with ``search_path`` set to it."""
    name = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{name}"')
    try:
        yield name
    finally:
        with psycopg.connect(database_url, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA "{name}" CASCADE')


@pytest.fixture
def pg_url(database_url: str, pg_schema: str) -> str:
    """A connection URL whose sessions use the test's own schema first."""
    sep = "&" if "?" in database_url else "?"
    return f"{database_url}{sep}options=-csearch_path%3D{pg_schema}"


@pytest.fixture(scope="session")
def redis_base_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with redis_server(tmp_path_factory.mktemp("redis")) as url:
        yield url


@pytest.fixture
def redis_url(redis_base_url: str) -> Iterator[str]:
    """A Redis URL on a logical database of this xdist worker's own, flushed before and after."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0")
    db = 1 + int(worker.removeprefix("gw") or 0) % 15
    if redis_base_url.startswith("unix://"):
        url = f"{redis_base_url}?db={db}"
    else:
        url = redis_base_url.rsplit("/", 1)[0] + f"/{db}"
    client = redis.Redis.from_url(url)
    client.flushdb()
    yield url
    client.flushdb()
    client.close()
