"""Trading strategies behind one interface: market data in, target positions out.

* :mod:`~quant.signals.base`: :class:`Strategy` (name, params, regimes, ``target_positions``) and
  :class:`StrategyData`;
* :mod:`~quant.signals.pairs` and :mod:`~quant.signals.cointegration`: Engle-Granger test,
  half-life, rolling z-score, the pairs state machine, pair scanning, :class:`PairsStrategy`;
* :mod:`~quant.signals.arbitrage`: cross-exchange opportunities from order books;
* :mod:`~quant.signals.volatility`: volatility targeting and Donchian breakout;
* :mod:`~quant.signals.momentum`: time-series momentum, mean reversion, MA crossover.
"""

from quant.signals.arbitrage import cross_exchange_opportunities
from quant.signals.base import (
    ALL_BUT_CRISIS,
    CHOPPY,
    CRISIS,
    RANGING,
    TRENDING,
    Strategy,
    StrategyData,
    normalise_regimes,
)
from quant.signals.cointegration import (
    EngleGrangerResult,
    adf_no_constant,
    engle_granger,
    mackinnon_critical_values,
    mackinnon_pvalue,
)
from quant.signals.momentum import MACrossoverStrategy, MeanReversionStrategy, MomentumStrategy
from quant.signals.pairs import PairsStrategy, half_life, pairs_positions, rolling_zscore, scan_pairs
from quant.signals.volatility import VolBreakoutStrategy, VolTargetStrategy

__all__ = [
    "ALL_BUT_CRISIS",
    "CHOPPY",
    "CRISIS",
    "RANGING",
    "TRENDING",
    "EngleGrangerResult",
    "MACrossoverStrategy",
    "MeanReversionStrategy",
    "MomentumStrategy",
    "PairsStrategy",
    "Strategy",
    "StrategyData",
    "VolBreakoutStrategy",
    "VolTargetStrategy",
    "adf_no_constant",
    "cross_exchange_opportunities",
    "engle_granger",
    "half_life",
    "mackinnon_critical_values",
    "mackinnon_pvalue",
    "normalise_regimes",
    "pairs_positions",
    "rolling_zscore",
    "scan_pairs",
]
