"""numba kernels for portfolio construction: HRP and the minimum-variance QP (arrays in, arrays out).

Conventions are documented on the public functions in ``quant.portfolio``.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

from quant._kernels._jit import jit

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


@jit
def pairwise_cov_corr_nb(x: FloatArray) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Pairwise-complete sample covariance (ddof = 1) and Pearson correlation of the columns of ``x``.

    Each pair (i, j) uses only the rows where both columns are finite, with means taken over those
    rows (two-pass, as pandas ``DataFrame.cov``/``corr`` do). Also returns the overlap counts, so the
    caller can reject pairs with fewer than two common observations (their entries are NaN here).
    """
    n, k = x.shape
    cov = np.full((k, k), np.nan)
    corr = np.full((k, k), np.nan)
    nobs = np.zeros((k, k))
    for i in range(k):
        for j in range(i, k):
            m = 0
            sx = 0.0
            sy = 0.0
            for t in range(n):
                a = x[t, i]
                b = x[t, j]
                if not (math.isnan(a) or math.isnan(b)):
                    m += 1
                    sx += a
                    sy += b
            nobs[i, j] = m
            nobs[j, i] = m
            if m < 2:
                continue
            mx = sx / m
            my = sy / m
            sxx = 0.0
            syy = 0.0
            sxy = 0.0
            for t in range(n):
                a = x[t, i]
                b = x[t, j]
                if not (math.isnan(a) or math.isnan(b)):
                    da = a - mx
                    db = b - my
                    sxx += da * da
                    syy += db * db
                    sxy += da * db
            c = sxy / (m - 1)
            cov[i, j] = c
            cov[j, i] = c
            den = math.sqrt(sxx * syy)
            r = sxy / den if den > 0.0 else np.nan
            corr[i, j] = r
            corr[j, i] = r
    return cov, corr, nobs


@jit
def _cluster_variance_nb(cov: FloatArray, items: IntArray) -> float:
    """Variance of the inverse-variance portfolio of ``items`` (weights ∝ 1/σ²_i within the cluster)."""
    m = items.shape[0]
    w = np.empty(m)
    total = 0.0
    for a in range(m):
        w[a] = 1.0 / cov[items[a], items[a]]
        total += w[a]
    var = 0.0
    for a in range(m):
        ia = items[a]
        acc = 0.0
        for b in range(m):
            acc += cov[ia, items[b]] * w[b]
        var += w[a] * acc
    return var / (total * total)


@jit
def hrp_bisection_nb(cov: FloatArray, order: IntArray) -> FloatArray:
    """Recursive bisection of López de Prado (2016) over the quasi-diagonal ``order``.

    A cluster of m items splits into its first m // 2 and its last m − m // 2 items (in ``order``);
    the first half's share is α = 1 − V₁ / (V₁ + V₂), with V the inverse-variance cluster variance.
    Weights are returned in the original asset positions.
    """
    k = order.shape[0]
    w = np.ones(k)
    # An explicit stack of [lo, hi) ranges over positions in ``order``; the product of the split
    # factors along each leaf's path does not depend on the traversal order.
    stack_lo = np.empty(2 * k + 1, dtype=np.int64)
    stack_hi = np.empty(2 * k + 1, dtype=np.int64)
    stack_lo[0] = 0
    stack_hi[0] = k
    top = 1
    while top > 0:
        top -= 1
        lo = stack_lo[top]
        hi = stack_hi[top]
        if hi - lo < 2:
            continue
        mid = lo + (hi - lo) // 2
        v1 = _cluster_variance_nb(cov, order[lo:mid])
        v2 = _cluster_variance_nb(cov, order[mid:hi])
        alpha = 1.0 - v1 / (v1 + v2)
        for p in range(lo, mid):
            w[order[p]] *= alpha
        for p in range(mid, hi):
            w[order[p]] *= 1.0 - alpha
        stack_lo[top] = lo
        stack_hi[top] = mid
        top += 1
        stack_lo[top] = mid
        stack_hi[top] = hi
        top += 1
    return w


@jit
def _free_qp_nb(cov: FloatArray, w: FloatArray, free: npt.NDArray[np.bool_]) -> tuple[FloatArray, float]:
    """Minimise wᵀΣw over the free weights, the others fixed, with Σ w = 1: (free weights, λ).

    Solves the KKT system [[Σ_FF, −1], [1ᵀ, 0]] [w_F; λ] = [−Σ_FB w_B; 1 − Σ w_B]. When Σ_FF is
    singular (a PSD covariance) any minimiser will do, and least squares gives the smallest.
    """
    n = w.shape[0]
    f = np.flatnonzero(free)
    m = f.shape[0]
    kkt = np.zeros((m + 1, m + 1))
    rhs = np.zeros(m + 1)
    fixed_sum = 0.0
    for j in range(n):
        if not free[j]:
            fixed_sum += w[j]
    for a in range(m):
        i = f[a]
        for c in range(m):
            kkt[a, c] = cov[i, f[c]]
        kkt[a, m] = -1.0
        kkt[m, a] = 1.0
        acc = 0.0
        for j in range(n):
            if not free[j]:
                acc += cov[i, j] * w[j]
        rhs[a] = -acc
    rhs[m] = 1.0 - fixed_sum
    sol = np.linalg.lstsq(kkt, rhs)[0]
    out = np.empty(m)
    out[:] = sol[:m]
    return out, float(sol[m])


