"""quant.markov_switching against statsmodels' MarkovRegression on real S&P 500 and BTC returns.

Tolerances. At equal parameters the two compute the same likelihood, so log-likelihoods and
probabilities agree to rounding (1e-9). At the fitted optimum both stop at an optimiser tolerance:
log-likelihoods within 1e-6 relative, parameters within 5 % of statsmodels' own standard error
(an estimation tolerance: far below the sampling uncertainty), smoothed probabilities within 1e-3.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from desk.local import catalogue
from quant.markov_switching import (
    MarkovSwitchingResult,
    ergodic_probabilities,
    fit_markov_switching,
    hamilton_filter,
)


def _pct_returns(close: pd.Series) -> pd.Series:
    return (100.0 * np.log(close).diff()).dropna()


def _sp500_index_returns(start: str, end: str) -> pd.Series:
    return _pct_returns(catalogue.sp500_index()).loc[start:end]


def _btc_returns() -> pd.Series:
    return _pct_returns(catalogue.bitstamp_daily()["BTC"]["close"])


def _sm_model(y: pd.Series, switching_mean: bool = True) -> sm.tsa.MarkovRegression:
    return sm.tsa.MarkovRegression(
        y.to_numpy(), k_regimes=2, trend="c", switching_variance=True, switching_trend=switching_mean
    )


def _to_sm_params(res: MarkovSwitchingResult) -> np.ndarray:
    """Our result in statsmodels' order: p[0->0], p[1->0], const(s), sigma2[0], sigma2[1]."""
    means = res.means if res.switching_mean else res.means[:1]
    return np.array([res.transition[0, 0], res.transition[1, 0], *means, *(res.sigmas**2)])


def _sm_in_our_order(sm_res: object, switching_mean: bool) -> dict[str, np.ndarray]:
    params = np.asarray(sm_res.params)  # type: ignore[attr-defined]
    bse = np.asarray(sm_res.bse)  # type: ignore[attr-defined]
    n_mean = 2 if switching_mean else 1
    sigma2 = params[2 + n_mean :]
    order = np.argsort(sigma2)
    P = np.asarray(sm_res.regime_transition)[:, :, 0].T  # type: ignore[attr-defined]
    means = params[2 : 2 + n_mean][order] if switching_mean else np.repeat(params[2], 2)
    mean_se = bse[2 : 2 + n_mean][order] if switching_mean else np.repeat(bse[2], 2)
    return {
        "transition": P[np.ix_(order, order)],
        "p_se": bse[:2],
        "means": means,
        "mean_se": mean_se,
        "sigma2": sigma2[order],
        "sigma2_se": bse[2 + n_mean :][order],
        "smoothed": np.asarray(sm_res.smoothed_marginal_probabilities)[:, order],  # type: ignore[attr-defined]
    }


# ---- the likelihood itself: equal parameters, equal numbers ----


@pytest.mark.parametrize("which", ["sp500_2015_2020", "btc"])
def test_filter_matches_statsmodels_at_its_own_parameters(which: str) -> None:
    # Given statsmodels' fit on real daily % returns
    y = _sp500_index_returns("2015", "2020") if which != "btc" else _btc_returns()
    model = _sm_model(y)
    ref = model.fit()
    p = np.asarray(ref.params)
    transition = np.asarray(ref.regime_transition)[:, :, 0].T
    # When our filter runs at those parameters (statsmodels' state order)
    out = hamilton_filter(y, p[2:4], np.sqrt(p[4:6]), transition)
    # Then log-likelihood and every probability agree to rounding
    assert out.loglik == pytest.approx(model.loglike(p), rel=1e-11)
    np.testing.assert_allclose(out.filtered.to_numpy(), ref.filtered_marginal_probabilities, atol=1e-10)
    np.testing.assert_allclose(out.predicted.to_numpy(), ref.predicted_marginal_probabilities, atol=1e-10)
    np.testing.assert_allclose(out.smoothed.to_numpy(), ref.smoothed_marginal_probabilities, atol=1e-10)
    assert out.smoothed.index.equals(y.index)


