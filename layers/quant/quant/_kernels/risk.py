"""Kernels for ``quant.risk``: sample quantiles and tail means of many return series at once.

The quantile definitions are Hyndman & Fan (1996) as numpy names them; each method is a small
integer code (``METHOD_CODES``) so that one compiled kernel serves them all.
"""

from __future__ import annotations

import numpy as np

from quant._kernels._jit import jit

# Continuous methods (Hyndman & Fan types 4-9) interpolate between two order statistics; the
# discontinuous ones (types 1-3 and numpy's lower/higher/nearest/midpoint) pick one or average two.
METHOD_CODES: dict[str, int] = {
    "inverted_cdf": 0,
    "averaged_inverted_cdf": 1,
    "closest_observation": 2,
    "interpolated_inverted_cdf": 3,
    "hazen": 4,
    "weibull": 5,
    "linear": 6,
    "median_unbiased": 7,
    "normal_unbiased": 8,
    "lower": 9,
    "higher": 10,
    "nearest": 11,
    "midpoint": 12,
}


@jit
def quantile_position_nb(n: int, p: float, code: int) -> tuple[int, float]:
    """Where the ``p``-quantile of ``n`` sorted values sits: ``x[j] + g * (x[j+1] - x[j])``.

    ``g`` is 0 whenever the quantile is the order statistic ``x[j]`` itself, so ``j + 1`` is the
    number of order statistics at or below the quantile (the tail that CVaR averages).
    """
    if code <= 2:
        # Types 1-3 are defined on n*p; their 0-based virtual index is n*p - 1 (type 3: - 1.5).
        v = n * p - 1.0 if code < 2 else n * p - 1.5
        j = int(np.floor(v))
        g = v - j
        if code == 0:
            step = 1.0 if g > 0.0 else 0.0
        elif code == 1:
            step = 1.0 if g > 0.0 else 0.5
        else:
            # Type 3 rounds to the nearest even 1-based order statistic, i.e. an odd 0-based one.
            step = 0.0 if (g == 0.0 and j % 2 == 1) else 1.0
    elif code <= 8:
        if code == 3:
            v = n * p - 1.0
        elif code == 4:
            v = n * p - 0.5
        elif code == 5:
            v = (n + 1) * p - 1.0
        elif code == 6:
            v = (n - 1) * p
        elif code == 7:
            v = n * p + (p + 1.0) / 3.0 - 1.0
        else:
            v = n * p + (2.0 * p + 3.0) / 8.0 - 1.0
        j = int(np.floor(v))
        step = v - j
    else:
        v = (n - 1) * p
        j = int(np.floor(v))
        g = v - j
        if code == 9:
            step = 0.0
        elif code == 10:
            step = 1.0 if g > 0.0 else 0.0
        elif code == 11:
            # Round half to even, as numpy does.
            step = 1.0 if (g > 0.5 or (g == 0.5 and j % 2 == 1)) else 0.0
        else:
            step = 0.5 if g > 0.0 else 0.0
    if j < 0:
        return 0, 0.0
    if j >= n - 1:
        return n - 1, 0.0
    if step >= 1.0:
        return j + 1, 0.0
    return j, step


@jit
def _sift_down_nb(heap: np.ndarray, size: int) -> None:
    """Restore the max-heap property from the root after the root was replaced."""
    i = 0
    while True:
        left = 2 * i + 1
        if left >= size:
            return
        big = left
        if left + 1 < size and heap[left + 1] > heap[left]:
            big = left + 1
        if heap[big] <= heap[i]:
            return
        heap[i], heap[big] = heap[big], heap[i]
        i = big


@jit
def _sift_up_nb(heap: np.ndarray, i: int) -> None:
    while i > 0:
        parent = (i - 1) // 2
        if heap[parent] >= heap[i]:
            return
        heap[i], heap[parent] = heap[parent], heap[i]
        i = parent


@jit
def _select_nb(values: np.ndarray, heap: np.ndarray, j: int, g: float) -> tuple[float, float]:
    """Quantile and tail mean of ``values`` from a max-heap of its ``len(heap)`` smallest values.

    ``len(heap)`` is ``j + 2`` (or ``n`` when ``j + 1 == n``). For a VaR tail (1-5% of the data)
    almost every value is rejected by one comparison with the heap's top, so selection costs about
    one pass, against ``O(n log n)`` for a sort.
    """
    n, k = values.shape[0], heap.shape[0]
    for t in range(k):
        heap[t] = values[t]
        _sift_up_nb(heap, t)
    top = heap[0]
    for t in range(k, n):
        x = values[t]
        if x < top:
            heap[0] = x
            _sift_down_nb(heap, k)
            top = heap[0]
    total = 0.0
    for t in range(k):
        total += heap[t]
    if k == j + 2:
        # The top is order statistic j + 1; order statistic j is the larger child of the root.
        hi = heap[0]
        lo = heap[1] if k == 2 or heap[1] >= heap[2] else heap[2]
        total -= hi
    else:
        lo = heap[0]
        hi = lo
    if g == 0.0:
        q = lo
    elif g < 0.5:
        q = lo + g * (hi - lo)
    else:
        # Interpolating from the nearer end keeps the result exact at g = 1 and monotone in g.
        q = hi - (1.0 - g) * (hi - lo)
    return q, total / (j + 1)


@jit
def tail_stats_nb(rows: np.ndarray, p: float, code: int) -> tuple[np.ndarray, np.ndarray]:
    """For each row of ``rows`` (series x observations): its ``p``-quantile and the tail mean.

    The tail mean is the mean of the ``j + 1`` smallest values, ``j`` being the quantile's lower
    order statistic from :func:`quantile_position_nb`.
    """
    m, n = rows.shape
    q = np.empty(m)
    tail = np.empty(m)
    j, g = quantile_position_nb(n, p, code)
    heap = np.empty(min(j + 2, n))
    for i in range(m):
        q[i], tail[i] = _select_nb(rows[i], heap, j, g)
    return q, tail


@jit
def portfolio_tail_stats_nb(
    returns_t: np.ndarray, weights: np.ndarray, p: float, code: int
) -> tuple[np.ndarray, np.ndarray]:
    """:func:`tail_stats_nb` of the portfolio returns ``weights @ returns_t`` without building them all.

    ``returns_t`` is assets x observations, ``weights`` portfolios x assets. Each portfolio's
    return series is built in one reusable buffer as a sum of scaled asset rows (contiguous,
    SIMD-friendly, no reduction chain), so memory stays at one series however many portfolios.
    """
    n_assets, n = returns_t.shape
    m = weights.shape[0]
    q = np.empty(m)
    tail = np.empty(m)
    j, g = quantile_position_nb(n, p, code)
    heap = np.empty(min(j + 2, n))
    buf = np.empty(n)
    for i in range(m):
        buf[:] = 0.0
        for a in range(n_assets):
            w = weights[i, a]
            for t in range(n):
                buf[t] += w * returns_t[a, t]
        q[i], tail[i] = _select_nb(buf, heap, j, g)
    return q, tail


@jit
def compounded_returns_nb(returns: np.ndarray, horizon: int) -> np.ndarray:
    """Overlapping ``horizon``-period compounded returns of each column: prod(1 + r) - 1."""
    n, k = returns.shape
    out = np.empty((n - horizon + 1, k))
    logs = np.log1p(returns)
    for c in range(k):
        # Each window summed afresh: a running sum would carry rounding drift across the series.
        for t in range(n - horizon + 1):
            acc = 0.0
            for s in range(t, t + horizon):
                acc += logs[s, c]
            out[t, c] = np.expm1(acc)
    return out
