"""Minute bars closed from trades, for the ingest path to reconcile against the venue's own bars."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from desk.schemas.market import Bar

__all__ = ["MinuteBars"]

_MINUTE = timedelta(minutes=1)


@dataclass
class _Open:
    ts: datetime
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal
    volume: Decimal


class MinuteBars:
    """Per (venue, symbol): the open bar, and the last ``keep`` closed bars (bounded).

    A bar closes when a trade of a later minute arrives or :meth:`close_due` passes its end plus
    ``grace`` (late trades within the grace still count). A trade older than the open bar is dropped.
    """

    def __init__(self, keep: int = 120, grace: timedelta = timedelta(seconds=2)) -> None:
        self._open: dict[tuple[str, str], _Open] = {}
        self.closed: dict[tuple[str, str], deque[Bar]] = {}
        self._keep = keep
        self._grace = grace

    def on_trade(self, venue: str, symbol: str, ts: datetime, price: Decimal, amount: Decimal) -> list[Bar]:
        minute = ts.replace(second=0, microsecond=0)
        key = (venue, symbol)
        bar = self._open.get(key)
        done: list[Bar] = []
        if bar is not None and minute < bar.ts:
            return done
        if bar is not None and minute > bar.ts:
            done.append(self._close(key))
            bar = None
        if bar is None:
            self._open[key] = _Open(minute, price, price, price, price, amount)
        else:
            bar.high, bar.low = max(bar.high, price), min(bar.low, price)
            bar.close, bar.volume = price, bar.volume + amount
        return done

    def close_due(self, now: datetime) -> list[Bar]:
        due = [key for key, bar in self._open.items() if bar.ts + _MINUTE + self._grace <= now]
        return [self._close(key) for key in due]

    def add_closed(self, bar: Bar) -> None:
        """A bar the venue closed itself (Alpaca's minute bars), kept with the rest (bounded)."""
        self.closed.setdefault((bar.venue, bar.symbol), deque(maxlen=self._keep)).append(bar)

    def _close(self, key: tuple[str, str]) -> Bar:
        bar = self._open.pop(key)
        closed = Bar(venue=key[0], symbol=key[1], timeframe="1m", ts=bar.ts, open=bar.open, high=bar.high,
                     low=bar.low, close=bar.close, volume=bar.volume)  # fmt: skip
        self.add_closed(closed)
        return closed
