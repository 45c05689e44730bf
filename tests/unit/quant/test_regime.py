"""quant.regime: rule-based regimes on real S&P 500 / BTC bars, and their Markov statistics."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from desk.local import catalogue
from quant import indicators
from quant.markov_switching import fit_markov_switching
from quant.regime import (
    FEATURE_COLUMNS,
    Regime,
    RegimeThresholds,
    classify_regimes,
    classify_regimes_from_close,
    label_features,
    next_regime_probabilities,
    regime_features,
    regime_history,
    synthetic_range_from_close,
    transition_matrix,
)

SMALL = RegimeThresholds(history=60, min_history=20)
labels_strategy = st.lists(st.sampled_from([*Regime, None, "CRISIS", "TRENDING"]), min_size=0, max_size=80)


def _ohlc() -> pd.DataFrame:
    return catalogue.sp500_ohlcv()


def _steady_trend(n: int = 600, drift: float = 0.002, seed: int = 3) -> pd.DataFrame:
    """A steady trend with small noise: each bar's range around a close that moves ``drift`` a bar."""
    rng = np.random.default_rng(seed)
    close = 100.0 * np.exp(np.cumsum(drift + 0.0005 * rng.standard_normal(n)))
    index = pd.bdate_range("2020-01-01", periods=n)
    return pd.DataFrame({"high": close * 1.001, "low": close * 0.999, "close": close}, index=index)


# ---- features: the indicators, and trailing percentiles as scipy computes them ----


def test_features_are_the_indicators_and_scipy_percentiles_on_real_bars() -> None:
    # Given S&P 500 daily bars
    o = _ohlc()
    th = RegimeThresholds()
    # When the features are computed
    f = regime_features(o["high"], o["low"], o["close"], th)
    # Then the indicator columns are the indicators'
    dmi = indicators.adx(o["high"], o["low"], o["close"], 14)
    pd.testing.assert_series_equal(f["adx"], dmi.adx, check_names=False)
    pd.testing.assert_series_equal(
        f["chop"], indicators.choppiness(o["high"], o["low"], o["close"], 14), check_names=False
    )
    vol = indicators.realized_volatility(o["close"], 20, 252)
    pd.testing.assert_series_equal(f["realized_vol"], vol, check_names=False)
    # and the percentile ranks and median ratios match scipy / numpy on the trailing window
    v = vol.to_numpy()
    bw = f["bandwidth"].to_numpy()
    for t in (300, 800, 2450, len(o) - 1):
        window = v[max(0, t - th.history + 1) : t + 1]
        window = window[~np.isnan(window)]
        assert f["vol_pct"].iloc[t] == pytest.approx(stats.percentileofscore(window, v[t], kind="weak") / 100)
        assert f["vol_ratio"].iloc[t] == pytest.approx(v[t] / np.median(window))
        bw_window = bw[max(0, t - th.history + 1) : t + 1]
        bw_window = bw_window[~np.isnan(bw_window)]
        assert f["bandwidth_pct"].iloc[t] == pytest.approx(stats.percentileofscore(bw_window, bw[t], kind="weak") / 100)
    assert list(f.columns) == list(FEATURE_COLUMNS)
    assert f.index.equals(o.index)


# ---- the labels on known episodes ----


def test_autumn_2008_is_a_crisis_and_2017_is_not() -> None:
    # Given S&P 500 daily OHLC 1999-2018
    o = _ohlc()
    # When classified with the default thresholds
    labels = classify_regimes(o["high"], o["low"], o["close"])
    # Then October-November 2008 (Lehman, the crash) is labelled CRISIS, calm 2017 never is
    autumn = labels.loc["2008-10-01":"2008-11-30"]
    assert (autumn == Regime.CRISIS).mean() >= 0.9
    assert (labels.loc["2017"] != Regime.CRISIS).all()


def test_close_only_classification_flags_2008_and_march_2020_on_the_index_level() -> None:
    # Given the S&P 500 index level (closes only, 1990-2022)
    level = catalogue.sp500_index()
    # When classified through the synthetic close-to-close range
    labels = classify_regimes_from_close(level)
    # Then the 2008 crash and the March 2020 collapse are crises
    assert (labels.loc["2008-10-01":"2008-11-30"] == Regime.CRISIS).mean() >= 0.9
    assert (labels.loc["2020-03-09":"2020-03-31"] == Regime.CRISIS).all()
    assert (labels.loc["2017"] != Regime.CRISIS).all()


@pytest.mark.parametrize("drift", [0.002, -0.002])
def test_a_steady_trend_is_trending(drift: float) -> None:
    # Given a steady synthetic up- (or down-) trend with small noise
    bars = _steady_trend(drift=drift)
    # When classified, from OHLC and from closes alone
    labels = classify_regimes(bars["high"], bars["low"], bars["close"], SMALL)
    close_only = classify_regimes_from_close(bars["close"], SMALL)
    # Then every labelled bar is TRENDING
    for lab in (labels, close_only):
        done = lab.dropna()
        assert len(done) > 400
        assert (done == Regime.TRENDING).all()


