"""Alpaca payloads → domain types, and Alpaca failures → the venue error hierarchy (no network)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
import requests
from alpaca.common.exceptions import APIError
from alpaca.trading.models import Asset, TradeAccount
from alpaca.trading.models import Order as AlpacaOrder

from desk.domain.orders import OrderState, OrderType, Side, TimeInForce
from desk.schemas.trading import OrderIntent
from desk.venues.alpaca import mapping
from desk.venues.alpaca.errors import classify
from desk.venues.errors import (
    AuthenticationFailed,
    DuplicateClientOrderId,
    InsufficientFunds,
    OrderNotFound,
    OrderRejected,
    RateLimited,
    UnknownSymbol,
    VenueError,
    VenueTimeout,
    VenueUnavailable,
)

PLAN = "ld" + "c" * 24
ASSET = {
    "id": "b0b6dd9d-8b9b-48a9-ba46-b9d54906e415", "class": "us_equity", "exchange": "NASDAQ", "symbol": "AAPL",
    "name": "Apple Inc.", "status": "active", "tradable": True, "marginable": True, "shortable": True,
    "easy_to_borrow": True, "fractionable": True,
}  # fmt: skip
ORDER = {
    "id": "61e69015-8549-4bfd-b9c3-01e75843f47d", "client_order_id": f"{PLAN}-0",
    "created_at": "2021-03-16T18:38:01.942282Z", "updated_at": "2021-03-16T18:38:01.942282Z",
    "submitted_at": "2021-03-16T18:38:01.937734Z", "asset_id": ASSET["id"], "symbol": "AAPL",
    "asset_class": "us_equity", "qty": "15.5", "filled_qty": "5", "filled_avg_price": "121.37",
    "order_class": "", "order_type": "limit", "type": "limit", "side": "buy", "time_in_force": "day",
    "limit_price": "121.40", "status": "partially_filled", "extended_hours": False,
}  # fmt: skip


def intent(qty: str, limit: str | None = None, tif: TimeInForce = TimeInForce.DAY) -> OrderIntent:
    return OrderIntent(
        client_order_id=f"{PLAN}-0", plan_id=PLAN, slice_no=0, venue="alpaca", symbol="AAPL", side=Side.BUY,
        order_type=OrderType.LIMIT if limit else OrderType.MARKET, quantity=Decimal(qty),
        limit_price=None if limit is None else Decimal(limit), time_in_force=tif,
    )  # fmt: skip


def api_error(status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> APIError:
    response = requests.Response()
    response.status_code = status
    response._content = json.dumps(body).encode()
    response.headers.update(headers or {})
    return APIError(response.text, requests.HTTPError(response=response))


def test_a_fractionable_asset_has_cent_ticks_and_nano_share_lots() -> None:
    instrument = mapping.instrument_from_asset(Asset(**ASSET), "alpaca")
    assert (instrument.tick_size, instrument.lot_size, instrument.min_notional) == (
        Decimal("0.01"),
        Decimal("1E-9"),
        Decimal(1),
    )


@pytest.mark.parametrize(
    ("status", "tradable", "active"), [("active", True, True), ("active", False, False), ("inactive", True, False)]
)
def test_an_asset_trades_only_when_active_and_tradable(status: str, tradable: bool, active: bool) -> None:
    asset = Asset(**(ASSET | {"status": status, "tradable": tradable}))
    assert mapping.instrument_from_asset(asset, "alpaca").active is active


def test_a_whole_share_asset_rounds_quantities_down_to_shares() -> None:
    # Given a stock that is not fractionable, When 2.7 shares are asked for, Then 2 are sent, as a string
    instrument = mapping.instrument_from_asset(Asset(**{**ASSET, "fractionable": False}), "alpaca")
    assert mapping.order_request_json(intent("2.7"), instrument)["qty"] == "2"


@pytest.mark.parametrize(
    ("limit", "sent"),
    [("121.405", "121.41"), ("121.404", "121.4"), ("0.123456", "0.1235"), ("0.99996", "1")],
)
def test_limit_prices_use_the_sub_penny_rule(limit: str, sent: str) -> None:
    # Given prices around $1, When rounded for Alpaca, Then cents above $1 and 1/100 cent below
    instrument = mapping.instrument_from_asset(Asset(**ASSET), "alpaca")
    assert mapping.order_request_json(intent("1", limit), instrument)["limit_price"] == sent


def test_fractional_orders_must_be_day_orders() -> None:
    instrument = mapping.instrument_from_asset(Asset(**ASSET), "alpaca")
    with pytest.raises(OrderRejected, match="day"):
        mapping.order_request_json(intent("0.5", tif=TimeInForce.GTC), instrument)


def test_an_alpaca_order_becomes_an_order_record() -> None:
    record = mapping.order_record(AlpacaOrder(**ORDER), "alpaca")
    assert record is not None
    assert (record.state, record.quantity, record.filled_quantity, record.average_price, record.limit_price) == (
        OrderState.PARTIALLY_FILLED,
        Decimal("15.5"),
        Decimal(5),
        Decimal("121.37"),
        Decimal("121.40"),
    )
    assert record.updated_at == datetime(2021, 3, 16, 18, 38, 1, 942282, tzinfo=UTC)


@pytest.mark.parametrize(
    ("status", "filled", "state"),
    [
        ("new", "0", OrderState.ACCEPTED),
        ("pending_new", "0", OrderState.ACCEPTED),
        ("done_for_day", "3", OrderState.PARTIALLY_FILLED),
        ("pending_cancel", "0", OrderState.PENDING_CANCEL),
        ("canceled", "3", OrderState.CANCELLED),
        ("expired", "0", OrderState.EXPIRED),
        ("rejected", "0", OrderState.REJECTED),
        ("filled", "10", OrderState.FILLED),
    ],
)
def test_order_statuses_map_to_domain_states(status: str, filled: str, state: OrderState) -> None:
    assert mapping.order_state(status, Decimal(filled), Decimal(10)) is state


def test_stop_orders_are_not_desk_orders() -> None:
    stop = {**ORDER, "order_type": "stop", "type": "stop", "stop_price": "100"}
    assert mapping.order_record(AlpacaOrder(**stop), "alpaca") is None


def test_a_fill_activity_keeps_exact_decimals_and_nanosecond_times() -> None:
    activity = {
        "id": "20210316183801942::8f1b5c5e-47e9-4ab1-a1ac-3f7c4e4d0a51", "activity_type": "FILL",
        "transaction_time": "2021-03-16T18:38:01.942282123Z", "type": "partial_fill", "price": "121.37",
        "qty": "0.123456789", "side": "buy", "symbol": "AAPL", "order_id": ORDER["id"],
    }  # fmt: skip
    fill = mapping.fill_from_activity(activity, "alpaca", f"{PLAN}-0")
    assert (fill.quantity, fill.price, fill.fee, fill.venue_trade_id) == (
        Decimal("0.123456789"),
        Decimal("121.37"),
        Decimal(0),
        activity["id"],
    )
    assert fill.occurred_at == datetime(2021, 3, 16, 18, 38, 1, 942282, tzinfo=UTC)


def test_account_cash_and_buying_power_become_a_balance() -> None:
    account = TradeAccount(
        id="00000000-0000-4000-8000-000000000001", account_number="PA1", status="ACTIVE", currency="USD",
        cash="1000.50", buying_power="800.25", non_marginable_buying_power="800.25",
    )  # fmt: skip
    usd = mapping.balances_from_account(account, "alpaca")["USD"]
    assert (usd.total, usd.free, usd.used) == (Decimal("1000.50"), Decimal("800.25"), Decimal("200.25"))


@pytest.mark.parametrize(
    ("status", "message", "operation", "expected"),
    [
        (429, "rate limit exceeded", "create_order", RateLimited),
        (500, "internal server error", "create_order", VenueUnavailable),
        (503, "service unavailable", "fetch_ohlcv", VenueUnavailable),
        (401, "request is not authorized", "fetch_balances", AuthenticationFailed),
        (403, "insufficient buying power", "create_order", InsufficientFunds),
        (403, "insufficient qty available for order", "create_order", InsufficientFunds),
        (403, "forbidden", "fetch_balances", AuthenticationFailed),
        (404, "order not found", "fetch_order_by_client_id", OrderNotFound),
        (404, "asset not found", "fetch_ticker", UnknownSymbol),
        (422, "client_order_id must be unique", "create_order", DuplicateClientOrderId),
        (422, "qty must be > 0", "create_order", OrderRejected),
    ],
)
def test_http_errors_are_classified(status: int, message: str, operation: str, expected: type[VenueError]) -> None:
    # Given Alpaca's error body for a status, When classified, Then it is exactly the expected class
    error = classify(api_error(status, {"code": 40000000, "message": message}), venue="alpaca", operation=operation)
    assert type(error) is expected
    assert error.retryable is (status == 429 or status >= 500)


def test_429_keeps_retry_after() -> None:
    error = classify(api_error(429, {"message": "slow down"}, {"Retry-After": "3"}), venue="alpaca", operation="x")
    assert isinstance(error, RateLimited) and error.retry_after == 3.0


def test_network_failures_are_retryable() -> None:
    assert isinstance(classify(requests.ReadTimeout("read timed out"), venue="alpaca", operation="x"), VenueTimeout)
    assert isinstance(classify(requests.ConnectionError("reset"), venue="alpaca", operation="x"), VenueUnavailable)
