"""Coinbase Advanced Trade payloads → ccxt's own coinbase parsers → the desk's ccxt mapping.

The raw payloads use the field names of Coinbase's Advanced Trade REST reference (``GET
/api/v3/brokerage/products/{product_id}``, ``/best_bid_ask``, ``/orders/historical/{order_id}``,
``/orders/historical/fills``, ``/transaction_summary``). They go through ccxt's coinbase parsers exactly
as ``fetch_markets`` / ``fetch_bids_asks`` / ``fetch_order`` / ``fetch_my_trades`` would (no network),
and the unified result through :mod:`desk.venues.ccxt.mapping`: the adapter works for Coinbase shapes,
not only Binance's.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import ccxt
import pytest

from desk.domain.errors import InvalidOrder
from desk.domain.ids import client_order_id, plan_id_from
from desk.domain.instruments import Instrument, PrecisionMode
from desk.domain.orders import Liquidity, OrderState, OrderType, Side, TimeInForce
from desk.schemas.trading import OrderIntent
from desk.venues.ccxt import mapping

NOW = datetime(2024, 5, 1, 12, 0, 5, tzinfo=UTC)
PLAN = plan_id_from("coinbase-test")
CLIENT_ID = client_order_id(PLAN, 0)

# GET /api/v3/brokerage/products/BTC-USD
PRODUCT: dict[str, Any] = {
    "product_id": "BTC-USD",
    "price": "64012.34",
    "price_percentage_change_24h": "1.27",
    "volume_24h": "8123.45",
    "volume_percentage_change_24h": "-3.1",
    "base_increment": "0.00000001",
    "quote_increment": "0.01",
    "quote_min_size": "1",
    "quote_max_size": "150000000",
    "base_min_size": "0.00000001",
    "base_max_size": "3400",
    "base_name": "Bitcoin",
    "quote_name": "US Dollar",
    "watched": False,
    "is_disabled": False,
    "new": False,
    "status": "online",
    "cancel_only": False,
    "limit_only": False,
    "post_only": False,
    "trading_disabled": False,
    "auction_mode": False,
    "product_type": "SPOT",
    "quote_currency_id": "USD",
    "base_currency_id": "BTC",
    "base_display_symbol": "BTC",
    "quote_display_symbol": "USD",
    "price_increment": "0.01",
}
# fee_tier of GET /api/v3/brokerage/transaction_summary (ccxt reads the maker/taker rates from it)
FEE_TIER = {"pricing_tier": "<$10k", "usd_from": "0", "usd_to": "10000", "taker_fee_rate": "0.006",
            "maker_fee_rate": "0.004"}  # fmt: skip
# one pricebook of GET /api/v3/brokerage/best_bid_ask
PRICEBOOK = {
    "product_id": "BTC-USD",
    "bids": [{"price": "64012.33", "size": "0.51"}],
    "asks": [{"price": "64012.34", "size": "0.25"}],
    "time": "2024-05-01T12:00:00.123456Z",
}
ORDER_ID = "0c5a8a2e-2d6e-4b8c-9a62-5d1f0e6f1a01"


def _order(status: str, filled_size: str, average_filled_price: str, **extra: Any) -> dict[str, Any]:
    """The ``order`` of GET /api/v3/brokerage/orders/historical/{order_id}: a GTC limit buy of 0.0123 BTC."""
    return {
        "order_id": ORDER_ID,
        "product_id": "BTC-USD",
        "user_id": "2222-000000-000000",
        "order_configuration": {
            "limit_limit_gtc": {"base_size": "0.0123", "limit_price": "64000.01", "post_only": False}
        },
        "side": "BUY",
        "client_order_id": CLIENT_ID,
        "status": status,
        "time_in_force": "GOOD_UNTIL_CANCELLED",
        "created_time": "2024-05-01T12:00:00.5Z",
        "completion_percentage": "0",
        "filled_size": filled_size,
        "average_filled_price": average_filled_price,
        "number_of_fills": "0",
        "filled_value": "0",
        "pending_cancel": False,
        "size_in_quote": False,
        "total_fees": "0",
        "size_inclusive_of_fees": False,
        "total_value_after_fees": "0",
        "trigger_status": "INVALID_ORDER_TYPE",
        "order_type": "LIMIT",
        "reject_reason": "REJECT_REASON_UNSPECIFIED",
        "settled": False,
        "product_type": "SPOT",
        "reject_message": "",
        "cancel_message": "",
    } | extra


# one entry of GET /api/v3/brokerage/orders/historical/fills
FILL: dict[str, Any] = {
    "entry_id": "22222-2222222-22222222",
    "trade_id": "1111-11111-111111",
    "order_id": ORDER_ID,
    "trade_time": "2024-05-01T12:00:01.250Z",
    "trade_type": "FILL",
    "price": "64000.01",
    "size": "0.00615",
    "commission": "2.3616003690",
    "product_id": "BTC-USD",
    "sequence_timestamp": "2024-05-01T12:00:01.251Z",
    "liquidity_indicator": "MAKER",
    "size_in_quote": False,
    "user_id": "3333-333333-3333333",
    "side": "BUY",
}


@pytest.fixture(scope="module")
def coinbase() -> Any:
    """ccxt's coinbase with BTC/USD loaded from the raw product, as ``load_markets`` would leave it."""
    exchange = ccxt.coinbase()
    exchange.set_markets([exchange.parse_spot_market(PRODUCT, FEE_TIER)])
    return exchange


