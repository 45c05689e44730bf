"""The ccxt adapter through the REAL ccxt.binance client against the fake Binance on 127.0.0.1."""

from __future__ import annotations

import dataclasses
import socket
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from desk.domain.instruments import PrecisionMode, decimal_sum
from desk.domain.orders import OrderState, OrderType, Side, client_order_id, plan_id_from
from desk.local import catalogue
from desk.local.fakes import FakeBinance, Fault, FaultPlan
from desk.local.fakes.binance import ORDER_ROUTE, Kline
from desk.schemas.trading import OrderIntent
from desk.venues.ccxt import CcxtVenue, CcxtVenueConfig
from desk.venues.errors import (
    AmbiguousOrderState,
    AuthenticationFailed,
    InsufficientFunds,
    OrderNotFound,
    OrderRejected,
    PermanentVenueError,
    RateLimited,
    RetryableVenueError,
)

NOW = datetime(2019, 10, 18, tzinfo=UTC)  # after the last served bar: every served bar is closed
CLIENT_TIMEOUT_MS = 300  # the "timeout after accept" fault costs this much wall time, no more


class FixedClock:
    def __init__(self, now: datetime) -> None:
        self.value = now

    def now(self) -> datetime:
        return self.value


@pytest.fixture(autouse=True)
def loopback_only(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[Any]]:
    """Any connection attempt off 127.0.0.1 fails the test, even if the adapter maps the error away."""
    escaped: list[Any] = []
    real_connect = socket.socket.connect

    def guarded(sock: socket.socket, address: Any) -> None:
        host = address[0] if isinstance(address, tuple) else address
        if host not in ("127.0.0.1", "::1", "localhost"):
            escaped.append(address)
            raise OSError(f"test network guard: {address!r} is not loopback")
        real_connect(sock, address)

    monkeypatch.setattr(socket.socket, "connect", guarded)
    yield escaped
    assert escaped == [], f"requests left loopback: {escaped}"


def _hourly_klines(count: int) -> list[Kline]:
    frame = catalogue.coinbase_btcusd_hourly().iloc[:count]
    return [
        (int(ts.tz_localize(UTC).timestamp() * 1000), *(repr(float(row[c])) for c in ("open", "high", "low", "close")),
         repr(float(row["volume"])))
        for ts, row in frame.iterrows()
    ]  # fmt: skip


@pytest.fixture(scope="module")
def klines() -> list[Kline]:
    return _hourly_klines(2300)


@pytest.fixture
def fake(klines: list[Kline]) -> Iterator[FakeBinance]:
    server = FakeBinance(
        klines={("BTCUSDT", "1h"): klines}, faults=FaultPlan(seed=7), clock_ms=lambda: 1_571_300_000_000
    )
    with server:
        yield server


def make_venue(fake: FakeBinance, **kwargs: Any) -> CcxtVenue:
    config = CcxtVenueConfig(
        exchange_id="binance",
        api_key=kwargs.pop("api_key", "test-key"),
        secret="not-a-secret",  # noqa: S106 - the fake accepts any signature
        base_url=fake.base_url,
        timeout_ms=CLIENT_TIMEOUT_MS,
        symbols=("BTC/USDT", "ETH/USDT"),
    )
    return CcxtVenue(config, clock=FixedClock(NOW), **kwargs)


@pytest.fixture
def venue(fake: FakeBinance) -> CcxtVenue:
    return make_venue(fake)


def intent(slice_no: int, *, qty: str = "0.01", price: str | None = "8036", side: Side = Side.BUY) -> OrderIntent:
    plan = plan_id_from("test-plan")
    return OrderIntent(
        client_order_id=client_order_id(plan, slice_no),
        plan_id=plan,
        slice_no=slice_no,
        venue="binance",
        symbol="BTC/USDT",
        side=side,
        order_type=OrderType.LIMIT if price else OrderType.MARKET,
        quantity=Decimal(qty),
        limit_price=None if price is None else Decimal(price),
    )


def routes(fake: FakeBinance, route: str) -> int:
    return sum(1 for method, path, _ in fake.requests if f"{method} {path}" == route)


