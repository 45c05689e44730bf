"""quant.correlation against numpy, pandas and scikit-learn on the real data, plus invariants."""

from __future__ import annotations

from functools import cache

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from scipy.stats import multivariate_normal, norm
from sklearn.covariance import LedoitWolf
from sklearn.decomposition import PCA

from desk.local import catalogue
from quant import correlation as qc

# ---- real data -------------------------------------------------------------------------------


@cache
def sp500_returns() -> pd.DataFrame:
    prices = catalogue.sp500_stocks()
    return (prices / prices.shift() - 1.0).iloc[1:]


@cache
def sp500_index_returns() -> pd.Series:
    level = catalogue.sp500_index()
    return (level / level.shift() - 1.0).iloc[1:]


@cache
def pypfopt_returns_with_gaps() -> pd.DataFrame:
    prices = catalogue.pypfopt_prices()
    return (prices / prices.shift() - 1.0).iloc[1:]


@cache
def pypfopt_returns() -> pd.DataFrame:
    prices = catalogue.pypfopt_prices().dropna()
    return (prices / prices.shift() - 1.0).iloc[1:]


@cache
def crypto_returns() -> pd.DataFrame:
    closes = pd.concat({k: v["close"] for k, v in catalogue.bitstamp_daily().items()}, axis=1).dropna()
    return np.log(closes).diff().iloc[1:]


REAL = [sp500_returns, pypfopt_returns, crypto_returns]

# ---- strategies: returns of realistic size (0 or 1e-9 <= |r| <= 0.5), and on a 1/64 grid so that
# rolling windows are either exactly constant or clearly not

grid_returns = st.integers(2, 40).flatmap(
    lambda t: st.integers(1, 6).flatmap(
        lambda n: arrays(np.int64, (t, n), elements=st.integers(-64, 64)).map(lambda a: a / 64.0)
    )
)
float_returns = st.integers(3, 40).flatmap(
    lambda t: st.integers(1, 6).flatmap(
        lambda n: arrays(np.float64, (t, n), elements=st.just(0.0) | st.floats(1e-9, 0.5) | st.floats(-0.5, -1e-9))
    )
)


def assert_symmetric_psd(m: np.ndarray, tol: float = 1e-12) -> None:
    assert np.array_equal(m, m.T)
    if m.size == 0:
        return
    scale = max(1.0, float(np.abs(m).max()))
    assert np.linalg.eigvalsh(m).min() >= -tol * scale * m.shape[0]


# ---- pearson ---------------------------------------------------------------------------------


@pytest.mark.parametrize("load", REAL)
def test_pearson_equals_pandas_and_numpy_on_real_returns(load: object) -> None:
    # Given real daily returns without gaps
    returns = load()  # type: ignore[operator]
    # When the Pearson matrix is estimated
    ours = qc.pearson(returns)
    # Then it equals pandas and numpy, keeps the labels and has an exact unit diagonal
    pd.testing.assert_frame_equal(ours, returns.corr(), rtol=0, atol=1e-13)
    np.testing.assert_allclose(qc.pearson(returns.to_numpy()), np.corrcoef(returns.to_numpy().T), rtol=0, atol=1e-13)
    assert list(ours.columns) == list(returns.columns) == list(ours.index)
    assert np.all(np.diag(ours.to_numpy()) == 1.0)


@pytest.mark.parametrize("min_periods", [1, 2000, 6000])
def test_pearson_pairwise_complete_equals_pandas_on_staggered_listings(min_periods: int) -> None:
    # Given returns whose columns start on different dates (leading NaN before each listing)
    returns = pypfopt_returns_with_gaps()
    assert returns.isna().any().any()
    # When the correlation uses pairwise-complete rows
    ours = qc.pearson(returns, min_periods=min_periods)
    # Then it equals pandas' DataFrame.corr(min_periods=...), NaN pattern included
    theirs = returns.corr(min_periods=min_periods)
    assert np.array_equal(np.isnan(ours.to_numpy()), np.isnan(theirs.to_numpy()))
    pd.testing.assert_frame_equal(ours, theirs, rtol=0, atol=1e-13)


