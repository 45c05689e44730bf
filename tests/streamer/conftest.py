"""Streamer tests: the package lives in services/ (importable as ``streamer``) and uses real Redis."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "services"))

from tests.integration.conftest import database_url, redis_base_url, redis_url  # noqa: F401


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/streamer/" in str(item.fspath):
            item.add_marker(pytest.mark.integration)
