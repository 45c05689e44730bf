"""Orders: the lifecycle state machine and fills.

Lifecycle
---------
::

    new ──▶ accepted ──▶ partially_filled ──▶ filled
     │  ╲       │   ╲            │       ╲
     │   ╲      ▼    ╲           ▼        ╲──▶ cancelled / expired
     │    ╲─▶ pending_cancel ─────────────────▶ filled / cancelled / expired
     └──▶ rejected

Any live state (new, accepted, partially_filled, pending_cancel) may end in filled, cancelled or
expired; only new may be rejected (a fill before the ack is accepted: the venue clearly has the order).
States are ranked (new < accepted < partially_filled < pending_cancel < terminal) and no event moves
an order to a lower rank. ``filled``, ``cancelled``, ``rejected`` and ``expired`` are terminal.
``pending_cancel`` latches "we asked the venue to cancel": the order is still working, fills still
apply, and only a terminal event leaves it (a refused cancel is followed by the fill that caused it).

Events are applied with :meth:`Order.apply`; each returns a new :class:`Order` (orders are immutable
values, so a use case can replay the append-only order-event log). Idempotency under at-least-once
delivery: repeating the event that produced the current state is a no-op, a duplicate fill (same
venue and venue trade id, same content) is ignored, and a late acknowledgement after a later event
(the fill arrived on the WebSocket before the REST ack) changes nothing. Anything contradictory
raises :class:`InvalidTransition`, :class:`Overfill` or :class:`DuplicateFillConflict`.

Client order ids (:func:`client_order_id`, :func:`plan_id_from` and the venues' rules) live in
:mod:`desk.domain.ids` and are re-exported here.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime
from decimal import Decimal
from enum import StrEnum

from desk.domain.errors import (
    DuplicateFillConflict,
    InvalidFill,
    InvalidOrder,
    InvalidTransition,
    Overfill,
)
from desk.domain.ids import (
    ALPACA_CLIENT_IDS,
    BINANCE_CLIENT_IDS,
    PORTABLE_CLIENT_IDS,
    ClientIdRules,
    client_order_id,
    parse_client_order_id,
    plan_id_from,
)
from desk.domain.instruments import DECIMAL_CONTEXT, as_decimal, decimal_sum

__all__ = [
    "ALPACA_CLIENT_IDS",
    "BINANCE_CLIENT_IDS",
    "PORTABLE_CLIENT_IDS",
    "Accepted",
    "CancelRequested",
    "Cancelled",
    "ClientIdRules",
    "Expired",
    "Fill",
    "FillReceived",
    "Liquidity",
    "Order",
    "OrderEvent",
    "OrderState",
    "OrderType",
    "Rejected",
    "Side",
    "TimeInForce",
    "client_order_id",
    "parse_client_order_id",
    "plan_id_from",
    "require_aware",
]


class Side(StrEnum):
    """Order side; ``sign`` is +1 for buy, -1 for sell (positions are signed the same way)."""

    BUY = "buy"
    SELL = "sell"

    @property
    def sign(self) -> int:
        return 1 if self is Side.BUY else -1


class OrderType(StrEnum):
    MARKET = "market"
    LIMIT = "limit"


class TimeInForce(StrEnum):
    GTC = "gtc"
    IOC = "ioc"
    FOK = "fok"
    DAY = "day"


class Liquidity(StrEnum):
    MAKER = "maker"
    TAKER = "taker"


class OrderState(StrEnum):
    NEW = "new"
    ACCEPTED = "accepted"
    PARTIALLY_FILLED = "partially_filled"
    PENDING_CANCEL = "pending_cancel"
    FILLED = "filled"
    CANCELLED = "cancelled"
    REJECTED = "rejected"
    EXPIRED = "expired"

    @property
    def is_terminal(self) -> bool:
        return self in _TERMINAL

    @property
    def rank(self) -> int:
        """Progress order: an order's rank never decreases (all terminal states share the top rank)."""
        return _RANK[self]


_TERMINAL = frozenset({OrderState.FILLED, OrderState.CANCELLED, OrderState.REJECTED, OrderState.EXPIRED})
_LIVE = frozenset({OrderState.NEW, OrderState.ACCEPTED, OrderState.PARTIALLY_FILLED, OrderState.PENDING_CANCEL})
_RANK = {
    OrderState.NEW: 0,
    OrderState.ACCEPTED: 1,
    OrderState.PARTIALLY_FILLED: 2,
    OrderState.PENDING_CANCEL: 3,
} | dict.fromkeys(_TERMINAL, 4)


