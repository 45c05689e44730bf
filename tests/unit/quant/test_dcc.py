"""DCC-GARCH (Engle 2002). arch has no DCC, so the correlation step is held against a simulation
with known (a, b), an independent numpy likelihood and recursion, the invariants of a correlation
matrix, and the behaviour of real correlations in 2008 and March 2020."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from desk.local import catalogue
from quant.dcc import dcc_fit_correlation, dcc_garch
from quant.garch import fit_garch

QBAR = np.array([[1.0, 0.5, 0.2], [0.5, 1.0, 0.3], [0.2, 0.3, 1.0]])


def _simulate_dcc(seed: int, n: int, a: float, b: float, qbar: np.ndarray = QBAR) -> np.ndarray:
    """Returns with GARCH(1,1) margins and DCC(a, b) correlations, N(0, R_t) innovations."""
    rng = np.random.default_rng(seed)
    k = qbar.shape[0]
    omega = np.linspace(0.01, 0.05, k)
    alpha = np.linspace(0.05, 0.1, k)
    beta = np.linspace(0.93, 0.85, k)
    s2 = omega / (1 - alpha - beta)
    q = qbar.copy()
    out = np.empty((n, k))
    z_prev = e_prev = np.zeros(k)
    for t in range(n):
        if t > 0:
            q = (1 - a - b) * qbar + a * np.outer(z_prev, z_prev) + b * q
            s2 = omega + alpha * e_prev**2 + beta * s2
        d = 1.0 / np.sqrt(np.diag(q))
        z = np.linalg.cholesky(q * np.outer(d, d)) @ rng.standard_normal(k)
        e_prev, z_prev = np.sqrt(s2) * z, z
        out[t] = 0.05 + e_prev
    return out


def _numpy_dcc(z: np.ndarray, a: float, b: float) -> tuple[float, np.ndarray]:
    """The correlation log-likelihood and R_t straight from Engle (2002), Q̄ = corr(z), Q_0 = Q̄."""
    qbar = np.corrcoef(z, rowvar=False)
    q = qbar.copy()
    rs = np.empty((len(z), z.shape[1], z.shape[1]))
    ll = 0.0
    for t in range(len(z)):
        if t > 0:
            q = (1 - a - b) * qbar + a * np.outer(z[t - 1], z[t - 1]) + b * q
        d = 1.0 / np.sqrt(np.diag(q))
        r = q * np.outer(d, d)
        rs[t] = r
        _, logdet = np.linalg.slogdet(r)
        ll += -0.5 * (logdet + z[t] @ np.linalg.solve(r, z[t]) - z[t] @ z[t])
    return ll, rs


def _stocks(names: list[str], start: str, end: str) -> pd.DataFrame:
    return catalogue.sp500_stocks().pct_change().loc[start:end, names]


def _crypto() -> pd.DataFrame:
    closes = pd.concat({k: v["close"] for k, v in catalogue.bitstamp_daily().items()}, axis=1).dropna()
    return closes.pct_change().iloc[1:]


def _assert_correlation_matrices(R: np.ndarray) -> None:
    n = R.shape[1]
    np.testing.assert_allclose(R, np.transpose(R, (0, 2, 1)), atol=0.0)
    np.testing.assert_allclose(R[:, np.arange(n), np.arange(n)], 1.0, atol=1e-12)
    assert np.all(np.abs(R) <= 1.0 + 1e-12)
    assert np.linalg.eigvalsh(R).min() > -1e-12


def test_simulated_dcc_parameters_are_recovered() -> None:
    # Given 3,000 days of a seeded 3-asset DCC-GARCH process with a = 0.05, b = 0.90
    r = _simulate_dcc(seed=7, n=3000, a=0.05, b=0.90)
    # When it is estimated by the two-step method
    res = dcc_garch(r, scale=1.0)
    # Then (a, b) are recovered within sampling error (standard errors here are ~0.005 and ~0.007)
    assert res.converged
    assert abs(res.a - 0.05) < 0.02
    assert abs(res.b - 0.90) < 0.03
    # and Q̄ estimates the true unconditional correlation
    np.testing.assert_allclose(res.qbar.to_numpy(), QBAR, atol=0.06)


@pytest.mark.parametrize(
    ("names", "start", "end"), [(["JPM", "BAC"], "2005", "2010"), (["AAPL", "MSFT"], "2018", "2021")]
)
def test_loglik_and_recursion_equal_an_independent_numpy_version_at_a_maximum(
    names: list[str], start: str, end: str
) -> None:
    # Given a DCC fit on real returns
    res = dcc_garch(_stocks(names, start, end))
    z = res.standardized_residuals.to_numpy()
    # When the likelihood and R_t are recomputed in plain numpy at the estimate
    ll, rs = _numpy_dcc(z, res.a, res.b)
    # Then they are the reported ones
    assert res.loglik == pytest.approx(ll, rel=1e-10)
    np.testing.assert_allclose(res.correlations, rs, atol=1e-12)
    np.testing.assert_allclose(res.qbar.to_numpy(), np.corrcoef(z, rowvar=False), atol=1e-14)
    # and every feasible neighbouring point has a lower likelihood
    for da, db in [(1e-3, 0), (-1e-3, 0), (0, 1e-3), (0, -1e-3), (1e-3, -1e-3), (-1e-3, 1e-3)]:
        a, b = res.a + da, res.b + db
        if a >= 0 and b >= 0 and a + b < 1:
            assert _numpy_dcc(z, a, b)[0] < ll


def test_univariate_step_is_fit_garch_per_asset() -> None:
    # Given three real stocks
    r = _stocks(["JPM", "BAC", "XOM"], "2012", "2019")
    # When the DCC model is fitted
    res = dcc_garch(r, compute_covariance=True)
    # Then its GARCH parameters are fit_garch's, and H_t = D_t R_t D_t has σ²_t on its diagonal
    assert list(res.garch_params.index) == ["JPM", "BAC", "XOM"]
    for k, name in enumerate(r.columns):
        one = fit_garch(r[name])
        np.testing.assert_allclose(
            res.garch_params.loc[name, ["mu", "omega", "alpha", "beta"]].to_numpy(float), one.params
        )
        assert res.covariances is not None
        np.testing.assert_allclose(res.covariances[:, k, k], one.conditional_volatility.to_numpy() ** 2, rtol=1e-12)
    assert res.covariances is not None
    vol = np.sqrt(np.diagonal(res.covariances, axis1=1, axis2=2))
    np.testing.assert_allclose(res.covariances / (vol[:, :, None] * vol[:, None, :]), res.correlations, atol=1e-12)


@pytest.mark.parametrize(
    ("names", "start", "end", "calm", "stress"),
    [
        (["JPM", "BAC"], "2005", "2010", ("2007-01-01", "2007-12-31"), ("2008-09-15", "2008-12-31")),
        (["AAPL", "MSFT"], "2005", "2010", ("2007-01-01", "2007-12-31"), ("2008-09-15", "2008-12-31")),
        (["JPM", "BAC"], "2018", "2021", ("2019-01-01", "2019-12-31"), ("2020-03-01", "2020-04-30")),
        (["AAPL", "MSFT"], "2018", "2021", ("2019-01-01", "2019-12-31"), ("2020-03-01", "2020-04-30")),
    ],
)
def test_correlation_rises_in_crises(
    names: list[str], start: str, end: str, calm: tuple[str, str], stress: tuple[str, str]
) -> None:
    # Given a pair of real stocks over a span holding a calm year and a crisis
    r = _stocks(names, start, end)
    # When their DCC correlation is estimated
    res = dcc_garch(r)
    rho = pd.Series(res.correlations[:, 0, 1], index=r.index)
    # Then it is higher on average in the crisis than in the calm year before
    assert rho.loc[stress[0] : stress[1]].mean() > rho.loc[calm[0] : calm[1]].mean()
    _assert_correlation_matrices(res.correlations)


def test_crypto_correlations_are_valid_and_labelled() -> None:
    # Given BTC, ETH and LTC daily returns from Bitstamp (common history from November 2017)
    r = _crypto()
    # When the DCC model is fitted
    res = dcc_garch(r)
    # Then every R_t is a correlation matrix and the helpers return labelled frames
    _assert_correlation_matrices(res.correlations)
    assert res.correlations.shape == (len(r), 3, 3)
    assert res.a >= 0 and res.b >= 0 and res.a + res.b < 1
    last = res.last_correlation
    assert list(last.columns) == ["BTC", "ETH", "LTC"] and list(last.index) == ["BTC", "ETH", "LTC"]
    np.testing.assert_array_equal(last.to_numpy(), res.correlations[-1])
    np.testing.assert_array_equal(res.correlation(r.index[100]).to_numpy(), res.correlations[100])
    np.testing.assert_array_equal(res.correlation(5).to_numpy(), res.correlations[5])


@given(
    seed=st.integers(0, 2**32 - 1),
    a=st.floats(0.0, 0.15),
    persistence=st.floats(0.2, 0.98),
    n=st.integers(60, 400),
)
def test_any_fit_gives_admissible_parameters_and_correlation_matrices(
    seed: int, a: float, persistence: float, n: int
) -> None:
    # Given a short simulated DCC process with arbitrary admissible (a, b)
    r = _simulate_dcc(seed, n, a, max(persistence - a, 0.0))
    # When it is fitted
    res = dcc_garch(r, scale=1.0)
    # Then the estimate is admissible and every R_t is a correlation matrix
    assert res.a >= 0 and res.b >= 0 and res.a + res.b < 1
    _assert_correlation_matrices(res.correlations)
    # and the correlation step's likelihood is at least that of constant correlation (a = b = 0)
    z = np.asarray(res.standardized_residuals)
    assert res.loglik >= _numpy_dcc(z, 0.0, 0.0)[0] - 1e-8 * max(1.0, abs(res.loglik))


def test_rejects_bad_input() -> None:
    r = _stocks(["JPM", "BAC"], "2010", "2011")
    with pytest.raises(ValueError, match="at least 2 columns"):
        dcc_garch(r[["JPM"]])
    gap = r.copy()
    gap.iloc[10, 1] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        dcc_garch(gap)
    with pytest.raises(ValueError, match="at least 30"):
        dcc_garch(r.iloc[:20])
    with pytest.raises(ValueError, match="positive definite"):
        dcc_fit_correlation(np.column_stack([r["JPM"], 2 * r["JPM"]]).astype(float))