@jit
def min_variance_active_set_nb(
    cov: FloatArray, lo: FloatArray, hi: FloatArray, w0: FloatArray, max_iter: int
) -> tuple[FloatArray, bool]:
    """Primal active-set method (Nocedal & Wright 2006, Algorithm 16.3) for
    min wᵀΣw subject to Σ w = 1 and lo ≤ w ≤ hi, from the feasible point ``w0``.

    The working set holds bounds only (the budget is always active). Each iteration solves the
    equality-constrained QP of the free weights; a zero step checks the bound multipliers
    (KKT: Σw = λ1 + μ_lo − μ_hi, μ ≥ 0) and releases the most negative one, a non-zero step goes
    as far as the first blocking bound. Returns the weights and whether it converged.
    """
    n = w0.shape[0]
    w = w0.copy()
    at_lo = w <= lo
    at_hi = (w >= hi) & ~at_lo
    n_free = 0
    for i in range(n):
        if not (at_lo[i] or at_hi[i]):
            n_free += 1
    if n_free == 0:
        # The budget plus every bound would be linearly dependent: free one asset.
        at_lo[0] = False
        at_hi[0] = False
    scale = 0.0
    for i in range(n):
        scale = max(scale, abs(cov[i, i]))
    for _ in range(max_iter):
        free = ~(at_lo | at_hi)
        f = np.flatnonzero(free)
        w_free, lam = _free_qp_nb(cov, w, free)
        step = w_free - w[f]
        size = 0.0
        wmax = 1.0
        for a in range(f.shape[0]):
            size = max(size, abs(step[a]))
        for i in range(n):
            wmax = max(wmax, abs(w[i]))
        if size <= 1e-13 * wmax:
            # Take the (tiny) last step, but never across a bound by rounding.
            for a in range(f.shape[0]):
                i = f[a]
                w[i] = min(max(w_free[a], lo[i]), hi[i])
            grad = cov @ w
            worst = -1
            worst_mult = -1e-12 * scale
            for i in range(n):
                if at_lo[i]:
                    mult = grad[i] - lam
                elif at_hi[i]:
                    mult = lam - grad[i]
                else:
                    continue
                if mult < worst_mult:
                    worst_mult = mult
                    worst = i
            if worst < 0:
                return w, True
            at_lo[worst] = False
            at_hi[worst] = False
            continue
        alpha = 1.0
        block = -1
        block_lo = False
        for a in range(f.shape[0]):
            i = f[a]
            p = step[a]
            if p < 0.0 and not math.isinf(lo[i]) and (lo[i] - w[i]) / p < alpha:
                alpha = max((lo[i] - w[i]) / p, 0.0)
                block = i
                block_lo = True
            elif p > 0.0 and not math.isinf(hi[i]) and (hi[i] - w[i]) / p < alpha:
                alpha = max((hi[i] - w[i]) / p, 0.0)
                block = i
                block_lo = False
        for a in range(f.shape[0]):
            w[f[a]] += alpha * step[a]
        if block >= 0:
            w[block] = lo[block] if block_lo else hi[block]
            at_lo[block] = block_lo
            at_hi[block] = not block_lo
    return w, False


@jit
def risk_budget_newton_nb(sigma: FloatArray, b: FloatArray, tol: float, max_iter: int) -> tuple[FloatArray, bool]:
    """Spinu (2013): minimise ½ yᵀΣy − Σ b_i ln y_i by damped Newton steps; returns y/Σy and convergence.

    Steps are scaled by 1/(1+δ) while the Newton decrement δ exceeds 0.95·(3 − √5)/2 (where the
    quadratic convergence region of a self-concordant function begins), full afterwards, and halved
    if needed to keep y > 0. Stops when max_i |y_i (Σy)_i / (b_i yᵀΣy) − 1| < tol.
    """
    n = b.shape[0]
    damping = 0.95 * (3.0 - math.sqrt(5.0)) / 2.0
    y = np.empty(n)
    for i in range(n):
        y[i] = b[i] / math.sqrt(sigma[i, i])
    norm = math.sqrt(y @ sigma @ y)
    y /= norm
    for _ in range(max_iter):
        sy = sigma @ y
        total = 0.0
        for i in range(n):
            total += y[i] * sy[i]
        gap = 0.0
        for i in range(n):
            gap = max(gap, abs(y[i] * sy[i] / (b[i] * total) - 1.0))
        if gap < tol:
            return y / y.sum(), True
        grad = sy - b / y
        hess = sigma.copy()
        for i in range(n):
            hess[i, i] += b[i] / (y[i] * y[i])
        d = -np.linalg.solve(hess, grad)
        dec = math.sqrt(max(-float(grad @ d), 0.0))
        t = 1.0 / (1.0 + dec) if dec > damping else 1.0
        while np.any(y + t * d <= 0.0):
            t *= 0.5
        y = y + t * d
    return y / y.sum(), False
