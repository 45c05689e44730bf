"""The e2e tests run the local cloud against real servers: the integration fixtures, shared."""

from __future__ import annotations

import pytest

from tests.integration.conftest import database_url, pg_schema, pg_url, redis_base_url, redis_url

__all__ = ["database_url", "pg_schema", "pg_url", "redis_base_url", "redis_url"]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/e2e/" in str(item.fspath):
            item.add_marker(pytest.mark.integration)
