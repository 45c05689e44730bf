"""Redis adapters: latest quotes and books (with staleness), recent closed bars and the shared
token-bucket rate limiter.

Redis holds only what may be lost and rebuilt (ARCHITECTURE.md, State): after a flush, a failover
or an expiry every read returns ``None`` (a quote is then stale, so pre-trade checks refuse until
the feed writes again) and every bucket starts full. Nothing here is the only copy of anything.

:class:`RedisQuoteCache` is the :class:`desk.ports.QuoteCache` adapter handlers build and pass to
use cases; the stores it composes are usable alone (the streamer needs only quotes, books and bars).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta

import redis

from desk.cache.bars import DEFAULT_BARS_KEEP, DEFAULT_BARS_TTL, BarStore
from desk.cache.books import DEFAULT_BOOK_DEPTH, DEFAULT_BOOK_TTL, BookStore
from desk.cache.client import get_client, make_client
from desk.cache.keys import bucket_id
from desk.cache.quotes import DEFAULT_QUOTE_TTL, Cached, QuoteStore
from desk.cache.ratelimit import BucketLimit, RateLimiter
from desk.schemas.market import OrderBook, Quote

__all__ = [
    "BarStore",
    "BookStore",
    "BucketLimit",
    "Cached",
    "QuoteStore",
    "RateLimiter",
    "RedisQuoteCache",
    "bucket_id",
    "get_client",
    "make_client",
]


class RedisQuoteCache:
    """The :class:`desk.ports.QuoteCache` port on Redis (quotes, books and rate-limit buckets)."""

    def __init__(
        self,
        client: redis.Redis,
        *,
        limits: Mapping[str, BucketLimit] | None = None,
        default_limit: BucketLimit | None = None,
        quote_ttl: timedelta = DEFAULT_QUOTE_TTL,
        book_ttl: timedelta = DEFAULT_BOOK_TTL,
        book_depth: int = DEFAULT_BOOK_DEPTH,
        bars_ttl: timedelta = DEFAULT_BARS_TTL,
        bars_keep: int = DEFAULT_BARS_KEEP,
    ) -> None:
        self.quotes = QuoteStore(client, quote_ttl)
        self.books = BookStore(client, book_ttl, book_depth)
        self.bars = BarStore(client, bars_ttl, bars_keep)  # not part of the port: the streamer's closed bars
        self.rate_limiter = RateLimiter(client, limits or {}, default_limit)

    # The port's writes return None; callers that count ignored (out-of-order) updates use
    # ``self.quotes`` / ``self.books`` directly, whose writes say whether they stored.
    def put_quote(self, quote: Quote, received_at: datetime | None = None) -> None:
        self.quotes.put_quote(quote, received_at)

    def get_quote(self, venue: str, symbol: str) -> Quote | None:
        return self.quotes.get_quote(venue, symbol)

    def is_stale(self, venue: str, symbol: str, now: datetime, max_age: timedelta) -> bool:
        return self.quotes.is_stale(venue, symbol, now, max_age)

    def put_book(self, book: OrderBook, received_at: datetime | None = None) -> None:
        self.books.put_book(book, received_at)

    def get_book(self, venue: str, symbol: str) -> OrderBook | None:
        return self.books.get_book(venue, symbol)

    def acquire(self, bucket: str, cost: float = 1.0) -> float:
        return self.rate_limiter.acquire(bucket, cost)