@settings(max_examples=30)
@given(
    p00=st.floats(0.05, 0.999),
    p11=st.floats(0.05, 0.999),
    mu=st.tuples(st.floats(-1.0, 1.0), st.floats(-1.0, 1.0)),
    sigma=st.tuples(st.floats(1.0, 8.0), st.floats(1.0, 8.0)),
)
def test_loglik_equals_statsmodels_at_any_parameters(
    p00: float, p11: float, mu: tuple[float, float], sigma: tuple[float, float]
) -> None:
    # Given any admissible parameters (sigma >= 1 %: below it statsmodels underflows on BTC tails) and BTC returns
    y = _btc_returns().iloc[:400]
    transition = np.array([[p00, 1.0 - p00], [1.0 - p11, p11]])
    # When both libraries evaluate the likelihood there
    ours = hamilton_filter(y.to_numpy(), np.array(mu), np.array(sigma), transition)
    theirs = _sm_model(y).loglike(np.array([p00, 1.0 - p11, *mu, sigma[0] ** 2, sigma[1] ** 2]))
    # Then the numbers are the same, and the probabilities are distributions
    assert ours.loglik == pytest.approx(theirs, rel=1e-10)
    for probs in (ours.filtered, ours.predicted, ours.smoothed):
        assert ((probs >= 0.0) & (probs <= 1.0)).all()
        np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-12)


# ---- the fit: same optimum as statsmodels ----


@pytest.mark.parametrize(
    ("which", "switching_mean"),
    [("sp500_2015_2020", True), ("sp500_2018_2022", True), ("btc", True), ("sp500_2015_2020", False), ("btc", False)],
)
def test_fit_agrees_with_statsmodels(which: str, switching_mean: bool) -> None:
    # Given real daily % returns: the S&P 500 index over a few years, or BTC on Bitstamp 2014-2020
    y = {
        "sp500_2015_2020": lambda: _sp500_index_returns("2015", "2020"),
        "sp500_2018_2022": lambda: _sp500_index_returns("2018", "2022"),
        "btc": _btc_returns,
    }[which]()
    # When both fit the two-state switching-variance model
    ours = fit_markov_switching(y, switching_mean=switching_mean)
    ref_res = _sm_model(y, switching_mean).fit()
    ref = _sm_in_our_order(ref_res, switching_mean)
    # Then they reach the same optimum (states matched by sigma)
    assert ours.converged
    assert ours.loglik == pytest.approx(ref_res.llf, rel=1e-6)
    assert np.abs(ours.transition[[0, 1], [0, 0]] - ref["transition"][[0, 1], [0, 0]]).max() <= 0.05 * ref["p_se"].max()
    np.testing.assert_array_less(np.abs(ours.means - ref["means"]), 0.05 * ref["mean_se"])
    np.testing.assert_array_less(np.abs(ours.sigmas**2 - ref["sigma2"]), 0.05 * ref["sigma2_se"])
    assert np.abs(ours.smoothed.to_numpy() - ref["smoothed"]).max() < 1e-3
    assert list(ours.smoothed.columns) == [0, 1]
    assert ours.smoothed.index.equals(y.index)


@pytest.mark.parametrize("which", ["sp500_index_2006_2010", "sp500_ohlcv_2003_2007"])
def test_fit_is_never_worse_than_statsmodels_and_its_optimum_is_statsmodels_optimum(which: str) -> None:
    # Given windows where statsmodels' default fit (EM + BFGS from one start) stops at a local optimum
    if which == "sp500_index_2006_2010":
        y = _sp500_index_returns("2006", "2010")
    else:
        y = _pct_returns(catalogue.sp500_ohlcv()["close"]).loc["2003":"2007"]
    model = _sm_model(y)
    default_fit = model.fit()
    # When we fit from several starting points
    ours = fit_markov_switching(y)
    # Then our log-likelihood is at least statsmodels', statsmodels computes the same value at our
    # parameters, and statsmodels' optimiser started there does not move: a genuine optimum
    assert ours.loglik >= default_fit.llf - 1e-6
    assert model.loglike(_to_sm_params(ours)) == pytest.approx(ours.loglik, rel=1e-11)
    polished = model.fit(start_params=_to_sm_params(ours), em_iter=0)
    assert polished.llf == pytest.approx(ours.loglik, rel=1e-7)
    np.testing.assert_allclose(np.asarray(polished.params), _to_sm_params(ours), rtol=1e-3, atol=1e-4)


