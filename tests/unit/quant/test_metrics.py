"""quant.metrics against empyrical-reloaded on real return series, plus invariants."""

from __future__ import annotations

import empyrical
import numpy as np
import pandas as pd
import pytest
from empyrical import stats as empyrical_stats
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from desk.local import catalogue
from quant import metrics

SERIES = {
    # name: (loader of simple returns with the leading pct_change NaN, periods per year)
    "sp500_index": (lambda: catalogue.sp500_index().pct_change(), 252),
    "btc_bitstamp": (lambda: catalogue.bitstamp_daily()["BTC"]["close"].pct_change(), 365),
    "aapl": (lambda: catalogue.sp500_stocks()["AAPL"].pct_change(), 252),
}
RTOL = 1e-10


@pytest.fixture(scope="module", params=sorted(SERIES))
def case(request: pytest.FixtureRequest) -> tuple[pd.Series, int]:
    load, ppy = SERIES[request.param]
    return load(), ppy


def _ref(r: pd.Series) -> pd.Series:
    """What empyrical sees: the series without the leading NaN (it would count that NaN as a period)."""
    return r.iloc[1:]


def test_return_metrics_equal_empyrical(case: tuple[pd.Series, int]) -> None:
    # Given a real daily return series with its leading pct_change NaN
    r, ppy = case
    ref = _ref(r)
    # Then total return, CAGR and volatility equal empyrical's
    assert metrics.total_return(r) == pytest.approx(empyrical.cum_returns_final(ref), rel=RTOL)
    assert metrics.cagr(r, ppy) == pytest.approx(empyrical.annual_return(ref, annualization=ppy), rel=RTOL)
    assert metrics.annual_volatility(r, ppy) == pytest.approx(
        empyrical.annual_volatility(ref, annualization=ppy), rel=RTOL
    )


@pytest.mark.parametrize("rf", [0.0, 0.03 / 252])
def test_risk_adjusted_metrics_equal_empyrical(case: tuple[pd.Series, int], rf: float) -> None:
    r, ppy = case
    ref = _ref(r)
    assert metrics.sharpe_ratio(r, rf, ppy) == pytest.approx(
        empyrical.sharpe_ratio(ref, risk_free=rf, annualization=ppy), rel=RTOL
    )
    assert metrics.sortino_ratio(r, rf, ppy) == pytest.approx(
        empyrical.sortino_ratio(ref, required_return=rf, annualization=ppy), rel=RTOL
    )
    assert metrics.downside_deviation(r, rf, ppy) == pytest.approx(
        empyrical.downside_risk(ref, required_return=rf, annualization=ppy), rel=RTOL
    )


def test_drawdown_metrics_equal_empyrical(case: tuple[pd.Series, int]) -> None:
    r, ppy = case
    ref = _ref(r)
    assert metrics.max_drawdown(r) == pytest.approx(empyrical.max_drawdown(ref), rel=RTOL)
    assert metrics.calmar_ratio(r, ppy) == pytest.approx(empyrical.calmar_ratio(ref, annualization=ppy), rel=RTOL)
    dd = metrics.drawdown_series(r)
    # The leading NaN stays NaN and the index is kept
    assert dd.index.equals(r.index) and np.isnan(dd.iloc[0])
    np.testing.assert_allclose(dd.iloc[1:].to_numpy(), empyrical_stats.drawdown_series(ref).to_numpy(), atol=1e-13)


def test_time_varying_risk_free(case: tuple[pd.Series, int]) -> None:
    # Given a per-period risk-free series aligned with the returns
    r, ppy = case
    rf = pd.Series(np.linspace(0.0, 0.05 / ppy, len(r)), index=r.index)
    # Then Sharpe equals empyrical's on the excess returns
    expected = empyrical.sharpe_ratio(_ref(r) - rf.iloc[1:], annualization=ppy)
    assert metrics.sharpe_ratio(r, rf.to_numpy(), ppy) == pytest.approx(expected, rel=RTOL)
    with pytest.raises(ValueError, match="risk_free"):
        metrics.sharpe_ratio(r, rf.to_numpy()[:-1], ppy)


def test_hit_rate_and_profit_factor_on_real_data(case: tuple[pd.Series, int]) -> None:
    # Given a real series, the definitions evaluated with pandas
    r, _ = case
    ref = _ref(r)
    hit = (ref > 0).sum() / (ref != 0).sum()
    pf = ref[ref > 0].sum() / -ref[ref < 0].sum()
    assert metrics.hit_rate(r) == pytest.approx(hit, rel=1e-14)
    assert metrics.profit_factor(r) == pytest.approx(pf, rel=1e-12)


def test_hand_worked_trade_statistics() -> None:
    # Given +10%, −5%, flat, +2%: two wins among three moves, gains 0.12 against losses 0.05
    r = [0.10, -0.05, 0.0, 0.02]
    assert metrics.hit_rate(r) == pytest.approx(2 / 3)
    assert metrics.profit_factor(r) == pytest.approx(2.4)
    assert np.isnan(metrics.hit_rate([0.0, 0.0]))
    assert metrics.profit_factor([0.01, 0.02]) == np.inf


def test_dataframe_gives_one_value_per_column() -> None:
    # Given several stocks' returns at once
    df = catalogue.sp500_stocks().iloc[:, :4].pct_change()
    ref = df.iloc[1:]
    # Then each metric is a Series over the columns equal to empyrical's column-wise result
    vol = metrics.annual_volatility(df)
    assert list(vol.index) == list(df.columns)
    np.testing.assert_allclose(vol.to_numpy(), np.asarray(empyrical.annual_volatility(ref)), rtol=RTOL)
    np.testing.assert_allclose(metrics.sharpe_ratio(df).to_numpy(), np.asarray(empyrical.sharpe_ratio(ref)), rtol=RTOL)
    np.testing.assert_allclose(metrics.max_drawdown(df).to_numpy(), np.asarray(empyrical.max_drawdown(ref)), rtol=RTOL)
    summary = metrics.summary(df)
    assert list(summary.columns) == list(df.columns)
    assert summary.loc["cagr", "AAPL"] == pytest.approx(empyrical.annual_return(ref["AAPL"]), rel=RTOL)


