"""numba kernels for quant.correlation: pairwise-complete Pearson, EWMA covariance, rolling correlation.

All kernels take C-contiguous float64 arrays with rows = observations and columns = assets, and
every matrix they return is exactly symmetric. The (T, N, N) kernels write into an ``out`` array
the caller allocates with numpy: numpy backs large arrays with transparent huge pages, numba's
allocator does not, and the page faults of a fresh 200 MB result cost several times the arithmetic.
"""

from __future__ import annotations

import numpy as np

from quant._kernels._jit import jit
from quant._validation import FloatArray


@jit
def pairwise_corr_nb(x: FloatArray, min_periods: int) -> FloatArray:
    """Pearson correlation of every column pair over the rows where both are finite (two-pass)."""
    n_obs, n = x.shape
    out = np.full((n, n), np.nan)
    for i in range(n):
        for j in range(i + 1):
            count = 0
            sx = 0.0
            sy = 0.0
            # Constancy is decided exactly: a constant column's mean may be off by an ulp, which
            # would leave a tiny non-zero variance and a meaningless correlation.
            a0 = np.nan
            b0 = np.nan
            varies_a = False
            varies_b = False
            for t in range(n_obs):
                a = x[t, i]
                b = x[t, j]
                if not (np.isnan(a) or np.isnan(b)):
                    if count == 0:
                        a0 = a
                        b0 = b
                    varies_a = varies_a or a != a0
                    varies_b = varies_b or b != b0
                    count += 1
                    sx += a
                    sy += b
            if count < min_periods or count < 2 or not (varies_a and varies_b):
                continue
            mx = sx / count
            my = sy / count
            sxx = 0.0
            syy = 0.0
            sxy = 0.0
            for t in range(n_obs):
                a = x[t, i]
                b = x[t, j]
                if not (np.isnan(a) or np.isnan(b)):
                    da = a - mx
                    db = b - my
                    sxx += da * da
                    syy += db * db
                    sxy += da * db
            if sxx <= 0.0 or syy <= 0.0:
                continue
            value = 1.0 if i == j else min(1.0, max(-1.0, sxy / np.sqrt(sxx * syy)))
            out[i, j] = value
            out[j, i] = value
    return out


@jit
def ewma_cov_nb(r: FloatArray, lam: float, init_window: int, out: FloatArray) -> FloatArray:
    """Zero-mean EWMA covariance, seeded with the raw second moment of the first ``init_window`` rows.

    ``out`` is (T, N, N) to receive the whole path (NaN before row ``init_window - 1``) or
    (1, N, N) to receive only the last estimate; it is filled and returned.
    """
    n_obs, n = r.shape
    # The full square is updated (not one triangle): contiguous rows vectorise and copy out in one
    # go, which beats halving the arithmetic.
    s = np.zeros((n, n))
    for t in range(init_window):
        for i in range(n):
            for j in range(n):
                s[i, j] += r[t, i] * r[t, j]
    s /= init_window
    keep_path = out.shape[0] == n_obs
    if keep_path:
        out[: init_window - 1] = np.nan
    w = 1.0 - lam
    for t in range(init_window - 1, n_obs):
        if t >= init_window:
            for i in range(n):
                ri = r[t, i]
                for j in range(n):
                    # w * (ri * rj), not (w * ri) * rj: the product commutes exactly, so S stays symmetric.
                    s[i, j] = lam * s[i, j] + w * (ri * r[t, j])
        if keep_path:
            out[t] = s
    if not keep_path:
        out[0] = s
    return out


@jit
def _window_comoments_nb(x: FloatArray, start: int, stop: int, mean: FloatArray, com: FloatArray) -> None:
    """Exact two-pass mean and centred co-moments of rows [start, stop), written in place."""
    n = x.shape[1]
    width = stop - start
    for i in range(n):
        acc = 0.0
        for t in range(start, stop):
            acc += x[t, i]
        mean[i] = acc / width
    for i in range(n):
        for j in range(i + 1):
            acc = 0.0
            for t in range(start, stop):
                acc += (x[t, i] - mean[i]) * (x[t, j] - mean[j])
            com[i, j] = acc


@jit
def rolling_corr_nb(x: FloatArray, window: int, out: FloatArray) -> FloatArray:
    """Rolling Pearson correlation of all column pairs into ``out`` (T, N, N), NaN before row ``window - 1``.

    The centred co-moments slide one row at a time with the Welford-type update
    C' = C + (x_new - m)(x_new - m')^T - (x_old - m)(x_old - m')^T (m, m' the window means before
    and after), which works on deviations rather than raw sums, and are recomputed exactly with
    two passes every ``window`` rows so that rounding cannot build up over a long series.
    A column that is constant over a window (tracked exactly, by the row of its last change)
    gives NaN for that window, as pandas does.
    """
    n_obs, n = x.shape
    out[: window - 1] = np.nan
    mean = np.zeros(n)
    new_mean = np.zeros(n)
    com = np.zeros((n, n))
    dev_new = np.zeros(n)
    dev_old = np.zeros(n)
    last_change = np.zeros(n, dtype=np.int64)
    flat = np.zeros(n, dtype=np.bool_)
    scale = np.zeros(n)
    for t in range(n_obs):
        if t > 0:
            for i in range(n):
                if x[t, i] != x[t - 1, i]:
                    last_change[i] = t
        if t < window - 1:
            continue
        start = t - window + 1
        if (t - window + 1) % window == 0:
            _window_comoments_nb(x, start, t + 1, mean, com)
        else:
            for i in range(n):
                new_mean[i] = mean[i] + (x[t, i] - x[start - 1, i]) / window
                dev_new[i] = x[t, i] - mean[i]
                dev_old[i] = x[start - 1, i] - mean[i]
            for i in range(n):
                for j in range(i + 1):
                    com[i, j] += dev_new[i] * (x[t, j] - new_mean[j]) - dev_old[i] * (x[start - 1, j] - new_mean[j])
            for i in range(n):
                mean[i] = new_mean[i]
        for i in range(n):
            flat[i] = last_change[i] <= start or com[i, i] <= 0.0
            scale[i] = 0.0 if flat[i] else 1.0 / np.sqrt(com[i, i])
        # Whole rows in order: the (T, N, N) output is the large array, so write it contiguously.
        for i in range(n):
            for j in range(n):
                if flat[i] or flat[j]:
                    out[t, i, j] = np.nan
                elif i == j:
                    out[t, i, j] = 1.0
                else:
                    c = com[i, j] if j < i else com[j, i]
                    # c * (si * sj), not (c * si) * sj: the inner product commutes, so the matrix is symmetric.
                    out[t, i, j] = min(1.0, max(-1.0, c * (scale[i] * scale[j])))
    return out