def test_markets_map_to_instruments_with_venue_precision(venue: CcxtVenue) -> None:
    # Given the fake's exchangeInfo with Binance's BTCUSDT filters, When the markets load
    btc = venue.markets()["BTC/USDT"]
    # Then tick, lot and notional come from PRICE_FILTER, LOT_SIZE and NOTIONAL
    assert (btc.precision_mode, btc.tick_size, btc.lot_size) == (
        PrecisionMode.TICK_SIZE,
        Decimal("0.01"),
        Decimal("0.00001"),
    )
    assert (btc.min_amount, btc.max_amount, btc.min_notional) == (Decimal("0.00001"), Decimal(9000), Decimal(5))
    assert (btc.venue, btc.venue_symbol, btc.base, btc.quote) == ("binance", "BTCUSDT", "BTC", "USDT")
    assert venue.markets()["ETH/USDT"].lot_size == Decimal("0.0001")


def test_ohlcv_backfill_pages_forward_and_equals_the_served_bars(
    venue: CcxtVenue, fake: FakeBinance, klines: list[Kline]
) -> None:
    # Given 2300 real hourly bars served 500 per page
    since = datetime.fromtimestamp(klines[0][0] / 1000, tz=UTC)
    until = datetime.fromtimestamp(klines[2100][0] / 1000, tz=UTC)
    # When backfilling [since, until)
    bars = venue.backfill_ohlcv("BTC/USDT", "1h", since, until, page_limit=500)
    # Then several pages were fetched and the bars are exactly the served ones, ascending, once each
    assert routes(fake, "GET /api/v3/klines") >= 5
    expected = [(k[0], Decimal(k[4])) for k in klines[:2100]]
    assert [(int(b.ts.timestamp() * 1000), b.close) for b in bars] == expected


def test_ticker_and_book_map_to_quote_and_order_book(venue: CcxtVenue) -> None:
    quote = venue.fetch_ticker("BTC/USDT")
    book = venue.fetch_order_book("BTC/USDT", depth=5)
    assert (quote.bid, quote.ask) == (Decimal("8035.87"), Decimal("8035.89"))
    assert len(book.bids) == len(book.asks) == 5 and book.asks[0].price == quote.ask


def test_a_naive_resend_after_a_fill_would_duplicate_the_order(venue: CcxtVenue, fake: FakeBinance) -> None:
    # Given a marketable order that filled (Binance frees the client id once the order is closed)
    venue.create_order(intent(1))
    # When it is simply sent again
    venue.create_order(intent(1))
    # Then the venue holds two orders: this is what lookup-before-resend prevents
    assert len(fake.ledger.by_client_id(intent(1).client_order_id)) == 2


@pytest.mark.parametrize("fault", [Fault.TIMEOUT_AFTER_ACCEPT, Fault.DROP_AFTER_ACCEPT])
def test_retried_placement_after_accept_then_silence_places_exactly_one_order(
    venue: CcxtVenue, fake: FakeBinance, fault: Fault
) -> None:
    # Given the venue will accept the order and then not answer
    fake.faults.queue(ORDER_ROUTE, fault)
    order = intent(2)
    # When the first create fails ambiguously and the placement is retried
    with pytest.raises(AmbiguousOrderState):
        venue.create_order(order)
    record = venue.place_order_idempotent(order)
    # Then the retry found the order instead of resending it: one order at the venue
    assert len(fake.ledger.by_client_id(order.client_order_id)) == 1
    assert record.state is OrderState.FILLED and routes(fake, ORDER_ROUTE) == 1


def test_idempotent_placement_resends_once_when_the_order_never_arrived(venue: CcxtVenue, fake: FakeBinance) -> None:
    # Given a 503 that refuses the order before it is recorded
    fake.faults.queue(ORDER_ROUTE, Fault.SERVER_ERROR)
    # When placing without a prior lookup
    record = venue.place_order_idempotent(intent(3), lookup_first=False)
    # Then the lookup said "never seen" and exactly one resend placed it
    assert routes(fake, ORDER_ROUTE) == 2 and len(fake.ledger.by_client_id(record.client_order_id)) == 1


