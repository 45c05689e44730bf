"""Market risk: VaR and CVaR (expected shortfall), Euler risk allocation and stress tests.

Conventions shared by every function here:

* **Sign.** VaR and CVaR are positive loss numbers in return units: ``VaR = -q``, ``q`` being the
  ``1 - level`` quantile of returns; ``CVaR = -E[R | R <= q]``. A 99% one-day VaR of 0.03 means
  a 1-in-100-days loss of 3% or more.
* **Returns** are simple (arithmetic) per-period returns, greater than -1. 2-d input is
  observations x assets; a DataFrame gives one figure per column (a Series), a 1-d input one float.
* **Horizon.** Parametric, Cornish-Fisher and Monte Carlo figures scale the mean by ``h`` and the
  volatility by ``√h`` (i.i.d. returns). Historical figures use overlapping ``h``-period compounded
  returns by default (``scaling="overlapping"``): historical simulation exists to avoid the i.i.d.
  normal assumption behind ``√h``, and overlapping windows keep ``n - h + 1`` scenarios (the Basel
  FRTB expected-shortfall rules also use overlapping 10-day returns). ``scaling="sqrt"`` multiplies the one-period
  figures by ``√h`` instead.
* **Estimators.** Means are sample means; volatilities use ``ddof=1``; covariance ``ddof=1``.

Backtests are in :mod:`quant.risk_backtest`, limits in :mod:`quant.limits` and stress tests in
:mod:`quant.risk_stress`; all are re-exported here.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd
from scipy import stats

from quant._kernels.risk import (
    METHOD_CODES,
    compounded_returns_nb,
    portfolio_tail_stats_nb,
    quantile_position_nb,
    tail_stats_nb,
)
from quant._validation import FloatArray, as_1d, as_2d, check_covariance, check_period
from quant.limits import Limit, drawdown_limit, evaluate_limits, exposure_limits, kelly_limit
from quant.risk_backtest import LRTest, VarBacktest, christoffersen, kupiec_pof, traffic_light, var_backtest
from quant.risk_stress import DEFAULT_WINDOWS, factor_scenarios, historical_scenarios, stress_test

__all__ = [
    "DEFAULT_WINDOWS",
    "LRTest",
    "Limit",
    "VarBacktest",
    "christoffersen",
    "component_cvar_historical",
    "component_var",
    "component_var_historical",
    "cvar_cornish_fisher",
    "cvar_historical",
    "cvar_monte_carlo",
    "cvar_parametric",
    "drawdown_limit",
    "evaluate_limits",
    "exposure_limits",
    "factor_scenarios",
    "historical_scenarios",
    "kelly_limit",
    "kupiec_pof",
    "marginal_var",
    "portfolio_cvar",
    "portfolio_var",
    "stress_test",
    "traffic_light",
    "var_backtest",
    "var_cornish_fisher",
    "var_historical",
    "var_monte_carlo",
    "var_parametric",
]

RiskValue = float | pd.Series | FloatArray
Shaper = Callable[[FloatArray, str], RiskValue]

# ---------------------------------------------------------------------------------------------
# input handling


def _alpha(level: float) -> float:
    if isinstance(level, bool) or not isinstance(level, (int, float, np.floating)) or not 0.0 < level < 1.0:
        raise ValueError(f"level must be a number strictly between 0 and 1, got {level!r}")
    return 1.0 - float(level)


def _code(method: str) -> int:
    if method not in METHOD_CODES:
        raise ValueError(f"unknown quantile method {method!r}; choose one of {sorted(METHOD_CODES)}")
    return METHOD_CODES[method]


def _horizon(horizon: int) -> int:
    return check_period(horizon, 2**62, "horizon")


def _scalar(values: FloatArray, name: str) -> RiskValue:
    return float(values[0])


def _array(values: FloatArray, name: str) -> RiskValue:
    return values


def _indexed(index: pd.Index) -> Shaper:
    def shape(values: FloatArray, name: str) -> RiskValue:
        return pd.Series(values, index=index, name=name)

    return shape


def _series_rows(returns: Any) -> tuple[FloatArray, Shaper]:
    """Returns as rows (series x observations), and how to shape one figure per row."""
    if isinstance(returns, pd.DataFrame) or np.ndim(returns) == 2:
        arr = as_2d(returns, "returns", min_rows=1)
        shaper = _indexed(returns.columns) if isinstance(returns, pd.DataFrame) else _array
        return np.ascontiguousarray(arr.T), shaper
    return as_1d(returns, "returns", allow_nan=False)[None, :], _scalar


def _weights(weights: Any, n_assets: int) -> tuple[FloatArray, Shaper]:
    """Weights as rows (portfolios x assets), and how to shape one figure per portfolio."""
    shaper: Shaper
    if isinstance(weights, pd.DataFrame) or np.ndim(weights) == 2:
        w = as_2d(weights, "weights", min_rows=1)
        shaper = _indexed(weights.index) if isinstance(weights, pd.DataFrame) else _array
    else:
        w = as_1d(weights, "weights", allow_nan=False)[None, :]
        shaper = _scalar
    if w.shape[1] != n_assets:
        raise ValueError(f"weights cover {w.shape[1]} assets but the returns have {n_assets}")
    return np.ascontiguousarray(w), shaper


# ---------------------------------------------------------------------------------------------
# estimators on rows (series x observations); each returns (VaR, CVaR) per row


def _historical(rows: FloatArray, alpha: float, method: str, horizon: int, scaling: str) -> tuple[FloatArray, ...]:
    code, h = _code(method), _horizon(horizon)
    if scaling not in ("overlapping", "sqrt"):
        raise ValueError(f"scaling must be 'overlapping' or 'sqrt', got {scaling!r}")
    factor = 1.0
    if h > 1 and scaling == "overlapping":
        check_period(h, rows.shape[1], "horizon")
        if (rows <= -1.0).any():
            raise ValueError("returns must be greater than -1 to compound them over the horizon")
        rows = np.ascontiguousarray(compounded_returns_nb(np.ascontiguousarray(rows.T), h).T)
    elif h > 1:
        factor = math.sqrt(h)
    q, tail = tail_stats_nb(rows, alpha, code)
    return -q * factor, -tail * factor


def _moments(rows: FloatArray, ddof: int, use_mean: bool) -> tuple[FloatArray, FloatArray]:
    n = rows.shape[1]
    if n <= ddof:
        raise ValueError(f"returns need more than ddof={ddof} observations, got {n}")
    mu = rows.mean(axis=1)
    sigma = rows.std(axis=1, ddof=ddof)
    return (mu if use_mean else np.zeros_like(mu)), sigma


def _shape_moments(rows: FloatArray, bias: bool) -> tuple[FloatArray, FloatArray]:
    """Sample skewness and excess kurtosis: moment ratios g1, g2, or with ``bias=False`` the
    adjusted Fisher-Pearson G1, G2 (Joanes & Gill 1998)."""
    n = rows.shape[1]
    if n < (4 if not bias else 2):
        raise ValueError(f"returns need at least {4 if not bias else 2} observations for skewness/kurtosis, got {n}")
    if (rows.max(axis=1) == rows.min(axis=1)).any():
        raise ValueError("returns are constant: skewness and kurtosis are undefined")
    dev = rows - rows.mean(axis=1, keepdims=True)
    m2 = (dev**2).mean(axis=1)
    g1 = (dev**3).mean(axis=1) / m2**1.5
    g2 = (dev**4).mean(axis=1) / m2**2 - 3.0
    if bias:
        return g1, g2
    return g1 * math.sqrt(n * (n - 1)) / (n - 2), ((n + 1) * g2 + 6.0) * (n - 1) / ((n - 2) * (n - 3))


def _parametric(rows: FloatArray, alpha: float, horizon: int, ddof: int, use_mean: bool) -> tuple[FloatArray, ...]:
    h = _horizon(horizon)
    mu, sigma = _moments(rows, ddof, use_mean)
    z = stats.norm.ppf(alpha)
    scale = sigma * math.sqrt(h)
    return -(mu * h + z * scale), -(mu * h) + scale * stats.norm.pdf(z) / alpha


def _cornish_fisher(
    rows: FloatArray, alpha: float, horizon: int, ddof: int, bias: bool, use_mean: bool
) -> tuple[FloatArray, ...]:
    h = _horizon(horizon)
    mu, sigma = _moments(rows, ddof, use_mean)
    s, k = _shape_moments(rows, bias)
    # Cumulants of a sum of h i.i.d. returns: skewness shrinks as 1/√h, excess kurtosis as 1/h.
    s, k = s / math.sqrt(h), k / h
    z = stats.norm.ppf(alpha)
    z_cf = z + (z**2 - 1) * s / 6 + (z**3 - 3 * z) * k / 24 - (2 * z**3 - 5 * z) * s**2 / 36
    # Tail mean of the expansion: ∫ z^j φ(z) dz over (-∞, z_α], in closed form for j = 0..3.
    phi = stats.norm.pdf(z)
    m0, m1, m2, m3 = alpha, -phi, alpha - z * phi, -(z**2 + 2) * phi
    tail = (m1 + s / 6 * (m2 - m0) + k / 24 * (m3 - 3 * m1) - s**2 / 36 * (2 * m3 - 5 * m1)) / alpha
    scale = sigma * math.sqrt(h)
    return -(mu * h + scale * z_cf), -(mu * h + scale * tail)


# ---------------------------------------------------------------------------------------------
# single series (or one figure per column of a DataFrame)


def var_historical(
    returns: Any, level: float = 0.99, method: str = "linear", horizon: int = 1, scaling: str = "overlapping"
) -> RiskValue:
    """Historical-simulation VaR: minus the empirical ``1 - level`` quantile of returns.

    Parameters
    ----------
    returns : array-like or DataFrame
        Simple returns; NaN is an error. A DataFrame gives a Series (one VaR per column).
    level : float
        Confidence level in (0, 1), e.g. 0.99.
    method : str
        Quantile definition, any of numpy's (Hyndman & Fan 1996): "linear" (type 7, numpy's and
        pandas' default), "lower", "higher", "nearest", "midpoint", "inverted_cdf",
        "averaged_inverted_cdf", "closest_observation", "interpolated_inverted_cdf", "hazen",
        "weibull", "median_unbiased", "normal_unbiased". It moves the 99% figure in the third digit.
    horizon : int
        Holding period in observations.
    scaling : {"overlapping", "sqrt"}
        Overlapping compounded ``horizon``-period returns, or the one-period VaR times ``√horizon``.

    Returns
    -------
    float or pandas.Series
        VaR as a positive loss in return units (see the module's sign convention).

    References
    ----------
    Hyndman, R. J. & Fan, Y. (1996). Sample quantiles in statistical packages. The American
    Statistician 50(4), 361-365. Jorion, P. (2007). Value at Risk, 3rd ed.
    """
    rows, shape = _series_rows(returns)
    var, _ = _historical(rows, _alpha(level), method, horizon, scaling)
    return shape(var, "var")


def cvar_historical(
    returns: Any, level: float = 0.99, method: str = "linear", horizon: int = 1, scaling: str = "overlapping"
) -> RiskValue:
    """Historical CVaR (expected shortfall): minus the mean of the returns at or below the VaR quantile.

    The tail is the ``j + 1`` smallest returns, ``x[j]`` being the order statistic the ``method``
    quantile starts from (for "linear": ``j = floor((n - 1)(1 - level))``, the convention of
    empyrical's ``conditional_value_at_risk``). The tail size depends only on ``n``, ``level`` and
    ``method``, so CVaR >= VaR always and CVaR is sub-additive across portfolios of the same
    sample (the mean of a fixed number of smallest values is super-additive). Parameters as
    :func:`var_historical`.

    References
    ----------
    Acerbi, C. & Tasche, D. (2002). On the coherence of expected shortfall. Journal of Banking &
    Finance 26(7), 1487-1503.
    """
    rows, shape = _series_rows(returns)
    _, cvar = _historical(rows, _alpha(level), method, horizon, scaling)
    return shape(cvar, "cvar")


def var_parametric(
    returns: Any, level: float = 0.99, horizon: int = 1, *, ddof: int = 1, use_mean: bool = True
) -> RiskValue:
    """Normal (variance-covariance) VaR: ``-(μh + Φ⁻¹(1 - level) σ√h)``.

    ``μ`` is the sample mean (0 with ``use_mean=False``, the RiskMetrics habit for daily data),
    ``σ`` the sample standard deviation with ``ddof`` (default 1). Reference: scipy.stats.norm;
    Jorion (2007), Value at Risk, 3rd ed.
    """
    rows, shape = _series_rows(returns)
    var, _ = _parametric(rows, _alpha(level), horizon, ddof, use_mean)
    return shape(var, "var")


def cvar_parametric(
    returns: Any, level: float = 0.99, horizon: int = 1, *, ddof: int = 1, use_mean: bool = True
) -> RiskValue:
    """Normal expected shortfall: ``-μh + σ√h φ(z) / (1 - level)``, ``z = Φ⁻¹(1 - level)``.

    Same estimators as :func:`var_parametric`. Reference: McNeil, Frey & Embrechts (2015),
    Quantitative Risk Management, 2nd ed., ch. 2.
    """
    rows, shape = _series_rows(returns)
    _, cvar = _parametric(rows, _alpha(level), horizon, ddof, use_mean)
    return shape(cvar, "cvar")


def var_cornish_fisher(
    returns: Any, level: float = 0.99, horizon: int = 1, *, ddof: int = 1, bias: bool = True, use_mean: bool = True
) -> RiskValue:
    """Modified (Cornish-Fisher) VaR: ``-(μh + σ√h z_cf)`` with the fourth-order expansion
    ``z_cf = z + (z² - 1)S/6 + (z³ - 3z)K/24 - (2z³ - 5z)S²/36``, ``z = Φ⁻¹(1 - level)``.

    ``S`` and ``K`` are the sample skewness and excess kurtosis: with ``bias=True`` (default) the
    moment ratios ``g1 = m3 / m2^1.5``, ``g2 = m4 / m2² - 3`` (scipy.stats.skew/kurtosis with
    ``bias=True``), with ``bias=False`` the adjusted estimators G1, G2 (``bias=False`` there).
    ``σ`` uses ``ddof``. Over ``h`` periods ``S`` becomes ``S/√h`` and ``K`` becomes ``K/h``
    (cumulants of i.i.d. sums). The expansion is only monotone for moderate ``S`` and ``K``.

    References
    ----------
    Zangari, P. (1996). A VaR methodology for portfolios that include options. RiskMetrics
    Monitor, Q1, 4-12. Favre, L. & Galeano, J.-A. (2002). Mean-modified value-at-risk
    optimization with hedge funds. Journal of Alternative Investments 5(2), 21-25.
    """
    rows, shape = _series_rows(returns)
    var, _ = _cornish_fisher(rows, _alpha(level), horizon, ddof, bias, use_mean)
    return shape(var, "var")


def cvar_cornish_fisher(
    returns: Any, level: float = 0.99, horizon: int = 1, *, ddof: int = 1, bias: bool = True, use_mean: bool = True
) -> RiskValue:
    """Cornish-Fisher expected shortfall: the tail mean of the Cornish-Fisher quantile function,
    ``-(μh + σ√h · (1/α) ∫₀^α z_cf(Φ⁻¹(u)) du)``, ``α = 1 - level``.

    Integrated in closed form with ``∫_{-∞}^{z} tʲ φ(t) dt`` = ``Φ(z)``, ``-φ(z)``,
    ``Φ(z) - zφ(z)``, ``-(z² + 2)φ(z)`` for ``j = 0..3``. Estimators as :func:`var_cornish_fisher`.

    References
    ----------
    Maillard, D. (2012). A user's guide to the Cornish Fisher expansion. SSRN 1997178.
    """
    rows, shape = _series_rows(returns)
    _, cvar = _cornish_fisher(rows, _alpha(level), horizon, ddof, bias, use_mean)
    return shape(cvar, "cvar")


# ---------------------------------------------------------------------------------------------
# Monte Carlo


def _simulate(
    data: Any, weights: Any, n_paths: int, seed: Any, horizon: int
) -> tuple[FloatArray, FloatArray | None, Shaper]:
    """Simulated ``horizon``-period asset returns (assets x paths), weights (portfolios x assets)."""
    h = _horizon(horizon)
    n_paths = check_period(n_paths, 2**62, "n_paths", minimum=2)
    shape: Shaper
    if isinstance(data, tuple):
        if len(data) != 2:
            raise ValueError("Monte Carlo input must be returns or a (mu, cov) pair")
        mu = as_1d(data[0], "mu", allow_nan=False)
        cov = check_covariance(np.atleast_2d(np.asarray(data[1], dtype=np.float64)))
        if cov.shape[0] != mu.size:
            raise ValueError(f"mu has {mu.size} assets but cov is {cov.shape[0]}x{cov.shape[1]}")
        shape = _indexed(data[1].columns) if isinstance(data[1], pd.DataFrame) else _array
        if mu.size == 1:
            shape = _scalar
    else:
        rows, shape = _series_rows(data)
        if rows.shape[1] < 2:
            raise ValueError("returns need at least 2 observations to estimate a covariance")
        mu, cov = rows.mean(axis=1), np.atleast_2d(np.cov(rows, ddof=1))
    try:
        factor = np.linalg.cholesky(cov)
    except np.linalg.LinAlgError:
        # A singular (PSD) covariance has no Cholesky factor; its symmetric square root serves.
        vals, vecs = np.linalg.eigh(cov)
        factor = vecs * np.sqrt(np.clip(vals, 0.0, None))
    rng = np.random.default_rng(seed)
    paths = mu * h + math.sqrt(h) * (rng.standard_normal((n_paths, mu.size)) @ factor.T)
    w = None
    if weights is not None:
        w, shape = _weights(weights, mu.size)
    return np.ascontiguousarray(paths.T), w, shape


def _mc(
    data: Any, weights: Any, level: float, n_paths: int, seed: Any, horizon: int, method: str
) -> tuple[FloatArray, FloatArray, Shaper]:
    alpha, code = _alpha(level), _code(method)
    paths_t, w, shape = _simulate(data, weights, n_paths, seed, horizon)
    q, tail = tail_stats_nb(paths_t, alpha, code) if w is None else portfolio_tail_stats_nb(paths_t, w, alpha, code)
    return -q, -tail, shape


def var_monte_carlo(
    data: Any,
    weights: Any = None,
    level: float = 0.99,
    n_paths: int = 10_000,
    seed: int | np.random.Generator | None = None,
    horizon: int = 1,
    method: str = "linear",
) -> RiskValue:
    """Monte Carlo VaR from multivariate normal returns.

    ``data`` is either a returns array/DataFrame (``μ`` = sample mean, ``Σ`` = sample covariance,
    ``ddof=1``) or a ``(mu, cov)`` pair. Paths are ``μh + √h · L z`` with ``L`` the Cholesky factor
    of ``Σ`` (symmetric square root when ``Σ`` is singular) and ``z`` standard normal draws from
    ``numpy.random.default_rng(seed)``: same seed, same figure. ``weights`` (one vector, or a
    portfolios x assets matrix) turn paths into portfolio returns ``w·r``, all portfolios sharing
    the same paths (common random numbers); without weights each asset gets its own VaR. The VaR
    is minus the ``method`` quantile (see :func:`var_historical`) of the simulated returns.
    Converges to :func:`var_parametric` as ``n_paths`` grows (Glasserman 2003, ch. 9).
    """
    var, _, shape = _mc(data, weights, level, n_paths, seed, horizon, method)
    return shape(var, "var")


def cvar_monte_carlo(
    data: Any,
    weights: Any = None,
    level: float = 0.99,
    n_paths: int = 10_000,
    seed: int | np.random.Generator | None = None,
    horizon: int = 1,
    method: str = "linear",
) -> RiskValue:
    """Monte Carlo expected shortfall: the historical CVaR rule (:func:`cvar_historical`) applied
    to the paths of :func:`var_monte_carlo`, same arguments and seed semantics."""
    _, cvar, shape = _mc(data, weights, level, n_paths, seed, horizon, method)
    return shape(cvar, "cvar")


# ---------------------------------------------------------------------------------------------
# portfolios


# Portfolios per block: a block's returns (128 x 8k days, ~8 MB) stay in cache between the
# product and the tail selection, and 1,000 portfolios never hold a 66 MB matrix at once.
_BLOCK = 128


def _portfolio_rows(returns_matrix: Any, weights: Any) -> tuple[FloatArray, FloatArray, Shaper]:
    R = as_2d(returns_matrix, "returns_matrix", min_rows=1)
    w, shape = _weights(weights, R.shape[1])
    return np.ascontiguousarray(R.T), w, shape


def _portfolio(
    returns_matrix: Any,
    weights: Any,
    level: float,
    method: str,
    quantile: str,
    horizon: int,
    scaling: str,
    n_paths: int,
    seed: Any,
) -> tuple[FloatArray, FloatArray, Shaper]:
    alpha = _alpha(level)
    if method == "monte_carlo":
        as_2d(returns_matrix, "returns_matrix", min_rows=2)
        return _mc(returns_matrix, weights, level, n_paths, seed, horizon, quantile)
    estimators: dict[str, Callable[[FloatArray], tuple[FloatArray, ...]]] = {
        "historical": lambda rows: _historical(rows, alpha, quantile, horizon, scaling),
        "parametric": lambda rows: _parametric(rows, alpha, horizon, 1, True),
        "cornish_fisher": lambda rows: _cornish_fisher(rows, alpha, horizon, 1, True, True),
    }
    if method not in estimators:
        raise ValueError(f"method must be historical, parametric, cornish_fisher or monte_carlo, got {method!r}")
    RT, w, shape = _portfolio_rows(returns_matrix, weights)
    if method == "historical" and (_horizon(horizon) == 1 or scaling == "sqrt"):
        # The common case runs fused: portfolio returns are built and reduced one at a time.
        var, cvar = _historical(RT[:1], alpha, quantile, horizon, scaling)  # validates the arguments
        q, tail = portfolio_tail_stats_nb(RT, w, alpha, _code(quantile))
        factor = math.sqrt(horizon)
        return -q * factor, -tail * factor, shape
    var, cvar = np.empty(w.shape[0]), np.empty(w.shape[0])
    for start in range(0, w.shape[0], _BLOCK):
        block = slice(start, start + _BLOCK)
        var[block], cvar[block] = estimators[method](w[block] @ RT)
    return var, cvar, shape


def portfolio_var(
    returns_matrix: Any,
    weights: Any,
    level: float = 0.99,
    method: str = "historical",
    *,
    quantile: str = "linear",
    horizon: int = 1,
    scaling: str = "overlapping",
    n_paths: int = 10_000,
    seed: int | np.random.Generator | None = None,
) -> RiskValue:
    """VaR of one or many portfolios of the assets in ``returns_matrix`` (observations x assets).

    ``weights`` is one vector (a float comes back) or a portfolios x assets matrix (a Series
    indexed like a weights DataFrame, or an array). Portfolio returns are ``R @ w`` (weights held
    constant, i.e. rebalanced every period). ``method`` picks the estimator, with its conventions:
    "historical" (:func:`var_historical`, ``quantile`` interpolation, ``horizon``/``scaling``),
    "parametric" (:func:`var_parametric`, sample mean, ``ddof=1``), "cornish_fisher"
    (:func:`var_cornish_fisher`, biased g1/g2) or "monte_carlo" (:func:`var_monte_carlo` from the
    sample mean and covariance, ``n_paths``, ``seed``; all portfolios share the same paths).
    """
    var, _, shape = _portfolio(returns_matrix, weights, level, method, quantile, horizon, scaling, n_paths, seed)
    return shape(var, "var")


def portfolio_cvar(
    returns_matrix: Any,
    weights: Any,
    level: float = 0.99,
    method: str = "historical",
    *,
    quantile: str = "linear",
    horizon: int = 1,
    scaling: str = "overlapping",
    n_paths: int = 10_000,
    seed: int | np.random.Generator | None = None,
) -> RiskValue:
    """CVaR (expected shortfall) of one or many portfolios; arguments as :func:`portfolio_var`."""
    _, cvar, shape = _portfolio(returns_matrix, weights, level, method, quantile, horizon, scaling, n_paths, seed)
    return shape(cvar, "cvar")


# ---------------------------------------------------------------------------------------------
# Euler allocation


def _asset_labels(weights: Any, frame: Any) -> Shaper:
    """Per-asset labels from a weights Series, else from a cov or returns DataFrame."""
    if isinstance(weights, pd.Series):
        return _indexed(weights.index)
    if isinstance(frame, pd.DataFrame):
        return _indexed(frame.columns)
    return _array


def _marginal(weights: Any, cov: Any, level: float, mu: Any, horizon: int) -> tuple[FloatArray, FloatArray, Shaper]:
    z = -stats.norm.ppf(_alpha(level))
    h = _horizon(horizon)
    sigma = check_covariance(cov)
    w = as_1d(weights, "weights", allow_nan=False)
    if w.size != sigma.shape[0]:
        raise ValueError(f"weights cover {w.size} assets but cov is {sigma.shape[0]}x{sigma.shape[1]}")
    m = np.zeros(w.size) if mu is None else as_1d(mu, "mu", allow_nan=False)
    if m.size != w.size:
        raise ValueError(f"mu has {m.size} assets but weights have {w.size}")
    sw = sigma @ w
    vol = math.sqrt(max(float(w @ sw), 0.0))
    if vol == 0.0:
        raise ValueError("the portfolio has zero variance: marginal VaR is undefined")
    return w, -m * h + z * math.sqrt(h) * sw / vol, _asset_labels(weights, cov)


def marginal_var(weights: Any, cov: Any, level: float = 0.99, *, mu: Any = None, horizon: int = 1) -> RiskValue:
    """Marginal parametric VaR ``∂VaR/∂w_i = -μ_i h + z √h (Σw)_i / √(w'Σw)``, ``z = Φ⁻¹(level)``.

    The portfolio VaR is the normal VaR ``-w'μ h + z √h √(w'Σw)``; ``mu`` defaults to zero (the
    covariance-only convention of Jorion 2007). ``weights`` are portfolio weights (or
    notional values, which give VaR in currency). Labels come from a weights Series or a cov
    DataFrame.
    """
    _, marginal, shape = _marginal(weights, cov, level, mu, horizon)
    return shape(marginal, "marginal_var")


def component_var(weights: Any, cov: Any, level: float = 0.99, *, mu: Any = None, horizon: int = 1) -> RiskValue:
    """Component parametric VaR ``w_i ∂VaR/∂w_i`` (Euler allocation).

    The normal VaR is homogeneous of degree one in the weights, so by Euler's theorem the
    components sum to the portfolio VaR exactly. Conventions as :func:`marginal_var`.

    References
    ----------
    Tasche, D. (1999). Risk contributions and performance measurement. Working paper, TU München.
    Jorion, P. (2007). Value at Risk, 3rd ed.
    """
    w, marginal, shape = _marginal(weights, cov, level, mu, horizon)
    return shape(w * marginal, "component_var")


def _tail_scenarios(
    returns_matrix: Any, weights: Any, level: float, method: str
) -> tuple[FloatArray, FloatArray, npt.NDArray[np.intp], int, float, Shaper]:
    RT, w, _ = _portfolio_rows(returns_matrix, weights)
    if w.shape[0] != 1:
        raise ValueError("component VaR takes one weight vector")
    R, rows = RT.T, w @ RT
    j, g = quantile_position_nb(rows.shape[1], _alpha(level), _code(method))
    order = np.argsort(rows[0], kind="stable")
    return R, w[0], order, int(j), float(g), _asset_labels(weights, returns_matrix)


def component_var_historical(
    returns_matrix: Any, weights: Any, level: float = 0.99, method: str = "linear"
) -> RiskValue:
    """Historical component VaR: each asset's loss in the scenario(s) that set the portfolio VaR.

    The ``method`` quantile of the portfolio returns is ``(1 - g) p[t_j] + g p[t_{j+1}]`` for the
    days ``t_j``, ``t_{j+1}`` holding the two order statistics; asset ``i`` contributes
    ``-w_i ((1 - g) r_i[t_j] + g r_i[t_{j+1}])``, and the components sum to
    :func:`var_historical` of the portfolio exactly. One scenario decides it, so the split is
    noisy; :func:`component_cvar_historical` averages over the tail and is steadier.

    References
    ----------
    Hallerbach, W. G. (2003). Decomposing portfolio value-at-risk: a general analysis. Journal of
    Risk 5(2), 1-18.
    """
    R, w, order, j, g, shape = _tail_scenarios(returns_matrix, weights, level, method)
    scenario = R[order[j]] if g == 0.0 else (1.0 - g) * R[order[j]] + g * R[order[j + 1]]
    return shape(-w * scenario, "component_var")


def component_cvar_historical(
    returns_matrix: Any, weights: Any, level: float = 0.99, method: str = "linear"
) -> RiskValue:
    """Historical component CVaR: ``-w_i`` times asset ``i``'s mean return over the portfolio's
    tail days (the ``j + 1`` worst, as in :func:`cvar_historical`); sums to the portfolio CVaR.

    References
    ----------
    Tasche, D. (2002). Expected shortfall and beyond. Journal of Banking & Finance 26(7).
    """
    R, w, order, j, _, shape = _tail_scenarios(returns_matrix, weights, level, method)
    return shape(-w * R[order[: j + 1]].mean(axis=0), "component_cvar")
