"""ccxt's unified JSON ↔ the desk's domain types. Pure functions: no client, no clock, no I/O.

ccxt (Python, sync) reports numbers as floats; they become ``Decimal`` through ``repr`` (the shortest
text that round-trips), never ``Decimal(float)``. Everything typed ``Any`` stays in this module and
in ``client.py``: what leaves here is a domain object or a pydantic schema.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, NamedTuple

from desk.domain.instruments import DECIMAL_CONTEXT, Instrument, PrecisionMode, as_decimal, to_venue_string
from desk.domain.orders import Fill, Liquidity, OrderState, OrderType, Side, TimeInForce
from desk.schemas.market import Bar, BookLevel, OrderBook, Quote
from desk.schemas.trading import Balance, OrderIntent, OrderRecord

__all__ = [
    "CcxtOrderRequest",
    "balances_from_ccxt",
    "bar_from_ohlcv",
    "book_from_ccxt",
    "fill_from_trade",
    "from_ms",
    "instrument_from_market",
    "order_from_ccxt",
    "order_request",
    "precision_mode",
    "quote_from_ticker",
    "to_ms",
]

# ccxt.base.decimal_to_precision constants: DECIMAL_PLACES = 2, SIGNIFICANT_DIGITS = 3, TICK_SIZE = 4.
_PRECISION_MODES = {2: PrecisionMode.DECIMAL_PLACES, 3: PrecisionMode.SIGNIFICANT_DIGITS, 4: PrecisionMode.TICK_SIZE}
_TIF = {"GTC": TimeInForce.GTC, "IOC": TimeInForce.IOC, "FOK": TimeInForce.FOK, "PO": TimeInForce.GTC}
_TIF_OUT = {TimeInForce.GTC: "GTC", TimeInForce.IOC: "IOC", TimeInForce.FOK: "FOK", TimeInForce.DAY: "GTC"}
# Venue statuses ccxt leaves unmapped. Coinbase's PENDING / QUEUED (not yet on the book) and CANCEL_QUEUED
# (or ``pending_cancel``) are live orders: without these they would fall through to EXPIRED, a terminal state.
_RAW_LIVE = frozenset({"PENDING", "QUEUED"})
_RAW_PENDING_CANCEL = frozenset({"PENDING_CANCEL", "CANCEL_QUEUED"})


def to_ms(value: datetime) -> int:
    if value.utcoffset() is None:
        raise ValueError(f"naive datetime {value!r}: venue times are UTC")
    return int(value.timestamp() * 1000)


def from_ms(value: Any) -> datetime:
    return datetime.fromtimestamp(int(value) / 1000, tz=UTC)


def _dec(value: Any, field: str) -> Decimal:
    return as_decimal(value, field)


def _opt_dec(value: Any, field: str) -> Decimal | None:
    return None if value is None else as_decimal(value, field)


def precision_mode(ccxt_mode: Any) -> PrecisionMode:
    """ccxt's ``exchange.precisionMode`` (an int) as ours."""
    try:
        return _PRECISION_MODES[int(ccxt_mode)]
    except (KeyError, TypeError, ValueError):
        raise ValueError(f"unknown ccxt precision mode {ccxt_mode!r}") from None


def instrument_from_market(venue: str, market: Mapping[str, Any], ccxt_mode: Any) -> Instrument:
    """One ccxt market (``exchange.markets[symbol]``) as an :class:`Instrument`."""
    return Instrument.from_ccxt_market(venue, market, precision_mode(ccxt_mode))


def bar_from_ohlcv(venue: str, symbol: str, timeframe: str, row: Any) -> Bar:
    """``[ms, open, high, low, close, volume]`` as a :class:`Bar`."""
    ts, o, h, low, c, v = row[:6]
    return Bar(
        venue=venue,
        symbol=symbol,
        timeframe=timeframe,
        ts=from_ms(ts),
        open=_dec(o, "open"),
        high=_dec(h, "high"),
        low=_dec(low, "low"),
        close=_dec(c, "close"),
        volume=_dec(v or 0, "volume"),
    )


def quote_from_ticker(venue: str, symbol: str, ticker: Mapping[str, Any], now: datetime) -> Quote:
    """A ccxt ticker (or bids/asks entry) as a :class:`Quote`; ``now`` when the venue gives no time."""
    ts = ticker.get("timestamp")
    return Quote(
        venue=venue,
        symbol=symbol,
        ts=now if ts is None else from_ms(ts),
        bid=_dec(ticker["bid"], "bid"),
        ask=_dec(ticker["ask"], "ask"),
        bid_size=_dec(ticker.get("bidVolume") or 0, "bidVolume"),
        ask_size=_dec(ticker.get("askVolume") or 0, "askVolume"),
    )


def book_from_ccxt(venue: str, symbol: str, book: Mapping[str, Any], now: datetime, depth: int) -> OrderBook:
    """A ccxt order book as an :class:`OrderBook`, at most ``depth`` levels a side."""

    def levels(side: str) -> tuple[BookLevel, ...]:
        rows = book.get(side) or []
        return tuple(BookLevel(price=_dec(p, "price"), quantity=_dec(q, "quantity")) for p, q, *_ in rows[:depth])

    ts, nonce = book.get("timestamp"), book.get("nonce")
    return OrderBook(
        venue=venue,
        symbol=symbol,
        ts=now if ts is None else from_ms(ts),
        bids=levels("bids"),
        asks=levels("asks"),
        sequence=None if nonce is None else int(nonce),
    )


