"""Performance metrics of a return series, on empyrical's conventions.

Conventions shared by every function here:

* Returns are **simple** (arithmetic) per-period returns r_t = P_t / P_{t−1} − 1, never log returns;
  wealth compounds as Π(1 + r_t).
* ``periods_per_year`` (default 252, trading days) annualises: 12 for monthly, 52 weekly, 365 for
  daily crypto, 8760 for hourly crypto. Volatility scales by √periods_per_year, means by
  periods_per_year and growth geometrically.
* ``risk_free`` / ``required_return`` are **per-period** rates (a 2% annual rate on daily data is
  0.02 / 252, or (1.02)^(1/252) − 1), a scalar or one value per period.
* Standard deviations use ddof = 1 (sample); the Sortino downside deviation is the root mean square
  of min(r − required, 0) over *all* periods (ddof = 0), as in empyrical.
* NaN: leading NaNs (the first row of ``pct_change``, an asset before its listing) are dropped; a NaN
  after the first valid return is rejected with ``ValueError``, because reading it as "no return" or
  as "no period" changes the figures in different ways.
* A Series or 1-d array gives a float; a DataFrame gives one value per column (a Series).

Reference library: empyrical-reloaded (``empyrical.stats``): ``cum_returns_final``, ``annual_return``,
``annual_volatility``, ``sharpe_ratio``, ``sortino_ratio``, ``max_drawdown``, ``calmar_ratio`` and
``drawdown_series`` agree with these to rounding on NaN-free input.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

from quant._validation import FloatArray, as_1d, as_2d

__all__ = [
    "annual_volatility",
    "cagr",
    "calmar_ratio",
    "downside_deviation",
    "drawdown_series",
    "hit_rate",
    "max_drawdown",
    "profit_factor",
    "sharpe_ratio",
    "sortino_ratio",
    "summary",
    "total_return",
    "turnover",
]


# ---- input handling ----------------------------------------------------------------------------


def _start(arr: FloatArray, name: str) -> int:
    """Index of the first non-NaN value; NaN after it is an error."""
    valid = np.flatnonzero(~np.isnan(arr))
    if valid.size == 0:
        raise ValueError(f"{name} has no values (all NaN)")
    start = int(valid[0])
    gap = np.flatnonzero(np.isnan(arr[start:]))
    if gap.size:
        raise ValueError(f"{name} contains NaN at position {start + int(gap[0])} after its first valid value")
    return start


def _clean(x: Any, name: str, min_length: int) -> tuple[FloatArray, int]:
    arr = as_1d(x, name)
    start = _start(arr, name)
    out = arr[start:]
    if out.shape[0] < min_length:
        raise ValueError(f"{name} needs at least {min_length} valid values, got {out.shape[0]}")
    return out, start


def _rate(rate: Any, name: str, n_total: int, start: int) -> FloatArray | float:
    """A per-period rate: a finite scalar, or one value per row of the returns (aligned by position)."""
    if np.ndim(rate) == 0:
        value = float(rate)
        if not math.isfinite(value):
            raise ValueError(f"{name} must be finite, got {value}")
        return value
    arr = as_1d(rate, name, allow_nan=False)
    if arr.shape[0] != n_total:
        raise ValueError(f"{name} has {arr.shape[0]} values but returns has {n_total}")
    return arr[start:]


def _periods(periods_per_year: float) -> float:
    p = float(periods_per_year)
    if not math.isfinite(p) or p <= 0.0:
        raise ValueError(f"periods_per_year must be positive, got {periods_per_year}")
    return p


def _per_column(returns: Any, fn: Callable[[Any], float]) -> Any:
    """Apply a 1-d metric once, or to each column of a DataFrame (a Series indexed by the columns)."""
    if isinstance(returns, pd.DataFrame):
        return pd.Series({col: fn(returns[col]) for col in returns.columns}, dtype=np.float64)
    return fn(returns)


def _std1(x: FloatArray) -> float:
    """Sample standard deviation (ddof = 1), exactly 0 for a constant series."""
    if x.max() == x.min():
        return 0.0
    return float(np.std(x, ddof=1))


def _ratio(num: float, den: float) -> float:
    """num / den with IEEE semantics: ±inf for a zero denominator, NaN for 0 / 0 (as empyrical)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return float(np.float64(num) / np.float64(den))


# ---- return and risk ---------------------------------------------------------------------------


def total_return(returns: Any) -> Any:
    """Compounded return over the whole series: Π(1 + r_t) − 1 (empyrical ``cum_returns_final``)."""

    def one(x: Any) -> float:
        r, _ = _clean(x, "returns", 1)
        return float(np.prod(1.0 + r) - 1.0)

    return _per_column(returns, one)


