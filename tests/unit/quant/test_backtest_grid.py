"""quant.backtest_grid.ma_crossover_grid: vectorbt on real data, and our own backtester."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import talib
import vectorbt as vbt

from desk.local import catalogue
from quant.backtest import annualised_sharpe, backtest
from quant.backtest_grid import ma_crossover_grid

pytestmark = pytest.mark.unit

FAST = [5, 10, 20, 50]
SLOW = [30, 100, 200]


def _close() -> pd.Series:
    return catalogue.sp500_index().iloc[-2520:]


def test_grid_total_returns_match_vectorbt_from_signals() -> None:
    # Given 10 years of the S&P 500 and 10 bps fees
    close = _close()
    grid = ma_crossover_grid(close, FAST, SLOW, fee_bps=10.0)
    pairs = list(grid.index)
    # When vectorbt runs the same crossovers (MA.run, crossed signals, from_signals at the close)
    fast = vbt.MA.run(close, [f for f, _ in pairs], short_name="fast")
    slow = vbt.MA.run(close, [s for _, s in pairs], short_name="slow")
    pf = vbt.Portfolio.from_signals(
        close, fast.ma_crossed_above(slow), fast.ma_crossed_below(slow), fees=0.001, freq="1D"
    )
    # Then total returns agree to O(fee^2) per trade (vectorbt buys cash / (price (1 + fee)))
    np.testing.assert_allclose(grid["total_return"].to_numpy(), pf.total_return().to_numpy(), rtol=0, atol=2e-4)
    assert grid["trades"].to_numpy() == pytest.approx(
        np.asarray([pf.orders.count().iloc[i] for i in range(len(pairs))])
    )


def test_grid_equals_our_backtester_on_the_event_positions() -> None:
    # Given one pair, positions built from TA-Lib SMAs with the crossing rule
    close = _close()
    f, s = talib.SMA(close.to_numpy(), 20), talib.SMA(close.to_numpy(), 100)
    pos = np.zeros(len(close))
    for t in range(1, len(close)):
        pos[t] = pos[t - 1]
        if np.isnan(s[t - 1]):
            continue
        if pos[t] == 0.0 and f[t] > s[t] and f[t - 1] <= s[t - 1]:
            pos[t] = 1.0
        elif pos[t] == 1.0 and f[t] < s[t] and f[t - 1] >= s[t - 1]:
            pos[t] = 0.0
    # When the general backtester runs them, and the grid runs the pair
    res = backtest(close, pd.Series(pos, index=close.index, name=close.name), fee_bps=5.0, initial_capital=1.0)
    row = ma_crossover_grid(close, [20], [100], fee_bps=5.0).loc[(20, 100)]
    # Then both give the same total return, Sharpe and exposure
    assert row["total_return"] == pytest.approx(res.total_return, rel=1e-9)
    assert row["sharpe"] == pytest.approx(annualised_sharpe(res.returns.to_numpy()), rel=1e-9)
    assert row["exposure"] == pytest.approx(res.exposure.mean(), rel=1e-12)


def test_grid_covers_only_fast_below_slow_and_validates() -> None:
    grid = ma_crossover_grid(_close(), [10, 50, 150], [50, 100], fee_bps=0.0)
    assert list(grid.index) == [(10, 50), (10, 100), (50, 100)]
    assert grid.index.names == ["fast", "slow"]
    with pytest.raises(ValueError, match="no \\(fast, slow\\) pair"):
        ma_crossover_grid(_close(), [100], [50])
    with pytest.raises(ValueError, match="fast_windows"):
        ma_crossover_grid(_close(), [0], [50])
    with pytest.raises(ValueError, match="fee_bps"):
        ma_crossover_grid(_close(), [5], [50], fee_bps=-1.0)


def test_fees_only_lower_returns() -> None:
    close = _close()
    free = ma_crossover_grid(close, FAST, SLOW, fee_bps=0.0)
    paid = ma_crossover_grid(close, FAST, SLOW, fee_bps=20.0)
    assert (paid["total_return"] <= free["total_return"]).all()
    assert (paid["trades"] == free["trades"]).all()
    assert ((free["total_return"] - paid["total_return"]) > 0).any()
