"""Shared test configuration: hypothesis profiles and the real market data, by catalogue."""

from __future__ import annotations

import os

import pytest
from hypothesis import HealthCheck, settings

from desk.local import catalogue

# `make test` runs a seeded sample; `make soak` (HYPOTHESIS_PROFILE=soak) runs the full counts.
settings.register_profile(
    "default", max_examples=60, derandomize=True, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile("soak", max_examples=5000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))


@pytest.fixture(scope="session")
def data() -> object:
    """The data catalogue module (verified local mirror, cache, or download)."""
    return catalogue
