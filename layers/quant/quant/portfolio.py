"""Portfolio construction: minimum variance, risk parity, HRP, diversification ratio and Kelly sizing.

Every function takes a covariance matrix (or returns) as a numpy array or a pandas DataFrame. Weights
come back as a ``pd.Series`` labelled by the DataFrame's columns, or as a numpy array for array input.
Covariances must be square, symmetric, finite and positive semi-definite (``ValueError`` otherwise);
all quantities share one periodicity (daily covariance gives daily variances; nothing is annualised).
"""

from __future__ import annotations

from collections.abc import Hashable
from typing import Any

import numpy as np
import pandas as pd
import scipy.cluster.hierarchy as sch
import scipy.linalg as sla
from scipy.spatial.distance import squareform

from quant._kernels.portfolio import (
    hrp_bisection_nb,
    min_variance_active_set_nb,
    pairwise_cov_corr_nb,
    risk_budget_newton_nb,
)
from quant._validation import FloatArray, as_1d, as_2d, check_covariance

__all__ = [
    "diversification_ratio",
    "hrp",
    "kelly",
    "kelly_fraction",
    "min_variance",
    "risk_contributions",
    "risk_parity",
]

LINKAGE_METHODS = ("single", "complete", "average", "weighted", "centroid", "median", "ward")


# ---- shared helpers ----------------------------------------------------------------------------


def _labels(*objs: Any) -> list[Hashable] | None:
    """Asset labels from the first pandas argument that has them (DataFrame columns, Series index)."""
    for obj in objs:
        if isinstance(obj, pd.DataFrame):
            return list(obj.columns)
        if isinstance(obj, pd.Series):
            return list(obj.index)
    return None


def _wrap(values: FloatArray, labels: list[Hashable] | None, name: str) -> Any:
    return pd.Series(values, index=labels, name=name) if labels is not None else values


def _covariance(cov: Any) -> tuple[FloatArray, list[Hashable] | None]:
    arr = check_covariance(cov, "cov")
    labels = _labels(cov)
    if isinstance(cov, pd.DataFrame) and list(cov.index) != list(cov.columns):
        raise ValueError("cov must have the same labels, in the same order, on its index and its columns")
    return arr, labels


def _vector(x: Any, name: str, n: int, labels: list[Hashable] | None) -> FloatArray:
    """A length-n vector, reordered to ``labels`` when both it and the covariance are labelled."""
    if isinstance(x, pd.Series) and labels is not None:
        if set(x.index) != set(labels) or len(x.index) != len(labels):
            raise ValueError(f"{name} labels {list(x.index)} do not match the covariance labels {labels}")
        x = x.reindex(labels)
    arr = as_1d(x, name, allow_nan=False)
    if arr.shape[0] != n:
        raise ValueError(f"{name} has {arr.shape[0]} values but the covariance is {n} x {n}")
    return arr


def _require_positive_variances(cov: FloatArray) -> None:
    zero = np.flatnonzero(np.diag(cov) <= 0.0)
    if zero.size:
        raise ValueError(f"cov has a zero variance for asset {int(zero[0])}; its weight is undefined")


# ---- minimum variance --------------------------------------------------------------------------


def _parse_bounds(bounds: Any, n: int, long_only: bool) -> tuple[FloatArray, FloatArray] | None:
    if bounds is None:
        return (np.zeros(n), np.ones(n)) if long_only else None
    b = np.asarray(bounds, dtype=np.float64)
    if b.shape == (2,):
        lo, hi = np.full(n, b[0]), np.full(n, b[1])
    elif b.shape == (n, 2):
        lo, hi = b[:, 0].copy(), b[:, 1].copy()
    else:
        raise ValueError(f"bounds must be (low, high) or one (low, high) pair per asset, got shape {b.shape}")
    lo = np.where(np.isnan(lo), -np.inf, lo)
    hi = np.where(np.isnan(hi), np.inf, hi)
    if np.any(lo > hi):
        raise ValueError("bounds have a lower bound above its upper bound")
    if long_only and np.any(lo < 0.0):
        raise ValueError("long_only=True but bounds allow negative weights")
    if lo.sum() > 1.0 + 1e-12 or hi.sum() < 1.0 - 1e-12:
        raise ValueError(f"bounds cannot hold fully invested weights: sum of lows {lo.sum()}, of highs {hi.sum()}")
    return lo, hi


