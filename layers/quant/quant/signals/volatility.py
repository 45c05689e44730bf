"""Volatility-driven strategies: volatility targeting and range breakouts.

Targets are decided at the close of bar ``t`` from data up to and including ``t``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from quant._kernels.signals import donchian_breakout_nb
from quant.signals.base import ALL_BUT_CRISIS, TRENDING, Strategy, StrategyData, normalise_regimes

__all__ = ["VolBreakoutStrategy", "VolTargetStrategy"]


def _positive_int(value: int, name: str, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


class VolTargetStrategy(Strategy):
    """Long each instrument with a weight that targets a constant volatility (Moreira and Muir, 2017).

    ``w_t = min(target_vol / σ_t, max_leverage) / n_instruments`` with ``σ_t`` the annualised
    realised volatility: sample std (ddof = 1) of simple returns over the last ``window`` bars
    (including bar ``t``) times ``sqrt(periods_per_year)``. 0 until ``window`` returns exist.
    Trades every regime but CRISIS by default.
    """

    name = "vol_target"

    def __init__(
        self,
        target_vol: float = 0.10,
        window: int = 20,
        max_leverage: float = 2.0,
        periods_per_year: float = 252.0,
        regimes: Any = ALL_BUT_CRISIS,
    ) -> None:
        if not (target_vol > 0.0 and max_leverage > 0.0 and periods_per_year > 0.0):
            raise ValueError(
                f"target_vol, max_leverage and periods_per_year must be positive, got "
                f"{target_vol!r}, {max_leverage!r}, {periods_per_year!r}"
            )
        self.target_vol = float(target_vol)
        self.window = _positive_int(window, "window", minimum=2)
        self.max_leverage = float(max_leverage)
        self.periods_per_year = float(periods_per_year)
        self.regimes = normalise_regimes(regimes)

    @property
    def params(self) -> Mapping[str, Any]:
        return {
            "target_vol": self.target_vol,
            "window": self.window,
            "max_leverage": self.max_leverage,
            "periods_per_year": self.periods_per_year,
        }

    def raw_targets(self, data: StrategyData) -> pd.DataFrame:
        p = data.prices
        vol = p.pct_change().rolling(self.window, min_periods=self.window).std(ddof=1)
        vol = vol * math.sqrt(self.periods_per_year)
        weight = (self.target_vol / vol.where(vol > 0.0)).clip(upper=self.max_leverage)
        # A flat price (zero volatility) would ask for infinite leverage: the cap applies.
        weight = weight.where(~(vol == 0.0), self.max_leverage)
        return weight / p.shape[1]


class VolBreakoutStrategy(Strategy):
    """Donchian channel breakout (the Turtle rules; Faith, 2007).

    Long when the close exceeds the highest high of the previous ``entry_window`` bars, short
    when it falls below the lowest low; a long is closed when the close falls below the lowest
    low of the previous ``exit_window`` bars (a short above the highest high). Highs and lows come
    from ``data.high`` / ``data.low`` when given, else from closes. Channels exclude bar ``t``
    itself, so a breakout is a close beyond the prior range. Target ``±1 / n_instruments``
    (shorts dropped when ``long_only``). Trades TRENDING regimes by default.
    """

    name = "vol_breakout"

    def __init__(
        self,
        entry_window: int = 20,
        exit_window: int = 10,
        long_only: bool = False,
        regimes: Any = frozenset({TRENDING}),
    ) -> None:
        self.entry_window = _positive_int(entry_window, "entry_window")
        self.exit_window = _positive_int(exit_window, "exit_window")
        self.long_only = bool(long_only)
        self.regimes = normalise_regimes(regimes)

    @property
    def params(self) -> Mapping[str, Any]:
        return {"entry_window": self.entry_window, "exit_window": self.exit_window, "long_only": self.long_only}

    def raw_targets(self, data: StrategyData) -> pd.DataFrame:
        close = data.prices
        high = close if data.high is None else data.high.reindex_like(close).astype(float)
        low = close if data.low is None else data.low.reindex_like(close).astype(float)
        out = pd.DataFrame(0.0, index=close.index, columns=close.columns)
        for col in close.columns:
            h = high[col].shift(1)
            lo = low[col].shift(1)
            upper = h.rolling(self.entry_window, min_periods=self.entry_window).max().to_numpy(dtype=float)
            lower = lo.rolling(self.entry_window, min_periods=self.entry_window).min().to_numpy(dtype=float)
            exit_upper = h.rolling(self.exit_window, min_periods=self.exit_window).max().to_numpy(dtype=float)
            exit_lower = lo.rolling(self.exit_window, min_periods=self.exit_window).min().to_numpy(dtype=float)
            c = np.ascontiguousarray(close[col].to_numpy(dtype=float))
            pos = donchian_breakout_nb(c, upper, lower, exit_upper, exit_lower)
            if self.long_only:
                pos = np.maximum(pos, 0.0)
            out[col] = pos
        return out / close.shape[1]