def test_crisis_bars_are_the_markov_high_volatility_state() -> None:
    # Given S&P 500 bars 1999-2018 and a two-state Markov-switching fit of their daily % returns
    o = _ohlc()
    labels = classify_regimes(o["high"], o["low"], o["close"]).iloc[1:]
    ms = fit_markov_switching((100 * np.log(o["close"]).diff()).iloc[1:])
    # When we look at the bars the rules call CRISIS
    in_high = ms.smoothed[ms.high_vol_state] > 0.5
    crisis = (labels == Regime.CRISIS).to_numpy()
    # Then the statistical model puts nearly all of them in its volatile state, far more than the rest
    assert in_high[crisis].mean() >= 0.9
    assert in_high[crisis].mean() > 2 * in_high[~crisis].mean()


def test_precedence_crisis_then_trending_then_choppy_then_ranging() -> None:
    # Given feature rows built to satisfy several rules at once
    base = {"plus_di": 20.0, "minus_di": 20.0, "bandwidth": 0.05, "realized_vol": 0.2}
    rows = [
        {"adx": 40, "chop": 30, "bandwidth_pct": 0.9, "vol_pct": 0.99, "vol_ratio": 3.0},  # crisis + trend
        {"adx": 40, "chop": 30, "bandwidth_pct": 0.9, "vol_pct": 0.99, "vol_ratio": 1.5},  # extreme pct, not x2
        {"adx": 22, "chop": 35, "bandwidth_pct": 0.9, "vol_pct": 0.5, "vol_ratio": 1.0},  # very directional
        {"adx": 30, "chop": 65, "bandwidth_pct": 0.9, "vol_pct": 0.5, "vol_ratio": 1.0},  # strong ADX but sideways
        {"adx": 15, "chop": 50, "bandwidth_pct": 0.2, "vol_pct": 0.5, "vol_ratio": 1.0},  # weak, narrow
        {"adx": 22, "chop": 50, "bandwidth_pct": 0.9, "vol_pct": 0.5, "vol_ratio": 1.0},  # no-man's-land
        {"adx": np.nan, "chop": 50, "bandwidth_pct": 0.9, "vol_pct": 0.5, "vol_ratio": 1.0},  # warm-up
    ]
    frame = pd.DataFrame([{**base, **r} for r in rows])[list(FEATURE_COLUMNS)]
    # When labelled
    labels = label_features(frame).tolist()
    # Then the documented precedence decides
    assert all(type(v) is Regime for v in labels[:-1])
    assert labels == [
        Regime.CRISIS,
        Regime.TRENDING,
        Regime.TRENDING,
        Regime.CHOPPY,
        Regime.RANGING,
        Regime.RANGING,
        None,
    ]


@settings(max_examples=20)
@given(seed=st.integers(0, 2**32 - 1), vol=st.floats(0.002, 0.05), drift=st.floats(-0.003, 0.003))
def test_every_bar_after_warmup_has_exactly_one_label(seed: int, vol: float, drift: float) -> None:
    # Given random OHLC bars (a random walk with random intraday ranges)
    rng = np.random.default_rng(seed)
    n = 160
    close = 100 * np.exp(np.cumsum(drift + vol * rng.standard_normal(n)))
    high = close * (1 + vol * rng.random(n))
    low = close * (1 - vol * rng.random(n))
    # When classified
    labels = classify_regimes(high, low, close, SMALL)
    features = regime_features(high, low, close, SMALL)
    # Then bars with incomplete features have no label, and each later bar exactly one regime
    complete = features.notna().all(axis=1).to_numpy()
    assert complete.sum() > 0
    first = int(np.argmax(complete))
    assert complete[first:].all()
    assert first <= SMALL.warmup
    assert all(v is None for v in labels.iloc[:first])
    assert all(isinstance(v, Regime) for v in labels.iloc[first:])


# ---- Markov statistics of a label sequence ----


def test_transition_matrix_of_a_hand_counted_sequence() -> None:
    # Given T T R T _ C: pairs T->T, T->R, R->T (the pairs touching the gap do not count)
    seq = ["TRENDING", Regime.TRENDING, Regime.RANGING, Regime.TRENDING, None, Regime.CRISIS]
    # When the matrix is estimated
    P = transition_matrix(seq)
    # Then T splits 1/2-1/2, R always goes to T, unseen rows are absorbing
    assert P.loc[Regime.TRENDING, Regime.TRENDING] == 0.5
    assert P.loc[Regime.TRENDING, Regime.RANGING] == 0.5
    assert P.loc[Regime.RANGING, Regime.TRENDING] == 1.0
    assert P.loc[Regime.CRISIS, Regime.CRISIS] == 1.0
    assert P.loc[Regime.CHOPPY, Regime.CHOPPY] == 1.0
    uniform = transition_matrix(seq, empty_row="uniform")
    np.testing.assert_allclose(uniform.loc[Regime.CRISIS], 0.25)
    # and from the last label (CRISIS, absorbing) the chain stays there
    assert next_regime_probabilities(seq, steps=3)[Regime.CRISIS] == 1.0


