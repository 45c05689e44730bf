"""Markov-switching fit and Hamilton filter against statsmodels' MarkovRegression, on real returns."""

from __future__ import annotations

from typing import Any

import numpy as np
import statsmodels.api as sm

from benchmarks.harness import Bench
from desk.local import catalogue
from quant.markov_switching import fit_markov_switching, hamilton_filter


def _sp500() -> dict[str, Any]:
    r = (100.0 * np.log(catalogue.sp500_index()).diff()).dropna().loc["2015":"2020"].to_numpy()
    model = sm.tsa.MarkovRegression(r, k_regimes=2, trend="c", switching_variance=True)
    params = np.asarray(model.fit().params)
    return {"y": r, "model": model, "params": params}


def _filter_ours(d: dict[str, Any]) -> Any:
    p = d["params"]
    transition = np.array([[p[0], 1 - p[0]], [p[1], 1 - p[1]]])
    return hamilton_filter(d["y"], p[2:4], np.sqrt(p[4:6]), transition)


BENCHMARKS = [
    Bench(
        "markov_switching.fit k=2 (S&P 500 2015-20)",
        _sp500,
        lambda d: fit_markov_switching(d["y"]),
        lambda d: d["model"].fit(),
        "statsmodels MarkovRegression.fit",
        target=1.0,
        repeat=3,
        note="ours: 6 starting points; statsmodels: 1 start + EM",
    ),
    Bench(
        "markov_switching.hamilton_filter + smoother",
        _sp500,
        _filter_ours,
        lambda d: d["model"].smooth(d["params"]),
        "statsmodels MarkovRegression.smooth",
        target=5.0,
    ),
]
