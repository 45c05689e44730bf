"""Parameter grids evaluated in one jitted pass: every moving-average crossover at once.

All moving averages are computed once from one cumulative sum; a numba kernel then walks the
bars once per (fast, slow) pair with the same P&L arithmetic as :func:`quant.backtest.backtest`
for a single long-only instrument (weights 0 or 1, fill at the signal bar's close, cost
``fee`` per unit of turnover charged at that close).
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pandas as pd

from quant._kernels.backtest import ma_crossover_grid_nb, rolling_means_nb
from quant._validation import as_1d

__all__ = ["ma_crossover_grid"]


def _windows(values: Iterable[int], name: str, n: int) -> list[int]:
    out = []
    for w in values:
        if isinstance(w, bool) or not isinstance(w, (int, np.integer)) or not 1 <= w <= n:
            raise ValueError(f"{name} must hold integers in [1, {n}], got {w!r}")
        out.append(int(w))
    if not out:
        raise ValueError(f"{name} is empty")
    return out


def ma_crossover_grid(
    close: pd.Series | np.ndarray,
    fast_windows: Iterable[int],
    slow_windows: Iterable[int],
    fee_bps: float = 0.0,
    periods_per_year: float = 252.0,
) -> pd.DataFrame:
    """Long-only SMA crossover metrics for every ``fast < slow`` pair of the two window lists.

    Convention (the event form of the rule, as vectorbt's ``MA.ma_crossed_above`` /
    ``ma_crossed_below`` with ``Portfolio.from_signals``): enter with all equity at the close of
    a bar where SMA(fast) crosses above SMA(slow) (``fast_t > slow_t`` and
    ``fast_{t-1} <= slow_{t-1}``, both defined), exit at the close of a bar where it crosses
    below; returns are close to close. SMA windows include the current bar. Each entry and each
    exit costs ``fee_bps`` of equity (vectorbt buys ``cash / (price (1 + fee))`` units instead,
    which differs by O(fee²) per trade). Sharpe is ``mean / std (ddof = 1) * sqrt(periods_per_year)``
    of the per-bar net returns over the whole sample, flat bars included.

    Returns
    -------
    DataFrame
        Indexed by (fast, slow), columns total_return, sharpe, trades (entries + exits) and
        exposure (fraction of bars in the market).
    """
    c = as_1d(close, "close", allow_nan=False, min_length=3)
    if (c <= 0.0).any():
        raise ValueError("close must be positive")
    n = c.shape[0]
    fast = _windows(fast_windows, "fast_windows", n)
    slow = _windows(slow_windows, "slow_windows", n)
    if not fee_bps >= 0.0:
        raise ValueError(f"fee_bps must be non-negative, got {fee_bps!r}")
    pairs = [(f, s) for f in fast for s in slow if f < s]
    if not pairs:
        raise ValueError("no (fast, slow) pair with fast < slow")
    unique = sorted(set(fast) | set(slow))
    position = {w: i for i, w in enumerate(unique)}
    mas = rolling_means_nb(c, np.asarray(unique, dtype=np.int64))
    fast_idx = np.asarray([position[f] for f, _ in pairs], dtype=np.int64)
    slow_idx = np.asarray([position[s] for _, s in pairs], dtype=np.int64)
    total, sharpe, trades, exposure = ma_crossover_grid_nb(
        c, mas, fast_idx, slow_idx, float(fee_bps) / 1e4, float(periods_per_year)
    )
    index = pd.MultiIndex.from_tuples(pairs, names=["fast", "slow"])
    return pd.DataFrame(
        {"total_return": total, "sharpe": sharpe, "trades": trades.astype(np.int64), "exposure": exposure},
        index=index,
    )