def test_transition_matrix_matches_a_pandas_crosstab_on_real_labels() -> None:
    # Given the labels of S&P 500 bars
    o = _ohlc()
    labels = classify_regimes(o["high"], o["low"], o["close"])
    # When estimated here and by an independent crosstab of (today, tomorrow)
    P = transition_matrix(labels)
    pairs = pd.DataFrame({"now": labels.iloc[:-1].to_numpy(), "next": labels.iloc[1:].to_numpy()}).dropna()
    ref = pd.crosstab(pairs["now"].map(str), pairs["next"].map(str), normalize="index")
    # Then they agree entry by entry
    for i in ref.index:
        for j in ref.columns:
            assert P.loc[Regime(i), Regime(j)] == pytest.approx(ref.loc[i, j], abs=1e-12)
    # and the k-step forecast is the k-th matrix power applied to the last regime
    last = labels.iloc[-1]
    expected = np.linalg.matrix_power(P.to_numpy(), 10)[list(P.index).index(last)]
    np.testing.assert_allclose(next_regime_probabilities(labels, 10).to_numpy(), expected)


@given(labels=labels_strategy, empty_row=st.sampled_from(["absorbing", "uniform"]))
def test_transition_matrix_is_row_stochastic_for_any_labels(labels: list[object], empty_row: str) -> None:
    P = transition_matrix(labels, empty_row=empty_row)  # type: ignore[arg-type]
    assert P.shape == (4, 4)
    assert (P.to_numpy() >= 0).all()
    np.testing.assert_allclose(P.sum(axis=1), 1.0, atol=1e-12)


@given(labels=labels_strategy, steps=st.integers(0, 60))
def test_next_regime_probabilities_form_a_distribution(labels: list[object], steps: int) -> None:
    if all(v is None for v in labels):
        with pytest.raises(ValueError, match="no labelled bar"):
            next_regime_probabilities(labels, steps)
        return
    probs = next_regime_probabilities(labels, steps)
    assert (probs >= 0).all()
    assert probs.sum() == pytest.approx(1.0, abs=1e-12)
    if steps == 0:
        last = next(v for v in reversed(labels) if v is not None)
        assert probs[Regime(last)] == 1.0


@given(labels=labels_strategy)
def test_regime_history_runs_rebuild_the_labels(labels: list[object]) -> None:
    # When the runs are listed
    runs = regime_history(labels)
    # Then laying them back over an empty sequence gives the labels again
    rebuilt: list[object] = [None] * len(labels)
    for row in runs.itertuples():
        assert row.end - row.start + 1 == row.length
        rebuilt[row.start : row.end + 1] = [row.regime] * row.length
    assert rebuilt == [None if v is None else Regime(v) for v in labels]
    # and two adjacent runs never hold the same regime
    touching = runs["start"].to_numpy()[1:] == runs["end"].to_numpy()[:-1] + 1
    assert not (touching & (runs["regime"].to_numpy()[1:] == runs["regime"].to_numpy()[:-1])).any()


def test_regime_history_keeps_timestamps() -> None:
    o = _ohlc()
    labels = classify_regimes(o["high"], o["low"], o["close"])
    runs = regime_history(labels)
    assert runs["length"].sum() == labels.notna().sum()
    assert isinstance(runs["start"].iloc[0], pd.Timestamp)
    assert runs["start"].iloc[0] == labels.first_valid_index()


# ---- bad input ----


def test_synthetic_range_spans_previous_and_current_close() -> None:
    high, low = synthetic_range_from_close(np.array([10.0, 12.0, 11.0]))
    np.testing.assert_array_equal(high, [10.0, 12.0, 12.0])
    np.testing.assert_array_equal(low, [10.0, 10.0, 11.0])


@pytest.mark.parametrize(
    "kwargs",
    [{"adx_range": 30.0}, {"chop_trend": 70.0}, {"min_history": 1000}, {"history": 10.5}, {"bandwidth_quantile": 0.0}],
)
def test_thresholds_reject_inconsistent_settings(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        RegimeThresholds(**kwargs)  # type: ignore[arg-type]


def test_classifier_rejects_bad_bars() -> None:
    o = _ohlc().iloc[:400]
    with pytest.raises(ValueError, match="same length"):
        classify_regimes(o["high"].to_numpy(), o["low"].to_numpy()[:-1], o["close"].to_numpy())
    close = o["close"].to_numpy().copy()
    close[200] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        classify_regimes(o["high"].to_numpy(), o["low"].to_numpy(), close)
    with pytest.raises(ValueError, match="longer than the data"):
        classify_regimes(o["high"].iloc[:10], o["low"].iloc[:10], o["close"].iloc[:10])


def test_label_statistics_reject_unknown_labels_and_bad_steps() -> None:
    with pytest.raises(ValueError, match="not one of the states"):
        transition_matrix(["TRENDING", "bullish"])
    with pytest.raises(ValueError, match="steps"):
        next_regime_probabilities(["TRENDING"], steps=-1)
