"""Euler risk allocation and stress tests on the real market data."""

from __future__ import annotations

from functools import cache

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy import stats

from desk.local import catalogue
from quant import risk


@pytest.fixture(scope="module")
def stock_returns() -> pd.DataFrame:
    return catalogue.sp500_stocks().pct_change().dropna()


@cache
def _stock_cov() -> np.ndarray:
    return catalogue.sp500_stocks().pct_change().dropna().cov().to_numpy()


# ---- parametric Euler allocation ------------------------------------------------------------


def test_component_vars_sum_to_the_portfolio_var(stock_returns: pd.DataFrame) -> None:
    # Given equal weights over the stocks, their sample covariance and mean
    w = pd.Series(1 / 20, index=stock_returns.columns)
    cov, mu = stock_returns.cov(), stock_returns.mean()
    for mean in (None, mu):
        # When the component VaRs are computed at 99% over 10 days
        comp = risk.component_var(w, cov, 0.99, mu=mean, horizon=10)
        # Then they are labelled by asset and add up to the normal VaR of the portfolio (scipy)
        assert list(comp.index) == list(stock_returns.columns)
        m = 0.0 if mean is None else float(mu @ w)
        vol = float(np.sqrt(w @ cov @ w))
        assert comp.sum() == pytest.approx(-stats.norm(m * 10, vol * np.sqrt(10)).ppf(0.01), rel=1e-12)


def test_component_var_with_the_sample_mean_matches_portfolio_parametric_var(stock_returns: pd.DataFrame) -> None:
    # Given random weights
    w = np.random.default_rng(5).dirichlet(np.ones(20))
    # When the components use the sample mean
    comp = risk.component_var(w, stock_returns.cov(), 0.975, mu=stock_returns.mean())
    # Then they sum to portfolio_var's parametric figure
    assert comp.sum() == pytest.approx(risk.portfolio_var(stock_returns, w, 0.975, method="parametric"), rel=1e-10)


def test_marginal_var_is_the_gradient_of_the_portfolio_var(stock_returns: pd.DataFrame) -> None:
    # Given a portfolio and the parametric VaR as a function of its weights
    cov = stock_returns.cov().to_numpy()
    w = np.random.default_rng(1).dirichlet(np.ones(20))

    def var(weights: np.ndarray) -> float:
        return float(stats.norm.ppf(0.99) * np.sqrt(weights @ cov @ weights))

    # When the marginal VaR is computed
    marginal = risk.marginal_var(w, cov, 0.99)
    # Then it matches central finite differences of the VaR
    eps = 1e-6
    numeric = [(var(w + eps * e) - var(w - eps * e)) / (2 * eps) for e in np.eye(20)]
    np.testing.assert_allclose(marginal, numeric, rtol=1e-6)


@given(st.lists(st.floats(-1.0, 1.0).filter(lambda v: abs(v) > 1e-3), min_size=20, max_size=20))
def test_component_vars_sum_to_portfolio_var_for_any_weights(weights: list[float]) -> None:
    # Given any long-short weights over the stocks
    w = np.array(weights)
    cov = _stock_cov()
    # Then the components add up to z·σ_p
    total = float(np.sum(risk.component_var(w, cov, 0.99)))
    assert total == pytest.approx(stats.norm.ppf(0.99) * np.sqrt(w @ cov @ w), rel=1e-10)


# ---- historical allocation ------------------------------------------------------------------


@pytest.mark.parametrize("method", ["linear", "lower", "higher", "midpoint", "hazen"])
def test_historical_components_sum_to_the_historical_var_and_cvar(method: str, stock_returns: pd.DataFrame) -> None:
    # Given random long-short weights as a labelled Series
    w = pd.Series(np.random.default_rng(2).normal(size=20), index=stock_returns.columns)
    # When the historical component VaR and CVaR are computed
    comp_var = risk.component_var_historical(stock_returns, w, 0.99, method)
    comp_cvar = risk.component_cvar_historical(stock_returns, w, 0.99, method)
    # Then they sum to the portfolio's VaR (numpy quantile) and CVaR
    p = stock_returns.to_numpy() @ w.to_numpy()
    assert comp_var.sum() == pytest.approx(-np.quantile(p, 0.01, method=method), rel=1e-12)
    assert comp_cvar.sum() == pytest.approx(risk.cvar_historical(p, 0.99, method), rel=1e-12)
    assert list(comp_var.index) == list(w.index)


def test_historical_component_var_is_each_assets_loss_on_the_var_day(stock_returns: pd.DataFrame) -> None:
    # Given equal weights and the "lower" quantile (the VaR is one day's loss)
    w = np.full(20, 0.05)
    p = stock_returns.to_numpy() @ w
    day = int(np.argsort(p)[int(np.floor((p.size - 1) * 0.01))])
    # When the components are computed
    comp = risk.component_var_historical(stock_returns, w, 0.99, "lower")
    # Then each is minus the weighted return of that asset on that day
    np.testing.assert_allclose(comp.to_numpy(), -w * stock_returns.iloc[day].to_numpy(), rtol=1e-12)


# ---- stress tests ---------------------------------------------------------------------------


def test_historical_scenarios_replay_the_default_windows_from_prices() -> None:
    # Given the stocks' prices and the S&P 500 index
    prices = catalogue.sp500_stocks()
    index = catalogue.sp500_index()
    # When the default scenarios are built
    stocks = risk.historical_scenarios(prices)
    market = risk.historical_scenarios(index)
    # Then each window is the close-to-close return between its dates
    assert list(stocks.index) == ["gfc_2008", "covid_2020", "drawdown_2022"]
    assert market.loc["covid_2020", "SP500"] == pytest.approx(index["2020-03-23"] / index["2020-02-19"] - 1)
    assert market.loc["drawdown_2022", "SP500"] == pytest.approx(index["2022-10-12"] / index["2022-01-03"] - 1)
    gfc = prices.loc["2008-11-28"] / prices.loc["2008-08-29"] - 1
    np.testing.assert_allclose(stocks.loc["gfc_2008"].to_numpy(), gfc.to_numpy(), rtol=1e-14)
    # And the S&P 500's COVID peak-to-trough is the published -33.9%
    assert market.loc["covid_2020", "SP500"] == pytest.approx(-0.339, abs=5e-4)


