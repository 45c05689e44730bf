"""VaR and CVaR estimators against numpy, scipy and empyrical on the real market data."""

from __future__ import annotations

from functools import cache

import empyrical
import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy import integrate, stats

from desk.local import catalogue
from quant import risk
from quant._kernels.risk import METHOD_CODES

LEVELS = (0.95, 0.975, 0.99, 0.999)


@cache
def _btc() -> np.ndarray:
    return catalogue.bitstamp_daily()["BTC"]["close"].pct_change().dropna().to_numpy()


@cache
def _stock_matrix() -> np.ndarray:
    return catalogue.sp500_stocks().pct_change().dropna().to_numpy()


@pytest.fixture(scope="module")
def index_returns() -> pd.Series:
    return catalogue.sp500_index().pct_change().dropna()


@pytest.fixture(scope="module")
def stock_returns() -> pd.DataFrame:
    return catalogue.sp500_stocks().pct_change().dropna()


@pytest.fixture(scope="module")
def btc_returns() -> pd.Series:
    return catalogue.bitstamp_daily()["BTC"]["close"].pct_change().dropna()


# ---- historical ---------------------------------------------------------------------------


@pytest.mark.parametrize("method", sorted(METHOD_CODES))
def test_historical_var_is_minus_numpy_quantile_for_every_method(
    method: str, index_returns: pd.Series, btc_returns: pd.Series
) -> None:
    # Given S&P 500 and BTC daily returns
    for returns in (index_returns, btc_returns):
        for level in LEVELS:
            # When the historical VaR is computed with a numpy quantile method
            var = risk.var_historical(returns, level, method=method)
            # Then it is minus numpy's quantile with that method
            expected = -np.quantile(returns.to_numpy(), 1.0 - level, method=method)
            assert var == pytest.approx(expected, rel=1e-12, abs=1e-15)


@pytest.mark.parametrize("method", sorted(METHOD_CODES))
def test_historical_var_and_cvar_match_numpy_on_every_small_sample_size(method: str) -> None:
    # Given short windows of BTC returns and dyadic levels, which put quantiles exactly halfway
    # between order statistics, where the rounding rules ("nearest", "closest_observation") matter
    x_all = _btc()
    for n in range(1, 25):
        x = x_all[100 : 100 + n]
        for level in (0.5, 0.625, 0.75, 0.875, 0.9, 0.95, 0.99):
            q = np.quantile(x, 1 - level, method=method)
            # When VaR and CVaR are computed
            var = risk.var_historical(x, level, method=method)
            cvar = risk.cvar_historical(x, level, method=method)
            # Then VaR is minus numpy's quantile and CVaR minus the mean of the returns up to it
            assert var == pytest.approx(-q, rel=1e-12, abs=1e-15)
            k = max(int(np.searchsorted(np.sort(x), q, side="right")), 1)
            assert cvar == pytest.approx(-np.sort(x)[:k].mean(), rel=1e-12)


def test_historical_var_of_a_dataframe_is_one_figure_per_column(stock_returns: pd.DataFrame) -> None:
    # Given the 20 stocks' returns
    # When the 97.5% VaR is computed on the frame
    var = risk.var_historical(stock_returns, 0.975, method="hazen")
    # Then it is a Series over the columns equal to numpy's column quantiles
    assert isinstance(var, pd.Series)
    assert list(var.index) == list(stock_returns.columns)
    expected = -np.quantile(stock_returns.to_numpy(), 1 - 0.975, axis=0, method="hazen")
    np.testing.assert_allclose(var.to_numpy(), expected, rtol=1e-12)


def test_historical_cvar_matches_empyrical_conditional_value_at_risk(
    index_returns: pd.Series, btc_returns: pd.Series
) -> None:
    # Given real returns; empyrical's CVaR averages the int((n-1)·cutoff)+1 smallest returns
    for returns in (index_returns, btc_returns):
        for level in LEVELS:
            # When our linear-method CVaR is computed
            cvar = risk.cvar_historical(returns, level)
            # Then it is minus empyrical's conditional VaR
            assert cvar == pytest.approx(-empyrical.conditional_value_at_risk(returns, cutoff=1 - level), rel=1e-12)


@pytest.mark.parametrize("method", sorted(METHOD_CODES))
def test_historical_cvar_is_the_mean_of_returns_at_or_below_the_var_quantile(
    method: str, btc_returns: pd.Series
) -> None:
    # Given BTC returns (no ties in the tail) and a quantile method
    x = np.sort(btc_returns.to_numpy())
    for level in LEVELS:
        q = np.quantile(x, 1 - level, method=method)
        # When the CVaR is computed with that method
        cvar = risk.cvar_historical(btc_returns, level, method=method)
        # Then it is minus the mean of the sorted returns up to the quantile's lower order statistic
        k = max(int(np.searchsorted(x, q, side="right")), 1)
        assert cvar == pytest.approx(-x[:k].mean(), rel=1e-12)


