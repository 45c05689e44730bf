"""Latest order-book snapshots in Redis: top N levels per side, out-of-order updates ignored.

Same hash layout and the same atomic put-if-not-older script as the quotes
(:mod:`desk.cache.quotes`). Snapshots are ordered by the venue's sequence / update id when both
the stored and the new snapshot carry one (it is exact, timestamps can tie within a millisecond),
otherwise by the venue timestamp. Levels keep the schema's order (bids descending, asks ascending)
and are cut to the configured depth before storing, so readers get the best levels and the value
stays small however deep the venue's snapshot was.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import redis

from desk.cache import keys
from desk.cache.quotes import Cached, LatestValues
from desk.schemas.market import OrderBook

__all__ = ["DEFAULT_BOOK_DEPTH", "DEFAULT_BOOK_TTL", "BookStore"]

DEFAULT_BOOK_TTL = timedelta(minutes=15)
DEFAULT_BOOK_DEPTH = 20


class BookStore:
    """Latest depth snapshot per venue and symbol, cut to ``depth`` levels per side."""

    def __init__(self, client: redis.Redis, ttl: timedelta = DEFAULT_BOOK_TTL, depth: int = DEFAULT_BOOK_DEPTH) -> None:
        if depth < 1:
            raise ValueError(f"book depth must be >= 1, got {depth}")
        self._values = LatestValues(client, ttl)
        self._depth = depth

    def put_book(self, book: OrderBook, received_at: datetime | None = None) -> bool:
        """Store the top ``depth`` levels of ``book`` unless a newer snapshot is cached; True when stored."""
        if len(book.bids) > self._depth or len(book.asks) > self._depth:
            # Cutting a valid book keeps it sorted and uncrossed, so no re-validation is needed.
            book = book.model_copy(update={"bids": book.bids[: self._depth], "asks": book.asks[: self._depth]})
        return self._values.put(
            keys.book_key(book.venue, book.symbol),
            book.ts,
            book.model_dump_json(),
            sequence=book.sequence,
            received_at=received_at,
        )

    def get_book_entry(self, venue: str, symbol: str) -> Cached[OrderBook] | None:
        """The cached snapshot with its receive time, or ``None`` (never cached, expired or flushed)."""
        found = self._values.get(keys.book_key(venue, symbol))
        if found is None:
            return None
        payload, received_at = found
        return Cached(OrderBook.model_validate_json(payload), received_at)

    def get_book(self, venue: str, symbol: str) -> OrderBook | None:
        entry = self.get_book_entry(venue, symbol)
        return None if entry is None else entry.value
