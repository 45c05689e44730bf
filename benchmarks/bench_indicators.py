"""quant.indicators against TA-Lib on 1,000,000 bars of a seeded random-walk OHLC.

The headline rows time the public functions as a caller uses them: numpy float64 arrays in, input
checks included (the NaN, infinite-value and high >= low scans run inside the kernel's own pass,
the leading-NaN search stops at the first valid bar) and outputs allocated on every call. TA-Lib's
Python functions allocate their output on every call too. "ADX +DI -DI" compares our one pass,
which returns all three, with the three TA-Lib calls that give the same outputs. The kernel rows
time the bare numba kernel writing into a preallocated output, for reference.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import talib

from benchmarks.harness import Bench
from quant import indicators as ind
from quant._kernels import indicators as kernels

N_BARS = 1_000_000
PERIOD = 14

Bars = tuple[np.ndarray[Any, np.dtype[np.float64]], ...]


def _bars() -> Bars:
    rng = np.random.default_rng(20240501)
    close = 100.0 * np.exp(np.cumsum(rng.normal(0.0, 0.01, N_BARS)))
    open_ = np.r_[close[0], close[:-1]]
    high = np.maximum(open_, close) * np.exp(np.abs(rng.normal(0.0, 0.005, N_BARS)))
    low = np.minimum(open_, close) * np.exp(-np.abs(rng.normal(0.0, 0.005, N_BARS)))
    return high, low, close


def _bars_and_outputs() -> tuple[Bars, Bars]:
    return _bars(), tuple(np.empty(N_BARS) for _ in range(3))


def _adx_all_talib(b: Bars) -> Any:
    return talib.ADX(*b, PERIOD), talib.PLUS_DI(*b, PERIOD), talib.MINUS_DI(*b, PERIOD)


BENCHMARKS: list[Bench] = [
    Bench("ADX(14) 1M bars", _bars, lambda b: ind.adx(*b, PERIOD), lambda b: talib.ADX(*b, PERIOD), "talib.ADX", 1.0),
    Bench(
        "ADX(14) +DI -DI 1M bars",
        _bars,
        lambda b: ind.adx(*b, PERIOD),
        _adx_all_talib,
        "talib.ADX+PLUS_DI+MINUS_DI",
        1.0,
    ),
    Bench("ATR(14) 1M bars", _bars, lambda b: ind.atr(*b, PERIOD), lambda b: talib.ATR(*b, PERIOD), "talib.ATR", 1.0),
    Bench(
        "RSI(14) 1M bars", _bars, lambda b: ind.rsi(b[2], PERIOD), lambda b: talib.RSI(b[2], PERIOD), "talib.RSI", 1.0
    ),
    Bench(
        "ADX(14) kernel, preallocated 1M bars",
        _bars_and_outputs,
        lambda d: kernels.adx_nb(*d[0], PERIOD, *d[1]),
        lambda d: talib.ADX(*d[0], PERIOD),
        "talib.ADX",
        1.0,
    ),
    Bench(
        "ATR(14) kernel, preallocated 1M bars",
        _bars_and_outputs,
        lambda d: kernels.atr_nb(*d[0], PERIOD, d[1][0]),
        lambda d: talib.ATR(*d[0], PERIOD),
        "talib.ATR",
        1.0,
    ),
    Bench(
        "RSI(14) kernel, preallocated 1M bars",
        _bars_and_outputs,
        lambda d: kernels.rsi_nb(d[0][2], PERIOD, d[1][0]),
        lambda d: talib.RSI(d[0][2], PERIOD),
        "talib.RSI",
        1.0,
    ),
]
