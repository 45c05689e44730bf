"""numba kernels for ``quant.indicators``: contiguous float64 arrays in, results in arrays or ``out``.

Most kernels assume validated input (no NaN, ``high >= low``, ``1 <= period``). ``atr_nb``,
``rsi_nb`` and ``adx_nb`` instead check every bar in their own pass over the data and return
False on a fault, so the public functions need no separate scans; they write into outputs the
caller allocates (numpy's allocator gives large arrays huge pages, which fill faster). Warm-up
positions are NaN. Wilder recursions are written as ``prev * d + x * (1/p)`` with
``d = (p - 1) / p`` precomputed (four bars per loop-carried step for ATR and RSI); TA-Lib divides
by ``p`` every bar, so the two differ by a few ulps, not in seeding. Rolling-window kernels are in
``rolling.py``.
"""

from __future__ import annotations

import math

import numpy as np

from quant._kernels._jit import jit
from quant._validation import FloatArray

_NAN = np.nan
_INF = np.inf
# Bars per chunk: a chunk of every array in play fits in L1 between the passes over it.
_CHUNK = 256


@jit
def _true_range_at(high: FloatArray, low: FloatArray, close: FloatArray, i: int) -> float:
    prev_close = close[i - 1]
    hi = high[i] if high[i] > prev_close else prev_close
    lo = low[i] if low[i] < prev_close else prev_close
    width: float = hi - lo
    return width


@jit
def _rsi_value(gain: float, loss: float) -> float:
    total = gain + loss
    # 100 * (gain / total), not (100 * gain) / total: the ratio is <= 1 exactly, so RSI <= 100.
    return 100.0 * (gain / total) if total > 0.0 else 50.0


@jit
def first_complete_nb(high: FloatArray, low: FloatArray, close: FloatArray) -> int:
    """Index of the first bar where high, low and close are all present (len if none)."""
    n = high.shape[0]
    i = 0
    while i < n and (math.isnan(high[i]) or math.isnan(low[i]) or math.isnan(close[i])):
        i += 1
    return i


@jit
def hlc_clean_nb(high: FloatArray, low: FloatArray, close: FloatArray) -> bool:
    """True when no bar has a NaN or high < low (pass the slice from the first complete bar)."""
    # An OR-reduction without early exit or offset start, so LLVM vectorises it; callers
    # locate a fault only when there is one. ``not (h >= lo)`` is true for h < lo and for NaN.
    bad = False
    for i in range(high.shape[0]):
        bad |= (not (high[i] >= low[i])) | (close[i] != close[i])
    return not bad


@jit
def first_valid_nb(x: FloatArray) -> int:
    """Index of the first non-NaN value (len if none)."""
    n = x.shape[0]
    i = 0
    while i < n and math.isnan(x[i]):
        i += 1
    return i


@jit
def clean_nb(x: FloatArray) -> bool:
    """True when no value is NaN (vectorised OR-reduction, as in hlc_clean_nb)."""
    bad = False
    for i in range(x.shape[0]):
        bad |= x[i] != x[i]
    return not bad


@jit
def _directional_moves(high: FloatArray, low: FloatArray, i: int) -> tuple[float, float]:
    # Selects rather than if/elif: the up/down comparison is a coin flip on real data and a
    # mispredicted branch per bar costs more than the rest of the ADX update.
    up = high[i] - high[i - 1]
    down = low[i - 1] - low[i]
    plus_dm = up if up > max(down, 0.0) else 0.0
    minus_dm = down if down > max(up, 0.0) else 0.0
    return plus_dm, minus_dm


@jit
def _di_pair(plus_sum: float, minus_sum: float, tr_sum: float) -> tuple[float, float]:
    if tr_sum > 0.0:
        scale = 100.0 / tr_sum
        return plus_sum * scale, minus_sum * scale
    return 0.0, 0.0


@jit
def sma_nb(x: FloatArray, period: int) -> FloatArray:
    """Rolling mean over ``period`` values; first value at ``period - 1``."""
    n = x.shape[0]
    out = np.empty(n)
    total = 0.0
    for i in range(min(period - 1, n)):
        total += x[i]
        out[i] = _NAN
    inv = 1.0 / period
    for i in range(period - 1, n):
        total += x[i]
        out[i] = total * inv
        total -= x[i - period + 1]
    return out


@jit
def ema_nb(x: FloatArray, period: int) -> FloatArray:
    """EMA, alpha = 2 / (period + 1), seeded with the SMA of the first ``period`` values."""
    n = x.shape[0]
    out = np.empty(n)
    if n < period:
        out[:] = _NAN
        return out
    total = 0.0
    for i in range(period - 1):
        total += x[i]
        out[i] = _NAN
    total += x[period - 1]
    value = total / period
    out[period - 1] = value
    k = 2.0 / (period + 1)
    for i in range(period, n):
        value = (x[i] - value) * k + value
        out[i] = value
    return out


