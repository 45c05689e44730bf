"""Cached boto3 clients, built lazily (never at import time, so tests can set the environment first).

One client per (service, region) per process: a Lambda container reuses them across invocations.
``reset()`` drops them, which tests use after moto's mock starts or stops.
"""

from __future__ import annotations

from functools import cache
from typing import Any

import boto3
from botocore.config import Config

from desk.settings import get_settings

_CONFIG = Config(retries={"mode": "standard", "max_attempts": 5}, connect_timeout=3, read_timeout=10)


@cache
def client(service: str, region: str | None = None) -> Any:
    """A boto3 client for ``service`` (standard retry mode: backoff with jitter on throttles and 5xx)."""
    return boto3.client(service, region_name=region or get_settings().region, config=_CONFIG)  # type: ignore[call-overload]


def reset() -> None:
    client.cache_clear()
