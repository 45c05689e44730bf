"""desk.cache quotes on a real Redis: exact decimals, out-of-order protection, staleness, TTL."""

from __future__ import annotations

import random
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
import redis

from desk.cache import QuoteStore, RedisQuoteCache, make_client
from desk.cache.keys import quote_key
from desk.ports import QuoteCache
from desk.schemas.market import Quote

T0 = datetime(2024, 3, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
def client(redis_url: str) -> Iterator[redis.Redis]:
    client = make_client(redis_url)
    yield client
    client.close()


def _quote(
    ts: datetime, bid: str = "100", ask: str | None = None, venue: str = "binance", symbol: str = "BTC/USDT"
) -> Quote:
    ask = ask if ask is not None else str(Decimal(bid) + Decimal("0.5"))
    return Quote(
        venue=venue, symbol=symbol, ts=ts, bid=Decimal(bid), ask=Decimal(ask), bid_size=Decimal(1), ask_size=Decimal(2)
    )


def test_decimals_and_times_survive_the_round_trip_exactly(client: redis.Redis) -> None:
    # Given a quote with more digits than a float or Decimal's default context keeps, and a receive time
    quote = Quote(
        venue="binance",
        symbol="ETH/USDT:USDT",
        ts=datetime(2024, 3, 1, 12, 0, 0, 123456, tzinfo=UTC),
        bid=Decimal("67321.1234567890123456789012345678901"),
        ask=Decimal("67321.1234567890123456789012345678902"),
        bid_size=Decimal("0.00000001"),
        ask_size=Decimal("123456789012345678901234567890"),
    )
    received = quote.ts + timedelta(microseconds=7)
    store = QuoteStore(client)
    # When it is stored and read back
    assert store.put_quote(quote, received_at=received)
    entry = store.get_quote_entry("binance", "ETH/USDT:USDT")
    # Then every field is identical, digit for digit, and the receive time is kept to the microsecond
    assert entry is not None
    assert entry.value == quote
    for field in ("bid", "ask", "bid_size", "ask_size"):
        # same digits and exponent, not merely equal in value
        assert getattr(entry.value, field).as_tuple() == getattr(quote, field).as_tuple()
    assert entry.value.ts == quote.ts
    assert entry.received_at == received
    # And the price is stored as text, not as a float
    assert "67321.1234567890123456789012345678901" in str(client.hget(quote_key("binance", "ETH/USDT:USDT"), "v"))


def test_an_older_quote_arriving_late_never_overwrites_a_newer_one(client: redis.Redis) -> None:
    # Given a newer quote already cached
    store = QuoteStore(client)
    newer, older = _quote(T0 + timedelta(seconds=1), bid="101"), _quote(T0, bid="99")
    assert store.put_quote(newer)
    # When an older quote arrives afterwards
    stored = store.put_quote(older)
    # Then it is ignored and the newer quote is still the cached one
    assert stored is False
    assert store.get_quote("binance", "BTC/USDT") == newer


def test_a_quote_with_the_same_timestamp_replaces_the_cached_one(client: redis.Redis) -> None:
    # Given a cached quote, When an update with the same venue timestamp arrives (same-millisecond update)
    store = QuoteStore(client)
    store.put_quote(_quote(T0, bid="100"))
    stored = store.put_quote(_quote(T0, bid="100.25"))
    # Then the later arrival wins
    assert stored is True
    got = store.get_quote("binance", "BTC/USDT")
    assert got is not None and got.bid == Decimal("100.25")


def test_concurrent_writers_in_any_order_leave_the_newest_quote(redis_url: str) -> None:
    # Given 200 quotes with distinct timestamps, shuffled, written by 8 clients at once
    quotes = [_quote(T0 + timedelta(milliseconds=i), bid=f"{100 + i}") for i in range(200)]
    random.Random(7).shuffle(quotes)
    clients = [make_client(redis_url) for _ in range(8)]
    stores = [QuoteStore(c) for c in clients]

    def write(i: int) -> None:
        for quote in quotes[i::8]:
            stores[i].put_quote(quote)

    # When every writer has finished
    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(write, range(8)))
    for c in clients:
        c.close()
    # Then the cache holds the quote with the latest venue timestamp
    got = QuoteStore(make_client(redis_url)).get_quote("binance", "BTC/USDT")
    assert got == max(quotes, key=lambda q: q.ts)