def cagr(returns: Any, periods_per_year: float = 252) -> Any:
    """Compound annual growth rate: (Π(1 + r_t))^(periods_per_year / N) − 1, N = number of returns.

    The number of years is N / periods_per_year (a count of periods, not calendar time), as
    empyrical ``annual_return`` (alias ``cagr``) does. If wealth reaches zero or below (a return of
    −100 % or worse) the result is −1 (ruin), where empyrical gives −1 or NaN.
    """
    ppy = _periods(periods_per_year)

    def one(x: Any) -> float:
        r, _ = _clean(x, "returns", 1)
        wealth = float(np.prod(1.0 + r))
        if wealth <= 0.0:
            return -1.0
        return float(wealth ** (ppy / r.shape[0]) - 1.0)

    return _per_column(returns, one)


def annual_volatility(returns: Any, periods_per_year: float = 252) -> Any:
    """Annualised volatility: sample standard deviation (ddof = 1) × √periods_per_year (empyrical)."""
    ppy = _periods(periods_per_year)

    def one(x: Any) -> float:
        r, _ = _clean(x, "returns", 2)
        return _std1(r) * math.sqrt(ppy)

    return _per_column(returns, one)


def sharpe_ratio(returns: Any, risk_free: Any = 0.0, periods_per_year: float = 252) -> Any:
    """Annualised Sharpe ratio: mean(r − r_f) / std(r − r_f, ddof = 1) × √periods_per_year.

    ``risk_free`` is per period. Sharpe (1994), "The Sharpe ratio", J. Portfolio Management 21(1);
    the ex-post form of empyrical ``sharpe_ratio``. A constant excess return gives ±inf (NaN if it is 0).
    """
    ppy = _periods(periods_per_year)
    n_total = len(returns)

    def one(x: Any) -> float:
        r, start = _clean(x, "returns", 2)
        excess = r - _rate(risk_free, "risk_free", n_total, start)
        return _ratio(float(excess.mean()), _std1(excess)) * math.sqrt(ppy)

    return _per_column(returns, one)


def downside_deviation(returns: Any, required_return: Any = 0.0, periods_per_year: float = 252) -> Any:
    """Annualised downside deviation √(mean(min(r − required, 0)²)) × √periods_per_year.

    The mean runs over all N periods (periods above the target count as zero), Sortino & Price (1994);
    empyrical ``downside_risk``.
    """
    ppy = _periods(periods_per_year)
    n_total = len(returns)

    def one(x: Any) -> float:
        r, start = _clean(x, "returns", 1)
        below = np.minimum(r - _rate(required_return, "required_return", n_total, start), 0.0)
        return float(np.sqrt(np.mean(below * below)) * math.sqrt(ppy))

    return _per_column(returns, one)


def sortino_ratio(returns: Any, required_return: Any = 0.0, periods_per_year: float = 252) -> Any:
    """Annualised Sortino ratio: mean(r − T) × periods_per_year / downside deviation.

    T = ``required_return`` per period; the downside deviation is that of :func:`downside_deviation`
    (all periods in the mean, ddof = 0). Sortino & Price (1994), "Performance measurement in a downside
    risk framework", J. Investing 3(3); empyrical ``sortino_ratio``. No period below T gives +inf
    (NaN if the mean excess is also 0, −inf cannot occur).
    """
    ppy = _periods(periods_per_year)
    n_total = len(returns)

    def one(x: Any) -> float:
        r, start = _clean(x, "returns", 2)
        excess = r - _rate(required_return, "required_return", n_total, start)
        below = np.minimum(excess, 0.0)
        dd = float(np.sqrt(np.mean(below * below)) * math.sqrt(ppy))
        return _ratio(float(excess.mean()) * ppy, dd)

    return _per_column(returns, one)


# ---- drawdowns ---------------------------------------------------------------------------------


def _drawdowns(r: FloatArray) -> FloatArray:
    # The starting capital is the first peak, so a loss in the very first period is a drawdown.
    wealth = np.cumprod(1.0 + r)
    peak = np.maximum(np.maximum.accumulate(wealth), 1.0)
    out: FloatArray = wealth / peak - 1.0
    return out


def drawdown_series(returns: Any) -> Any:
    """Drawdown after each period: W_t / max(1, max_{s≤t} W_s) − 1 ≤ 0, with W_t = Π_{s≤t}(1 + r_s).

    Wealth starts at 1 and that start counts as a peak (empyrical ``drawdown_series``). Same shape and
    index as ``returns``; leading NaNs stay NaN.
    """
    if isinstance(returns, pd.DataFrame):
        return returns.apply(drawdown_series)
    arr = as_1d(returns, "returns")
    start = _start(arr, "returns")
    out = np.full(arr.shape[0], np.nan)
    out[start:] = _drawdowns(arr[start:])
    if isinstance(returns, pd.Series):
        return pd.Series(out, index=returns.index, name=returns.name)
    return out


def max_drawdown(returns: Any) -> Any:
    """Maximum drawdown, a number ≤ 0: the minimum of :func:`drawdown_series` (empyrical ``max_drawdown``)."""

    def one(x: Any) -> float:
        r, _ = _clean(x, "returns", 1)
        return float(_drawdowns(r).min())

    return _per_column(returns, one)


