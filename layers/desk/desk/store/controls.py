"""The kill-switch latch and reconciliation runs.

Kill switch: one row holds the current state; every change is appended to ``kill_switch_history``
(append-only: a trigger refuses UPDATE, DELETE and TRUNCATE) in the same transaction, under a row
lock, so concurrent latches serialise and the history never disagrees with the state.

* Latching is idempotent: latching a latched switch keeps the first reason, time and author (the
  first cause is the one to investigate) and appends nothing.
* Releasing requires the switch to be latched (:class:`KillSwitchNotLatched` otherwise): a release
  is a deliberate human act, and one that released nothing should not look like it did.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from psycopg.types.json import Jsonb

from desk.domain.errors import KillSwitchNotLatched
from desk.schemas.trading import KillSwitchState
from desk.store.base import Repository
from desk.store.connection import Connection

__all__ = ["ControlsRepository", "KillSwitchChange", "KillSwitchNotLatched", "ReconciliationRun"]

ReconciliationStatus = Literal["clean", "repaired", "drift", "failed"]


@dataclass(frozen=True, slots=True)
class KillSwitchChange:
    """One entry of the kill-switch history."""

    seq: int
    action: Literal["latch", "release"]
    reason: str | None
    changed_at: datetime
    changed_by: str


@dataclass(frozen=True, slots=True)
class ReconciliationRun:
    """One reconciliation cycle against one venue. ``drift_count`` counts differences left unrepaired."""

    run_id: str
    venue: str
    started_at: datetime
    finished_at: datetime
    status: ReconciliationStatus
    drift_count: int = 0
    details: Mapping[str, Any] = field(default_factory=dict)


def _state(row: tuple[Any, ...]) -> KillSwitchState:
    latched, reason, changed_at, changed_by = row
    return KillSwitchState(latched=latched, reason=reason, changed_at=changed_at, changed_by=changed_by)


_SELECT_STATE = "SELECT latched, reason, changed_at, changed_by FROM kill_switch"
_SET_STATE = """
UPDATE kill_switch SET latched = %s, reason = %s, changed_at = %s, changed_by = %s
RETURNING latched, reason, changed_at, changed_by
"""
_APPEND_HISTORY = "INSERT INTO kill_switch_history (action, reason, changed_at, changed_by) VALUES (%s, %s, %s, %s)"
_SAVE_RUN = """
INSERT INTO reconciliation_runs (run_id, venue, started_at, finished_at, status, drift_count, details)
VALUES (%s, %s, %s, %s, %s, %s, %s)
ON CONFLICT (run_id) DO NOTHING
"""
_RECENT_RUNS = """
SELECT run_id, venue, started_at, finished_at, status, drift_count, details FROM reconciliation_runs
 WHERE venue = %s ORDER BY started_at DESC LIMIT %s
"""


class ControlsRepository(Repository):
    # -- kill switch ----------------------------------------------------------------------------
    def kill_switch(self) -> KillSwitchState:
        row = self._db.run(lambda conn: conn.execute(_SELECT_STATE).fetchone())
        return KillSwitchState(latched=False) if row is None else _state(row)

    def latch_kill_switch(self, reason: str, at: datetime, by: str) -> KillSwitchState:
        """Latch; idempotent (a latched switch keeps its first reason and time, history unchanged)."""
        if not reason or not by:
            raise ValueError("latching the kill switch needs a reason and an author")

        def work(conn: Connection) -> KillSwitchState:
            with conn.transaction():
                current = conn.execute(_SELECT_STATE + " FOR UPDATE").fetchone()
                if current is not None and current[0]:
                    return _state(current)
                conn.execute(_APPEND_HISTORY, ("latch", reason, at, by))
                row = conn.execute(_SET_STATE, (True, reason, at, by)).fetchone()
                assert row is not None  # the migration inserts the single row  # noqa: S101
                return _state(row)

        return self._db.run(work)

    def release_kill_switch(self, at: datetime, by: str, *, reason: str | None = None) -> KillSwitchState:
        """Release a latched switch; :class:`KillSwitchNotLatched` if it is not latched."""
        if not by:
            raise ValueError("releasing the kill switch needs an author")

        def work(conn: Connection) -> KillSwitchState:
            with conn.transaction():
                current = conn.execute(_SELECT_STATE + " FOR UPDATE").fetchone()
                if current is None or not current[0]:
                    raise KillSwitchNotLatched("the kill switch is not latched; nothing to release")
                conn.execute(_APPEND_HISTORY, ("release", reason, at, by))
                row = conn.execute(_SET_STATE, (False, reason, at, by)).fetchone()
                assert row is not None  # noqa: S101
                return _state(row)

        return self._db.run(work)

    def kill_switch_history(self) -> list[KillSwitchChange]:
        """Every latch and release, oldest first."""
        rows = self._db.run(
            lambda conn: conn.execute(
                "SELECT seq, action, reason, changed_at, changed_by FROM kill_switch_history ORDER BY seq"
            ).fetchall()
        )
        return [KillSwitchChange(s, a, r, t.astimezone(UTC), b) for s, a, r, t, b in rows]

    # -- reconciliation runs --------------------------------------------------------------------
    def record_reconciliation_run(self, run: ReconciliationRun) -> bool:
        """Idempotent on ``run_id``; False when it was already recorded."""
        r = run
        params = (r.run_id, r.venue, r.started_at, r.finished_at, r.status, r.drift_count, Jsonb(dict(r.details)))
        return self._db.run(lambda conn: conn.execute(_SAVE_RUN, params).rowcount) == 1

    def recent_reconciliation_runs(self, venue: str, limit: int = 10) -> list[ReconciliationRun]:
        """The latest runs for ``venue``, newest first."""
        rows = self._db.run(lambda conn: conn.execute(_RECENT_RUNS, (venue, limit)).fetchall())
        return [
            ReconciliationRun(run_id, v, start.astimezone(UTC), end.astimezone(UTC), status, drift, details)
            for run_id, v, start, end, status, drift, details in rows
        ]

    def consecutive_drift_runs(self, venue: str, limit: int = 10) -> int:
        """How many of the latest runs in a row ended in drift (the kill switch latches at three)."""
        count = 0
        for run in self.recent_reconciliation_runs(venue, limit):
            if run.status != "drift":
                break
            count += 1
        return count
