"""desk.cache books on a real Redis: top-N snapshots in order, out-of-order snapshots ignored."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
import redis

from desk.cache import BookStore, make_client
from desk.cache.keys import book_key
from desk.schemas.market import BookLevel, OrderBook

T0 = datetime(2024, 3, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
def client(redis_url: str) -> Iterator[redis.Redis]:
    client = make_client(redis_url)
    yield client
    client.close()


def _book(ts: datetime, sequence: int | None, levels: int = 3, mid: int = 100) -> OrderBook:
    step = Decimal("0.01")
    return OrderBook(
        venue="binance",
        symbol="BTC/USDT",
        ts=ts,
        bids=tuple(BookLevel(price=Decimal(mid) - step * (i + 1), quantity=Decimal(i + 1)) for i in range(levels)),
        asks=tuple(BookLevel(price=Decimal(mid) + step * (i + 1), quantity=Decimal("0.5")) for i in range(levels)),
        sequence=sequence,
    )


def test_a_snapshot_is_cut_to_the_top_levels_in_book_order(client: redis.Redis) -> None:
    # Given a 30-level snapshot and a store keeping 5 levels
    store = BookStore(client, depth=5)
    book = _book(T0, sequence=42, levels=30)
    received = T0 + timedelta(milliseconds=3)
    # When it is stored and read back
    assert store.put_book(book, received_at=received)
    entry = store.get_book_entry("binance", "BTC/USDT")
    # Then the best 5 bids (descending) and best 5 asks (ascending) come back, exactly
    assert entry is not None
    assert entry.value.bids == book.bids[:5]
    assert entry.value.asks == book.asks[:5]
    assert [lvl.price for lvl in entry.value.bids] == sorted((lvl.price for lvl in book.bids), reverse=True)[:5]
    assert [lvl.price for lvl in entry.value.asks] == sorted(lvl.price for lvl in book.asks)[:5]
    assert (entry.value.sequence, entry.value.ts, entry.received_at) == (42, T0, received)


def test_a_shallow_snapshot_is_stored_whole(client: redis.Redis) -> None:
    # Given a snapshot shallower than the depth, When stored and read, Then it is unchanged
    store = BookStore(client, depth=20)
    book = _book(T0, sequence=1, levels=3)
    store.put_book(book)
    assert store.get_book("binance", "BTC/USDT") == book


def test_an_older_sequence_arriving_late_is_ignored_even_with_a_later_timestamp(client: redis.Redis) -> None:
    # Given snapshot 11 cached
    store = BookStore(client)
    newer = _book(T0, sequence=11, mid=101)
    store.put_book(newer)
    # When snapshot 10 arrives afterwards, stamped later by a venue clock that ticked in between
    stored = store.put_book(_book(T0 + timedelta(seconds=1), sequence=10, mid=100))
    # Then the sequence decides: it is ignored
    assert stored is False
    assert store.get_book("binance", "BTC/USDT") == newer


def test_a_newer_sequence_wins_over_an_equal_timestamp(client: redis.Redis) -> None:
    # Given snapshot 10 cached, When snapshot 11 arrives in the same millisecond, Then it replaces it
    store = BookStore(client)
    store.put_book(_book(T0, sequence=10, mid=100))
    newer = _book(T0, sequence=11, mid=101)
    assert store.put_book(newer)
    assert store.get_book("binance", "BTC/USDT") == newer


def test_sequences_beyond_float_precision_are_compared_exactly(client: redis.Redis) -> None:
    # Given update id 2**53 + 1 cached (a Lua number would round it to 2**53)
    store = BookStore(client)
    newer = _book(T0, sequence=2**53 + 1, mid=101)
    store.put_book(newer)
    # When update id 2**53 arrives late, Then it is ignored
    assert store.put_book(_book(T0 + timedelta(seconds=1), sequence=2**53, mid=100)) is False
    got = store.get_book("binance", "BTC/USDT")
    assert got is not None and got.sequence == 2**53 + 1


def test_without_sequences_the_venue_timestamp_decides(client: redis.Redis) -> None:
    # Given a snapshot without sequence cached, When an older one arrives, Then it is ignored
    store = BookStore(client)
    newer = _book(T0 + timedelta(seconds=1), sequence=None, mid=101)
    store.put_book(newer)
    assert store.put_book(_book(T0, sequence=None, mid=100)) is False
    # And when a snapshot with a sequence but an older timestamp arrives, the timestamp still decides
    assert store.put_book(_book(T0, sequence=5, mid=100)) is False
    assert store.get_book("binance", "BTC/USDT") == newer


def test_books_carry_the_configured_ttl(client: redis.Redis) -> None:
    # Given a store whose books live 10 s, When a book is stored, Then its key expires within 10 s
    store = BookStore(client, ttl=timedelta(seconds=10))
    store.put_book(_book(T0, sequence=1))
    assert 9_000 < client.pttl(book_key("binance", "BTC/USDT")) <= 10_000


def test_a_depth_below_one_is_refused(client: redis.Redis) -> None:
    # Given depth 0, When a store is built, Then it is refused
    with pytest.raises(ValueError, match="depth"):
        BookStore(client, depth=0)


def test_an_unknown_book_is_none(client: redis.Redis) -> None:
    # Given nothing cached, When a book is read, Then it is None
    assert BookStore(client).get_book("binance", "BTC/USDT") is None
