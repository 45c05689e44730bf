"""Bars and instruments.

Writes validate first (:mod:`desk.store.validation`), make sure the monthly partitions exist, then
write the whole batch in one statement whose ``ON CONFLICT ... DO UPDATE ... WHERE ... IS DISTINCT
FROM`` only touches rows whose values changed, so a redelivered batch rewrites nothing (no dead
tuples, no WAL). The counts tell inserted, updated and unchanged apart: ``revisions = 0`` marks a
fresh insert (``xmax``, the usual trick, cannot be read on a partitioned table).
:meth:`BarRepository.copy_bars` is the backfill path: ``COPY`` into a temporary table, then the
same conflict-aware merge from it.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from psycopg import sql

from desk.domain.instruments import Instrument, PrecisionMode
from desk.ports import Clock
from desk.schemas.market import Bar, BarGap
from desk.store.base import Repository
from desk.store.connection import Connection, ConnectionProvider
from desk.store.validation import Rejection, validate_bars

__all__ = ["BarRepository", "BarUpsertResult"]

# The counting merge behind both write paths; {source} yields (venue, symbol, timeframe, ts, o, h, l, c, v).
_MERGE = sql.SQL("""
WITH written AS (
    INSERT INTO bars AS b (venue, symbol, timeframe, ts, open, high, low, close, volume)
    {source}
    ON CONFLICT (venue, symbol, timeframe, ts) DO UPDATE
       SET open = EXCLUDED.open, high = EXCLUDED.high, low = EXCLUDED.low,
           close = EXCLUDED.close, volume = EXCLUDED.volume, revisions = b.revisions + 1, updated_at = now()
     WHERE (b.open, b.high, b.low, b.close, b.volume)
           IS DISTINCT FROM (EXCLUDED.open, EXCLUDED.high, EXCLUDED.low, EXCLUDED.close, EXCLUDED.volume)
    RETURNING (revisions = 0) AS inserted
)
SELECT count(*) FILTER (WHERE inserted), count(*) FILTER (WHERE NOT inserted) FROM written
""")
_FROM_ARRAYS = sql.SQL(
    "SELECT * FROM unnest(%s::text[], %s::text[], %s::text[], %s::timestamptz[],"
    " %s::numeric[], %s::numeric[], %s::numeric[], %s::numeric[], %s::numeric[])"
)
_FROM_STAGE = sql.SQL("SELECT venue, symbol, timeframe, ts, open, high, low, close, volume FROM bars_load")
_STAGE = """
CREATE TEMPORARY TABLE bars_load (
    venue text, symbol text, timeframe text, ts timestamptz,
    open numeric, high numeric, low numeric, close numeric, volume numeric
) ON COMMIT DROP
"""
_UPSERT_INSTRUMENT = """
INSERT INTO instruments (venue, symbol, base, quote, precision_mode, price_precision, amount_precision,
                         min_amount, max_amount, min_price, max_price, min_notional, max_notional, venue_symbol,
                         active)
VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
ON CONFLICT (venue, symbol) DO UPDATE
   SET base = EXCLUDED.base, quote = EXCLUDED.quote, precision_mode = EXCLUDED.precision_mode,
       price_precision = EXCLUDED.price_precision, amount_precision = EXCLUDED.amount_precision,
       min_amount = EXCLUDED.min_amount, max_amount = EXCLUDED.max_amount,
       min_price = EXCLUDED.min_price, max_price = EXCLUDED.max_price,
       min_notional = EXCLUDED.min_notional, max_notional = EXCLUDED.max_notional,
       venue_symbol = EXCLUDED.venue_symbol, active = EXCLUDED.active, updated_at = now()
"""
_SELECT_INSTRUMENTS = """
SELECT venue, symbol, base, quote, precision_mode, price_precision, amount_precision,
       min_amount, max_amount, min_price, max_price, min_notional, max_notional, venue_symbol, active
  FROM instruments WHERE venue = %s ORDER BY symbol
