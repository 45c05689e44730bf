"""numba kernels for rolling windows: mean and deviation, Bollinger, realised volatility, choppiness.

Contiguous float64 arrays in and out, validated input (no NaN), warm-up positions NaN.
"""

from __future__ import annotations

import math

import numpy as np

from quant._kernels._jit import jit
from quant._kernels.indicators import _true_range_at
from quant._validation import FloatArray

_NAN = np.nan


@jit
def _window_moments(x: FloatArray, start: int, stop: int) -> tuple[float, float]:
    """Mean and sum of squared deviations of x[start:stop], corrected two-pass (exact to rounding)."""
    count = stop - start
    total = 0.0
    for j in range(start, stop):
        total += x[j]
    mean = total / count
    m2 = 0.0
    drift = 0.0
    for j in range(start, stop):
        dev = x[j] - mean
        m2 += dev * dev
        drift += dev
    return mean, max(m2 - drift * drift / count, 0.0)


@jit
def rolling_mean_std_nb(x: FloatArray, period: int, ddof: int) -> tuple[FloatArray, FloatArray]:
    """Rolling mean and standard deviation (divisor ``period - ddof``); first value at ``period - 1``.

    The sum of squared deviations slides with Welford's update for a replaced value, which avoids
    the cancellation of the sum-of-squares formula on prices far from zero. Each window that
    starts at a multiple of ``period`` is recomputed exactly (two-pass), so rounding cannot
    accumulate over long series; the cost stays O(n). A window of equal values has deviation 0.
    """
    n = x.shape[0]
    mean_out = np.empty(n)
    std_out = np.empty(n)
    if n < period:
        mean_out[:] = _NAN
        std_out[:] = _NAN
        return mean_out, std_out
    mean_out[: period - 1] = _NAN
    std_out[: period - 1] = _NAN
    mean, m2 = _window_moments(x, 0, period)
    divisor = float(period - ddof)
    mean_out[period - 1] = mean
    std_out[period - 1] = math.sqrt(m2 / divisor)
    inv = 1.0 / period
    # Length of the run of equal values ending at i: a window inside such a run is flat, and its
    # deviation is set to exactly 0 rather than to the rounding residue of the updates (the same
    # guard as pandas' rolling variance).
    run = 1
    for j in range(1, period):
        run = run + 1 if x[j] == x[j - 1] else 1
    for i in range(period, n):
        run = run + 1 if x[i] == x[i - 1] else 1
        start = i - period + 1
        if run >= period:
            mean = x[i]
            m2 = 0.0
        elif start % period == 0:
            mean, m2 = _window_moments(x, start, i + 1)
        else:
            new = x[i]
            old = x[i - period]
            delta = new - old
            new_mean = mean + delta * inv
            m2 += delta * (new - new_mean + old - mean)
            mean = new_mean
            if m2 < 0.0:
                m2 = 0.0
        mean_out[i] = mean
        std_out[i] = math.sqrt(m2 / divisor)
    return mean_out, std_out


@jit
def bollinger_nb(close: FloatArray, period: int, k: float) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Middle (SMA), upper and lower bands at ``k`` population standard deviations."""
    middle, std = rolling_mean_std_nb(close, period, 0)
    n = close.shape[0]
    upper = np.empty(n)
    lower = np.empty(n)
    for i in range(n):
        width = k * std[i]
        upper[i] = middle[i] + width
        lower[i] = middle[i] - width
    return middle, upper, lower


@jit
def realized_volatility_nb(close: FloatArray, window: int, periods_per_year: float) -> FloatArray:
    """Annualised rolling sample std (ddof = 1) of log returns; first value at ``window``."""
    n = close.shape[0]
    out = np.empty(n)
    out[:] = _NAN
    if n <= window:
        return out
    returns = np.empty(n - 1)
    for i in range(1, n):
        returns[i - 1] = math.log(close[i] / close[i - 1])
    _, std = rolling_mean_std_nb(returns, window, 1)
    scale = math.sqrt(periods_per_year)
    for i in range(window - 1, n - 1):
        out[i + 1] = std[i] * scale
    return out


@jit
def choppiness_nb(high: FloatArray, low: FloatArray, close: FloatArray, period: int, true_extremes: bool) -> FloatArray:
    """Choppiness index; monotonic deques give the rolling max/min in one pass.

    Plain form: TR[0] = high − low, range over high/low, first value at ``period - 1``.
    True-extremes form: bar i spans [min(low, prev close), max(high, prev close)], TR is its width
    and the range is taken over those spans, first value at ``period``. NaN where the range is 0.
    """
    n = high.shape[0]
    out = np.empty(n)
    out[:] = _NAN
    first = 1 if true_extremes else 0
    if n - first < period:
        return out
    top = np.empty(n)
    bottom = np.empty(n)
    if not true_extremes:
        top[0] = high[0]
        bottom[0] = low[0]
    for i in range(1, n):
        if true_extremes:
            prev_close = close[i - 1]
            top[i] = high[i] if high[i] > prev_close else prev_close
            bottom[i] = low[i] if low[i] < prev_close else prev_close
        else:
            top[i] = high[i]
            bottom[i] = low[i]

    max_q = np.empty(n, dtype=np.int64)
    min_q = np.empty(n, dtype=np.int64)
    max_head = 0
    max_tail = 0
    min_head = 0
    min_tail = 0
    tr_total = 0.0
    log_period = math.log10(period)
    for i in range(first, n):
        tr_total += high[0] - low[0] if i == 0 else _true_range_at(high, low, close, i)
        while max_tail > max_head and top[max_q[max_tail - 1]] <= top[i]:
            max_tail -= 1
        max_q[max_tail] = i
        max_tail += 1
        while min_tail > min_head and bottom[min_q[min_tail - 1]] >= bottom[i]:
            min_tail -= 1
        min_q[min_tail] = i
        min_tail += 1
        start = i - period + 1
        if start < first:
            continue
        if max_q[max_head] < start:
            max_head += 1
        if min_q[min_head] < start:
            min_head += 1
        span = top[max_q[max_head]] - bottom[min_q[min_head]]
        if span > 0.0:
            out[i] = 100.0 * math.log10(tr_total / span) / log_period
        old = start
        tr_total -= high[0] - low[0] if old == 0 else _true_range_at(high, low, close, old)
    return out
