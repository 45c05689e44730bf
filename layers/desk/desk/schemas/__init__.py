"""pydantic v2 message schemas: market data, analytics, trading (frozen, ``extra="forbid"``).

See :mod:`desk.schemas.base` for the shared conventions (UTC datetimes, Decimal money as JSON strings).
"""

from __future__ import annotations

from desk.schemas.analytics import CorrelationSnapshot, Regime, RegimeChanged, RiskBreach, RiskSnapshot, Signal
from desk.schemas.base import DeskModel
from desk.schemas.market import TIMEFRAMES, Bar, BarsIngested, BookLevel, FeedRecovered, OrderBook, Quote, QuoteStale
from desk.schemas.trading import (
    Balance,
    ExecutionPlan,
    FillRecord,
    KillSwitchState,
    OrderCompleted,
    OrderIntent,
    OrderRecord,
    PlanSlice,
    PositionRecord,
)

__all__ = [
    "TIMEFRAMES",
    "Balance",
    "Bar",
    "BarsIngested",
    "BookLevel",
    "CorrelationSnapshot",
    "DeskModel",
    "ExecutionPlan",
    "FeedRecovered",
    "FillRecord",
    "KillSwitchState",
    "OrderBook",
    "OrderCompleted",
    "OrderIntent",
    "OrderRecord",
    "PlanSlice",
    "PositionRecord",
    "Quote",
    "QuoteStale",
    "Regime",
    "RegimeChanged",
    "RiskBreach",
    "RiskSnapshot",
    "Signal",
]
