"""quant.portfolio against PyPortfolioOpt (cvxpy), scipy.optimize and the published HRP oracle, on real data."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st
from pypfopt import EfficientFrontier, HRPOpt
from pypfopt.expected_returns import returns_from_prices
from scipy.optimize import fsolve, minimize

from desk.local import catalogue
from quant import portfolio

# ---- real data -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def returns_3y() -> pd.DataFrame:
    """Daily simple returns of the 20 skfolio S&P 500 stocks over the last three years (756 days)."""
    return catalogue.sp500_stocks().pct_change().iloc[-756:]


@pytest.fixture(scope="module")
def cov_3y(returns_3y: pd.DataFrame) -> pd.DataFrame:
    return returns_3y.cov()


def _slsqp_min_variance(cov: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """Second reference: scipy SLSQP on the same QP, objective scaled to O(1) for its tolerances."""
    n = cov.shape[0]
    scale = 1.0 / np.diag(cov).mean()
    res = minimize(
        lambda x: scale * x @ cov @ x,
        np.full(n, 1.0 / n),
        jac=lambda x: 2.0 * scale * cov @ x,
        bounds=[(lo, hi)] * n,
        constraints=[{"type": "eq", "fun": lambda x: x.sum() - 1.0, "jac": lambda x: np.ones_like(x)}],
        method="SLSQP",
        options={"ftol": 1e-16, "maxiter": 2000},
    )
    assert res.success, res.message
    return np.asarray(res.x)


def _random_cov(seed: int, n: int, eps: float) -> np.ndarray:
    rng = np.random.default_rng(seed)
    a = rng.normal(scale=0.01, size=(n, n))
    return a @ a.T + eps * np.eye(n)


cov_strategy = st.builds(
    _random_cov,
    seed=st.integers(0, 2**32 - 1),
    n=st.integers(2, 12),
    eps=st.sampled_from([1e-8, 1e-6, 1e-4]),
)


# ---- min_variance ----------------------------------------------------------------------------------


def test_long_only_min_variance_matches_pypfopt_min_volatility(cov_3y: pd.DataFrame) -> None:
    # Given the real covariance of 20 stocks
    # When both solve the long-only minimum-variance problem
    ours = portfolio.min_variance(cov_3y)
    ref = pd.Series(EfficientFrontier(None, cov_3y, weight_bounds=(0, 1)).min_volatility())
    # Then the weights agree to cvxpy's tolerance and ours is at least as low in variance
    assert isinstance(ours, pd.Series)
    assert list(ours.index) == list(cov_3y.columns)
    np.testing.assert_allclose(ours.to_numpy(), ref[ours.index].to_numpy(), atol=1e-6)
    assert ours @ cov_3y @ ours <= ref @ cov_3y @ ref * (1 + 1e-12)
    assert ours.sum() == pytest.approx(1.0, abs=1e-14)
    assert (ours >= 0).all()


def test_long_only_min_variance_matches_scipy_slsqp(cov_3y: pd.DataFrame) -> None:
    # Given the real covariance
    cov = cov_3y.to_numpy()
    # When ours and scipy's SLSQP solve the same QP
    ours = portfolio.min_variance(cov)
    ref = _slsqp_min_variance(cov, 0.0, 1.0)
    # Then the numpy input gives a numpy answer equal to SLSQP's
    assert isinstance(ours, np.ndarray)
    np.testing.assert_allclose(ours, ref, atol=1e-7)


def test_boxed_min_variance_matches_slsqp_and_beats_cvxpy(cov_3y: pd.DataFrame) -> None:
    # Given 2% <= w <= 20% on the real covariance (several assets at each bound)
    cov = cov_3y.to_numpy()
    # When solved by ours, SLSQP and PyPortfolioOpt (cvxpy, whose default tolerance is loose here)
    ours = portfolio.min_variance(cov_3y, bounds=(0.02, 0.2)).to_numpy()
    slsqp = _slsqp_min_variance(cov, 0.02, 0.2)
    ppo = pd.Series(EfficientFrontier(None, cov_3y, weight_bounds=(0.02, 0.2)).min_volatility())[cov_3y.columns]
    # Then ours equals SLSQP, respects the box, and has no more variance than either reference
    np.testing.assert_allclose(ours, slsqp, atol=1e-7)
    assert ours.min() >= 0.02 and ours.max() <= 0.2
    assert ours @ cov @ ours <= min(slsqp @ cov @ slsqp, ppo @ cov @ ppo) * (1 + 1e-12)


def test_unconstrained_min_variance_is_the_closed_form_and_matches_pypfopt(cov_3y: pd.DataFrame) -> None:
    # Given the real covariance with no bounds
    ours = portfolio.min_variance(cov_3y, long_only=False)
    ref = pd.Series(EfficientFrontier(None, cov_3y, weight_bounds=(None, None)).min_volatility())
    # Then it matches cvxpy, shorts some assets, and every marginal variance (Σw)_i is equal (KKT)
    np.testing.assert_allclose(ours.to_numpy(), ref[ours.index].to_numpy(), atol=1e-6)
    assert (ours < 0).any()
    grad = cov_3y.to_numpy() @ ours.to_numpy()
    np.testing.assert_allclose(grad, grad.mean(), rtol=1e-9)


def test_min_variance_rejects_bad_input(cov_3y: pd.DataFrame) -> None:
    cov = cov_3y.to_numpy()
    not_psd = cov.copy()
    not_psd[0, 1] = not_psd[1, 0] = 10 * cov[0, 0]
    with_nan = cov.copy()
    with_nan[2, 3] = np.nan
    singular = np.ones((3, 3))
    with pytest.raises(ValueError, match="positive semi-definite"):
        portfolio.min_variance(not_psd)
    with pytest.raises(ValueError, match="NaN"):
        portfolio.min_variance(with_nan)
    with pytest.raises(ValueError, match="square"):
        portfolio.min_variance(cov[:, :5])
    with pytest.raises(ValueError, match="singular"):
        portfolio.min_variance(singular, long_only=False)
    with pytest.raises(ValueError, match="fully invested"):
        portfolio.min_variance(cov, bounds=(0.0, 0.01))
    with pytest.raises(ValueError, match="negative"):
        portfolio.min_variance(cov, bounds=(-0.1, 1.0))


def test_long_only_min_variance_on_a_singular_covariance(cov_3y: pd.DataFrame) -> None:
    # Given a covariance in which one stock is listed twice (singular, still PSD)
    base = cov_3y.iloc[:5, :5].to_numpy()
    dup = np.vstack([np.hstack([base, base[:, :1]]), np.hstack([base[:1, :], base[:1, :1]])])
    # When the long-only minimum variance is solved with and without the duplicate
    w_dup = portfolio.min_variance(dup)
    w = portfolio.min_variance(base)
    # Then the duplicate only splits the first stock's weight, and the variance is the same
    assert w_dup.sum() == pytest.approx(1.0, abs=1e-12) and (w_dup >= 0).all()
    assert w_dup @ dup @ w_dup == pytest.approx(w @ base @ w, rel=1e-10)
    np.testing.assert_allclose(np.r_[w_dup[0] + w_dup[5], w_dup[1:5]], w, atol=1e-8)


@given(cov=cov_strategy)
def test_min_variance_properties(cov: np.ndarray) -> None:
    # Given a random PSD covariance
    n = cov.shape[0]
    # When the long-only and the unconstrained minimum-variance weights are computed
    w = portfolio.min_variance(cov)
    free = portfolio.min_variance(cov, long_only=False)
    equal = np.full(n, 1.0 / n)
    # Then long-only weights are a fully invested long-only portfolio that beats equal weight,
    # and dropping the constraint can only lower the variance
    assert w.sum() == pytest.approx(1.0, abs=1e-12)
    assert (w >= 0).all()
    assert w @ cov @ w <= equal @ cov @ equal * (1 + 1e-10)
    assert free @ cov @ free <= w @ cov @ w * (1 + 1e-9)


# ---- risk parity -----------------------------------------------------------------------------------


def _fsolve_risk_budget(cov: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Independent reference: solve y_i (Σy)_i = b_i with scipy's MINPACK hybrid method."""
    scale = 1.0 / np.diag(cov).mean()
    y0 = 1.0 / np.sqrt(np.diag(cov) * scale)
    y, info, ier, msg = fsolve(lambda y: y * (scale * cov @ y) - b, y0, xtol=1e-14, full_output=True)
    # ier 3 means "cannot improve at this xtol": accept it when the residual is at rounding level
    assert ier in (1, 3), msg
    assert np.abs(info["fvec"]).max() < 1e-14
    assert (y > 0).all()
    return np.asarray(y / y.sum())


