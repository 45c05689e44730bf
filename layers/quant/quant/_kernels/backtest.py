"""numba kernels for ``quant.backtest`` and ``quant.backtest_grid`` (arrays in, arrays out)."""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

from quant._kernels._jit import jit

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


@jit
def trade_cost_nb(
    adw: float, value: float, price: float, adv: float, sigma: float, cost_rate: float, impact_coef: float
) -> float:
    """Cost, as a fraction of ``value``, of trading ``adw`` of it: proportional plus square-root impact."""
    c = adw * cost_rate
    if impact_coef > 0.0 and adv > 0.0 and sigma > 0.0 and price > 0.0:
        units = adw * value / price
        c += impact_coef * sigma * math.sqrt(units / adv) * adw
    return c


@jit
def backtest_nb(
    returns: FloatArray,
    held: FloatArray,
    prices: FloatArray,
    cost_rate: float,
    impact_coef: float,
    adv: FloatArray,
    sigma: FloatArray,
    initial_capital: float,
) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray, FloatArray, FloatArray]:
    """Weights-based P&L with proportional and square-root impact costs.

    ``held[t]`` are the weights in force over bar ``t`` (earning ``returns[t]``); the trade into
    ``held[t + 1]`` happens at the close of bar ``t`` and its cost is charged to bar ``t``.
    Returns (equity, gross, net, costs in currency, turnover, traded notional per asset).
    """
    n, k = returns.shape
    equity = np.zeros(n)
    gross = np.zeros(n)
    net = np.zeros(n)
    costs = np.zeros(n)
    turnover = np.zeros(n)
    traded = np.zeros((n, k))
    drift = np.zeros(k)
    prev = initial_capital
    for t in range(n):
        g = 0.0
        for j in range(k):
            g += held[t, j] * returns[t, j]
        gross[t] = g
        if prev <= 0.0:
            continue
        if 1.0 + g <= 0.0:
            # Ruin: the account is closed and stays at zero.
            net[t] = -1.0
            prev = 0.0
            continue
        before = prev * (1.0 + g)
        cost_frac = 0.0
        tau = 0.0
        for j in range(k):
            drift[j] = held[t, j] * (1.0 + returns[t, j]) / (1.0 + g)
            target = held[t + 1, j] if t + 1 < n else drift[j]
            dw = target - drift[j]
            adw = abs(dw)
            tau += adw
            traded[t, j] = dw * before
            cost_frac += trade_cost_nb(adw, before, prices[t, j], adv[t, j], sigma[t, j], cost_rate, impact_coef)
            if t == 0 and held[0, j] != 0.0:
                # A position in force over bar 0 (execution_lag=0) is bought from cash at bar 0's close too.
                a0 = abs(held[0, j])
                tau += a0
                traded[0, j] += held[0, j] * before
                cost_frac += trade_cost_nb(a0, before, prices[0, j], adv[0, j], sigma[0, j], cost_rate, impact_coef)
        turnover[t] = tau
        costs[t] = cost_frac * before
        value = max(before * (1.0 - cost_frac), 0.0)
        equity[t] = value
        net[t] = value / prev - 1.0
        prev = value
    return equity, gross, net, costs, turnover, traded


@jit
def rolling_means_nb(close: FloatArray, windows: IntArray) -> FloatArray:
    """Simple moving averages of ``close`` for every window, from one cumulative sum (NaN before warm-up)."""
    n = close.shape[0]
    m = windows.shape[0]
    csum = np.empty(n + 1)
    csum[0] = 0.0
    for t in range(n):
        csum[t + 1] = csum[t] + close[t]
    out = np.full((m, n), np.nan)
    for i in range(m):
        w = windows[i]
        for t in range(w - 1, n):
            out[i, t] = (csum[t + 1] - csum[t + 1 - w]) / w
    return out


@jit
def ma_crossover_grid_nb(
    close: FloatArray,
    mas: FloatArray,
    fast_idx: IntArray,
    slow_idx: IntArray,
    cost_rate: float,
    periods_per_year: float,
) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray]:
    """Long-only MA crossover for every (fast, slow) row pair of ``mas`` in one pass.

    Enter (weight 1) at the close of a bar where fast crosses above slow (fast > slow now,
    fast <= slow on the bar before), exit at the close of a bar where it crosses below. Returns
    total return, annualised Sharpe, number of trades and time in market, one value per pair.
    """
    n = close.shape[0]
    p = fast_idx.shape[0]
    rets = np.zeros(n)
    for t in range(1, n):
        rets[t] = close[t] / close[t - 1] - 1.0
    total = np.empty(p)
    sharpe = np.empty(p)
    trades = np.empty(p)
    exposure = np.empty(p)
    for q in range(p):
        f = mas[fast_idx[q]]
        s = mas[slow_idx[q]]
        pos = 0.0
        value = 1.0
        mean = 0.0
        m2 = 0.0
        ntr = 0
        bars_in = 0
        for t in range(n):
            r = pos * rets[t]
            if pos != 0.0:
                bars_in += 1
            new = pos
            if t > 0:
                f0 = f[t - 1]
                s0 = s[t - 1]
                f1 = f[t]
                s1 = s[t]
                if not (np.isnan(f0) or np.isnan(s0) or np.isnan(f1) or np.isnan(s1)):
                    if pos == 0.0 and f1 > s1 and f0 <= s0:
                        new = 1.0
                    elif pos != 0.0 and f1 < s1 and f0 >= s0:
                        new = 0.0
            c = abs(new - pos) * cost_rate
            if new != pos:
                ntr += 1
            pos = new
            net = (1.0 + r) * (1.0 - c) - 1.0
            value *= 1.0 + net
            # Welford's running mean and variance of the per-bar net returns.
            d = net - mean
            mean += d / (t + 1)
            m2 += d * (net - mean)
        total[q] = value - 1.0
        var = m2 / (n - 1) if n > 1 else np.nan
        sharpe[q] = mean / math.sqrt(var) * math.sqrt(periods_per_year) if var > 0.0 else np.nan
        trades[q] = ntr
        exposure[q] = bars_in / n
    return total, sharpe, trades, exposure