def _state(order: Mapping[str, Any], filled: Decimal, quantity: Decimal) -> OrderState:
    info = order.get("info") or {}
    raw = str(info.get("status") or "").upper()
    status = order.get("status")
    if raw in _RAW_PENDING_CANCEL or info.get("pending_cancel") is True:
        return OrderState.PENDING_CANCEL
    if filled == quantity:
        return OrderState.FILLED
    if status == "open" or raw in _RAW_LIVE:
        return OrderState.PARTIALLY_FILLED if filled else OrderState.ACCEPTED
    if status == "canceled":
        return OrderState.CANCELLED
    if status == "rejected":
        return OrderState.REJECTED
    # "closed" short of the quantity: a market/IOC order whose rest the venue dropped.
    return OrderState.EXPIRED


def order_from_ccxt(venue: str, order: Mapping[str, Any], now: datetime) -> OrderRecord:
    """A ccxt order as an :class:`OrderRecord` (the venue's view at ``now``)."""
    quantity = _dec(order["amount"], "amount")
    filled = min(_dec(order.get("filled") or 0, "filled"), quantity)
    order_type = OrderType.MARKET if order.get("type") == "market" else OrderType.LIMIT
    average: Decimal | None = None
    if filled:
        average = _opt_dec(order.get("average"), "average")
        cost = _opt_dec(order.get("cost"), "cost")
        if average is None and cost:
            average = DECIMAL_CONTEXT.divide(cost, filled)
        average = average or _dec(order["price"], "price")
    return OrderRecord(
        client_order_id=str(order["clientOrderId"]),
        venue=venue,
        symbol=str(order["symbol"]),
        side=Side(str(order["side"]).lower()),
        order_type=order_type,
        quantity=quantity,
        limit_price=_dec(order["price"], "price") if order_type is OrderType.LIMIT else None,
        time_in_force=_TIF.get(str(order.get("timeInForce") or "GTC").upper(), TimeInForce.GTC),
        state=_state(order, filled, quantity),
        venue_order_id=None if order.get("id") is None else str(order["id"]),
        filled_quantity=filled,
        average_price=average,
        updated_at=now,
    )


def fill_from_trade(venue: str, trade: Mapping[str, Any], client_order_id: str) -> Fill:
    """A ccxt trade (``fetch_my_trades``) as a :class:`Fill` of our order ``client_order_id``."""
    fee = trade.get("fee") or {}
    role = trade.get("takerOrMaker")
    return Fill(
        venue=venue,
        venue_trade_id=str(trade["id"]),
        client_order_id=client_order_id,
        symbol=str(trade["symbol"]),
        side=Side(str(trade["side"]).lower()),
        quantity=_dec(trade["amount"], "amount"),
        price=_dec(trade["price"], "price"),
        occurred_at=from_ms(trade["timestamp"]),
        fee=as_decimal(fee.get("cost") or 0, "fee", allow_negative=True),
        fee_currency=fee.get("currency"),
        liquidity=Liquidity(role) if role in ("maker", "taker") else None,
    )


def balances_from_ccxt(venue: str, balance: Mapping[str, Any]) -> dict[str, Balance]:
    """ccxt ``fetch_balance`` as balances by currency; zero balances are left out.

    ``total`` is recomputed as ``free + used`` in Decimal: ccxt adds the floats, which can be off in
    the last digit and would fail the schema's invariant.
    """
    free, used = balance.get("free") or {}, balance.get("used") or {}
    out: dict[str, Balance] = {}
    for currency in sorted(set(free) | set(used)):
        f, u = _dec(free.get(currency) or 0, "free"), _dec(used.get(currency) or 0, "used")
        if f or u:
            out[currency] = Balance(venue=venue, currency=currency, free=f, used=u, total=DECIMAL_CONTEXT.add(f, u))
    return out


class CcxtOrderRequest(NamedTuple):
    """The arguments of ``exchange.create_order(*request)``."""

    symbol: str
    type: str
    side: str
    amount: str
    price: str | None
    params: dict[str, Any]


def order_request(intent: OrderIntent, instrument: Instrument) -> CcxtOrderRequest:
    """The ccxt ``create_order`` arguments for ``intent``, rounded to the instrument's grid.

    Amount truncates and price rounds (ccxt's rules); both are sent as strings so no float ever
    carries them. Raises :class:`~desk.domain.errors.InvalidOrder` when the rounded order fails a
    filter: the venue would refuse it anyway, and not sending saves a request and a reject.
    """
    sized = instrument.size_order(intent.quantity, intent.limit_price)
    params: dict[str, Any] = {"clientOrderId": intent.client_order_id}
    if intent.order_type is OrderType.LIMIT:
        params["timeInForce"] = _TIF_OUT[intent.time_in_force]
        if intent.post_only:
            params["postOnly"] = True
    if intent.reduce_only:
        params["reduceOnly"] = True
    price = None if sized.price is None or intent.order_type is OrderType.MARKET else to_venue_string(sized.price)
    return CcxtOrderRequest(
        intent.symbol, intent.order_type.value, intent.side.value, to_venue_string(sized.quantity), price, params
    )