@pytest.fixture(scope="module")
def instrument(coinbase: Any) -> Instrument:
    return mapping.instrument_from_market("coinbase", coinbase.markets["BTC/USD"], coinbase.precisionMode)


def test_product_maps_to_an_instrument_on_coinbase_grid(coinbase: Any, instrument: Instrument) -> None:
    # Given ccxt's coinbase, which counts precision as tick sizes
    assert coinbase.precisionMode == ccxt.TICK_SIZE
    assert mapping.precision_mode(coinbase.precisionMode) is PrecisionMode.TICK_SIZE
    # Then the product's increments and sizes become the instrument's grid and filters, exactly
    assert (instrument.symbol, instrument.venue_symbol, instrument.base, instrument.quote) == (
        "BTC/USD",
        "BTC-USD",
        "BTC",
        "USD",
    )
    assert instrument.precision_mode is PrecisionMode.TICK_SIZE
    assert (instrument.tick_size, instrument.lot_size) == (Decimal("0.01"), Decimal("0.00000001"))
    assert (instrument.min_amount, instrument.max_amount) == (Decimal("0.00000001"), Decimal(3400))
    assert (instrument.min_notional, instrument.max_notional) == (Decimal(1), Decimal(150_000_000))
    assert (instrument.min_price, instrument.max_price) == (None, None)  # Coinbase publishes no price band
    assert coinbase.markets["BTC/USD"]["active"] is True  # status "online", trading_disabled false


def test_best_bid_ask_maps_to_a_quote(coinbase: Any) -> None:
    # Given a pricebook parsed by ccxt (as fetch_bids_asks does)
    ticker = coinbase.parse_ticker(PRICEBOOK)
    # When it is mapped
    quote = mapping.quote_from_ticker("coinbase", ticker["symbol"], ticker, NOW)
    # Then the touch and sizes are exact decimals and the venue's time (to the ms) is kept
    assert (quote.symbol, quote.bid, quote.ask) == ("BTC/USD", Decimal("64012.33"), Decimal("64012.34"))
    assert (quote.bid_size, quote.ask_size) == (Decimal("0.51"), Decimal("0.25"))
    assert quote.mid == Decimal("64012.335")
    assert quote.ts == datetime(2024, 5, 1, 12, 0, 0, 123000, tzinfo=UTC)


@pytest.mark.parametrize(
    ("status", "filled_size", "average", "state"),
    [
        ("OPEN", "0", "0", OrderState.ACCEPTED),
        ("OPEN", "0.00615", "64000.01", OrderState.PARTIALLY_FILLED),
        ("FILLED", "0.0123", "64000.005", OrderState.FILLED),
        ("CANCELLED", "0", "0", OrderState.CANCELLED),
        ("CANCELLED", "0.00615", "64000.01", OrderState.CANCELLED),
        ("PENDING", "0", "0", OrderState.ACCEPTED),
        ("QUEUED", "0", "0", OrderState.ACCEPTED),
        ("CANCEL_QUEUED", "0", "0", OrderState.PENDING_CANCEL),
    ],
)
def test_order_status_maps_to_the_domain_state(
    coinbase: Any, status: str, filled_size: str, average: str, state: OrderState
) -> None:
    # Given a Coinbase order parsed by ccxt
    raw = coinbase.parse_order(_order(status, filled_size, average))
    # When it is mapped
    record = mapping.order_from_ccxt("coinbase", raw, NOW)
    # Then its state follows the venue's status and filled size, and the average is set only when filled
    assert record.state is state
    assert record.filled_quantity == Decimal(filled_size)
    assert record.average_price == (Decimal(average) if Decimal(filled_size) else None)


