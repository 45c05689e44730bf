"""Plans, orders, the append-only order-event log, fills and the positions view."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from desk.domain import Fill, OrderState, OrderType, Side, position_from_fills
from desk.domain.errors import DuplicateFillConflict
from desk.events import new_event
from desk.schemas.trading import ExecutionPlan, FillRecord, OrderRecord, PlanSlice
from desk.store import PostgresStore, migrate
from desk.store.connection import LambdaConnection

T0 = datetime(2024, 3, 1, tzinfo=UTC)


@pytest.fixture
def store(database_url: str, pg_schema: str, pg_url: str) -> Iterator[PostgresStore]:
    migrate(database_url, pg_schema)
    s = PostgresStore(LambdaConnection(pg_url))
    yield s
    s.close()


def _fill(n: int, side: Side = Side.BUY, qty: str = "1", price: str = "100", **kw: object) -> Fill:
    values: dict[str, object] = {
        "venue": "binance", "venue_trade_id": f"t{n}", "client_order_id": "ldplan-0", "symbol": "BTC/USDT",
        "side": side, "quantity": Decimal(qty), "price": Decimal(price), "occurred_at": T0 + timedelta(seconds=n),
        "fee": Decimal("0.001"), "fee_currency": "BNB", **kw,
    }  # fmt: skip
    return Fill(**values)  # type: ignore[arg-type]


def _order(state: OrderState, filled: str = "0", at: int = 0) -> OrderRecord:
    return OrderRecord(
        client_order_id="ldplan-0", venue="binance", symbol="BTC/USDT", side=Side.BUY, order_type=OrderType.LIMIT,
        quantity=Decimal("2"), limit_price=Decimal("100.5"), state=state, filled_quantity=Decimal(filled),
        average_price=Decimal("100.25") if Decimal(filled) else None, updated_at=T0 + timedelta(seconds=at),
    )  # fmt: skip


def test_plans_are_saved_once_and_read_back_exactly(store: PostgresStore) -> None:
    # Given a two-slice plan
    plan = ExecutionPlan(
        plan_id="ldplan", signal_id="sig-1", venue="binance", symbol="BTC/USDT", side=Side.BUY,
        quantity=Decimal("0.30000001"), created_at=T0, schedule="twap", expected_cost_bps=3.5,
        slices=(
            PlanSlice(slice_no=0, quantity=Decimal("0.15"), not_before=T0, limit_price=Decimal("100.01")),
            PlanSlice(slice_no=1, quantity=Decimal("0.15000001"), not_before=T0 + timedelta(minutes=5),
                      limit_price=Decimal("100.02")),
        ),
    )  # fmt: skip
    # When saved twice
    # Then the second save reports the plan existed, and loading returns an equal plan
    assert (store.save_plan(plan), store.save_plan(plan)) == (True, False)
    assert store.load_plan("ldplan") == plan
    assert store.load_plan("missing") is None


def test_orders_only_move_forward(store: PostgresStore) -> None:
    # Given an accepted order
    store.upsert_order(_order(OrderState.ACCEPTED))
    # When it partially fills, then a late "new" arrives, then it fills, then a stale partial arrives
    store.upsert_order(_order(OrderState.PARTIALLY_FILLED, "1", at=1))
    store.upsert_order(_order(OrderState.NEW, at=2))
    assert store.open_orders("binance") == [_order(OrderState.PARTIALLY_FILLED, "1", at=1)]
    store.upsert_order(_order(OrderState.FILLED, "2", at=3))
    store.upsert_order(_order(OrderState.PARTIALLY_FILLED, "1", at=4))
    # Then the stored order is the filled one and it is no longer open
    assert store.load_order("ldplan-0") == _order(OrderState.FILLED, "2", at=3)
    assert store.open_orders() == []
    assert store.orders_for_plan("ldplan") == [_order(OrderState.FILLED, "2", at=3)]


def test_order_events_are_append_only(store: PostgresStore, pg_url: str) -> None:
    # Given an order event appended twice (a redelivery)
    data = FillRecord.from_domain(_fill(1))
    event = new_event("fill.recorded", data, occurred_at=T0, event_id="evt-1")
    assert (store.append_order_event(event), store.append_order_event(event)) == (True, False)
    assert store.order_events("ldplan-0") == [event]
    # When anyone tries to rewrite or erase the log
    # Then the database refuses UPDATE, DELETE and TRUNCATE
    for statement in (
        "UPDATE order_events SET type = 'x.y'",
        "DELETE FROM order_events",
        "TRUNCATE order_events",
    ):
        with psycopg.connect(pg_url) as conn, pytest.raises(psycopg.errors.RestrictViolation, match="append-only"):
            conn.execute(statement)
    assert store.order_events("ldplan-0") == [event]


def test_fills_are_unique_per_venue_trade_id(store: PostgresStore) -> None:
    # Given a recorded fill
    fill = _fill(1)
    assert store.record_fill(fill) is True
    # When the same fill arrives again, the same trade id on another venue, and a conflicting copy
    repeat = store.record_fill(fill)
    other_venue = store.record_fill(_fill(1, venue="coinbase"))
    # Then the repeat is a no-op, the other venue's fill is new, and the conflict needs a human
    assert (repeat, other_venue) == (False, True)
    with pytest.raises(DuplicateFillConflict):
        store.record_fill(_fill(1, qty="2"))
    assert store.load_fills(venue="binance") == [fill]
    assert len(store.load_fills(since=T0)) == 2
    assert store.load_fills(since=T0 + timedelta(seconds=2)) == []


def test_fills_for_orders_returns_exactly_those_orders_fills_oldest_first(store: PostgresStore) -> None:
    # Given fills of three orders on two venues, recorded out of time order
    mine = [_fill(3, client_order_id="ldplan-1"), _fill(1, client_order_id="ldplan-1", venue="coinbase")]
    other = [_fill(2, client_order_id="ldplan-2"), _fill(4)]
    for f in (*mine, *other):
        store.record_fill(f)
    # When one order's fills are read, Then only its own come back, oldest first, whatever the venue
    assert store.fills_for_orders(["ldplan-1"]) == sorted(mine, key=lambda f: f.occurred_at)
    assert {f.venue_trade_id for f in store.fills_for_orders(["ldplan-1", "ldplan-2"])} == {"t1", "t2", "t3"}
    assert store.fills_for_orders([]) == [] and store.fills_for_orders(["ldplan-9"]) == []


_fills = st.lists(
    st.tuples(
        st.sampled_from([Side.BUY, Side.SELL]),
        st.decimals(min_value=Decimal("0.001"), max_value=Decimal(50), places=3),
        st.decimals(min_value=Decimal("0.01"), max_value=Decimal(1000), places=2),
        st.integers(min_value=0, max_value=20),  # seconds: ties exercise the venue-trade-id tiebreak
    ),
    max_size=25,
)


@settings(max_examples=40, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(_fills)
def test_positions_view_equals_the_domain_fold_of_fills(
    store: PostgresStore, pg_url: str, spec: list[tuple[Side, Decimal, Decimal, int]]
) -> None:
    # Given random fills recorded in the ledger (in arbitrary order)
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("TRUNCATE fills")
    fills = [
        _fill(i, side, str(qty), str(price), occurred_at=T0 + timedelta(seconds=s), venue_trade_id=f"t{i:03d}")
        for i, (side, qty, price, s) in enumerate(spec)
    ]
    for f in fills:
        store.record_fill(f)
    # When positions are read from the view
    positions = store.positions(as_of=T0, venue="binance", symbol="BTC/USDT")
    # Then they match the domain's fold: quantity exactly, average and P&L far below a tick
    if not fills:
        assert positions == []
        return
    (pos,) = positions
    expected = position_from_fills(fills)
    assert pos.quantity == expected.quantity == sum((f.signed_quantity for f in fills), Decimal(0))
    assert abs(pos.average_price - expected.average_price) < Decimal("1e-30")
    assert abs(pos.realised_pnl - expected.realised_pnl) < Decimal("1e-25")