@jit
def true_range_nb(high: FloatArray, low: FloatArray, close: FloatArray) -> FloatArray:
    """Wilder's true range; NaN at bar 0, which has no previous close."""
    n = high.shape[0]
    out = np.empty(n)
    if n > 0:
        out[0] = _NAN
    for i in range(1, n):
        out[i] = _true_range_at(high, low, close, i)
    return out


@jit
def _hlc_faulty(high: FloatArray, low: FloatArray, close: FloatArray) -> bool:
    """True when some bar has a NaN, an infinite value or high < low (OR-reduction, vectorised)."""
    bad = False
    for i in range(high.shape[0]):
        h = high[i]
        lo = low[i]
        bad |= not ((h >= lo) & (h < _INF) & (lo > -_INF) & (abs(close[i]) < _INF))
    return bad


@jit
def _true_ranges(high: FloatArray, low: FloatArray, close: FloatArray, scale: float, out: FloatArray) -> bool:
    """``out[j] = TR * scale`` for bars ``high[j]``, ``low[j]``, ``close[j + 1]`` (``close[0]`` is the
    previous close); returns the fault flag of those bars. No loop-carried value, so it vectorises."""
    bad = False
    for j in range(high.shape[0]):
        h = high[j]
        lo = low[j]
        prev_close = close[j]
        bad |= not ((h >= lo) & (h < _INF) & (lo > -_INF) & (abs(close[j + 1]) < _INF))
        top = h if h > prev_close else prev_close
        bottom = lo if lo < prev_close else prev_close
        out[j] = (top - bottom) * scale
    return bad


@jit
def _wilder_in_place(x: FloatArray, value: float, decay: float) -> float:
    """Replace ``x[j]`` (already scaled by 1/period) by ``value = value * decay + x[j]``; return the last value.

    Four bars per step: a[t+k] = d^k a[t] + (terms of the new bars only), so the loop-carried chain
    is one multiply-add per four bars instead of one per bar (the latency bound).
    """
    d2 = decay * decay
    d3 = d2 * decay
    d4 = d3 * decay
    m = x.shape[0]
    j = 0
    while j + 3 < m:
        u0 = x[j]
        s1 = u0 * decay + x[j + 1]
        s2 = s1 * decay + x[j + 2]
        s3 = s2 * decay + x[j + 3]
        x[j] = value * decay + u0
        x[j + 1] = value * d2 + s1
        x[j + 2] = value * d3 + s2
        value = value * d4 + s3
        x[j + 3] = value
        j += 4
    while j < m:
        value = value * decay + x[j]
        x[j] = value
        j += 1
    return value


@jit
def atr_nb(high: FloatArray, low: FloatArray, close: FloatArray, period: int, out: FloatArray) -> bool:
    """Wilder ATR into ``out``; first value at ``period`` = mean of TR[1..period] (bar 0's TR is dropped).

    Checks every bar on the way (NaN, infinite, high < low) and returns False if one fails, in
    which case ``out`` is meaningless. Works in chunks of ``_CHUNK`` bars: true ranges first (a
    vectorised pass), then the Wilder recursion over the chunk while it is in L1.
    """
    n = high.shape[0]
    bad = _hlc_faulty(high[: period + 1], low[: period + 1], close[: period + 1])
    out[: min(period, n)] = _NAN
    if n <= period:
        return not bad
    total = 0.0
    for i in range(1, period + 1):
        total += _true_range_at(high, low, close, i)
    value = total / period
    out[period] = value
    decay = (period - 1.0) / period
    inv = 1.0 / period
    lo = period + 1
    while lo < n:
        hi = min(lo + _CHUNK, n)
        seg = out[lo:hi]
        bad |= _true_ranges(high[lo:hi], low[lo:hi], close[lo - 1 : hi], inv, seg)
        value = _wilder_in_place(seg, value, decay)
        lo = hi
    return not bad


@jit
def _changes(close: FloatArray, scale: float, gains: FloatArray, losses: FloatArray) -> bool:
    """Scaled gains and losses of ``close[j + 1] - close[j]``; returns True if ``close[1:]`` is not finite."""
    bad = False
    for j in range(gains.shape[0]):
        current = close[j + 1]
        bad |= not (abs(current) < _INF)
        change = current - close[j]
        gains[j] = (change if change > 0.0 else 0.0) * scale
        losses[j] = (-change if change < 0.0 else 0.0) * scale
    return bad


