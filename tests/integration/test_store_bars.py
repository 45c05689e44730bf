"""Bars in PostgreSQL: idempotent upserts, COPY backfill of a real series, rejection, Decimal precision."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import psycopg
import pytest

from desk.domain.instruments import Instrument, PrecisionMode
from desk.local import catalogue
from desk.schemas.market import Bar
from desk.store import PostgresStore, RejectReason, migrate
from desk.store.connection import LambdaConnection

NOW = datetime(2030, 1, 1, tzinfo=UTC)
EPOCH = datetime(2000, 1, 1, tzinfo=UTC)


@pytest.fixture
def store(database_url: str, pg_schema: str, pg_url: str) -> Iterator[PostgresStore]:
    migrate(database_url, pg_schema)
    s = PostgresStore(LambdaConnection(pg_url))
    yield s
    s.close()


def _coinbase_bars() -> list[Bar]:
    df = catalogue.coinbase_btcusd_hourly()
    return [
        Bar(venue="coinbase", symbol="BTC/USD", timeframe="1h", ts=ts.tz_localize("UTC").to_pydatetime(),
            open=o, high=h, low=lo, close=c, volume=v)
        for ts, o, h, lo, c, v in zip(df.index, df.open, df.high, df.low, df.close, df.volume, strict=True)
    ]  # fmt: skip


def _bar(hour: int, close: str = "105", **kw: str) -> Bar:
    values = {"open": "100", "high": "110", "low": "90", "volume": "1", **kw}
    ts = datetime(2024, 1, 31, 22, tzinfo=UTC) + timedelta(hours=hour)  # crosses into February
    prices = {k: Decimal(v) for k, v in values.items()}
    return Bar(venue="binance", symbol="BTC/USDT", timeframe="1h", ts=ts, close=Decimal(close), **prices)


def test_upserting_the_same_batch_twice_changes_nothing(store: PostgresStore, pg_url: str) -> None:
    # Given a batch crossing a month boundary
    batch = [_bar(h) for h in range(4)]
    # When it is upserted twice
    first = store.upsert_bars(batch, now=NOW)
    second = store.upsert_bars(batch, now=NOW)
    # Then the first inserts, the second finds every row unchanged and no row is duplicated or rewritten
    assert (first.inserted, first.updated, first.unchanged, first.rejected, int(first)) == (4, 0, 0, 0, 4)
    assert (second.inserted, second.updated, second.unchanged, int(second)) == (0, 0, 4, 0)
    with psycopg.connect(pg_url) as conn:
        assert conn.execute("SELECT count(*), max(revisions) FROM bars").fetchone() == (4, 0)
    assert store.load_bars("binance", "BTC/USDT", "1h", EPOCH, NOW) == batch


def test_a_changed_bar_is_updated_and_counted(store: PostgresStore) -> None:
    # Given stored bars
    store.upsert_bars([_bar(0), _bar(1)], now=NOW)
    # When the venue corrects one bar's close and a new bar arrives
    result = store.upsert_bars([_bar(0), _bar(1, close="106"), _bar(2)], now=NOW)
    # Then one is unchanged, one updated, one inserted, and the stored value is the correction
    assert (result.inserted, result.updated, result.unchanged) == (1, 1, 1)
    assert store.load_bars("binance", "BTC/USDT", "1h", EPOCH, NOW)[1].close == Decimal("106")
    assert store.last_bar_time("binance", "BTC/USDT", "1h") == _bar(2).ts
    assert store.last_bar_time("binance", "ETH/USDT", "1h") is None


def test_copy_backfill_round_trips_a_real_series_exactly(store: PostgresStore) -> None:
    # Given ~20,000 real hourly Coinbase BTC/USD bars spanning 28 months
    bars = _coinbase_bars()
    # When they are bulk-loaded with COPY, then loaded again (a re-run backfill)
    first = store.copy_bars(bars, now=NOW)
    again = store.copy_bars(bars, now=NOW)
    loaded = store.load_bars("coinbase", "BTC/USD", "1h", EPOCH, NOW)
    # Then every bar is stored once and reads back equal, Decimal for Decimal
    assert (first.inserted, again.unchanged, again.inserted + again.updated) == (len(bars), len(bars), 0)
    assert loaded == bars
    assert all(isinstance(b.close, Decimal) for b in loaded[:10])


def test_bad_rows_are_rejected_with_reasons_and_never_stored(store: PostgresStore) -> None:
    # Given a batch with good bars, an inconsistent bar, a step back in time and a bar from the future
    bad_ohlc = Bar.model_construct(**{**_bar(1).model_dump(), "high": Decimal("80")})
    future = _bar(0).model_copy(update={"ts": NOW + timedelta(hours=1)})
    batch = [_bar(0), bad_ohlc, _bar(2), _bar(1), future]
    # When upserted
    result = store.upsert_bars(batch, now=NOW)
    # Then the bad ones are counted by reason and only the good ones are stored
    assert (result.inserted, result.rejected) == (2, 3)
    assert result.rejected_by_reason == {
        RejectReason.HIGH_BELOW_LOW: 1,
        RejectReason.OUT_OF_ORDER: 1,
        RejectReason.FUTURE_TIMESTAMP: 1,
    }
    assert store.load_bars("binance", "BTC/USDT", "1h", EPOCH, NOW + timedelta(days=1)) == [_bar(0), _bar(2)]


def test_the_database_refuses_bad_values_that_bypass_validation(store: PostgresStore, pg_url: str) -> None:
    # Given a migrated schema, When a NaN price or an inconsistent bar is written directly
    store.ensure_partitions(NOW, NOW)
    row = "INSERT INTO bars (venue, symbol, timeframe, ts, open, high, low, close, volume) VALUES"
    with psycopg.connect(pg_url) as conn, pytest.raises(psycopg.errors.CheckViolation):
        conn.execute(row + " ('v', 's', '1h', %s, 'NaN', 2, 1, 1, 1)", (NOW,))
    with psycopg.connect(pg_url) as conn, pytest.raises(psycopg.errors.CheckViolation):
        conn.execute(row + " ('v', 's', '1h', %s, 1, 1, 2, 1, 1)", (NOW,))
    # Then nothing is stored
    assert store.load_bars("v", "s", "1h", EPOCH, NOW + timedelta(days=1)) == []


def test_decimal_precision_survives_the_round_trip(store: PostgresStore) -> None:
    # Given prices and volumes with many significant digits (and a tiny altcoin price)
    bar = Bar(
        venue="binance", symbol="SHIB/USDT", timeframe="1m", ts=datetime(2024, 5, 1, tzinfo=UTC),
        open=Decimal("0.000012345678901234567890"), high=Decimal("0.000012345678901234567899"),
        low=Decimal("0.000012345678901234567800"), close=Decimal("0.000012345678901234567891"),
        volume=Decimal("123456789012345678901234567890.123456789"),
    )  # fmt: skip
    # When stored with both write paths and read back
    store.upsert_bars([bar], now=NOW)
    copied = bar.model_copy(update={"timeframe": "5m"})
    store.copy_bars([copied], now=NOW)
    # Then every digit (and the scale) is preserved
    for tf, original in (("1m", bar), ("5m", copied)):
        (loaded,) = store.load_bars("binance", "SHIB/USDT", tf, EPOCH, NOW)
        assert loaded == original
        assert str(loaded.low) == "0.000012345678901234567800"


def test_unfillable_gaps_are_recorded_once_and_read_back(pg_url: str, pg_schema: str) -> None:
    # Given a migrated store and two gaps the venue could not fill
    from datetime import UTC, datetime

    from desk.schemas.market import BarGap
    from desk.store import PostgresStore, migrate
    from desk.store.connection import LambdaConnection

    migrate(pg_url, schema=pg_schema)
    store = PostgresStore(LambdaConnection(pg_url))
    gaps = [
        BarGap(venue="binance", symbol="BTC/USDT", timeframe="1h", start=datetime(2019, 3, d, tzinfo=UTC),
               end=datetime(2019, 3, d, 6, tzinfo=UTC), missing=6)
        for d in (1, 2)
    ]  # fmt: skip
    # When they are recorded twice, Then only the first call adds them
    assert store.record_gaps(gaps) == 2
    assert store.record_gaps(gaps) == 0
    # And they read back in time order, exactly
    assert list(store.known_gaps("binance", "BTC/USDT", "1h")) == gaps
    assert list(store.known_gaps("binance", "ETH/USDT", "1h")) == []


def test_instruments_round_trip_with_their_trading_status(store: PostgresStore) -> None:
    # Given BTC/USDT on Binance's grid, then the venue halting it, then trading again
    btc = Instrument(
        venue="binance", symbol="BTC/USDT", base="BTC", quote="USDT", precision_mode=PrecisionMode.TICK_SIZE,
        price_precision=Decimal("0.01"), amount_precision=Decimal("0.00001"), min_notional=Decimal(5),
        venue_symbol="BTCUSDT",
    )  # fmt: skip
    assert store.upsert_instruments([btc]) == 1
    assert store.load_instruments("binance") == {"BTC/USDT": btc}
    # When ingest writes the venue's halt, Then the stored instrument says so (the API gate reads this)
    store.upsert_instruments([dataclasses.replace(btc, active=False)])
    assert store.load_instruments("binance")["BTC/USDT"].active is False
    store.upsert_instruments([btc])
    assert store.load_instruments("binance")["BTC/USDT"] == btc
