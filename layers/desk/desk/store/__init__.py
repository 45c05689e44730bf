"""The PostgreSQL store: migrations, connection providers and the repositories behind ``ports.Store``.

Usage in a Lambda handler (one connection per container, opened on first use)::

    @functools.cache
    def store() -> PostgresStore:
        return PostgresStore(LambdaConnection(settings().database_url))

and in the streamer ``PostgresStore(PooledConnection(url, max_size=4))``. Apply the schema with
:func:`migrate` (deploy step, test fixtures). Money and quantities are ``NUMERIC`` columns read
back as ``Decimal``; timestamps are ``timestamptz`` returned in UTC.
"""

from __future__ import annotations

from desk.ports import Clock
from desk.store.alerts import AlertRuleConflict, AlertRuleRecord, AlertRuleRepository
from desk.store.analytics import AnalyticsRepository, SignalCursor
from desk.store.bars import BarRepository, BarUpsertResult
from desk.store.connection import ConnectionProvider, LambdaConnection, PooledConnection, SessionSettings
from desk.store.controls import ControlsRepository, KillSwitchChange, KillSwitchNotLatched, ReconciliationRun
from desk.store.migrate import migrate, pending_migrations
from desk.store.trading import TradingRepository
from desk.store.validation import Rejection, RejectReason, validate_bars

__all__ = [
    "AlertRuleConflict",
    "AlertRuleRecord",
    "BarUpsertResult",
    "ConnectionProvider",
    "KillSwitchChange",
    "KillSwitchNotLatched",
    "LambdaConnection",
    "PooledConnection",
    "PostgresStore",
    "ReconciliationRun",
    "RejectReason",
    "Rejection",
    "SessionSettings",
    "SignalCursor",
    "migrate",
    "pending_migrations",
    "validate_bars",
]


class PostgresStore(BarRepository, AnalyticsRepository, TradingRepository, ControlsRepository, AlertRuleRepository):
    """Every repository over one connection provider: the concrete ``ports.Store``."""

    def __init__(self, db: ConnectionProvider, clock: Clock | None = None) -> None:
        super().__init__(db, clock)

    def close(self) -> None:
        self._db.close()