"""


class BarUpsertResult(int):
    """Rows written (inserted + updated), as ``Store.upsert_bars`` promises, with the breakdown.

    An ``int`` so it satisfies the port; the attributes are for ingest metrics and logs.
    """

    inserted: int
    updated: int
    unchanged: int
    rejections: tuple[Rejection, ...]

    def __new__(
        cls, inserted: int, updated: int, unchanged: int, rejections: Iterable[Rejection] = ()
    ) -> BarUpsertResult:
        result = super().__new__(cls, inserted + updated)
        result.inserted, result.updated, result.unchanged = inserted, updated, unchanged
        result.rejections = tuple(rejections)
        return result

    @property
    def rejected(self) -> int:
        return len(self.rejections)

    @property
    def rejected_by_reason(self) -> dict[str, int]:
        return dict(Counter(str(r.reason) for r in self.rejections))

    def __repr__(self) -> str:
        return (
            f"BarUpsertResult(inserted={self.inserted}, updated={self.updated}, "
            f"unchanged={self.unchanged}, rejected={self.rejected})"
        )


def _month(ts: datetime) -> tuple[int, int]:
    utc = ts.astimezone(UTC)
    return utc.year, utc.month


def _row(bar: Bar) -> tuple[Any, ...]:
    return (bar.venue, bar.symbol, bar.timeframe, bar.ts, bar.open, bar.high, bar.low, bar.close, bar.volume)


class BarRepository(Repository):
    def __init__(self, db: ConnectionProvider, clock: Clock | None = None) -> None:
        super().__init__(db, clock)
        # Months whose partition this process has already ensured: steady-state ingest skips the DDL.
        self._months: set[tuple[int, int]] = set()

    # -- partitions -----------------------------------------------------------------------------
    def ensure_partitions(self, start: datetime, end: datetime) -> int:
        """Create the monthly bar partitions covering ``[start, end]``; returns how many were new."""

        def work(conn: Connection) -> int:
            row = conn.execute("SELECT ensure_bar_partitions(%s, %s)", (start, end)).fetchone()
            return int(row[0]) if row else 0

        return self._db.run(work)

    def _ensure_for(self, bars: Sequence[Bar]) -> None:
        months = {_month(b.ts) for b in bars} - self._months
        if not months:
            return
        first, last = min(months), max(months)
        # In its own short transaction: partition DDL locks the parent, so keep it out of the write.
        self.ensure_partitions(datetime(*first, 1, tzinfo=UTC), datetime(*last, 1, tzinfo=UTC))
        self._months |= months

    # -- writes ---------------------------------------------------------------------------------
    def upsert_bars(self, bars: Sequence[Bar], *, now: datetime | None = None) -> BarUpsertResult:
        """Validate and upsert by (venue, symbol, timeframe, ts); rewrites only changed rows.

        ``now`` (default: the store's clock) bounds bar times: later bars are rejected.
        """
        good, rejected = validate_bars(bars, now or self._clock.now())
        if not good:
            return BarUpsertResult(0, 0, 0, rejected)
        self._ensure_for(good)
        columns = list(zip(*(_row(b) for b in good), strict=True))

        def work(conn: Connection) -> tuple[int, int]:
            row = conn.execute(_MERGE.format(source=_FROM_ARRAYS), [list(c) for c in columns]).fetchone()
            return (int(row[0]), int(row[1])) if row else (0, 0)

        inserted, updated = self._db.run(work)
        return BarUpsertResult(inserted, updated, len(good) - inserted - updated, rejected)

    def copy_bars(self, bars: Sequence[Bar], *, now: datetime | None = None) -> BarUpsertResult:
        """Bulk backfill: ``COPY`` to a staging table, then the same idempotent merge as upserts."""
        good, rejected = validate_bars(bars, now or self._clock.now())
        if not good:
            return BarUpsertResult(0, 0, 0, rejected)
        self._ensure_for(good)

        def work(conn: Connection) -> tuple[int, int]:
            with conn.transaction(), conn.cursor() as cur:
                cur.execute(_STAGE)
                with cur.copy(
                    "COPY bars_load (venue, symbol, timeframe, ts, open, high, low, close, volume) FROM STDIN"
                ) as copy:
                    for bar in good:
                        copy.write_row(_row(bar))
                row = cur.execute(_MERGE.format(source=_FROM_STAGE)).fetchone()
                return (int(row[0]), int(row[1])) if row else (0, 0)

        inserted, updated = self._db.run(work)
        return BarUpsertResult(inserted, updated, len(good) - inserted - updated, rejected)

    # -- reads ----------------------------------------------------------------------------------
    def load_bars(self, venue: str, symbol: str, timeframe: str, start: datetime, end: datetime) -> list[Bar]:
        """Bars with ``start <= ts < end``, oldest first."""

        def work(conn: Connection) -> list[tuple[Any, ...]]:
            return conn.execute(
                "SELECT ts, open, high, low, close, volume FROM bars"
                " WHERE venue = %s AND symbol = %s AND timeframe = %s AND ts >= %s AND ts < %s ORDER BY ts",
                (venue, symbol, timeframe, start, end),
            ).fetchall()

        # model_construct: the rows passed the same checks (Python and the column domains) on the way
        # in, and re-validating a long history costs more than the query.
        return [
            Bar.model_construct(
                venue=venue, symbol=symbol, timeframe=timeframe, ts=ts.astimezone(UTC),
                open=o, high=h, low=lo, close=c, volume=v,
            )
            for ts, o, h, lo, c, v in self._db.run(work)
        ]  # fmt: skip

    def last_bar_time(self, venue: str, symbol: str, timeframe: str) -> datetime | None:
        def work(conn: Connection) -> datetime | None:
            row = conn.execute(
                "SELECT max(ts) FROM bars WHERE venue = %s AND symbol = %s AND timeframe = %s",
                (venue, symbol, timeframe),
            ).fetchone()
            return None if row is None or row[0] is None else row[0].astimezone(UTC)

        return self._db.run(work)

    # -- gaps -----------------------------------------------------------------------------------
    def record_gaps(self, gaps: Sequence[BarGap]) -> int:
        """Record unfillable gaps; idempotent on (venue, symbol, timeframe, start). Returns how many were new."""
        rows = [(g.venue, g.symbol, g.timeframe, g.start, g.end, g.missing) for g in gaps]
        if not rows:
            return 0

        def work(conn: Connection) -> int:
            new = 0
            with conn.transaction():
                for row in rows:
                    cur = conn.execute(
                        "INSERT INTO bar_gaps (venue, symbol, timeframe, start_ts, end_ts, missing)"
                        " VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING",
                        row,
                    )
                    new += cur.rowcount
            return new

        return self._db.run(work)

    def known_gaps(self, venue: str, symbol: str, timeframe: str) -> Sequence[BarGap]:
        def work(conn: Connection) -> list[BarGap]:
            found = conn.execute(
                "SELECT start_ts, end_ts, missing FROM bar_gaps WHERE venue = %s AND symbol = %s AND timeframe = %s"
                " ORDER BY start_ts",
                (venue, symbol, timeframe),
            ).fetchall()
            return [
                BarGap(venue=venue, symbol=symbol, timeframe=timeframe, start=a, end=b, missing=m) for a, b, m in found
            ]

        return self._db.run(work)

    # -- instruments ----------------------------------------------------------------------------
    def upsert_instruments(self, instruments: Iterable[Instrument]) -> int:
        """Insert or refresh instruments by (venue, symbol); returns how many rows were written."""
        rows = [
            (
                i.venue, i.symbol, i.base, i.quote, i.precision_mode.value, i.price_precision, i.amount_precision,
                i.min_amount, i.max_amount, i.min_price, i.max_price, i.min_notional, i.max_notional, i.venue_symbol,
                i.active,
            )
            for i in instruments
        ]  # fmt: skip
        if not rows:
            return 0

        def work(conn: Connection) -> int:
            with conn.transaction(), conn.cursor() as cur:
                cur.executemany(_UPSERT_INSTRUMENT, rows)
            return len(rows)

        return self._db.run(work)

    def load_instruments(self, venue: str) -> Mapping[str, Instrument]:
        def work(conn: Connection) -> list[tuple[Any, ...]]:
            return conn.execute(_SELECT_INSTRUMENTS, (venue,)).fetchall()

        out: dict[str, Instrument] = {}
        for r in self._db.run(work):
            out[r[1]] = Instrument(
                venue=r[0], symbol=r[1], base=r[2], quote=r[3], precision_mode=PrecisionMode(r[4]),
                price_precision=Decimal(r[5]), amount_precision=Decimal(r[6]), min_amount=r[7], max_amount=r[8],
                min_price=r[9], max_price=r[10], min_notional=r[11], max_notional=r[12], venue_symbol=r[13],
                active=r[14],
            )  # fmt: skip
        return out
