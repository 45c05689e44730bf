"""Alert rules: thresholds on the book's risk metrics, one per (portfolio, name), created once.

A rule is configuration a person sets and the desk acts on (a critical rule may latch the kill
switch), so it is state and lives here, not in Redis. Creation is insert-once on (portfolio, name):
:meth:`AlertRuleRepository.create_alert_rule` returns the rule stored first, so a repeat with the
same settings gets the same answer (author and time of the first), and a repeat with other settings
raises :class:`AlertRuleConflict`. Concurrent creations serialise on the primary key: ``ON CONFLICT
DO NOTHING`` waits for the other transaction, and the next statement reads its committed row.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from desk.domain.errors import DeskError
from desk.store.base import Repository
from desk.store.connection import Connection

__all__ = ["AlertRuleConflict", "AlertRuleRecord", "AlertRuleRepository"]


class AlertRuleConflict(DeskError):
    """A rule with this (portfolio, name) exists with other settings (or vanished while it was read)."""


@dataclass(frozen=True, slots=True)
class AlertRuleRecord:
    """One stored rule. ``metric`` and ``severity`` take the values the table's CHECKs allow."""

    portfolio: str
    name: str
    metric: str
    threshold: float
    severity: str
    latch_kill_switch: bool
    created_at: datetime
    created_by: str

    @property
    def rule_id(self) -> str:
        # A name has no ':', so the last one splits the id back into (portfolio, name).
        return f"{self.portfolio}:{self.name}"

    def same_settings(self, other: AlertRuleRecord) -> bool:
        """Whether ``other`` asks for the same rule (who created it, and when, do not count)."""
        return _settings(self) == _settings(other)


def _settings(rule: AlertRuleRecord) -> tuple[Any, ...]:
    return (rule.portfolio, rule.name, rule.metric, rule.threshold, rule.severity, rule.latch_kill_switch)


_COLUMNS = "portfolio, name, metric, threshold, severity, latch_kill_switch, created_at, created_by"
_INSERT = f"""
INSERT INTO alert_rules ({_COLUMNS}) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)
ON CONFLICT (portfolio, name) DO NOTHING
RETURNING {_COLUMNS}
"""  # noqa: S608  # the column list is a constant
_SELECT_ONE = f"SELECT {_COLUMNS} FROM alert_rules WHERE portfolio = %s AND name = %s"  # noqa: S608
_SELECT_PAGE = f"""
SELECT {_COLUMNS} FROM alert_rules
 WHERE portfolio = %s AND (%s::text IS NULL OR name > %s)
 ORDER BY name LIMIT %s
"""  # noqa: S608


def _record(row: tuple[Any, ...]) -> AlertRuleRecord:
    portfolio, name, metric, threshold, severity, latch, created_at, created_by = row
    return AlertRuleRecord(portfolio, name, metric, threshold, severity, latch, created_at.astimezone(UTC), created_by)


class AlertRuleRepository(Repository):
    def create_alert_rule(self, rule: AlertRuleRecord) -> AlertRuleRecord:
        """Store ``rule`` unless (portfolio, name) exists; return the stored rule (the first one).

        Raises :class:`AlertRuleConflict` when the stored rule has other settings.
        """
        r = rule
        params = (
            r.portfolio,
            r.name,
            r.metric,
            r.threshold,
            r.severity,
            r.latch_kill_switch,
            r.created_at,
            r.created_by,
        )

        def work(conn: Connection) -> tuple[Any, ...] | None:
            inserted = conn.execute(_INSERT, params).fetchone()
            return inserted or conn.execute(_SELECT_ONE, (r.portfolio, r.name)).fetchone()

        row = self._db.run(work)
        if row is None:  # rules are never deleted, so only a race with a manual delete gets here
            raise AlertRuleConflict(f"alert rule {rule.rule_id} changed while it was created; read it again")
        stored = _record(row)
        if not stored.same_settings(rule):
            raise AlertRuleConflict(f"alert rule {rule.rule_id} exists with other settings")
        return stored

    def alert_rule(self, portfolio: str, name: str) -> AlertRuleRecord | None:
        row = self._db.run(lambda conn: conn.execute(_SELECT_ONE, (portfolio, name)).fetchone())
        return None if row is None else _record(row)

    def alert_rules(self, portfolio: str, *, after: str | None = None, limit: int = 100) -> list[AlertRuleRecord]:
        """The rules of ``portfolio`` by name, at most ``limit``; with ``after`` (a previous page's last name),
        only those named after it."""
        if limit < 1:
            raise ValueError(f"limit must be positive, not {limit}")
        rows = self._db.run(lambda conn: conn.execute(_SELECT_PAGE, (portfolio, after, after, limit)).fetchall())
        return [_record(row) for row in rows]