def test_pearson_gives_nan_for_a_constant_column_like_pandas() -> None:
    # Given real returns with one column replaced by a constant
    returns = sp500_returns().iloc[:500].copy()
    returns["KO"] = 0.01
    # When correlated, with and without pairwise handling
    # Then the constant column's row and column are NaN, as in pandas
    for ours in (qc.pearson(returns), qc.pearson(returns, min_periods=1)):
        pd.testing.assert_frame_equal(ours, returns.corr(), rtol=0, atol=1e-13)
        assert ours["KO"].isna().all()


def test_pearson_rejects_nan_unless_pairwise_and_bad_shapes() -> None:
    with pytest.raises(ValueError, match="NaN"):
        qc.pearson(pypfopt_returns_with_gaps())
    with pytest.raises(ValueError, match="two-dimensional"):
        qc.pearson(np.arange(10.0))
    with pytest.raises(ValueError, match="min_periods"):
        qc.pearson(sp500_returns().iloc[:10], min_periods=11)


@given(float_returns)
def test_pearson_is_a_correlation_matrix(x: np.ndarray) -> None:
    # Given any returns; When correlated
    corr = qc.pearson(x)
    varies = np.ptp(x, axis=0) > 0
    # Then it is symmetric, in [-1, 1], unit diagonal, and PSD on the non-constant columns
    sub = corr[np.ix_(varies, varies)]
    assert np.all(np.isnan(corr[~varies]))
    assert np.all(np.abs(sub) <= 1.0)
    assert np.all(np.diag(sub) == 1.0)
    assert_symmetric_psd(sub, tol=1e-10)


# ---- EWMA covariance -------------------------------------------------------------------------


def ewma_loop(r: np.ndarray, lam: float, m: int) -> np.ndarray:
    """The RiskMetrics recursion written out step by step, seeded with the first m rows."""
    path = np.full((r.shape[0], r.shape[1], r.shape[1]), np.nan)
    sigma = sum(np.outer(r[k], r[k]) for k in range(m)) / m
    path[m - 1] = sigma
    for t in range(m, r.shape[0]):
        sigma = lam * sigma + (1 - lam) * np.outer(r[t], r[t])
        path[t] = sigma
    return path


@pytest.mark.parametrize("load", REAL)
@pytest.mark.parametrize(("lam", "m"), [(0.94, 20), (0.97, 1), (0.5, 60)])
def test_ewma_covariance_path_equals_the_recursion_on_real_returns(load: object, lam: float, m: int) -> None:
    # Given real returns (the last 1,000 rows)
    returns = load().iloc[-1000:]  # type: ignore[operator]
    # When the EWMA path and the final matrix are computed
    path = qc.ewma_covariance(returns, lam, init_window=m, return_path=True)
    final = qc.ewma_covariance(returns, lam, init_window=m)
    # Then they follow the plain recursion, with the seed at row m-1 and NaN before it
    expected = ewma_loop(returns.to_numpy(), lam, m)
    assert np.array_equal(np.isnan(path), np.isnan(expected))
    # (cross terms near zero are sums that cancel: compare them on the scale of the variances)
    atol = 1e-13 * float(np.nanmax(np.abs(expected)))
    np.testing.assert_allclose(path, expected, rtol=1e-12, atol=atol)
    pd.testing.assert_frame_equal(
        final, pd.DataFrame(expected[-1], index=returns.columns, columns=returns.columns), rtol=1e-12, atol=atol
    )


def test_ewma_covariance_equals_the_riskmetrics_weighted_sum() -> None:
    # Given BTC/ETH/LTC returns and RiskMetrics' daily decay
    r = crypto_returns().to_numpy()
    lam, m = 0.94, 25
    # When the final estimate is computed
    ours = qc.ewma_covariance(r, lam, init_window=m)
    # Then it is (1 - lam) sum lam^(T-1-k) r_k r_k^T over the rows after the seed, plus the decayed seed
    t_last = r.shape[0] - 1
    k = np.arange(m, r.shape[0])
    weights = (1 - lam) * lam ** (t_last - k)
    seed = r[:m].T @ r[:m] / m
    expected = np.einsum("k,ki,kj->ij", weights, r[m:], r[m:]) + lam ** (t_last - m + 1) * seed
    np.testing.assert_allclose(ours, expected, rtol=1e-10)


