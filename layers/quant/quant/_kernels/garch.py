"""numba kernels for GARCH(1,1) and the DCC correlation step (arrays in, arrays out).

Conventions are documented on the public functions in ``quant.garch`` and ``quant.dcc``.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

from quant._kernels._jit import jit

FloatArray = npt.NDArray[np.float64]

_LOG_2PI = math.log(2.0 * math.pi)


@jit
def garch11_backcast_nb(resid: FloatArray) -> float:
    """Exponentially weighted mean of the first min(75, T) squared residuals, weights 0.94**k."""
    tau = min(75, resid.shape[0])
    num = 0.0
    den = 0.0
    w = 1.0
    for k in range(tau):
        num += w * resid[k] * resid[k]
        den += w
        w *= 0.94
    return num / den


@jit
def garch11_variance_nb(resid: FloatArray, omega: float, alpha: float, beta: float, backcast: float) -> FloatArray:
    """σ²_t = ω + α ε²_{t−1} + β σ²_{t−1}, with ε²_{−1} = σ²_{−1} = backcast."""
    n = resid.shape[0]
    out = np.empty(n)
    prev_e2 = backcast
    prev_s2 = backcast
    for t in range(n):
        s2 = omega + alpha * prev_e2 + beta * prev_s2
        out[t] = s2
        prev_e2 = resid[t] * resid[t]
        prev_s2 = s2
    return out


@jit
def garch11_loglik_grad_nb(
    y: FloatArray, mu: float, omega: float, alpha: float, beta: float, backcast: float
) -> tuple[float, FloatArray]:
    """Normal log-likelihood of GARCH(1,1) and its exact gradient in (μ, ω, α, β).

    The backcast is held fixed (it does not move with μ), so the derivative recursions start at
    ∂σ²_0/∂(μ, ω, α, β) = (0, 1, backcast, backcast).
    """
    n = y.shape[0]
    grad = np.zeros(4)
    d_mu = 0.0
    d_om = 0.0
    d_al = 0.0
    d_be = 0.0
    prev_e = 0.0
    prev_e2 = backcast
    prev_s2 = backcast
    ll = 0.0
    for t in range(n):
        s2 = omega + alpha * prev_e2 + beta * prev_s2
        if t == 0:
            d_mu = 0.0
            d_om = 1.0
            d_al = backcast
            d_be = backcast
        else:
            d_mu = -2.0 * alpha * prev_e + beta * d_mu
            d_om = 1.0 + beta * d_om
            d_al = prev_e2 + beta * d_al
            d_be = prev_s2 + beta * d_be
        if not (s2 > 0.0) or not math.isfinite(s2):
            return -np.inf, grad
        e = y[t] - mu
        e2 = e * e
        inv = 1.0 / s2
        ll += -0.5 * (_LOG_2PI + math.log(s2) + e2 * inv)
        # dℓ_t/dσ²_t = −½ (1/σ² − ε²/σ⁴)
        g = -0.5 * inv * (1.0 - e2 * inv)
        grad[0] += e * inv + g * d_mu
        grad[1] += g * d_om
        grad[2] += g * d_al
        grad[3] += g * d_be
        prev_e = e
        prev_e2 = e2
        prev_s2 = s2
    return ll, grad


@jit
def garch11_grid_loglik_nb(
    resid: FloatArray, backcast: FloatArray, omega: FloatArray, alpha: FloatArray, beta: FloatArray
) -> FloatArray:
    """Log-likelihoods of many series (rows of ``resid``, shape (N, T)) at G candidate points.

    ``omega`` has shape (N, G) (it scales with each series' variance); ``alpha`` and ``beta`` have
    shape (G,). Returns an (N, G) array.
    """
    n_series, n = resid.shape
    n_grid = alpha.shape[0]
    out = np.empty((n_series, n_grid))
    for i in range(n_series):
        for g in range(n_grid):
            om = omega[i, g]
            al = alpha[g]
            be = beta[g]
            prev_e2 = backcast[i]
            prev_s2 = backcast[i]
            ll = 0.0
            for t in range(n):
                s2 = om + al * prev_e2 + be * prev_s2
                e2 = resid[i, t] * resid[i, t]
                ll += -0.5 * (_LOG_2PI + math.log(s2) + e2 / s2)
                prev_e2 = e2
                prev_s2 = s2
            out[i, g] = ll
    return out


@jit
def _correlation_from_q_nb(q: FloatArray, r: FloatArray) -> None:
    n = q.shape[0]
    for i in range(n):
        for j in range(n):
            r[i, j] = q[i, j] / math.sqrt(q[i, i] * q[j, j])
        r[i, i] = 1.0


@jit
def _cholesky_inplace_nb(a: FloatArray) -> bool:
    """Lower Cholesky factor written over ``a``; False when ``a`` is not positive definite."""
    n = a.shape[0]
    for j in range(n):
        s = a[j, j]
        for k in range(j):
            s -= a[j, k] * a[j, k]
        if not (s > 0.0):
            return False
        d = math.sqrt(s)
        a[j, j] = d
        for i in range(j + 1, n):
            s = a[i, j]
            for k in range(j):
                s -= a[i, k] * a[j, k]
            a[i, j] = s / d
    return True


@jit
def dcc_loglik_nb(z: FloatArray, qbar: FloatArray, a: float, b: float) -> float:
    """Correlation part of the DCC log-likelihood: −½ Σ_t (log|R_t| + z_tᵀR_t⁻¹z_t − z_tᵀz_t).

    Q_0 = Q̄ and Q_t = (1 − a − b) Q̄ + a z_{t−1} z_{t−1}ᵀ + b Q_{t−1}; R_t = Q_t scaled to unit
    diagonal. Returns −inf when some R_t is not positive definite.
    """
    n_obs, n = z.shape
    q = qbar.copy()
    r = np.empty((n, n))
    y = np.empty(n)
    c = 1.0 - a - b
    ll = 0.0
    for t in range(n_obs):
        if t > 0:
            for i in range(n):
                for j in range(n):
                    q[i, j] = c * qbar[i, j] + a * z[t - 1, i] * z[t - 1, j] + b * q[i, j]
        _correlation_from_q_nb(q, r)
        if not _cholesky_inplace_nb(r):
            return -np.inf
        logdet = 0.0
        quad = 0.0
        zz = 0.0
        for i in range(n):
            s = z[t, i]
            for k in range(i):
                s -= r[i, k] * y[k]
            y[i] = s / r[i, i]
            logdet += 2.0 * math.log(r[i, i])
            quad += y[i] * y[i]
            zz += z[t, i] * z[t, i]
        ll += -0.5 * (logdet + quad - zz)
    return ll


@jit
def dcc_correlations_nb(z: FloatArray, qbar: FloatArray, a: float, b: float) -> FloatArray:
    """The conditional correlation matrices R_t of the DCC recursion, shape (T, N, N)."""
    n_obs, n = z.shape
    q = qbar.copy()
    out = np.empty((n_obs, n, n))
    c = 1.0 - a - b
    for t in range(n_obs):
        if t > 0:
            for i in range(n):
                for j in range(n):
                    q[i, j] = c * qbar[i, j] + a * z[t - 1, i] * z[t - 1, j] + b * q[i, j]
        _correlation_from_q_nb(q, out[t])
    return out
