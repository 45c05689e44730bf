"""Compile every numba kernel ahead of time, through the public API, with the argument types the desk uses.

The container image runs ``python -m quant.warmup`` at build time with ``NUMBA_CACHE_DIR`` set, so a
function's first call loads machine code from the cache instead of compiling it (seconds per kernel
on a cold Lambda). Kernels are reached through the functions the handlers call, on a small seeded
random walk, so the compiled signatures are the ones met in production (contiguous float64 arrays,
int64 windows). :func:`uncompiled` lists any kernel the walk missed; ``python -m quant.warmup``
fails if there is one, so a new kernel cannot silently ship cold.
"""

from __future__ import annotations

import importlib
import pkgutil
import sys
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["kernels", "uncompiled", "warmup"]


def kernels() -> dict[str, Any]:
    """Every numba dispatcher in :mod:`quant._kernels`, by ``module.name``."""
    from numba.core.registry import CPUDispatcher

    import quant._kernels as package

    found: dict[str, Any] = {}
    for info in pkgutil.iter_modules(package.__path__, "quant._kernels."):
        module = importlib.import_module(info.name)
        for name, value in vars(module).items():
            if isinstance(value, CPUDispatcher) and value.py_func.__module__ == module.__name__:
                found[f"{info.name.rsplit('.', 1)[-1]}.{name}"] = value
    return found


def uncompiled() -> list[str]:
    """Kernels with no compiled signature in this process."""
    return sorted(name for name, dispatcher in kernels().items() if not dispatcher.signatures)


def _market(n: int = 400, assets: int = 4) -> tuple[pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(20240101)
    index = pd.date_range("2020-01-01", periods=n, freq="D")
    returns = pd.DataFrame(rng.normal(0.0003, 0.02, (n, assets)), index=index, columns=[f"A{k}" for k in range(assets)])
    returns.iloc[:, 1] = 0.6 * returns.iloc[:, 0] + 0.8 * returns.iloc[:, 1]  # a cointegrated-looking pair
    prices = pd.DataFrame(100.0 * np.exp(returns.cumsum().to_numpy()), index=index, columns=returns.columns)
    return returns, prices


def warmup() -> int:
    """Call every public path that reaches a kernel; returns how many kernels are compiled."""
    from quant import (
        backtest,
        backtest_grid,
        correlation,
        dcc,
        garch,
        indicators,
        markov_switching,
        metrics,
        portfolio,
        regime,
        risk,
    )
    from quant.signals import (
        MACrossoverStrategy,
        MeanReversionStrategy,
        MomentumStrategy,
        PairsStrategy,
        VolBreakoutStrategy,
        VolTargetStrategy,
        pairs_positions,
        rolling_zscore,
    )

    returns, prices = _market()
    close = prices.iloc[:, 0]
    high, low = close * 1.01, close * 0.99
    for fn in (indicators.atr, indicators.adx):
        fn(high, low, close, 14)
    indicators.true_range(high, low, close)
    indicators.rsi(close, 14)
    indicators.sma(close, 20)
    indicators.ema(close, 20)
    indicators.bollinger(close, 20, 2.0)
    indicators.bollinger_bandwidth(close, 20, 2.0)
    indicators.choppiness(high, low, close, 14)
    indicators.realized_volatility(close, 20, 365)
    labels = regime.classify_regimes(high, low, close)
    regime.classify_regimes_from_close(close)
    regime.transition_matrix(labels.dropna())
    markov_switching.fit_markov_switching(returns.iloc[:, 0].to_numpy(), 2)
    correlation.pearson(returns)
    correlation.pearson(returns, min_periods=30)
    correlation.ewma_covariance(returns)
    correlation.ledoit_wolf(returns)
    correlation.rolling_correlation(returns, 60)
    garch.fit_garch(returns.iloc[:, 0])
    dcc.dcc_garch(returns.iloc[:, :3])
    cov = returns.cov().to_numpy()
    portfolio.min_variance(cov)
    portfolio.risk_parity(cov)
    portfolio.hrp(returns)
    weights = np.full(returns.shape[1], 1.0 / returns.shape[1])
    for level in (0.95, 0.99):
        risk.var_historical(returns.iloc[:, 0], level)
        risk.cvar_historical(returns.iloc[:, 0], level)
        risk.portfolio_var(returns, weights, level)
        risk.portfolio_cvar(returns, weights, level)
        risk.component_var_historical(returns, weights, level)
        risk.component_cvar_historical(returns, weights, level)
    risk.var_historical(returns.iloc[:, 0], 0.99, horizon=10)
    metrics.summary(returns.iloc[:, 0])
    targets = pd.DataFrame(0.25, index=prices.index, columns=prices.columns)
    backtest.backtest(prices, targets, fee_bps=10.0, half_spread_bps=2.0)
    backtest_grid.ma_crossover_grid(close, [5, 10], [20, 50])
    data = prices.iloc[:, :2]
    for strategy in (MomentumStrategy(), MeanReversionStrategy(), MACrossoverStrategy(), VolTargetStrategy(),
                     VolBreakoutStrategy(), PairsStrategy("A0", "A1")):  # fmt: skip
        strategy.target_positions(data)
    pairs_positions(rolling_zscore(prices.iloc[:, 0] - prices.iloc[:, 1], 30))
    return len(kernels()) - len(uncompiled())


def main() -> int:
    compiled = warmup()
    missing = uncompiled()
    print(f"quant.warmup: {compiled} kernels compiled; not reached: {', '.join(missing) or 'none'}")
    return 1 if missing else 0


if __name__ == "__main__":
    sys.exit(main())
