"""Pairs trading (statistical arbitrage): spread construction, mean-reversion speed and positions.

The spread of a pair is the Engle-Granger residual ``s_t = y_t - β x_t - α`` (see
:mod:`quant.signals.cointegration`). Trading rules follow Gatev, Goetzmann and Rouwenhorst (2006)
and Vidyamurthy (2004): standardise the spread with a trailing window, enter when it is stretched,
leave when it is back near its mean, and stop out when it keeps diverging.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from itertools import combinations
from typing import Any

import numpy as np
import pandas as pd

from quant._kernels.signals import pairs_positions_nb
from quant._validation import as_1d, as_2d, check_period, labels_of, wrap_like
from quant.signals.base import ALL_BUT_CRISIS, Strategy, StrategyData, normalise_regimes
from quant.signals.cointegration import EngleGrangerResult, engle_granger

__all__ = [
    "EngleGrangerResult",
    "PairsStrategy",
    "engle_granger",
    "half_life",
    "pairs_positions",
    "rolling_zscore",
    "scan_pairs",
]


def half_life(spread: Any) -> float:
    """Half-life of mean reversion of a spread, in bars, from its discrete Ornstein-Uhlenbeck fit.

    Convention: OLS of ``Δs_t = a + b s_{t-1} + ε_t`` and ``half_life = -ln 2 / b`` (the
    continuous-time approximation with ``θ = -b`` per bar; Chan, 2013, ch. 2). Returns ``inf``
    when ``b >= 0`` (no mean reversion).

    Parameters
    ----------
    spread : array_like or pandas.Series
        The spread levels, no NaN, at least 3 values.
    """
    s = as_1d(spread, "spread", allow_nan=False, min_length=3)
    lagged = s[:-1]
    ds = np.diff(s)
    x = np.column_stack([np.ones_like(lagged), lagged])
    (_, b), *_ = np.linalg.lstsq(x, ds, rcond=None)
    return math.inf if b >= 0.0 else float(-math.log(2.0) / b)


def rolling_zscore(spread: Any, window: int) -> Any:
    """Trailing z-score ``(s_t - mean_w) / std_w`` over the last ``window`` bars, including bar ``t``.

    Convention: sample standard deviation (ddof = 1, as pandas ``rolling().std()``); NaN for the
    first ``window - 1`` bars and where the window's deviation is zero. Causal: bar ``t`` uses
    nothing after ``t``.
    """
    s = as_1d(spread, "spread")
    window = check_period(window, s.shape[0], "window", minimum=2)
    roll = pd.Series(s).rolling(window, min_periods=window)
    std = roll.std(ddof=1).to_numpy(copy=True)
    std[std <= 1e-12 * np.maximum(1.0, np.abs(s))] = np.nan
    z = (s - roll.mean().to_numpy()) / std
    return wrap_like(spread, z, name="zscore")


def pairs_positions(z: Any, entry: float = 2.0, exit: float = 0.5, stop: float = 4.0) -> Any:
    """Spread position from its z-score: +1 long the spread, -1 short, 0 flat.

    Rules, evaluated at each bar's close in order (a numba state machine):

    * flat: go short when ``entry < z <= stop``, long when ``-stop <= z < -entry``;
    * long (short): stop out when ``|z| > stop``; otherwise exit when ``z >= -exit``
      (``z <= exit``), i.e. back inside the ±exit band or overshot through it; after an
      overshoot beyond ``entry`` the opposite position is opened on the same bar;
    * after a stop-out (or whenever flat with ``|z| > stop``) stay flat until ``|z| < exit``;
    * NaN z: flat.

    Long the spread means long 1 unit of ``y`` and short ``β`` units of ``x``.
    """
    arr = as_1d(z, "z")
    if not 0.0 <= exit < entry < stop:
        raise ValueError(f"thresholds must satisfy 0 <= exit < entry < stop, got {exit=}, {entry=}, {stop=}")
    out = pairs_positions_nb(arr, float(entry), float(exit), float(stop))
    return wrap_like(z, out, name="position")


def scan_pairs(
    prices: pd.DataFrame,
    *,
    log_prices: bool = True,
    trend: str = "c",
    autolag: str | None = "aic",
    max_pvalue: float = 1.0,
) -> pd.DataFrame:
    """Engle-Granger test of every pair of columns, ranked by p-value then half-life.

    Each unordered pair ``(a, b)`` with ``a`` before ``b`` in the columns is tested once with
    ``y = a``, ``x = b`` (the test is not symmetric; swap the columns to test the other way).
    Log prices by default, so the hedge ratio is a ratio of notionals.

    Returns
    -------
    DataFrame
        Columns y, x, hedge_ratio, intercept, adf_stat, pvalue, half_life, lags; rows with
        ``pvalue <= max_pvalue`` sorted by (pvalue, half_life), index 0..m-1.
    """
    arr = as_2d(prices, "prices", min_rows=20, min_cols=2)
    if log_prices:
        if (arr <= 0.0).any():
            raise ValueError("prices must be positive when log_prices=True")
        arr = np.log(arr)
    names = labels_of(prices, arr.shape[1])
    rows = []
    for i, j in combinations(range(arr.shape[1]), 2):
        res = engle_granger(arr[:, i], arr[:, j], trend=trend, autolag=autolag)
        if res.pvalue > max_pvalue:
            continue
        hl = half_life(res.spread)
        rows.append((names[i], names[j], res.hedge_ratio, res.intercept, res.adf_stat, res.pvalue, hl, res.lags))
    cols = ["y", "x", "hedge_ratio", "intercept", "adf_stat", "pvalue", "half_life", "lags"]
    table = pd.DataFrame(rows, columns=cols)
    return table.sort_values(["pvalue", "half_life"], kind="mergesort").reset_index(drop=True)


class PairsStrategy(Strategy):
    """Trade the spread of two instruments with :func:`pairs_positions` on its rolling z-score.

    The hedge ratio is estimated once per call by :func:`engle_granger` on log prices over the
    first ``formation`` bars, and targets are 0 during those bars, so no target uses a hedge
    ratio fitted on later data (the formation/trading split of Gatev et al., 2006). Weights are
    dollar-neutral in log terms: ``+p / (1 + |β|)`` on ``y`` and ``-p β / (1 + |β|)`` on ``x``
    for spread position ``p``, so gross exposure is 1.

    Parameters
    ----------
    y, x : str
        Column names of the pair in the prices.
    formation : int
        Bars used to estimate the hedge ratio.
    window : int
        Trailing window of the spread's z-score.
    entry, exit, stop : float
        Thresholds of :func:`pairs_positions`.
    regimes : iterable of str, optional
        Regimes it trades in; default every regime but CRISIS.
    """

    name = "pairs"

    def __init__(
        self,
        y: str,
        x: str,
        formation: int = 252,
        window: int = 60,
        entry: float = 2.0,
        exit: float = 0.5,
        stop: float = 4.0,
        regimes: Any = ALL_BUT_CRISIS,
    ) -> None:
        if not 0.0 <= exit < entry < stop:
            raise ValueError(f"thresholds must satisfy 0 <= exit < entry < stop, got {exit=}, {entry=}, {stop=}")
        self.y, self.x = y, x
        self.formation, self.window = int(formation), int(window)
        self.entry, self.exit, self.stop = float(entry), float(exit), float(stop)
        self.regimes = normalise_regimes(regimes)

    @property
    def params(self) -> Mapping[str, Any]:
        return {
            "y": self.y,
            "x": self.x,
            "formation": self.formation,
            "window": self.window,
            "entry": self.entry,
            "exit": self.exit,
            "stop": self.stop,
        }

    def raw_targets(self, data: StrategyData) -> pd.DataFrame:
        prices = data.prices
        for col in (self.y, self.x):
            if col not in prices.columns:
                raise ValueError(f"pairs: column {col!r} not in prices {list(prices.columns)}")
        n = prices.shape[0]
        check_period(self.formation, n, "formation", minimum=20)
        check_period(self.window, n, "window", minimum=2)
        logs = np.log(prices[[self.y, self.x]].to_numpy(dtype=float))
        fit = engle_granger(logs[: self.formation, 0], logs[: self.formation, 1])
        beta = fit.hedge_ratio
        spread = logs[:, 0] - beta * logs[:, 1] - fit.intercept
        pos = pairs_positions(rolling_zscore(spread, self.window), self.entry, self.exit, self.stop)
        pos[: self.formation] = 0.0
        scale = 1.0 + abs(beta)
        out = pd.DataFrame(0.0, index=prices.index, columns=prices.columns)
        out[self.y] = pos / scale
        out[self.x] = -pos * beta / scale
        return out