def test_overlapping_horizon_var_is_the_quantile_of_rolling_compounded_returns(index_returns: pd.Series) -> None:
    # Given S&P 500 daily returns and pandas' rolling 10-day compounded returns
    ten_day = (1 + index_returns).rolling(10).apply(np.prod, raw=True).dropna() - 1
    # When the 10-day VaR and CVaR use overlapping windows
    var = risk.var_historical(index_returns, 0.99, horizon=10)
    cvar = risk.cvar_historical(index_returns, 0.99, horizon=10)
    # Then they are the quantile and tail mean of those returns
    assert var == pytest.approx(-np.quantile(ten_day, 0.01), rel=1e-10)
    assert cvar == pytest.approx(-empyrical.conditional_value_at_risk(ten_day, cutoff=0.01), rel=1e-10)


def test_sqrt_scaling_multiplies_the_one_day_figures_by_root_horizon(btc_returns: pd.Series) -> None:
    # Given BTC returns
    one_var, one_cvar = risk.var_historical(btc_returns), risk.cvar_historical(btc_returns)
    # When a 5-day horizon is scaled by the square root of time
    var = risk.var_historical(btc_returns, horizon=5, scaling="sqrt")
    cvar = risk.cvar_historical(btc_returns, horizon=5, scaling="sqrt")
    # Then both are √5 times the one-day figures
    assert var == pytest.approx(np.sqrt(5) * one_var, rel=1e-12)
    assert cvar == pytest.approx(np.sqrt(5) * one_cvar, rel=1e-12)


# ---- parametric and Cornish-Fisher ----------------------------------------------------------


def test_parametric_var_and_cvar_match_scipy_norm(index_returns: pd.Series, btc_returns: pd.Series) -> None:
    for returns in (index_returns, btc_returns):
        mu, sd = returns.mean(), returns.std(ddof=1)
        for level in LEVELS:
            for h in (1, 10):
                # Given the normal with the sample mean and ddof=1 deviation, scaled to h days
                dist = stats.norm(mu * h, sd * np.sqrt(h))
                # When our parametric VaR and CVaR are computed
                var = risk.var_parametric(returns, level, horizon=h)
                cvar = risk.cvar_parametric(returns, level, horizon=h)
                # Then VaR is minus scipy's quantile and CVaR minus scipy's tail expectation
                assert var == pytest.approx(-dist.ppf(1 - level), rel=1e-10)
                tail = dist.expect(lambda x: x, ub=dist.ppf(1 - level), conditional=True)
                assert cvar == pytest.approx(-tail, rel=1e-6)


def test_zero_mean_parametric_var_scales_exactly_with_root_horizon(stock_returns: pd.DataFrame) -> None:
    # Given the stocks and the zero-mean (RiskMetrics) convention
    one = risk.var_parametric(stock_returns, 0.99, use_mean=False)
    # When the horizon is 25 days
    many = risk.var_parametric(stock_returns, 0.99, horizon=25, use_mean=False)
    # Then every VaR is five times the one-day figure
    np.testing.assert_allclose(many, 5 * one, rtol=1e-12)


@pytest.mark.parametrize("bias", [True, False])
def test_cornish_fisher_var_matches_an_expansion_built_on_scipy_moments(bias: bool, btc_returns: pd.Series) -> None:
    # Given scipy's skewness and excess kurtosis of BTC returns (biased or adjusted)
    x = btc_returns.to_numpy()
    s = stats.skew(x, bias=bias)
    k = stats.kurtosis(x, fisher=True, bias=bias)
    for level in LEVELS:
        z = stats.norm.ppf(1 - level)
        z_cf = z + (z**2 - 1) * s / 6 + (z**3 - 3 * z) * k / 24 - (2 * z**3 - 5 * z) * s**2 / 36
        # When our modified VaR is computed with the same estimators
        var = risk.var_cornish_fisher(btc_returns, level, bias=bias)
        # Then it equals the Cornish-Fisher quantile with those moments
        assert var == pytest.approx(-(x.mean() + x.std(ddof=1) * z_cf), rel=1e-10)