def _feasible_start(lo: FloatArray, hi: FloatArray) -> FloatArray:
    """w_i = clip(t, lo_i, hi_i) with Σ w = 1: a feasible point found by bisection on the level t."""
    finite = np.concatenate([lo[np.isfinite(lo)], hi[np.isfinite(hi)], [1.0]])
    big = lo.shape[0] * (float(np.abs(finite).max()) + 1.0) + 1.0
    a, b = -big, big
    for _ in range(200):
        t = 0.5 * (a + b)
        if np.clip(t, lo, hi).sum() < 1.0:
            a = t
        else:
            b = t
    w: FloatArray = np.clip(b, lo, hi)
    inside = np.flatnonzero((w > lo) & (w < hi))
    if inside.size:
        w[inside[0]] += 1.0 - w.sum()
    return w


def min_variance(cov: Any, long_only: bool = True, bounds: Any = None) -> Any:
    """Fully invested minimum-variance weights: argmin wᵀΣw subject to Σ w = 1 (and bounds).

    Parameters
    ----------
    cov : (n, n) array or DataFrame
        Covariance of asset returns (any periodicity; the weights do not depend on it).
    long_only : bool
        With no ``bounds``: True solves with 0 ≤ w ≤ 1, False uses the closed form
        w = Σ⁻¹1 / (1ᵀΣ⁻¹1) (Merton 1972), which needs a non-singular Σ.
    bounds : (low, high) or sequence of n (low, high), optional
        Box constraints on each weight (NaN or ±inf = unbounded). With ``long_only=True`` a
        negative lower bound is rejected.

    Returns
    -------
    Series or ndarray
        Weights summing to 1, labelled like ``cov``.

    Notes
    -----
    The constrained problem is a convex QP solved exactly (to rounding) by a primal active-set method
    (Nocedal & Wright, *Numerical Optimization*, 2nd ed., §16.5): each iteration solves the KKT system
    of the free weights, steps to the nearest blocking bound, and releases a bound whose multiplier is
    negative. A singular (PSD) Σ is accepted: the KKT systems are solved by least squares. The same
    optimum as PyPortfolioOpt ``EfficientFrontier(None, cov, (0, 1)).min_volatility()`` (which calls
    cvxpy) up to that solver's tolerance; with tight boxes cvxpy's default tolerance leaves it ~1e-2 off
    in the weights, where this method and scipy's SLSQP agree to 1e-7 at a lower variance.
    """
    arr, labels = _covariance(cov)
    n = arr.shape[0]
    box = _parse_bounds(bounds, n, long_only)
    if box is None:
        try:
            factor = sla.cho_factor(arr, lower=True)
        except np.linalg.LinAlgError as exc:
            raise ValueError("cov is singular: the unconstrained minimum-variance portfolio is undefined") from exc
        x = sla.cho_solve(factor, np.ones(n))
        w = x / x.sum()
    else:
        w, converged = min_variance_active_set_nb(arr, box[0], box[1], _feasible_start(*box), 50 * n + 100)
        if not converged:
            raise RuntimeError("min_variance: the active-set method did not converge (degenerate bounds?)")
    return _wrap(w, labels, "weight")


# ---- risk budgeting ----------------------------------------------------------------------------


def risk_contributions(weights: Any, cov: Any, relative: bool = False) -> Any:
    """Contributions of each asset to portfolio variance: RC_i = w_i (Σw)_i.

    The contributions add up to the portfolio variance wᵀΣw (Euler decomposition). With
    ``relative=True`` they are divided by wᵀΣw and add up to 1. Units: those of ``cov``.
    """
    arr, labels = _covariance(cov)
    w = _vector(weights, "weights", arr.shape[0], labels)
    rc = w * (arr @ w)
    if relative:
        total = float(rc.sum())
        if total <= 0.0:
            raise ValueError("the portfolio variance is zero: relative risk contributions are undefined")
        rc = rc / total
    return _wrap(rc, labels or _labels(weights), "risk_contribution")


