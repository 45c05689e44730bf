"""Rule-based market regimes (trending, ranging, choppy, crisis) and their Markov statistics.

The classifier reads four well-known indicators, each with its conventional thresholds:

* ADX / ±DI (Wilder 1978): ADX >= 25 marks a trend, ADX < 20 a trendless market.
* Choppiness index (E. W. Dreiss): <= 38.2 a directional window, >= 61.8 a sideways one (the
  Fibonacci levels Dreiss used).
* Bollinger bandwidth (Bollinger 2001), ranked against its own trailing history: narrow bands
  (the "squeeze") mark quiet consolidation, wide bands a volatile market.
* Realised volatility, ranked against its own trailing history and compared with its trailing
  median: a crisis is volatility that is extreme *for this instrument*, not above a fixed level.

Labels follow an explicit precedence so every bar after the warm-up gets exactly one:

1. ``CRISIS``   vol percentile >= ``crisis_vol_percentile`` and vol >= ``crisis_vol_multiple`` ×
   its trailing median (both: the top 5 % of a calm year is not a crisis).
2. ``TRENDING`` (ADX >= ``adx_trend`` and CHOP < ``chop_choppy``) or (CHOP <= ``chop_trend`` and
   ADX >= ``adx_range``): a strong, not sideways, trend, or a very directional window whose ADX
   is not weak (ADX lags by about two periods).
3. ``CHOPPY``   bandwidth percentile >= ``bandwidth_quantile`` and (CHOP >= ``chop_choppy`` or
   ADX < ``adx_range``): sideways or trendless with wide bands, i.e. whipsaw.
4. ``RANGING``  everything else: trendless with narrow bands (the textbook range) and the
   transitional bars between the cases above, which have no directional edge either.

The transition statistics treat a label sequence as a first-order Markov chain and estimate it by
maximum likelihood (counts of i -> j over row totals; Anderson and Goodman 1957).
"""

from __future__ import annotations

import enum
from collections.abc import Hashable, Sequence
from dataclasses import dataclass, fields
from typing import Any, Literal

import numpy as np
import pandas as pd

from quant import indicators
from quant._validation import FloatArray, as_1d, same_length

__all__ = [
    "FEATURE_COLUMNS",
    "Regime",
    "RegimeThresholds",
    "classify_regimes",
    "classify_regimes_from_close",
    "label_features",
    "next_regime_probabilities",
    "regime_features",
    "regime_history",
    "synthetic_range_from_close",
    "transition_matrix",
]


class Regime(enum.StrEnum):
    """Market regime labels; members compare equal to (and print as) their names: ``Regime.CRISIS == "CRISIS"``."""

    TRENDING = "TRENDING"
    RANGING = "RANGING"
    CHOPPY = "CHOPPY"
    CRISIS = "CRISIS"


