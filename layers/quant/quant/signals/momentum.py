"""Trend and mean-reversion strategies on each instrument's own price history.

All targets are decided at the close of bar ``t`` from prices up to and including ``t``; the
backtester applies them from bar ``t + 1``. Each strategy's default ``regimes`` say where it is
meant to trade (trend followers in TRENDING markets, mean reversion in RANGING ones) and exclude
CRISIS.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from quant.signals.base import RANGING, TRENDING, Strategy, StrategyData, normalise_regimes

__all__ = ["MACrossoverStrategy", "MeanReversionStrategy", "MomentumStrategy"]


def _sign(frame: pd.DataFrame) -> pd.DataFrame:
    """+1, -1 or 0 (also for NaN), keeping the frame's labels."""
    return frame.gt(0.0).astype(float) - frame.lt(0.0).astype(float)


def _check_window(value: int, name: str, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


class MomentumStrategy(Strategy):
    """Time-series momentum: hold the sign of the trailing return (Moskowitz, Ooi and Pedersen, 2012).

    ``signal_t = sign(P_{t-skip} / P_{t-lookback} - 1)``: the return over the last ``lookback``
    bars excluding the most recent ``skip`` (the 12-1 month convention is ``lookback=252,
    skip=21`` on daily bars). Target weight is ``signal / n_instruments`` (equal gross budget),
    or ``max(signal, 0) / n`` when ``long_only``. 0 until ``lookback`` bars of history exist.
    """

    name = "momentum"

    def __init__(
        self, lookback: int = 252, skip: int = 21, long_only: bool = False, regimes: Any = frozenset({TRENDING})
    ) -> None:
        self.lookback = _check_window(lookback, "lookback")
        self.skip = _check_window(skip, "skip", minimum=0)
        if self.skip >= self.lookback:
            raise ValueError(f"skip ({skip}) must be smaller than lookback ({lookback})")
        self.long_only = bool(long_only)
        self.regimes = normalise_regimes(regimes)

    @property
    def params(self) -> Mapping[str, Any]:
        return {"lookback": self.lookback, "skip": self.skip, "long_only": self.long_only}

    def raw_targets(self, data: StrategyData) -> pd.DataFrame:
        p = data.prices
        past = p.shift(self.skip) / p.shift(self.lookback) - 1.0
        signal = _sign(past)
        if self.long_only:
            signal = signal.clip(lower=0.0)
        return signal / p.shape[1]


class MeanReversionStrategy(Strategy):
    """Fade a price's deviation from its moving average (Bollinger-band style mean reversion).

    ``z_t = (P_t - SMA_w(P)_t) / std_w(P)_t`` (sample std, ddof = 1, window includes ``t``);
    target ``-clip(z / entry, -1, 1) / n_instruments``: full short at ``z >= entry``, full long at
    ``z <= -entry``, proportional in between. Trades RANGING markets by default.
    """

    name = "mean_reversion"

    def __init__(self, window: int = 20, entry: float = 2.0, regimes: Any = frozenset({RANGING})) -> None:
        self.window = _check_window(window, "window", minimum=2)
        if not entry > 0.0:
            raise ValueError(f"entry must be positive, got {entry!r}")
        self.entry = float(entry)
        self.regimes = normalise_regimes(regimes)

    @property
    def params(self) -> Mapping[str, Any]:
        return {"window": self.window, "entry": self.entry}

    def raw_targets(self, data: StrategyData) -> pd.DataFrame:
        p = data.prices
        roll = p.rolling(self.window, min_periods=self.window)
        std = roll.std(ddof=1)
        z = (p - roll.mean()) / std.where(std > 0.0)
        return -(z / self.entry).clip(-1.0, 1.0) / p.shape[1]


class MACrossoverStrategy(Strategy):
    """Moving-average crossover: long while SMA(fast) > SMA(slow), short (or flat) otherwise.

    Simple moving averages of closes, windows including bar ``t``; ``+1 / n`` when fast is above
    slow, ``-1 / n`` below (0 when ``long_only``), 0 until the slow average exists or when equal.
    This is the state form of the rule; :func:`quant.backtest_grid.ma_crossover_grid` uses the
    event form (enter on the crossing), which differs only before the first crossing.
    """

    name = "ma_crossover"

    def __init__(
        self, fast: int = 50, slow: int = 200, long_only: bool = False, regimes: Any = frozenset({TRENDING})
    ) -> None:
        self.fast = _check_window(fast, "fast")
        self.slow = _check_window(slow, "slow", minimum=2)
        if self.fast >= self.slow:
            raise ValueError(f"fast ({fast}) must be shorter than slow ({slow})")
        self.long_only = bool(long_only)
        self.regimes = normalise_regimes(regimes)

    @property
    def params(self) -> Mapping[str, Any]:
        return {"fast": self.fast, "slow": self.slow, "long_only": self.long_only}

    def raw_targets(self, data: StrategyData) -> pd.DataFrame:
        p = data.prices
        diff = p.rolling(self.fast, min_periods=self.fast).mean() - p.rolling(self.slow, min_periods=self.slow).mean()
        signal = _sign(diff)
        if self.long_only:
            signal = signal.clip(lower=0.0)
        return signal / p.shape[1]
