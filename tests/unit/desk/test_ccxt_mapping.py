"""ccxt unified JSON → domain types (pure: dicts in, domain objects out)."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from desk.domain.errors import InvalidOrder
from desk.domain.instruments import PrecisionMode
from desk.domain.orders import Liquidity, OrderState, OrderType, Side, client_order_id, plan_id_from
from desk.schemas.trading import OrderIntent
from desk.venues.ccxt import mapping

NOW = datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)
BTC_MARKET: dict[str, Any] = {
    "id": "BTCUSDT",
    "symbol": "BTC/USDT",
    "base": "BTC",
    "quote": "USDT",
    "precision": {"amount": 1e-05, "price": 0.01},
    "limits": {"amount": {"min": 1e-05, "max": 9000.0}, "price": {"min": 0.01, "max": 1e6}, "cost": {"min": 5.0}},
}


def _order(**overrides: Any) -> dict[str, Any]:
    base = {"id": "42", "clientOrderId": "ldx-1", "symbol": "BTC/USDT", "side": "buy", "type": "limit",
            "amount": 0.02, "price": 8036.0, "filled": 0.0, "average": None, "cost": 0.0, "status": "open",
            "timeInForce": "GTC", "info": {"status": "NEW"}}  # fmt: skip
    return base | overrides


def test_market_maps_to_instrument_with_tick_size_precision() -> None:
    instrument = mapping.instrument_from_market("binance", BTC_MARKET, 4)
    assert instrument.precision_mode is PrecisionMode.TICK_SIZE
    assert (instrument.tick_size, instrument.lot_size, instrument.min_notional) == (
        Decimal("0.01"),
        Decimal("0.00001"),
        Decimal(5),
    )


def test_a_market_the_venue_marks_inactive_is_an_inactive_instrument() -> None:
    assert mapping.instrument_from_market("binance", BTC_MARKET, 4).active is True  # ccxt gave no flag
    assert mapping.instrument_from_market("binance", BTC_MARKET | {"active": True}, 4).active is True
    assert mapping.instrument_from_market("binance", BTC_MARKET | {"active": False}, 4).active is False


def test_unknown_precision_mode_is_refused() -> None:
    with pytest.raises(ValueError, match="precision mode"):
        mapping.precision_mode(9)


@pytest.mark.parametrize(
    ("overrides", "state"),
    [
        ({}, OrderState.ACCEPTED),
        ({"filled": 0.01, "average": 8035.89}, OrderState.PARTIALLY_FILLED),
        ({"filled": 0.02, "status": "closed", "average": 8035.89}, OrderState.FILLED),
        ({"status": "canceled"}, OrderState.CANCELLED),
        ({"filled": 0.01, "status": "closed", "cost": 80.3589}, OrderState.EXPIRED),
        ({"status": "rejected"}, OrderState.REJECTED),
        ({"info": {"status": "PENDING_CANCEL"}}, OrderState.PENDING_CANCEL),
    ],
)
def test_order_states_follow_status_and_filled_quantity(overrides: dict[str, Any], state: OrderState) -> None:
    record = mapping.order_from_ccxt("binance", _order(**overrides), NOW)
    assert record.state is state
    assert (record.average_price is None) == (record.filled_quantity == 0)


def test_order_numbers_are_exact_decimals() -> None:
    record = mapping.order_from_ccxt("binance", _order(filled=0.01, cost=80.3589), NOW)
    assert (record.quantity, record.limit_price, record.average_price) == (
        Decimal("0.02"),
        Decimal("8036.0"),
        Decimal("8035.89"),
    )
    assert (record.venue_order_id, record.updated_at) == ("42", NOW)


def test_market_orders_carry_no_limit_price() -> None:
    record = mapping.order_from_ccxt("binance", _order(type="market", filled=0.02, status="closed", average=1.5), NOW)
    assert (record.order_type, record.limit_price, record.state) == (OrderType.MARKET, None, OrderState.FILLED)


def test_trade_maps_to_fill_with_fee_and_liquidity() -> None:
    trade = {
        "id": "7",
        "order": "42",
        "symbol": "BTC/USDT",
        "side": "sell",
        "amount": 0.01,
        "price": 8035.87,
        "timestamp": 1_700_000_000_000,
        "takerOrMaker": "maker",
        "fee": {"cost": 0.08, "currency": "USDT"},
    }
    fill = mapping.fill_from_trade("binance", trade, "ldx-1")
    assert (fill.side, fill.quantity, fill.price, fill.fee, fill.liquidity) == (
        Side.SELL,
        Decimal("0.01"),
        Decimal("8035.87"),
        Decimal("0.08"),
        Liquidity.MAKER,
    )
    assert fill.occurred_at == datetime(2023, 11, 14, 22, 13, 20, tzinfo=UTC)


def test_balances_recompute_total_exactly_and_drop_zeros() -> None:
    raw = {
        "free": {"BTC": 0.1, "USDT": 0.0, "ETH": 0.0},
        "used": {"BTC": 0.2, "ETH": 0.0},
        "total": {"BTC": 0.30000000000000004},
    }
    balances = mapping.balances_from_ccxt("binance", raw)
    assert list(balances) == ["BTC"] and balances["BTC"].total == Decimal("0.3")


def test_bar_and_book_and_quote() -> None:
    bar = mapping.bar_from_ohlcv("binance", "BTC/USDT", "1h", [1_700_000_000_000, 1.0, 2.0, 0.5, 1.5, 10.0])
    assert (bar.open, bar.high, bar.low, bar.close, bar.volume) == tuple(
        map(Decimal, ("1.0", "2.0", "0.5", "1.5", "10.0"))
    )
    book = mapping.book_from_ccxt(
        "binance", "BTC/USDT", {"bids": [[2.0, 1.0], [1.0, 1.0]], "asks": [[3.0, 1.0]]}, NOW, 1
    )
    assert (len(book.bids), book.ts) == (1, NOW)
    quote = mapping.quote_from_ticker("binance", "BTC/USDT", {"bid": 2.0, "ask": 3.0, "timestamp": None}, NOW)
    assert (quote.mid, quote.bid_size) == (Decimal("2.5"), 0)


def _intent(qty: str, price: str | None, **extra: Any) -> OrderIntent:
    plan = plan_id_from("p")
    return OrderIntent(
        client_order_id=client_order_id(plan, 0),
        plan_id=plan,
        slice_no=0,
        venue="binance",
        symbol="BTC/USDT",
        side=Side.BUY,
        order_type=OrderType.LIMIT if price else OrderType.MARKET,
        quantity=Decimal(qty),
        limit_price=None if price is None else Decimal(price),
        **extra,
    )


def test_order_request_rounds_to_the_grid_and_sends_strings() -> None:
    instrument = mapping.instrument_from_market("binance", BTC_MARKET, 4)
    request = mapping.order_request(_intent("0.0123456", "8036.005", post_only=True), instrument)
    assert (request.amount, request.price) == ("0.01234", "8036.01")  # amount truncates, price rounds half-up
    assert request.params == {
        "clientOrderId": _intent("1", "1").client_order_id,
        "timeInForce": "GTC",
        "postOnly": True,
    }
    market = mapping.order_request(_intent("0.01", None), instrument)
    assert (market.type, market.price, "timeInForce" in market.params) == ("market", None, False)


def test_order_request_refuses_what_the_venue_filters_would_reject() -> None:
    instrument = mapping.instrument_from_market("binance", BTC_MARKET, 4)
    with pytest.raises(InvalidOrder) as caught:
        mapping.order_request(_intent("0.0001", "8036"), instrument)
    assert caught.value.reason == "min_notional"


def test_naive_datetimes_are_refused_at_the_edge() -> None:
    with pytest.raises(ValueError, match="naive"):
        mapping.to_ms(datetime(2024, 1, 1))
