"""quant.correlation against scikit-learn and pandas.

Data: seeded synthetic daily returns from a one-factor model (market beta ~ 1, 1% market and
1.5% idiosyncratic daily volatility), 2,520 days (about ten years) by 500 or 100 assets. Random
rather than bootstrapped real returns because the real sets hold only 20 assets, and copies of a
column would make the sample covariance degenerate.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from benchmarks.harness import Bench
from quant.correlation import ewma_covariance, ledoit_wolf, pearson, rolling_correlation

N_OBS = 2520


def _factor_returns(n_assets: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    market = rng.normal(0.0003, 0.01, N_OBS)
    beta = rng.normal(1.0, 0.3, n_assets)
    idio = rng.normal(0.0, 0.015, (N_OBS, n_assets))
    index = pd.bdate_range("2010-01-01", periods=N_OBS)
    return pd.DataFrame(np.outer(market, beta) + idio, index=index, columns=[f"A{i}" for i in range(n_assets)])


def _wide() -> pd.DataFrame:
    return _factor_returns(500, seed=1)


def _narrow() -> pd.DataFrame:
    return _factor_returns(100, seed=2)


def _sklearn_lw(r: pd.DataFrame) -> Any:
    from sklearn.covariance import LedoitWolf

    return LedoitWolf().fit(r.to_numpy())


def _ewma_numpy(r: pd.DataFrame) -> Any:
    x = r.to_numpy()
    path = np.empty((x.shape[0], x.shape[1], x.shape[1]))
    sigma = x[:20].T @ x[:20] / 20
    path[19] = sigma
    for t in range(20, x.shape[0]):
        sigma = 0.94 * sigma + 0.06 * np.outer(x[t], x[t])
        path[t] = sigma
    return path


BENCHMARKS = [
    Bench(
        name="ledoit_wolf 500 x 2520",
        setup=_wide,
        ours=ledoit_wolf,
        reference=_sklearn_lw,
        reference_name="sklearn LedoitWolf().fit",
        target=2.0,
    ),
    Bench(
        name="rolling_correlation 100 x 2520, window 60",
        setup=_narrow,
        ours=lambda r: rolling_correlation(r, 60),
        reference=lambda r: r.rolling(60).corr(),
        reference_name="pandas DataFrame.rolling(60).corr()",
        target=2.0,
        repeat=3,
    ),
    Bench(
        name="pearson 500 x 2520",
        setup=_wide,
        ours=pearson,
        reference=lambda r: r.corr(),
        reference_name="pandas DataFrame.corr()",
        target=1.0,
    ),
    Bench(
        name="ewma_covariance path 100 x 2520",
        setup=_narrow,
        ours=lambda r: ewma_covariance(r, 0.94, init_window=20, return_path=True),
        reference=_ewma_numpy,
        reference_name="numpy loop of np.outer updates",
        target=1.0,
    ),
]