def test_quotes_are_kept_per_venue_and_symbol(client: redis.Redis) -> None:
    # Given quotes for two venues and two symbols
    store = QuoteStore(client)
    a = _quote(T0, bid="1", ask="2", venue="binance", symbol="BTC/USDT")
    b = _quote(T0, bid="3", ask="4", venue="kraken", symbol="BTC/USDT")
    c = _quote(T0, bid="5", ask="6", venue="binance", symbol="ETH/USDT")
    for quote in (a, b, c):
        store.put_quote(quote)
    # When each is read, Then each comes back on its own, and an unknown pair is None
    assert store.get_quote("binance", "BTC/USDT") == a
    assert store.get_quote("kraken", "BTC/USDT") == b
    assert store.get_quote("binance", "ETH/USDT") == c
    assert store.get_quote("kraken", "ETH/USDT") is None


def test_staleness_is_judged_from_the_venue_timestamp_and_the_given_now(client: redis.Redis) -> None:
    # Given a quote stamped T0 by the venue but received just now (a feed delivering old data)
    store = QuoteStore(client)
    max_age = timedelta(seconds=5)
    assert store.is_stale("binance", "BTC/USDT", T0, max_age)  # nothing cached yet: stale
    store.put_quote(_quote(T0), received_at=T0 + timedelta(seconds=60))
    # When staleness is asked at several injected times
    # Then it is fresh up to and including max_age after the venue timestamp, stale after it
    assert not store.is_stale("binance", "BTC/USDT", T0, max_age)
    assert not store.is_stale("binance", "BTC/USDT", T0 + max_age, max_age)
    assert store.is_stale("binance", "BTC/USDT", T0 + max_age + timedelta(microseconds=1), max_age)
    # And the receive time plays no part
    assert store.is_stale("binance", "BTC/USDT", T0 + timedelta(seconds=60), max_age)


def test_staleness_refuses_a_naive_now(client: redis.Redis) -> None:
    # Given a cached quote, When staleness is asked with a naive datetime, Then it is refused
    store = QuoteStore(client)
    store.put_quote(_quote(T0))
    with pytest.raises(ValueError, match="timezone-aware"):
        store.is_stale("binance", "BTC/USDT", datetime(2024, 3, 1, 12, 0), timedelta(seconds=5))


def test_quotes_carry_the_configured_ttl_and_an_older_write_does_not_extend_it(client: redis.Redis) -> None:
    # Given a store whose quotes live 30 s
    store = QuoteStore(client, ttl=timedelta(seconds=30))
    key = quote_key("binance", "BTC/USDT")
    # When a quote is written, Then its key expires within 30 s
    store.put_quote(_quote(T0 + timedelta(seconds=1)))
    assert 29_000 < client.pttl(key) <= 30_000
    # When the clock of the key has run down and an older quote is replayed
    client.pexpire(key, 5_000)
    store.put_quote(_quote(T0))
    # Then the TTL is not refreshed: a replaying dead feed cannot keep its last quote alive
    assert client.pttl(key) <= 5_000
    # And a newer quote does refresh it
    store.put_quote(_quote(T0 + timedelta(seconds=2)))
    assert client.pttl(key) > 29_000


def test_a_zero_ttl_is_refused(client: redis.Redis) -> None:
    # Given a TTL below a millisecond, When a store is built, Then it is refused (the key would never exist)
    with pytest.raises(ValueError, match="TTL"):
        QuoteStore(client, ttl=timedelta(0))


def test_the_adapter_satisfies_the_quote_cache_port(client: redis.Redis) -> None:
    # Given the adapter typed as the port
    cache: QuoteCache = RedisQuoteCache(client)
    quote = _quote(T0)
    # When a quote goes through the port, Then it reads back and is fresh at its own timestamp
    cache.put_quote(quote)
    assert cache.get_quote("binance", "BTC/USDT") == quote
    assert not cache.is_stale("binance", "BTC/USDT", T0, timedelta(seconds=1))


def test_a_client_without_decoded_responses_works_too(redis_url: str) -> None:
    # Given a plain client built elsewhere (replies as bytes, not text)
    raw = redis.Redis.from_url(redis_url)
    store = QuoteStore(raw)
    quote = _quote(T0)
    # When a quote is stored and read with a receive time, Then it round-trips
    store.put_quote(quote, received_at=T0)
    entry = store.get_quote_entry("binance", "BTC/USDT")
    raw.close()
    assert entry is not None
    assert (entry.value, entry.received_at) == (quote, T0)
