"""quant.indicators: invariants (hypothesis), pandas round trip, leading NaNs and bad input."""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd
import pytest
import talib
from hypothesis import given
from hypothesis import strategies as st

from desk.local import catalogue
from quant import indicators as ind

FloatArray = npt.NDArray[np.float64]


@st.composite
def ohlc_bars(draw: st.DrawFn, min_size: int = 30, max_size: int = 200) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Valid random OHLC: a log random walk of opens/closes, high/low enclosing both."""
    n = draw(st.integers(min_size, max_size))
    seed = draw(st.integers(0, 2**32 - 1))
    vol = draw(st.sampled_from([0.0, 1e-4, 0.01, 0.1]))
    rng = np.random.default_rng(seed)
    close = 100.0 * np.exp(np.cumsum(rng.normal(0.0, vol, n)))
    if draw(st.booleans()):
        close = np.round(close, 1)  # ties and flat stretches
    open_ = np.r_[close[0], close[:-1]] * np.exp(rng.normal(0.0, vol / 2, n))
    high = np.maximum(open_, close) * (1 + np.abs(rng.normal(0.0, vol, n)))
    low = np.minimum(open_, close) * (1 - np.abs(rng.normal(0.0, vol, n)))
    return high, low, close


PERIODS = st.integers(2, 25)


def defined(x: Any) -> FloatArray:
    arr = np.asarray(x, dtype=float)
    return arr[~np.isnan(arr)]


@given(ohlc_bars(), PERIODS)
def test_atr_and_true_range_are_non_negative(bars: tuple[FloatArray, ...], period: int) -> None:
    high, low, close = bars
    assert (defined(ind.true_range(high, low, close)) >= 0).all()
    assert (defined(ind.atr(high, low, close, period)) >= 0).all()


@given(ohlc_bars(), PERIODS)
def test_rsi_lies_in_0_100(bars: tuple[FloatArray, ...], period: int) -> None:
    out = defined(ind.rsi(bars[2], period))
    assert out.size > 0
    assert ((out >= 0) & (out <= 100)).all()


@given(ohlc_bars(), st.integers(2, 14))
def test_adx_and_di_lie_in_0_100(bars: tuple[FloatArray, ...], period: int) -> None:
    result = ind.adx(*bars, period)
    # +DM <= TR bar by bar, but the two Wilder sums are rounded separately: allow one ulp over 100
    for series in result:
        out = defined(series)
        assert ((out >= 0) & (out <= 100 + 1e-9)).all()


@given(ohlc_bars(), PERIODS, st.floats(0.0, 4.0))
def test_bollinger_bands_are_ordered(bars: tuple[FloatArray, ...], period: int, k: float) -> None:
    bands = ind.bollinger(bars[2], period, k)
    middle, upper, lower = (np.asarray(b)[period - 1 :] for b in bands)
    assert (upper >= middle).all()
    assert (middle >= lower).all()
    assert (defined(ind.bollinger_bandwidth(bars[2], period, k)) >= 0).all()


@given(ohlc_bars(), PERIODS)
def test_bollinger_deviation_equals_the_exact_population_deviation(bars: tuple[FloatArray, ...], period: int) -> None:
    close = bars[2]
    half_width = np.asarray(ind.bollinger(close, period, 1.0).upper) - np.asarray(ind.sma(close, period))
    exact = np.lib.stride_tricks.sliding_window_view(close, period).std(axis=1, ddof=0)
    np.testing.assert_allclose(half_width[period - 1 :], exact, rtol=0.0, atol=1e-9 * close.max())


@given(ohlc_bars(), PERIODS)
def test_choppiness_with_true_extremes_lies_in_0_100(bars: tuple[FloatArray, ...], period: int) -> None:
    out = defined(ind.choppiness(*bars, period, true_range_extremes=True))
    assert ((out >= -1e-9) & (out <= 100 + 1e-9)).all()
    assert (defined(ind.choppiness(*bars, period)) >= -1e-9).all()


def test_plain_choppiness_can_exceed_100_after_a_gap_as_documented() -> None:
    # Given flat bars after a gap down: the first bar of the window reaches back to a close
    # far above the window's own high-low range
    high = np.r_[200.0, np.full(5, 101.0)]
    low = np.r_[199.0, np.full(5, 100.0)]
    close = np.r_[200.0, np.full(5, 100.5)]
    # Then the plain form exceeds 100 while the true-extremes form stays within [0, 100]
    assert ind.choppiness(high, low, close, 5)[-1] > 100
    assert 0 <= ind.choppiness(high, low, close, 5, true_range_extremes=True)[-1] <= 100


@given(ohlc_bars(min_size=40), st.integers(2, 30))
def test_realized_volatility_is_non_negative_and_scales_with_sqrt_periods(
    bars: tuple[FloatArray, ...], window: int
) -> None:
    close = bars[2]
    daily = np.asarray(ind.realized_volatility(close, window, 1))
    annual = np.asarray(ind.realized_volatility(close, window, 252))
    assert (defined(daily) >= 0).all()
    np.testing.assert_allclose(annual, daily * np.sqrt(252), rtol=1e-12, equal_nan=True)
    assert np.isnan(daily[:window]).all() and not np.isnan(daily[window:]).any()


def test_rsi_of_a_flat_window_is_neutral_50() -> None:
    # TA-Lib returns 0 here; this library documents 50 (no movement is not oversold)
    close = np.r_[np.linspace(100, 101, 20), np.full(40, 101.0)]
    assert ind.rsi(np.full(30, 7.0), 14)[14:].tolist() == [50.0] * 16
    assert ind.rsi(close, 14)[-1] == 100.0


# ---- pandas in, pandas out ---------------------------------------------------------------------


def test_pandas_input_returns_series_with_the_same_index() -> None:
    # Given real hourly OHLC as pandas Series
    df = catalogue.coinbase_btcusd_hourly().iloc[:500]
    h, lo, c = df["high"], df["low"], df["close"]
    # When every indicator is computed
    singles = {
        "sma": ind.sma(c, 10),
        "ema": ind.ema(c, 10),
        "true_range": ind.true_range(h, lo, c),
        "atr": ind.atr(h, lo, c),
        "rsi": ind.rsi(c),
        "bandwidth": ind.bollinger_bandwidth(c),
        "chop": ind.choppiness(h, lo, c),
        "realized_vol": ind.realized_volatility(c, 24, 24 * 365),
    }
    tuples = [*ind.adx(h, lo, c), *ind.bollinger(c)]
    # Then each is a Series on the input's index, named after what it holds
    for name, out in singles.items():
        assert isinstance(out, pd.Series)
        assert out.index.equals(df.index)
        assert out.name == name
    for out, name in zip(tuples, ("adx", "plus_di", "minus_di", "middle", "upper", "lower"), strict=True):
        assert isinstance(out, pd.Series)
        assert out.index.equals(df.index)
        assert out.name == name
    # And the values are those of the numpy path
    np.testing.assert_array_equal(singles["atr"].to_numpy(), ind.atr(h.to_numpy(), lo.to_numpy(), c.to_numpy()))


def test_numpy_input_returns_arrays() -> None:
    close = catalogue.sp500_index().to_numpy()[:100]
    assert isinstance(ind.rsi(close), np.ndarray)
    assert isinstance(ind.bollinger(close).upper, np.ndarray)
    assert isinstance(ind.adx(close + 1, close - 1, close).adx, np.ndarray)


# ---- leading NaNs: a series that starts later ---------------------------------------------------


def test_leading_nan_run_starts_the_warm_up_at_the_first_valid_bar() -> None:
    # Given ETH bars that start later than BTC's, on BTC's calendar (leading NaNs)
    btc = catalogue.bitstamp_daily()["BTC"]
    eth = catalogue.bitstamp_daily()["ETH"].reindex(btc.index)
    first = int(np.flatnonzero(eth["close"].notna().to_numpy())[0])
    assert first > 100
    h, lo, c = eth["high"], eth["low"], eth["close"]
    # When indicators are computed on the padded series
    atr = ind.atr(h, lo, c, 14)
    rsi = ind.rsi(c, 14)
    adx = ind.adx(h, lo, c, 14)
    # Then the padding is NaN, the warm-up runs from the first valid bar, and the values equal
    # those computed on the series trimmed to start there (and TA-Lib's, which skips leading NaN)
    trimmed = eth.iloc[first:]
    assert atr.first_valid_index() == btc.index[first + 14]
    assert adx.adx.first_valid_index() == btc.index[first + 27]
    np.testing.assert_array_equal(atr.iloc[first:].to_numpy(), ind.atr(trimmed.high, trimmed.low, trimmed.close))
    np.testing.assert_array_equal(rsi.iloc[first:].to_numpy(), ind.rsi(trimmed.close))
    np.testing.assert_allclose(rsi.to_numpy(), talib.RSI(c.to_numpy(), 14), rtol=1e-9, equal_nan=True)
    np.testing.assert_allclose(
        adx.adx.to_numpy(), talib.ADX(h.to_numpy(), lo.to_numpy(), c.to_numpy(), 14), rtol=1e-9, equal_nan=True
    )


def test_a_bar_is_valid_only_when_high_low_and_close_are_all_present() -> None:
    close = np.linspace(100, 110, 40)
    high, low = close + 1, close - 1
    close[:3] = np.nan  # close starts at bar 3, high and low at bar 0
    out = ind.true_range(high, low, close)
    assert np.isnan(out[:4]).all()  # bars 0-2 incomplete, bar 3 has no previous close
    assert not np.isnan(out[4:]).any()


# ---- bad input ----------------------------------------------------------------------------------

GOOD = np.linspace(100.0, 120.0, 50)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: ind.atr(GOOD + 1, GOOD - 1, GOOD[:-1]), "same length"),
        (lambda: ind.atr(GOOD - 1, GOOD + 1, GOOD), "high < low at position 0"),
        (lambda: ind.adx(np.r_[GOOD[:10] + 1, GOOD[10:] - 2], GOOD - 1, GOOD), "high < low at position 10"),
        (lambda: ind.rsi(np.r_[GOOD[:20], np.nan, GOOD[21:]]), "NaN at position 20"),
        (
            lambda: ind.atr(GOOD + 1, np.r_[GOOD[:30] - 1, np.nan, GOOD[31:] - 1], GOOD),
            "low contains NaN at position 30",
        ),
        (lambda: ind.sma(np.full(10, np.nan), 3), "all NaN"),
        (lambda: ind.sma(np.r_[GOOD[:5], np.inf], 3), "infinite"),
        (lambda: ind.sma(GOOD, 0), "period must be >= 1"),
        (lambda: ind.ema(GOOD, 51), "longer than the data"),
        (lambda: ind.rsi(np.r_[np.full(45, np.nan), GOOD[:5]], 6), "longer than the data"),
        (lambda: ind.atr(GOOD + 1, GOOD - 1, GOOD, 2.5), "must be an integer"),
        (lambda: ind.choppiness(GOOD + 1, GOOD - 1, GOOD, 1), "period must be >= 2"),
        (lambda: ind.bollinger(GOOD, 20, -1.0), "k must be finite and >= 0"),
        (lambda: ind.realized_volatility(GOOD, 1, 252), "window must be >= 2"),
        (lambda: ind.realized_volatility(GOOD, 50, 252), "longer than the data"),
        (lambda: ind.realized_volatility(GOOD, 10, 0), "periods_per_year must be positive"),
        (lambda: ind.realized_volatility(np.r_[GOOD[:10], 0.0, GOOD[11:]], 10, 252), "strictly positive"),
        (lambda: ind.sma(np.ones((5, 2)), 2), "one-dimensional"),
        (lambda: ind.sma(["a", "b"], 1), "numeric"),
        (
            lambda: ind.true_range(pd.Series(GOOD + 1), pd.Series(GOOD - 1, index=GOOD), pd.Series(GOOD)),
            "same index",
        ),
    ],
)
def test_bad_input_raises_a_value_error_that_says_what_is_wrong(call: Any, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        call()


# ---- the fast path (checks fused into the kernels) agrees with the full path ----------------------


@given(ohlc_bars(), st.integers(2, 14), st.integers(0, 5))
def test_numpy_fast_path_equals_the_pandas_path(bars: tuple[FloatArray, ...], period: int, lead: int) -> None:
    # Given bars with a leading NaN run, as numpy arrays (fast path) and as Series (full path)
    high, low, close = (np.r_[np.full(lead, np.nan), a] for a in bars)
    series = [pd.Series(a) for a in (high, low, close)]
    # Then ATR, RSI and ADX agree exactly between the two paths
    np.testing.assert_array_equal(ind.atr(high, low, close, period), ind.atr(*series, period).to_numpy())
    np.testing.assert_array_equal(ind.rsi(close, period), ind.rsi(series[2], period).to_numpy())
    for fast, full in zip(ind.adx(high, low, close, period), ind.adx(*series, period), strict=True):
        np.testing.assert_array_equal(fast, full.to_numpy())


@pytest.mark.parametrize("position", [0, 1, 13, 14, 15, 27, 28, 300, 599])
@pytest.mark.parametrize(
    ("column", "value", "message"),
    [
        ("high", np.inf, "high contains infinite values"),
        ("low", -np.inf, "low contains infinite values"),
        ("close", np.inf, "close contains infinite values"),
        ("close", np.nan, "close contains NaN at position"),
        ("high", np.nan, "high contains NaN at position"),
        ("low", 1e9, "high < low at position"),
    ],
)
def test_faults_found_inside_the_kernels_raise_the_usual_errors(
    position: int, column: str, value: float, message: str
) -> None:
    # Given valid bars long enough for several kernel chunks, with one bad value at `position`
    close = np.linspace(100.0, 130.0, 600)
    bars = {"high": close + 1.0, "low": close - 1.0, "close": close.copy()}
    bars[column][position] = value
    if position == 0 and np.isnan(value):
        # A NaN on bar 0 is a leading NaN run: the series starts at bar 1, no error
        assert np.isnan(ind.atr(**bars, period=14)[:15]).all()
        return
    # Then ATR and ADX (and RSI for a bad close) raise the error of the full input checks
    if np.isnan(value) or value == 1e9:
        message += f" {position}"
    for call in (lambda: ind.atr(**bars, period=14), lambda: ind.adx(**bars, period=14)):
        with pytest.raises(ValueError, match=message):
            call()
    if column == "close" and position:
        with pytest.raises(ValueError, match=message):
            ind.rsi(bars["close"], 14)


def test_an_infinite_value_in_the_leading_nan_run_is_still_an_error() -> None:
    close = np.r_[np.full(5, np.nan), np.linspace(100.0, 110.0, 40)]
    high, low = close + 1.0, close - 1.0
    high[2] = np.inf
    with pytest.raises(ValueError, match="high contains infinite values"):
        ind.atr(high, low, close, 14)
    with pytest.raises(ValueError, match="close contains infinite values"):
        ind.rsi(np.r_[np.inf, np.nan, close[5:]], 14)


def test_non_contiguous_and_float32_input_give_the_same_values() -> None:
    close = np.linspace(100.0, 130.0, 200) + np.sin(np.arange(200))
    strided = np.repeat(close, 2)[::2]
    assert not strided.flags.c_contiguous
    np.testing.assert_array_equal(ind.rsi(strided, 14), ind.rsi(close, 14))
    np.testing.assert_array_equal(ind.atr(strided + 1, strided - 1, strided), ind.atr(close + 1, close - 1, close))
    np.testing.assert_allclose(ind.rsi(close.astype(np.float32), 14), ind.rsi(close, 14), rtol=1e-5)