def test_ewma_covariance_closed_form_for_constant_returns() -> None:
    # Given a zero seed window followed by a constant return vector c
    c = np.array([0.01, -0.02, 0.005])
    m, steps, lam = 10, 50, 0.9
    r = np.vstack([np.zeros((m, 3)), np.tile(c, (steps, 1))])
    # When the path is computed
    path = qc.ewma_covariance(r, lam, init_window=m, return_path=True)
    # Then S after k constant steps is (1 - lam^k) c c^T, and a constant series is its own fixed point
    for k in (1, 5, steps):
        np.testing.assert_allclose(path[m - 1 + k], (1 - lam**k) * np.outer(c, c), rtol=1e-12)
    np.testing.assert_allclose(qc.ewma_covariance(np.tile(c, (30, 1)), 0.94), np.outer(c, c), rtol=1e-12)


def test_ewma_covariance_is_not_pandas_demeaned_ewm_cov() -> None:
    # Given returns with a clear drift
    r = pd.DataFrame({"a": np.linspace(0.01, 0.03, 200), "b": np.linspace(0.02, -0.01, 200)})
    # When both are computed with the same span
    ours = qc.ewma_covariance(r, 0.94, init_window=1)
    theirs = r.ewm(alpha=0.06, adjust=False).cov().iloc[-2:].to_numpy()
    # Then they differ: ours keeps the mean in the second moment
    assert ours.loc["a", "a"] > theirs[0, 0] + 1e-5


def test_ewma_covariance_rejects_bad_parameters() -> None:
    r = sp500_returns().iloc[:30]
    for lam in (0.0, 1.0, -0.5):
        with pytest.raises(ValueError, match="lam"):
            qc.ewma_covariance(r, lam)
    with pytest.raises(ValueError, match="init_window"):
        qc.ewma_covariance(r, init_window=31)
    with pytest.raises(ValueError, match="NaN"):
        qc.ewma_covariance(pypfopt_returns_with_gaps())


@given(float_returns, st.floats(0.01, 0.99), st.integers(1, 3))
def test_ewma_covariance_is_symmetric_psd_at_every_step(x: np.ndarray, lam: float, m: int) -> None:
    # Given any returns, decay and seed window; When the path is computed
    path = qc.ewma_covariance(x, lam, init_window=m, return_path=True)
    # Then every estimate from the seed on is symmetric PSD, and the last one is the final matrix
    for sigma in path[m - 1 :]:
        assert_symmetric_psd(sigma, tol=1e-12)
    assert np.array_equal(path[-1], qc.ewma_covariance(x, lam, init_window=m))


# ---- Ledoit-Wolf -----------------------------------------------------------------------------


@pytest.mark.parametrize("load", REAL)
def test_ledoit_wolf_equals_sklearn_on_real_returns(load: object) -> None:
    # Given real returns
    returns = load()  # type: ignore[operator]
    # When shrunk
    ours = qc.ledoit_wolf(returns)
    # Then covariance and intensity equal scikit-learn's LedoitWolf (which centres the data, ddof = 0)
    ref = LedoitWolf().fit(returns.to_numpy())
    assert ours.shrinkage == pytest.approx(ref.shrinkage_, rel=1e-10, abs=1e-14)
    np.testing.assert_allclose(ours.covariance.to_numpy(), ref.covariance_, rtol=1e-10, atol=1e-18)
    assert list(ours.covariance.columns) == list(returns.columns)


def test_ledoit_wolf_with_more_assets_than_days_and_one_asset_equals_sklearn() -> None:
    # Given 12 days of 20 stocks (singular sample covariance) and a single stock
    wide = sp500_returns().iloc[-12:].to_numpy()
    single = sp500_returns()[["JPM"]].to_numpy()
    for x in (wide, single):
        # When shrunk; Then it equals scikit-learn
        ours = qc.ledoit_wolf(x)
        ref = LedoitWolf().fit(x)
        assert ours.shrinkage == pytest.approx(ref.shrinkage_, rel=1e-10, abs=1e-14)
        np.testing.assert_allclose(ours.covariance, ref.covariance_, rtol=1e-10, atol=1e-18)
    # And the wide estimate is well conditioned while the sample covariance is not
    assert np.linalg.eigvalsh(qc.ledoit_wolf(wide).covariance).min() > 0


