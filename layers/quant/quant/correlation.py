"""Correlation and covariance estimators: Pearson, RiskMetrics EWMA, Ledoit-Wolf, PCA, tails, stress, rolling.

Input is a (T, N) array or DataFrame of returns (rows = observations, columns = assets); results
for DataFrame input carry the asset labels. Unless a function says otherwise NaN is rejected with
a ``ValueError``. GARCH/DCC correlation lives in ``quant.dcc``.
"""

from __future__ import annotations

from typing import Any, Literal, NamedTuple

import numpy as np
import pandas as pd
from scipy.stats import rankdata

from quant._kernels.correlation import ewma_cov_nb, pairwise_corr_nb, rolling_corr_nb
from quant._validation import FloatArray, as_1d, as_2d, check_period, same_length

# DCC-GARCH lives in its own module (two-step estimation, GARCH kernels) but is part of this API.
from quant.dcc import DCCResult as DCCResult
from quant.dcc import dcc_garch as dcc_garch

__all__ = [
    "LedoitWolfResult",
    "PCAResult",
    "ewma_covariance",
    "ledoit_wolf",
    "pca",
    "pearson",
    "rolling_correlation",
    "stress_correlation",
    "tail_dependence",
    "worst_periods_mask",
]


class LedoitWolfResult(NamedTuple):
    """Shrunk covariance (N x N; DataFrame for DataFrame input) and the shrinkage intensity in [0, 1]."""

    covariance: Any
    shrinkage: float


class PCAResult(NamedTuple):
    """Principal components, largest eigenvalue first (pandas objects for DataFrame input).

    ``eigenvalues`` (k,), ``explained_variance_ratio`` (k,) and ``loadings`` (N assets x k, unit
    columns), so ``eigenvalues, ratios, loadings = pca(returns, k)`` unpacks. The projections of
    the returns on the loadings come from :func:`pca_scores`.
    """

    eigenvalues: Any
    explained_variance_ratio: Any
    loadings: Any


def _square(template: Any, values: FloatArray) -> Any:
    if isinstance(template, pd.DataFrame):
        labels = template.columns
        return pd.DataFrame(values, index=labels, columns=labels)
    return values


