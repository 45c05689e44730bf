"""L2 books rebuilt from a REST snapshot plus depth diffs, by Binance's documented rules.

Spot (``U``/``u``): drop diffs with ``u <= lastUpdateId``; the first applied diff must have
``U <= lastUpdateId + 1 <= u``; afterwards each diff's ``U`` is the previous ``u + 1``.
USD-M futures (``pu``): drop diffs with ``u < lastUpdateId``; the first applied diff must have
``U <= lastUpdateId <= u``; afterwards each diff's ``pu`` equals the previous ``u``.
Anything else is a gap: the book is discarded and :class:`BookSync` asks for a new snapshot,
replaying the diffs it buffered meanwhile (bounded). ccxt.pro applies the same rules inside
``watch_order_book``; this module is the desk's own statement of them, used to turn a venue book
into the desk's :class:`~desk.schemas.market.OrderBook` and to check the streamer's books in tests.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any

from desk.schemas.market import BookLevel, OrderBook

__all__ = ["Applied", "BookSync", "L2Book", "order_book_from_levels"]


class Applied(StrEnum):
    APPLIED = "applied"
    DROPPED = "dropped"  # older than the book
    BUFFERED = "buffered"  # waiting for a snapshot
    GAP = "gap"  # sequence broken: resnapshot


class L2Book:
    """Price → quantity per side, with the update id of the last change."""

    def __init__(self, bids: Iterable[Sequence[Any]], asks: Iterable[Sequence[Any]], update_id: int) -> None:
        self.bids = {Decimal(str(p)): Decimal(str(q)) for p, q in bids if Decimal(str(q))}
        self.asks = {Decimal(str(p)): Decimal(str(q)) for p, q in asks if Decimal(str(q))}
        self.update_id = update_id

    def apply(self, bids: Iterable[Sequence[Any]], asks: Iterable[Sequence[Any]], update_id: int) -> None:
        for side, levels in ((self.bids, bids), (self.asks, asks)):
            for p, q in levels:
                price, qty = Decimal(str(p)), Decimal(str(q))
                if qty:
                    side[price] = qty
                else:
                    side.pop(price, None)
        self.update_id = update_id

    def top(self, depth: int) -> tuple[list[tuple[Decimal, Decimal]], list[tuple[Decimal, Decimal]]]:
        return sorted(self.bids.items(), reverse=True)[:depth], sorted(self.asks.items())[:depth]


class BookSync:
    """One symbol's book kept in sequence; ``futures`` selects the ``pu`` rule."""

    def __init__(self, *, futures: bool, max_buffer: int = 1_000) -> None:
        self.futures = futures
        self.book: L2Book | None = None
        self._started = False
        self._buffer: deque[Mapping[str, Any]] = deque(maxlen=max_buffer)
        self.resnapshots = 0

    @property
    def needs_snapshot(self) -> bool:
        return self.book is None

    def on_snapshot(self, snapshot: Mapping[str, Any]) -> Applied:
        """Install a REST snapshot, then replay the buffered diffs; GAP if they do not connect."""
        self.book = L2Book(snapshot["bids"], snapshot["asks"], int(snapshot["lastUpdateId"]))
        self._started = False
        buffered, self._buffer = list(self._buffer), deque(maxlen=self._buffer.maxlen)
        for diff in buffered:
            if self.on_diff(diff) is Applied.GAP:
                return Applied.GAP
        return Applied.APPLIED

    def on_diff(self, diff: Mapping[str, Any]) -> Applied:
        if self.book is None:
            self._buffer.append(diff)
            return Applied.BUFFERED
        first, last, last_id = int(diff["U"]), int(diff["u"]), self.book.update_id
        if self.futures:
            if last < last_id:
                return Applied.DROPPED
            ok = first <= last_id <= last if not self._started else int(diff["pu"]) == last_id
        else:
            if last <= last_id:
                return Applied.DROPPED
            ok = first <= last_id + 1 <= last if not self._started else first == last_id + 1
        if not ok:
            self.book, self._started = None, False
            self.resnapshots += 1
            return Applied.GAP
        self.book.apply(diff["b"], diff["a"], last)
        self._started = True
        return Applied.APPLIED


def order_book_from_levels(
    venue: str,
    symbol: str,
    bids: Iterable[Sequence[Any]],
    asks: Iterable[Sequence[Any]],
    *,
    ts: datetime,
    sequence: int | None,
    depth: int,
    received_at: datetime | None = None,
) -> OrderBook:
    """The desk's top-``depth`` book from venue levels (``[price, qty, ...]``, best first), as Decimal."""

    def levels(rows: Iterable[Sequence[Any]]) -> tuple[BookLevel, ...]:
        out: list[BookLevel] = []
        for row in rows:
            if len(out) == depth:
                break
            qty = Decimal(str(row[1]))
            if qty > 0:
                out.append(BookLevel(price=Decimal(str(row[0])), quantity=qty))
        return tuple(out)

    return OrderBook(venue=venue, symbol=symbol, ts=ts, bids=levels(bids), asks=levels(asks), sequence=sequence,
                     received_at=received_at)  # fmt: skip
