"""quant.backtest: P&L arithmetic by hand, no look-ahead, costs, and vectorbt on real data."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import vectorbt as vbt
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from desk.local import catalogue
from quant.backtest import annualised_sharpe, backtest, max_drawdown_of, total_return_of
from quant.signals import MACrossoverStrategy

pytestmark = pytest.mark.unit


def _tiny() -> tuple[pd.DataFrame, pd.DataFrame]:
    idx = pd.date_range("2024-01-01", periods=4, freq="D")
    prices = pd.DataFrame({"A": [100.0, 110.0, 99.0, 99.0], "B": [50.0, 50.0, 55.0, 60.0]}, index=idx)
    targets = pd.DataFrame({"A": [1.0, 0.5, 0.0, 0.0], "B": [0.0, 0.5, 0.0, 0.0]}, index=idx)
    return prices, targets


def test_pnl_arithmetic_by_hand() -> None:
    # Given 2 assets over 4 bars, targets (1, 0) -> (.5, .5) -> flat, 10 bps fee, default lag 1
    prices, targets = _tiny()
    res = backtest(prices, targets, fee_bps=10.0, initial_capital=1000.0)
    # Then, by hand:
    # bar 0: nothing held; buy A to weight 1 at the close: cost 1 * 0.001 of 1000
    e0 = 1000.0 * (1 - 0.001)
    # bar 1: A +10 %; rebalance (1, 0) -> (.5, .5): turnover 1
    e1 = e0 * 1.10 * (1 - 0.001)
    # bar 2: A -10 %, B +10 %: gross 0; weights drift to (.45, .55); sell both: turnover 1
    e2 = e1 * 1.0 * (1 - 0.001)
    # bar 3: flat
    expected_equity = [e0, e1, e2, e2]
    np.testing.assert_allclose(res.equity.to_numpy(), expected_equity, rtol=1e-12)
    np.testing.assert_allclose(res.gross_returns.to_numpy(), [0.0, 0.10, 0.0, 0.0], atol=1e-15)
    np.testing.assert_allclose(res.turnover.to_numpy(), [1.0, 1.0, 1.0, 0.0], atol=1e-12)
    np.testing.assert_allclose(res.costs.to_numpy(), [1.0, e0 * 1.1 * 0.001, e1 * 0.001, 0.0], rtol=1e-12)
    np.testing.assert_allclose(res.positions.to_numpy(), [[0, 0], [1, 0], [0.5, 0.5], [0, 0]])
    np.testing.assert_allclose(res.exposure.to_numpy(), [0.0, 1.0, 1.0, 0.0])
    # traded notional at bar 2's close: -.45 and -.55 of the equity before costs
    np.testing.assert_allclose(res.trades.iloc[2].to_numpy(), [-0.45 * e1, -0.55 * e1], rtol=1e-12)
    np.testing.assert_allclose(res.returns.to_numpy(), np.array(expected_equity) / [1000.0, e0, e1, e2] - 1.0)
    assert res.total_return == pytest.approx(e2 / 1000.0 - 1.0)


def test_a_peeking_signal_only_pays_when_execution_lag_is_zero() -> None:
    # Given the S&P 500 index and a signal that looks at its own bar's return: sign(r_t)
    close = catalogue.sp500_index().iloc[-2520:]
    peek = np.sign(close.pct_change().fillna(0.0)).to_frame()
    # When backtested with the default lag and with execution_lag=0
    honest = backtest(close, peek)
    cheating = backtest(close, peek, execution_lag=0)
    # Then only the look-ahead run is spectacular
    assert cheating.sharpe() > 10.0
    assert abs(honest.sharpe()) < 1.5
    # And the lag is exactly a shift of the targets
    shifted = backtest(close, peek.shift(1), execution_lag=0)
    np.testing.assert_allclose(honest.returns.to_numpy()[1:], shifted.returns.to_numpy()[1:], atol=1e-15)


def test_single_asset_strategy_matches_vectorbt_from_orders() -> None:
    # Given a long-only 20/100 MA crossover on 10 years of the S&P 500, 10 bps fees
    close = catalogue.sp500_index().iloc[-2520:]
    weights = MACrossoverStrategy(20, 100, long_only=True).target_positions(close)
    ours = backtest(close, weights, fee_bps=10.0, initial_capital=1e6)
    # When vectorbt orders the same target percent at each close (it fills on the signal bar)
    pf = vbt.Portfolio.from_orders(
        close, size=weights.iloc[:, 0], size_type="targetpercent", fees=0.001, init_cash=1e6, freq="1D"
    )
    # Then total returns agree to O(fee^2) per trade: vectorbt buys cash / (price (1 + fee))
    # units (fee on the traded amount) where we charge fee * turnover of pre-trade equity
    assert ours.total_return == pytest.approx(pf.total_return(), rel=1e-4)
    np.testing.assert_allclose(ours.equity.to_numpy(), pf.value().to_numpy(), rtol=1e-4)


def test_multi_asset_rebalancing_matches_vectorbt_with_cash_sharing() -> None:
    # Given three real stocks held 1/3 each from bar 50, rebalanced at every close, 10 bps fees
    px = catalogue.sp500_stocks()[["KO", "PEP", "XOM"]].iloc[-1000:]
    weights = pd.DataFrame(1.0 / 3.0, index=px.index, columns=px.columns)
    weights.iloc[:50] = 0.0
    ours = backtest(px, weights, fee_bps=10.0, initial_capital=1e6)
    # When vectorbt rebalances the same targets in one cash-sharing group (sells first)
    pf = vbt.Portfolio.from_orders(
        px,
        size=weights,
        size_type="targetpercent",
        fees=0.001,
        init_cash=1e6,
        group_by=True,
        cash_sharing=True,
        call_seq="auto",
        freq="1D",
    )
    # Then the equity curves agree to O(fee^2)
    np.testing.assert_allclose(ours.equity.to_numpy(), pf.value().to_numpy(), rtol=1e-4)


def test_impact_follows_the_square_root_law() -> None:
    # Given one buy of the whole account at 100 with ADV 1000 units and sigma 2 % per bar
    idx = pd.date_range("2024-01-01", periods=3, freq="D")
    prices = pd.Series([100.0, 100.0, 100.0], index=idx, name="A")
    targets = pd.Series([1.0, 1.0, 1.0], index=idx, name="A")
    res = backtest(prices, targets, impact_coef=0.5, adv=1000.0, sigma=0.02, initial_capital=10_000.0)
    # Then the cost is Y * sigma * sqrt(Q / ADV) * notional, Q = 10,000 / 100 = 100 units
    assert res.costs.iloc[0] == pytest.approx(0.5 * 0.02 * math.sqrt(100 / 1000) * 10_000.0)
    # And a quarter of the ADV doubles it: the cost scales as ADV^(-1/2)
    thin = backtest(prices, targets, impact_coef=0.5, adv=250.0, sigma=0.02, initial_capital=10_000.0)
    assert thin.costs.iloc[0] == pytest.approx(2.0 * res.costs.iloc[0])
    # And without ADV there is no impact at all
    assert backtest(prices, targets, impact_coef=0.5).costs.sum() == 0.0


def test_default_sigma_is_the_trailing_return_std() -> None:
    close = catalogue.sp500_index().iloc[-300:]
    weights = pd.Series(np.where(np.arange(300) % 50 < 25, 1.0, 0.0), index=close.index, name=close.name)
    auto = backtest(close, weights, adv=1e5, impact_coef=1.0)
    sigma = close.pct_change().fillna(0.0).rolling(20, min_periods=2).std().fillna(0.0)
    explicit = backtest(close, weights, adv=1e5, impact_coef=1.0, sigma=sigma.to_frame())
    np.testing.assert_allclose(auto.equity.to_numpy(), explicit.equity.to_numpy(), rtol=1e-12)
    assert auto.costs.sum() > 0.0


def test_local_metrics_follow_their_formulas() -> None:
    r = np.array([0.01, -0.02, 0.03, 0.0])
    assert annualised_sharpe(r, 252) == pytest.approx(r.mean() / r.std(ddof=1) * math.sqrt(252))
    assert total_return_of(r) == pytest.approx(1.01 * 0.98 * 1.03 - 1.0)
    assert max_drawdown_of(r) == pytest.approx(-0.02)
    assert math.isnan(annualised_sharpe(np.zeros(5)))


_weights = hnp.arrays(np.float64, (40, 2), elements=st.floats(min_value=-1.5, max_value=1.5))


@given(_weights, st.floats(min_value=0.0, max_value=50.0), st.integers(min_value=0, max_value=3))
def test_backtest_invariants(w: np.ndarray, fee_bps: float, lag: int) -> None:
    px = catalogue.sp500_stocks()[["KO", "XOM"]].iloc[-40:]
    targets = pd.DataFrame(w, index=px.index, columns=px.columns)
    res = backtest(px, targets, fee_bps=fee_bps, execution_lag=lag)
    free = backtest(px, targets, execution_lag=lag)
    # Costs are never negative and never improve on the gross return
    assert (res.costs >= 0.0).all()
    assert (res.returns <= res.gross_returns + 1e-12).all()
    # Without costs net equals gross
    np.testing.assert_allclose(free.returns.to_numpy(), free.gross_returns.to_numpy(), atol=1e-12)
    # Held positions are the targets delayed by the lag
    np.testing.assert_allclose(res.positions.to_numpy()[lag:], w[: 40 - lag])
    assert (res.positions.to_numpy()[:lag] == 0.0).all()
    # Equity compounds the net returns
    np.testing.assert_allclose(res.equity.to_numpy(), 1e6 * np.cumprod(1.0 + res.returns.to_numpy()), rtol=1e-9)


def test_zero_targets_keep_the_capital_and_bad_input_is_rejected() -> None:
    prices, targets = _tiny()
    flat = backtest(prices, targets * 0.0, fee_bps=10.0)
    assert (flat.equity == 1e6).all()
    with pytest.raises(ValueError, match="shape"):
        backtest(prices, targets.iloc[:, :1])
    with pytest.raises(ValueError, match="same index"):
        backtest(prices, targets.shift(1, freq="D"))
    with pytest.raises(ValueError, match="execution_lag"):
        backtest(prices, targets, execution_lag=-1)
    with pytest.raises(ValueError, match="NaN"):
        backtest(prices.where(prices > 99.5), targets)
    with pytest.raises(ValueError, match="fee_bps"):
        backtest(prices, targets, fee_bps=-1.0)
    with pytest.raises(ValueError, match="adv"):
        backtest(prices, targets, adv=[1.0, 2.0, 3.0])