def _corr_no_nan(x: FloatArray) -> FloatArray:
    # Centre first: the raw-moment form E[xy] - E[x]E[y] cancels badly for series far from zero.
    xc = x - x.mean(axis=0)
    # Correlation is scale-free: unit-scaling each column keeps the squares clear of under/overflow.
    peak = np.abs(xc).max(axis=0)
    xc = xc / np.where(peak > 0.0, peak, 1.0)
    ss = np.einsum("ij,ij->j", xc, xc)
    # Constancy is decided exactly (max == min): a constant column's mean may be off by an ulp.
    varies = (x.max(axis=0) > x.min(axis=0)) & (ss > 0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        scale = np.where(varies, 1.0 / np.sqrt(ss), np.nan)
    corr = np.clip((xc.T @ xc) * np.outer(scale, scale), -1.0, 1.0)
    corr = 0.5 * (corr + corr.T)
    np.fill_diagonal(corr, np.where(varies, 1.0, np.nan))
    return np.asarray(corr, dtype=np.float64)


def pearson(returns: Any, min_periods: int | None = None) -> Any:
    """Pearson correlation matrix of the columns of ``returns``.

    Parameters
    ----------
    returns : (T, N) ndarray or DataFrame
    min_periods : int, optional
        ``None`` (default): NaN is rejected and every pair uses all T rows. An integer switches to
        pairwise-complete observations: each pair uses the rows where both columns are present,
        and a pair with fewer than ``min_periods`` (or 2) such rows is NaN, as
        ``DataFrame.corr(min_periods=...)`` in pandas.

    Returns
    -------
    (N, N) ndarray or DataFrame labelled by asset. Symmetric, diagonal exactly 1 and values
    clipped to [-1, 1]; a column with zero variance has a NaN row and column.

    Notes
    -----
    Sample correlation from centred cross-products (the ddof cancels). Matches ``numpy.corrcoef``
    and pandas ``DataFrame.corr()``.
    """
    if min_periods is None:
        x = as_2d(returns, "returns", allow_nan=False)
        return _square(returns, _corr_no_nan(x))
    x = as_2d(returns, "returns", allow_nan=True)
    check_period(min_periods, x.shape[0], "min_periods")
    return _square(returns, pairwise_corr_nb(x, int(min_periods)))


def ewma_covariance(returns: Any, lam: float = 0.94, *, init_window: int = 20, return_path: bool = False) -> Any:
    """RiskMetrics exponentially weighted covariance with zero mean.

    Recursion, with rows indexed t = 0..T-1 and m = ``init_window``::

        S[m-1] = (1/m) * sum_{k<m} r_k r_k^T          (seed: raw second moment, no demeaning)
        S[t]   = lam * S[t-1] + (1 - lam) * r_t r_t^T  for t >= m

    ``S[t]`` uses returns up to and including row t: it is RiskMetrics' forecast
    Sigma_{t+1|t} of the covariance of the *next* row's returns. To get the forecast for row t
    (information to t-1), shift the path by one. Unrolled, S[t] = (1-lam) sum_{k=m}^{t}
    lam^(t-k) r_k r_k^T + lam^(t-m+1) S[m-1]. Every S[t] is a convex combination of PSD
    matrices, hence PSD.

    Parameters
    ----------
    returns : (T, N) ndarray or DataFrame, no NaN
    lam : float, decay factor in (0, 1); 0.94 is RiskMetrics' daily value.
    init_window : int, rows averaged for the seed (1 seeds with r_0 r_0^T); must be <= T.
    return_path : bool, also keep every S[t].

    Returns
    -------
    The last estimate S[T-1] as an (N, N) ndarray or labelled DataFrame or, with
    ``return_path``, the (T, N, N) ndarray of all S[t] (NaN for t < m - 1), aligned with the
    rows of ``returns``.

    Notes
    -----
    Not pandas ``ewm().cov()``, which removes an exponentially weighted mean and normalises
    the weights. Source: J.P. Morgan/Reuters, *RiskMetrics Technical Document*, 4th ed. (1996),
    section 5.2.
    """
    x = as_2d(returns, "returns", allow_nan=False, min_rows=1)
    lam_f = float(lam)
    if not 0.0 < lam_f < 1.0:
        raise ValueError(f"lam must be in (0, 1), got {lam!r}")
    m = check_period(init_window, x.shape[0], "init_window")
    out = ewma_cov_nb(x, lam_f, m, np.empty((x.shape[0] if return_path else 1, x.shape[1], x.shape[1])))
    if return_path:
        return out
    return _square(returns, out[0])


def ledoit_wolf(returns: Any) -> LedoitWolfResult:
    """Ledoit-Wolf shrinkage of the sample covariance towards a scaled identity.

    With X the column-centred returns (T x N), S = X^T X / T (ddof = 0), mu = tr(S) / N,
    d^2 = ||S - mu I||_F^2 / N and b^2 = min(d^2, (sum_t ||x_t||^4 / T - ||S||_F^2) / (N T)),
    the estimate is (1 - delta) S + delta mu I with delta = b^2 / d^2 (0 when d^2 = 0).

    Returns
    -------
    LedoitWolfResult(covariance, shrinkage): covariance (N, N) ndarray or labelled DataFrame,
    shrinkage a float in [0, 1].

    Notes
    -----
    Equals scikit-learn's ``LedoitWolf(assume_centered=False).fit(X)`` (``covariance_``,
    ``shrinkage_``). One symmetric product X^T X is the only O(T N^2) step. Source: O. Ledoit
    and M. Wolf, "A well-conditioned estimator for large-dimensional covariance matrices",
    *J. Multivariate Analysis* 88 (2004), lemma 3.2 and theorem 3.2.
    """
    x = as_2d(returns, "returns", allow_nan=False)
    n_obs, n = x.shape
    xc = x - x.mean(axis=0)
    s = (xc.T @ xc) / n_obs
    mu = float(np.trace(s)) / n
    s_norm2 = float(np.einsum("ij,ij->", s, s))
    row_norm2 = np.einsum("ij,ij->i", xc, xc)
    d2 = (s_norm2 - n * mu * mu) / n
    b2 = min(d2, (float(row_norm2 @ row_norm2) / n_obs - s_norm2) / (n * n_obs))
    # Both terms are differences of sums of squares: clip the rounding of a near-zero result.
    shrinkage = 0.0 if d2 <= 0.0 or b2 <= 0.0 else min(1.0, b2 / d2)
    cov = (1.0 - shrinkage) * s
    cov[np.diag_indices(n)] += shrinkage * mu
    return LedoitWolfResult(_square(returns, cov), shrinkage)


def _pca(
    returns: Any, n_components: int | None, standardize: bool
) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray]:
    """Eigenvalues, ratios, sign-fixed loadings and the transformed data the SVD was taken of."""
    x = as_2d(returns, "returns", allow_nan=False)
    n_obs, n = x.shape
    k_max = min(n_obs, n)
    k = k_max if n_components is None else check_period(n_components, k_max, "n_components")
    z = x - x.mean(axis=0)
    if standardize:
        flat = np.flatnonzero(x.max(axis=0) == x.min(axis=0))
        if flat.size:
            raise ValueError(f"returns has a constant column (position {int(flat[0])}); it cannot be standardised")
        z = z / z.std(axis=0, ddof=1)
    elif np.all(x.max(axis=0) == x.min(axis=0)):
        raise ValueError("returns has no variance: every column is constant")
    _, sing, vt = np.linalg.svd(z, full_matrices=False)
    variances = sing**2 / (n_obs - 1)
    vecs = vt[:k].T
    pivot = vecs[np.argmax(np.abs(vecs), axis=0), np.arange(k)]
    vecs = vecs * np.where(pivot < 0.0, -1.0, 1.0)
    eig = variances[:k]
    return eig, eig / variances.sum(), vecs, z


