"""Alpaca payloads (alpaca-py models or raw JSON) → the desk's domain types, and intents → order JSON.

Pure functions: no I/O and no clock. Numbers leave Alpaca as strings (orders, positions, account,
activities) or JSON floats (assets, bars, quotes); both become ``Decimal`` through
:func:`~desk.domain.as_decimal` (floats by ``repr``, so ``0.01`` stays ``0.01``).

Equity rules applied here (what Alpaca enforces and documents)
--------------------------------------------------------------
* Price tick: the asset's ``price_increment`` when Alpaca sends one, else $0.01; limit prices below
  $1.00 use $0.0001 (SEC Reg NMS Rule 612, the sub-penny rule; Alpaca rejects other increments
  with 422 "sub-penny increment does not fulfill minimum pricing criteria").
* Quantity: whole shares for assets that are not ``fractionable``; fractionable assets accept up to
  9 decimal places, with a $1 minimum notional, and fractional orders must be ``day`` orders.
  ``min_trade_increment`` / ``min_order_size`` override the lot and minimum when Alpaca sends them.
* Alpaca has no post-only or reduce-only flag for equities, so intents carrying either are refused
  rather than sent without the protection they asked for.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from alpaca.data.models import Bar as AlpacaBar
from alpaca.data.models import Quote as AlpacaQuote
from alpaca.data.timeframe import TimeFrame, TimeFrameUnit
from alpaca.trading.enums import AssetStatus
from alpaca.trading.models import Asset, Position, TradeAccount
from alpaca.trading.models import Order as AlpacaOrder

from desk.domain.instruments import Instrument, PrecisionMode, Rounding, as_decimal, round_to_precision, to_venue_string
from desk.domain.orders import Fill, OrderState, OrderType, Side, TimeInForce
from desk.schemas.market import Bar, BookLevel, OrderBook, Quote
from desk.schemas.trading import Balance, OrderIntent, OrderRecord, PositionRecord
from desk.venues.errors import OrderRejected, PermanentVenueError, VenueUnavailable

__all__ = [
    "CENT",
    "SUB_DOLLAR_TICK",
    "TIMEFRAMES",
    "balances_from_account",
    "bar_from_alpaca",
    "book_from_quote",
    "fill_from_activity",
    "instrument_from_asset",
    "limit_price_to_tick",
    "order_record",
    "order_request_json",
    "order_state",
    "parse_time",
    "position_from_alpaca",
    "quote_from_alpaca",
    "timeframe_duration",
]

CENT = Decimal("0.01")
SUB_DOLLAR_TICK = Decimal("0.0001")
_ONE = Decimal(1)
_ZERO = Decimal(0)

# ccxt timeframe strings (what the desk stores) → Alpaca's, with each bar's length.
TIMEFRAMES: dict[str, tuple[TimeFrame, timedelta]] = {
    "1m": (TimeFrame(1, TimeFrameUnit.Minute), timedelta(minutes=1)),
    "5m": (TimeFrame(5, TimeFrameUnit.Minute), timedelta(minutes=5)),
    "15m": (TimeFrame(15, TimeFrameUnit.Minute), timedelta(minutes=15)),
    "30m": (TimeFrame(30, TimeFrameUnit.Minute), timedelta(minutes=30)),
    "1h": (TimeFrame(1, TimeFrameUnit.Hour), timedelta(hours=1)),
    "4h": (TimeFrame(4, TimeFrameUnit.Hour), timedelta(hours=4)),
    "1d": (TimeFrame(1, TimeFrameUnit.Day), timedelta(days=1)),
}


def timeframe_duration(timeframe: str) -> timedelta:
    return TIMEFRAMES[timeframe][1]


def parse_time(value: object, field: str = "time") -> datetime:
    """An aware UTC datetime from a datetime or Alpaca's RFC 3339 text (which may carry nanoseconds)."""
    if isinstance(value, datetime):
        parsed = value
    elif isinstance(value, str):
        text = value.strip().replace("Z", "+00:00")
        head, dot, rest = text.partition(".")
        if dot:  # Python parses at most 6 fractional digits; Alpaca sends up to 9
            digits = "".join(c for c in rest if c.isdigit())
            text = f"{head}.{digits[:6]}{rest[len(digits) :]}"
        parsed = datetime.fromisoformat(text)
    else:
        raise PermanentVenueError(f"{field}: expected a timestamp, got {value!r}", venue="alpaca")
    if parsed.utcoffset() is None:
        parsed = parsed.replace(tzinfo=UTC)  # alpaca-py strips the zone of some naive-looking times
    return parsed.astimezone(UTC)


