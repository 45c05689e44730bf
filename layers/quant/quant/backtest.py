"""Vectorised, weights-based backtester with proportional and square-root impact costs.

Timing convention (no look-ahead)
---------------------------------
Bar ``t``'s asset return is ``r_t = P_t / P_{t-1} - 1`` (close to close; ``r_0 = 0``). A target
weight decided at the close of bar ``t`` is *held* from bar ``t + execution_lag`` onwards:

    held_t = target_{t - execution_lag}        (0 before the first target)
    gross_t = Σ_j held_{t,j} r_{t,j}

With the default ``execution_lag=1`` the trade is filled at the close of the bar on which the
target was decided and first earns the next bar's return, which is what vectorbt's
``Portfolio.from_orders`` / ``from_signals`` do with ``price=close``. ``execution_lag=0`` lets a
target earn the return of its own bar: only correct when targets were computed from data that
ends *before* that bar (e.g. already shifted), and a look-ahead bug otherwise.

Portfolio arithmetic
--------------------
The portfolio is rebalanced to the held weights at every close. Between closes, weights drift
with prices: ``d_{t,j} = held_{t,j} (1 + r_{t,j}) / (1 + gross_t)``. The trade into
``held_{t+1}`` happens at the close of bar ``t``; its turnover is ``Σ_j |held_{t+1,j} - d_{t,j}|``
(fractions of equity) and its cost, charged to bar ``t``, is

    cost_t = turnover_t (fee + half_spread) + Σ_j impact_coef σ_{t,j} sqrt(Q_{t,j} / ADV_{t,j}) |Δw_{t,j}|

with ``Q`` the traded quantity in units (the square-root law of market impact: Almgren, Thum,
Hauptmann and Li, 2005; Tóth et al., 2011), applied only when ``adv`` is given. Equity follows
``E_t = E_{t-1} (1 + gross_t) (1 - cost_t)``, so ``net_t = (1 + gross_t)(1 - cost_t) - 1``. Costs
are taken as a fraction of the equity *before* the trade (post-trade weights are of the
post-cost equity; the difference is second order in the cost). An account whose equity reaches
zero stays at zero.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from quant._kernels.backtest import backtest_nb
from quant._validation import FloatArray, as_2d, labels_of

__all__ = ["BacktestResult", "annualised_sharpe", "backtest", "max_drawdown_of", "total_return_of"]

_DEFAULT_SIGMA_WINDOW = 20


def annualised_sharpe(returns: Any, periods_per_year: float = 252.0) -> float:
    """``mean / std * sqrt(periods_per_year)`` of per-bar returns (ddof = 1, no risk-free rate; NaN if flat)."""
    r = np.asarray(returns, dtype=np.float64)
    r = r[~np.isnan(r)]
    if r.shape[0] < 2:
        return math.nan
    sd = float(r.std(ddof=1))
    return float(r.mean() / sd * math.sqrt(periods_per_year)) if sd > 0.0 else math.nan


def total_return_of(returns: Any) -> float:
    """Compounded total return ``Π (1 + r_t) - 1``."""
    r = np.asarray(returns, dtype=np.float64)
    return float(np.prod(1.0 + r[~np.isnan(r)]) - 1.0)


def max_drawdown_of(returns: Any) -> float:
    """Largest peak-to-trough fall of the compounded equity curve, as a negative fraction (0 if none)."""
    r = np.asarray(returns, dtype=np.float64)
    equity = np.cumprod(1.0 + np.nan_to_num(r))
    peak = np.maximum.accumulate(np.concatenate([[1.0], equity]))[1:]
    return float((equity / peak - 1.0).min()) if equity.shape[0] else 0.0


@dataclass(frozen=True)
class BacktestResult:
    """Outcome of :func:`backtest`; every series shares the prices' index.

    Attributes
    ----------
    equity : Series
        Account value at each close, after that close's trading costs.
    returns : Series
        Net return per bar, ``equity_t / equity_{t-1} - 1``.
    gross_returns : Series
        Return per bar before costs, ``Σ_j held_{t,j} r_{t,j}``.
    costs : Series
        Trading costs paid at each close, in currency.
    positions : DataFrame
        Weights held over each bar (``held_t``).
    trades : DataFrame
        Signed notional traded at each close, in currency (positive = buy).
    turnover : Series
        ``Σ_j |Δw_j|`` traded at each close, as a fraction of equity.
    exposure : Series
        Gross exposure held over each bar, ``Σ_j |held_{t,j}|``.
    """

    equity: pd.Series
    returns: pd.Series
    gross_returns: pd.Series
    costs: pd.Series
    positions: pd.DataFrame
    trades: pd.DataFrame
    turnover: pd.Series
    exposure: pd.Series
    initial_capital: float

    @property
    def total_return(self) -> float:
        """Final equity over initial capital, minus one."""
        return float(self.equity.iloc[-1] / self.initial_capital - 1.0)

    def sharpe(self, periods_per_year: float = 252.0) -> float:
        """Annualised Sharpe ratio of the net returns (see :func:`annualised_sharpe`)."""
        return annualised_sharpe(self.returns.to_numpy(), periods_per_year)


def _as_frame(x: Any, name: str) -> tuple[FloatArray, Any, list[str]]:
    if isinstance(x, pd.Series):
        x = x.to_frame(name=x.name if x.name is not None else "x0")
    arr = as_2d(x, name, allow_nan=True, min_rows=2)
    index = x.index if isinstance(x, pd.DataFrame) else pd.RangeIndex(arr.shape[0])
    return arr, index, labels_of(x, arr.shape[1])


def _per_bar(value: Any, shape: tuple[int, int], name: str) -> FloatArray:
    """A scalar, one value per asset, or a full (bars x assets) array, broadcast to ``shape``."""
    arr = np.asarray(value.to_numpy() if isinstance(value, (pd.Series, pd.DataFrame)) else value, dtype=np.float64)
    try:
        out = np.ascontiguousarray(np.broadcast_to(arr, shape), dtype=np.float64)
    except ValueError as exc:
        raise ValueError(f"{name} must be a scalar, one value per asset or shape {shape}, got {arr.shape}") from exc
    if (out < 0.0).any():
        raise ValueError(f"{name} must be non-negative")
    return out


def backtest(
    prices: Any,
    target_weights: Any,
    *,
    fee_bps: float = 0.0,
    half_spread_bps: float = 0.0,
    impact_coef: float = 1.0,
    adv: Any = None,
    sigma: Any = None,
    initial_capital: float = 1_000_000.0,
    execution_lag: int = 1,
) -> BacktestResult:
    """Backtest target weights on close prices (see the module notes for timing and costs).

    Parameters
    ----------
    prices : DataFrame, Series or 2-d array
        Closes, rows = bars ascending, columns = instruments; positive, no NaN.
    target_weights : same shape as ``prices``
        Target weight of equity per instrument decided at each close (NaN = 0). DataFrames must
        share the prices' index and columns.
    fee_bps, half_spread_bps : float
        Proportional costs per unit of turnover, in basis points.
    impact_coef : float
        Coefficient ``Y`` of the square-root impact law, used only when ``adv`` is given.
    adv : scalar, per-asset values or (bars x assets), optional
        Average daily (per-bar) volume in units of the instrument.
    sigma : same forms as ``adv``, optional
        Per-bar return volatility for the impact term; default the trailing 20-bar sample std of
        returns up to and including each bar (0, i.e. no impact, on bar 0).
    initial_capital : float
        Starting equity (matters only for the impact term, which depends on size).
    execution_lag : int
        Bars between the close a target is decided at and the first return it earns (>= 0).

    Returns
    -------
    BacktestResult
    """
    px, index, names = _as_frame(prices, "prices")
    if np.isnan(px).any():
        raise ValueError("prices contains NaN; fill or trim them before backtesting")
    if (px <= 0.0).any():
        raise ValueError("prices must be positive")
    tw, t_index, t_names = _as_frame(target_weights, "target_weights")
    if tw.shape != px.shape:
        raise ValueError(f"target_weights shape {tw.shape} differs from prices shape {px.shape}")
    if isinstance(target_weights, (pd.DataFrame, pd.Series)) and isinstance(prices, (pd.DataFrame, pd.Series)):
        if not t_index.equals(index):
            raise ValueError("target_weights must have the same index as prices")
        if isinstance(target_weights, pd.DataFrame) and t_names != names:
            raise ValueError(f"target_weights columns {t_names} differ from prices columns {names}")
    if isinstance(execution_lag, bool) or not isinstance(execution_lag, (int, np.integer)) or execution_lag < 0:
        raise ValueError(f"execution_lag must be a non-negative integer, got {execution_lag!r}")
    for label, value in (("fee_bps", fee_bps), ("half_spread_bps", half_spread_bps), ("impact_coef", impact_coef)):
        if not (math.isfinite(value) and value >= 0.0):
            raise ValueError(f"{label} must be a finite non-negative number, got {value!r}")
    if not (math.isfinite(initial_capital) and initial_capital > 0.0):
        raise ValueError(f"initial_capital must be positive, got {initial_capital!r}")

    n, k = px.shape
    returns = np.zeros_like(px)
    returns[1:] = px[1:] / px[:-1] - 1.0
    targets = np.nan_to_num(tw, nan=0.0)
    held = np.zeros_like(targets)
    lag = int(execution_lag)
    if lag < n:
        held[lag:] = targets[: n - lag]
    if adv is None:
        adv_arr = np.zeros((n, k))
        sigma_arr = np.zeros((n, k))
    else:
        adv_arr = _per_bar(adv, (n, k), "adv")
        if sigma is None:
            rolling = pd.DataFrame(returns).rolling(_DEFAULT_SIGMA_WINDOW, min_periods=2).std(ddof=1)
            sigma_arr = np.ascontiguousarray(np.nan_to_num(rolling.to_numpy(), nan=0.0))
        else:
            sigma_arr = _per_bar(sigma, (n, k), "sigma")
    cost_rate = (fee_bps + half_spread_bps) / 1e4
    impact = float(impact_coef) if adv is not None else 0.0
    equity, gross, net, costs, turnover, traded = backtest_nb(
        returns, held, px, cost_rate, impact, adv_arr, sigma_arr, float(initial_capital)
    )
    return BacktestResult(
        equity=pd.Series(equity, index=index, name="equity"),
        returns=pd.Series(net, index=index, name="returns"),
        gross_returns=pd.Series(gross, index=index, name="gross_returns"),
        costs=pd.Series(costs, index=index, name="costs"),
        positions=pd.DataFrame(held, index=index, columns=names),
        trades=pd.DataFrame(traded, index=index, columns=names),
        turnover=pd.Series(turnover, index=index, name="turnover"),
        exposure=pd.Series(np.abs(held).sum(axis=1), index=index, name="exposure"),
        initial_capital=float(initial_capital),
    )
