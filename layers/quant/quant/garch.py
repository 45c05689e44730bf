"""GARCH(1,1) with normal innovations, estimated by maximum likelihood the way ``arch`` does it.

Model (Bollerslev 1986): r_t = μ + ε_t, ε_t = σ_t z_t, z_t ~ N(0, 1),
σ²_t = ω + α ε²_{t−1} + β σ²_{t−1}, with ω > 0, α ≥ 0, β ≥ 0 and α + β < 1.

The conventions follow ``arch`` (K. Sheppard, ``arch.univariate``: ``arch_model(r, mean="Constant",
vol="GARCH", p=1, q=1, dist="normal")``) so that estimates agree with it:

* returns are multiplied by ``scale`` (default 100, i.e. percent returns, as arch recommends) before
  estimation, and every output except the unit-free ones is in those scaled units;
* σ²_0 is seeded by a *backcast*: ε²_{−1} = σ²_{−1} = Σ_k w_k ε²_k over the first min(75, T)
  residuals with w_k ∝ 0.94^k, computed once from the residuals at the starting mean (the sample
  mean) and held fixed while the parameters move;
* the log-likelihood is the full normal one, −½ Σ_t (log 2π + log σ²_t + ε²_t / σ²_t);
* bounds ω ∈ [1e−8 v, 10 v] with v the mean squared starting residual, α, β ∈ [0, 1] and the linear
  constraint α + β ≤ 1 − 1e−8; starting values are the best of a small (α, α + β) grid with ω set by
  variance targeting; SLSQP with the exact gradient starts from the best grid point, and again from
  the next best when that run does not converge (the higher likelihood is kept).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd
from scipy import optimize

from quant._kernels.garch import (
    garch11_backcast_nb,
    garch11_grid_loglik_nb,
    garch11_loglik_grad_nb,
    garch11_variance_nb,
)
from quant._validation import FloatArray, as_1d, as_2d, labels_of

__all__ = ["MIN_OBSERVATIONS", "GarchManyResult", "GarchResult", "fit_garch", "fit_garch_many"]

MIN_OBSERVATIONS = 30
"""Fewer returns than this cannot identify four parameters and a backcast; they raise ValueError."""

Mean = Literal["constant", "zero"]

_PERSISTENCE_MAX = 1.0 - 1e-8
_GRID_ALPHA = np.array([0.03, 0.07, 0.12, 0.2])
_GRID_PERSISTENCE = np.array([0.7, 0.9, 0.96, 0.99])
_N_STARTS = 2
_FTOL = 1e-11
_MAXITER = 200


@dataclass(frozen=True)
class GarchResult:
    """A fitted GARCH(1,1); levels are in the scaled units (percent returns for ``scale=100``)."""

    mu: float
    omega: float
    alpha: float
    beta: float
    loglik: float
    conditional_volatility: Any  # σ_t, a pd.Series with the input's index for pandas input
    standardized_residuals: Any  # (r_t − μ) / σ_t, same container as conditional_volatility
    persistence: float  # α + β
    unconditional_variance: float  # ω / (1 − α − β)
    converged: bool
    scale: float
    mean: str
    backcast: float
    nobs: int

    @property
    def params(self) -> pd.Series:
        """μ, ω, α, β as a Series (named like arch's ``mu, omega, alpha[1], beta[1]`` minus the lags)."""
        return pd.Series({"mu": self.mu, "omega": self.omega, "alpha": self.alpha, "beta": self.beta})


@dataclass(frozen=True)
class GarchManyResult:
    """GARCH(1,1) fitted to every column; per-asset scalars in ``params`` (one row per asset)."""

    params: pd.DataFrame  # columns mu, omega, alpha, beta, loglik, persistence, unconditional_variance, converged
    conditional_volatility: Any  # (T, N), a DataFrame with the input's index and columns for pandas input
    standardized_residuals: Any  # (T, N), same container
    scale: float
    mean: str


@dataclass(frozen=True)
class _Fit:
    x: FloatArray  # mu, omega, alpha, beta (scaled units)
    loglik: float
    converged: bool
    backcast: float


def _check_options(mean: str, scale: float) -> bool:
    if mean not in ("constant", "zero"):
        raise ValueError(f"mean must be 'constant' or 'zero', got {mean!r}")
    if not (np.isfinite(scale) and scale > 0.0):
        raise ValueError(f"scale must be a positive finite number, got {scale!r}")
    return mean == "constant"


def _check_variance(y: FloatArray, name: str) -> None:
    if not float(np.ptp(y)) > 0.0:
        raise ValueError(f"{name} is constant: a GARCH variance cannot be estimated from it")


def _starts(y: FloatArray, fit_mean: bool) -> tuple[float, float, float]:
    """Starting mean, backcast and mean squared residual of one scaled series."""
    mu0 = float(y.mean()) if fit_mean else 0.0
    resid = y - mu0
    return mu0, float(garch11_backcast_nb(resid)), float(np.mean(resid * resid))


def _grid_points(v: FloatArray) -> tuple[FloatArray, FloatArray, FloatArray]:
    alpha, pers = (g.ravel() for g in np.meshgrid(_GRID_ALPHA, _GRID_PERSISTENCE, indexing="ij"))
    omega = np.outer(v, 1.0 - pers)
    return omega, alpha, pers - alpha


def _optimise(y: FloatArray, fit_mean: bool, mu0: float, bc: float, v: float, starts: FloatArray) -> _Fit:
    """SLSQP on −ℓ/T with the exact gradient from ``starts[0]`` (ω, α, β); later rows are tried
    only while no run has converged, and the highest likelihood is kept."""
    n = y.shape[0]
    lo, hi = float(y.min()), float(y.max())

    def unpack(x: FloatArray) -> tuple[float, float, float, float]:
        if fit_mean:
            return float(x[0]), float(x[1]), float(x[2]), float(x[3])
        return 0.0, float(x[0]), float(x[1]), float(x[2])

    def fun(x: FloatArray) -> tuple[float, FloatArray]:
        mu, om, al, be = unpack(x)
        ll, g = garch11_loglik_grad_nb(y, mu, om, al, be, bc)
        if not np.isfinite(ll):
            return 1e10, np.zeros_like(x)
        g = g if fit_mean else g[1:]
        return -ll / n, -g / n

    # α + β ≤ 1 − 1e−8 as a linear inequality on the last two coordinates.
    k = 4 if fit_mean else 3
    jac_c = np.zeros(k)
    jac_c[-2:] = -1.0
    cons = {"type": "ineq", "fun": lambda x: _PERSISTENCE_MAX - x[-2] - x[-1], "jac": lambda x: jac_c}
    bounds = [(1e-8 * v, 10.0 * v), (0.0, 1.0), (0.0, 1.0)]
    if fit_mean:
        bounds = [(lo, hi), *bounds]

    fits: list[_Fit] = []
    for start in starts:
        x0 = np.concatenate(([mu0], start)) if fit_mean else start.copy()
        res = optimize.minimize(
            fun,
            x0,
            jac=True,
            method="SLSQP",
            bounds=bounds,
            constraints=[cons],
            options={"ftol": _FTOL, "maxiter": _MAXITER},
        )
        mu, om, al, be = _feasible(*unpack(np.asarray(res.x, dtype=np.float64)), 1e-8 * v)
        ll = float(garch11_loglik_grad_nb(y, mu, om, al, be, bc)[0])
        # SLSQP reports "positive directional derivative" when it cannot improve on a point that
        # is already optimal to machine precision; a small projected gradient is convergence too.
        ok = bool(res.success) or _small_gradient(res, bounds)
        fits.append(_Fit(np.array([mu, om, al, be]), ll, ok, bc))
        if ok:
            break
    return max(fits, key=lambda f: f.loglik)


def _feasible(mu: float, om: float, al: float, be: float, om_min: float) -> tuple[float, float, float, float]:
    """SLSQP may end a hair outside the feasible set; project back so that α + β < 1 holds exactly."""
    al, be = max(al, 0.0), max(be, 0.0)
    if al + be > _PERSISTENCE_MAX:
        shrink = _PERSISTENCE_MAX / (al + be)
        al, be = al * shrink, be * shrink
    return mu, max(om, om_min), al, be


def _small_gradient(res: optimize.OptimizeResult, bounds: list[tuple[float, float]]) -> bool:
    x = np.asarray(res.x)
    g = np.asarray(res.jac)
    free = np.array([lo < xi < hi for xi, (lo, hi) in zip(x, bounds, strict=True)])
    return bool(res.status == 8 and np.all(np.abs(g[free]) < 1e-5))


def _fit_many_scaled(Y: FloatArray, fit_mean: bool) -> list[_Fit]:
    """Fit each row of ``Y`` (N, T); the starting grid of all series is scored in one kernel call."""
    stats = [_starts(Y[i], fit_mean) for i in range(Y.shape[0])]
    mu0 = np.array([s[0] for s in stats])
    bc = np.array([s[1] for s in stats])
    v = np.array([s[2] for s in stats])
    omega, alpha, beta = _grid_points(v)
    ll = garch11_grid_loglik_nb(np.ascontiguousarray(Y - mu0[:, None]), bc, omega, alpha, beta)
    fits = []
    for i in range(Y.shape[0]):
        order = np.argsort(-ll[i])[:_N_STARTS]
        starts = np.column_stack((omega[i, order], alpha[order], beta[order]))
        fits.append(_optimise(Y[i], fit_mean, float(mu0[i]), float(bc[i]), float(v[i]), starts))
    return fits


def _paths(y: FloatArray, fit: _Fit) -> tuple[FloatArray, FloatArray]:
    mu, om, al, be = (float(p) for p in fit.x)
    resid = y - mu
    vol = np.sqrt(garch11_variance_nb(resid, om, al, be, fit.backcast))
    return vol, resid / vol


def fit_garch(returns: Any, mean: Mean = "constant", *, scale: float = 100.0) -> GarchResult:
    """Fit a GARCH(1,1) with normal innovations by maximum likelihood.

    Parameters
    ----------
    returns
        1-d array or Series of simple or log returns, no NaN, at least ``MIN_OBSERVATIONS`` values.
    mean
        ``"constant"`` estimates μ jointly with the variance parameters; ``"zero"`` fixes μ = 0.
    scale
        The returns are multiplied by ``scale`` before estimation (default 100: decimal returns
        become percent returns, which keeps ω of order 0.01–1 and the optimiser well conditioned,
        as arch recommends). Pass 1.0 for returns already in percent. μ, ω, the log-likelihood, the
        conditional volatility and the unconditional variance are in the scaled units.

    Returns
    -------
    GarchResult
        Parameters, log-likelihood, σ_t and standardised residuals (wrapped with the input's index
        for pandas input), persistence α + β, unconditional variance ω / (1 − α − β) and whether the
        optimiser converged.

    Notes
    -----
    Bollerslev, T. (1986), "Generalized autoregressive conditional heteroskedasticity", J. of
    Econometrics 31. Conventions (backcast, bounds, full normal likelihood) are those of ``arch``
    (``arch_model(100 * r, mean="Constant", vol="GARCH", p=1, q=1, dist="normal")``); see the module
    docstring. Estimates agree with arch's to its optimiser's tolerance, and where they differ ours
    has the higher log-likelihood.
    """
    fit_mean = _check_options(mean, scale)
    y = as_1d(returns, "returns", allow_nan=False, min_length=MIN_OBSERVATIONS) * scale
    _check_variance(y, "returns")
    fit = _fit_many_scaled(y[None, :], fit_mean)[0]
    vol, z = _paths(y, fit)
    mu, om, al, be = (float(p) for p in fit.x)
    pers = al + be
    index_like = returns if isinstance(returns, pd.Series) else None
    if isinstance(returns, pd.DataFrame):  # one column, or as_1d would have refused it
        index_like = returns.iloc[:, 0]
    return GarchResult(
        mu=mu,
        omega=om,
        alpha=al,
        beta=be,
        loglik=fit.loglik,
        conditional_volatility=_wrap1(index_like, vol, "conditional_volatility"),
        standardized_residuals=_wrap1(index_like, z, "standardized_residuals"),
        persistence=pers,
        unconditional_variance=om / (1.0 - pers),
        converged=fit.converged,
        scale=float(scale),
        mean=mean,
        backcast=fit.backcast,
        nobs=int(y.shape[0]),
    )


def _wrap1(template: pd.Series | None, values: FloatArray, name: str) -> Any:
    return values if template is None else pd.Series(values, index=template.index, name=name)


def fit_garch_many(returns: Any, mean: Mean = "constant", *, scale: float = 100.0) -> GarchManyResult:
    """Fit a GARCH(1,1) to each column of a (T, N) array or DataFrame, independently.

    Same model, conventions and units as :func:`fit_garch` (one backcast per column; see the module
    docstring); the starting-value grid of all columns is scored in one batch kernel call.

    Returns
    -------
    GarchManyResult
        ``params``: a DataFrame indexed by asset (column labels, or ``x0..`` for arrays) with columns
        mu, omega, alpha, beta, loglik, persistence, unconditional_variance, converged;
        ``conditional_volatility`` and ``standardized_residuals``: (T, N), wrapped like the input.

    Notes
    -----
    Bollerslev (1986); conventions of ``arch`` as in :func:`fit_garch`.
    """
    fit_mean = _check_options(mean, scale)
    X = as_2d(returns, "returns", min_rows=MIN_OBSERVATIONS) * scale
    for j in range(X.shape[1]):
        _check_variance(X[:, j], f"returns column {j}")
    fits = _fit_many_scaled(np.ascontiguousarray(X.T), fit_mean)
    vol = np.empty_like(X)
    z = np.empty_like(X)
    for j, fit in enumerate(fits):
        vol[:, j], z[:, j] = _paths(X[:, j], fit)
    labels = labels_of(returns, X.shape[1])
    rows = []
    for fit in fits:
        mu, om, al, be = (float(p) for p in fit.x)
        rows.append(
            {
                "mu": mu,
                "omega": om,
                "alpha": al,
                "beta": be,
                "loglik": fit.loglik,
                "persistence": al + be,
                "unconditional_variance": om / (1.0 - al - be),
                "converged": fit.converged,
            }
        )
    params = pd.DataFrame(rows, index=pd.Index(labels, name="asset"))
    if isinstance(returns, pd.DataFrame):
        vol_out: Any = pd.DataFrame(vol, index=returns.index, columns=returns.columns)
        z_out: Any = pd.DataFrame(z, index=returns.index, columns=returns.columns)
    else:
        vol_out, z_out = vol, z
    return GarchManyResult(params, vol_out, z_out, float(scale), mean)