# ---------------------------------------------------------------- instruments


def instrument_from_asset(
    asset: Asset, venue: str, *, fractional_decimals: int = 9, min_notional: str = "1"
) -> Instrument:
    """An :class:`Instrument` in TICK_SIZE mode from an Alpaca ``us_equity`` asset (rules: module docstring)."""
    tick = CENT if asset.price_increment is None else as_decimal(asset.price_increment, "price_increment")
    if asset.min_trade_increment is not None:
        lot = as_decimal(asset.min_trade_increment, "min_trade_increment", allow_zero=False)
    else:
        lot = Decimal(1).scaleb(-fractional_decimals) if asset.fractionable else _ONE
    if asset.min_order_size is not None:
        minimum = as_decimal(asset.min_order_size, "min_order_size")
    else:
        minimum = lot if asset.fractionable else _ONE
    return Instrument(
        venue=venue,
        symbol=asset.symbol,
        base=asset.symbol,
        quote="USD",
        precision_mode=PrecisionMode.TICK_SIZE,
        price_precision=tick,
        amount_precision=lot,
        min_amount=minimum,
        min_notional=as_decimal(min_notional, "min_notional") if asset.fractionable else None,
        venue_symbol=asset.symbol,
        active=bool(asset.tradable) and asset.status == AssetStatus.ACTIVE,
    )


def limit_price_to_tick(instrument: Instrument, price: Decimal) -> Decimal:
    """``price`` rounded half-up to the equity tick: the instrument's at/above $1, $0.0001 below."""
    if price < _ONE:
        rounded = round_to_precision(price, SUB_DOLLAR_TICK, PrecisionMode.TICK_SIZE, Rounding.ROUND)
        if rounded < _ONE:
            if rounded.is_zero():
                raise OrderRejected(f"{instrument.symbol} price {price} rounds to zero", venue=instrument.venue)
            return rounded
    return instrument.price_to_precision(price)


def _is_whole(value: Decimal) -> bool:
    return value == value.to_integral_value()


def order_request_json(intent: OrderIntent, instrument: Instrument) -> dict[str, str]:
    """The body of ``POST /v2/orders``: quantities and prices as exact decimal strings.

    alpaca-py's request models declare ``qty``/``limit_price`` as floats, which would send binary
    approximations; Alpaca documents both as strings, so the body is built here. The quantity is
    truncated and the limit price rounded on the instrument's grid, then every filter is checked,
    so nothing the venue would refuse for size or tick leaves the desk.
    """
    where = {"venue": instrument.venue, "operation": "create_order"}
    if intent.post_only or intent.reduce_only:
        raise OrderRejected("Alpaca equities support neither post-only nor reduce-only orders", **where)
    try:
        qty = instrument.amount_to_precision(intent.quantity)
        price = None if intent.limit_price is None else limit_price_to_tick(instrument, intent.limit_price)
        if price is not None and price < _ONE:
            # check_order would test the sub-dollar price against the $0.01 grid; check the size alone.
            instrument.check_order(qty, None)
        else:
            instrument.check_order(qty, price)
    except ValueError as exc:  # InvalidOrder / PrecisionError / InvalidNumber: the venue would refuse it too
        raise OrderRejected(str(exc), **where) from exc
    if not _is_whole(qty) and intent.time_in_force is not TimeInForce.DAY:
        raise OrderRejected(f"fractional quantity {qty} needs time_in_force=day on Alpaca", **where)
    body = {
        "symbol": instrument.venue_symbol or instrument.symbol,
        "qty": to_venue_string(qty),
        "side": intent.side.value,
        "type": intent.order_type.value,
        "time_in_force": intent.time_in_force.value,
        "client_order_id": intent.client_order_id,
    }
    if price is not None:
        body["limit_price"] = to_venue_string(price)
    return body


