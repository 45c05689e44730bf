"""VaR backtests: Kupiec's proportion-of-failures test, Christoffersen's independence and
conditional-coverage tests, and the Basel traffic light.

A *breach* (exception) is a day whose return is below minus that day's VaR forecast, i.e. a
loss strictly larger than the VaR. Likelihoods use ``0 * log 0 = 0`` (``scipy.special.xlogy``),
so zero breaches and all-breach samples give finite statistics.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd
from scipy import special, stats

from quant._validation import as_1d, same_length

BoolArray = npt.NDArray[np.bool_]

# Basel Committee (1996), "Supervisory framework for the use of backtesting in conjunction with
# the internal models approach", Table 2: the green zone ends where the binomial cumulative
# probability of the exception count reaches 95%, the red zone starts where it reaches 99.99%.
GREEN_CUMPROB = 0.95
RED_CUMPROB = 0.9999


@dataclass(frozen=True)
class LRTest:
    """A likelihood-ratio statistic and its chi-squared p-value."""

    statistic: float
    p_value: float
    df: int


@dataclass(frozen=True)
class VarBacktest:
    """The outcome of :func:`var_backtest`.

    ``breaches`` is a boolean series (True on a breach), ``count`` its sum, ``expected`` the count
    a correct model gives on average (``n * (1 - level)``), ``zone`` the Basel traffic light and
    ``cumulative_probability`` the binomial P(X <= count) that decides it.
    """

    breaches: pd.Series
    n: int
    count: int
    expected: float
    level: float
    kupiec: LRTest
    independence: LRTest
    conditional_coverage: LRTest
    zone: str
    cumulative_probability: float


def _check_level(level: float) -> float:
    if isinstance(level, bool) or not isinstance(level, (int, float, np.floating)) or not 0.0 < level < 1.0:
        raise ValueError(f"level must be a number strictly between 0 and 1, got {level!r}")
    return float(level)


def _check_count(breaches: int, n: int) -> tuple[int, int]:
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise ValueError(f"n must be a positive integer, got {n!r}")
    if isinstance(breaches, bool) or not isinstance(breaches, (int, np.integer)) or not 0 <= breaches <= n:
        raise ValueError(f"breaches must be an integer between 0 and n={n}, got {breaches!r}")
    return int(breaches), int(n)


def _bernoulli_loglik(failures: float, successes: float, prob: float) -> float:
    return float(special.xlogy(failures, prob) + special.xlog1py(successes, -prob))


def kupiec_pof(breaches: int, n: int, level: float = 0.99) -> LRTest:
    """Kupiec's proportion-of-failures likelihood-ratio test of unconditional coverage.

    ``LR = -2 [ln L(p) - ln L(x/n)]`` with ``L(π) = (1 - π)^(n - x) π^x``, ``p = 1 - level`` the
    breach probability a correct model has, ``x`` the observed breaches; ``LR ~ χ²(1)`` under the
    null. Zero breaches and ``x = n`` are handled with ``0 · log 0 = 0``.

    Parameters
    ----------
    breaches : int
        Observed number of breaches ``x`` (0 <= x <= n).
    n : int
        Number of observations.
    level : float
        VaR confidence level in (0, 1).

    Returns
    -------
    LRTest
        ``statistic`` (LR), ``p_value`` (upper tail of χ²(1)), ``df = 1``.

    References
    ----------
    Kupiec, P. (1995). Techniques for verifying the accuracy of risk measurement models. Journal
    of Derivatives 3(2), 73-84.
    """
    x, n = _check_count(breaches, n)
    p = 1.0 - _check_level(level)
    null = _bernoulli_loglik(x, n - x, p)
    alt = _bernoulli_loglik(x, n - x, x / n)
    lr = max(-2.0 * (null - alt), 0.0)
    return LRTest(lr, float(stats.chi2.sf(lr, 1)), 1)


def _transitions(hits: BoolArray) -> tuple[int, int, int, int]:
    prev, cur = hits[:-1], hits[1:]
    n00 = int(np.sum(~prev & ~cur))
    n01 = int(np.sum(~prev & cur))
    n10 = int(np.sum(prev & ~cur))
    n11 = int(np.sum(prev & cur))
    return n00, n01, n10, n11


def christoffersen(breach_series: Any, level: float = 0.99) -> tuple[LRTest, LRTest]:
    """Christoffersen's independence and conditional-coverage tests on a breach indicator series.

    Independence: a first-order Markov chain on the indicator against independence,
    ``LR_ind = -2 [ln L(π) - ln L(π01, π11)]`` over the ``n - 1`` transitions, with
    ``π01 = n01 / (n00 + n01)``, ``π11 = n11 / (n10 + n11)``, ``π = (n01 + n11) / (n - 1)``;
    ``LR_ind ~ χ²(1)``. Conditional coverage: ``LR_cc = LR_pof + LR_ind ~ χ²(2)``, with the
    Kupiec statistic on all ``n`` observations (the usual practice, e.g. Jorion 2007, ch. 6).
    A transition class that never occurs contributes ``0 · log 0 = 0``.

    Parameters
    ----------
    breach_series : array-like of bool or 0/1
        Breach indicators in time order (at least two observations).
    level : float
        VaR confidence level in (0, 1).

    Returns
    -------
    (LRTest, LRTest)
        The independence test (df = 1) and the conditional-coverage test (df = 2).

    References
    ----------
    Christoffersen, P. (1998). Evaluating interval forecasts. International Economic Review
    39(4), 841-862.
    """
    level = _check_level(level)
    hits = _as_hits(breach_series)
    if hits.size < 2:
        raise ValueError(f"breach_series needs at least 2 observations, got {hits.size}")
    n00, n01, n10, n11 = _transitions(hits)
    pi = (n01 + n11) / (hits.size - 1)
    pi01 = n01 / (n00 + n01) if n00 + n01 else 0.0
    pi11 = n11 / (n10 + n11) if n10 + n11 else 0.0
    null = _bernoulli_loglik(n01 + n11, n00 + n10, pi)
    alt = _bernoulli_loglik(n01, n00, pi01) + _bernoulli_loglik(n11, n10, pi11)
    lr_ind = max(-2.0 * (null - alt), 0.0)
    pof = kupiec_pof(int(hits.sum()), int(hits.size), level)
    lr_cc = pof.statistic + lr_ind
    return (
        LRTest(lr_ind, float(stats.chi2.sf(lr_ind, 1)), 1),
        LRTest(lr_cc, float(stats.chi2.sf(lr_cc, 2)), 2),
    )


def traffic_light(breaches: int, n: int, level: float = 0.99) -> tuple[str, float]:
    """Basel traffic-light zone of a breach count, for any sample size and level.

    The zone boundaries are the Basel (1996) cumulative-probability rule applied to
    Binomial(n, 1 - level): green while P(X <= breaches) < 95%, yellow while it is < 99.99%, red
    from there on. At n = 250 and 99% this reproduces Basel's table: green 0-4, yellow 5-9,
    red 10 or more.

    Returns
    -------
    (str, float)
        ``"green"``, ``"yellow"`` or ``"red"``, and the cumulative probability P(X <= breaches).
    """
    x, n = _check_count(breaches, n)
    cum = float(stats.binom.cdf(x, n, 1.0 - _check_level(level)))
    if cum >= RED_CUMPROB:
        return "red", cum
    if cum >= GREEN_CUMPROB:
        return "yellow", cum
    return "green", cum


def _as_hits(x: Any) -> BoolArray:
    arr = as_1d(x, "breach_series", allow_nan=False)
    if not np.isin(arr, (0.0, 1.0)).all():
        raise ValueError("breach_series must hold booleans or 0/1 values")
    return arr.astype(bool)


def var_backtest(returns: Any, var_series: Any, level: float = 0.99) -> VarBacktest:
    """Backtest a VaR forecast series against realised returns.

    ``var_series[t]`` must be the VaR forecast *for* day ``t`` (made with data up to ``t - 1``,
    e.g. a rolling estimate shifted by one), as a positive loss in return units. A breach is
    ``returns[t] < -var_series[t]``. Leading NaNs of ``var_series`` (a rolling estimate's warm-up)
    are dropped together with the matching returns; any other NaN is an error.

    Returns
    -------
    VarBacktest
        Breaches, their count and expected count, Kupiec (1995), Christoffersen (1998)
        independence and conditional coverage, and the Basel (1996) traffic light scaled to the
        sample size through the binomial cumulative probabilities (see :func:`traffic_light`).
    """
    level = _check_level(level)
    r = as_1d(returns, "returns", allow_nan=False)
    v = as_1d(var_series, "var_series")
    same_length(returns=r, var_series=v)
    nan = np.isnan(v)
    start = int(np.argmin(nan)) if not nan.all() else v.size
    if start == v.size:
        raise ValueError("var_series is all NaN")
    if nan[start:].any():
        raise ValueError(f"var_series has NaN after its warm-up, at position {start + int(np.argmax(nan[start:]))}")
    hits = r[start:] < -v[start:]
    index = returns.index[start:] if isinstance(returns, pd.Series) else pd.RangeIndex(start, v.size)
    count, n = int(hits.sum()), int(hits.size)
    if n < 2:
        raise ValueError(f"a backtest needs at least 2 observations with a VaR forecast, got {n}")
    ind, cc = christoffersen(hits, level)
    zone, cum = traffic_light(count, n, level)
    return VarBacktest(
        breaches=pd.Series(hits, index=index, name="breach"),
        n=n,
        count=count,
        expected=n * (1.0 - level),
        level=level,
        kupiec=kupiec_pof(count, n, level),
        independence=ind,
        conditional_coverage=cc,
        zone=zone,
        cumulative_probability=cum,
    )