def test_risk_parity_equalises_risk_contributions_and_matches_fsolve(cov_3y: pd.DataFrame) -> None:
    # Given the real covariance
    # When the equal-risk-contribution weights are computed
    w = portfolio.risk_parity(cov_3y)
    rc = portfolio.risk_contributions(w, cov_3y)
    # Then every asset contributes the same variance, and an independent root-finder agrees
    np.testing.assert_allclose(rc.to_numpy(), rc.mean(), rtol=1e-8)
    ref = _fsolve_risk_budget(cov_3y.to_numpy(), np.full(20, 1 / 20))
    np.testing.assert_allclose(w.to_numpy(), ref, rtol=1e-8)
    assert w.sum() == pytest.approx(1.0, abs=1e-14)


def test_risk_budgets_are_met(cov_3y: pd.DataFrame) -> None:
    # Given unequal budgets (not normalised) as a Series in a shuffled order
    raw = pd.Series(np.arange(1.0, 21.0), index=cov_3y.columns[::-1])
    budgets = raw / raw.sum()
    # When the risk-budgeting weights are computed
    w = portfolio.risk_parity(cov_3y, budgets=raw)
    rel = portfolio.risk_contributions(w, cov_3y, relative=True)
    # Then each relative contribution equals its budget, and the root-finder agrees
    np.testing.assert_allclose(rel.to_numpy(), budgets[cov_3y.columns].to_numpy(), rtol=1e-8)
    ref = _fsolve_risk_budget(cov_3y.to_numpy(), budgets[cov_3y.columns].to_numpy())
    np.testing.assert_allclose(w.to_numpy(), ref, rtol=1e-8)


