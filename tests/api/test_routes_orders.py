"""Orders, positions and the kill switch against real PostgreSQL and Redis."""

from __future__ import annotations

from tests.api.conftest import Api, Desk

ORDER = {"venue": "binance", "symbol": "BTC/USDT", "side": "buy", "quantity": "0.5", "slices": 4, "horizon_minutes": 60}
KEY = {"Idempotency-Key": "key-0001-abcdef"}


def test_submit_stores_a_plan_starts_its_execution_and_repeats_identically(api: Api, desk: Desk) -> None:
    # When the same order is submitted twice with one key
    first = api.post("/v1/orders/submit", ORDER, headers=KEY)
    second = api.post("/v1/orders/submit", ORDER, headers=KEY)
    # Then one plan is stored and started, and both answers are the same
    assert first.status == 202, first.body
    assert second.status == 202 and second.body == first.body
    plan = desk.store.load_plan(first.body["plan_id"])
    assert plan is not None and len(plan.slices) == 4 and str(plan.quantity) == "0.5"
    assert list(desk.starter.started) == [plan.plan_id]
    status = api.get(f"/v1/orders/status/{plan.plan_id}")
    assert status.status == 200 and status.body["plan"]["plan_id"] == plan.plan_id


def test_the_same_key_for_another_order_is_a_conflict(api: Api, desk: Desk) -> None:
    api.post("/v1/orders/submit", ORDER, headers=KEY)
    reply = api.post("/v1/orders/submit", {**ORDER, "quantity": "0.6"}, headers=KEY)
    assert reply.status == 409 and reply.body["code"] == "idempotency_conflict"


def test_submit_without_idempotency_key_is_refused_and_stores_nothing(api: Api, desk: Desk) -> None:
    reply = api.post("/v1/orders/submit", ORDER)
    assert reply.status == 422
    assert any("idempotency" in d["field"].lower() for d in reply.body["details"])
    assert desk.starter.started == {}


def test_latched_kill_switch_refuses_new_orders_through_the_gate(api: Api, desk: Desk) -> None:
    # Given the kill switch latched through the API
    latched = api.post("/v1/risk/kill-switch", {"action": "latch", "reason": "drill"})
    assert latched.status == 200 and latched.body["latched"] is True
    # When an order is submitted
    reply = api.post("/v1/orders/submit", ORDER, headers=KEY)
    # Then the gate refuses it with its reason and nothing is started
    assert reply.status == 422 and reply.body["code"] == "pre_trade_rejected"
    assert [d["field"] for d in reply.body["details"]] == ["kill_switch_latched"]
    assert desk.starter.started == {}
    released = api.post("/v1/risk/kill-switch", {"action": "release", "reason": "drill over"})
    assert released.status == 200 and released.body["latched"] is False
    again = api.post("/v1/risk/kill-switch", {"action": "release", "reason": "twice"})
    assert again.status == 409


def test_a_read_only_caller_cannot_trade(desk: Desk) -> None:
    reader = Api(scopes=("desk:read",))
    reply = reader.post("/v1/orders/submit", ORDER, headers=KEY)
    assert reply.status == 403 and reply.body["code"] == "forbidden"


def test_cancel_moves_a_working_order_to_pending_cancel_once(api: Api, desk: Desk) -> None:
    from datetime import timedelta

    from desk.schemas.trading import OrderRecord

    # Given a working child order of a submitted plan
    plan_id = api.post("/v1/orders/submit", ORDER, headers=KEY).body["plan_id"]
    intent = desk.store.load_plan(plan_id).intents()[0]  # type: ignore[union-attr]
    desk.store.upsert_order(
        OrderRecord(
            client_order_id=intent.client_order_id, venue=intent.venue, symbol=intent.symbol, side=intent.side,
            order_type=intent.order_type, quantity=intent.quantity, state="accepted",
            updated_at=desk.clock.now() - timedelta(minutes=1),
        )
    )  # fmt: skip
    # When it is cancelled twice
    first = api.post("/v1/orders/cancel", {"client_order_id": intent.client_order_id})
    second = api.post("/v1/orders/cancel", {"client_order_id": intent.client_order_id})
    # Then it is pending cancel, and the repeat changes nothing
    assert first.status == 200 and first.body["state"] == "pending_cancel"
    assert second.body == first.body
    unknown = api.post("/v1/orders/cancel", {"client_order_id": "nope-0"})
    assert unknown.status == 404


def test_positions_are_folded_from_recorded_fills(api: Api, desk: Desk) -> None:
    from decimal import Decimal

    from desk.domain.orders import Fill, Side

    fill = Fill(
        venue="binance", venue_trade_id="t1", client_order_id="x-0", symbol="BTC/USDT", side=Side.BUY,
        quantity=Decimal("0.25"), price=Decimal(7000), occurred_at=desk.clock.now(),
    )  # fmt: skip
    desk.store.record_fill(fill)
    reply = api.get("/v1/positions/current?venue=binance")
    assert reply.status == 200
    assert [(p["symbol"], p["quantity"]) for p in reply.body["positions"]] == [("BTC/USDT", "0.25")]
