"""The order-placement ASL executed by moto, its tasks in process, against the fake Binance via the real ccxt.

Faults are injected at the venue (timeouts after acceptance, drops, 429, 5xx, partial fills, rejects,
an outage of the status endpoint mid-plan). After every run: no client order id has two venue orders,
no plan sent more than it intended, every execution is final, no venue order is left working, and the
fills in PostgreSQL are exactly the fake venue's ground-truth fills for the desk's orders.
"""

from __future__ import annotations

import random
from collections import Counter
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from desk.domain.orders import OrderState, OrderType, Side, client_order_id, plan_id_from
from desk.local.fakes import Fault
from desk.local.fakes.binance import ORDER_ROUTE
from desk.schemas.trading import ExecutionPlan, OrderRecord, PlanSlice
from functions.order_tasks import handler as order_tasks
from tests.statemachines.conftest import SYMBOL, TERMINAL, VENUE, Desk

BID, ASK, TICK = Decimal("8035.87"), Decimal("8035.89"), Decimal("0.01")
GET_ORDER = "GET /api/v3/order"


def make_plan(
    tag: str, slices: list[tuple[Decimal, OrderType, Decimal | None]], side: Side = Side.BUY
) -> ExecutionPlan:
    now = datetime.now(UTC)
    plan_id = plan_id_from(tag, now.isoformat())
    return ExecutionPlan(
        plan_id=plan_id, venue=VENUE, symbol=SYMBOL, side=side, quantity=sum(q for q, _, _ in slices),
        created_at=now, schedule="twap", arrival_price=(BID + ASK) / 2,
        slices=tuple(PlanSlice(slice_no=i, quantity=q, not_before=now, order_type=t, limit_price=p)
                     for i, (q, t, p) in enumerate(slices)),
    )  # fmt: skip


def ledger_orders(desk: Desk, plan_id: str) -> list[Any]:
    with desk.fake.ledger.lock:
        return [o for o in desk.fake.ledger.orders if o.client_order_id.startswith(plan_id + "-")]


def posts(desk: Desk, cid: str) -> int:
    return sum(
        1 for m, p, params in desk.fake.requests if f"{m} {p}" == ORDER_ROUTE and params.get("newClientOrderId") == cid
    )


def assert_ledger_matches_venue(desk: Desk, plans: list[ExecutionPlan]) -> None:
    """Ground truth: the venue's orders and fills for these plans, against the store."""
    ids = {p.plan_id for p in plans}
    with desk.fake.ledger.lock:
        ours = {o.order_id: o for o in desk.fake.ledger.orders if o.client_order_id.rpartition("-")[0] in ids}
        truth = sorted((str(f.trade_id), f.qty, f.price) for f in desk.fake.ledger.fills if f.order_id in ours)
    counts = Counter(o.client_order_id for o in ours.values())
    assert [cid for cid, n in counts.items() if n > 1] == []  # zero duplicate orders
    assert [o.client_order_id for o in ours.values() if o.is_open] == []  # nothing left working
    for plan in plans:
        sent = [o for o in ours.values() if o.client_order_id.rpartition("-")[0] == plan.plan_id]
        assert len(sent) <= len(plan.slices) and sum(o.quantity for o in sent) <= plan.quantity
    recorded = sorted(
        (f.venue_trade_id, f.quantity, f.price)
        for f in desk.store.load_fills(venue=VENUE)
        if f.client_order_id.rpartition("-")[0] in ids
    )
    assert recorded == truth  # zero lost (or invented) fills
    for order in ours.values():
        row = desk.store.load_order(order.client_order_id)
        assert row is not None and row.state.is_terminal and row.filled_quantity == order.executed


def test_a_marketable_plan_fills_every_slice_and_reports_its_shortfall(desk: Desk) -> None:
    # Given a two-slice buy whose limits cross the ask
    plan = make_plan("fills", [(Decimal("0.002"), OrderType.LIMIT, ASK), (Decimal("0.003"), OrderType.LIMIT, ASK)])
    # When its execution runs
    done = desk.run(plan)
    # Then it succeeds with everything filled, the shortfall priced, and the ledger equal to the venue
    assert done["status"] == "SUCCEEDED"
    summary = __import__("json").loads(done["output"])
    assert (summary["filled_quantity"], summary["orders"], summary["fills"]) == ("0.005", 2, 2)
    assert summary["shortfall_bps"] > 0  # bought at the ask against an arrival at the mid
    assert_ledger_matches_venue(desk, [plan])
    events = [e.type for e in desk.store.order_events(client_order_id(plan.plan_id, 0))]
    assert "fill.recorded" in events and "order.completed" in events