# ---- structure and invariants ----


def test_result_is_ordered_low_vol_first_with_consistent_fields() -> None:
    # Given BTC daily returns
    y = _btc_returns()
    # When fitted
    res = fit_markov_switching(y)
    # Then state 0 is calm, the last state is the volatile one, and derived fields are consistent
    assert res.sigmas[0] < res.sigmas[1]
    assert res.high_vol_state == 1
    np.testing.assert_allclose(res.transition.sum(axis=1), 1.0, atol=1e-12)
    np.testing.assert_allclose(res.expected_durations, 1.0 / (1.0 - np.diag(res.transition)))
    np.testing.assert_allclose(res.initial_probabilities @ res.transition, res.initial_probabilities, atol=1e-12)
    assert res.n_obs == len(y)
    assert res.n_params == 6
    assert res.bic == pytest.approx(-2 * res.loglik + np.log(len(y)) * 6)
    states = res.most_likely_state()
    assert set(np.unique(states)) <= {0, 1}
    # and the volatile state's bars really are the volatile ones
    assert y[states == 1].std() > 2 * y[states == 0].std()


def test_numpy_input_gives_numpy_probabilities() -> None:
    y = _sp500_index_returns("2018", "2022").to_numpy()
    res = fit_markov_switching(y)
    assert isinstance(res.smoothed, np.ndarray)
    assert res.smoothed.shape == (len(y), 2)


@settings(max_examples=5)
@given(scale=st.floats(0.01, 100.0), shift=st.floats(-1.0, 1.0))
def test_fit_is_equivariant_to_affine_rescaling(scale: float, shift: float) -> None:
    # Given real returns and a change of units (e.g. % -> fraction) plus a shift
    y = _sp500_index_returns("2018", "2022").to_numpy()
    base = fit_markov_switching(y)
    # When the rescaled series is fitted
    res = fit_markov_switching(scale * y + shift)
    # Then means and sigmas follow the units, probabilities do not change, the log-likelihood
    # moves by the Jacobian term -n log(scale)
    np.testing.assert_allclose(res.sigmas, scale * base.sigmas, rtol=1e-4)
    np.testing.assert_allclose(res.means, scale * base.means + shift, rtol=1e-4, atol=1e-4 * scale)
    np.testing.assert_allclose(res.transition, base.transition, atol=1e-5)
    assert res.loglik == pytest.approx(base.loglik - len(y) * np.log(scale), rel=1e-7)
    assert np.abs(res.smoothed - base.smoothed).max() < 1e-4


def test_recovers_the_parameters_of_a_simulated_chain() -> None:
    # Given 4,000 bars simulated from a known two-state chain (calm sd 1, stressed sd 3)
    rng = np.random.default_rng(7)
    P = np.array([[0.98, 0.02], [0.05, 0.95]])
    s = np.empty(4000, dtype=int)
    s[0] = 0
    for t in range(1, s.size):
        s[t] = rng.random() < P[s[t - 1], 1]
    y = np.array([0.1, -0.3])[s] + np.array([1.0, 3.0])[s] * rng.standard_normal(s.size)
    # When fitted
    res = fit_markov_switching(y)
    # Then the estimates sit near the truth and the smoothed state matches the true one on most bars
    np.testing.assert_allclose(res.sigmas, [1.0, 3.0], rtol=0.08)
    np.testing.assert_allclose(np.diag(res.transition), np.diag(P), atol=0.02)
    assert (res.most_likely_state() == s).mean() > 0.9