def test_429_is_rate_limited_with_retry_after(venue: CcxtVenue, fake: FakeBinance) -> None:
    fake.faults.queue("GET /api/v3/ticker/bookTicker", Fault.RATE_LIMIT)
    venue.markets()
    with pytest.raises(RateLimited) as caught:
        venue.fetch_ticker("BTC/USDT")
    assert caught.value.retry_after == 3.0 and caught.value.retryable and caught.value.venue == "binance"


def test_429_on_create_is_retryable_and_places_nothing(venue: CcxtVenue, fake: FakeBinance) -> None:
    fake.faults.queue(ORDER_ROUTE, Fault.RATE_LIMIT)
    with pytest.raises(RateLimited):
        venue.create_order(intent(4))
    assert fake.ledger.orders == []


def test_5xx_is_retryable(venue: CcxtVenue, fake: FakeBinance) -> None:
    fake.faults.queue("GET /api/v3/depth", Fault.SERVER_ERROR)
    venue.markets()
    with pytest.raises(RetryableVenueError) as caught:
        venue.fetch_order_book("BTC/USDT")
    assert caught.value.retryable and caught.value.code == "-1001"


def test_insufficient_balance_is_permanent(venue: CcxtVenue, fake: FakeBinance) -> None:
    with pytest.raises(InsufficientFunds) as caught:
        venue.create_order(intent(5, qty="50"))
    assert isinstance(caught.value, PermanentVenueError) and "insufficient balance" in caught.value.message
    assert fake.ledger.orders == []


def test_venue_filter_failure_is_a_permanent_rejection(venue: CcxtVenue, fake: FakeBinance) -> None:
    fake.faults.queue(ORDER_ROUTE, Fault.REJECT_FILTER)
    with pytest.raises(OrderRejected) as caught:
        venue.create_order(intent(6))
    assert caught.value.code == "-1013" and not caught.value.retryable


def test_a_halt_is_seen_when_markets_are_reread_and_the_venue_refuses_orders(fake: FakeBinance) -> None:
    # Given a warm venue adapter whose markets are re-read every call (a TTL of zero), BTC trading
    venue = make_venue(fake)
    venue.config = dataclasses.replace(venue.config, markets_ttl_seconds=0.0)
    assert venue.markets()["BTC/USDT"].active is True
    # When Binance puts BTCUSDT in a break
    fake.markets["BTCUSDT"] = dataclasses.replace(fake.markets["BTCUSDT"], status="BREAK")
    # Then the adapter reports it inactive (still listed, so the gate can say "halted"), ETH unaffected
    markets = venue.markets()
    assert (markets["BTC/USDT"].active, markets["ETH/USDT"].active) == (False, True)
    # And an order sent anyway is refused by the venue as a permanent rejection, recording nothing
    with pytest.raises(OrderRejected) as caught:
        venue.create_order(intent(8))
    assert "Market is closed" in caught.value.message and not caught.value.retryable
    assert fake.ledger.orders == []


def test_markets_are_cached_until_their_ttl(fake: FakeBinance) -> None:
    venue = make_venue(fake)
    venue.markets()
    venue.markets()
    assert routes(fake, "GET /api/v3/exchangeInfo") == 1


def test_an_order_below_min_notional_is_rejected_before_sending(venue: CcxtVenue, fake: FakeBinance) -> None:
    with pytest.raises(OrderRejected) as caught:
        venue.create_order(intent(7, qty="0.0001"))  # 0.80 USDT < 5
    assert caught.value.code == "min_notional" and routes(fake, ORDER_ROUTE) == 0


def test_partial_fill_then_fills_from_my_trades_sum_to_the_ledger(venue: CcxtVenue, fake: FakeBinance) -> None:
    # Given an order the venue fills only half of at once, and the rest later
    fake.faults.queue(ORDER_ROUTE, Fault.PARTIAL_FILL)
    first = venue.create_order(intent(8, qty="0.02"))
    fake.fill_resting(first.client_order_id)
    # When the fills are fetched and the order looked up
    fills = venue.fetch_fills(NOW - timedelta(days=3650), "BTC/USDT")
    after = venue.fetch_order_by_client_id("BTC/USDT", first.client_order_id)
    # Then they add up to what the venue's ledger executed
    (held,) = fake.ledger.by_client_id(first.client_order_id)
    assert first.state is OrderState.PARTIALLY_FILLED and first.filled_quantity == Decimal("0.01")
    assert [f.client_order_id for f in fills] == [first.client_order_id] * 2
    assert decimal_sum(f.quantity for f in fills) == held.executed == Decimal("0.02")
    assert after is not None and after.state is OrderState.FILLED