def risk_parity(cov: Any, budgets: Any = None, *, tol: float = 1e-12, max_iter: int = 200) -> Any:
    """Long-only risk-budgeting weights: w_i (Σw)_i = b_i · wᵀΣw with Σ w = 1 (equal risk when b = 1/n).

    Parameters
    ----------
    cov : (n, n) array or DataFrame
        Covariance of asset returns; every variance must be positive.
    budgets : (n,) array or Series, optional
        Positive risk budgets, normalised to sum to 1; default equal (ERC, Maillard, Roncalli &
        Teïletche 2010).
    tol : float
        Stop when the largest relative gap |RC_i / (b_i wᵀΣw) − 1| is below ``tol``.

    Returns
    -------
    Series or ndarray
        Positive weights summing to 1.

    Notes
    -----
    Spinu (2013), "An algorithm for computing risk parity weights": y* = argmin_y>0 ½ yᵀΣy − Σ b_i ln y_i
    is strictly convex and its first-order condition is y_i (Σy)_i = b_i, so w = y*/Σy*. Solved by
    damped Newton steps (step 1/(1+δ) while the Newton decrement δ is large, full steps after,
    as Spinu proposes), with a halving safeguard that keeps y positive. Σ is rescaled by its mean
    variance first; the weights do not depend on that scale.
    """
    arr, labels = _covariance(cov)
    n = arr.shape[0]
    _require_positive_variances(arr)
    if budgets is None:
        b = np.full(n, 1.0 / n)
    else:
        b = _vector(budgets, "budgets", n, labels)
        if np.any(b <= 0.0):
            raise ValueError("budgets must all be positive (a zero budget means leaving the asset out)")
        b = b / b.sum()
    w, converged = risk_budget_newton_nb(arr / float(np.diag(arr).mean()), b, tol, max_iter)
    if not converged:
        raise RuntimeError(f"risk_parity did not converge in {max_iter} Newton steps")
    return _wrap(w, labels or _labels(budgets), "weight")


def diversification_ratio(weights: Any, cov: Any) -> float:
    """Diversification ratio DR = wᵀσ / √(wᵀΣw) (Choueifaty & Coignard 2008, "Toward maximum diversification").

    σ is the vector of asset volatilities √diag(Σ). DR ≥ 1 for long-only weights, with equality when
    all held assets are perfectly correlated. Dimensionless, so the periodicity of ``cov`` cancels.
    """
    arr, labels = _covariance(cov)
    w = _vector(weights, "weights", arr.shape[0], labels)
    var = float(w @ arr @ w)
    if var <= 0.0:
        raise ValueError("the portfolio variance is zero: the diversification ratio is undefined")
    return float(w @ np.sqrt(np.diag(arr))) / float(np.sqrt(var))


# ---- hierarchical risk parity ------------------------------------------------------------------