def require_aware(value: datetime, field_name: str) -> datetime:
    """Reject naive datetimes: a naive timestamp is ambiguous across Lambda, Postgres and venues."""
    if not isinstance(value, datetime) or value.utcoffset() is None:
        raise ValueError(f"{field_name} must be a timezone-aware datetime, got {value!r}")
    return value


@dataclass(frozen=True, slots=True)
class Fill:
    """One execution reported by a venue. Unique per ``(venue, venue_trade_id)``.

    ``quantity`` and ``price`` are positive; direction comes from ``side``. ``fee`` is in
    ``fee_currency`` and positive when paid (negative for a rebate).
    """

    venue: str
    venue_trade_id: str
    client_order_id: str
    symbol: str
    side: Side
    quantity: Decimal
    price: Decimal
    occurred_at: datetime
    fee: Decimal = Decimal(0)
    fee_currency: str | None = None
    liquidity: Liquidity | None = None

    def __post_init__(self) -> None:
        for name in ("venue", "venue_trade_id", "client_order_id", "symbol"):
            if not getattr(self, name):
                raise InvalidFill(f"Fill.{name} must not be empty")
        object.__setattr__(self, "side", Side(self.side))
        object.__setattr__(self, "quantity", as_decimal(self.quantity, "quantity", allow_zero=False))
        object.__setattr__(self, "price", as_decimal(self.price, "price", allow_zero=False))
        object.__setattr__(self, "fee", as_decimal(self.fee, "fee", allow_negative=True))
        if self.liquidity is not None:
            object.__setattr__(self, "liquidity", Liquidity(self.liquidity))
        require_aware(self.occurred_at, "occurred_at")

    @property
    def key(self) -> tuple[str, str]:
        return (self.venue, self.venue_trade_id)

    @property
    def signed_quantity(self) -> Decimal:
        return self.quantity if self.side is Side.BUY else self.quantity.copy_negate()

    @property
    def notional(self) -> Decimal:
        return DECIMAL_CONTEXT.multiply(self.quantity, self.price)


@dataclass(frozen=True, slots=True)
class Accepted:
    venue_order_id: str | None = None


@dataclass(frozen=True, slots=True)
class Rejected:
    reason: str


@dataclass(frozen=True, slots=True)
class FillReceived:
    fill: Fill


@dataclass(frozen=True, slots=True)
class CancelRequested:
    pass


@dataclass(frozen=True, slots=True)
class Cancelled:
    pass


@dataclass(frozen=True, slots=True)
class Expired:
    pass


OrderEvent = Accepted | Rejected | FillReceived | CancelRequested | Cancelled | Expired