def test_risk_parity_rejects_bad_budgets(cov_3y: pd.DataFrame) -> None:
    with pytest.raises(ValueError, match="positive"):
        portfolio.risk_parity(cov_3y.to_numpy(), budgets=np.r_[0.0, np.ones(19)])
    with pytest.raises(ValueError, match="19 values"):
        portfolio.risk_parity(cov_3y.to_numpy(), budgets=np.ones(19))
    with pytest.raises(ValueError, match="zero variance"):
        portfolio.risk_parity(np.diag([1.0, 0.0]))


@given(cov=cov_strategy)
def test_risk_parity_properties(cov: np.ndarray) -> None:
    # Given a random PSD covariance, When ERC weights are computed
    w = portfolio.risk_parity(cov)
    rc = portfolio.risk_contributions(w, cov)
    # Then they are positive, sum to one and equalise risk contributions
    assert (w > 0).all()
    assert w.sum() == pytest.approx(1.0, abs=1e-12)
    np.testing.assert_allclose(rc, rc.mean(), rtol=1e-8)


def test_risk_contributions_add_up_to_the_variance(cov_3y: pd.DataFrame) -> None:
    # Given equal weights as a Series in reverse label order
    w = pd.Series(1 / 20, index=cov_3y.columns[::-1])
    # When contributions are computed
    rc = portfolio.risk_contributions(w, cov_3y)
    # Then they are labelled like the covariance and add up to wᵀΣw
    assert list(rc.index) == list(cov_3y.columns)
    assert rc.sum() == pytest.approx(float(w @ cov_3y @ w), rel=1e-12)
    with pytest.raises(ValueError, match="do not match"):
        portfolio.risk_contributions(w.rename(index={"AAPL": "X"}), cov_3y)


# ---- HRP -------------------------------------------------------------------------------------------


def test_hrp_reproduces_pypfopt_published_weights() -> None:
    # Given PyPortfolioOpt's test prices and its own returns convention (pct_change, no fill,
    # drop all-NaN rows) which leaves leading NaNs before each listing
    returns = returns_from_prices(catalogue.pypfopt_prices())
    assert returns.isna().any().any()
    # When HRP with single linkage is computed
    ours = portfolio.hrp(returns)
    # Then it equals the published weights file
    expected = catalogue.pypfopt_hrp_weights()
    np.testing.assert_allclose(ours[expected.index].to_numpy(), expected.to_numpy(), rtol=1e-10)


@pytest.mark.parametrize("method", ["single", "ward", "complete", "average"])
def test_hrp_matches_pypfopt_hrpopt(method: str) -> None:
    # Given the same returns with NaNs
    returns = returns_from_prices(catalogue.pypfopt_prices())
    # When both libraries compute HRP with this linkage
    ours = portfolio.hrp(returns, linkage=method)
    ref = pd.Series(HRPOpt(returns).optimize(linkage_method=method))
    # Then the weights are equal
    np.testing.assert_allclose(ours[ref.index].to_numpy(), ref.to_numpy(), rtol=1e-10)


def test_hrp_on_arrays_and_bad_input(returns_3y: pd.DataFrame) -> None:
    x = returns_3y.to_numpy()
    w = portfolio.hrp(x)
    ref = pd.Series(HRPOpt(returns_3y).optimize())
    assert isinstance(w, np.ndarray)
    np.testing.assert_allclose(w, ref[returns_3y.columns].to_numpy(), rtol=1e-10)
    with pytest.raises(ValueError, match="linkage"):
        portfolio.hrp(x, linkage="nearest")
    disjoint = x[:10, :3].copy()
    disjoint[:5, 0] = np.nan
    disjoint[5:, 1] = np.nan
    with pytest.raises(ValueError, match="fewer than 2 observations"):
        portfolio.hrp(disjoint)


