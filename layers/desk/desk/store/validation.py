"""Bar validation before storage: pure, so it is unit-tested without a database.

A bad bar is rejected with a reason and counted, never stored. The pydantic ``Bar`` already refuses
most of these at construction, but bars also reach the store through ``model_construct`` (bulk
backfills skip per-field validation for speed) and from adapters, so the store checks again: the
ledger of market data is only as good as its worst row. The database domains and CHECK
constraints are the last line behind this.

Ordering: within one batch each series (venue, symbol, timeframe) must be strictly increasing in
``ts``; a bar at or before the previous *accepted* bar of its series is rejected (a duplicate or a
step back in a venue's response means the response is not what we think it is).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import NamedTuple

from desk.schemas.market import Bar

__all__ = ["RejectReason", "Rejection", "validate_bar", "validate_bars"]


class RejectReason(StrEnum):
    NON_FINITE = "non_finite"
    NON_POSITIVE_PRICE = "non_positive_price"
    HIGH_BELOW_LOW = "high_below_low"
    OPEN_OUTSIDE_RANGE = "open_outside_range"
    CLOSE_OUTSIDE_RANGE = "close_outside_range"
    NEGATIVE_VOLUME = "negative_volume"
    NAIVE_TIMESTAMP = "naive_timestamp"
    FUTURE_TIMESTAMP = "future_timestamp"
    DUPLICATE_TIMESTAMP = "duplicate_timestamp"
    OUT_OF_ORDER = "out_of_order"


class Rejection(NamedTuple):
    """A rejected bar and why; unpacks as ``(bar, reason)``."""

    bar: Bar
    reason: RejectReason


def _finite(value: object) -> bool:
    if isinstance(value, Decimal):
        return value.is_finite()
    if isinstance(value, int | float) and not isinstance(value, bool):
        return value - value == 0  # False for nan and ±inf
    return False


def validate_bar(bar: Bar, now: datetime) -> RejectReason | None:
    """The first reason ``bar`` cannot be stored on its own (ordering aside), or ``None``."""
    o, h, lo, c, v = bar.open, bar.high, bar.low, bar.close, bar.volume
    if not all(_finite(x) for x in (o, h, lo, c, v)):
        return RejectReason.NON_FINITE
    if min(o, h, lo, c) <= 0:
        return RejectReason.NON_POSITIVE_PRICE
    if h < lo:
        return RejectReason.HIGH_BELOW_LOW
    if not lo <= o <= h:
        return RejectReason.OPEN_OUTSIDE_RANGE
    if not lo <= c <= h:
        return RejectReason.CLOSE_OUTSIDE_RANGE
    if v < 0:
        return RejectReason.NEGATIVE_VOLUME
    if bar.ts.utcoffset() is None:
        return RejectReason.NAIVE_TIMESTAMP
    if bar.ts > now:
        return RejectReason.FUTURE_TIMESTAMP
    return None


def validate_bars(bars: Iterable[Bar], now: datetime) -> tuple[list[Bar], list[Rejection]]:
    """Split ``bars`` into those fit to store (input order kept) and the rejected ones with reasons.

    ``now`` is the caller's clock (timezone-aware): a bar opening after it is rejected.
    """
    if now.utcoffset() is None:
        raise ValueError("now must be timezone-aware")
    good: list[Bar] = []
    rejected: list[Rejection] = []
    last_ts: dict[tuple[str, str, str], datetime] = {}
    for bar in bars:
        reason = validate_bar(bar, now)
        series = (bar.venue, bar.symbol, bar.timeframe)
        previous = last_ts.get(series)
        if reason is None and previous is not None and bar.ts <= previous:
            reason = RejectReason.DUPLICATE_TIMESTAMP if bar.ts == previous else RejectReason.OUT_OF_ORDER
        if reason is None:
            good.append(bar)
            last_ts[series] = bar.ts
        else:
            rejected.append(Rejection(bar, reason))
    return good, rejected
