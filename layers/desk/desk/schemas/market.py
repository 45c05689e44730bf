"""Market data messages: bars, quotes and order books, plus the ``bars.ingested`` / feed events.

Bars are stamped with their *open* time (ccxt's convention) in UTC. Prices and volumes are
``Decimal``: they arrive from the venue and are stored as ``numeric``; the quant layer converts to
float arrays when it reads them.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Self

from pydantic import Field, model_validator

from desk.domain.instruments import DECIMAL_CONTEXT
from desk.schemas.base import DeskModel, Identifier, NonNegativeDecimal, PositiveDecimal, Symbol, UtcDatetime

__all__ = [
    "TIMEFRAMES",
    "Bar",
    "BarGap",
    "BarsIngested",
    "BookLevel",
    "FeedRecovered",
    "OrderBook",
    "Quote",
    "QuoteStale",
    "Timeframe",
]

# ccxt timeframe strings the desk supports (one minute to one day: mid- and low-frequency only).
TIMEFRAMES = ("1m", "5m", "15m", "30m", "1h", "4h", "1d")
Timeframe = Annotated[str, Field(pattern=r"^(1m|5m|15m|30m|1h|4h|1d)$")]


class Bar(DeskModel):
    """One OHLCV bar. ``low <= open, close <= high``; ``volume >= 0`` (base units)."""

    venue: Identifier
    symbol: Symbol
    timeframe: Timeframe
    ts: UtcDatetime
    open: PositiveDecimal
    high: PositiveDecimal
    low: PositiveDecimal
    close: PositiveDecimal
    volume: NonNegativeDecimal

    @model_validator(mode="after")
    def _ohlc_consistent(self) -> Self:
        if self.high < self.low:
            raise ValueError(f"bar high {self.high} < low {self.low}")
        for name in ("open", "close"):
            value = getattr(self, name)
            if not self.low <= value <= self.high:
                raise ValueError(f"bar {name} {value} outside [low {self.low}, high {self.high}]")
        return self


class Quote(DeskModel):
    """Top of book. A locked book (``ask == bid``) is accepted, a crossed one (``ask < bid``) is not."""

    venue: Identifier
    symbol: Symbol
    ts: UtcDatetime
    bid: PositiveDecimal
    ask: PositiveDecimal
    bid_size: NonNegativeDecimal
    ask_size: NonNegativeDecimal
    # When this process received it (the venue's ``ts`` says when it happened); the gap is feed lag.
    received_at: UtcDatetime | None = None

    @model_validator(mode="after")
    def _not_crossed(self) -> Self:
        if self.ask < self.bid:
            raise ValueError(f"crossed quote: ask {self.ask} < bid {self.bid}")
        return self

    @property
    def mid(self) -> Decimal:
        return DECIMAL_CONTEXT.divide(DECIMAL_CONTEXT.add(self.bid, self.ask), 2)


class BookLevel(DeskModel):
    price: PositiveDecimal
    quantity: PositiveDecimal


class OrderBook(DeskModel):
    """A depth snapshot: bids strictly descending, asks strictly ascending, best ask >= best bid."""

    venue: Identifier
    symbol: Symbol
    ts: UtcDatetime
    bids: tuple[BookLevel, ...]
    asks: tuple[BookLevel, ...]
    sequence: Annotated[int, Field(ge=0)] | None = None
    received_at: UtcDatetime | None = None

    @model_validator(mode="after")
    def _sorted_and_uncrossed(self) -> Self:
        if any(b.price >= a.price for a, b in zip(self.bids, self.bids[1:], strict=False)):
            raise ValueError("bids must be strictly descending by price")
        if any(b.price <= a.price for a, b in zip(self.asks, self.asks[1:], strict=False)):
            raise ValueError("asks must be strictly ascending by price")
        if self.bids and self.asks and self.asks[0].price < self.bids[0].price:
            raise ValueError(f"crossed book: best ask {self.asks[0].price} < best bid {self.bids[0].price}")
        return self


class BarsIngested(DeskModel):
    """Data of ``bars.ingested``: bars ``[first_ts, last_ts]`` (open times) were upserted."""

    venue: Identifier
    symbol: Symbol
    timeframe: Timeframe
    count: Annotated[int, Field(ge=1)]
    first_ts: UtcDatetime
    last_ts: UtcDatetime

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        if self.last_ts < self.first_ts:
            raise ValueError("last_ts must not precede first_ts")
        return self


class QuoteStale(DeskModel):
    """Data of ``quote.stale``: no quote for ``symbol`` since ``last_quote_at`` (None: never)."""

    venue: Identifier
    symbol: Symbol
    last_quote_at: UtcDatetime | None
    detected_at: UtcDatetime
    max_age_seconds: Annotated[float, Field(gt=0)]


class FeedRecovered(DeskModel):
    """Data of ``feed.recovered``: quotes flow again (``symbol`` None: the whole venue feed)."""

    venue: Identifier
    symbol: Symbol | None = None
    down_since: UtcDatetime
    recovered_at: UtcDatetime

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        if self.recovered_at < self.down_since:
            raise ValueError("recovered_at must not precede down_since")
        return self


class BarGap(DeskModel):
    """Bars ``[start, end)`` the venue could not provide even when asked again; ``missing`` bars.

    Recorded, never filled in: a gap the venue cannot fill stays a gap in the store.
    """

    venue: Identifier
    symbol: Symbol
    timeframe: Timeframe
    start: UtcDatetime
    end: UtcDatetime
    missing: Annotated[int, Field(ge=1)]

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        if self.end <= self.start:
            raise ValueError(f"gap end {self.end} must be after its start {self.start}")
        return self