@dataclass(frozen=True)
class RegimeThresholds:
    """Indicator settings and thresholds of :func:`classify_regimes` (defaults for daily bars).

    Attributes
    ----------
    adx_period : 14, Wilder's period for ADX/±DI (TA-Lib seeding, see ``quant.indicators.adx``).
    chop_period : 14, choppiness window (plain high/low form).
    bb_period, bb_k : 20 and 2.0, Bollinger window and width (population sd, ddof = 0).
    vol_window : 20, bars of log returns in the realised volatility (sample sd, ddof = 1).
    periods_per_year : 252, annualisation of the volatility (365 for daily crypto); the
        percentiles and ratios used for labels do not depend on it.
    adx_trend, adx_range : 25 and 20, ADX at or above which a trend is strong, below which the
        market is trendless (Wilder; the 20-25 band is a deliberate no-man's-land).
    chop_trend, chop_choppy : 38.2 and 61.8, choppiness at or below which a window is directional,
        at or above which it is sideways (Dreiss).
    bandwidth_quantile : 0.5, bandwidth percentile (over ``history``) at or above which bands
        count as wide; below it they are narrow.
    crisis_vol_percentile : 0.95, volatility percentile over ``history`` needed for ``CRISIS``.
    crisis_vol_multiple : 2.0, and the volatility must be at least this multiple of its trailing
        median over ``history``.
    history : 756, trailing window (3 years of daily bars) of the percentiles and the median.
    min_history : 252, observations the trailing window needs before percentiles are defined
        (an expanding window until ``history`` is reached); part of the warm-up.
    """

    adx_period: int = 14
    chop_period: int = 14
    bb_period: int = 20
    bb_k: float = 2.0
    vol_window: int = 20
    periods_per_year: float = 252.0
    adx_trend: float = 25.0
    adx_range: float = 20.0
    chop_trend: float = 38.2
    chop_choppy: float = 61.8
    bandwidth_quantile: float = 0.5
    crisis_vol_percentile: float = 0.95
    crisis_vol_multiple: float = 2.0
    history: int = 756
    min_history: int = 252

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not np.isfinite(value):
                raise ValueError(f"{f.name} must be a finite number, got {value!r}")
            if f.type in ("int", int) and not isinstance(value, int):
                raise ValueError(f"{f.name} must be an integer, got {value!r}")
        if min(self.adx_period, self.chop_period, self.bb_period, self.vol_window, self.min_history) < 2:
            raise ValueError("periods, vol_window and min_history must be >= 2")
        if self.min_history > self.history:
            raise ValueError(f"min_history ({self.min_history}) must not exceed history ({self.history})")
        if not 0.0 <= self.adx_range <= self.adx_trend <= 100.0:
            raise ValueError(f"need 0 <= adx_range <= adx_trend <= 100, got {self.adx_range}, {self.adx_trend}")
        if not 0.0 <= self.chop_trend < self.chop_choppy <= 100.0:
            raise ValueError(f"need 0 <= chop_trend < chop_choppy <= 100, got {self.chop_trend}, {self.chop_choppy}")
        for name in ("bandwidth_quantile", "crisis_vol_percentile"):
            if not 0.0 < getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be in (0, 1], got {getattr(self, name)}")
        if self.crisis_vol_multiple < 0.0 or self.bb_k <= 0.0 or self.periods_per_year <= 0.0:
            raise ValueError("crisis_vol_multiple must be >= 0, bb_k and periods_per_year > 0")

    @property
    def warmup(self) -> int:
        """Bars before the first possible label on clean data (the slowest feature decides)."""
        return max(
            2 * self.adx_period - 1,
            self.chop_period - 1,
            self.bb_period - 1 + self.min_history - 1,
            self.vol_window + self.min_history - 1,
        )


FEATURE_COLUMNS = (
    "adx",
    "plus_di",
    "minus_di",
    "chop",
    "bandwidth",
    "bandwidth_pct",
    "realized_vol",
    "vol_pct",
    "vol_ratio",
)


def regime_features(high: Any, low: Any, close: Any, thresholds: RegimeThresholds | None = None) -> pd.DataFrame:
    """The indicators the classifier reads, one row per bar.

    Columns: ``adx``, ``plus_di``, ``minus_di`` (``indicators.adx``, TA-Lib seeding), ``chop``
    (``indicators.choppiness``, plain high/low form), ``bandwidth`` (``indicators.bollinger_bandwidth``,
    a fraction), ``realized_vol`` (``indicators.realized_volatility``, annualised, ddof = 1),
    ``bandwidth_pct`` and ``vol_pct`` — the trailing percentile rank of the value among the last
    ``history`` defined values, itself included (weak rank: the fraction <= the current value,
    as ``scipy.stats.percentileofscore(kind="weak") / 100``), NaN until ``min_history`` values
    exist — and ``vol_ratio``, volatility over its trailing median on the same window.

    Parameters
    ----------
    high, low, close : arrays or Series of equal length (pandas inputs must share one index);
        leading NaNs are allowed, a NaN after the first complete bar is a ``ValueError``.
    thresholds : RegimeThresholds, default ``RegimeThresholds()``

    Returns
    -------
    DataFrame on the input's index (a RangeIndex for arrays); NaN during each feature's warm-up.
    """
    th = thresholds if thresholds is not None else RegimeThresholds()
    h = as_1d(high, "high")
    lo = as_1d(low, "low")
    c = as_1d(close, "close")
    n = same_length(high=h, low=lo, close=c)
    index = _index_of(n, high, low, close)
    dmi = indicators.adx(h, lo, c, th.adx_period)
    chop = indicators.choppiness(h, lo, c, th.chop_period)
    bandwidth = pd.Series(indicators.bollinger_bandwidth(c, th.bb_period, th.bb_k))
    vol = pd.Series(indicators.realized_volatility(c, th.vol_window, th.periods_per_year))
    vol_median = vol.rolling(th.history, min_periods=th.min_history).median()
    frame = pd.DataFrame(
        {
            "adx": dmi.adx,
            "plus_di": dmi.plus_di,
            "minus_di": dmi.minus_di,
            "chop": chop,
            "bandwidth": bandwidth.to_numpy(),
            "bandwidth_pct": _trailing_pct_rank(bandwidth, th).to_numpy(),
            "realized_vol": vol.to_numpy(),
            "vol_pct": _trailing_pct_rank(vol, th).to_numpy(),
            "vol_ratio": (vol / vol_median).to_numpy(),
        },
        index=index,
    )
    return frame