def pca(returns: Any, n_components: int | None = None, *, standardize: bool = True) -> PCAResult:
    """Principal component analysis of returns, via the SVD of the centred (or standardised) data.

    Parameters
    ----------
    returns : (T, N) ndarray or DataFrame, no NaN
    n_components : int, optional, number of components kept (default min(T, N)).
    standardize : bool
        ``True`` (default): columns are centred and divided by their sample standard deviation
        (ddof = 1), so this is the PCA of the Pearson correlation matrix and the eigenvalues sum
        to N. ``False``: centred only, the PCA of the sample covariance (ddof = 1).

    Returns
    -------
    PCAResult(eigenvalues, explained_variance_ratio, loadings). Eigenvalues are the variances of
    the components (ddof = 1), descending; the ratio divides by the total variance of all
    components, also when fewer are kept; loadings are unit eigenvectors, one column per
    component (assets x components).

    Notes
    -----
    Sign rule: each eigenvector is flipped so that its largest-magnitude loading is positive
    (the first on a tie). With that, it equals scikit-learn's ``PCA`` fitted on the same
    transformed data (``explained_variance_``, ``explained_variance_ratio_``, ``components_.T``)
    up to the sign of each component. Source: I.T. Jolliffe, *Principal Component Analysis*,
    2nd ed. (2002), ch. 1-2.
    """
    eig, ratio, vecs, _ = _pca(returns, n_components, standardize)
    if isinstance(returns, pd.DataFrame):
        pcs = [f"PC{i + 1}" for i in range(len(eig))]
        return PCAResult(
            pd.Series(eig, index=pcs, name="eigenvalue"),
            pd.Series(ratio, index=pcs, name="explained_variance_ratio"),
            pd.DataFrame(vecs, index=returns.columns, columns=pcs),
        )
    return PCAResult(eig, ratio, vecs)


def pca_scores(returns: Any, n_components: int | None = None, *, standardize: bool = True) -> Any:
    """The returns projected on their principal components: (centred/standardised returns) @ loadings.

    Same conventions as :func:`pca` (ddof = 1 standardisation, sign rule); equals scikit-learn's
    ``PCA.transform`` on the same transformed data up to each component's sign. (T x k) ndarray,
    or a DataFrame with the returns' index and columns ``PC1..PCk``.
    """
    _, _, vecs, z = _pca(returns, n_components, standardize)
    scores = z @ vecs
    if isinstance(returns, pd.DataFrame):
        return pd.DataFrame(scores, index=returns.index, columns=[f"PC{i + 1}" for i in range(vecs.shape[1])])
    return scores


def tail_dependence(x: Any, y: Any, q: float = 0.05, tail: Literal["lower", "upper"] = "lower") -> float:
    """Empirical tail-dependence coefficient of two return series at level ``q``.

    With pseudo-observations U = rank(x) / (n + 1) and V = rank(y) / (n + 1) (average ranks for
    ties), the lower-tail estimate is the conditional frequency

        lambda_L(q) = #{U <= q and V <= q} / #{U <= q}

    i.e. the empirical copula C_n(q, q) divided by the empirical mass of the conditioning tail;
    the upper tail is the lower tail of (-x, -y). The result is in [0, 1]; it is q for independent
    series (as q -> 0 it tends to the tail-dependence coefficient, 0 for a Gaussian copula
    with rho < 1) and 1 for comonotone ones. Rank-based, so invariant to increasing transforms.

    Sources: C. Genest, K. Ghoudi and L.-P. Rivest, *Biometrika* 82 (1995) for the
    pseudo-observations; R. Schmidt and U. Stadtmueller, "Non-parametric estimation of tail
    dependence", *Scand. J. Statistics* 33 (2006) for the estimator.
    """
    xa = as_1d(x, "x", allow_nan=False, min_length=2)
    ya = as_1d(y, "y", allow_nan=False, min_length=2)
    n = same_length(x=xa, y=ya)
    qf = float(q)
    if not 0.0 < qf < 1.0:
        raise ValueError(f"q must be in (0, 1), got {q!r}")
    if tail not in ("lower", "upper"):
        raise ValueError(f"tail must be 'lower' or 'upper', got {tail!r}")
    if tail == "upper":
        xa, ya = -xa, -ya
    u = rankdata(xa) / (n + 1)
    v = rankdata(ya) / (n + 1)
    in_x = u <= qf
    count = int(in_x.sum())
    if count == 0:
        raise ValueError(
            f"q={qf} selects no observation of x in the {tail} tail (n={n}, pseudo-observations start at "
            f"1/(n+1) = {1 / (n + 1):.3g}; tied values share their average rank)"
        )
    return float(np.count_nonzero(in_x & (v <= qf)) / count)


