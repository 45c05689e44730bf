"""Analytics outputs: regimes, correlation snapshots, risk snapshots and signals.

Snapshots are derived data: a recomputation for the same key overwrites (last write wins, and a
redelivered message writes the same values, so it is idempotent). Signals are facts that drive
orders, so they are insert-once and ``save_signal`` reports whether this call stored it; a
strategy's signals are read back newest first, a page at a time (keyset on ``(ts, signal_id)``, so a
page never skips or repeats a signal stored while the caller pages).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, NamedTuple

from desk.schemas.analytics import CorrelationSnapshot, Regime, RiskSnapshot, Signal
from desk.store.base import Repository
from desk.store.connection import Connection

__all__ = ["AnalyticsRepository", "SignalCursor"]


class SignalCursor(NamedTuple):
    """Where a page of signals ended: the last signal's bar time and id (the next page is older)."""

    ts: datetime
    signal_id: str


_SAVE_REGIME = """
INSERT INTO regimes (symbol, timeframe, model, ts, label, state, probabilities)
VALUES (%s, %s, %s, %s, %s, %s, %s)
ON CONFLICT (symbol, timeframe, model, ts) DO UPDATE
   SET label = EXCLUDED.label, state = EXCLUDED.state, probabilities = EXCLUDED.probabilities
"""
_LATEST_REGIME = """
SELECT symbol, timeframe, ts, model, label, state, probabilities FROM regimes
 WHERE symbol = %s AND timeframe = %s ORDER BY ts DESC, model LIMIT 1
"""
_SAVE_CORRELATION = """
INSERT INTO correlation_snapshots (timeframe, method, "window", ts, symbols, matrix)
VALUES (%s, %s, %s, %s, %s, %s)
ON CONFLICT (timeframe, method, "window", ts) DO UPDATE SET symbols = EXCLUDED.symbols, matrix = EXCLUDED.matrix
"""
_LATEST_CORRELATION = """
SELECT ts, timeframe, method, "window", symbols, matrix FROM correlation_snapshots
 WHERE timeframe = %s AND method = %s AND (%s::integer IS NULL OR "window" = %s)
 ORDER BY ts DESC, "window" DESC LIMIT 1
"""
_SAVE_RISK = """
INSERT INTO risk_snapshots (portfolio, ts, confidence, horizon_days, var, cvar, method, equity,
                            gross_exposure, net_exposure)
VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
ON CONFLICT (portfolio, ts) DO UPDATE
   SET confidence = EXCLUDED.confidence, horizon_days = EXCLUDED.horizon_days, var = EXCLUDED.var,
       cvar = EXCLUDED.cvar, method = EXCLUDED.method, equity = EXCLUDED.equity,
       gross_exposure = EXCLUDED.gross_exposure, net_exposure = EXCLUDED.net_exposure
"""
_LATEST_RISK = """
SELECT portfolio, ts, confidence, horizon_days, var, cvar, method, equity, gross_exposure, net_exposure
  FROM risk_snapshots WHERE portfolio = %s ORDER BY ts DESC LIMIT 1
"""
_SAVE_SIGNAL = """
INSERT INTO signals (signal_id, strategy, venue, symbol, timeframe, ts, target_weight, strength, regime)
VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)
ON CONFLICT (signal_id) DO NOTHING
"""
_SIGNAL_FIELDS = ("signal_id", "strategy", "venue", "symbol", "timeframe", "ts", "target_weight", "strength", "regime")
_LOAD_SIGNAL = """
SELECT signal_id, strategy, venue, symbol, timeframe, ts, target_weight, strength, regime
  FROM signals WHERE signal_id = %s
"""
_STRATEGY_SIGNALS = """
SELECT signal_id, strategy, venue, symbol, timeframe, ts, target_weight, strength, regime FROM signals
 WHERE strategy = %(strategy)s
   AND (%(symbol)s::text IS NULL OR symbol = %(symbol)s)
   AND (%(ts)s::timestamptz IS NULL OR (ts, signal_id) < (%(ts)s::timestamptz, %(signal_id)s::text))
 ORDER BY ts DESC, signal_id DESC LIMIT %(limit)s
"""


def _signal(row: tuple[Any, ...]) -> Signal:
    values = dict(zip(_SIGNAL_FIELDS, row, strict=True))
    values["ts"] = values["ts"].astimezone(UTC)
    return Signal.model_validate(values)


