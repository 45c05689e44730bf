"""The strategy book: which strategies run, on what, with which parameters, and how their trades execute.

A :class:`StrategySpec` names one running instance of a :mod:`quant.signals` strategy: its ``key`` (the
``strategy`` field of every :class:`~desk.schemas.Signal` it emits, so the cost optimiser can find it
again), the quant class (``kind``) and its ``params``, the series it reads (``venue``, ``symbols``,
``timeframe``, ``history``), its capital and sizing caps, and an :class:`ExecutionSpec` for the cost
optimiser. :data:`STRATEGIES` is the desk's book, aligned with the demo universe
(:data:`desk.usecases.universe.DEMO_UNIVERSE`).

``allow_short`` is off by default: a spot venue cannot sell what the account does not hold, so a
negative target weight means flat, not short, for a long-only instance (the signal still records the
strategy's view). Turn it on only where the venue lends (margin, or a shortable equity at Alpaca).

Positions are held per (venue, symbol), not per strategy, so two enabled strategies must never trade
the same (venue, symbol): they would fight over one position. :func:`validate_book` refuses that.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal
from typing import Any, Literal

from desk.domain.orders import OrderType
from quant.signals import (
    MACrossoverStrategy,
    MeanReversionStrategy,
    MomentumStrategy,
    PairsStrategy,
    Strategy,
    VolBreakoutStrategy,
    VolTargetStrategy,
)

__all__ = [
    "STRATEGIES",
    "STRATEGY_TYPES",
    "TIMEFRAME_STEPS",
    "ExecutionSpec",
    "StrategySpec",
    "enabled_strategies",
    "find_strategy",
    "validate_book",
]

STRATEGY_TYPES: Mapping[str, Callable[..., Strategy]] = {
    "momentum": MomentumStrategy,
    "mean_reversion": MeanReversionStrategy,
    "ma_crossover": MACrossoverStrategy,
    "vol_target": VolTargetStrategy,
    "vol_breakout": VolBreakoutStrategy,
    "pairs": PairsStrategy,
}

TIMEFRAME_STEPS: Mapping[str, timedelta] = {
    "1m": timedelta(minutes=1),
    "5m": timedelta(minutes=5),
    "15m": timedelta(minutes=15),
    "30m": timedelta(minutes=30),
    "1h": timedelta(hours=1),
    "4h": timedelta(hours=4),
    "1d": timedelta(days=1),
}

Schedule = Literal["auto", "twap", "vwap", "almgren_chriss"]


@dataclass(frozen=True)
class ExecutionSpec:
    """How the cost optimiser turns this strategy's target changes into a plan.

    ``venues`` are the routing candidates (empty: the signal's venue only); ``fee_bps`` the taker fee
    per venue (``default_fee_bps`` for the rest). ``schedule="auto"`` picks TWAP for orders under
    ``ac_participation`` of the volume expected over ``horizon`` and Almgren–Chriss above it.
    ``risk_aversion`` is Almgren–Chriss's λ per unit of currency.
    """

    venues: tuple[str, ...] = ()
    schedule: Schedule = "auto"
    horizon: timedelta = timedelta(hours=1)
    max_slices: int = 12
    risk_aversion: float = 1e-6
    ac_participation: float = 0.01
    fee_bps: Mapping[str, float] = field(default_factory=dict)
    default_fee_bps: float = 10.0
    order_type: OrderType = OrderType.MARKET

    def __post_init__(self) -> None:
        if self.max_slices < 1 or self.horizon <= timedelta(0):
            raise ValueError("an execution needs max_slices >= 1 and a positive horizon")
        if not (math.isfinite(self.risk_aversion) and self.risk_aversion >= 0.0 and self.ac_participation > 0.0):
            raise ValueError("risk_aversion must be >= 0 and ac_participation > 0")
        # Slices carry no limit price (the placement machine prices each one against live quotes).
        if self.order_type is not OrderType.MARKET:
            raise ValueError("plans are built from market slices; limit pricing belongs to order placement")

    def fee(self, venue: str) -> float:
        return float(self.fee_bps.get(venue, self.default_fee_bps))


@dataclass(frozen=True)
class StrategySpec:
    """One running strategy instance (see the module docstring)."""

    key: str
    kind: str
    venue: str
    symbols: tuple[str, ...]
    timeframe: str
    params: Mapping[str, Any] = field(default_factory=dict)
    history: timedelta = timedelta(days=400)
    capital: Decimal = Decimal(100_000)
    max_weight: float = 1.0
    kelly_fraction: float | None = 0.5
    allow_short: bool = False
    enabled: bool = True
    execution: ExecutionSpec = field(default_factory=ExecutionSpec)

    def __post_init__(self) -> None:
        if self.kind not in STRATEGY_TYPES:
            raise ValueError(f"{self.key}: unknown strategy kind {self.kind!r}")
        if self.timeframe not in TIMEFRAME_STEPS:
            raise ValueError(f"{self.key}: unsupported timeframe {self.timeframe!r}")
        if not self.symbols or len(set(self.symbols)) != len(self.symbols):
            raise ValueError(f"{self.key}: symbols must be non-empty and distinct")
        if self.capital <= 0 or not 0.0 < self.max_weight <= 10.0:
            raise ValueError(f"{self.key}: capital must be positive and max_weight in (0, 10]")
        if self.kelly_fraction is not None and not 0.0 < self.kelly_fraction <= 1.0:
            raise ValueError(f"{self.key}: kelly_fraction must be in (0, 1]")
        self.build()  # bad params fail when the book is loaded, not on the first bar

    @property
    def step(self) -> timedelta:
        return TIMEFRAME_STEPS[self.timeframe]

    @property
    def venues(self) -> tuple[str, ...]:
        """Routing candidates, the strategy's own venue first."""
        return tuple(dict.fromkeys((self.venue, *self.execution.venues)))

    def build(self) -> Strategy:
        return STRATEGY_TYPES[self.kind](**dict(self.params))


def validate_book(specs: Sequence[StrategySpec]) -> tuple[StrategySpec, ...]:
    """The specs, checked: unique keys, and no (venue, symbol) traded by two enabled strategies."""
    keys = [s.key for s in specs]
    if len(keys) != len(set(keys)):
        raise ValueError(f"strategy keys must be unique, got {keys}")
    owner: dict[tuple[str, str], str] = {}
    for spec in specs:
        if not spec.enabled:
            continue
        for venue in spec.venues:
            for symbol in spec.symbols:
                other = owner.setdefault((venue, symbol), spec.key)
                if other != spec.key:
                    raise ValueError(f"{venue} {symbol} is traded by both {other} and {spec.key}")
    return tuple(specs)


def enabled_strategies(specs: Sequence[StrategySpec] | None = None) -> tuple[StrategySpec, ...]:
    return tuple(s for s in validate_book(STRATEGIES if specs is None else specs) if s.enabled)


def find_strategy(specs: Sequence[StrategySpec], key: str) -> StrategySpec:
    for spec in specs:
        if spec.key == key:
            return spec
    raise KeyError(f"no strategy {key!r} in the book")


STRATEGIES: tuple[StrategySpec, ...] = validate_book(
    (
        StrategySpec(
            key="momentum_crypto",
            kind="momentum",
            venue="binance",
            symbols=("BTC/USDT", "ETH/USDT"),
            timeframe="1d",
            params={"lookback": 90, "skip": 5},
            history=timedelta(days=200),
            execution=ExecutionSpec(horizon=timedelta(hours=2), fee_bps={"binance": 10.0}),
        ),
        StrategySpec(
            key="vol_target_equities",
            kind="vol_target",
            venue="alpaca",
            symbols=("SPY", "AAPL"),
            timeframe="1d",
            params={"target_vol": 0.12, "window": 20, "max_leverage": 1.0},
            history=timedelta(days=60),
            execution=ExecutionSpec(horizon=timedelta(hours=1), fee_bps={"alpaca": 0.0}),
        ),
        # Off until its (venue, symbol)s stop overlapping momentum_crypto's: one position per pair.
        StrategySpec(
            key="mean_reversion_crypto_hourly",
            kind="mean_reversion",
            venue="binance",
            symbols=("BTC/USDT", "ETH/USDT"),
            timeframe="1h",
            params={"window": 48, "entry": 2.0},
            history=timedelta(days=10),
            enabled=False,
        ),
    )
)