def test_cornish_fisher_cvar_is_the_numerical_tail_mean_of_the_expansion(index_returns: pd.Series) -> None:
    # Given the S&P 500 moments and the Cornish-Fisher quantile function
    x = index_returns.to_numpy()
    s, k = stats.skew(x), stats.kurtosis(x)

    def quantile(u: float) -> float:
        z = stats.norm.ppf(u)
        return z + (z**2 - 1) * s / 6 + (z**3 - 3 * z) * k / 24 - (2 * z**3 - 5 * z) * s**2 / 36

    for level in (0.95, 0.99):
        alpha = 1 - level
        # When the quantile function is integrated numerically over the tail
        tail, _ = integrate.quad(quantile, 0.0, alpha, limit=200)
        expected = -(x.mean() + x.std(ddof=1) * tail / alpha)
        # Then our closed-form CF expected shortfall agrees
        assert risk.cvar_cornish_fisher(index_returns, level) == pytest.approx(expected, rel=1e-7)


def test_cornish_fisher_reduces_to_parametric_for_symmetric_mesokurtic_data() -> None:
    # Given a sample whose standardised values are the normal quantiles (skew 0, small kurtosis)
    x = pd.Series(stats.norm.ppf((np.arange(1, 2001) - 0.5) / 2000) * 0.01)
    s, k = stats.skew(x), stats.kurtosis(x)
    # When both VaRs are computed
    cf, normal = risk.var_cornish_fisher(x, 0.99), risk.var_parametric(x, 0.99)
    # Then they differ only by the kurtosis term, which is tiny here
    assert abs(s) < 1e-12
    z = stats.norm.ppf(0.01)
    assert cf - normal == pytest.approx(-x.std() * (z**3 - 3 * z) * k / 24, rel=1e-8)


def test_cornish_fisher_horizon_scales_cumulants_as_iid_sums(btc_returns: pd.Series) -> None:
    # Given BTC moments and a 4-day horizon: mean 4μ, sd 2σ, skew S/2, excess kurtosis K/4
    x = btc_returns.to_numpy()
    mu, sd, s, k = x.mean(), x.std(ddof=1), stats.skew(x) / 2, stats.kurtosis(x) / 4
    z = stats.norm.ppf(0.01)
    z_cf = z + (z**2 - 1) * s / 6 + (z**3 - 3 * z) * k / 24 - (2 * z**3 - 5 * z) * s**2 / 36
    # When the 4-day modified VaR is computed
    var = risk.var_cornish_fisher(btc_returns, 0.99, horizon=4)
    # Then it uses the aggregated cumulants
    assert var == pytest.approx(-(4 * mu + 2 * sd * z_cf), rel=1e-10)


# ---- Monte Carlo ----------------------------------------------------------------------------


def test_monte_carlo_converges_to_parametric_for_normal_simulation(index_returns: pd.Series) -> None:
    # Given the S&P 500 returns and 400,000 seeded normal paths
    # When the Monte Carlo VaR and CVaR are computed
    var = risk.var_monte_carlo(index_returns, level=0.99, n_paths=400_000, seed=7)
    cvar = risk.cvar_monte_carlo(index_returns, level=0.99, n_paths=400_000, seed=7)
    # Then they are within 1% of the parametric figures (sampling error of a 1% quantile ~ 0.3%)
    assert var == pytest.approx(risk.var_parametric(index_returns, 0.99), rel=0.01)
    assert cvar == pytest.approx(risk.cvar_parametric(index_returns, 0.99), rel=0.01)


def test_monte_carlo_portfolio_from_mu_cov_converges_to_the_normal_portfolio_var(
    stock_returns: pd.DataFrame,
) -> None:
    # Given the stocks' mean and covariance and equal weights
    mu, cov = stock_returns.mean(), stock_returns.cov()
    w = np.full(20, 1 / 20)
    pm, ps = float(mu @ w), float(np.sqrt(w @ cov.to_numpy() @ w))
    for h in (1, 10):
        # When the Monte Carlo VaR is simulated from (mu, cov) over h days
        var = risk.var_monte_carlo((mu, cov), weights=w, level=0.99, n_paths=400_000, seed=3, horizon=h)
        # Then it converges to the normal VaR of the portfolio
        assert var == pytest.approx(-stats.norm(pm * h, ps * np.sqrt(h)).ppf(0.01), rel=0.01)


