"""Correlation: the universe's co-movement at one timeframe, stored as snapshots and announced.

Three estimators of the same returns, each saved as a :class:`CorrelationSnapshot` (method
``ewma``, ``ledoit_wolf``, ``dcc``): RiskMetrics EWMA (reacts fast), Ledoit-Wolf shrinkage (stable
with few observations per asset) and DCC-GARCH (the conditional correlation for the next bar).
PCA of the returns and the equal-weight diversification ratio summarise how much independent
risk the universe holds; they are returned (and logged as metrics by the handler) because the
snapshot schema has no place for them yet.

Returns are log returns of closes on the bars every symbol has (an inner join: a bar missing for
one symbol drops that row rather than inventing a price). The snapshot is stamped with the last
common bar, so a rerun on the same data saves the same keys and publishes the same event id.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

import numpy as np
import pandas as pd

from desk.events import Envelope, new_event
from desk.ports import Clock, EventBus, Store
from desk.schemas.analytics import CorrelationSnapshot
from desk.usecases.ingest import STEPS
from desk.usecases.universe import Universe
from quant.correlation import dcc_garch, ewma_covariance, ledoit_wolf, pca
from quant.garch import MIN_OBSERVATIONS
from quant.portfolio import diversification_ratio

__all__ = ["METHODS", "CorrelationResult", "covariance_to_correlation", "log_returns", "run_correlation"]

METHODS = ("ewma", "ledoit_wolf", "dcc")
_NAMESPACE = uuid.UUID("3c9e7d52-8a41-4f0b-b6e2-94d1c0a7e5f3")


@dataclass(frozen=True, slots=True)
class CorrelationResult:
    timeframe: str
    symbols: tuple[str, ...]
    observations: int
    snapshots: dict[str, CorrelationSnapshot] = field(default_factory=dict)
    pca_explained: tuple[float, ...] = ()
    diversification_ratio: float | None = None
    lw_shrinkage: float | None = None
    failures: dict[str, str] = field(default_factory=dict)
    skipped: str | None = None
    event: Envelope | None = None


def covariance_to_correlation(cov: np.ndarray) -> np.ndarray:
    """``C_ij = S_ij / (s_i s_j)``, symmetrised, clipped to [-1, 1], unit diagonal (rounding only)."""
    sd = np.sqrt(np.diag(cov))
    corr = cov / np.outer(sd, sd)
    corr = np.clip((corr + corr.T) / 2.0, -1.0, 1.0)
    np.fill_diagonal(corr, 1.0)
    return np.asarray(corr, dtype=float)


def log_returns(closes: pd.DataFrame) -> pd.DataFrame:
    ratio: pd.DataFrame = closes / closes.shift(1)
    return ratio.iloc[1:].apply(np.log)


def _closes(
    store: Store, universe: Universe, timeframe: str, symbols: Sequence[str], end: datetime, rows: int
) -> pd.DataFrame:
    start = end - STEPS[timeframe] * int(rows * 1.5 + 10)  # room for weekends and holidays
    columns = {}
    for symbol in symbols:
        bars = store.load_bars(universe.venue_of(symbol, timeframe), symbol, timeframe, start, end)
        columns[symbol] = pd.Series([float(b.close) for b in bars], index=[b.ts for b in bars], dtype=float)
    return pd.DataFrame(columns).dropna().sort_index().iloc[-rows:]


def _snapshot(
    method: str, ts: datetime, timeframe: str, window: int, symbols: tuple[str, ...], corr: np.ndarray
) -> CorrelationSnapshot:
    return CorrelationSnapshot(
        ts=ts,
        timeframe=timeframe,
        method=method,
        window=window,
        symbols=symbols,
        matrix=tuple(tuple(float(v) for v in row) for row in corr),
    )


def run_correlation(
    timeframe: str,
    universe: Universe,
    *,
    store: Store,
    bus: EventBus,
    clock: Clock,
    end: datetime | None = None,
    window: int = 250,
    lam: float = 0.94,
    primary: str = "dcc",
    correlation_id: str | None = None,
) -> CorrelationResult:
    """Estimate, store and announce the correlation of ``universe``'s symbols at ``timeframe``.

    ``end`` (exclusive) defaults to the clock; ``window`` is the number of returns used. The
    ``primary`` method's snapshot is published as ``correlation.updated`` (falling back to ``ewma``
    when DCC cannot be fitted). Fewer than two symbols, or fewer than ``MIN_OBSERVATIONS``
    common returns, skip the run with a reason instead of storing a meaningless matrix.
    """
    symbols = tuple(universe.symbols(timeframe))
    if len(symbols) < 2:
        return CorrelationResult(timeframe, symbols, 0, skipped="fewer than two symbols")
    closes = _closes(store, universe, timeframe, symbols, end or clock.now(), window + 1)
    returns = log_returns(closes)
    if len(returns) < MIN_OBSERVATIONS:
        return CorrelationResult(timeframe, symbols, len(returns), skipped=f"only {len(returns)} common returns")

    x = returns.to_numpy()
    ts = returns.index[-1].to_pydatetime()
    n_obs = len(returns)
    matrices: dict[str, np.ndarray] = {}
    failures: dict[str, str] = {}
    matrices["ewma"] = covariance_to_correlation(ewma_covariance(x, lam, init_window=min(20, n_obs)))
    lw = ledoit_wolf(x)
    matrices["ledoit_wolf"] = covariance_to_correlation(lw.covariance)
    try:
        matrices["dcc"] = np.asarray(dcc_garch(returns).last_correlation, dtype=float)
        matrices["dcc"] = covariance_to_correlation(matrices["dcc"])
    except (ValueError, np.linalg.LinAlgError) as exc:  # a degenerate series: keep the other two
        failures["dcc"] = str(exc)

    snapshots = {m: _snapshot(m, ts, timeframe, n_obs, symbols, c) for m, c in matrices.items()}
    explained = tuple(float(v) for v in pca(x).explained_variance_ratio)
    weights = np.full(len(symbols), 1.0 / len(symbols))
    dr = diversification_ratio(weights, lw.covariance)

    chosen = primary if primary in snapshots else "ewma"
    event = new_event(
        "correlation.updated",
        snapshots[chosen],
        clock=clock,
        event_id=str(uuid.uuid5(_NAMESPACE, f"{chosen}|{timeframe}|{n_obs}|{','.join(symbols)}|{ts.isoformat()}")),
        correlation_id=correlation_id,
    )
    for snapshot in snapshots.values():
        store.save_correlation(snapshot)
    bus.publish([event])
    return CorrelationResult(
        timeframe=timeframe,
        symbols=symbols,
        observations=n_obs,
        snapshots=snapshots,
        pca_explained=explained,
        diversification_ratio=dr,
        lw_shrinkage=float(lw.shrinkage),
        failures=failures,
        event=event,
    )