def test_a_window_starting_on_a_holiday_starts_from_the_previous_close() -> None:
    # Given a window starting on Labor Day 2008 (no close that day)
    index = catalogue.sp500_index()
    scen = risk.historical_scenarios(index, {"sep_2008": ("2008-09-01", "2008-09-30")})
    # Then the move is measured from the 29 August close
    assert scen.loc["sep_2008", "SP500"] == pytest.approx(index["2008-09-30"] / index["2008-08-29"] - 1)


def test_windows_outside_the_data_raise_or_are_skipped() -> None:
    # Given BTC prices, which start in 2014
    btc = catalogue.bitstamp_daily()["BTC"]["close"].rename("BTC")
    # Then the default (2008) window is not covered and raises, unless skipped
    with pytest.raises(ValueError, match="do not cover 'gfc_2008'"):
        risk.historical_scenarios(btc)
    windows = {"gfc_2008": risk.DEFAULT_WINDOWS["gfc_2008"], "dec_2017": ("2017-12-17", "2018-02-05")}
    scen = risk.historical_scenarios(btc, windows, missing="skip")
    assert list(scen.index) == ["dec_2017"]
    assert scen.loc["dec_2017", "BTC"] == pytest.approx(btc["2018-02-05"] / btc["2017-12-17"] - 1)


def test_stress_test_pnl_is_notional_times_move_per_position_and_in_total() -> None:
    # Given a long/short book and the default historical scenarios
    positions = pd.Series({"AAPL": 1_000_000.0, "XOM": -500_000.0, "JPM": 250_000.0})
    scen = risk.historical_scenarios(catalogue.sp500_stocks())
    # When the book is stressed
    pnl = risk.stress_test(positions, scen)
    # Then each cell is notional x move and the total is their sum
    assert list(pnl.columns) == ["AAPL", "XOM", "JPM", "total"]
    for name in scen.index:
        for asset, notional in positions.items():
            assert pnl.loc[name, asset] == pytest.approx(notional * scen.loc[name, asset], rel=1e-15)
        assert pnl.loc[name, "total"] == pytest.approx(
            sum(notional * scen.loc[name, a] for a, notional in positions.items())
        )


def test_hypothetical_shocks_leave_unnamed_assets_unchanged() -> None:
    # Given a book and a sparse hypothetical shock
    positions = pd.Series({"BTC": 20_000.0, "ETH": 10_000.0})
    shocks = {"crypto_crash": {"BTC": -0.5}, "eth_rally": {"ETH": 0.25}}
    # When stressed
    pnl = risk.stress_test(positions, shocks)
    # Then only the shocked assets move
    assert pnl.loc["crypto_crash"].to_dict() == {"BTC": -10_000.0, "ETH": 0.0, "total": -10_000.0}
    assert pnl.loc["eth_rally"].to_dict() == {"BTC": 0.0, "ETH": 2_500.0, "total": 2_500.0}


def test_factor_scenarios_move_assets_by_their_betas() -> None:
    # Given betas of three assets on two factors and a market crash with a rates shock
    betas = pd.DataFrame({"market": [1.2, 0.8, 0.0], "rates": [0.0, -2.0, 5.0]}, index=["A", "B", "C"])
    moves = {"crash": {"market": -0.2}, "rates_up": {"rates": 0.01, "market": -0.05}}
    # When the factor moves are mapped to assets and a book is stressed
    scen = risk.factor_scenarios(moves, betas)
    pnl = risk.stress_test(pd.Series({"A": 100.0, "B": 200.0, "C": -50.0}), scen)
    # Then asset moves are beta-weighted sums of the factor moves
    assert scen.loc["crash"].tolist() == pytest.approx([-0.24, -0.16, 0.0])
    assert scen.loc["rates_up"].tolist() == pytest.approx([-0.06, -0.06, 0.05])
    assert pnl.loc["rates_up", "total"] == pytest.approx(100 * -0.06 + 200 * -0.06 - 50 * 0.05)


def test_stress_inputs_are_checked() -> None:
    positions = pd.Series({"AAPL": 1.0, "BTC": 1.0})
    scen = risk.historical_scenarios(catalogue.sp500_stocks())
    with pytest.raises(ValueError, match="no move for held assets \\['BTC'\\]"):
        risk.stress_test(positions, scen)
    with pytest.raises(ValueError, match="NaN moves"):
        risk.stress_test(pd.Series({"A": 1.0}), pd.DataFrame({"A": [np.nan]}, index=["s"]))
    with pytest.raises(ValueError, match="Series"):
        risk.stress_test({"A": 1.0}, scen)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="starts on or after"):
        risk.historical_scenarios(catalogue.sp500_index(), {"bad": ("2020-03-01", "2020-02-01")})
    with pytest.raises(ValueError, match="no betas"):
        risk.factor_scenarios({"s": {"oil": 0.1}}, pd.DataFrame({"market": [1.0]}, index=["A"]))
    with pytest.raises(ValueError, match="zero variance"):
        risk.component_var([0.0, 0.0], np.eye(2))
    with pytest.raises(ValueError, match="weights cover 3"):
        risk.marginal_var([0.2, 0.3, 0.5], np.eye(2))
