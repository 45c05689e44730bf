"""quant.costs: Almgren–Chriss closed form vs numerical optimisation, and routing vs a linear program.

Per-λ figures: divide the "ours" time of the 1,000-λ frontier by 1,000, and the reference time of
the 10-λ rows by 10.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
from scipy.optimize import linprog, minimize

from benchmarks.harness import Bench
from desk.local import catalogue
from quant.execution import almgren_chriss_frontier
from quant.routing import VenueLimits, choose_venues

# Almgren & Chriss (2000) sample problem, sliced finer (N = 50) so the optimiser has work to do.
PAPER: dict[str, Any] = {"X": 1e6, "T": 5.0, "N": 50, "sigma": 0.95, "eta": 2.5e-6, "epsilon": 0.0625, "gamma": 2.5e-7}


def _scipy_frontier(lams: np.ndarray) -> list[tuple[float, float]]:
    """The numerical reference: BFGS on E + λV over the N − 1 free holdings, one solve per λ."""
    X, T, N, sigma = PAPER["X"], PAPER["T"], PAPER["N"], PAPER["sigma"]
    tau = T / N
    eta_t = PAPER["eta"] - 0.5 * PAPER["gamma"] * tau
    out = []
    for lam in lams:

        def utility(y: np.ndarray, lam: float = float(lam)) -> tuple[float, np.ndarray]:
            x = np.concatenate(([1.0], y, [0.0])) * X
            n = x[:-1] - x[1:]
            e = 0.5 * PAPER["gamma"] * X**2 + PAPER["epsilon"] * np.abs(n).sum() + eta_t / tau * (n**2).sum()
            v = sigma**2 * tau * (x[1:] ** 2).sum()
            dn = PAPER["epsilon"] * np.sign(n) + 2 * eta_t / tau * n
            grad = dn[1:] - dn[:-1] + 2 * lam * sigma**2 * tau * x[1:-1]
            return (e + lam * v) / X**2, grad / X

        res = minimize(utility, np.linspace(1, 0, N + 1)[1:-1], jac=True, method="BFGS", options={"gtol": 1e-12})
        out.append((float(lam), float(res.fun)))
    return out


def _snapshot_asks(name: str) -> np.ndarray:
    with catalogue.tick_lines(name) as fh:
        for line in fh:
            payload = line.partition(" ")[2]
            if '"lastUpdateId"' in payload:
                return np.asarray(json.loads(payload)["asks"], dtype=float)
    raise RuntimeError(f"{name} has no depth snapshot")


def _books() -> dict[str, Any]:
    books = {
        "spot": _snapshot_asks("ticks/hftbacktest_spot_btcusdt_20240808.gz"),
        "perp": _snapshot_asks("ticks/hftbacktest_usdm_btcusdt_20240808.gz"),
    }
    return {"books": books, "fees": {"spot": 10.0, "perp": 5.0}, "limits": {"spot": VenueLimits(max_quantity=30.0)}}


def _route(d: dict[str, Any]) -> Any:
    return choose_venues("buy", 60.0, d["books"], d["fees"], d["limits"])


def _route_lp(d: dict[str, Any]) -> Any:
    spot, perp = d["books"]["spot"], d["books"]["perp"]
    p = np.r_[spot[:, 0] * (1 + 10e-4), perp[:, 0] * (1 + 5e-4)]
    s = np.r_[spot[:, 1], perp[:, 1]]
    a_ub = np.r_[np.ones(len(spot)), np.zeros(len(perp))][None, :]
    return linprog(p, A_ub=a_ub, b_ub=[30.0], A_eq=np.ones((1, p.size)), b_eq=[60.0], bounds=np.c_[0 * s, s])


LAMS_10 = np.logspace(-8, -5, 10)
LAMS_1000 = np.logspace(-10, -3, 1000)

BENCHMARKS: list[Bench] = [
    Bench(
        name="almgren_chriss_frontier N=50, 10 λ",
        setup=lambda: LAMS_10,
        ours=lambda lams: almgren_chriss_frontier(**PAPER, lams=lams),
        reference=_scipy_frontier,
        reference_name="scipy.optimize BFGS per λ",
        target=100.0,
        note="same 10 λ both sides",
    ),
    Bench(
        name="almgren_chriss_frontier N=50, 1,000 λ",
        setup=lambda: LAMS_1000,
        ours=lambda lams: almgren_chriss_frontier(**PAPER, lams=lams),
        reference=None,
        reference_name="-",
        target=1.0,
        note="per λ = ours / 1,000",
    ),
    Bench(
        name="choose_venues BTCUSDT spot+perp 2x1,000 lv",
        setup=_books,
        ours=_route,
        reference=_route_lp,
        reference_name="scipy.optimize.linprog (HiGHS)",
        target=1.0,
        note="real Binance snapshots, buy 60 BTC",
    ),
]