def hrp(returns: Any, linkage: str = "single") -> Any:
    """Hierarchical Risk Parity weights (López de Prado 2016, "Building diversified portfolios that
    outperform out of sample", J. Portfolio Management 42(4)).

    Parameters
    ----------
    returns : (T, n) array or DataFrame
        Asset returns, rows = periods. NaN marks a missing observation (e.g. before a listing):
        covariance and correlation are estimated pairwise-complete, as pandas ``DataFrame.cov`` /
        ``DataFrame.corr`` do (each pair uses the rows where both are present; ddof = 1).
    linkage : str
        scipy ``linkage`` method: single (the paper's), complete, average, weighted, centroid,
        median or ward.

    Returns
    -------
    Series or ndarray
        Positive weights summing to 1, in the column order of ``returns``.

    Notes
    -----
    1. Distance d_ij = √((1 − ρ_ij) / 2), clipped to [0, 1], clustered by ``scipy.cluster.hierarchy``.
    2. Quasi-diagonalisation: the dendrogram's left-to-right leaf order (``leaves_list``).
    3. Recursive bisection: each cluster splits into its first ⌊m/2⌋ and remaining items in that order;
       the halves share the weight as α = 1 − V₁/(V₁ + V₂), where V is the variance of the
       inverse-variance portfolio of the half.

    These are PyPortfolioOpt's ``HRPOpt.optimize`` conventions; with returns built as that library's
    ``expected_returns.returns_from_prices`` does (``prices.pct_change(fill_method=None)
    .dropna(how="all")``) the weights match its published ``tests/resources/weights_hrp.csv``.
    """
    if linkage not in LINKAGE_METHODS:
        raise ValueError(f"linkage must be one of {LINKAGE_METHODS}, got {linkage!r}")
    x = as_2d(returns, "returns", allow_nan=True, min_rows=2, min_cols=2)
    labels = _labels(returns)
    cov, corr, nobs = pairwise_cov_corr_nb(x)
    if nobs.min() < 2:
        i, j = np.argwhere(nobs < 2)[0]
        raise ValueError(f"returns columns {i} and {j} share fewer than 2 observations")
    _require_positive_variances(cov)
    dist = np.sqrt(np.clip((1.0 - corr) / 2.0, 0.0, 1.0))
    np.fill_diagonal(dist, 0.0)
    dist = 0.5 * (dist + dist.T)
    tree = sch.linkage(squareform(dist, checks=False), method=linkage)
    order = sch.leaves_list(tree).astype(np.int64)
    w = hrp_bisection_nb(cov, order)
    return _wrap(w, labels, "weight")


# ---- Kelly sizing ------------------------------------------------------------------------------


def kelly(mu: Any, cov: Any, fraction: float = 1.0, risk_free: float = 0.0) -> Any:
    """Continuous-time multi-asset Kelly weights w = f · Σ⁻¹(μ − r).

    Parameters
    ----------
    mu : (n,) array or Series
        Expected (arithmetic) returns per period.
    cov : (n, n) array or DataFrame
        Covariance of returns over the same period as ``mu`` (daily μ with daily Σ, or both annual;
        the weights do not depend on the choice as long as they agree).
    fraction : float
        Fraction of full Kelly, > 0 (½ = "half Kelly").
    risk_free : float
        Risk-free rate per period, same units as ``mu``.

    Returns
    -------
    Series or ndarray
        Weights of the growth-optimal portfolio; they need not sum to 1 (the rest is cash, negative
        means borrowing) and are not clipped.

    Notes
    -----
    Maximises the expected log-growth g(w) = r + wᵀ(μ − r) − ½ wᵀΣw of a continuously rebalanced
    portfolio of log-normal assets (Merton 1969; Thorp 2006, "The Kelly criterion in blackjack,
    sports betting and the stock market", §7).
    """
    arr, labels = _covariance(cov)
    n = arr.shape[0]
    m = _vector(mu, "mu", n, labels)
    if not np.isfinite(fraction) or fraction <= 0.0:
        raise ValueError(f"fraction must be positive, got {fraction}")
    if not np.isfinite(risk_free):
        raise ValueError(f"risk_free must be finite, got {risk_free}")
    try:
        factor = sla.cho_factor(arr, lower=True)
    except np.linalg.LinAlgError as exc:
        raise ValueError("cov is singular: Kelly weights are undefined") from exc
    w = fraction * sla.cho_solve(factor, m - risk_free)
    return _wrap(w, labels or _labels(mu), "weight")


def kelly_fraction(p: float, b: float) -> float:
    """Kelly fraction of wealth to stake on one bet: f* = p − (1 − p) / b.

    ``p`` is the probability of winning and ``b`` the net odds (a win pays b per unit staked, a loss
    costs the stake). Kelly (1956), "A new interpretation of information rate", Bell System Technical
    Journal 35(4); the general-odds form as in Thorp (2006). A negative value means the bet has a
    negative edge (stake nothing, or take the other side); it is returned unclipped.
    """
    if not (np.isfinite(p) and 0.0 <= p <= 1.0):
        raise ValueError(f"p must be a probability in [0, 1], got {p}")
    if not (np.isfinite(b) and b > 0.0):
        raise ValueError(f"b (net odds) must be positive, got {b}")
    return float(p - (1.0 - p) / b)