def test_a_timeout_after_acceptance_is_looked_up_never_resent(desk: Desk) -> None:
    # Given a venue that accepts the first order and then never answers
    desk.fake.faults.queue(ORDER_ROUTE, Fault.TIMEOUT_AFTER_ACCEPT)
    plan = make_plan("timeout", [(Decimal("0.002"), OrderType.LIMIT, ASK)])
    # When the plan runs
    done = desk.run(plan)
    # Then the order was sent once, found by its client order id, and filled
    assert done["status"] == "SUCCEEDED"
    assert posts(desk, client_order_id(plan.plan_id, 0)) == 1
    assert_ledger_matches_venue(desk, [plan])


def test_429_and_5xx_are_retried_by_the_asl_with_jittered_backoff(desk: Desk) -> None:
    # Given a venue that refuses with 429, then fails with 503, then accepts
    desk.fake.faults.queue(ORDER_ROUTE, Fault.RATE_LIMIT, Fault.SERVER_ERROR)
    plan = make_plan("retry", [(Decimal("0.002"), OrderType.LIMIT, ASK)])
    # When the plan runs
    done = desk.run(plan)
    # Then Step Functions retried (asking for jittered, capped waits) and one order exists
    assert done["status"] == "SUCCEEDED"
    assert len(desk.retry_sleeps) >= 2 and all(0 <= s <= 30 for s in desk.retry_sleeps)
    assert posts(desk, client_order_id(plan.plan_id, 0)) == 3
    assert len(ledger_orders(desk, plan.plan_id)) == 1
    assert_ledger_matches_venue(desk, [plan])


def test_a_resting_slice_is_cancelled_at_its_deadline(desk: Desk) -> None:
    # Given a buy limit below the bid (it rests and never fills)
    plan = make_plan("rest", [(Decimal("0.002"), OrderType.LIMIT, BID - 10 * TICK)])
    # When the plan runs
    done = desk.run(plan)
    # Then the remainder was cancelled after the slice's polls and the plan finished with nothing filled
    assert done["status"] == "SUCCEEDED"
    [order] = ledger_orders(desk, plan.plan_id)
    assert order.status == "CANCELED"
    row = desk.store.load_order(order.client_order_id)
    assert row is not None and row.state is OrderState.CANCELLED
    assert_ledger_matches_venue(desk, [plan])


def test_a_venue_rejection_ends_its_slice_not_the_plan(desk: Desk) -> None:
    desk.fake.faults.queue(ORDER_ROUTE, Fault.REJECT_FILTER)
    plan = make_plan("reject", [(Decimal("0.002"), OrderType.LIMIT, ASK), (Decimal("0.002"), OrderType.LIMIT, ASK)])
    done = desk.run(plan)
    assert done["status"] == "SUCCEEDED"
    first = desk.store.load_order(client_order_id(plan.plan_id, 0))
    assert first is not None and first.state is OrderState.REJECTED and "OrderRejected" in (first.reject_reason or "")
    assert_ledger_matches_venue(desk, [plan])


def test_the_gate_refuses_an_oversized_plan_and_the_execution_fails_by_name(desk: Desk) -> None:
    # Given a plan far above the notional cap
    plan = make_plan("huge", [(Decimal(500), OrderType.LIMIT, ASK)])
    # When it runs
    done = desk.run(plan)
    # Then it fails as PreTradeRejected, nothing reached the venue, and the reason is in the order events
    assert (done["status"], done.get("error")) == ("FAILED", "PreTradeRejected")
    assert ledger_orders(desk, plan.plan_id) == []
    [event] = desk.store.order_events(client_order_id(plan.plan_id, 0))
    assert event.type == "order.completed" and "notional_above_cap" in (event.data.reject_reason or "")  # type: ignore[attr-defined]


