"""The clocks and the settings model: the only places that read the clock and the environment."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from desk.clock import FixedClock, SystemClock
from desk.settings import Settings


def test_fixed_clock_moves_only_forward() -> None:
    clock = FixedClock(datetime(2024, 8, 8, 23, 54, tzinfo=UTC))
    assert clock.advance(timedelta(seconds=5)) == datetime(2024, 8, 8, 23, 54, 5, tzinfo=UTC)
    with pytest.raises(ValueError, match="backwards"):
        clock.advance(timedelta(seconds=-1))
    with pytest.raises(ValueError, match="timezone-aware"):
        FixedClock(datetime(2024, 1, 1))


def test_system_clock_is_aware_utc() -> None:
    assert SystemClock().now().tzinfo is UTC


def test_settings_read_conventional_urls_and_prefixed_names(monkeypatch: pytest.MonkeyPatch) -> None:
    # Given the conventional DATABASE_URL and a prefixed bus name
    monkeypatch.setenv("DATABASE_URL", "postgresql://db.example/desk")
    monkeypatch.setenv("DESK_EVENT_BUS_NAME", "desk-events-prod")
    monkeypatch.setenv("DESK_QUOTE_MAX_AGE_EQUITY_S", "5")
    # When settings are read, Then both are honoured
    settings = Settings()
    assert settings.database_url == "postgresql://db.example/desk"
    assert settings.event_bus_name == "desk-events-prod"
    assert settings.quote_max_age("equity") == timedelta(seconds=5)


def test_bad_settings_fail_loudly(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DESK_ENVIRONMENT", "production")
    with pytest.raises(ValueError, match="environment"):
        Settings()