# ---------------------------------------------------------------- orders

_WORKING = frozenset(
    {
        "new",
        "pending_new",
        "accepted",
        "accepted_for_bidding",
        "pending_review",
        "held",
        "calculated",
        "stopped",
        "done_for_day",  # paused until the next session, still working
        "pending_replace",
        "suspended",
    }
)
_TERMINAL = {
    "canceled": OrderState.CANCELLED,
    "replaced": OrderState.CANCELLED,  # the desk never replaces; the original stops working either way
    "expired": OrderState.EXPIRED,
    "rejected": OrderState.REJECTED,
}


def order_state(status: str, filled: Decimal, quantity: Decimal) -> OrderState:
    """The domain state of an Alpaca order status. Filled is decided by quantity, not by label."""
    if filled >= quantity:
        return OrderState.FILLED
    if status == "filled":
        raise PermanentVenueError(f"order reported filled with {filled}/{quantity}", venue="alpaca")
    if status in _TERMINAL:
        return _TERMINAL[status]
    if status == "pending_cancel":
        return OrderState.PENDING_CANCEL
    if status == "partially_filled" or status in _WORKING:
        return OrderState.PARTIALLY_FILLED if filled > 0 else OrderState.ACCEPTED
    raise PermanentVenueError(f"unknown Alpaca order status {status!r}", venue="alpaca")


def _enum_value(value: object) -> str:
    raw = getattr(value, "value", value)
    return str(raw) if raw is not None else ""


_TIME_IN_FORCE = {t.value: t for t in TimeInForce}


def order_record(order: AlpacaOrder, venue: str) -> OrderRecord | None:
    """The :class:`OrderRecord` of an Alpaca order, or ``None`` for orders the desk cannot express.

    Those are notional-sized orders (no ``qty``), stop/trailing types, multi-leg classes and the
    opening/closing-auction TIFs: the desk never sends them, so they come from elsewhere (a human
    on the dashboard) and are left out of the listings rather than failing them.
    """
    kind = _enum_value(order.order_type or order.type)
    tif = _enum_value(order.time_in_force)
    if order.qty is None or kind not in ("market", "limit") or tif not in _TIME_IN_FORCE or order.symbol is None:
        return None
    if order.legs:
        return None
    quantity = as_decimal(order.qty, "qty", allow_zero=False)
    filled = as_decimal(order.filled_qty or 0, "filled_qty")
    average = None
    if filled > 0:
        average = as_decimal(order.filled_avg_price, "filled_avg_price", allow_zero=False)
    limit = as_decimal(order.limit_price, "limit_price") if kind == "limit" else None
    state = order_state(_enum_value(order.status), filled, quantity)
    return OrderRecord(
        client_order_id=order.client_order_id,
        venue=venue,
        symbol=order.symbol,
        side=Side(_enum_value(order.side)),
        order_type=OrderType(kind),
        quantity=quantity,
        limit_price=limit,
        time_in_force=_TIME_IN_FORCE[tif],
        state=state,
        venue_order_id=str(order.id),
        filled_quantity=filled,
        average_price=average,
        reject_reason="rejected by Alpaca" if state is OrderState.REJECTED else None,
        updated_at=parse_time(order.updated_at, "updated_at"),
    )


def fill_from_activity(activity: Mapping[str, Any], venue: str, client_order_id: str) -> Fill:
    """A :class:`Fill` from one raw ``FILL`` account activity (JSON, so prices stay exact strings).

    The activity ``id`` is the venue trade id. Alpaca charges no commission on equities; regulatory
    fees arrive as separate ``FEE`` activities, so each fill carries ``fee = 0`` in USD.
    """
    return Fill(
        venue=venue,
        venue_trade_id=str(activity["id"]),
        client_order_id=client_order_id,
        symbol=str(activity["symbol"]),
        side=Side(str(activity["side"]).lower()),
        quantity=as_decimal(str(activity["qty"]), "qty", allow_zero=False),
        price=as_decimal(str(activity["price"]), "price", allow_zero=False),
        occurred_at=parse_time(activity["transaction_time"], "transaction_time"),
        fee=_ZERO,
        fee_currency="USD",
    )