def test_monte_carlo_is_reproducible_with_a_seed_and_labels_assets(stock_returns: pd.DataFrame) -> None:
    # Given a seed
    a = risk.var_monte_carlo(stock_returns, n_paths=5_000, seed=11)
    b = risk.var_monte_carlo(stock_returns, n_paths=5_000, seed=11)
    # Then the same seed gives the same per-asset figures, labelled by column
    pd.testing.assert_series_equal(a, b)
    assert list(a.index) == list(stock_returns.columns)
    # And another seed gives other figures
    assert not np.allclose(a, risk.var_monte_carlo(stock_returns, n_paths=5_000, seed=12))


def test_monte_carlo_accepts_a_singular_covariance() -> None:
    # Given two perfectly correlated assets (a PSD covariance with no Cholesky factor)
    cov = np.array([[1e-4, 1e-4], [1e-4, 1e-4]])
    # When a long-short portfolio of the two is simulated
    var = risk.var_monte_carlo((np.zeros(2), cov), weights=[1.0, -1.0], n_paths=1_000, seed=0)
    # Then it has no risk, and one asset alone has its normal VaR
    assert var == pytest.approx(0.0, abs=1e-12)
    single = risk.var_monte_carlo((np.zeros(2), cov), weights=[1.0, 0.0], n_paths=200_000, seed=0)
    assert single == pytest.approx(0.01 * stats.norm.ppf(0.99), rel=0.02)


# ---- portfolios -----------------------------------------------------------------------------


def test_portfolio_var_matches_a_loop_of_numpy_quantiles(stock_returns: pd.DataFrame) -> None:
    # Given 50 random long-only portfolios over the 20 stocks
    W = np.random.default_rng(0).dirichlet(np.ones(20), 50)
    R = stock_returns.to_numpy()
    # When their historical VaR and CVaR are computed in one call
    var = risk.portfolio_var(stock_returns, pd.DataFrame(W, columns=stock_returns.columns))
    cvar = risk.portfolio_cvar(stock_returns, W)
    # Then each equals the numpy / empyrical figure of that portfolio's return series
    expected = [-np.quantile(R @ w, 0.01) for w in W]
    np.testing.assert_allclose(var.to_numpy(), expected, rtol=1e-12)
    np.testing.assert_allclose(cvar, [-empyrical.conditional_value_at_risk(R @ w, 0.01) for w in W], rtol=1e-12)


@pytest.mark.parametrize(
    ("method", "single"),
    [
        ("historical", risk.var_historical),
        ("parametric", risk.var_parametric),
        ("cornish_fisher", risk.var_cornish_fisher),
    ],
)
def test_portfolio_var_of_one_vector_is_the_var_of_the_portfolio_series(
    method: str, single: object, stock_returns: pd.DataFrame
) -> None:
    # Given one weight vector
    w = np.linspace(1, 2, 20) / np.linspace(1, 2, 20).sum()
    # When portfolio_var is called with each estimator
    got = risk.portfolio_var(stock_returns, w, 0.975, method=method)
    # Then it equals the single-series estimator on R @ w
    assert got == pytest.approx(single(stock_returns.to_numpy() @ w, 0.975), rel=1e-12)  # type: ignore[operator]


# ---- properties -----------------------------------------------------------------------------


@given(
    st.floats(0.5, 0.995),
    st.floats(0.5, 0.995),
    st.sampled_from(sorted(METHOD_CODES)),
    st.integers(0, 19),
)
def test_var_and_cvar_are_monotone_in_level_and_cvar_dominates_var(
    a: float, b: float, method: str, column: int
) -> None:
    # Given one stock's returns and two confidence levels
    returns = catalogue.sp500_stocks().iloc[-1500:, column].pct_change().dropna()
    lo, hi = min(a, b), max(a, b)
    for var_fn, cvar_fn in (
        (
            lambda lv: risk.var_historical(returns, lv, method=method),
            lambda lv: risk.cvar_historical(returns, lv, method=method),
        ),
        (lambda lv: risk.var_parametric(returns, lv), lambda lv: risk.cvar_parametric(returns, lv)),
        (
            lambda lv: risk.var_monte_carlo(returns, level=lv, n_paths=2_000, seed=1),
            lambda lv: risk.cvar_monte_carlo(returns, level=lv, n_paths=2_000, seed=1),
        ),
    ):
        # Then VaR and CVaR do not fall as the level rises, and CVaR >= VaR
        assert var_fn(hi) >= var_fn(lo) - 1e-15
        assert cvar_fn(hi) >= cvar_fn(lo) - 1e-15
        assert cvar_fn(lo) >= var_fn(lo) - 1e-15