@dataclass(frozen=True, slots=True)
class Order:
    """A child order on one venue, as an immutable value; see the module docstring for the lifecycle.

    ``filled_quantity`` always equals the sum of ``fills`` and never exceeds ``quantity``; both are
    checked on construction, so an order rebuilt from storage is validated too.
    """

    client_order_id: str
    venue: str
    symbol: str
    side: Side
    quantity: Decimal
    order_type: OrderType = OrderType.LIMIT
    limit_price: Decimal | None = None
    time_in_force: TimeInForce = TimeInForce.GTC
    state: OrderState = OrderState.NEW
    venue_order_id: str | None = None
    filled_quantity: Decimal = Decimal(0)
    fills: tuple[Fill, ...] = field(default=())
    reject_reason: str | None = None

    def __post_init__(self) -> None:
        if not self.client_order_id or not self.venue or not self.symbol:
            raise InvalidOrder("identity", "an order needs a client order id, a venue and a symbol")
        for name, enum in (("side", Side), ("order_type", OrderType), ("time_in_force", TimeInForce)):
            object.__setattr__(self, name, enum(getattr(self, name)))
        object.__setattr__(self, "state", OrderState(self.state))
        object.__setattr__(self, "quantity", as_decimal(self.quantity, "quantity", allow_zero=False))
        if self.order_type is OrderType.LIMIT:
            if self.limit_price is None:
                raise InvalidOrder("limit_price", f"limit order {self.client_order_id} needs a limit price")
            object.__setattr__(self, "limit_price", as_decimal(self.limit_price, "limit_price", allow_zero=False))
        elif self.limit_price is not None:
            raise InvalidOrder("limit_price", f"market order {self.client_order_id} must not carry a limit price")
        object.__setattr__(self, "fills", tuple(self.fills))
        filled = as_decimal(self.filled_quantity, "filled_quantity")
        object.__setattr__(self, "filled_quantity", filled)
        if filled != decimal_sum(f.quantity for f in self.fills):
            raise InvalidFill(f"order {self.client_order_id}: filled_quantity {filled} != sum of fills")
        if filled > self.quantity:
            raise Overfill(f"order {self.client_order_id}: filled {filled} > quantity {self.quantity}")
        if (self.state is OrderState.FILLED) != (filled == self.quantity):
            raise InvalidFill(f"order {self.client_order_id}: state {self.state} with {filled}/{self.quantity} filled")
        if self.state in (OrderState.NEW, OrderState.ACCEPTED) and filled:
            raise InvalidFill(f"order {self.client_order_id}: state {self.state} cannot have fills")
        if self.state is OrderState.PARTIALLY_FILLED and not filled:
            raise InvalidFill(f"order {self.client_order_id}: partially filled without fills")

    @property
    def is_terminal(self) -> bool:
        return self.state.is_terminal

    @property
    def remaining_quantity(self) -> Decimal:
        return DECIMAL_CONTEXT.subtract(self.quantity, self.filled_quantity)

    @property
    def average_fill_price(self) -> Decimal | None:
        """Quantity-weighted average fill price (``None`` before the first fill)."""
        if not self.fills:
            return None
        notional = decimal_sum(f.notional for f in self.fills)
        return DECIMAL_CONTEXT.divide(notional, self.filled_quantity)

    def apply(self, event: OrderEvent) -> Order:
        """Return the order after ``event``; raise :class:`InvalidTransition` if the event is not allowed."""
        state = self.state
        if isinstance(event, FillReceived):
            return self._fill(event.fill)
        if isinstance(event, Accepted):
            if state is OrderState.NEW:
                return replace(self, state=OrderState.ACCEPTED, venue_order_id=event.venue_order_id)
            if state is OrderState.REJECTED:
                raise InvalidTransition(self.client_order_id, state, "accepted")
            # A late ack: a later event already proved the venue has the order. Keep what we know.
            return replace(self, venue_order_id=self.venue_order_id or event.venue_order_id)
        if isinstance(event, Rejected):
            if state is OrderState.NEW:
                return replace(self, state=OrderState.REJECTED, reject_reason=event.reason)
            return self._same_or_raise(OrderState.REJECTED, "rejected")
        if isinstance(event, CancelRequested):
            if state in _LIVE:
                return replace(self, state=OrderState.PENDING_CANCEL)
            raise InvalidTransition(self.client_order_id, state, "cancel_requested")
        target = OrderState.CANCELLED if isinstance(event, Cancelled) else OrderState.EXPIRED
        if state in _LIVE:
            return replace(self, state=target)
        return self._same_or_raise(target, target.value)

    def _same_or_raise(self, target: OrderState, name: str) -> Order:
        if self.state is target:
            return self
        raise InvalidTransition(self.client_order_id, self.state, name)

    def _fill(self, fill: Fill) -> Order:
        if (fill.client_order_id, fill.venue, fill.symbol, fill.side) != (
            self.client_order_id,
            self.venue,
            self.symbol,
            self.side,
        ):
            raise InvalidFill(f"fill {fill.key} does not belong to order {self.client_order_id}")
        for existing in self.fills:
            if existing.key == fill.key:
                if existing == fill:
                    return self
                raise DuplicateFillConflict(f"fill {fill.key} differs from the one already recorded")
        if self.state.is_terminal:
            raise InvalidTransition(self.client_order_id, self.state, "fill")
        filled = DECIMAL_CONTEXT.add(self.filled_quantity, fill.quantity)
        if filled > self.quantity:
            raise Overfill(f"order {self.client_order_id}: fill {fill.key} takes {filled} past {self.quantity}")
        if filled == self.quantity:
            state = OrderState.FILLED
        elif self.state is OrderState.PENDING_CANCEL:
            state = OrderState.PENDING_CANCEL
        else:
            state = OrderState.PARTIALLY_FILLED
        return replace(self, state=state, filled_quantity=filled, fills=self.fills + (fill,))

    # Named shorthands for the events, for readable use cases.
    def accept(self, venue_order_id: str | None = None) -> Order:
        return self.apply(Accepted(venue_order_id))

    def reject(self, reason: str) -> Order:
        return self.apply(Rejected(reason))

    def add_fill(self, fill: Fill) -> Order:
        return self.apply(FillReceived(fill))

    def request_cancel(self) -> Order:
        return self.apply(CancelRequested())

    def cancel(self) -> Order:
        return self.apply(Cancelled())

    def expire(self) -> Order:
        return self.apply(Expired())