def test_a_second_venue_order_under_one_client_id_is_a_hard_stop(desk: Desk) -> None:
    # Given the ledger already holds slice 0 under another venue order id (a send the venue lost)
    plan = make_plan("hard", [(Decimal("0.002"), OrderType.LIMIT, BID - 10 * TICK)])
    cid = client_order_id(plan.plan_id, 0)
    desk.store.upsert_order(
        OrderRecord(client_order_id=cid, venue=VENUE, symbol=SYMBOL, side=Side.BUY, order_type=OrderType.LIMIT,
                    quantity=Decimal("0.002"), limit_price=BID - 10 * TICK, state=OrderState.ACCEPTED,
                    venue_order_id="424242", updated_at=datetime.now(UTC))
    )  # fmt: skip
    # When the plan runs
    done = desk.run(plan)
    # Then it stops hard: the new venue order is cancelled and the execution fails as OrderHardStop
    assert (done["status"], done.get("error")) == ("FAILED", "OrderHardStop")
    assert [o.status for o in ledger_orders(desk, plan.plan_id)] == ["CANCELED"]


# -- randomised workflows --------------------------------------------------------------------------

RATES = {
    Fault.TIMEOUT_AFTER_ACCEPT: 0.04, Fault.DROP_AFTER_ACCEPT: 0.04, Fault.RATE_LIMIT: 0.05,
    Fault.SERVER_ERROR: 0.05, Fault.PARTIAL_FILL: 0.1, Fault.REJECT_BALANCE: 0.02, Fault.REJECT_FILTER: 0.02,
}  # fmt: skip


def random_plan(rng: random.Random, n: int) -> ExecutionPlan:
    side = Side.BUY if rng.random() < 0.8 else Side.SELL
    touch, away = (ASK, BID - 5 * TICK) if side is Side.BUY else (BID, ASK + 5 * TICK)
    slices = []
    for _ in range(rng.randint(1, 3)):
        quantity = Decimal(rng.randint(10, 100)) / 10_000
        kind = rng.random()
        if kind < 0.15:
            slices.append((quantity, OrderType.MARKET, None))
        else:
            slices.append((quantity, OrderType.LIMIT, touch if kind < 0.7 else away))
    return make_plan(f"random-{n}", slices, side)


def market_fill(desk: Desk, cid: str, *, full: bool) -> None:
    """The market trades against a resting order: all of it, or a part that leaves some working."""
    with desk.fake.ledger.lock:
        working = [o for o in desk.fake.ledger.by_client_id(cid) if o.is_open and o.price is not None]
        if working:
            remaining = working[-1].quantity - working[-1].executed
            part = (remaining / 2).quantize(Decimal("0.00001"))
            desk.fake.fill_resting(cid, None if full or part <= 0 else part)


def run_random_workflows(desk: Desk, count: int, seed: int) -> None:
    rng = random.Random(seed)
    desk.fake.faults.rates = RATES
    real = order_tasks.lambda_handler

    def market(event: dict[str, Any], context: Any) -> Any:
        """Between polls the market fills resting orders, and the status endpoint sometimes goes down."""
        if event.get("task") == "poll":
            cid = client_order_id(event["plan_id"], event["slice_no"])
            draw = rng.random()
            if draw < 0.3:
                market_fill(desk, cid, full=draw < 0.15)
            elif draw < 0.4:
                desk.fake.faults.queue(GET_ORDER, Fault.SERVER_ERROR, Fault.SERVER_ERROR)  # an outage mid-plan
        return real(event, context)

    desk.cloud.register("order_tasks", market)
    plans, outcomes = [], Counter()
    for n in range(count):
        plan = random_plan(rng, n)
        done = desk.run(plan)
        assert done["status"] in TERMINAL
        outcomes[(done["status"], done.get("error"))] += 1
        plans.append(plan)
    assert_ledger_matches_venue(desk, plans)
    assert set(outcomes) <= {("SUCCEEDED", None), ("FAILED", "PreTradeRejected"), ("FAILED", "OrderPlacementFailed")}
    assert outcomes[("SUCCEEDED", None)] >= count * 0.8, outcomes
    assert desk.fake.faults.injected  # the faults really happened


def test_randomised_workflows_with_faults_keep_the_ledger_equal_to_the_venue(desk: Desk) -> None:
    run_random_workflows(desk, count=40, seed=20240301)


@pytest.mark.soak
def test_a_thousand_randomised_workflows_with_faults(desk: Desk) -> None:
    run_random_workflows(desk, count=1000, seed=1000)
