"""What every repository shares: the connection provider and the clock used when none is passed."""

from __future__ import annotations

from desk.clock import SystemClock
from desk.ports import Clock
from desk.store.connection import ConnectionProvider

__all__ = ["Repository"]


class Repository:
    def __init__(self, db: ConnectionProvider, clock: Clock | None = None) -> None:
        self._db = db
        self._clock: Clock = clock or SystemClock()

    @property
    def db(self) -> ConnectionProvider:
        return self._db
