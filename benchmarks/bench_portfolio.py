"""quant.portfolio against PyPortfolioOpt (cvxpy for the QP, its HRPOpt for HRP) on real data."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from pypfopt import EfficientFrontier, HRPOpt
from pypfopt.expected_returns import returns_from_prices
from scipy.optimize import fsolve

from benchmarks.harness import Bench
from desk.local import catalogue
from quant import portfolio


def _cov_3y() -> pd.DataFrame:
    return catalogue.sp500_stocks().pct_change().iloc[-756:].cov()


def _hrp_returns() -> pd.DataFrame:
    return returns_from_prices(catalogue.pypfopt_prices())


def _fsolve_erc(cov: pd.DataFrame) -> Any:
    s = cov.to_numpy() / np.diag(cov).mean()
    b = np.full(s.shape[0], 1.0 / s.shape[0])
    y = fsolve(lambda y: y * (s @ y) - b, 1.0 / np.sqrt(np.diag(s)), xtol=1e-14)
    return y / y.sum()


BENCHMARKS: list[Bench] = [
    Bench(
        name="min_variance long-only, 20 stocks",
        setup=_cov_3y,
        ours=lambda cov: portfolio.min_variance(cov),
        reference=lambda cov: EfficientFrontier(None, cov, weight_bounds=(0, 1)).min_volatility(),
        reference_name="pypfopt EfficientFrontier.min_volatility (cvxpy)",
        target=1.0,
    ),
    Bench(
        name="min_variance 2%..20% box, 20 stocks",
        setup=_cov_3y,
        ours=lambda cov: portfolio.min_variance(cov, bounds=(0.02, 0.2)),
        reference=lambda cov: EfficientFrontier(None, cov, weight_bounds=(0.02, 0.2)).min_volatility(),
        reference_name="pypfopt EfficientFrontier.min_volatility (cvxpy)",
        target=1.0,
    ),
    Bench(
        name="hrp single linkage, 20 stocks x 7125 days, NaNs",
        setup=_hrp_returns,
        ours=lambda r: portfolio.hrp(r),
        reference=lambda r: HRPOpt(r).optimize(linkage_method="single"),
        reference_name="pypfopt HRPOpt.optimize",
        target=1.0,
    ),
    Bench(
        name="risk_parity (ERC), 20 stocks",
        setup=_cov_3y,
        ours=lambda cov: portfolio.risk_parity(cov),
        reference=_fsolve_erc,
        reference_name="scipy fsolve on y*(Σy) = b",
        target=1.0,
        note="no library reference; fsolve is the test's independent solver",
    ),
]
