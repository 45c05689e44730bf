"""The paper venue: :class:`desk.ports.Venue` in memory, filling against quotes and books fed in.

The caller (the replay, a test) feeds market data with :meth:`PaperVenue.on_book`,
:meth:`PaperVenue.on_quote` and :meth:`PaperVenue.on_bar`; orders fill by the rules of
:mod:`desk.venues.paper.fills`. That fill model prices executions with :mod:`quant.costs`
(``FeeSchedule.fee``, ``sqrt_impact``): this is the one venue adapter that imports ``quant``, because a
simulated venue's matching *is* a cost model, and the desk's cost estimates and its paper fills must
agree.

Behaviour: cash account (no shorting, no margin) — a buy needs free quote currency for its notional
plus taker fee, a sell needs free base. Orders are idempotent by client order id (a repeat returns
the order as it is). Working orders (resting limits, the unfilled rest of a market order on a thin
book) are matched on every later book or quote. Ids come from a seeded generator and times from the
injected clock, so a run is reproducible.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from decimal import Decimal

from desk.domain.instruments import DECIMAL_CONTEXT, Instrument
from desk.domain.orders import Fill, Order, OrderType, Side, TimeInForce
from desk.domain.positions import position_from_fills
from desk.ports import Clock
from desk.schemas.market import Bar, BookLevel, OrderBook, Quote
from desk.schemas.trading import Balance, OrderIntent, OrderRecord, PositionRecord
from desk.venues.errors import (
    InsufficientFunds,
    OrderNotFound,
    OrderRejected,
    UnknownSymbol,
    VenueUnavailable,
)
from desk.venues.paper.config import PaperConfig
from desk.venues.paper.fills import Execution, cross_quote, fee_for, walk_book, with_impact

__all__ = ["PaperVenue"]

_ZERO = Decimal(0)


class PaperVenue:
    """A simulated venue over ``instruments``; see the module docstring for its rules."""

    def __init__(self, instruments: Iterable[Instrument], *, clock: Clock, config: PaperConfig | None = None) -> None:
        self._config = config or PaperConfig()
        self._clock = clock
        self._markets = {i.symbol: i for i in instruments}
        self._rng = random.Random(self._config.seed)  # noqa: S311 - reproducible ids, not secrets
        self._sequence = 0
        self._balances: dict[str, Decimal] = dict(self._config.balances)
        self._orders: dict[str, Order] = {}
        self._updated: dict[str, datetime] = {}
        self._fills: list[Fill] = []
        self._books: dict[str, OrderBook] = {}
        self._quotes: dict[str, Quote] = {}
        self._bars: dict[tuple[str, str], dict[datetime, Bar]] = {}

    @property
    def venue(self) -> str:
        return self._config.venue

    def _id(self, prefix: str) -> str:
        # The sequence keeps ids in execution order (fills sort by time, then id); the seeded
        # suffix keeps two venues, or two runs with different seeds, from sharing ids.
        self._sequence += 1
        return f"{prefix}-{self._sequence:012d}-{self._rng.getrandbits(32):08x}"

    # ------------------------------------------------------------------ market data in

    def on_book(self, book: OrderBook) -> None:
        """A new depth snapshot: working orders take from it as takers."""
        self._books[book.symbol] = book
        if book.bids and book.asks:
            best_bid, best_ask = book.bids[0], book.asks[0]
            self._quotes[book.symbol] = Quote(
                venue=self.venue, symbol=book.symbol, ts=book.ts, bid=best_bid.price, ask=best_ask.price,
                bid_size=best_bid.quantity, ask_size=best_ask.quantity,
            )  # fmt: skip
        for order in self._working(book.symbol):
            levels = book.asks if order.side is Side.BUY else book.bids
            self._execute(order, walk_book(order.side, order.remaining_quantity, levels, order.limit_price), book.ts)

    def on_quote(self, quote: Quote) -> None:
        """A new top of book: resting limits it crosses fill as makers, market remainders as takers."""
        self._quotes[quote.symbol] = quote
        for order in self._working(quote.symbol):
            if order.limit_price is None:
                level = (quote.ask, quote.ask_size) if order.side is Side.BUY else (quote.bid, quote.bid_size)
                book = [BookLevel(price=level[0], quantity=level[1])] if level[1] > 0 else []
                self._execute(order, walk_book(order.side, order.remaining_quantity, book), quote.ts)
            else:
                crossed = cross_quote(order.side, order.remaining_quantity, order.limit_price, quote)
                self._execute(order, [crossed] if crossed else [], quote.ts)

    def on_bar(self, bar: Bar) -> None:
        self._bars.setdefault((bar.symbol, bar.timeframe), {})[bar.ts] = bar

    def _working(self, symbol: str) -> list[Order]:
        return [o for o in self._orders.values() if o.symbol == symbol and not o.is_terminal]

    # ------------------------------------------------------------------ MarketData

    def markets(self) -> Mapping[str, Instrument]:
        return self._markets

    def _instrument(self, symbol: str) -> Instrument:
        if symbol not in self._markets:
            raise UnknownSymbol(f"{symbol} is not listed", venue=self.venue, operation="markets")
        return self._markets[symbol]

    def fetch_ohlcv(
        self, symbol: str, timeframe: str, since: datetime | None = None, limit: int | None = None
    ) -> Sequence[Bar]:
        bars = sorted(self._bars.get((symbol, timeframe), {}).values(), key=lambda b: b.ts)
        bars = [b for b in bars if since is None or b.ts >= since]
        return bars if limit is None else (bars[:limit] if since is not None else bars[-limit:])

    def fetch_ticker(self, symbol: str) -> Quote:
        self._instrument(symbol)
        if symbol not in self._quotes:
            raise VenueUnavailable(f"no quote for {symbol} yet", venue=self.venue, operation="fetch_ticker")
        return self._quotes[symbol]

    def fetch_order_book(self, symbol: str, depth: int = 20) -> OrderBook:
        book = self._books.get(symbol)
        if book is None:
            quote = self.fetch_ticker(symbol)
            return OrderBook(
                venue=self.venue, symbol=symbol, ts=quote.ts,
                bids=(BookLevel(price=quote.bid, quantity=quote.bid_size),) if quote.bid_size > 0 else (),
                asks=(BookLevel(price=quote.ask, quantity=quote.ask_size),) if quote.ask_size > 0 else (),
            )  # fmt: skip
        return book.model_copy(update={"bids": book.bids[:depth], "asks": book.asks[:depth]})

    # ------------------------------------------------------------------ orders

    def create_order(self, intent: OrderIntent) -> OrderRecord:
        existing = self._orders.get(intent.client_order_id)
        if existing is not None:
            return self._record(existing)
        instrument = self._instrument(intent.symbol)
        where = {"venue": self.venue, "operation": "create_order"}
        try:
            sized = instrument.check_order(intent.quantity, intent.limit_price)
        except ValueError as exc:
            raise OrderRejected(str(exc), **where) from exc
        if intent.post_only and self._marketable_price(intent) is not None:
            raise OrderRejected("post-only order would take liquidity", **where)
        self._check_funds(intent, instrument)
        order = Order(
            client_order_id=intent.client_order_id, venue=self.venue, symbol=intent.symbol, side=intent.side,
            quantity=sized.quantity, order_type=intent.order_type, limit_price=intent.limit_price,
            time_in_force=intent.time_in_force,
        ).accept(self._id("po"))  # fmt: skip
        self._orders[order.client_order_id] = order
        now = self._clock.now()
        self._updated[order.client_order_id] = now
        executions = walk_book(
            intent.side, order.quantity, self._levels(intent.symbol, intent.side), intent.limit_price
        )
        if intent.time_in_force is TimeInForce.FOK and sum((e.quantity for e in executions), _ZERO) < order.quantity:
            executions = []
        self._execute(self._orders[order.client_order_id], executions, now)
        order = self._orders[order.client_order_id]
        if intent.time_in_force in (TimeInForce.IOC, TimeInForce.FOK) and not order.is_terminal:
            order = order.cancel()
            self._orders[order.client_order_id] = order
        return self._record(order)

    def _levels(self, symbol: str, side: Side) -> Sequence[BookLevel]:
        """The liquidity an arriving order of ``side`` can take: the book, else the quote's touch."""
        book = self._books.get(symbol)
        if book is not None:
            return book.asks if side is Side.BUY else book.bids
        quote = self._quotes.get(symbol)
        if quote is None:
            return ()
        price, size = (quote.ask, quote.ask_size) if side is Side.BUY else (quote.bid, quote.bid_size)
        return (BookLevel(price=price, quantity=size),) if size > 0 else ()

    def _marketable_price(self, intent: OrderIntent) -> Decimal | None:
        quote = self._quotes.get(intent.symbol)
        if quote is None:
            return None
        touch = quote.ask if intent.side is Side.BUY else quote.bid
        limit = intent.limit_price
        crosses = limit is None or (touch <= limit if intent.side is Side.BUY else touch >= limit)
        return touch if crosses else None

    def _check_funds(self, intent: OrderIntent, instrument: Instrument) -> None:
        ctx = DECIMAL_CONTEXT
        if intent.side is Side.SELL:
            needed, currency = intent.quantity, instrument.base
        else:
            price = intent.limit_price or self._marketable_price(intent)
            if price is None:
                raise OrderRejected("no price to value a market buy", venue=self.venue, operation="create_order")
            notional = ctx.multiply(intent.quantity, price)
            _, taker_bps = self._config.fees.rates()
            fee = ctx.multiply(notional, ctx.divide(Decimal(repr(max(taker_bps, 0.0))), Decimal(10_000)))
            needed, currency = ctx.add(notional, fee), instrument.quote
        free = self._free(currency)
        if needed > free:
            raise InsufficientFunds(
                f"{currency}: needs {needed}, free {free}", venue=self.venue, operation="create_order"
            )

    def _execute(self, order: Order, executions: Sequence[Execution], at: datetime) -> None:
        instrument = self._markets[order.symbol]
        ctx = DECIMAL_CONTEXT
        for e in with_impact(executions, order.side, order.symbol, self._config.impact, instrument):
            fee = fee_for(e, self._config.fees)
            fill = Fill(
                venue=self.venue, venue_trade_id=self._id("pt"), client_order_id=order.client_order_id,
                symbol=order.symbol, side=order.side, quantity=e.quantity, price=e.price, occurred_at=at,
                fee=fee, fee_currency=instrument.quote, liquidity=e.liquidity,
            )  # fmt: skip
            order = order.add_fill(fill)
            self._fills.append(fill)
            sign = Decimal(order.side.sign)
            base, quote = instrument.base, instrument.quote
            self._balances[base] = ctx.add(self._balances.get(base, _ZERO), ctx.multiply(sign, e.quantity))
            cash = ctx.subtract(ctx.multiply(sign.copy_negate(), e.notional), fee)
            self._balances[quote] = ctx.add(self._balances.get(quote, _ZERO), cash)
        self._orders[order.client_order_id] = order
        if executions:
            self._updated[order.client_order_id] = at

    def _record(self, order: Order) -> OrderRecord:
        return OrderRecord.from_domain(order, updated_at=self._updated[order.client_order_id])

    def fetch_order_by_client_id(self, symbol: str, client_order_id: str) -> OrderRecord | None:
        order = self._orders.get(client_order_id)
        return None if order is None else self._record(order)

    def cancel_order(self, symbol: str, client_order_id: str) -> OrderRecord:
        order = self._orders.get(client_order_id)
        if order is None:
            raise OrderNotFound(f"no order {client_order_id}", venue=self.venue, operation="cancel_order")
        if not order.is_terminal:
            order = order.cancel()
            self._orders[client_order_id] = order
            self._updated[client_order_id] = self._clock.now()
        return self._record(order)

    def fetch_open_orders(self, symbol: str | None = None) -> Sequence[OrderRecord]:
        return [self._record(o) for o in self._orders.values() if not o.is_terminal and symbol in (None, o.symbol)]

    def fetch_fills(self, since: datetime, symbol: str | None = None) -> Sequence[Fill]:
        chosen = [f for f in self._fills if f.occurred_at >= since and symbol in (None, f.symbol)]
        return sorted(chosen, key=lambda f: (f.occurred_at, f.venue_trade_id))

    # ------------------------------------------------------------------ balances and positions

    def _held(self, currency: str) -> Decimal:
        ctx = DECIMAL_CONTEXT
        held = _ZERO
        for o in self._orders.values():
            if o.is_terminal:
                continue
            instrument = self._markets[o.symbol]
            if o.side is Side.SELL and instrument.base == currency:
                held = ctx.add(held, o.remaining_quantity)
            elif o.side is Side.BUY and instrument.quote == currency and o.order_type is OrderType.LIMIT:
                held = ctx.add(held, ctx.multiply(o.remaining_quantity, o.limit_price or _ZERO))
        return held

    def _free(self, currency: str) -> Decimal:
        return max(DECIMAL_CONTEXT.subtract(self._balances.get(currency, _ZERO), self._held(currency)), _ZERO)

    def fetch_balances(self) -> Mapping[str, Balance]:
        out: dict[str, Balance] = {}
        for currency, total in sorted(self._balances.items()):
            total = max(total, _ZERO)
            free = min(self._free(currency), total)
            out[currency] = Balance(
                venue=self.venue, currency=currency, free=free, used=DECIMAL_CONTEXT.subtract(total, free), total=total
            )
        return out

    def fetch_positions(self, symbols: Sequence[str] | None = None) -> Sequence[PositionRecord]:
        now = self._clock.now()
        wanted = sorted({f.symbol for f in self._fills} if symbols is None else set(symbols))
        records = []
        for symbol in wanted:
            fills = [f for f in self._fills if f.symbol == symbol]
            position = position_from_fills(fills, venue=self.venue, symbol=symbol)
            records.append(PositionRecord.from_domain(position, as_of=now))
        return records
