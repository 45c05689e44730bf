"""Stress tests: historical scenarios replayed from prices, hypothetical and factor shocks.

Re-exported by :mod:`quant.risk`. A scenario is a vector of simple returns per asset; a book is a
vector of signed notional values (shorts negative); the P&L of a position under a scenario is
``notional x move``, summed over positions for the book. No revaluation of non-linear
instruments is attempted (the desk holds delta-one positions).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pandas as pd

from quant._validation import FloatArray, as_1d, as_2d

__all__ = ["DEFAULT_WINDOWS", "factor_scenarios", "historical_scenarios", "stress_test"]

# From the close of the first date (or the last close before it) to the close of the second.
DEFAULT_WINDOWS: dict[str, tuple[str, str]] = {
    "gfc_2008": ("2008-08-29", "2008-11-28"),  # September to November 2008, month-end closes
    "covid_2020": ("2020-02-19", "2020-03-23"),  # S&P 500 close-to-close peak to trough
    "drawdown_2022": ("2022-01-03", "2022-10-12"),  # S&P 500 close-to-close peak to trough
}


def historical_scenarios(
    prices: pd.DataFrame | pd.Series,
    windows: Mapping[str, tuple[str, str]] = DEFAULT_WINDOWS,
    *,
    missing: str = "raise",
) -> pd.DataFrame:
    """Historical stress scenarios: each asset's cumulative return over each named window.

    The move is ``P(end) / P(start) - 1`` with each date taken as the last close on or before it
    (so a window starting on a holiday starts from the previous close). A window the prices do not
    cover (starts before the first date or ends after the last) raises, or is left out with
    ``missing="skip"``. An asset with no price at either end gets NaN for that window.

    Returns
    -------
    pandas.DataFrame
        Scenarios (index, named "scenario") x assets, moves as fractions (-0.3 = -30%).
    """
    if missing not in ("raise", "skip"):
        raise ValueError(f"missing must be 'raise' or 'skip', got {missing!r}")
    frame = prices.to_frame() if isinstance(prices, pd.Series) else prices
    if not isinstance(frame, pd.DataFrame) or not isinstance(frame.index, pd.DatetimeIndex):
        raise ValueError("prices must be a DataFrame or Series with a DatetimeIndex")
    if not frame.index.is_monotonic_increasing or frame.empty:
        raise ValueError("prices must be non-empty and sorted by date")
    values = as_2d(frame, "prices", allow_nan=True, min_rows=1)
    if (values <= 0.0).any():
        raise ValueError("prices must be positive")
    rows: dict[str, FloatArray] = {}
    for name, (start, end) in windows.items():
        t0, t1 = pd.Timestamp(start), pd.Timestamp(end)
        if t0 >= t1:
            raise ValueError(f"window {name!r} starts on or after its end ({start} -> {end})")
        if t0 < frame.index[0] or t1 > frame.index[-1]:
            if missing == "skip":
                continue
            raise ValueError(f"prices ({frame.index[0].date()} -> {frame.index[-1].date()}) do not cover {name!r}")
        i0 = int(frame.index.searchsorted(t0, side="right")) - 1
        i1 = int(frame.index.searchsorted(t1, side="right")) - 1
        rows[name] = values[i1] / values[i0] - 1.0
    out = pd.DataFrame.from_dict(rows, orient="index", columns=frame.columns)
    out.index.name = "scenario"
    return out


def factor_scenarios(
    factor_moves: pd.DataFrame | Mapping[str, Mapping[str, float]], betas: pd.DataFrame
) -> pd.DataFrame:
    """Hypothetical scenarios from factor moves: asset move = ``Σ_f beta[asset, f] · move[f]``.

    ``factor_moves`` is scenarios x factors (a DataFrame, or ``{scenario: {factor: move}}`` where an
    unnamed factor does not move); ``betas`` is assets x factors. Idiosyncratic moves are zero (a
    linear factor model's expected move given the factors).

    Returns
    -------
    pandas.DataFrame
        Scenarios x assets.
    """
    moves = factor_moves if isinstance(factor_moves, pd.DataFrame) else _sparse_frame(factor_moves, betas.columns)
    unknown = sorted(set(map(str, moves.columns)) - set(map(str, betas.columns)))
    if unknown:
        raise ValueError(f"factor moves name factors with no betas: {unknown}")
    B = as_2d(betas, "betas", min_rows=1)
    M = as_2d(moves.reindex(columns=betas.columns, fill_value=0.0), "factor_moves", min_rows=1)
    out = pd.DataFrame(M @ B.T, index=moves.index, columns=betas.index)
    out.index.name = "scenario"
    return out


def _sparse_frame(shocks: Mapping[str, Mapping[str, float]], columns: Any) -> pd.DataFrame:
    frame = pd.DataFrame.from_dict({k: dict(v) for k, v in shocks.items()}, orient="index")
    return frame.reindex(columns=list(dict.fromkeys([*frame.columns, *columns]))).fillna(0.0)


def stress_test(positions: pd.Series, scenarios: pd.DataFrame | Mapping[str, Mapping[str, float]]) -> pd.DataFrame:
    """P&L of a book under each scenario, per position and in total.

    ``positions`` are signed notional values per asset (shorts negative). ``scenarios`` are moves
    as fractions, scenarios x assets: a DataFrame (e.g. from :func:`historical_scenarios` or
    :func:`factor_scenarios`) must price every held asset, NaN included, or it raises; a mapping
    ``{scenario: {asset: move}}`` is a hypothetical shock, in which an unnamed asset does not move.
    P&L is linear, ``notional x move`` (no convexity, no carry).

    Returns
    -------
    pandas.DataFrame
        Scenarios x (held assets + "total"), in the currency of ``positions``.
    """
    if not isinstance(positions, pd.Series):
        raise ValueError("positions must be a pandas Series of notional values indexed by asset")
    notional = as_1d(positions, "positions", allow_nan=False)
    frame = scenarios if isinstance(scenarios, pd.DataFrame) else _sparse_frame(scenarios, positions.index)
    absent = [a for a in positions.index if a not in frame.columns]
    if absent:
        raise ValueError(f"scenarios give no move for held assets {absent}")
    moves = frame[list(positions.index)]
    if moves.isna().to_numpy().any():
        bad = moves.columns[moves.isna().any()].tolist()
        raise ValueError(f"scenarios have NaN moves for held assets {bad}")
    pnl = as_2d(moves, "scenarios", min_rows=1) * notional
    out = pd.DataFrame(pnl, index=frame.index, columns=positions.index)
    out["total"] = pnl.sum(axis=1)
    return out