def test_ledoit_wolf_rejects_nan() -> None:
    with pytest.raises(ValueError, match="NaN"):
        qc.ledoit_wolf(pypfopt_returns_with_gaps())


@given(float_returns.filter(lambda a: a.shape[0] >= 2))
def test_ledoit_wolf_shrinkage_is_in_unit_interval_and_matches_sklearn(x: np.ndarray) -> None:
    # Given any returns; When shrunk
    cov, shrinkage = qc.ledoit_wolf(x)
    # Then the intensity is in [0, 1], the result is symmetric PSD and keeps the sample trace
    assert 0.0 <= shrinkage <= 1.0
    assert_symmetric_psd(cov, tol=1e-10)
    np.testing.assert_allclose(np.trace(cov), np.trace(np.atleast_2d(np.cov(x, rowvar=False, ddof=0))), atol=1e-12)
    ref = LedoitWolf().fit(x)
    np.testing.assert_allclose(cov, ref.covariance_, rtol=1e-8, atol=1e-12)


# ---- PCA -------------------------------------------------------------------------------------


def assert_equal_up_to_column_sign(ours: np.ndarray, theirs: np.ndarray, atol: float) -> None:
    signs = np.sign(np.sum(ours * theirs, axis=0))
    assert np.all(signs != 0)
    np.testing.assert_allclose(ours, theirs * signs, rtol=0, atol=atol)


@pytest.mark.parametrize("load", REAL)
@pytest.mark.parametrize("standardize", [True, False])
def test_pca_equals_sklearn_up_to_sign_on_real_returns(load: object, standardize: bool) -> None:
    # Given real returns and the same preprocessing fed to scikit-learn
    returns = load()  # type: ignore[operator]
    x = returns.to_numpy()
    z = (x - x.mean(axis=0)) / x.std(axis=0, ddof=1) if standardize else x
    ref = PCA(svd_solver="full").fit(z)
    # When the PCA is computed
    ours = qc.pca(returns, standardize=standardize)
    # Then eigenvalues, ratios, loadings (and the scores) agree (each component up to its sign)
    scale = ref.explained_variance_[0]
    np.testing.assert_allclose(ours.eigenvalues.to_numpy(), ref.explained_variance_, rtol=0, atol=1e-10 * scale)
    np.testing.assert_allclose(ours.explained_variance_ratio.to_numpy(), ref.explained_variance_ratio_, atol=1e-10)
    # (the trailing components of near-degenerate spectra are ill-determined; compare the leading ones)
    k = 3
    assert_equal_up_to_column_sign(ours.loadings.to_numpy()[:, :k], ref.components_[:k].T, atol=1e-8)
    scores = qc.pca_scores(returns, standardize=standardize)
    assert_equal_up_to_column_sign(scores.to_numpy()[:, :k], ref.transform(z)[:, :k], atol=1e-8 * np.sqrt(scale))
    assert list(ours.loadings.index) == list(returns.columns)
    assert scores.index.equals(returns.index)


def test_pca_of_standardized_returns_is_the_eigen_decomposition_of_pearson() -> None:
    # Given real returns; When PCA is run on standardised returns
    returns = sp500_returns()
    ours = qc.pca(returns, n_components=4)
    # Then the eigenvalues are the top eigenvalues of the correlation matrix, which sum to N
    eig = np.linalg.eigvalsh(returns.corr().to_numpy())[::-1]
    np.testing.assert_allclose(ours.eigenvalues.to_numpy(), eig[:4], rtol=1e-10)
    np.testing.assert_allclose(ours.explained_variance_ratio.to_numpy(), eig[:4] / returns.shape[1], rtol=1e-10)
    ref = PCA(n_components=4).fit(returns.to_numpy() / returns.std().to_numpy())
    np.testing.assert_allclose(ours.explained_variance_ratio.to_numpy(), ref.explained_variance_ratio_, rtol=1e-10)
    # And the sign rule holds: each component's largest-magnitude loading is positive
    load = ours.loadings.to_numpy()
    assert np.all(load[np.argmax(np.abs(load), axis=0), np.arange(4)] > 0)


