"""Walk-forward optimisation: choose parameters on a train window, trade them on the next window.

Folds advance by ``test`` bars: fold ``i`` trains on bars ``[i*test, i*test + train)`` and is
scored out of sample on the ``test`` bars that follow, so test windows never overlap and
together tile the sample after the first ``train`` bars (a last partial window is dropped).
Parameters are chosen from the train window's data only. Out of sample, the strategy sees the
train window as history (indicator warm-up) plus the test window, and the backtest holds the
targets decided from the last train close on; every target is decided with data up to its own
bar, so that history is the only information from before the test window it uses.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from quant.backtest import annualised_sharpe, backtest, max_drawdown_of, total_return_of
from quant.signals.base import Strategy

__all__ = ["WalkForwardResult", "expand_grid", "walk_forward"]

Metric = Callable[[pd.Series], float]


@dataclass(frozen=True)
class WalkForwardResult:
    """Outcome of :func:`walk_forward`.

    Attributes
    ----------
    equity : Series
        Out-of-sample equity, starting at 1, stitched across the test windows (compounded).
    returns : Series
        Out-of-sample net returns per bar, over every test window.
    folds : DataFrame
        One row per fold: train_start, train_end, test_start, test_end (inclusive timestamps),
        params (the chosen dict), in_sample and out_of_sample values of the metric.
    """

    equity: pd.Series
    returns: pd.Series
    folds: pd.DataFrame


def expand_grid(grid: Mapping[str, Iterable[Any]] | Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """A dict of lists becomes their Cartesian product; a list of dicts is taken as it is."""
    if isinstance(grid, Mapping):
        keys = list(grid)
        return [dict(zip(keys, combo, strict=True)) for combo in itertools.product(*(list(grid[k]) for k in keys))]
    out = [dict(g) for g in grid]
    return out


def _metric(metric: str | Metric, periods_per_year: float) -> Metric:
    if callable(metric):
        return metric
    table: dict[str, Metric] = {
        "sharpe": lambda r: annualised_sharpe(r.to_numpy(), periods_per_year),
        "total_return": lambda r: total_return_of(r.to_numpy()),
        "max_drawdown": lambda r: max_drawdown_of(r.to_numpy()),
    }
    if metric not in table:
        raise ValueError(f"metric must be one of {sorted(table)} or a callable, got {metric!r}")
    return table[metric]


def walk_forward(
    strategy_factory: Callable[..., Strategy],
    prices: pd.DataFrame | pd.Series,
    train: int,
    test: int,
    grid: Mapping[str, Iterable[Any]] | Iterable[Mapping[str, Any]],
    metric: str | Metric = "sharpe",
    *,
    periods_per_year: float = 252.0,
    **backtest_kwargs: Any,
) -> WalkForwardResult:
    """Rolling walk-forward optimisation of ``strategy_factory(**params)`` over ``grid``.

    Parameters
    ----------
    strategy_factory : callable
        Builds a :class:`~quant.signals.base.Strategy` from one parameter dict.
    prices : DataFrame or Series
        Closes, rows = bars ascending.
    train, test : int
        Lengths, in bars, of each fold's train and test windows (``test`` is also the step).
    grid : dict of lists, or list of dicts
        Candidate parameters (see :func:`expand_grid`).
    metric : {"sharpe", "total_return", "max_drawdown"} or callable
        Scored on net backtest returns; the largest wins (ties: first in grid order). A
        parameter set whose score is NaN is never chosen unless all are NaN.
    periods_per_year : float
        Annualisation of the Sharpe ratio.
    **backtest_kwargs
        Passed to :func:`quant.backtest.backtest` (fees, lag, ...), in and out of sample.
    """
    frame = prices.to_frame() if isinstance(prices, pd.Series) else prices
    if not isinstance(frame, pd.DataFrame):
        raise ValueError("prices must be a pandas DataFrame or Series")
    n = frame.shape[0]
    for label, value in (("train", train), ("test", test)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 2:
            raise ValueError(f"{label} must be an integer >= 2, got {value!r}")
    if train + test > n:
        raise ValueError(f"train + test ({train} + {test}) is longer than the data ({n} bars)")
    candidates = expand_grid(grid)
    if not candidates:
        raise ValueError("grid is empty")
    score = _metric(metric, periods_per_year)

    rows = []
    oos: list[pd.Series] = []
    start = 0
    while start + train + test <= n:
        train_px = frame.iloc[start : start + train]
        best_i, best_val = 0, -math.inf
        for i, params in enumerate(candidates):
            strat = strategy_factory(**params)
            res = backtest(train_px, strat.target_positions(train_px), **backtest_kwargs)
            val = score(res.returns)
            if not math.isnan(val) and val > best_val:
                best_i, best_val = i, val
        chosen = candidates[best_i]
        history = frame.iloc[start : start + train + test]
        targets = strategy_factory(**chosen).target_positions(history)
        # From the last train close on: the first bar's return is 0 and its close is where the
        # first test-window position is bought.
        window_px = history.iloc[train - 1 :]
        res = backtest(window_px, targets.iloc[train - 1 :], **backtest_kwargs)
        test_returns = res.returns.iloc[1:]
        # The entry cost at the last train close belongs to this fold's first test bar.
        first_cost = res.returns.iloc[0]
        test_returns.iloc[0] = (1.0 + test_returns.iloc[0]) * (1.0 + first_cost) - 1.0
        oos.append(test_returns)
        rows.append(
            {
                "train_start": train_px.index[0],
                "train_end": train_px.index[-1],
                "test_start": test_returns.index[0],
                "test_end": test_returns.index[-1],
                "params": chosen,
                "in_sample": best_val if best_val > -math.inf else math.nan,
                "out_of_sample": score(test_returns),
            }
        )
        start += test
    returns = pd.concat(oos).rename("returns")
    equity = (1.0 + returns).cumprod().rename("equity")
    return WalkForwardResult(equity=equity, returns=returns, folds=pd.DataFrame(rows))
