"""The Alpaca adapter through real alpaca-py clients against the fake Alpaca on 127.0.0.1."""

from __future__ import annotations

import dataclasses
import ipaddress
import socket
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from desk.domain.instruments import decimal_sum
from desk.domain.orders import OrderState, OrderType, Side, TimeInForce
from desk.local.catalogue import spy_2017_2018
from desk.local.fakes.alpaca import FakeAlpaca, FakeAsset, Fault
from desk.schemas.trading import OrderIntent
from desk.venues.alpaca import AlpacaConfig, AlpacaVenue
from desk.venues.errors import (
    AmbiguousOrderState,
    InsufficientFunds,
    OrderNotFound,
    OrderRejected,
    RateLimited,
    VenueUnavailable,
)

NOW = datetime(2019, 1, 10, 21, tzinfo=UTC)
PLAN = "ld" + "a" * 24
LAST_CLOSE = Decimal(repr(float(spy_2017_2018()["close"].iloc[-1])))
BID, ASK = LAST_CLOSE - Decimal("0.01"), LAST_CLOSE + Decimal("0.01")  # the fake's default touch


class FixedClock:
    def now(self) -> datetime:
        return NOW


@pytest.fixture(autouse=True)
def loopback_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every socket connect must target 127.0.0.1: a request leaving the machine fails the test."""
    real_connect = socket.socket.connect

    def guarded(self: socket.socket, address: Any) -> None:
        if self.family in (socket.AF_INET, socket.AF_INET6):
            host = address[0]
            if not ipaddress.ip_address(host).is_loopback:
                raise AssertionError(f"network access outside loopback: {address}")
        real_connect(self, address)

    monkeypatch.setattr(socket.socket, "connect", guarded)


@pytest.fixture
def fake() -> Iterator[FakeAlpaca]:
    assets = (FakeAsset("SPY"), FakeAsset("WHOLE", exchange="NYSE", fractionable=False))
    bars = {"SPY": spy_2017_2018(), "WHOLE": spy_2017_2018().iloc[-5:] / 10}
    with FakeAlpaca(bars, assets=assets, seed=7, page_size=50, cash=Decimal(100_000)) as server:
        yield server


def venue_for(fake: FakeAlpaca, timeout: float = 2.0) -> AlpacaVenue:
    config = AlpacaConfig(
        api_key="key",
        secret_key="fake-secret",  # noqa: S106 - the fake accepts any key
        trading_url=fake.url,
        data_url=fake.url,
        timeout_seconds=timeout,
    )
    return AlpacaVenue(config, clock=FixedClock())


def intent(
    slice_no: int, qty: str, *, limit: str | None = None, side: Side = Side.BUY, symbol: str = "SPY"
) -> OrderIntent:
    return OrderIntent(
        client_order_id=f"{PLAN}-{slice_no}",
        plan_id=PLAN,
        slice_no=slice_no,
        venue="alpaca",
        symbol=symbol,
        side=side,
        order_type=OrderType.LIMIT if limit else OrderType.MARKET,
        quantity=Decimal(qty),
        limit_price=None if limit is None else Decimal(limit),
        time_in_force=TimeInForce.DAY,
    )


def ledger_orders(fake: FakeAlpaca, client_order_id: str) -> list[dict[str, Any]]:
    return [o for o in fake.orders.values() if o["client_order_id"] == client_order_id]


def test_the_guard_refuses_a_connection_outside_loopback() -> None:
    # Given the loopback guard, When code connects to a routable address, Then the test would fail
    with socket.socket() as sock, pytest.raises(AssertionError, match="outside loopback"):
        sock.connect(("192.0.2.1", 443))


def test_assets_become_instruments_with_equity_rules(fake: FakeAlpaca) -> None:
    # Given a fractionable ETF and a whole-share stock, When markets are loaded
    markets = venue_for(fake).markets()
    spy, whole = markets["SPY"], markets["WHOLE"]
    # Then ticks are one cent, fractional lots are 1e-9 with a $1 minimum, whole shares are lots of one
    assert (spy.tick_size, spy.lot_size, spy.min_notional, spy.quote) == (
        Decimal("0.01"),
        Decimal("1E-9"),
        Decimal(1),
        "USD",
    )
    assert (whole.lot_size, whole.min_amount, whole.min_notional) == (Decimal(1), Decimal(1), None)


def test_a_halted_asset_stays_listed_as_inactive_and_is_reread_after_the_ttl(fake: FakeAlpaca) -> None:
    # Given a venue adapter that re-reads assets on every call, SPY tradable
    venue = venue_for(fake)
    venue._config = venue._config.model_copy(update={"markets_ttl_seconds": 1e-9})
    assert venue.markets()["SPY"].active is True
    # When the exchange halts SPY (Alpaca: tradable false)
    fake.assets["SPY"] = dataclasses.replace(fake.assets["SPY"], tradable=False)
    # Then the next read lists it inactive, and WHOLE is unaffected
    markets = venue.markets()
    assert (markets["SPY"].active, markets["WHOLE"].active) == (False, True)


def test_backfill_follows_every_page_and_equals_the_served_bars(fake: FakeAlpaca) -> None:
    # Given 502 real SPY daily bars served 50 per page
    served = spy_2017_2018()
    # When the adapter backfills from before the first bar
    bars = venue_for(fake).fetch_ohlcv("SPY", "1d", since=datetime(2017, 1, 1, tzinfo=UTC))
    # Then it walked every page and returned exactly the served data, oldest first
    assert fake.requests["GET /v2/stocks/bars"] == 11
    assert len(bars) == len(served)
    assert [b.close for b in bars] == [Decimal(repr(c)) for c in served["close"]]
    assert bars[0].ts == datetime(2017, 1, 3, 5, tzinfo=UTC)  # midnight New York, as Alpaca stamps it


def test_latest_bars_without_since_count_back_from_now(fake: FakeAlpaca) -> None:
    # Given no start, When the three newest bars are asked for, Then they are the last three served
    bars = venue_for(fake).fetch_ohlcv("SPY", "1d", limit=3)
    assert [b.ts.date().isoformat() for b in bars] == ["2018-12-27", "2018-12-28", "2018-12-31"]


def test_latest_quote_and_top_of_book(fake: FakeAlpaca) -> None:
    # Given the fake quoting SPY around its last close, When the ticker and book are fetched
    venue = venue_for(fake)
    quote, book = venue.fetch_ticker("SPY"), venue.fetch_order_book("SPY")
    # Then both show the same touch
    assert (quote.bid, quote.ask) == (BID, ASK)
    assert (book.bids[0].price, book.asks[0].price) == (quote.bid, quote.ask)


def test_market_order_fills_and_account_matches_the_ledger(fake: FakeAlpaca) -> None:
    # Given a market buy of a fractional quantity
    venue = venue_for(fake)
    # When it is placed
    record = venue.create_order(intent(0, "2.5"))
    # Then it is filled at the ask, sent as an exact string, and fills/positions/balances agree with the ledger
    assert (record.state, record.filled_quantity, record.average_price) == (
        OrderState.FILLED,
        Decimal("2.5"),
        ASK,
    )
    assert ledger_orders(fake, record.client_order_id)[0]["qty"] == "2.5"
    fills = venue.fetch_fills(since=datetime(2019, 1, 1, tzinfo=UTC))
    assert [(f.client_order_id, f.quantity, f.price) for f in fills] == [(record.client_order_id, Decimal("2.5"), ASK)]
    (position,) = venue.fetch_positions(["SPY"])
    assert position.quantity == Decimal("2.5")
    assert venue.fetch_balances()["USD"].total == fake.cash == Decimal(100_000) - Decimal("2.5") * ASK


def test_timeout_after_accept_resolves_by_lookup_and_never_duplicates(fake: FakeAlpaca) -> None:
    # Given a venue that books the order and then never answers within the client timeout
    venue = venue_for(fake, timeout=0.3)
    fake.queue_fault("create_order", Fault.TIMEOUT_AFTER_ACCEPT)
    # When the order is placed, and placed again (a Step Functions retry)
    first = venue.create_order(intent(1, "3"))
    second = venue.create_order(intent(1, "3"))
    # Then both calls return the one booked order, found by its client order id
    assert first.venue_order_id == second.venue_order_id
    assert len(ledger_orders(fake, first.client_order_id)) == 1
    assert fake.requests["GET /v2/orders:by_client_order_id"] == 2  # after the timeout and after the duplicate


def test_server_error_after_accept_is_resolved_the_same_way(fake: FakeAlpaca) -> None:
    # Given a 500 after the order was booked, When placed, Then the lookup returns the one booked order
    venue = venue_for(fake)
    fake.queue_fault("create_order", Fault.ERROR_AFTER_ACCEPT)
    record = venue.create_order(intent(2, "1"))
    assert record.state is OrderState.FILLED
    assert len(ledger_orders(fake, record.client_order_id)) == 1


def test_a_refused_send_that_booked_nothing_is_ambiguous_until_looked_up(fake: FakeAlpaca) -> None:
    # Given a 503 before anything is booked, When placed, Then the caller is told to look up before resending
    fake.queue_fault("create_order", Fault.SERVER_ERROR)
    with pytest.raises(AmbiguousOrderState) as raised:
        venue_for(fake).create_order(intent(3, "1"))
    assert raised.value.client_order_id == f"{PLAN}-3"
    assert fake.orders == {}


@pytest.mark.parametrize(
    ("fault", "error"),
    [(Fault.RATE_LIMIT, RateLimited), (Fault.REJECT, OrderRejected)],
)
def test_refusals_are_classified_and_not_retried_by_the_library(
    fake: FakeAlpaca, fault: Fault, error: type[Exception]
) -> None:
    # Given the venue refuses the next order, When placed, Then the error is classified and sent once
    fake.queue_fault("create_order", fault)
    with pytest.raises(error):
        venue_for(fake).create_order(intent(4, "1"))
    assert fake.requests["POST /v2/orders"] == 1
    assert fake.orders == {}


def test_rate_limit_carries_retry_after(fake: FakeAlpaca) -> None:
    # Given a 429 with Retry-After: 1, When placed, Then the wait is on the error
    fake.queue_fault("create_order", Fault.RATE_LIMIT)
    with pytest.raises(RateLimited) as raised:
        venue_for(fake).create_order(intent(5, "1"))
    assert raised.value.retry_after == 1.0


def test_insufficient_buying_power_is_permanent(fake: FakeAlpaca) -> None:
    # Given an order far larger than the cash, When placed, Then 403 becomes InsufficientFunds
    with pytest.raises(InsufficientFunds):
        venue_for(fake).create_order(intent(6, "1000000"))


def test_bars_server_error_is_retryable(fake: FakeAlpaca) -> None:
    fake.queue_fault("bars", Fault.SERVER_ERROR)
    with pytest.raises(VenueUnavailable):
        venue_for(fake).fetch_ohlcv("SPY", "1d", limit=2)


def test_unknown_orders_are_absent_and_cannot_be_cancelled(fake: FakeAlpaca) -> None:
    # Given an id the venue never saw: the lookup says None (404) and a cancel raises OrderNotFound
    venue = venue_for(fake)
    assert venue.fetch_order_by_client_id("SPY", f"{PLAN}-99") is None
    with pytest.raises(OrderNotFound):
        venue.cancel_order("SPY", f"{PLAN}-99")


def test_fractional_gtc_is_refused_before_sending(fake: FakeAlpaca) -> None:
    gtc = intent(7, "0.5").model_copy(update={"time_in_force": TimeInForce.GTC})
    with pytest.raises(OrderRejected, match="fractional"):
        venue_for(fake).create_order(gtc)
    assert fake.requests["POST /v2/orders"] == 0


def test_partial_fill_then_cross_completes_and_fills_sum_to_position(fake: FakeAlpaca) -> None:
    # Given a marketable limit buy that only half fills
    venue = venue_for(fake)
    fake.queue_fault("create_order", Fault.PARTIAL_FILL)
    placed = venue.create_order(intent(8, "10", limit=str(ASK)))
    assert (placed.state, placed.filled_quantity) == (OrderState.PARTIALLY_FILLED, Decimal(5))
    assert [o.client_order_id for o in venue.fetch_open_orders("SPY")] == [placed.client_order_id]
    # When the quote moves through the limit
    fake.set_quote("SPY", BID - 1, ASK - 1)
    # Then the rest fills, and the fills sum to the order and to the position
    done = venue.fetch_order_by_client_id("SPY", placed.client_order_id)
    assert done is not None and done.state is OrderState.FILLED
    fills = venue.fetch_fills(since=datetime(2019, 1, 1, tzinfo=UTC), symbol="SPY")
    assert decimal_sum(f.quantity for f in fills) == Decimal(10) == venue.fetch_positions()[0].quantity
    assert len({f.venue_trade_id for f in fills}) == 2


def test_resting_limit_order_cancels_idempotently(fake: FakeAlpaca) -> None:
    # Given a buy limit below the bid, rounded to the cent on the way out
    venue = venue_for(fake)
    placed = venue.create_order(intent(9, "2", limit="240.004"))  # below the ~245 bid
    assert (placed.state, placed.limit_price) == (OrderState.ACCEPTED, Decimal("240"))
    # When cancelled twice, Then both return the cancelled order
    assert venue.cancel_order("SPY", placed.client_order_id).state is OrderState.CANCELLED
    assert venue.cancel_order("SPY", placed.client_order_id).state is OrderState.CANCELLED
    assert venue.fetch_open_orders() == []