def test_pca_rejects_bad_input() -> None:
    x = sp500_returns().iloc[:50].to_numpy()
    with pytest.raises(ValueError, match="n_components"):
        qc.pca(x, n_components=0)
    with pytest.raises(ValueError, match="n_components"):
        qc.pca(x[:5], n_components=6)
    flat = x.copy()
    flat[:, 2] = 0.0
    with pytest.raises(ValueError, match="constant column"):
        qc.pca(flat)


@given(float_returns, st.booleans())
def test_pca_loadings_are_orthonormal_and_spectrum_descending(x: np.ndarray, standardize: bool) -> None:
    # Given any returns; When the full PCA is computed
    flat = np.ptp(x, axis=0) == 0
    if (standardize and flat.any()) or flat.all():
        with pytest.raises(ValueError, match="constant"):
            qc.pca(x, standardize=standardize)
        return
    res = qc.pca(x, standardize=standardize)
    # Then loadings are orthonormal, eigenvalues non-negative and descending, ratios sum to one
    k = res.loadings.shape[1]
    np.testing.assert_allclose(res.loadings.T @ res.loadings, np.eye(k), atol=1e-10)
    assert np.all(np.diff(res.eigenvalues) <= 1e-12 * max(1.0, res.eigenvalues[0]))
    assert np.all(res.eigenvalues >= 0)
    assert res.explained_variance_ratio.sum() == pytest.approx(1.0)


# ---- tail dependence -------------------------------------------------------------------------


def tail_by_pandas(x: pd.Series, y: pd.Series, q: float) -> float:
    """Conditional tail frequency from pandas' percentile ranks, counted in the lower tail."""
    u = x.rank() / (len(x) + 1)
    v = y.rank() / (len(y) + 1)
    cond = u <= q
    return float((cond & (v <= q)).sum() / cond.sum())


@pytest.mark.parametrize(("a", "b"), [("JPM", "BAC"), ("XOM", "CVX"), ("AAPL", "KO")])
@pytest.mark.parametrize("q", [0.01, 0.05, 0.1])
def test_tail_dependence_equals_a_rank_count_on_real_returns(a: str, b: str, q: float) -> None:
    # Given two real return series
    r = sp500_returns()
    # When the lower and upper tail coefficients are estimated
    lower = qc.tail_dependence(r[a], r[b], q)
    upper = qc.tail_dependence(r[a], r[b], q, tail="upper")
    # Then they equal the joint-exceedance frequency computed from pandas ranks
    assert lower == pytest.approx(tail_by_pandas(r[a], r[b], q), abs=1e-15)
    assert upper == pytest.approx(tail_by_pandas(-r[a], -r[b], q), abs=1e-15)


def test_tail_dependence_of_a_gaussian_sample_matches_the_bivariate_normal_copula() -> None:
    # Given a large seeded bivariate normal sample with correlation 0.6
    rho, q, n = 0.6, 0.05, 200_000
    z = np.random.default_rng(7).multivariate_normal([0, 0], [[1, rho], [rho, 1]], size=n)
    # When the lower-tail coefficient is estimated
    ours = qc.tail_dependence(z[:, 0], z[:, 1], q)
    # Then it is close to Phi_2(Phi^-1(q), Phi^-1(q); rho) / q (within ~5 standard errors)
    c = norm.ppf(q)
    exact = multivariate_normal(mean=[0, 0], cov=[[1, rho], [rho, 1]]).cdf([c, c]) / q
    se = np.sqrt(exact * (1 - exact) / (n * q))
    assert abs(ours - exact) < 5 * se


def test_tail_dependence_of_comonotone_and_countermonotone_series() -> None:
    x = crypto_returns()["BTC"]
    assert qc.tail_dependence(x, np.exp(3 * x), 0.05) == 1.0
    assert qc.tail_dependence(x, -x, 0.05) == 0.0
    assert qc.tail_dependence(x, -x, 0.05, tail="upper") == 0.0