def classify_regimes(high: Any, low: Any, close: Any, thresholds: RegimeThresholds | None = None) -> pd.Series:
    """Label each bar TRENDING, RANGING, CHOPPY or CRISIS by the module's precedence rules.

    Parameters
    ----------
    high, low, close : as :func:`regime_features`.
    thresholds : RegimeThresholds, default ``RegimeThresholds()`` (daily bars).

    Returns
    -------
    Series (object dtype) of :class:`Regime` members named ``regime``, on the input's index (a
    RangeIndex for arrays). ``None`` on every bar where any feature is still undefined (the
    warm-up: ``thresholds.warmup`` bars on clean data, ~271 with the defaults); every later bar
    has exactly one label.

    Notes
    -----
    Precedence CRISIS > TRENDING > CHOPPY > RANGING, as in the module docstring. Thresholds:
    Wilder (ADX 20/25), Dreiss (CHOP 38.2/61.8), Bollinger (bandwidth squeeze), volatility
    percentile and median multiple over a 3-year trailing window.
    """
    th = thresholds if thresholds is not None else RegimeThresholds()
    return label_features(regime_features(high, low, close, th), th)


def label_features(features: pd.DataFrame, thresholds: RegimeThresholds | None = None) -> pd.Series:
    """Apply the precedence rules to a :func:`regime_features` frame (``None`` where incomplete)."""
    th = thresholds if thresholds is not None else RegimeThresholds()
    missing = [c for c in FEATURE_COLUMNS if c not in features.columns]
    if missing:
        raise ValueError(f"features lacks columns {missing}")
    f = {c: features[c].to_numpy(dtype=np.float64) for c in FEATURE_COLUMNS}
    ready = np.all([np.isfinite(f[c]) for c in FEATURE_COLUMNS], axis=0)
    crisis = (f["vol_pct"] >= th.crisis_vol_percentile) & (f["vol_ratio"] >= th.crisis_vol_multiple)
    trending = ((f["adx"] >= th.adx_trend) & (f["chop"] < th.chop_choppy)) | (
        (f["chop"] <= th.chop_trend) & (f["adx"] >= th.adx_range)
    )
    choppy = (f["bandwidth_pct"] >= th.bandwidth_quantile) & ((f["chop"] >= th.chop_choppy) | (f["adx"] < th.adx_range))
    # Assigned lowest precedence first so each later rule overrides. fill() keeps the Regime
    # members; np.full and np.select coerce these str-based members to plain strings.
    labels = np.empty(features.shape[0], dtype=object)
    labels.fill(Regime.RANGING)
    labels[choppy] = Regime.CHOPPY
    labels[trending] = Regime.TRENDING
    labels[crisis] = Regime.CRISIS
    labels[~ready] = None
    return pd.Series(labels, index=features.index, name="regime", dtype=object)


