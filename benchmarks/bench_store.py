"""desk.store: 100,000 bars bulk-loaded with COPY against a plain ``executemany`` of the same upsert.

Both write the same rows into a freshly migrated scratch schema (partitions already created, table
truncated before every run) and both are idempotent upserts on (venue, symbol, timeframe, ts):

* ours: :meth:`PostgresStore.copy_bars`: validation, ``COPY`` into a temp table, one counting merge;
* reference: ``cursor.executemany("INSERT ... ON CONFLICT ... DO UPDATE ...")`` row by row (psycopg 3
  pipelines it, so this is the honest naive baseline, not a strawman of one round trip per row).

The bars are the real Coinbase BTC/USD hourly series (~20,000) replayed under five symbols.
Needs PostgreSQL at ``$DATABASE_URL`` (default ``postgresql://127.0.0.1:5432/test``).
"""

from __future__ import annotations

import atexit
import os
import uuid
from datetime import UTC, datetime
from typing import Any

import psycopg

from benchmarks.harness import Bench
from desk.local import catalogue
from desk.schemas.market import Bar
from desk.store import PostgresStore, migrate
from desk.store.connection import LambdaConnection, SessionSettings

N_BARS = 100_000
NOW = datetime(2030, 1, 1, tzinfo=UTC)
_REFERENCE_SQL = """
INSERT INTO bars AS b (venue, symbol, timeframe, ts, open, high, low, close, volume)
VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)
ON CONFLICT (venue, symbol, timeframe, ts) DO UPDATE
   SET open = EXCLUDED.open, high = EXCLUDED.high, low = EXCLUDED.low, close = EXCLUDED.close,
       volume = EXCLUDED.volume
"""


def _setup() -> dict[str, Any]:
    url = os.environ.get("DATABASE_URL", "postgresql://127.0.0.1:5432/test")
    schema = f"bench_{uuid.uuid4().hex[:8]}"
    migrate(url, schema)
    df = catalogue.coinbase_btcusd_hourly()
    bars: list[Bar] = []
    for k in range(N_BARS // len(df) + 1):
        for ts, o, h, lo, c, v in zip(df.index, df.open, df.high, df.low, df.close, df.volume, strict=True):
            bars.append(
                Bar(venue="coinbase", symbol=f"BTC{k}/USD", timeframe="1h", ts=ts.tz_localize("UTC").to_pydatetime(),
                    open=o, high=h, low=lo, close=c, volume=v)
            )  # fmt: skip
    bars = bars[:N_BARS]
    store = PostgresStore(LambdaConnection(url, SessionSettings(search_path=schema, statement_timeout_ms=120_000)))
    store.ensure_partitions(bars[0].ts, max(b.ts for b in bars))
    conn = psycopg.connect(url, autocommit=True, options=f"-csearch_path={schema}")
    atexit.register(_drop, url, schema)  # the harness has no teardown; leave no scratch schema behind
    return {"store": store, "conn": conn, "bars": bars, "url": url, "schema": schema}


def _drop(url: str, schema: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def _truncate(d: dict[str, Any]) -> None:
    d["conn"].execute("TRUNCATE bars")


def _ours(d: dict[str, Any]) -> Any:
    _truncate(d)
    result = d["store"].copy_bars(d["bars"], now=NOW)
    assert result.inserted == N_BARS
    return result


def _reference(d: dict[str, Any]) -> Any:
    _truncate(d)
    rows = [(b.venue, b.symbol, b.timeframe, b.ts, b.open, b.high, b.low, b.close, b.volume) for b in d["bars"]]
    with d["conn"].transaction(), d["conn"].cursor() as cur:
        cur.executemany(_REFERENCE_SQL, rows)


BENCHMARKS = [
    Bench(
        "store: COPY backfill of 100k bars",
        _setup,
        _ours,
        _reference,
        "psycopg executemany INSERT ... ON CONFLICT",
        target=2.0,
        repeat=3,
        note="target: ours < 2 s",
    ),
]
