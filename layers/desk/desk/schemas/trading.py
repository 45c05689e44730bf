"""Trading messages: order intents, execution plans, orders, fills, positions, balances, kill switch.

All prices and quantities are ``Decimal`` (venue boundary). Quantities are positive and direction is
``side``, except positions, whose ``quantity`` is signed (long > 0). ``OrderRecord`` / ``FillRecord``
/ ``PositionRecord`` are the wire forms of the domain's ``Order`` / ``Fill`` / ``Position``, with
``from_domain`` and ``to_domain`` converters.
"""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal
from typing import Annotated, Self

from pydantic import Field, model_validator

from desk.domain.errors import InvalidClientOrderId
from desk.domain.instruments import DECIMAL_CONTEXT, decimal_sum
from desk.domain.orders import (
    Fill,
    Liquidity,
    Order,
    OrderState,
    OrderType,
    Side,
    TimeInForce,
    client_order_id,
    parse_client_order_id,
)
from desk.domain.positions import Position
from desk.schemas.base import (
    DeskModel,
    Identifier,
    Money,
    NonNegativeDecimal,
    PositiveDecimal,
    Symbol,
    UtcDatetime,
)

__all__ = [
    "Balance",
    "ExecutionPlan",
    "FillRecord",
    "KillSwitchState",
    "OrderCompleted",
    "OrderIntent",
    "OrderRecord",
    "PlanSlice",
    "PositionRecord",
]

SliceNo = Annotated[int, Field(ge=0, le=999_999_999)]
PlanId = Annotated[str, Field(min_length=1, max_length=80, pattern=r"^[A-Za-z0-9_-]+$")]  # a Step Functions name


def _check_limit_price(order_type: OrderType, limit_price: Decimal | None) -> None:
    if (order_type is OrderType.LIMIT) != (limit_price is not None):
        raise ValueError("a limit order needs limit_price and a market order must not have one")


class OrderIntent(DeskModel):
    """One child order to send: what ``Venue.create_order`` receives. Already sized to the venue grid."""

    client_order_id: Identifier
    plan_id: PlanId
    slice_no: SliceNo
    venue: Identifier
    symbol: Symbol
    side: Side
    order_type: OrderType
    quantity: PositiveDecimal
    limit_price: PositiveDecimal | None = None
    time_in_force: TimeInForce = TimeInForce.GTC
    post_only: bool = False
    reduce_only: bool = False

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        _check_limit_price(self.order_type, self.limit_price)
        if parse_client_order_id(self.client_order_id) != (self.plan_id, self.slice_no):
            expected = f"{self.plan_id}-{self.slice_no}"
            raise InvalidClientOrderId("client_order_id", f"{self.client_order_id} is not {expected}")
        if self.post_only and self.order_type is not OrderType.LIMIT:
            raise ValueError("post_only needs a limit order")
        return self


class PlanSlice(DeskModel):
    """One slice of a plan: send ``quantity`` no earlier than ``not_before``."""

    slice_no: SliceNo
    quantity: PositiveDecimal
    not_before: UtcDatetime
    order_type: OrderType = OrderType.LIMIT
    limit_price: PositiveDecimal | None = None
    time_in_force: TimeInForce = TimeInForce.GTC

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        _check_limit_price(self.order_type, self.limit_price)
        return self


class ExecutionPlan(DeskModel):
    """Data of ``plan.created``: a parent order cut into slices (the Step Functions input).

    Slices are numbered 0..n-1 in time order and their quantities sum exactly to ``quantity``.
    ``expected_cost_bps`` is the pre-trade cost estimate (positive = cost) the plan was chosen on.
    ``strategy`` is who asked (a strategy key, or ``api:<caller>``): the gate's duplicate check keys on it.
    """

    plan_id: PlanId
    signal_id: Identifier | None = None
    strategy: Identifier | None = None
    venue: Identifier
    symbol: Symbol
    side: Side
    quantity: PositiveDecimal
    created_at: UtcDatetime
    schedule: Annotated[str, Field(min_length=1, max_length=32)]
    arrival_price: PositiveDecimal | None = None
    expected_cost_bps: float | None = None
    slices: Annotated[tuple[PlanSlice, ...], Field(min_length=1)]

    @model_validator(mode="after")
    def _slices_partition_the_order(self) -> Self:
        if [s.slice_no for s in self.slices] != list(range(len(self.slices))):
            raise ValueError("slices must be numbered 0..n-1 in order")
        if any(b.not_before < a.not_before for a, b in zip(self.slices, self.slices[1:], strict=False)):
            raise ValueError("slices must not go back in time")
        total = decimal_sum(s.quantity for s in self.slices)
        if total != self.quantity:
            raise ValueError(f"slice quantities sum to {total}, not the plan quantity {self.quantity}")
        return self

    def intents(self) -> tuple[OrderIntent, ...]:
        """One :class:`OrderIntent` per slice, with deterministic client order ids."""
        return tuple(
            OrderIntent(
                client_order_id=client_order_id(self.plan_id, s.slice_no),
                plan_id=self.plan_id,
                slice_no=s.slice_no,
                venue=self.venue,
                symbol=self.symbol,
                side=self.side,
                order_type=s.order_type,
                quantity=s.quantity,
                limit_price=s.limit_price,
                time_in_force=s.time_in_force,
            )
            for s in self.slices
        )