def synthetic_range_from_close(close: Any) -> tuple[Any, Any]:
    """A high/low pair for close-only data: each bar spans its previous close and its close.

    ``high[t] = max(close[t-1], close[t])``, ``low[t] = min(close[t-1], close[t])``, so the bar's
    range is ``|close[t] - close[t-1]|`` (|return| × price) and the true range is the absolute
    close-to-close change; the first bar is a point (high = low = close). Setting high = low =
    close instead would leave ADX blind to any move and choppiness undefined.

    Returns
    -------
    (high, low) : Series named ``high`` and ``low`` for pandas input, arrays otherwise.
    """
    c = as_1d(close, "close")
    prev = np.r_[c[0], c[:-1]]
    hi = np.fmax(prev, c)
    lo = np.fmin(prev, c)
    if isinstance(close, pd.Series):
        return pd.Series(hi, index=close.index, name="high"), pd.Series(lo, index=close.index, name="low")
    return hi, lo


def classify_regimes_from_close(close: Any, thresholds: RegimeThresholds | None = None) -> pd.Series:
    """:func:`classify_regimes` for close-only data (an index level), via :func:`synthetic_range_from_close`.

    ADX and choppiness then measure close-to-close moves (Wilder's line-chart reading); volatility
    and bandwidth are unchanged, as they read closes only. Labels on real OHLC data and on its
    closes alone agree on crises and strong trends but not bar for bar: without an intraday range
    to dilute them, directional moves weigh more, so close-only ADX runs higher and more bars read
    as TRENDING (about 59 % of S&P 500 index bars 1991-2022, against 32 % from OHLC 2000-2018);
    raise ``adx_trend`` if the two must give similar frequencies.
    """
    hi, lo = synthetic_range_from_close(close)
    return classify_regimes(hi, lo, close, thresholds)


def regime_history(labels: Any) -> pd.DataFrame:
    """Runs of consecutive equal labels: one row per run, in time order.

    Columns ``start`` and ``end`` (index labels of the run's first and last bar; positions for
    arrays or lists), ``regime`` and ``length`` (bars). Unlabelled bars (``None``/NaN, the warm-up)
    belong to no run and split runs around them.
    """
    series = _as_label_series(labels)
    values = [_normalise(v) for v in series.tolist()]
    rows: list[dict[str, Any]] = []
    run_start: int | None = None
    for i, value in enumerate(values):
        if run_start is not None and value != values[run_start]:
            rows.append(_run(series.index, values, run_start, i - 1))
            run_start = None
        if run_start is None and value is not None:
            run_start = i
    if run_start is not None:
        rows.append(_run(series.index, values, run_start, len(values) - 1))
    return pd.DataFrame(rows, columns=["start", "end", "regime", "length"])


def transition_matrix(
    labels: Any,
    states: Sequence[Hashable] = tuple(Regime),
    empty_row: Literal["absorbing", "uniform"] = "absorbing",
) -> pd.DataFrame:
    """Empirical first-order transition matrix ``P[i, j] = Pr(next = j | now = i)``.

    Maximum-likelihood estimate (Anderson and Goodman 1957): the count of consecutive labelled
    pairs (i at bar t, j at bar t+1) over the count of pairs leaving i. A pair with an unlabelled
    bar on either side is not counted.

    Parameters
    ----------
    labels : sequence, array or Series of labels (``Regime`` members or their string values)
    states : the row/column order; default the four regimes. A label outside it is a ValueError.
    empty_row : what a state never observed leaving holds: ``"absorbing"`` (default: 1 on the
        diagonal, the data give no evidence it ends) or ``"uniform"`` (1/k everywhere).

    Returns
    -------
    DataFrame, index ``from`` and columns ``to`` = ``states``; non-negative, every row sums to 1.
    """
    codes, names = _codes(labels, states)
    k = len(names)
    counts = np.zeros((k, k))
    pairs = (codes[:-1] >= 0) & (codes[1:] >= 0)
    np.add.at(counts, (codes[:-1][pairs], codes[1:][pairs]), 1.0)
    totals = counts.sum(axis=1)
    if empty_row not in ("absorbing", "uniform"):
        raise ValueError(f"empty_row must be 'absorbing' or 'uniform', got {empty_row!r}")
    fill = np.eye(k) if empty_row == "absorbing" else np.full((k, k), 1.0 / k)
    P = np.where(totals[:, None] > 0, counts / np.where(totals > 0, totals, 1.0)[:, None], fill)
    return pd.DataFrame(P, index=pd.Index(names, name="from"), columns=pd.Index(names, name="to"))


