"""Technical indicators: moving averages, true range, ATR, ADX/DI, RSI, Bollinger, choppiness, volatility.

Conventions shared by every function here:

* Input is a numpy array or a pandas Series (a one-column DataFrame also works). pandas in gives a
  Series back with the input's index, named after the indicator; arrays give arrays. When several
  pandas inputs are passed (high, low, close) their indexes must be identical.
* Warm-up positions are NaN, never zero. Where each first value lands is stated per function and
  matches TA-Lib's lookback wherever TA-Lib has the indicator.
* Leading NaNs: a series may start late. A bar is valid when every input is present there; the
  leading run of invalid bars is returned as NaN and the warm-up starts at the first valid bar,
  as if the series began there. A NaN after the first valid bar is an error, never skipped.
* ``ValueError`` for: inputs of different lengths, infinite values, a NaN after the first valid
  bar, ``high < low`` on any valid bar, a period that is not an integer, below its minimum or
  longer than the valid data, and non-positive prices where a logarithm is taken.

References: J. Welles Wilder, *New Concepts in Technical Trading Systems* (1978) for true range,
ATR, DMI/ADX and RSI; John Bollinger, *Bollinger on Bollinger Bands* (2001); E. W. Dreiss's
Choppiness Index as documented by Stock.Indicators (DaveSkender/Stock.Indicators) and TradingView.
The TA-Lib C library (ta-lib.org) is the reference implementation for seeding and warm-up.
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import numpy as np
import pandas as pd

from quant._kernels import indicators as _k
from quant._kernels import rolling as _r
from quant._validation import FloatArray, as_1d, check_period, same_length, wrap_like

__all__ = [
    "ADXResult",
    "BollingerResult",
    "adx",
    "atr",
    "bollinger",
    "bollinger_bandwidth",
    "choppiness",
    "ema",
    "realized_volatility",
    "rsi",
    "sma",
    "true_range",
]


class ADXResult(NamedTuple):
    """ADX with its directional indicators (Series for pandas input, arrays otherwise)."""

    adx: Any
    plus_di: Any
    minus_di: Any


class BollingerResult(NamedTuple):
    """Bollinger middle (SMA), upper and lower bands (Series for pandas input, arrays otherwise)."""

    middle: Any
    upper: Any
    lower: Any


class _Prepared(NamedTuple):
    arrays: list[FloatArray]  # each sliced from the first valid bar
    start: int  # index of the first valid bar
    n: int  # full length, warm-up included
    template: Any  # the pandas input to take the index from, or None


def _prepare(**inputs: Any) -> _Prepared:
    """Validate aligned inputs, find the first valid bar and reject any later NaN."""
    arrays = {name: as_1d(value, name, allow_nan=True) for name, value in inputs.items()}
    n = same_length(**arrays)
    template = None
    for name, value in inputs.items():
        if isinstance(value, (pd.Series, pd.DataFrame)):
            if template is None:
                template = value
            elif not value.index.equals(template.index):
                raise ValueError(f"{name} does not have the same index as the other inputs")
    values = list(arrays.values())
    if len(values) == 3:
        start = _k.first_complete_nb(*values)
        clean = start < n and _k.hlc_clean_nb(*(v[start:] for v in values))
    else:
        start = _k.first_valid_nb(values[0])
        clean = start < n and _k.clean_nb(values[0][start:])
    if not clean:
        _raise_fault(arrays, start, n)
    sliced = [arr[start:] if start else arr for arr in arrays.values()]
    return _Prepared(sliced, start, n, template)


def _raise_fault(arrays: dict[str, FloatArray], start: int, n: int) -> None:
    """Say what is wrong with inputs that failed the fast check (slow path, errors only)."""
    if start == n:
        raise ValueError(f"{', '.join(arrays)}: no bar where every input is present (all NaN)")
    for name, arr in arrays.items():
        gaps = np.flatnonzero(np.isnan(arr[start:]))
        if gaps.size:
            raise ValueError(
                f"{name} contains NaN at position {start + int(gaps[0])}, after the first valid bar {start}"
            )
    below = np.flatnonzero(arrays["high"][start:] < arrays["low"][start:])
    raise ValueError(f"high < low at position {start + int(below[0])}")


def _hlc(prep: _Prepared) -> tuple[FloatArray, FloatArray, FloatArray]:
    high, low, close = prep.arrays
    return high, low, close


def _period(period: int, prep: _Prepared, name: str = "period", minimum: int = 1) -> int:
    return check_period(period, prep.n - prep.start, name, minimum)


def _finish(prep: _Prepared, values: FloatArray, name: str) -> Any:
    """Put the leading invalid run back as NaN and restore the pandas index."""
    if prep.start:
        full = np.full(prep.n, np.nan)
        full[prep.start :] = values
        values = full
    return wrap_like(prep.template, values, name) if prep.template is not None else values


class _Fast(NamedTuple):
    arrays: list[FloatArray]  # full length, contiguous float64
    start: int  # index of the first valid bar
    period: int


def _fast(period: Any, **inputs: Any) -> _Fast | None:
    """The checks that need no scan of the data, for plain float64 ndarrays.

    Returns None whenever anything is off (pandas or other input, lengths, no valid bar, an
    infinite value in the leading run, a bad period): the caller then takes the full path, which
    raises the same errors as ever, in the same order. The scan of the data itself (NaN, infinite
    values, high < low) is fused into the kernel, which reports a fault by returning False.
    """
    arrays = []
    for value in inputs.values():
        if type(value) is not np.ndarray or value.dtype != np.float64 or value.ndim != 1:
            return None
        arrays.append(np.ascontiguousarray(value))  # no copy when already contiguous
    n = arrays[0].shape[0]
    if n == 0 or any(arr.shape[0] != n for arr in arrays):
        return None
    start = _k.first_complete_nb(*arrays) if len(arrays) == 3 else _k.first_valid_nb(arrays[0])
    if start == n or (start and any(np.isinf(arr[:start]).any() for arr in arrays)):
        return None
    if isinstance(period, bool) or not isinstance(period, (int, np.integer)) or not 1 <= period <= n - start:
        return None
    return _Fast(arrays, start, int(period))


def _outputs(n: int, start: int, count: int) -> list[FloatArray]:
    """Outputs allocated by numpy (huge pages for large arrays), the leading invalid run set to NaN."""
    outs = [np.empty(n) for _ in range(count)]
    for out in outs:
        out[:start] = np.nan
    return outs


def _full_path_fault(fault: bool) -> None:
    if fault:  # the kernels' checks are exact: a fault they report is one the full path raises
        raise AssertionError("indicator kernel reported a fault the input checks did not find")


def sma(x: Any, period: int) -> Any:
    """Simple moving average.

    Mean of the last ``period`` values; the first value is at index ``period - 1`` (TA-Lib SMA).

    Parameters
    ----------
    x : array or Series
    period : int, >= 1

    Returns
    -------
    ndarray or Series named ``"sma"``.
    """
    prep = _prepare(x=x)
    p = _period(period, prep)
    return _finish(prep, _k.sma_nb(prep.arrays[0], p), "sma")


def ema(x: Any, period: int) -> Any:
    """Exponential moving average, seeded like TA-Lib's EMA.

    ``alpha = 2 / (period + 1)``. The first value, at index ``period - 1``, is the simple mean of the
    first ``period`` values; after it ``ema[t] = ema[t-1] + alpha * (x[t] - ema[t-1])``. This is
    TA-Lib's default (non-Metastock) EMA, so the two agree from the first value. Note that
    pandas' ``ewm(span=period, adjust=False)`` seeds with ``x[0]`` instead and differs early on.

    Returns
    -------
    ndarray or Series named ``"ema"``.
    """
    prep = _prepare(x=x)
    p = _period(period, prep)
    return _finish(prep, _k.ema_nb(prep.arrays[0], p), "ema")


def true_range(high: Any, low: Any, close: Any) -> Any:
    """Wilder's true range: ``max(high, prev_close) − min(low, prev_close)``.

    Bar 0 has no previous close and is NaN, as in TA-Lib's TRANGE (ChartSchool's sheets use
    ``high − low`` there instead; :func:`choppiness` does too in its plain form).

    Returns
    -------
    ndarray or Series named ``"true_range"``, in price units.
    """
    prep = _prepare(high=high, low=low, close=close)
    return _finish(prep, _k.true_range_nb(*_hlc(prep)), "true_range")


def atr(high: Any, low: Any, close: Any, period: int = 14) -> Any:
    """Average true range with Wilder smoothing, seeded exactly as TA-Lib's ATR.

    Bar 0's true range is dropped (no previous close). The first ATR, at index ``period``, is the
    mean of TR[1..period]; after it ``atr[t] = (atr[t-1] * (period − 1) + TR[t]) / period``
    (Wilder's smoothing, alpha = 1/period). Stock.Indicators seeds the same way; ChartSchool keeps
    bar 0's ``high − low`` and starts one bar earlier. Price units, not annualised.

    Returns
    -------
    ndarray or Series named ``"atr"``.
    """
    fast = _fast(period, high=high, low=low, close=close)
    if fast is not None:
        start = fast.start
        h, lo, c = fast.arrays
        (out,) = _outputs(len(c), start, 1)
        if _k.atr_nb(h[start:], lo[start:], c[start:], fast.period, out[start:]):
            return out
    prep = _prepare(high=high, low=low, close=close)
    p = _period(period, prep)
    values = np.empty(prep.n - prep.start)
    _full_path_fault(not _k.atr_nb(*_hlc(prep), p, values))
    return _finish(prep, values, "atr")


def adx(high: Any, low: Any, close: Any, period: int = 14) -> ADXResult:
    """Wilder's average directional index with +DI and −DI, seeded exactly as TA-Lib.

    +DM = up-move when it is positive and larger than the down-move, −DM symmetrically, else 0.
    The Wilder sums of TR, +DM and −DM are seeded with bars 1..period−1 and then updated as
    ``s = s − s/period + value`` from bar ``period``, where ``±DI = 100·s(±DM)/s(TR)`` start
    (TA-Lib PLUS_DI/MINUS_DI). ``DX = 100·|+DI − −DI| / (+DI + −DI)``; ADX is the mean of DX over
    bars period..2·period−1, so its first value is at ``2·period − 1`` (bar 27 for 14), then Wilder
    smoothed (TA-Lib ADX). Degenerate windows: DIs are 0 when the smoothed TR is 0; where DX is
    0/0 it counts as 0 in the seed mean and ADX carries its last value, as TA-Lib does (TA-Lib
    tests |x| < 1e-8, this tests exact zero, so prices far below 1 differ from TA-Lib there).

    Returns
    -------
    ADXResult(adx, plus_di, minus_di), each in [0, 100]; Series named ``adx``, ``plus_di`` and
    ``minus_di`` for pandas input.
    """
    fast = _fast(period, high=high, low=low, close=close)
    if fast is not None:
        start = fast.start
        h, lo, c = fast.arrays
        outs = _outputs(len(c), start, 3)
        adx_, plus, minus = (out[start:] for out in outs)
        if _k.adx_nb(h[start:], lo[start:], c[start:], fast.period, adx_, plus, minus):
            return ADXResult(*outs)
    prep = _prepare(high=high, low=low, close=close)
    p = _period(period, prep)
    values = _outputs(prep.n - prep.start, 0, 3)
    _full_path_fault(not _k.adx_nb(*_hlc(prep), p, *values))
    names = ADXResult._fields
    return ADXResult(*(_finish(prep, v, name) for v, name in zip(values, names, strict=True)))


def rsi(close: Any, period: int = 14) -> Any:
    """Wilder's relative strength index, seeded exactly as TA-Lib's RSI.

    The average gain and loss start, at index ``period``, as the means of the first ``period``
    changes, then follow Wilder's smoothing ``avg[t] = (avg[t-1]·(period − 1) + x[t]) / period``.
    ``RSI = 100·avg_gain / (avg_gain + avg_loss)`` (= 100 − 100/(1 + RS)). Where both averages are
    zero (a flat window) RSI is 50, neutral; TA-Lib returns 0 there, which would read as oversold.
    ChartSchool's sheet seeds its averages at zero instead, so its first values differ.

    Returns
    -------
    ndarray or Series named ``"rsi"``, in [0, 100].
    """
    fast = _fast(period, close=close)
    if fast is not None:
        start = fast.start
        (out,) = _outputs(len(fast.arrays[0]), start, 1)
        if _k.rsi_nb(fast.arrays[0][start:], fast.period, out[start:]):
            return out
    prep = _prepare(close=close)
    p = _period(period, prep)
    values = np.empty(prep.n - prep.start)
    _full_path_fault(not _k.rsi_nb(prep.arrays[0], p, values))
    return _finish(prep, values, "rsi")


def bollinger(close: Any, period: int = 20, k: float = 2.0) -> BollingerResult:
    """Bollinger Bands: SMA ± ``k`` population standard deviations (ddof = 0).

    Matches TA-Lib ``BBANDS(matype=0, nbdevup=k, nbdevdn=k)``, Stock.Indicators and ChartSchool,
    which all use the population standard deviation; first value at index ``period - 1``.
    The deviation is computed with a sliding Welford update rather than TA-Lib's
    sum-of-squares formula, so it stays accurate for prices far from zero.

    Returns
    -------
    BollingerResult(middle, upper, lower); Series named ``middle``, ``upper``, ``lower`` for pandas.
    """
    k = _check_k(k)
    prep = _prepare(close=close)
    p = _period(period, prep)
    values = _r.bollinger_nb(prep.arrays[0], p, k)
    return BollingerResult(*(_finish(prep, v, name) for v, name in zip(values, BollingerResult._fields, strict=True)))


def bollinger_bandwidth(close: Any, period: int = 20, k: float = 2.0) -> Any:
    """Bollinger bandwidth ``(upper − lower) / middle`` = ``2·k·σ / SMA`` (a fraction, not %).

    Same conventions as :func:`bollinger` (ddof = 0). This is Stock.Indicators' ``width``;
    ChartSchool's ``WidthBand`` column is the same quantity times 100. NaN where the SMA is 0.

    Returns
    -------
    ndarray or Series named ``"bandwidth"``.
    """
    k = _check_k(k)
    prep = _prepare(close=close)
    p = _period(period, prep)
    middle, upper, lower = _r.bollinger_nb(prep.arrays[0], p, k)
    with np.errstate(divide="ignore", invalid="ignore"):
        width = np.where(middle != 0.0, (upper - lower) / middle, np.nan)
    return _finish(prep, width, "bandwidth")


def choppiness(high: Any, low: Any, close: Any, period: int = 14, true_range_extremes: bool = False) -> Any:
    """Choppiness index ``100·log10(ΣTR / (max − min)) / log10(period)`` over ``period`` bars.

    Plain form (default, TradingView's ``sum(atr(1), n) / (highest(high) − lowest(low))``): the
    range is max high − min low over the window and bar 0's TR is ``high − low``, so the first value
    is at index ``period − 1``. It is ≥ 0 for valid OHLC, and ≤ 100 except after a gap into the
    window (the first bar's TR reaches back to a close outside the window's range).

    ``true_range_extremes=True`` (Stock.Indicators' Chop): each bar spans its true high
    ``max(high, prev close)`` and true low ``min(low, prev close)``; the range is max true high −
    min true low. It needs a previous close for every bar of the window, so the first value is at
    index ``period``, and it always lies in [0, 100]. NaN where the range is zero (a flat window).

    Parameters
    ----------
    period : int, >= 2 (log10(1) = 0).

    Returns
    -------
    ndarray or Series named ``"chop"``.
    """
    prep = _prepare(high=high, low=low, close=close)
    p = _period(period, prep, minimum=2)
    return _finish(prep, _r.choppiness_nb(*_hlc(prep), p, bool(true_range_extremes)), "chop")


def realized_volatility(close: Any, window: int, periods_per_year: float) -> Any:
    """Annualised rolling volatility of log returns.

    ``sqrt(periods_per_year) · std(log(close[t]/close[t−1]))`` over the last ``window`` returns,
    with the sample standard deviation (ddof = 1, unbiased variance of the returns, as pandas'
    ``rolling().std()``) and no mean removal other than the window's own mean. The first value is
    at index ``window`` (``window`` returns need ``window + 1`` closes). Use 252 for daily equity
    bars, 365 for daily crypto, 24·365 for hourly crypto.

    Parameters
    ----------
    close : array or Series, strictly positive
    window : int, >= 2, at most the number of returns
    periods_per_year : float, > 0

    Returns
    -------
    ndarray or Series named ``"realized_vol"`` (a fraction per year: 0.2 = 20 %).
    """
    if isinstance(periods_per_year, bool) or not isinstance(periods_per_year, (int, float, np.integer, np.floating)):
        raise ValueError(f"periods_per_year must be a number, got {periods_per_year!r}")
    ppy = float(periods_per_year)
    if not (math.isfinite(ppy) and ppy > 0.0):
        raise ValueError(f"periods_per_year must be positive and finite, got {periods_per_year!r}")
    prep = _prepare(close=close)
    prices = prep.arrays[0]
    if (prices <= 0.0).any():
        raise ValueError(f"close must be strictly positive, got {float(prices.min())}")
    w = check_period(window, prep.n - prep.start - 1, "window", minimum=2)
    return _finish(prep, _r.realized_volatility_nb(prices, w, ppy), "realized_vol")


def _check_k(k: float) -> float:
    if isinstance(k, bool) or not isinstance(k, (int, float, np.integer, np.floating)):
        raise ValueError(f"k must be a number, got {k!r}")
    value = float(k)
    if not (math.isfinite(value) and value >= 0.0):
        raise ValueError(f"k must be finite and >= 0, got {k!r}")
    return value
