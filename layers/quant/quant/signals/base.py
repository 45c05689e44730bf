"""The one interface every strategy implements: market data in, target positions out.

A strategy is a small object with a ``name``, its ``params`` and the set of market ``regimes`` it
trades in. :meth:`Strategy.target_positions` takes a :class:`StrategyData` (or a bare prices
DataFrame) and returns a DataFrame of targets with the prices' index and one column per
instrument. Targets are *weights* of equity (1.0 = fully invested long) unless a strategy says
otherwise. They are decided at the close of each bar with data up to and including that bar;
the backtester (``quant.backtest``) is what delays them to the next bar.

The regime gate lives in one place, :meth:`Strategy.target_positions`: where a bar's regime
label is not in ``strategy.regimes`` the target is 0. Labels are compared by their upper-cased
string value, so ``"trending"``, ``"TRENDING"`` and a ``str`` Enum member whose value is either
all match ``"TRENDING"``. Missing labels (NaN) count as "not a trading regime". With no regime
labels supplied, or ``regimes=None``, the gate is open.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import Enum
from typing import Any, ClassVar

import numpy as np
import pandas as pd

__all__ = [
    "ALL_BUT_CRISIS",
    "CHOPPY",
    "CRISIS",
    "RANGING",
    "TRENDING",
    "Strategy",
    "StrategyData",
    "normalise_regimes",
]

TRENDING = "TRENDING"
RANGING = "RANGING"
CHOPPY = "CHOPPY"
CRISIS = "CRISIS"
ALL_BUT_CRISIS: frozenset[str] = frozenset({TRENDING, RANGING, CHOPPY})


def _label(value: Any) -> Any:
    if isinstance(value, Enum):
        value = value.value
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return None
    return str(value).upper()


def normalise_regimes(regimes: Iterable[Any] | None) -> frozenset[str] | None:
    """Upper-cased string values of regime labels (Enum members give their value)."""
    if regimes is None:
        return None
    if isinstance(regimes, (str, Enum)):
        regimes = [regimes]
    return frozenset(str(_label(r)) for r in regimes)


@dataclass(frozen=True)
class StrategyData:
    """What a strategy may look at.

    Attributes
    ----------
    prices : DataFrame
        Closes (rows = bars, ascending; columns = instruments).
    regimes : Series or DataFrame, optional
        Regime labels per bar (one column for all instruments, or one per instrument).
    correlation : DataFrame, optional
        Latest correlation matrix of the instruments, for strategies that use it.
    high, low : DataFrame, optional
        Bar highs and lows with the prices' shape, for range-based strategies.
    """

    prices: pd.DataFrame
    regimes: pd.Series | pd.DataFrame | None = None
    correlation: pd.DataFrame | None = None
    high: pd.DataFrame | None = None
    low: pd.DataFrame | None = None

    @classmethod
    def of(cls, data: StrategyData | pd.DataFrame | pd.Series) -> StrategyData:
        """Accept a StrategyData, a prices DataFrame or a single price Series."""
        source = data if isinstance(data, StrategyData) else None
        if source is not None:
            prices: pd.DataFrame | pd.Series = source.prices
        elif isinstance(data, (pd.DataFrame, pd.Series)):
            prices = data
        else:
            raise ValueError(f"data must be a StrategyData, DataFrame or Series, got {type(data).__name__}")
        if isinstance(prices, pd.Series):
            prices = prices.to_frame(name=prices.name if prices.name is not None else "x0")
        if prices.shape[0] < 2 or prices.shape[1] < 1:
            raise ValueError(f"prices needs at least 2 rows and 1 column, got shape {prices.shape}")
        prices = prices.astype(float)
        if source is None:
            return cls(prices=prices)
        return cls(
            prices=prices, regimes=source.regimes, correlation=source.correlation, high=source.high, low=source.low
        )


class Strategy(ABC):
    """Base class: subclasses implement :meth:`raw_targets`; :meth:`target_positions` gates by regime."""

    name: ClassVar[str] = "strategy"
    regimes: frozenset[str] | None = None

    @property
    @abstractmethod
    def params(self) -> Mapping[str, Any]:
        """The parameters that define this instance (what a grid search varies)."""

    @abstractmethod
    def raw_targets(self, data: StrategyData) -> pd.DataFrame:
        """Targets before the regime gate: index = ``data.prices.index``, columns = instruments."""

    def target_positions(self, data: StrategyData | pd.DataFrame | pd.Series) -> pd.DataFrame:
        """Target positions per bar and instrument, 0 outside ``self.regimes``; NaN never leaves here."""
        d = StrategyData.of(data)
        raw = self.raw_targets(d)
        if not raw.index.equals(d.prices.index):
            raise ValueError(f"{self.name}: targets must keep the prices' index")
        targets = raw.astype(float).fillna(0.0)
        return self._gate(targets, d.regimes)

    def _gate(self, targets: pd.DataFrame, labels: pd.Series | pd.DataFrame | None) -> pd.DataFrame:
        allowed = normalise_regimes(self.regimes)
        if allowed is None or labels is None:
            return targets
        if isinstance(labels, pd.DataFrame) and labels.shape[1] == 1:
            labels = labels.iloc[:, 0]
        if isinstance(labels, pd.Series):
            aligned = labels.reindex(targets.index)
            ok = aligned.map(lambda v: _label(v) in allowed).to_numpy(dtype=bool)
            return targets.mul(ok.astype(float), axis=0)
        frame = labels.reindex(index=targets.index, columns=targets.columns)
        ok_frame = frame.map(lambda v: _label(v) in allowed).to_numpy(dtype=bool)
        return targets * ok_frame.astype(float)

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.params.items())
        return f"{type(self).__name__}({args})"
