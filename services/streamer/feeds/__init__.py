"""Venue feeds: each turns one venue connection's messages into the streamer's updates."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Protocol

from desk.schemas.market import Bar, OrderBook, Quote

__all__ = ["FeedHandler"]


class FeedHandler(Protocol):
    """What a feed reports to the app (all calls are on the event loop and must not block)."""

    def on_quote(self, quote: Quote) -> None: ...

    def on_book(self, book: OrderBook) -> None: ...

    def on_trade(self, venue: str, symbol: str, ts: datetime, price: Decimal, amount: Decimal) -> None: ...

    def on_bar(self, bar: Bar) -> None: ...

    def seen(self, venue: str, symbol: str, channel: str, venue_ts: datetime | None) -> None: ...

    def count(self, name: str, venue: str) -> None: ...

    def connected(self, venue: str, up: bool) -> None: ...
