"""Migrations: applied from scratch into a clean schema, idempotent, and the bar partitions."""

from __future__ import annotations

from datetime import UTC, datetime

import psycopg
import pytest

from desk.store import PostgresStore, migrate, pending_migrations
from desk.store.connection import LambdaConnection
from desk.store.migrate import MIGRATIONS_DIR, yoyo_url

EXPECTED_TABLES = {
    "instruments", "bars", "regimes", "correlation_snapshots", "risk_snapshots", "signals", "plans", "orders",
    "order_events", "fills", "reconciliation_runs", "kill_switch", "kill_switch_history", "bar_gaps", "alert_rules",
}  # fmt: skip


def _tables(pg_url: str) -> set[str]:
    with psycopg.connect(pg_url) as conn:
        rows = conn.execute(
            "SELECT c.relname FROM pg_class c WHERE c.relnamespace = current_schema()::regnamespace"
            " AND c.relkind IN ('r', 'p', 'v') AND NOT c.relispartition"
        ).fetchall()
    return {r[0] for r in rows}


def test_migrations_apply_from_scratch_then_apply_nothing(database_url: str, pg_schema: str, pg_url: str) -> None:
    # Given an empty schema and the migration files
    files = sorted(p.stem for p in MIGRATIONS_DIR.glob("*.sql"))
    assert pending_migrations(database_url, pg_schema) == files
    # When migrations run twice
    first = migrate(database_url, pg_schema)
    second = migrate(database_url, pg_schema)
    # Then the first run applies every file, the second nothing, and every table and the view exist
    assert first == files
    assert second == []
    assert pending_migrations(database_url, pg_schema) == []
    assert EXPECTED_TABLES | {"positions"} <= _tables(pg_url)


def test_bars_fall_back_to_native_partitions_without_timescale(database_url: str, pg_schema: str, pg_url: str) -> None:
    # Given a server without TimescaleDB (this machine and Aurora)
    migrate(database_url, pg_schema)
    with psycopg.connect(pg_url) as conn:
        has_timescale = conn.execute("SELECT count(*) FROM pg_extension WHERE extname = 'timescaledb'").fetchone()
        kind = conn.execute("SELECT relkind FROM pg_class WHERE oid = 'bars'::regclass").fetchone()
    # Then bars is a RANGE-partitioned table ('p'), not a hypertable
    assert has_timescale == (0,)
    assert kind == ("p",)


def test_partitions_are_created_for_a_range_spanning_months(database_url: str, pg_schema: str, pg_url: str) -> None:
    # Given a migrated schema
    migrate(database_url, pg_schema)
    store = PostgresStore(LambdaConnection(pg_url))
    # When partitions are ensured from mid-November to early February, then again over a wider range
    created = store.ensure_partitions(datetime(2023, 11, 15, tzinfo=UTC), datetime(2024, 2, 3, tzinfo=UTC))
    again = store.ensure_partitions(datetime(2023, 11, 1, tzinfo=UTC), datetime(2024, 3, 1, tzinfo=UTC))
    with psycopg.connect(pg_url) as conn:
        bounds = conn.execute(
            "SELECT c.relname, pg_get_expr(c.relpartbound, c.oid) FROM pg_inherits i"
            " JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = 'bars'::regclass ORDER BY 1"
        ).fetchall()
    store.close()
    # Then each UTC month gets one partition, the second call only adds March, and bounds are month starts
    assert (created, again) == (4, 1)
    assert [name for name, _ in bounds] == [
        "bars_2023_11",
        "bars_2023_12",
        "bars_2024_01",
        "bars_2024_02",
        "bars_2024_03",
    ]
    assert bounds[1][1] == "FOR VALUES FROM ('2023-12-01 00:00:00+00') TO ('2024-01-01 00:00:00+00')"


def test_schema_names_are_checked_before_reaching_sql() -> None:
    # Given a schema name that would inject SQL into yoyo's unquoted SET search_path
    # When the yoyo URL is built, Then it is refused
    with pytest.raises(ValueError, match="identifier"):
        yoyo_url("postgresql://h/db", "x; DROP TABLE bars")
    assert yoyo_url("postgres://u:p@h:5433/db?sslmode=require", "desk") == (
        "postgresql+psycopg://u:p@h:5433/db?sslmode=require&schema=desk"
    )