def test_tail_dependence_rejects_bad_input() -> None:
    x = np.arange(50.0)
    with pytest.raises(ValueError, match="same length"):
        qc.tail_dependence(x, x[:-1])
    with pytest.raises(ValueError, match="q must be"):
        qc.tail_dependence(x, x, q=1.0)
    with pytest.raises(ValueError, match="selects no observation"):
        qc.tail_dependence(x, x, q=0.01)
    with pytest.raises(ValueError, match="tail"):
        qc.tail_dependence(x, x, tail="both")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="NaN"):
        qc.tail_dependence(np.r_[x[:-1], np.nan], x)


@given(
    st.integers(10, 60).flatmap(lambda n: arrays(np.int64, (2, n), elements=st.integers(-10_000, 10_000))),
    st.floats(0.05, 0.5),
    st.sampled_from(["lower", "upper"]),
)
def test_tail_dependence_is_in_unit_interval_and_rank_invariant(xy: np.ndarray, q: float, tail: str) -> None:
    x, y = xy.astype(np.float64)
    conditioning = -x if tail == "upper" else x
    if not (pd.Series(conditioning).rank() / (len(x) + 1) <= q).any():
        # (heavy ties can leave the tail empty: that must be an error, not a division by zero)
        with pytest.raises(ValueError, match="selects no observation"):
            qc.tail_dependence(x, y, q, tail)  # type: ignore[arg-type]
        return
    # Given any pair; When estimated, and again after strictly increasing transforms
    lam = qc.tail_dependence(x, y, q, tail)  # type: ignore[arg-type]
    transformed = qc.tail_dependence(4.0 * x - 3.0, y**3, q, tail)  # type: ignore[arg-type]
    # Then it is in [0, 1] and unchanged
    assert 0.0 <= lam <= 1.0
    assert transformed == lam


# ---- stress correlation ----------------------------------------------------------------------


def test_worst_periods_mask_and_stress_correlation_on_real_crashes() -> None:
    # Given stock returns and the S&P 500 index returns on the same calendar
    r = sp500_returns()
    market = sp500_index_returns()
    # When the worst 5% market days are selected and the stocks correlated over them
    mask = qc.worst_periods_mask(market, 0.05)
    stressed = qc.stress_correlation(r, mask)
    # Then the mask is pandas' linear-quantile threshold and the matrix is pandas' corr on those rows
    pd.testing.assert_series_equal(mask, (market <= market.quantile(0.05)).rename("worst"))
    pd.testing.assert_frame_equal(stressed, r[mask].corr(), rtol=0, atol=1e-13)
    # And a mask of every row gives the full-sample correlation
    pd.testing.assert_frame_equal(qc.stress_correlation(r, np.ones(len(r), bool)), qc.pearson(r))


def test_stress_correlation_rejects_bad_masks() -> None:
    r = sp500_returns().iloc[:100]
    with pytest.raises(ValueError, match="one entry per row"):
        qc.stress_correlation(r, np.ones(99, bool))
    with pytest.raises(ValueError, match="boolean"):
        qc.stress_correlation(r, np.ones(100))
    with pytest.raises(ValueError, match="at least 2"):
        qc.stress_correlation(r, np.arange(100) == 3)
    with pytest.raises(ValueError, match="same index"):
        qc.stress_correlation(r, pd.Series(True, index=sp500_returns().index[1:101]))
    with pytest.raises(ValueError, match="quantile"):
        qc.worst_periods_mask(sp500_index_returns(), 0.0)


# ---- rolling correlation ---------------------------------------------------------------------


@pytest.mark.parametrize(("load", "window"), [(sp500_returns, 60), (pypfopt_returns, 20), (crypto_returns, 90)])
def test_rolling_correlation_equals_pandas_on_real_returns(load: object, window: int) -> None:
    # Given real returns
    returns = load()  # type: ignore[operator]
    # When rolled
    ours = qc.rolling_correlation(returns, window)
    # Then it equals pandas' rolling(window).corr(), pair by pair, NaN pattern included
    theirs = returns.rolling(window).corr().to_numpy().reshape(ours.shape)
    assert np.array_equal(np.isnan(ours), np.isnan(theirs))
    assert np.all(np.isnan(ours[: window - 1]))
    np.testing.assert_allclose(ours, theirs, rtol=0, atol=1e-10)