@given(seed=st.integers(0, 2**32 - 1), n=st.integers(2, 10), method=st.sampled_from(["single", "ward", "average"]))
def test_hrp_properties(seed: int, n: int, method: str) -> None:
    # Given random correlated returns
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(60, n)) @ rng.normal(size=(n, n)) * 0.01
    # When HRP weights are computed
    w = portfolio.hrp(x, linkage=method)
    # Then they are positive and sum to one
    assert (w > 0).all()
    assert w.sum() == pytest.approx(1.0, abs=1e-12)


# ---- diversification ratio and Kelly ---------------------------------------------------------------


def test_diversification_ratio_published_cases(cov_3y: pd.DataFrame) -> None:
    # Given n uncorrelated assets of equal volatility, equal weights: DR = √n (Choueifaty & Coignard)
    assert portfolio.diversification_ratio(np.full(9, 1 / 9), 0.04 * np.eye(9)) == pytest.approx(3.0, rel=1e-14)
    # Given perfectly correlated assets (Σ = σσᵀ): DR = 1 for any long-only weights
    sigma = np.array([0.1, 0.2, 0.3])
    assert portfolio.diversification_ratio([0.2, 0.3, 0.5], np.outer(sigma, sigma)) == pytest.approx(1.0)
    # Given the real covariance: DR of equal weights computed by hand with pandas
    w = pd.Series(1 / 20, index=cov_3y.columns)
    by_hand = float(w @ np.sqrt(np.diag(cov_3y))) / float(np.sqrt(w @ cov_3y @ w))
    assert portfolio.diversification_ratio(w, cov_3y) == pytest.approx(by_hand, rel=1e-12)
    with pytest.raises(ValueError, match="3 values"):
        portfolio.diversification_ratio([0.5, 0.3, 0.2], cov_3y)


def test_kelly_maximises_log_growth(returns_3y: pd.DataFrame) -> None:
    # Given daily μ and Σ of five real stocks and a daily risk-free rate
    r = returns_3y.iloc[:, :5]
    mu, cov, rf = r.mean(), r.cov(), 0.0001
    # When Kelly weights are computed, and growth g(w) = wᵀ(μ − r) − ½wᵀΣw is maximised numerically
    w = portfolio.kelly(mu, cov, risk_free=rf)
    res = minimize(lambda x: -(x @ (mu - rf) - 0.5 * x @ cov @ x), np.zeros(5), method="BFGS", options={"gtol": 1e-14})
    # Then they agree, carry the labels, and half Kelly is half the position
    np.testing.assert_allclose(w.to_numpy(), res.x, rtol=1e-5)
    assert list(w.index) == list(r.columns)
    np.testing.assert_allclose(portfolio.kelly(mu, cov, fraction=0.5, risk_free=rf).to_numpy(), 0.5 * w.to_numpy())
    # And one asset reduces to Merton's μ/σ²
    assert portfolio.kelly([0.08], [[0.04]])[0] == pytest.approx(2.0, rel=1e-14)


def test_kelly_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="2 values"):
        portfolio.kelly([0.1, 0.2], np.eye(3))
    with pytest.raises(ValueError, match="fraction"):
        portfolio.kelly([0.1], [[0.04]], fraction=0.0)
    with pytest.raises(ValueError, match="singular"):
        portfolio.kelly([0.1, 0.1], np.ones((2, 2)))


def test_kelly_fraction_worked_examples() -> None:
    # Thorp (2006): an even-money bet (b = 1) won with p = 0.6 stakes p − q = 20%
    assert portfolio.kelly_fraction(0.6, 1.0) == pytest.approx(0.2, abs=1e-15)
    # A 2-to-1 payoff at a coin flip: 0.5 − 0.5/2 = 25%; a fair bet stakes nothing
    assert portfolio.kelly_fraction(0.5, 2.0) == pytest.approx(0.25, abs=1e-15)
    assert portfolio.kelly_fraction(1 / 3, 2.0) == pytest.approx(0.0, abs=1e-15)
    for p, b in ((-0.1, 1.0), (1.1, 1.0), (float("nan"), 1.0), (0.5, 0.0), (0.5, -1.0)):
        with pytest.raises(ValueError):
            portfolio.kelly_fraction(p, b)