class AnalyticsRepository(Repository):
    def _one(self, query: str, params: tuple[Any, ...]) -> tuple[Any, ...] | None:
        def work(conn: Connection) -> tuple[Any, ...] | None:
            return conn.execute(query, params).fetchone()

        return self._db.run(work)

    def _write(self, query: str, params: tuple[Any, ...]) -> int:
        def work(conn: Connection) -> int:
            return conn.execute(query, params).rowcount

        return self._db.run(work)

    def save_regime(self, regime: Regime) -> None:
        """Idempotent on (symbol, timeframe, model, ts)."""
        r = regime
        self._write(_SAVE_REGIME, (r.symbol, r.timeframe, r.model, r.ts, r.label, r.state, list(r.probabilities)))

    def latest_regime(self, symbol: str, timeframe: str) -> Regime | None:
        row = self._one(_LATEST_REGIME, (symbol, timeframe))
        if row is None:
            return None
        sym, tf, ts, model, label, state, probabilities = row
        return Regime(
            symbol=sym, timeframe=tf, ts=ts, model=model, label=label, state=state, probabilities=tuple(probabilities)
        )

    def save_correlation(self, snapshot: CorrelationSnapshot) -> None:
        """Idempotent on (timeframe, method, window, ts)."""
        s = snapshot
        matrix = [list(row) for row in s.matrix]
        self._write(_SAVE_CORRELATION, (s.timeframe, s.method, s.window, s.ts, list(s.symbols), matrix))

    def latest_correlation(self, timeframe: str, method: str, window: int | None = None) -> CorrelationSnapshot | None:
        """The newest snapshot of that timeframe, method and window (any window when None)."""
        row = self._one(_LATEST_CORRELATION, (timeframe, method, window, window))
        if row is None:
            return None
        ts, tf, meth, win, symbols, matrix = row
        return CorrelationSnapshot(
            ts=ts,
            timeframe=tf,
            method=meth,
            window=win,
            symbols=tuple(symbols),
            matrix=tuple(tuple(r) for r in matrix),
        )

    def save_risk_snapshot(self, snapshot: RiskSnapshot) -> None:
        """Idempotent on (portfolio, ts)."""
        s = snapshot
        self._write(
            _SAVE_RISK,
            (
                s.portfolio, s.ts, s.confidence, s.horizon_days, s.var, s.cvar, s.method,
                s.equity, s.gross_exposure, s.net_exposure,
            ),
        )  # fmt: skip

    def latest_risk_snapshot(self, portfolio: str) -> RiskSnapshot | None:
        row = self._one(_LATEST_RISK, (portfolio,))
        if row is None:
            return None
        names = ("portfolio", "ts", "confidence", "horizon_days", "var", "cvar", "method", "equity")
        values = dict(zip(names + ("gross_exposure", "net_exposure"), row, strict=True))
        return RiskSnapshot.model_validate(values)

    def save_signal(self, signal: Signal) -> bool:
        """Idempotent on ``signal_id``; False when it was already stored (the first one is kept)."""
        s = signal
        params = (s.signal_id, s.strategy, s.venue, s.symbol, s.timeframe, s.ts, s.target_weight, s.strength, s.regime)
        return self._write(_SAVE_SIGNAL, params) == 1

    def load_signal(self, signal_id: str) -> Signal | None:
        row = self._one(_LOAD_SIGNAL, (signal_id,))
        return None if row is None else _signal(row)

    def strategy_signals(
        self, strategy: str, *, symbol: str | None = None, before: SignalCursor | None = None, limit: int = 100
    ) -> list[Signal]:
        """The stored signals of ``strategy`` (of one ``symbol`` if given), newest bar first, ties by id.

        ``before`` is where the previous page ended (its last signal): only older signals are returned.
        At most ``limit``; a page shorter than ``limit`` is the last.
        """
        if limit < 1:
            raise ValueError(f"limit must be positive, not {limit}")
        ts, signal_id = before if before is not None else (None, None)
        params = {"strategy": strategy, "symbol": symbol, "ts": ts, "signal_id": signal_id, "limit": limit}

        def work(conn: Connection) -> list[tuple[Any, ...]]:
            return conn.execute(_STRATEGY_SIGNALS, params).fetchall()

        return [_signal(row) for row in self._db.run(work)]