def next_regime_probabilities(
    labels: Any,
    steps: int = 1,
    states: Sequence[Hashable] = tuple(Regime),
    transition: pd.DataFrame | None = None,
) -> pd.Series:
    """Probability of each regime ``steps`` bars after the last labelled bar.

    ``e_current @ P**steps`` with ``P`` = ``transition`` if given, else :func:`transition_matrix`
    of ``labels`` (absorbing empty rows). ``steps = 0`` gives the current regime with probability 1.

    Returns
    -------
    Series indexed by ``states``, named ``probability``; non-negative, sums to 1.
    """
    if isinstance(steps, bool) or not isinstance(steps, (int, np.integer)) or steps < 0:
        raise ValueError(f"steps must be a non-negative integer, got {steps!r}")
    codes, names = _codes(labels, states)
    labelled = np.flatnonzero(codes >= 0)
    if labelled.size == 0:
        raise ValueError("labels has no labelled bar (all warm-up)")
    P = transition_matrix(labels, states) if transition is None else transition
    P_arr = np.asarray(P, dtype=np.float64)
    if P_arr.shape != (len(names), len(names)):
        raise ValueError(f"transition must be {len(names)}x{len(names)}, got {P_arr.shape}")
    if (P_arr < 0).any() or not np.allclose(P_arr.sum(axis=1), 1.0, atol=1e-10):
        raise ValueError("transition must be row-stochastic (non-negative rows summing to 1)")
    start = np.zeros(len(names))
    start[codes[labelled[-1]]] = 1.0
    probs: FloatArray = start @ np.linalg.matrix_power(P_arr, int(steps))
    return pd.Series(probs, index=pd.Index(names, name="regime"), name="probability")


# ---- helpers ----


def _trailing_pct_rank(x: pd.Series, th: RegimeThresholds) -> pd.Series:
    return x.rolling(th.history, min_periods=th.min_history).rank(method="max", pct=True)


def _index_of(n: int, *inputs: Any) -> pd.Index:
    for value in inputs:
        if isinstance(value, (pd.Series, pd.DataFrame)):
            return value.index
    return pd.RangeIndex(n)


def _as_label_series(labels: Any) -> pd.Series:
    if isinstance(labels, pd.Series):
        return labels
    if isinstance(labels, pd.DataFrame):
        raise ValueError("labels must be one-dimensional, got a DataFrame")
    return pd.Series(list(labels), dtype=object)


def _normalise(value: Any) -> Any:
    if value is None or (isinstance(value, float) and np.isnan(value)) or value is pd.NA:
        return None
    if isinstance(value, str) and not isinstance(value, Regime):
        try:
            return Regime(value)
        except ValueError:
            return value
    return value


def _codes(labels: Any, states: Sequence[Hashable]) -> tuple[np.ndarray, list[Hashable]]:
    names = [_normalise(s) for s in states]
    if len(names) < 1 or len(set(names)) != len(names) or None in names:
        raise ValueError(f"states must be distinct, non-missing labels, got {list(states)}")
    lookup = {s: i for i, s in enumerate(names)}
    codes = np.full(len(_as_label_series(labels)), -1, dtype=np.int64)
    for i, value in enumerate(_as_label_series(labels).tolist()):
        v = _normalise(value)
        if v is None:
            continue
        if v not in lookup:
            raise ValueError(f"label {value!r} at position {i} is not one of the states {names}")
        codes[i] = lookup[v]
    return codes, names


def _run(index: pd.Index, values: list[Any], first: int, last: int) -> dict[str, Any]:
    return {"start": index[first], "end": index[last], "regime": values[first], "length": last - first + 1}
