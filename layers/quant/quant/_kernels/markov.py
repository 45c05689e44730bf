"""numba kernels for Markov-switching models: Hamilton filter, Kim smoother, packed log-likelihood.

Convention shared by every kernel here: ``P[i, j] = Pr(s_t = j | s_{t-1} = i)`` (rows sum to
one). statsmodels stores the transpose; the public module maps between the two.
"""

from __future__ import annotations

import math

import numpy as np

from quant._kernels._jit import jit

_LOG_SQRT_2PI = 0.5 * math.log(2.0 * math.pi)
# Bounds on the unconstrained parameters: beyond them the likelihood is flat to double precision,
# and keeping every transition probability strictly positive keeps the chain irreducible so the
# ergodic distribution exists.
_LOGIT_BOUND = 25.0
_LOG_SIGMA_BOUND = 15.0


@jit
def hamilton_filter_nb(
    y: np.ndarray, mu: np.ndarray, sigma: np.ndarray, P: np.ndarray, init: np.ndarray
) -> tuple[np.ndarray, np.ndarray, float]:
    """Hamilton (1989) filter for ``y_t = mu[s_t] + sigma[s_t] * eps_t``.

    ``mu`` and ``sigma`` have one entry per state, ``init`` is Pr(s_0). Returns the filtered
    probabilities Pr(s_t | y_0..y_t), the predicted ones Pr(s_t | y_0..y_{t-1}) and the
    log-likelihood. Densities are scaled by their largest member per bar so that an outlier far in
    the tail of every state does not underflow to a zero likelihood.
    """
    n = y.shape[0]
    k = mu.shape[0]
    filtered = np.empty((n, k))
    predicted = np.empty((n, k))
    logdens = np.empty(k)
    loglik = 0.0
    for t in range(n):
        if t == 0:
            for j in range(k):
                predicted[0, j] = init[j]
        else:
            for j in range(k):
                acc = 0.0
                for i in range(k):
                    acc += filtered[t - 1, i] * P[i, j]
                predicted[t, j] = acc
        top = -np.inf
        for j in range(k):
            z = (y[t] - mu[j]) / sigma[j]
            logdens[j] = -0.5 * z * z - math.log(sigma[j]) - _LOG_SQRT_2PI
            if logdens[j] > top:
                top = logdens[j]
        total = 0.0
        for j in range(k):
            w = predicted[t, j] * math.exp(logdens[j] - top)
            filtered[t, j] = w
            total += w
        if not total > 0.0:
            # Every state with predicted mass has zero density: the parameters cannot explain y_t.
            return filtered, predicted, -np.inf
        for j in range(k):
            filtered[t, j] /= total
        loglik += math.log(total) + top
    return filtered, predicted, loglik


@jit
def kim_smoother_nb(filtered: np.ndarray, predicted: np.ndarray, P: np.ndarray) -> np.ndarray:
    """Kim (1994) backward smoother: Pr(s_t | y_0..y_{n-1}) from the filter's output."""
    n, k = filtered.shape
    smoothed = np.empty((n, k))
    for j in range(k):
        smoothed[n - 1, j] = filtered[n - 1, j]
    for t in range(n - 2, -1, -1):
        total = 0.0
        for i in range(k):
            acc = 0.0
            for j in range(k):
                if predicted[t + 1, j] > 0.0:
                    acc += P[i, j] * smoothed[t + 1, j] / predicted[t + 1, j]
            smoothed[t, i] = filtered[t, i] * acc
            total += smoothed[t, i]
        # Renormalise: rounding drift over thousands of backward steps would otherwise accumulate.
        if total > 0.0:
            for i in range(k):
                smoothed[t, i] /= total
    return smoothed