@given(
    st.lists(st.floats(0.01, 1.0), min_size=20, max_size=20),
    st.lists(st.floats(-1.0, 1.0).filter(lambda v: abs(v) > 1e-3), min_size=20, max_size=20),
    st.sampled_from((0.95, 0.975, 0.99)),
)
def test_historical_cvar_is_subadditive_over_random_portfolios(a: list[float], b: list[float], level: float) -> None:
    # Given two random portfolios (one long-only, one long-short) over the 20 stocks
    R = _stock_matrix()
    wa, wb = np.array(a), np.array(b)
    # When the CVaR of each and of their sum is computed
    cvar = risk.portfolio_cvar(R, np.vstack([wa, wb, wa + wb]), level)
    # Then the CVaR of the sum is at most the sum of the CVaRs
    assert cvar[2] <= cvar[0] + cvar[1] + 1e-12


@given(st.integers(1, 60), st.floats(0.9, 0.999))
def test_parametric_figures_scale_with_horizon(h: int, level: float) -> None:
    # Given S&P 500 returns
    r = catalogue.sp500_index().pct_change().dropna()
    mu = r.mean()
    # Then VaR(h) + μh (the volatility part) grows exactly as √h, for VaR and CVaR alike
    for fn in (risk.var_parametric, risk.cvar_parametric):
        assert fn(r, level, h) + mu * h == pytest.approx(np.sqrt(h) * (fn(r, level) + mu), rel=1e-10)


# ---- validation -----------------------------------------------------------------------------


@pytest.mark.parametrize("level", [0.0, 1.0, -0.5, 1.5, float("nan"), True])
def test_level_outside_the_open_unit_interval_is_rejected(level: float) -> None:
    with pytest.raises(ValueError, match="level"):
        risk.var_historical([0.01, -0.02, 0.03], level)
    with pytest.raises(ValueError, match="level"):
        risk.cvar_parametric([0.01, -0.02, 0.03], level)


def test_bad_inputs_raise_value_errors_that_say_what_is_wrong(stock_returns: pd.DataFrame) -> None:
    with pytest.raises(ValueError, match="at least 1"):
        risk.var_historical([])
    with pytest.raises(ValueError, match="NaN"):
        risk.var_historical([0.01, float("nan"), 0.02])
    with_gap = stock_returns.iloc[:, :2].copy()
    with_gap.iloc[5, 1] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        risk.var_parametric(with_gap)
    with pytest.raises(ValueError, match="quantile method"):
        risk.var_historical([0.01, 0.02], method="cubic")
    with pytest.raises(ValueError, match="horizon=30 is longer"):
        risk.var_historical(np.full(10, 0.01), horizon=30)
    with pytest.raises(ValueError, match="greater than -1"):
        risk.var_historical([0.1, -1.0, 0.2], horizon=2)
    with pytest.raises(ValueError, match="weights cover 3 assets"):
        risk.portfolio_var(stock_returns, [0.3, 0.3, 0.4])
    with pytest.raises(ValueError, match="weights cover 2 assets"):
        risk.var_monte_carlo(stock_returns, weights=[0.5, 0.5], seed=0)
    with pytest.raises(ValueError, match="not positive semi-definite"):
        risk.var_monte_carlo((np.zeros(2), np.array([[1.0, 2.0], [2.0, 1.0]])), weights=[1.0, 0.0])
    with pytest.raises(ValueError, match="mu has 3 assets"):
        risk.var_monte_carlo((np.zeros(3), np.eye(2)))
    with pytest.raises(ValueError, match="method must be"):
        risk.portfolio_var(stock_returns, np.full(20, 0.05), method="garch")
    with pytest.raises(ValueError, match="constant"):
        risk.var_cornish_fisher(np.full(10, 0.01))


@pytest.mark.parametrize("scaling", ["overlapping", "sqrt"])
def test_multi_day_portfolio_var_matches_the_single_series_figure(scaling: str, stock_returns: pd.DataFrame) -> None:
    # Given 200 random portfolios (more than one block of the batched path)
    W = np.random.default_rng(9).dirichlet(np.ones(20), 200)
    # When their 5-day historical VaR and CVaR are computed in one call
    var = risk.portfolio_var(stock_returns, W, 0.99, horizon=5, scaling=scaling)
    cvar = risk.portfolio_cvar(stock_returns, W, 0.99, horizon=5, scaling=scaling)
    # Then each equals the single-series figure of that portfolio
    for i in (0, 150, 199):
        p = stock_returns.to_numpy() @ W[i]
        assert var[i] == pytest.approx(risk.var_historical(p, 0.99, horizon=5, scaling=scaling), rel=1e-12)
        assert cvar[i] == pytest.approx(risk.cvar_historical(p, 0.99, horizon=5, scaling=scaling), rel=1e-12)
