"""Backtester speed: the MA-crossover parameter grid and a single backtest against vectorbt.

vectorbt is timed warm (the harness runs it once before timing), so its numba compile is
excluded, as ours is. Both grids give the same total returns to O(fee²) per trade (see
tests/unit/quant/test_backtest_grid.py); the Engle-Granger test is timed against statsmodels.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from benchmarks.harness import Bench
from desk.local import catalogue
from quant.backtest import backtest
from quant.backtest_grid import ma_crossover_grid
from quant.signals import MACrossoverStrategy, engle_granger

FAST = list(range(5, 55))  # 50 fast windows
SLOW = list(range(60, 260, 10))  # x 20 slow windows = 1,000 pairs
FEE = 0.001


def _grid_setup() -> dict[str, Any]:
    close = catalogue.sp500_index().iloc[-2520:]
    pairs = [(f, s) for f in FAST for s in SLOW]
    return {"close": close, "fw": [f for f, _ in pairs], "sw": [s for _, s in pairs]}


def _grid_ours(d: dict[str, Any]) -> pd.DataFrame:
    return ma_crossover_grid(d["close"], FAST, SLOW, fee_bps=FEE * 1e4)


def _grid_vbt(d: dict[str, Any]) -> Any:
    import vectorbt as vbt

    fast = vbt.MA.run(d["close"], d["fw"], short_name="fast")
    slow = vbt.MA.run(d["close"], d["sw"], short_name="slow")
    pf = vbt.Portfolio.from_signals(
        d["close"], fast.ma_crossed_above(slow), fast.ma_crossed_below(slow), fees=FEE, freq="1D"
    )
    return pf.total_return()


def _single_setup() -> dict[str, Any]:
    px = catalogue.sp500_stocks()[["KO", "PEP", "XOM", "CVX", "JNJ"]].iloc[-2520:]
    weights = MACrossoverStrategy(20, 100, long_only=True).target_positions(px)
    return {"px": px, "w": weights}


def _single_ours(d: dict[str, Any]) -> float:
    return backtest(d["px"], d["w"], fee_bps=10.0).total_return


def _single_vbt(d: dict[str, Any]) -> float:
    import vectorbt as vbt

    pf = vbt.Portfolio.from_orders(
        d["px"],
        size=d["w"],
        size_type="targetpercent",
        fees=FEE,
        group_by=True,
        cash_sharing=True,
        call_seq="auto",
        freq="1D",
    )
    return float(pf.total_return())


def _eg_setup() -> tuple[np.ndarray, np.ndarray]:
    px = np.log(catalogue.sp500_stocks()[["KO", "PEP"]].to_numpy())
    return px[:, 0].copy(), px[:, 1].copy()


def _eg_ours(d: tuple[np.ndarray, np.ndarray]) -> float:
    return engle_granger(d[0], d[1]).pvalue


def _eg_statsmodels(d: tuple[np.ndarray, np.ndarray]) -> float:
    from statsmodels.tsa.stattools import coint

    return float(coint(d[0], d[1], trend="c", autolag="aic")[1])


BENCHMARKS = [
    Bench(
        "ma_crossover_grid 1,000 pairs x 2,520 days",
        _grid_setup,
        _grid_ours,
        _grid_vbt,
        "vectorbt MA.run + from_signals (warm)",
        target=5.0,
        repeat=3,
    ),
    Bench(
        "backtest 5 assets x 2,520 days",
        _single_setup,
        _single_ours,
        _single_vbt,
        "vectorbt from_orders targetpercent (warm)",
        target=1.0,
    ),
    Bench(
        "engle_granger KO/PEP 8,313 days, autolag=aic",
        _eg_setup,
        _eg_ours,
        _eg_statsmodels,
        "statsmodels coint",
        target=1.0,
        repeat=3,
    ),
]
