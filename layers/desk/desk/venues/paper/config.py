"""Configuration of the paper venue: fees, optional impact, starting balances, seed."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal

from quant.costs import FeeSchedule

__all__ = ["ImpactModel", "PaperConfig"]


@dataclass(frozen=True)
class ImpactModel:
    """Square-root impact (:func:`quant.costs.sqrt_impact`) per symbol: ADV in base units, daily vol."""

    adv: Mapping[str, float]
    daily_vol: Mapping[str, float]
    c: float = 1.0


@dataclass(frozen=True)
class PaperConfig:
    """``fees`` apply to every execution (maker when a resting order fills, taker otherwise).

    ``balances`` are the starting totals by currency; ``seed`` makes venue order and trade ids
    reproducible, so two runs over the same replay produce identical ledgers.
    """

    venue: str = "paper"
    fees: FeeSchedule = field(default_factory=lambda: FeeSchedule.flat(0.0, 0.0))
    impact: ImpactModel | None = None
    balances: Mapping[str, Decimal] = field(default_factory=dict)
    seed: int = 0