def test_summary_collects_every_metric(case: tuple[pd.Series, int]) -> None:
    r, ppy = case
    s = metrics.summary(r, risk_free=0.0001, required_return=0.0002, periods_per_year=ppy)
    assert s["sharpe_ratio"] == metrics.sharpe_ratio(r, 0.0001, ppy)
    assert s["sortino_ratio"] == metrics.sortino_ratio(r, 0.0002, ppy)
    assert s["calmar_ratio"] == metrics.calmar_ratio(r, ppy)
    assert s["hit_rate"] == metrics.hit_rate(r)
    assert "annual_turnover" not in s
    weights = pd.Series(np.where(np.arange(len(r)) % 2 == 0, 1.0, 0.0), index=r.index)
    with_w = metrics.summary(r, periods_per_year=ppy, weights=weights)
    assert with_w["annual_turnover"] == pytest.approx(ppy * 1.0)


def test_nan_and_argument_checks() -> None:
    r = catalogue.sp500_index().pct_change()
    gap = r.copy()
    gap.iloc[100] = np.nan
    with pytest.raises(ValueError, match="NaN at position 100"):
        metrics.sharpe_ratio(gap)
    with pytest.raises(ValueError, match="all NaN"):
        metrics.total_return([np.nan, np.nan])
    with pytest.raises(ValueError, match="at least 2"):
        metrics.annual_volatility([np.nan, 0.01])
    with pytest.raises(ValueError, match="periods_per_year"):
        metrics.cagr(r, periods_per_year=0)


def test_degenerate_series_follow_empyrical() -> None:
    # A constant positive return: zero volatility gives an infinite Sharpe, no drawdown a NaN Calmar
    r = np.full(50, 0.001)
    assert metrics.sharpe_ratio(r) == empyrical.sharpe_ratio(r) == np.inf
    assert np.isnan(metrics.calmar_ratio(r)) and np.isnan(empyrical.calmar_ratio(r))
    assert metrics.annual_volatility(r) == 0.0
    assert metrics.sortino_ratio(r) == np.inf
    # Ruin: a −100% period ends the compounding
    assert metrics.cagr([0.1, -1.0, 0.2]) == -1.0


def test_turnover() -> None:
    # Given a book that builds 60/40, holds, then flips to 40/60
    w = pd.DataFrame([[0.6, 0.4], [0.6, 0.4], [0.4, 0.6]], index=pd.date_range("2024-01-01", periods=3))
    # Then the first period counts the build from cash, then no trade, then 0.2 + 0.2 traded
    t = metrics.turnover(w)
    assert t.index.equals(w.index)
    np.testing.assert_allclose(t.to_numpy(), [1.0, 0.0, 0.4], atol=1e-15)
    np.testing.assert_allclose(metrics.turnover(w, one_way=True).to_numpy(), [0.5, 0.0, 0.2], atol=1e-15)
    np.testing.assert_allclose(metrics.turnover(w.to_numpy(), initial=[0.6, 0.4]), [0.0, 0.0, 0.4], atol=1e-15)
    with pytest.raises(ValueError, match="NaN"):
        metrics.turnover([[0.5, np.nan]])
    with pytest.raises(ValueError, match="initial"):
        metrics.turnover(w, initial=[1.0])


returns_strategy = arrays(
    np.float64,
    st.integers(2, 200),
    elements=st.floats(-0.5, 0.5, allow_nan=False, allow_subnormal=False),
)


@given(r=returns_strategy)
def test_drawdown_properties(r: np.ndarray) -> None:
    # Then drawdowns lie in [−1, 0] (−1 only by rounding, as wealth never reaches 0 here),
    # the maximum is their minimum, and they match empyrical
    dd = metrics.drawdown_series(r)
    assert (dd <= 0).all() and (dd >= -1).all()
    assert metrics.max_drawdown(r) == dd.min()
    np.testing.assert_allclose(dd, empyrical_stats.drawdown_series(r), atol=1e-12)


@given(r=returns_strategy, k=st.floats(0.1, 10.0))
def test_sharpe_is_scale_invariant_and_volatility_scales(r: np.ndarray, k: float) -> None:
    if r.max() - r.min() < 1e-6:
        return  # a (near-)constant series has no meaningful Sharpe ratio
    assert metrics.sharpe_ratio(k * r) == pytest.approx(metrics.sharpe_ratio(r), rel=1e-9, abs=1e-12)
    assert metrics.annual_volatility(k * r) == pytest.approx(k * metrics.annual_volatility(r), rel=1e-9)
    assert metrics.annual_volatility(r, 52) == pytest.approx(metrics.annual_volatility(r) * np.sqrt(52 / 252))


@given(a=returns_strategy, b=returns_strategy)
def test_total_return_compounds_over_concatenation(a: np.ndarray, b: np.ndarray) -> None:
    # Then growth factors multiply. 1 + R carries an absolute rounding error of ~1e-16 (R ≈ −1 loses
    # digits), which the other factor magnifies: the slack scales with the factors.
    joined = metrics.total_return(np.concatenate([a, b]))
    fa, fb = 1 + metrics.total_return(a), 1 + metrics.total_return(b)
    assert 1 + joined == pytest.approx(fa * fb, rel=1e-9, abs=1e-14 * (1 + fa + fb))