# ---------------------------------------------------------------- market data


def _float(value: float, field: str) -> Decimal:
    return as_decimal(value, field, allow_negative=True)  # the schema decides the sign rules


def bar_from_alpaca(bar: AlpacaBar, venue: str, symbol: str, timeframe: str) -> Bar:
    return Bar(
        venue=venue,
        symbol=symbol,
        timeframe=timeframe,
        ts=parse_time(bar.timestamp, "timestamp"),
        open=_float(bar.open, "open"),
        high=_float(bar.high, "high"),
        low=_float(bar.low, "low"),
        close=_float(bar.close, "close"),
        volume=_float(bar.volume, "volume"),
    )


def quote_from_alpaca(quote: AlpacaQuote, venue: str, symbol: str) -> Quote:
    """A :class:`Quote`. Sizes are passed through as Alpaca reports them.

    An empty side (price 0) or a crossed quote happens on thin feeds (IEX) between updates; it is
    reported as :class:`VenueUnavailable` (retryable) rather than a quote nobody should trade on.
    """
    if quote.bid_price <= 0 or quote.ask_price <= 0 or quote.ask_price < quote.bid_price:
        raise VenueUnavailable(
            f"{symbol}: unusable quote bid={quote.bid_price} ask={quote.ask_price}", venue=venue, operation="quote"
        )
    return Quote(
        venue=venue,
        symbol=symbol,
        ts=parse_time(quote.timestamp, "timestamp"),
        bid=_float(quote.bid_price, "bid_price"),
        ask=_float(quote.ask_price, "ask_price"),
        bid_size=_float(quote.bid_size, "bid_size"),
        ask_size=_float(quote.ask_size, "ask_size"),
    )


def book_from_quote(quote: Quote) -> OrderBook:
    """Alpaca publishes no equity depth: the book is the top of book, one level a side (when sized)."""
    bids = (BookLevel(price=quote.bid, quantity=quote.bid_size),) if quote.bid_size > 0 else ()
    asks = (BookLevel(price=quote.ask, quantity=quote.ask_size),) if quote.ask_size > 0 else ()
    return OrderBook(venue=quote.venue, symbol=quote.symbol, ts=quote.ts, bids=bids, asks=asks)


# ---------------------------------------------------------------- account


def balances_from_account(account: TradeAccount, venue: str) -> dict[str, Balance]:
    """USD: ``total`` = cash (0 when the account borrows), ``free`` = buying power without margin,
    capped to ``[0, total]``; ``used`` = the rest (held for open buy orders)."""
    cash = as_decimal(account.cash or "0", "cash", allow_negative=True)
    total = max(cash, _ZERO)
    raw_free = account.non_marginable_buying_power or account.buying_power or account.cash or "0"
    free = min(max(as_decimal(raw_free, "buying_power", allow_negative=True), _ZERO), total)
    currency = (account.currency or "USD").upper()
    return {currency: Balance(venue=venue, currency=currency, free=free, used=total - free, total=total)}


def position_from_alpaca(position: Position, venue: str, as_of: datetime) -> PositionRecord:
    """Signed quantity (short < 0). Alpaca reports no realised P&L per position, so it is 0 here."""
    qty = as_decimal(position.qty, "qty", allow_negative=True).copy_abs()
    signed = qty.copy_negate() if _enum_value(position.side) == "short" else qty
    return PositionRecord(
        venue=venue,
        symbol=position.symbol,
        quantity=signed,
        average_price=as_decimal(position.avg_entry_price, "avg_entry_price"),
        realised_pnl=_ZERO,
        as_of=as_of,
    )