def worst_periods_mask(market_returns: Any, quantile: float = 0.05) -> Any:
    """Boolean mask of the rows whose market return is at or below its ``quantile``.

    The threshold is ``numpy.quantile`` with linear interpolation (Hyndman-Fan type 7), and rows
    equal to it are included. Returns a boolean ndarray, or a Series on the same index for
    Series input. NaN is rejected.
    """
    m = as_1d(market_returns, "market_returns", allow_nan=False)
    qf = float(quantile)
    if not 0.0 < qf < 1.0:
        raise ValueError(f"quantile must be in (0, 1), got {quantile!r}")
    mask = m <= np.quantile(m, qf, method="linear")
    if isinstance(market_returns, pd.Series):
        return pd.Series(mask, index=market_returns.index, name="worst")
    return mask


def stress_correlation(returns: Any, mask: Any) -> Any:
    """Pearson correlation (as :func:`pearson`) over the rows where ``mask`` is True.

    ``mask`` is a boolean array or Series with one entry per row of ``returns`` (for example
    :func:`worst_periods_mask` of a market index); a Series mask must have the same index as a
    DataFrame ``returns``. At least two rows must be selected. This is the conditional
    correlation of stress testing; note that conditioning on a tail lowers measured correlation
    even when the true one is constant (K. Forbes and R. Rigobon, *J. Finance* 57, 2002).
    """
    x = as_2d(returns, "returns", allow_nan=False)
    if isinstance(mask, pd.Series) and isinstance(returns, pd.DataFrame) and not mask.index.equals(returns.index):
        raise ValueError("mask and returns must have the same index")
    sel = np.asarray(mask)
    if sel.dtype != np.bool_:
        raise ValueError(f"mask must be boolean, got dtype {sel.dtype}")
    if sel.shape != (x.shape[0],):
        raise ValueError(f"mask must have one entry per row of returns ({x.shape[0]}), got shape {sel.shape}")
    chosen = int(sel.sum())
    if chosen < 2:
        raise ValueError(f"mask selects {chosen} rows; at least 2 are needed")
    return _square(returns, _corr_no_nan(np.ascontiguousarray(x[sel])))


def rolling_correlation(returns: Any, window: int, other: Any = None) -> Any:
    """Rolling Pearson correlation over the last ``window`` rows (the current row included).

    Parameters
    ----------
    returns : (T, N) ndarray or DataFrame, or a 1-d series when ``other`` is given; no NaN.
    window : int, 2 <= window <= T.
    other : 1-d series, optional. With it the result is the rolling correlation of the pair.

    Returns
    -------
    Without ``other``: a (T, N, N) ndarray, row t being the correlation matrix of rows
    t-window+1..t (NaN for t < window - 1). With ``other``: a length-T ndarray, or a Series on
    the index of ``returns`` when it is a Series. A column constant over a window gives NaN there.

    Notes
    -----
    Same definition and NaN pattern as pandas ``rolling(window).corr()``. One pass with a
    sliding update of centred co-moments, recomputed exactly every ``window`` rows (see
    ``quant._kernels.correlation.rolling_corr_nb``): within ~1e-13 of an exact two-pass
    computation per window, and within ~1e-10 of pandas, whose raw-moment formula is the less
    accurate of the two on short windows.
    """
    if other is not None:
        xa = as_1d(returns, "returns", allow_nan=False, min_length=2)
        ya = as_1d(other, "other", allow_nan=False, min_length=2)
        n = same_length(returns=xa, other=ya)
        w = check_period(window, n, "window", minimum=2)
        pair = rolling_corr_nb(np.ascontiguousarray(np.column_stack((xa, ya))), w, np.empty((n, 2, 2)))[:, 1, 0].copy()
        if isinstance(returns, pd.Series):
            return pd.Series(pair, index=returns.index, name="correlation")
        return pair
    x = as_2d(returns, "returns", allow_nan=False)
    w = check_period(window, x.shape[0], "window", minimum=2)
    return rolling_corr_nb(x, w, np.empty((x.shape[0], x.shape[1], x.shape[1])))