def test_rolling_correlation_equals_exact_per_window_correlation() -> None:
    # Given real returns and a short window, where the sliding update is exercised hardest
    x = sp500_returns().iloc[:1500, :6].to_numpy()
    window = 5
    # When rolled
    ours = qc.rolling_correlation(x, window)
    # Then each window equals numpy's two-pass corrcoef over the same rows
    for t in range(window - 1, len(x)):
        block = x[t - window + 1 : t + 1]
        if np.all(np.ptp(block, axis=0) > 0):
            np.testing.assert_allclose(ours[t], np.corrcoef(block.T), rtol=0, atol=1e-12)


def test_rolling_correlation_of_a_series_pair_equals_pandas() -> None:
    # Given two real return Series
    r = crypto_returns()
    # When rolled as a pair
    ours = qc.rolling_correlation(r["BTC"], 30, r["ETH"])
    # Then it is a Series on the same index equal to pandas' pairwise rolling corr
    pd.testing.assert_series_equal(ours, r["BTC"].rolling(30).corr(r["ETH"]).rename("correlation"), atol=1e-12)
    np.testing.assert_allclose(qc.rolling_correlation(r["BTC"].to_numpy(), 30, r["ETH"].to_numpy()), ours.to_numpy())


def test_rolling_correlation_is_nan_where_a_column_is_constant_like_pandas() -> None:
    # Given real returns with a stretch of zeros in one column (a trading halt)
    returns = sp500_returns().iloc[:400, :4].copy()
    returns.iloc[100:180, 1] = 0.0
    # When rolled
    ours = qc.rolling_correlation(returns, 30)
    theirs = returns.rolling(30).corr().to_numpy().reshape(ours.shape)
    # Then the pairs with the halted column are NaN exactly where pandas has NaN
    assert np.array_equal(np.isnan(ours), np.isnan(theirs))
    assert np.isnan(ours[150, 1]).all() and not np.isnan(ours[150, 0, 2])
    np.testing.assert_allclose(ours, theirs, rtol=0, atol=1e-10)


def test_rolling_correlation_rejects_bad_input() -> None:
    r = sp500_returns().iloc[:50]
    with pytest.raises(ValueError, match="window"):
        qc.rolling_correlation(r, 1)
    with pytest.raises(ValueError, match="window"):
        qc.rolling_correlation(r, 51)
    with pytest.raises(ValueError, match="same length"):
        qc.rolling_correlation(r["JPM"], 10, r["BAC"].iloc[:-1])
    with pytest.raises(ValueError, match="NaN"):
        qc.rolling_correlation(pypfopt_returns_with_gaps(), 10)


@given(grid_returns, st.integers(2, 12))
def test_rolling_correlation_matches_exact_windows_and_is_a_correlation(x: np.ndarray, window: int) -> None:
    window = min(window, x.shape[0])
    # Given any returns and window; When rolled
    ours = qc.rolling_correlation(x, window)
    # Then every window is symmetric, within [-1, 1], unit diagonal where defined, and equal to the exact value
    for t in range(window - 1, x.shape[0]):
        block = x[t - window + 1 : t + 1]
        varies = np.ptp(block, axis=0) > 0
        assert np.array_equal(ours[t], ours[t].T, equal_nan=True)
        assert np.all(np.isnan(ours[t][~varies]))
        sub = ours[t][np.ix_(varies, varies)]
        assert np.all(np.diag(sub) == 1.0) and np.all(np.abs(sub) <= 1.0)
        if varies.sum() >= 2:
            np.testing.assert_allclose(sub, np.corrcoef(block[:, varies].T), rtol=0, atol=1e-9)


def test_pca_unpacks_into_the_three_documented_parts() -> None:
    # Given real returns; When the PCA is unpacked as the API promises
    returns = catalogue.sp500_stocks().pct_change().dropna().iloc[-500:]
    eigenvalues, ratios, loadings = qc.pca(returns, 3)
    # Then the parts have the promised shapes
    assert eigenvalues.shape == (3,) and ratios.shape == (3,) and loadings.shape == (returns.shape[1], 3)


def test_dcc_garch_is_part_of_the_correlation_api() -> None:
    from quant import dcc

    assert qc.dcc_garch is dcc.dcc_garch
