"""GARCH(1,1) fitting: ``quant.garch.fit_garch_many`` against arch fitting one column at a time.

Data: 100 real daily return series of 2,520 observations (about ten years): the 20 S&P 500 stocks
of the skfolio data set (8,312 returns, 1990-2022) over five windows starting every 1,448 days
(consecutive windows overlap by about 43%), decimal returns (both sides work on ×100).
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pandas as pd

from benchmarks.harness import Bench
from desk.local import catalogue
from quant.dcc import dcc_garch
from quant.garch import fit_garch_many

N_OBS = 2520
N_WINDOWS = 5


def _panel() -> pd.DataFrame:
    returns = catalogue.sp500_stocks().pct_change().iloc[1:]
    stride = (len(returns) - N_OBS) // (N_WINDOWS - 1)
    blocks = []
    for w in range(N_WINDOWS):
        block = returns.iloc[w * stride : w * stride + N_OBS].reset_index(drop=True)
        blocks.append(block.add_suffix(f"_{w}"))
    panel = pd.concat(blocks, axis=1)
    assert panel.shape == (N_OBS, 100) and not panel.isna().any().any()
    return panel


def _ours(panel: pd.DataFrame) -> Any:
    return fit_garch_many(panel)


def _arch(panel: pd.DataFrame) -> Any:
    from arch import arch_model

    out = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for col in panel.columns:
            res = arch_model(100.0 * panel[col], mean="Constant", vol="GARCH", p=1, q=1, dist="normal").fit(disp="off")
            out.append(res.params.to_numpy())
    return np.array(out)


def _dcc_panel() -> pd.DataFrame:
    return catalogue.sp500_stocks().pct_change().iloc[1:][["JPM", "BAC", "AAPL", "MSFT", "XOM"]].iloc[-N_OBS:]


BENCHMARKS = [
    Bench(
        name="fit_garch_many 100 x 2520",
        setup=_panel,
        ours=_ours,
        reference=_arch,
        reference_name="arch 8.0 arch_model(...).fit per column",
        target=3.0,
        repeat=3,
    ),
    Bench(
        name="dcc_garch 5 assets x 2520",
        setup=_dcc_panel,
        ours=dcc_garch,
        reference=None,
        reference_name="- (no DCC in arch)",
        target=1.0,
        repeat=3,
    ),
]