@jit
def rsi_nb(close: FloatArray, period: int, out: FloatArray) -> bool:
    """Wilder RSI into ``out``; averages seeded with the means of the first ``period`` gains/losses.

    RSI = 100 * avg_gain / (avg_gain + avg_loss); 50 where both averages are zero (no movement).
    Returns False if some close is NaN or infinite (``out`` is then meaningless). Chunked as atr_nb.
    """
    n = close.shape[0]
    bad = False
    for i in range(min(period + 1, n)):
        bad |= not (abs(close[i]) < _INF)
    out[: min(period, n)] = _NAN
    if n <= period:
        return not bad
    gain = 0.0
    loss = 0.0
    for i in range(1, period + 1):
        change = close[i] - close[i - 1]
        if change > 0.0:
            gain += change
        else:
            loss -= change
    gain /= period
    loss /= period
    out[period] = _rsi_value(gain, loss)
    decay = (period - 1.0) / period
    inv = 1.0 / period
    losses = np.empty(_CHUNK)
    lo = period + 1
    while lo < n:
        hi = min(lo + _CHUNK, n)
        gains = out[lo:hi]
        down = losses[: hi - lo]
        bad |= _changes(close[lo - 1 : hi], inv, gains, down)
        gain = _wilder_in_place(gains, gain, decay)
        loss = _wilder_in_place(down, loss, decay)
        for j in range(hi - lo):
            gains[j] = _rsi_value(gains[j], down[j])
        lo = hi
    return not bad


@jit
def adx_nb(
    high: FloatArray,
    low: FloatArray,
    close: FloatArray,
    period: int,
    adx: FloatArray,
    plus_di: FloatArray,
    minus_di: FloatArray,
) -> bool:
    """Wilder ADX, +DI and −DI with TA-Lib's seeding, in one pass into three preallocated outputs.

    The smoothed sums of TR, +DM and −DM are seeded with bars 1..period−1 and updated Wilder-style
    from bar ``period`` on, where +DI/−DI start; DX is averaged over bars period..2·period−1, so
    ADX starts at ``2 * period - 1``. Where the smoothed TR is zero both DIs are 0; where
    +DI + −DI is zero DX is undefined: it counts as 0 in the seed mean and ADX carries over.
    Returns False if some bar is NaN, infinite or has high < low (the outputs are then meaningless).
    """
    n = high.shape[0]
    seed_end = min(2 * period - 1, n)
    bad = _hlc_faulty(high[:seed_end], low[:seed_end], close[:seed_end])
    plus_di[: min(period, n)] = _NAN
    minus_di[: min(period, n)] = _NAN
    adx[:seed_end] = _NAN
    if n <= period:
        return not bad

    tr_sum = 0.0
    plus_sum = 0.0
    minus_sum = 0.0
    for i in range(1, period):
        plus_dm, minus_dm = _directional_moves(high, low, i)
        plus_sum += plus_dm
        minus_sum += minus_dm
        tr_sum += _true_range_at(high, low, close, i)

    decay = (period - 1.0) / period
    inv = 1.0 / period
    dx_sum = 0.0
    for i in range(period, seed_end):
        plus_dm, minus_dm = _directional_moves(high, low, i)
        tr_sum = tr_sum * decay + _true_range_at(high, low, close, i)
        plus_sum = plus_sum * decay + plus_dm
        minus_sum = minus_sum * decay + minus_dm
        p, m = _di_pair(plus_sum, minus_sum, tr_sum)
        plus_di[i] = p
        minus_di[i] = m
        if p + m > 0.0:
            dx_sum += 100.0 * abs(p - m) / (p + m)
    value = 0.0
    lo = seed_end
    while lo < n:
        # Validate a chunk just before the loop reads it again, while it is in cache.
        hi = min(lo + _CHUNK, n)
        bad |= _hlc_faulty(high[lo:hi], low[lo:hi], close[lo:hi])
        for i in range(lo, hi):
            plus_dm, minus_dm = _directional_moves(high, low, i)
            tr_sum = tr_sum * decay + _true_range_at(high, low, close, i)
            plus_sum = plus_sum * decay + plus_dm
            minus_sum = minus_sum * decay + minus_dm
            p, m = _di_pair(plus_sum, minus_sum, tr_sum)
            plus_di[i] = p
            minus_di[i] = m
            di_total = p + m
            if i == seed_end:
                if di_total > 0.0:
                    dx_sum += 100.0 * abs(p - m) / di_total
                value = dx_sum * inv
            elif di_total > 0.0:
                value = value * decay + abs(p - m) / di_total * (100.0 * inv)
            adx[i] = value
        lo = hi
    return not bad