def test_pending_cancel_flag_latches_pending_cancel(coinbase: Any) -> None:
    raw = coinbase.parse_order(_order("OPEN", "0.00615", "64000.01", pending_cancel=True))
    assert mapping.order_from_ccxt("coinbase", raw, NOW).state is OrderState.PENDING_CANCEL


def test_order_fields_are_exact_decimals(coinbase: Any) -> None:
    # Given a partially filled GTC limit order
    raw = coinbase.parse_order(_order("OPEN", "0.00615", "64000.01"))
    # When it is mapped
    record = mapping.order_from_ccxt("coinbase", raw, NOW)
    # Then identity, type and numbers survive ccxt's floats exactly
    assert (record.client_order_id, record.venue_order_id, record.symbol) == (CLIENT_ID, ORDER_ID, "BTC/USD")
    assert (record.side, record.order_type, record.time_in_force) == (Side.BUY, OrderType.LIMIT, TimeInForce.GTC)
    assert (record.quantity, record.limit_price) == (Decimal("0.0123"), Decimal("64000.01"))
    assert (record.filled_quantity, record.average_price) == (Decimal("0.00615"), Decimal("64000.01"))
    assert record.updated_at == NOW


def test_fill_maps_with_commission_and_liquidity(coinbase: Any) -> None:
    # Given a fill parsed by ccxt (as fetch_my_trades does)
    trade = coinbase.parse_trade(FILL)
    # When it is mapped to our order's fill
    fill = mapping.fill_from_trade("coinbase", trade, CLIENT_ID)
    # Then the trade id, numbers, fee (in the quote currency) and liquidity are exact
    assert (fill.venue, fill.venue_trade_id, fill.client_order_id) == ("coinbase", "1111-11111-111111", CLIENT_ID)
    assert (fill.symbol, fill.side, fill.liquidity) == ("BTC/USD", Side.BUY, Liquidity.MAKER)
    assert (fill.quantity, fill.price) == (Decimal("0.00615"), Decimal("64000.01"))
    assert (fill.fee, fill.fee_currency) == (Decimal("2.361600369"), "USD")
    assert fill.notional == Decimal("393.6000615")
    assert fill.occurred_at == datetime(2024, 5, 1, 12, 0, 1, 250000, tzinfo=UTC)


def _intent(qty: str, price: str | None) -> OrderIntent:
    return OrderIntent(
        client_order_id=CLIENT_ID,
        plan_id=PLAN,
        slice_no=0,
        venue="coinbase",
        symbol="BTC/USD",
        side=Side.BUY,
        order_type=OrderType.LIMIT if price else OrderType.MARKET,
        quantity=Decimal(qty),
        limit_price=None if price is None else Decimal(price),
    )


def test_order_request_is_rounded_to_coinbase_grid(coinbase: Any, instrument: Instrument) -> None:
    # When a BTC/USD order finer than Coinbase's grid is prepared
    request = mapping.order_request(_intent("0.123456789", "64000.005"), instrument)
    # Then the amount truncates to 1e-8 and the price rounds half-up to the cent, as strings
    assert (request.symbol, request.type, request.side) == ("BTC/USD", "limit", "buy")
    assert (request.amount, request.price) == ("0.12345678", "64000.01")
    assert request.params == {"clientOrderId": CLIENT_ID, "timeInForce": "GTC"}
    # And the strings agree with ccxt's own coinbase rounding
    assert request.amount == coinbase.amount_to_precision("BTC/USD", "0.123456789")
    assert request.price == coinbase.price_to_precision("BTC/USD", "64000.005")


def test_order_request_refuses_less_than_coinbase_minimum_notional(instrument: Instrument) -> None:
    # 0.00001 BTC at 64,000 USD is 0.64 USD, under the product's quote_min_size of 1 USD
    with pytest.raises(InvalidOrder) as caught:
        mapping.order_request(_intent("0.00001", "64000"), instrument)
    assert caught.value.reason == "min_notional"