def test_cancel_by_client_id_is_idempotent(venue: CcxtVenue, fake: FakeBinance) -> None:
    resting = venue.create_order(intent(9, price="7000"))
    assert [o.client_order_id for o in venue.fetch_open_orders()] == [resting.client_order_id]
    cancelled = venue.cancel_order("BTC/USDT", resting.client_order_id)
    again = venue.cancel_order("BTC/USDT", resting.client_order_id)
    assert cancelled.state is again.state is OrderState.CANCELLED
    assert fake.ledger.by_client_id(resting.client_order_id)[0].status == "CANCELED"
    assert fake.ledger.balances["USDT"][1] == 0  # the lock was released
    with pytest.raises(OrderNotFound):
        venue.cancel_order("BTC/USDT", intent(10).client_order_id)


def test_balances_and_spot_positions(venue: CcxtVenue) -> None:
    venue.create_order(intent(11))
    balances = venue.fetch_balances()
    positions = {p.symbol: p.quantity for p in venue.fetch_positions()}
    assert balances["BTC"].total == Decimal("1.01") and positions == {"BTC/USDT": Decimal("1.01"), "ETH/USDT": 10}


def test_missing_api_key_is_an_authentication_failure(fake: FakeBinance) -> None:
    venue = make_venue(fake, api_key="wrong")
    with pytest.raises(AuthenticationFailed):
        venue.fetch_balances()


def test_the_limiter_hook_waits_through_the_injected_sleep_or_raises(fake: FakeBinance) -> None:
    # Given a bucket that asks for 0.5 s once, and one that is exhausted
    answers = iter([0.5, 0.0] * 100)
    slept: list[float] = []
    venue = make_venue(fake, acquire=lambda bucket, cost: next(answers), sleep=slept.append)
    venue.fetch_balances()
    assert slept[0] == 0.5
    starved = make_venue(fake, acquire=lambda bucket, cost: 60.0, sleep=slept.append)
    before = len(fake.requests)
    with pytest.raises(RateLimited) as caught:
        starved.fetch_balances()
    assert caught.value.retry_after == 60.0 and len(fake.requests) == before


def _place_until_settled(venue: CcxtVenue, order: OrderIntent, attempts: int = 12) -> str:
    """What Step Functions does: retry retryable errors (no real backoff here), stop on permanent ones."""
    for _ in range(attempts):
        try:
            venue.place_order_idempotent(order)
            return "placed"
        except RetryableVenueError:
            continue
        except PermanentVenueError:
            return "rejected"
    return "unsettled"


def test_a_seeded_fault_run_ends_with_one_ledger_order_per_placed_client_id(klines: list[Kline]) -> None:
    # Given 50 placements against random faults (seeded: the run is reproducible)
    rates = {
        Fault.TIMEOUT_AFTER_ACCEPT: 0.06,
        Fault.DROP_AFTER_ACCEPT: 0.1,
        Fault.RATE_LIMIT: 0.1,
        Fault.SERVER_ERROR: 0.1,
        Fault.PARTIAL_FILL: 0.1,
        Fault.REJECT_FILTER: 0.06,
        Fault.REJECT_BALANCE: 0.04,
    }
    with FakeBinance(faults=FaultPlan(seed=3, rates=rates, hold_seconds=1.0)) as fake:
        venue = make_venue(fake)
        # When each is placed the way the order workflow does
        outcome = {intent(n).client_order_id: _place_until_settled(venue, intent(n, price="8040")) for n in range(50)}
        ledger = Counter(o.client_order_id for o in fake.ledger.orders)
        injected = Counter(fault for _, fault in fake.faults.injected)
    # Then no client id was placed twice and nothing placed is missing
    assert max(ledger.values()) == 1
    assert set(ledger) == {cid for cid, result in outcome.items() if result == "placed"}
    assert "unsettled" not in outcome.values()
    assert injected[Fault.TIMEOUT_AFTER_ACCEPT] and injected[Fault.DROP_AFTER_ACCEPT] and injected[Fault.REJECT_FILTER]