@jit
def ergodic_nb(P: np.ndarray) -> np.ndarray:
    """Stationary distribution pi = pi P of an irreducible row-stochastic matrix.

    Solves (I - P') pi = 0 with the last equation replaced by sum(pi) = 1. The diagonal of I - P
    is formed as the sum of the off-diagonal entries, not 1 - P[i, i], which would round to zero
    for a very persistent state.
    """
    k = P.shape[0]
    A = np.zeros((k, k))
    for i in range(k):
        off = 0.0
        for j in range(k):
            if j != i:
                off += P[i, j]
                A[j, i] = -P[i, j]
        A[i, i] = off
    b = np.zeros(k)
    for i in range(k):
        A[k - 1, i] = 1.0
    b[k - 1] = 1.0
    pi: np.ndarray = np.linalg.solve(A, b)
    for i in range(k):
        if pi[i] < 0.0:
            pi[i] = 0.0
    out: np.ndarray = pi / pi.sum()
    return out


@jit
def unpack_params_nb(theta: np.ndarray, k: int, switching_mean: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Unconstrained vector -> (mu, sigma, P).

    Layout: ``k*(k-1)`` transition logits (row i, the columns j != i in order, the diagonal being
    the reference category of a softmax), then ``k`` means (or one shared mean), then ``k``
    log-sigmas.
    """
    P = np.empty((k, k))
    pos = 0
    for i in range(k):
        denom = 1.0
        for j in range(k):
            if j != i:
                a = min(max(theta[pos], -_LOGIT_BOUND), _LOGIT_BOUND)
                P[i, j] = math.exp(a)
                denom += P[i, j]
                pos += 1
        P[i, i] = 1.0
        for j in range(k):
            P[i, j] /= denom
    mu = np.empty(k)
    if switching_mean:
        for j in range(k):
            mu[j] = theta[pos]
            pos += 1
    else:
        for j in range(k):
            mu[j] = theta[pos]
        pos += 1
    sigma = np.empty(k)
    for j in range(k):
        sigma[j] = math.exp(min(max(theta[pos], -_LOG_SIGMA_BOUND), _LOG_SIGMA_BOUND))
        pos += 1
    return mu, sigma, P


@jit
def ms_loglik_nb(theta: np.ndarray, y: np.ndarray, k: int, switching_mean: bool) -> float:
    """Log-likelihood at an unconstrained parameter vector, the chain started from its ergodic law.

    The same recursion as :func:`hamilton_filter_nb` but keeping only the last bar's
    probabilities: the optimiser calls this thousands of times and needs no history.
    """
    mu, sigma, P = unpack_params_nb(theta, k, switching_mean)
    prob = ergodic_nb(P)
    pred = np.empty(k)
    logdens = np.empty(k)
    inv_sigma = 1.0 / sigma
    log_norm = np.log(sigma) + _LOG_SQRT_2PI
    loglik = 0.0
    for t in range(y.shape[0]):
        if t == 0:
            pred[:] = prob
        else:
            for j in range(k):
                acc = 0.0
                for i in range(k):
                    acc += prob[i] * P[i, j]
                pred[j] = acc
        top = -np.inf
        for j in range(k):
            z = (y[t] - mu[j]) * inv_sigma[j]
            logdens[j] = -0.5 * z * z - log_norm[j]
            if logdens[j] > top:
                top = logdens[j]
        total = 0.0
        for j in range(k):
            prob[j] = pred[j] * math.exp(logdens[j] - top)
            total += prob[j]
        if not total > 0.0:
            return -np.inf
        for j in range(k):
            prob[j] /= total
        loglik += math.log(total) + top
    return loglik


@jit
def ms_negloglik_grad_nb(
    theta: np.ndarray, y: np.ndarray, k: int, switching_mean: bool, step: float
) -> tuple[float, np.ndarray]:
    """Negative log-likelihood and its central-difference gradient, in one compiled call.

    Central differences have O(step^2) truncation error, so the optimiser can drive the gradient
    well below the 1e-5 floor that scipy's forward differences reach.
    """
    m = theta.shape[0]
    grad = np.empty(m)
    work = theta.copy()
    for i in range(m):
        h = step * max(1.0, abs(theta[i]))
        work[i] = theta[i] + h
        up = ms_loglik_nb(work, y, k, switching_mean)
        work[i] = theta[i] - h
        down = ms_loglik_nb(work, y, k, switching_mean)
        work[i] = theta[i]
        grad[i] = -(up - down) / (2.0 * h)
    return -ms_loglik_nb(theta, y, k, switching_mean), grad
