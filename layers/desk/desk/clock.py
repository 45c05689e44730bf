"""Clocks: the system clock for deployed code and a settable one for tests and the local cloud."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta


class SystemClock:
    """Wall-clock UTC time (the only place deployed code reads the clock)."""

    def now(self) -> datetime:
        return datetime.now(UTC)


class FixedClock:
    """A clock that only moves when told: replays, the simulated schedule, deterministic tests."""

    def __init__(self, start: datetime) -> None:
        if start.tzinfo is None:
            raise ValueError("FixedClock needs a timezone-aware start time")
        self._now = start.astimezone(UTC)

    def now(self) -> datetime:
        return self._now

    def advance(self, delta: timedelta) -> datetime:
        if delta < timedelta(0):
            raise ValueError("a clock never moves backwards")
        self._now += delta
        return self._now

    def set(self, when: datetime) -> datetime:
        return self.advance(when.astimezone(UTC) - self._now)