def calmar_ratio(returns: Any, periods_per_year: float = 252) -> Any:
    """Calmar ratio: :func:`cagr` / |:func:`max_drawdown`| over the whole series.

    Young (1991), "Calmar ratio: a smoother tool", Futures 20(1), used here over the full sample
    rather than the original trailing 36 months, as empyrical ``calmar_ratio`` does. NaN when there
    is no drawdown.
    """
    ppy = _periods(periods_per_year)

    def one(x: Any) -> float:
        r, _ = _clean(x, "returns", 1)
        mdd = float(_drawdowns(r).min())
        if mdd >= 0.0:
            return float("nan")
        value = float(cagr(r, ppy)) / abs(mdd)
        return value if math.isfinite(value) else float("nan")

    return _per_column(returns, one)


# ---- trade statistics --------------------------------------------------------------------------


def hit_rate(returns: Any) -> Any:
    """Share of winning periods among the periods that moved: #(r > 0) / #(r ≠ 0).

    Flat periods (r = 0, e.g. no position) are left out of both counts; NaN if every period is flat.
    """

    def one(x: Any) -> float:
        r, _ = _clean(x, "returns", 1)
        moved = int(np.count_nonzero(r))
        return float(np.count_nonzero(r > 0.0)) / moved if moved else float("nan")

    return _per_column(returns, one)


def profit_factor(returns: Any) -> Any:
    """Gross gains over gross losses: Σ max(r, 0) / |Σ min(r, 0)| of per-period returns.

    +inf when there are gains and no losses, NaN when there are neither.
    """

    def one(x: Any) -> float:
        r, _ = _clean(x, "returns", 1)
        return _ratio(float(r[r > 0.0].sum()), abs(float(r[r < 0.0].sum())))

    return _per_column(returns, one)


def turnover(weights: Any, initial: Any = None, one_way: bool = False) -> Any:
    """Turnover per period: Σ_i |w_{t,i} − w_{t−1,i}| (DeMiguel, Garlappi & Uppal 2009, RFS 22(5)).

    Parameters
    ----------
    weights : (T, n) array or DataFrame, or (T,) for one asset
        Target weights held from each period on (fractions of capital); no NaN. Drift between
        rebalances is not modelled: pass post-drift weights for w_{t−1} if that matters.
    initial : (n,) weights before the first row, optional
        Default all cash (zeros), so the first period counts the initial build.
    one_way : bool
        Halve the sum (the traded notional of one side, buys or sells, in a fully invested book).

    Returns
    -------
    Series or ndarray of length T, indexed like ``weights``.
    """
    w = as_2d(np.asarray(weights, dtype=np.float64).reshape(len(weights), -1), "weights", min_rows=1)
    prev0 = np.zeros(w.shape[1]) if initial is None else as_1d(initial, "initial", allow_nan=False)
    if prev0.shape[0] != w.shape[1]:
        raise ValueError(f"initial has {prev0.shape[0]} weights but weights has {w.shape[1]} columns")
    prev = np.vstack([prev0[None, :], w[:-1]])
    out = np.abs(w - prev).sum(axis=1)
    if one_way:
        out *= 0.5
    if isinstance(weights, pd.DataFrame | pd.Series):
        return pd.Series(out, index=weights.index, name="turnover")
    return out


# ---- everything at once ------------------------------------------------------------------------


def summary(
    returns: Any,
    risk_free: Any = 0.0,
    required_return: Any = 0.0,
    periods_per_year: float = 252,
    weights: Any = None,
) -> Any:
    """All metrics of this module for one return series (a Series) or each column (a DataFrame).

    Keys: total_return, cagr, annual_volatility, sharpe_ratio, sortino_ratio, max_drawdown,
    calmar_ratio, hit_rate, profit_factor, and annual_turnover (mean :func:`turnover` ×
    periods_per_year) when ``weights`` are given. Conventions as in the module docstring.
    """
    if isinstance(returns, pd.DataFrame):
        if weights is not None:
            raise ValueError("weights describe one portfolio: pass a single return series with them")
        return pd.DataFrame(
            {col: summary(returns[col], risk_free, required_return, periods_per_year) for col in returns.columns}
        )
    ppy = _periods(periods_per_year)
    out = {
        "total_return": total_return(returns),
        "cagr": cagr(returns, ppy),
        "annual_volatility": annual_volatility(returns, ppy),
        "sharpe_ratio": sharpe_ratio(returns, risk_free, ppy),
        "sortino_ratio": sortino_ratio(returns, required_return, ppy),
        "max_drawdown": max_drawdown(returns),
        "calmar_ratio": calmar_ratio(returns, ppy),
        "hit_rate": hit_rate(returns),
        "profit_factor": profit_factor(returns),
    }
    if weights is not None:
        out["annual_turnover"] = float(np.mean(turnover(weights))) * ppy
    return pd.Series(out, dtype=np.float64, name=getattr(returns, "name", None))
