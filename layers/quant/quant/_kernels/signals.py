"""numba kernels for ``quant.signals``: path-dependent position state machines (arrays in, arrays out)."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from quant._kernels._jit import jit

FloatArray = npt.NDArray[np.float64]


@jit
def pairs_positions_nb(z: FloatArray, entry: float, exit_: float, stop: float) -> FloatArray:
    """Spread position (+1 long, -1 short, 0 flat) from a z-score path; see ``quant.signals.pairs_positions``."""
    n = z.shape[0]
    out = np.zeros(n)
    pos = 0.0
    stopped = False
    for t in range(n):
        zt = z[t]
        if np.isnan(zt):
            # No score, no view: flat, and the stop latch is kept (a gap is not a return to the mean).
            pos = 0.0
            out[t] = 0.0
            continue
        az = abs(zt)
        if stopped:
            if az < exit_:
                stopped = False
            out[t] = 0.0
            continue
        if pos != 0.0:
            if az > stop:
                pos = 0.0
                stopped = True
                out[t] = 0.0
                continue
            # Exit once the score is back inside the band or has overshot through it to the other side.
            if (pos > 0.0 and zt >= -exit_) or (pos < 0.0 and zt <= exit_):
                pos = 0.0
        if pos == 0.0:
            if az > stop:
                stopped = True
            elif zt > entry:
                pos = -1.0
            elif zt < -entry:
                pos = 1.0
        out[t] = pos
    return out


@jit
def donchian_breakout_nb(
    close: FloatArray, upper: FloatArray, lower: FloatArray, exit_upper: FloatArray, exit_lower: FloatArray
) -> FloatArray:
    """Turtle-style breakout state: long above ``upper``, short below ``lower``, out through the exit channel."""
    n = close.shape[0]
    out = np.zeros(n)
    pos = 0.0
    for t in range(n):
        c = close[t]
        if np.isnan(c) or np.isnan(upper[t]) or np.isnan(lower[t]):
            out[t] = pos
            continue
        if (pos > 0.0 and c < exit_lower[t]) or (pos < 0.0 and c > exit_upper[t]):
            pos = 0.0
        if c > upper[t]:
            pos = 1.0
        elif c < lower[t]:
            pos = -1.0
        out[t] = pos
    return out
