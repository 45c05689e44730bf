"""desk.domain.orders: the lifecycle state machine, fills, and client order ids."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from desk.domain import (
    Fill,
    InvalidClientOrderId,
    InvalidFill,
    InvalidOrder,
    InvalidTransition,
    Order,
    OrderState,
    OrderType,
    Overfill,
    Side,
    client_order_id,
    parse_client_order_id,
    plan_id_from,
)
from desk.domain.errors import DuplicateFillConflict
from desk.domain.orders import (
    ALPACA_CLIENT_IDS,
    BINANCE_CLIENT_IDS,
    Accepted,
    Cancelled,
    CancelRequested,
    Expired,
    FillReceived,
    OrderEvent,
    Rejected,
)

T0 = datetime(2024, 3, 1, 12, 0, tzinfo=UTC)
COID = client_order_id(plan_id_from("signal-1"), 0)


def _order(quantity: str = "10") -> Order:
    return Order(COID, "binance", "BTC/USDT", Side.BUY, Decimal(quantity), OrderType.LIMIT, Decimal("100"))


def _fill(trade_id: str, quantity: str, price: str = "100", **over: object) -> Fill:
    fields: dict[str, object] = {
        "venue": "binance",
        "venue_trade_id": trade_id,
        "client_order_id": COID,
        "symbol": "BTC/USDT",
        "side": Side.BUY,
        "quantity": Decimal(quantity),
        "price": Decimal(price),
        "occurred_at": T0,
    } | over
    return Fill(**fields)  # type: ignore[arg-type]


# ---------------------------------------------------------------- examples


def test_a_limit_order_fills_in_two_parts() -> None:
    # Given a new order for 10
    order = _order()
    # When it is accepted and filled 4 then 6
    order = order.accept("v-1")
    assert order.state is OrderState.ACCEPTED and order.venue_order_id == "v-1"
    order = order.add_fill(_fill("t1", "4", "99"))
    assert order.state is OrderState.PARTIALLY_FILLED and order.remaining_quantity == 6
    order = order.add_fill(_fill("t2", "6", "101"))
    # Then it is filled, at the quantity-weighted average price
    assert order.state is OrderState.FILLED and order.is_terminal
    assert order.filled_quantity == 10 and order.average_fill_price == Decimal("100.2")


def test_a_fill_while_cancel_is_pending_keeps_pending_until_a_terminal_event() -> None:
    order = _order().accept().request_cancel()
    order = order.add_fill(_fill("t1", "3"))
    assert order.state is OrderState.PENDING_CANCEL and order.filled_quantity == 3
    assert order.cancel().state is OrderState.CANCELLED


def test_terminal_states_are_final() -> None:
    # Given a cancelled order
    cancelled = _order().accept().cancel()
    # When anything but a repeat of the cancel arrives, Then InvalidTransition, naming the state
    with pytest.raises(InvalidTransition, match="cancelled"):
        cancelled.add_fill(_fill("t1", "1"))
    with pytest.raises(InvalidTransition):
        cancelled.expire()
    with pytest.raises(InvalidTransition):
        cancelled.request_cancel()
    # And the repeat is an idempotent no-op
    assert cancelled.cancel() is cancelled


def test_a_rejection_after_acceptance_is_illegal_and_a_late_ack_is_harmless() -> None:
    with pytest.raises(InvalidTransition):
        _order().accept().reject("insufficient balance")
    with pytest.raises(InvalidTransition):
        _order().reject("bad").accept()
    # A REST ack that lands after the WebSocket fill changes nothing but records the venue id
    filled = _order().add_fill(_fill("t1", "10"))
    assert filled.accept("v-9").state is OrderState.FILLED and filled.accept("v-9").venue_order_id == "v-9"


def test_overfills_conflicting_duplicates_and_foreign_fills_are_refused() -> None:
    order = _order().add_fill(_fill("t1", "6"))
    with pytest.raises(Overfill):
        order.add_fill(_fill("t2", "5"))
    with pytest.raises(DuplicateFillConflict):
        order.add_fill(_fill("t1", "5"))
    with pytest.raises(InvalidFill):
        order.add_fill(_fill("t3", "1", client_order_id="someone-else-1"))
    with pytest.raises(InvalidFill):
        order.add_fill(_fill("t3", "1", side=Side.SELL))
    # And an identical duplicate is ignored
    assert order.add_fill(_fill("t1", "6")) is order


def test_orders_rebuilt_from_storage_are_checked() -> None:
    with pytest.raises(InvalidOrder):
        Order(COID, "binance", "BTC/USDT", Side.BUY, Decimal(1), OrderType.LIMIT, None)
    with pytest.raises(InvalidOrder):
        Order(COID, "binance", "BTC/USDT", Side.BUY, Decimal(1), OrderType.MARKET, Decimal(1))
    with pytest.raises(InvalidFill):
        Order(COID, "binance", "BTC/USDT", Side.BUY, Decimal(1), OrderType.MARKET, state=OrderState.FILLED)
    with pytest.raises(InvalidFill):
        Order(COID, "binance", "BTC/USDT", Side.BUY, Decimal(1), OrderType.MARKET, filled_quantity=Decimal(1))


def test_fills_require_aware_times_and_positive_amounts() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        _fill("t1", "1", occurred_at=datetime(2024, 1, 1))
    with pytest.raises(ValueError, match="quantity"):
        _fill("t1", "-1")


# ---------------------------------------------------------------- the property


# Fill content is a function of the trade id, so a repeated id is an exact duplicate.
_TRADE_QTY = {"t0": "1", "t1": "2", "t2": "3", "t3": "4", "t4": "2.5", "t5": "10"}
_events = st.one_of(
    st.builds(Accepted, st.sampled_from([None, "v-1"])),
    st.builds(Rejected, st.just("rejected by venue")),
    st.builds(CancelRequested),
    st.builds(Cancelled),
    st.builds(Expired),
    st.sampled_from(sorted(_TRADE_QTY)).map(lambda t: FillReceived(_fill(t, _TRADE_QTY[t]))),
)
_LIVE = {OrderState.NEW, OrderState.ACCEPTED, OrderState.PARTIALLY_FILLED, OrderState.PENDING_CANCEL}


def _expected(order: Order, event: OrderEvent) -> OrderState | type[Exception]:
    """An oracle written from the lifecycle table, independently of Order.apply."""
    s = order.state
    if isinstance(event, FillReceived):
        if any(f.key == event.fill.key for f in order.fills):
            return s
        if s not in _LIVE:
            return InvalidTransition
        filled = order.filled_quantity + event.fill.quantity
        if filled > order.quantity:
            return Overfill
        if filled == order.quantity:
            return OrderState.FILLED
        return OrderState.PENDING_CANCEL if s is OrderState.PENDING_CANCEL else OrderState.PARTIALLY_FILLED
    if isinstance(event, Accepted):
        return InvalidTransition if s is OrderState.REJECTED else (OrderState.ACCEPTED if s is OrderState.NEW else s)
    if isinstance(event, Rejected):
        return OrderState.REJECTED if s in (OrderState.NEW, OrderState.REJECTED) else InvalidTransition
    if isinstance(event, CancelRequested):
        return OrderState.PENDING_CANCEL if s in _LIVE else InvalidTransition
    target = OrderState.CANCELLED if isinstance(event, Cancelled) else OrderState.EXPIRED
    return target if s in _LIVE or s is target else InvalidTransition


@given(events=st.lists(_events, max_size=25))
def test_random_event_sequences_only_move_forward(events: list[OrderEvent]) -> None:
    # Given a new order and a random sequence of venue events (with duplicates and contradictions)
    order = _order()
    seen: set[str] = set()
    for event in events:
        expected = _expected(order, event)
        # When each event is applied
        if isinstance(expected, type):
            with pytest.raises(expected):
                order.apply(event)
            continue  # Then an illegal event raises its typed error and changes nothing
        before = order
        order = order.apply(event)
        # Then the state is the table's, and never moves backwards; terminal states never change
        assert order.state is expected
        assert order.state.rank >= before.state.rank
        assert not before.is_terminal or order.state is before.state
        # And the filled quantity is monotone, equals the sum of the fills, and fits the order
        assert order.filled_quantity >= before.filled_quantity
        assert order.filled_quantity == sum((f.quantity for f in order.fills), Decimal(0)) <= order.quantity
        # And fills are append-only and unique; a duplicate leaves the order exactly as it was
        assert order.fills[: len(before.fills)] == before.fills
        assert len({f.key for f in order.fills}) == len(order.fills)
        if isinstance(event, FillReceived):
            if event.fill.venue_trade_id in seen:
                assert order == before
            seen.add(event.fill.venue_trade_id)


# ---------------------------------------------------------------- client order ids


def test_client_order_ids_are_plan_id_dash_slice_and_fit_binance() -> None:
    # Given a plan id derived from the signal that caused it
    plan = plan_id_from("signal-7f3a", "momentum")
    # When slice ids are built
    first, last = client_order_id(plan, 0), client_order_id(plan, 999_999_999)
    # Then they read "<plan>-<slice>", are deterministic, and fit Binance's 36 chars and charset
    assert first == f"{plan}-0" and plan == plan_id_from("signal-7f3a", "momentum")
    assert len(plan) == 26 and len(last) == 36
    assert re.fullmatch(r"[.A-Z:/a-z0-9_-]{1,36}", last)
    assert parse_client_order_id(last) == (plan, 999_999_999)


def test_plan_ids_separate_their_parts() -> None:
    assert plan_id_from("ab", "c") != plan_id_from("a", "bc")
    with pytest.raises(ValueError):
        plan_id_from()


def test_venue_limits_are_enforced() -> None:
    # Given a plan id that is fine on Alpaca but too long for Binance
    long_plan = "p" * 40
    # When ids are built, Then each venue's rule decides
    assert client_order_id(long_plan, 1, ALPACA_CLIENT_IDS) == f"{long_plan}-1"
    with pytest.raises(InvalidClientOrderId):
        client_order_id(long_plan, 1, BINANCE_CLIENT_IDS)
    with pytest.raises(InvalidClientOrderId):
        client_order_id("plan with spaces", 1)
    with pytest.raises(InvalidClientOrderId):
        client_order_id("p" * 200, 1, ALPACA_CLIENT_IDS)
    for bad_slice in (-1, 10**9, True):
        with pytest.raises(InvalidClientOrderId):
            client_order_id("plan", bad_slice)  # type: ignore[arg-type]


@pytest.mark.parametrize("bad", ["nodash", "plan-", "-3", "plan-01", "plan-x", "plan-1234567890"])
def test_malformed_client_order_ids_do_not_parse(bad: str) -> None:
    with pytest.raises(InvalidClientOrderId):
        parse_client_order_id(bad)


@given(seed=st.text(min_size=1, max_size=50), slice_no=st.integers(0, 999_999_999))
def test_client_order_ids_round_trip(seed: str, slice_no: int) -> None:
    plan = plan_id_from(seed)
    assert parse_client_order_id(client_order_id(plan, slice_no)) == (plan, slice_no)


def test_fill_times_may_differ_in_zone_but_compare_as_instants() -> None:
    # A fill stamped in another zone is the same instant; equality of fills is by value
    other = _fill("t1", "1", occurred_at=T0.astimezone(timezone(timedelta(hours=2))))
    assert other == _fill("t1", "1")
