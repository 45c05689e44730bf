"""quant.risk: VaR/CVaR of 1,000 portfolios over the 20 skfolio S&P 500 stocks (8,312 days).

References, timed in the same run:
* historical: a loop of ``np.quantile(R @ w, 0.01)`` per portfolio (numpy's default "linear"
  method, the same definition as ours), and the vectorised ``np.quantile(R @ W.T, axis=0)``;
  CVaR: a loop of empyrical's ``conditional_value_at_risk`` (same tail definition);
* Monte Carlo (10,000 normal paths): per portfolio, ``rng.multivariate_normal(mu, cov, 10_000) @ w``
  then ``np.quantile``; and the vectorised numpy form (one draw, ``@ W.T``, ``np.quantile``).
  Ours draws the paths once for all portfolios (common random numbers) and selects the tail with
  a bounded heap in numba instead of sorting.
"""

from __future__ import annotations

from typing import Any

import empyrical
import numpy as np

from benchmarks.harness import Bench
from desk.local import catalogue
from quant import risk

N_PORTFOLIOS = 1_000
N_PATHS = 10_000
LEVEL = 0.99


def _setup() -> dict[str, Any]:
    R = catalogue.sp500_stocks().pct_change().dropna().to_numpy()
    W = np.random.default_rng(0).dirichlet(np.ones(R.shape[1]), N_PORTFOLIOS)
    return {"R": R, "W": W, "mu": R.mean(axis=0), "cov": np.cov(R, rowvar=False)}


def _hist_ours(d: dict[str, Any]) -> Any:
    return risk.portfolio_var(d["R"], d["W"], LEVEL)


def _hist_loop(d: dict[str, Any]) -> Any:
    return [-np.quantile(d["R"] @ w, 1 - LEVEL) for w in d["W"]]


def _hist_vectorised(d: dict[str, Any]) -> Any:
    return -np.quantile(d["R"] @ d["W"].T, 1 - LEVEL, axis=0)


def _cvar_ours(d: dict[str, Any]) -> Any:
    return risk.portfolio_cvar(d["R"], d["W"], LEVEL)


def _cvar_loop(d: dict[str, Any]) -> Any:
    return [-empyrical.conditional_value_at_risk(d["R"] @ w, 1 - LEVEL) for w in d["W"]]


def _mc_ours(d: dict[str, Any]) -> Any:
    return risk.var_monte_carlo((d["mu"], d["cov"]), d["W"], LEVEL, n_paths=N_PATHS, seed=1)


def _mc_loop(d: dict[str, Any]) -> Any:
    rng = np.random.default_rng(1)
    out = []
    for w in d["W"]:
        paths = rng.multivariate_normal(d["mu"], d["cov"], N_PATHS)
        out.append(-np.quantile(paths @ w, 1 - LEVEL))
    return out


def _mc_vectorised(d: dict[str, Any]) -> Any:
    paths = np.random.default_rng(1).multivariate_normal(d["mu"], d["cov"], N_PATHS)
    return -np.quantile(paths @ d["W"].T, 1 - LEVEL, axis=0)


BENCHMARKS = [
    Bench(
        "risk.portfolio_var historical 1000 pf",
        _setup,
        _hist_ours,
        _hist_loop,
        "loop of np.quantile(R @ w)",
        target=1.5,
    ),
    Bench(
        "risk.portfolio_var historical 1000 pf (vec)",
        _setup,
        _hist_ours,
        _hist_vectorised,
        "np.quantile(R @ W.T, axis=0)",
        target=1.0,
    ),
    Bench(
        "risk.portfolio_cvar historical 1000 pf",
        _setup,
        _cvar_ours,
        _cvar_loop,
        "loop of empyrical.conditional_value_at_risk",
        target=1.5,
    ),
    Bench(
        "risk.var_monte_carlo 1000 pf x 10k paths",
        _setup,
        _mc_ours,
        _mc_loop,
        "loop of rng.multivariate_normal + np.quantile",
        target=5.0,
        repeat=1,  # the reference takes ~20 s a run on this machine
    ),
    Bench(
        "risk.var_monte_carlo 1000 pf x 10k (vec)",
        _setup,
        _mc_ours,
        _mc_vectorised,
        "one multivariate_normal draw, @ W.T, np.quantile",
        target=1.0,
    ),
]
