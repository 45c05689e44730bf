"""Venue API keys from Secrets Manager: read at run time by name, cached for the container's life.

Keys are never in code, config or environment values; functions get only the secret's name.
"""

from __future__ import annotations

import json
from functools import cache
from typing import Any

from desk.aws.clients import client


@cache
def secret_json(name: str) -> dict[str, Any]:
    """The secret ``name`` parsed as a JSON object (``{"api_key": ..., "secret": ...}``)."""
    raw = client("secretsmanager").get_secret_value(SecretId=name)["SecretString"]
    value = json.loads(raw)
    if not isinstance(value, dict):
        raise ValueError(f"secret {name!r} must hold a JSON object")
    return value


def reset() -> None:
    secret_json.cache_clear()