class FillRecord(DeskModel):
    """Data of ``fill.recorded`` and the wire form of :class:`desk.domain.Fill`."""

    venue: Identifier
    venue_trade_id: Identifier
    client_order_id: Identifier
    symbol: Symbol
    side: Side
    quantity: PositiveDecimal
    price: PositiveDecimal
    occurred_at: UtcDatetime
    fee: Money = Decimal(0)
    fee_currency: str | None = None
    liquidity: Liquidity | None = None
    adjustment: bool = False  # True when reconciliation recorded it from the venue (flagged fill)

    @classmethod
    def from_domain(cls, fill: Fill, *, adjustment: bool = False) -> FillRecord:
        return cls(
            venue=fill.venue,
            venue_trade_id=fill.venue_trade_id,
            client_order_id=fill.client_order_id,
            symbol=fill.symbol,
            side=fill.side,
            quantity=fill.quantity,
            price=fill.price,
            occurred_at=fill.occurred_at,
            fee=fill.fee,
            fee_currency=fill.fee_currency,
            liquidity=fill.liquidity,
            adjustment=adjustment,
        )

    def to_domain(self) -> Fill:
        return Fill(
            venue=self.venue,
            venue_trade_id=self.venue_trade_id,
            client_order_id=self.client_order_id,
            symbol=self.symbol,
            side=self.side,
            quantity=self.quantity,
            price=self.price,
            occurred_at=self.occurred_at,
            fee=self.fee,
            fee_currency=self.fee_currency,
            liquidity=self.liquidity,
        )


class OrderRecord(DeskModel):
    """The wire form of :class:`desk.domain.Order`, and what venues report about an order.

    ``filled_quantity`` is what the venue (or the ledger) says is filled; ``average_price`` is the
    quantity-weighted fill price. ``updated_at`` is when this view of the order was taken.
    """

    client_order_id: Identifier
    venue: Identifier
    symbol: Symbol
    side: Side
    order_type: OrderType
    quantity: PositiveDecimal
    limit_price: PositiveDecimal | None = None
    time_in_force: TimeInForce = TimeInForce.GTC
    state: OrderState
    venue_order_id: Identifier | None = None
    filled_quantity: NonNegativeDecimal = Decimal(0)
    average_price: PositiveDecimal | None = None
    reject_reason: str | None = None
    updated_at: UtcDatetime

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        _check_limit_price(self.order_type, self.limit_price)
        if self.filled_quantity > self.quantity:
            raise ValueError(f"filled {self.filled_quantity} exceeds quantity {self.quantity}")
        if (self.state is OrderState.FILLED) != (self.filled_quantity == self.quantity):
            raise ValueError(f"state {self.state} disagrees with {self.filled_quantity}/{self.quantity} filled")
        if (self.average_price is None) != (self.filled_quantity == 0):
            raise ValueError("average_price is set exactly when something is filled")
        return self

    @classmethod
    def from_domain(cls, order: Order, *, updated_at: UtcDatetime) -> Self:
        return cls(
            client_order_id=order.client_order_id,
            venue=order.venue,
            symbol=order.symbol,
            side=order.side,
            order_type=order.order_type,
            quantity=order.quantity,
            limit_price=order.limit_price,
            time_in_force=order.time_in_force,
            state=order.state,
            venue_order_id=order.venue_order_id,
            filled_quantity=order.filled_quantity,
            average_price=order.average_fill_price,
            reject_reason=order.reject_reason,
            updated_at=updated_at,
        )

    def to_domain(self, fills: Iterable[Fill], *, state: OrderState | None = None) -> Order:
        """The domain order, with this order's own fills (picked by client order id) and their sum.

        ``state`` overrides the stored state, e.g. to make it consistent with fills not yet folded in.
        """
        own = tuple(f for f in fills if f.client_order_id == self.client_order_id)
        return Order(
            client_order_id=self.client_order_id,
            venue=self.venue,
            symbol=self.symbol,
            side=self.side,
            quantity=self.quantity,
            order_type=self.order_type,
            limit_price=self.limit_price,
            time_in_force=self.time_in_force,
            state=self.state if state is None else state,
            venue_order_id=self.venue_order_id,
            filled_quantity=decimal_sum(f.quantity for f in own),
            fills=own,
        )


class OrderCompleted(OrderRecord):
    """Data of ``order.completed``: an order that reached a terminal state."""

    @model_validator(mode="after")
    def _terminal(self) -> Self:
        if not self.state.is_terminal:
            raise ValueError(f"order.completed needs a terminal state, got {self.state}")
        return self


class PositionRecord(DeskModel):
    """The wire form of :class:`desk.domain.Position`: signed ``quantity`` (long > 0)."""

    venue: Identifier
    symbol: Symbol
    quantity: Money
    average_price: NonNegativeDecimal
    realised_pnl: Money
    as_of: UtcDatetime

    @classmethod
    def from_domain(cls, position: Position, *, as_of: UtcDatetime) -> PositionRecord:
        return cls(
            venue=position.venue,
            symbol=position.symbol,
            quantity=position.quantity,
            average_price=position.average_price,
            realised_pnl=position.realised_pnl,
            as_of=as_of,
        )


class Balance(DeskModel):
    """One currency's balance on a venue: ``total = free + used``."""

    venue: Identifier
    currency: Annotated[str, Field(min_length=1, max_length=16)]
    free: NonNegativeDecimal
    used: NonNegativeDecimal
    total: NonNegativeDecimal

    @model_validator(mode="after")
    def _adds_up(self) -> Self:
        if DECIMAL_CONTEXT.add(self.free, self.used) != self.total:
            raise ValueError(f"{self.currency}: free {self.free} + used {self.used} != total {self.total}")
        return self


class KillSwitchState(DeskModel):
    """The kill-switch latch: while ``latched``, pre-trade controls refuse every new order."""

    latched: bool
    reason: str | None = None
    changed_at: UtcDatetime | None = None
    changed_by: str | None = None

    @model_validator(mode="after")
    def _reason_when_latched(self) -> Self:
        if self.latched and not self.reason:
            raise ValueError("a latched kill switch needs a reason")
        return self