@settings(max_examples=25)
@given(
    y=arrays(np.float64, st.integers(30, 120), elements=st.floats(-10, 10, allow_nan=False, allow_subnormal=False)),
    p=st.tuples(st.floats(0.0, 1.0), st.floats(0.0, 1.0)),
)
def test_probabilities_are_distributions_for_any_data(y: np.ndarray, p: tuple[float, float]) -> None:
    # Given any finite returns and any transition matrix with an ergodic distribution
    transition = np.array([[p[0], 1 - p[0]], [1 - p[1], p[1]]])
    if transition[0, 1] + transition[1, 0] == 0.0:
        transition = np.eye(2) * 0.5 + 0.25
    # When filtered and smoothed
    out = hamilton_filter(y, np.array([0.0, 0.5]), np.array([1.0, 4.0]), transition)
    # Then every row is a probability distribution
    for probs in (out.filtered, out.predicted, out.smoothed):
        assert ((probs >= 0.0) & (probs <= 1.0)).all()
        np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-12)
    assert np.isfinite(out.loglik)


def test_ergodic_probabilities_of_a_two_state_chain() -> None:
    # Hamilton (1994, eq. 22.2.26): pi_0 = (1 - p11) / (2 - p00 - p11)
    P = np.array([[0.9, 0.1], [0.3, 0.7]])
    np.testing.assert_allclose(ergodic_probabilities(P), [0.75, 0.25], atol=1e-14)


def test_three_states_optimum_is_a_statsmodels_optimum() -> None:
    # Given S&P 500 returns and our three-state fit
    y = _sp500_index_returns("2015", "2020")
    model = sm.tsa.MarkovRegression(y.to_numpy(), k_regimes=3, trend="c", switching_variance=True)
    res = fit_markov_switching(y, k_regimes=3)
    P = res.transition
    sm_params = np.r_[P[:, 0], P[:, 1], res.means, res.sigmas**2]  # statsmodels: p[i->0], p[i->1], ...
    # When statsmodels evaluates, then re-optimises from, our parameters
    polished = model.fit(start_params=sm_params, em_iter=0)
    # Then it computes the same likelihood and finds nothing higher nearby; sigmas are ordered
    assert model.loglike(sm_params) == pytest.approx(res.loglik, rel=1e-11)
    assert polished.llf == pytest.approx(res.loglik, rel=1e-7)
    assert np.all(np.diff(res.sigmas) > 0)
    assert res.high_vol_state == 2
    assert res.smoothed.shape == (len(y), 3)


# ---- bad input ----


@pytest.mark.parametrize(
    ("returns", "kwargs", "message"),
    [
        (np.ones(10), {}, "at least 30"),
        (np.r_[np.random.default_rng(0).standard_normal(50), np.nan], {}, "NaN"),
        (np.zeros(100), {}, "constant"),
        (np.random.default_rng(0).standard_normal(100), {"k_regimes": 1}, "k_regimes"),
        (np.random.default_rng(0).standard_normal(100), {"k_regimes": 2.0}, "k_regimes"),
        (np.random.default_rng(0).standard_normal((100, 2)), {}, "one-dimensional"),
    ],
)
def test_fit_rejects_bad_input(returns: np.ndarray, kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        fit_markov_switching(returns, **kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("means", "sigmas", "transition", "message"),
    [
        ([0.0, 0.0], [1.0, 0.0], [[0.9, 0.1], [0.1, 0.9]], "strictly positive"),
        ([0.0, 0.0], [1.0, 2.0], [[0.9, 0.2], [0.1, 0.9]], "sum to one"),
        ([0.0, 0.0], [1.0, 2.0], [[1.0, 0.0], [0.0, 1.0]], "ergodic"),
        ([0.0, 0.0, 0.0], [1.0, 2.0, 3.0], [[0.9, 0.1], [0.1, 0.9]], "3x3"),
        ([0.0], [1.0, 2.0], [[0.9, 0.1], [0.1, 0.9]], "one entry per state"),
    ],
)
def test_filter_rejects_bad_parameters(
    means: list[float], sigmas: list[float], transition: list[list[float]], message: str
) -> None:
    y = np.random.default_rng(1).standard_normal(50)
    with pytest.raises(ValueError, match=message):
        hamilton_filter(y, means, sigmas, transition)
