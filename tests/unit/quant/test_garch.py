"""GARCH(1,1): differential tests against arch on real data, plus properties and input checks.

Tolerances against arch (both on returns × 100): parameters within 1e-3 relative, log-likelihood
within 1e-8 relative (and never worse than arch's by more than that), conditional volatility within
1e-3 relative at every date. arch's SLSQP stops at ftol 1e-6 with finite-difference gradients; ours
uses the exact gradient, so the gaps are arch's stopping error, not a convention difference.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pandas as pd
import pytest
from arch import arch_model
from hypothesis import given
from hypothesis import strategies as st

from desk.local import catalogue
from quant._kernels.garch import garch11_loglik_grad_nb
from quant.garch import MIN_OBSERVATIONS, fit_garch, fit_garch_many


def _arch_fit(r: pd.Series, mean: str = "Constant") -> Any:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return arch_model(100.0 * r, mean=mean, vol="GARCH", p=1, q=1, dist="normal").fit(disp="off")


def _stock_returns() -> pd.DataFrame:
    return catalogue.sp500_stocks().pct_change().iloc[1:]


def _real_series() -> dict[str, pd.Series]:
    stocks = _stock_returns()
    return {
        "spx_close_1999_2018": catalogue.sp500_ohlcv()["close"].pct_change().iloc[1:],
        "JPM_1990_2022": stocks["JPM"],
        "XOM_2000_2012": stocks.loc["2000":"2012", "XOM"],
        "AMD_2010_2022": stocks.loc["2010":, "AMD"],
        "BTC_bitstamp_2014_2020": catalogue.bitstamp_daily()["BTC"]["close"].pct_change().iloc[1:],
    }


def _numpy_loglik(y: np.ndarray, mu: float, omega: float, alpha: float, beta: float) -> float:
    """Straight from the definition: EW backcast (0.94, first 75) of y − mean(y), normal density."""
    e0 = y - y.mean()
    w = 0.94 ** np.arange(min(75, len(y)))
    backcast = float(np.sum(w * e0[: len(w)] ** 2) / w.sum())
    e = y - mu
    s2 = np.empty_like(y)
    s2[0] = omega + (alpha + beta) * backcast
    for t in range(1, len(y)):
        s2[t] = omega + alpha * e[t - 1] ** 2 + beta * s2[t - 1]
    return float(-0.5 * np.sum(np.log(2 * np.pi) + np.log(s2) + e**2 / s2))


def _simulate_garch(seed: int, n: int, omega: float, alpha: float, beta: float, mu: float = 0.0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    s2 = omega / (1.0 - alpha - beta)
    out = np.empty(n)
    for t in range(n):
        e = np.sqrt(s2) * rng.standard_normal()
        out[t] = mu + e
        s2 = omega + alpha * e * e + beta * s2
    return out


@pytest.mark.parametrize("name", list(_real_series()))
def test_fit_garch_matches_arch_on_real_series(name: str) -> None:
    # Given a real daily return series
    r = _real_series()[name]
    # When we and arch fit a constant-mean GARCH(1,1) on percent returns
    ours = fit_garch(r)
    ref = _arch_fit(r)
    # Then the parameters, likelihood and volatility path agree to arch's optimiser tolerance
    expected = ref.params[["mu", "omega", "alpha[1]", "beta[1]"]].to_numpy()
    np.testing.assert_allclose(ours.params.to_numpy(), expected, rtol=1e-3)
    assert ours.loglik == pytest.approx(ref.loglikelihood, rel=1e-8)
    assert ours.loglik >= ref.loglikelihood - 1e-8 * abs(ref.loglikelihood)
    pd.testing.assert_index_equal(ours.conditional_volatility.index, r.index)
    np.testing.assert_allclose(ours.conditional_volatility.to_numpy(), ref.conditional_volatility.to_numpy(), rtol=1e-3)
    np.testing.assert_allclose(ours.standardized_residuals.to_numpy(), ref.std_resid.to_numpy(), rtol=1e-3, atol=1e-3)
    assert ours.converged


def test_zero_mean_matches_arch() -> None:
    # Given the S&P 500 returns 2008-2012 and a zero-mean model
    r = catalogue.sp500_ohlcv()["close"].pct_change().loc["2008":"2012"]
    # When both fit it
    ours = fit_garch(r, mean="zero")
    ref = _arch_fit(r, mean="Zero")
    # Then μ is 0 and the variance parameters and likelihood agree
    assert ours.mu == 0.0
    np.testing.assert_allclose(
        [ours.omega, ours.alpha, ours.beta], ref.params[["omega", "alpha[1]", "beta[1]"]].to_numpy(), rtol=1e-3
    )
    assert ours.loglik == pytest.approx(ref.loglikelihood, rel=1e-8)


def test_backcast_is_arch_backcast() -> None:
    # Given the JPM returns in percent and arch's model on them
    r = 100.0 * _stock_returns()["JPM"]
    model = arch_model(r, mean="Constant", vol="GARCH", p=1, q=1, dist="normal")
    # When both seed σ²_0 from the residuals at the starting mean (the sample mean)
    expected = model.volatility.backcast((r - r.mean()).to_numpy())
    # Then the backcasts are the same number
    assert fit_garch(r, scale=1.0).backcast == pytest.approx(expected, rel=1e-12)


def test_reported_loglik_is_the_textbook_likelihood_and_a_local_maximum() -> None:
    # Given a fit on real returns
    y = 100.0 * _stock_returns().loc["2015":, "BAC"].to_numpy()
    res = fit_garch(y, scale=1.0)
    theta = np.array([res.mu, res.omega, res.alpha, res.beta])
    # When the likelihood is recomputed from its definition in plain numpy
    ll = _numpy_loglik(y, *theta)
    # Then it equals the reported one, and every feasible neighbour is worse
    assert res.loglik == pytest.approx(ll, rel=1e-12)
    for k in range(4):
        for sign in (-1.0, 1.0):
            step = theta.copy()
            step[k] += sign * 1e-3 * max(abs(theta[k]), 1e-2)
            if step[1] > 0 and step[2] >= 0 and step[3] >= 0 and step[2] + step[3] < 1:
                assert _numpy_loglik(y, *step) < ll


def test_kernel_gradient_matches_central_differences() -> None:
    # Given real percent returns and an interior parameter point
    y = 100.0 * _stock_returns().loc["2005":"2012", "GE"].to_numpy()
    theta = np.array([0.03, 0.05, 0.08, 0.9])
    # When the kernel's analytic gradient is compared with central differences of its likelihood
    _, grad = garch11_loglik_grad_nb(y, *theta, 2.0)
    h = 1e-6
    numeric = np.empty(4)
    for k in range(4):
        up, dn = theta.copy(), theta.copy()
        up[k] += h
        dn[k] -= h
        numeric[k] = (garch11_loglik_grad_nb(y, *up, 2.0)[0] - garch11_loglik_grad_nb(y, *dn, 2.0)[0]) / (2 * h)
    # Then they agree
    np.testing.assert_allclose(grad, numeric, rtol=1e-5)


def test_fit_garch_many_equals_column_by_column_fits_and_arch() -> None:
    # Given five real stocks over 2010-2022
    panel = _stock_returns().loc["2010":, ["AAPL", "JNJ", "KO", "RRC", "WMT"]]
    # When all columns are fitted at once
    many = fit_garch_many(panel)
    # Then each row is the single-series fit, and matches arch
    assert list(many.params.index) == list(panel.columns)
    pd.testing.assert_index_equal(many.conditional_volatility.index, panel.index)
    pd.testing.assert_index_equal(many.standardized_residuals.columns, panel.columns)
    for col in panel.columns:
        one = fit_garch(panel[col])
        np.testing.assert_allclose(many.params.loc[col, ["mu", "omega", "alpha", "beta"]].to_numpy(float), one.params)
        np.testing.assert_allclose(many.conditional_volatility[col].to_numpy(), one.conditional_volatility.to_numpy())
        ref = _arch_fit(panel[col])
        assert many.params.loc[col, "loglik"] == pytest.approx(ref.loglikelihood, rel=1e-8)


def test_results_are_in_scaled_units() -> None:
    # Given decimal returns fitted with the default scale and the same returns in percent with scale 1
    r = _stock_returns().loc["2000":"2010", "PG"]
    a = fit_garch(r)
    b = fit_garch(100.0 * r, scale=1.0)
    # Then both describe the same percent-return model
    np.testing.assert_allclose(a.params.to_numpy(), b.params.to_numpy(), rtol=1e-9)
    assert a.scale == 100.0 and b.scale == 1.0
    assert a.unconditional_variance == pytest.approx(a.omega / (1 - a.alpha - a.beta))
    assert a.persistence == pytest.approx(a.alpha + a.beta)


@given(
    seed=st.integers(0, 2**32 - 1),
    alpha=st.floats(0.0, 0.3),
    persistence=st.floats(0.3, 0.99),
    omega=st.floats(0.01, 1.0),
    n=st.integers(MIN_OBSERVATIONS, 600),
)
def test_fit_properties_on_simulated_garch(seed: int, alpha: float, persistence: float, omega: float, n: int) -> None:
    # Given any simulated GARCH(1,1) path (percent-like units)
    beta = max(persistence - alpha, 0.0)
    y = _simulate_garch(seed, n, omega, alpha, beta, mu=0.05)
    # When it is fitted
    res = fit_garch(y, scale=1.0)
    # Then the optimiser converged to an admissible, self-consistent estimate
    assert res.converged
    assert res.omega > 0 and res.alpha >= 0 and res.beta >= 0
    assert res.persistence < 1
    assert np.all(res.conditional_volatility > 0) and np.all(np.isfinite(res.conditional_volatility))
    np.testing.assert_allclose(res.mu + res.standardized_residuals * res.conditional_volatility, y, atol=1e-9)
    # and it is at least as likely as the starting grid's variance-targeted point at the true (α, β)
    start = _numpy_loglik(y, float(y.mean()), float(np.var(y)) * (1 - alpha - beta), alpha, beta)
    assert res.loglik >= start - 1e-6 * abs(start)


def test_single_column_frame_keeps_its_index() -> None:
    # Given one stock as a one-column DataFrame
    frame = _stock_returns().loc["2016":, ["KO"]]
    # When it is fitted
    res = fit_garch(frame)
    # Then the volatility path carries the frame's index and equals the Series fit
    pd.testing.assert_index_equal(res.conditional_volatility.index, frame.index)
    np.testing.assert_allclose(res.conditional_volatility, fit_garch(frame["KO"]).conditional_volatility)


def test_rejects_bad_input() -> None:
    r = _stock_returns()["KO"].iloc[:200]
    with pytest.raises(ValueError, match="at least 30"):
        fit_garch(r.iloc[: MIN_OBSERVATIONS - 1])
    with pytest.raises(ValueError, match="NaN"):
        fit_garch(r.where(r.index != r.index[50]))
    with pytest.raises(ValueError, match="one-dimensional"):
        fit_garch(np.ones((50, 2)))
    with pytest.raises(ValueError, match="constant"):
        fit_garch(np.full(100, 0.01))
    with pytest.raises(ValueError, match="mean must be"):
        fit_garch(r, mean="ar1")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="scale"):
        fit_garch(r, scale=0.0)
    with pytest.raises(ValueError, match="NaN"):
        fit_garch_many(catalogue.pypfopt_prices().pct_change().iloc[1:300])
    with pytest.raises(ValueError, match="two-dimensional"):
        fit_garch_many(r.to_numpy())
