"""The kill switch: engaging cancels every working order on the venue, the gate then refuses risk-increasing
orders (reduce-only still passes), and only an explicit operator release clears the latch."""

from __future__ import annotations

import json
import time
from decimal import Decimal
from typing import Any

import pytest
import redis

from desk import wiring
from desk.aws import clients
from desk.cache.kill_switch import KILL_SWITCH_KEY, RedisKillSwitch
from desk.domain.orders import OrderType, Side
from desk.schemas.trading import OrderIntent
from desk.settings import BINANCE_RATE_LIMIT, BINANCE_REQUEST_COSTS, Settings, get_settings
from tests.statemachines.conftest import SYMBOL, VENUE, Desk
from tests.statemachines.test_order_placement import ASK, BID, TICK, make_plan

WORKING = 200


def invoke(payload: dict[str, Any]) -> dict[str, Any]:
    response = clients.client("lambda").invoke(FunctionName="kill_switch", Payload=json.dumps(payload).encode())
    body: dict[str, Any] = json.loads(response["Payload"].read())
    assert "FunctionError" not in response, body
    return body


def rest_orders(count: int) -> None:
    venue = wiring.venue(VENUE)
    for n in range(count):
        intent = OrderIntent(
            client_order_id=f"ldkillswitch-{n}", plan_id="ldkillswitch", slice_no=n, venue=VENUE, symbol=SYMBOL,
            side=Side.BUY, order_type=OrderType.LIMIT, quantity=Decimal("0.001"), limit_price=BID - 50 * TICK,
        )  # fmt: skip
        venue.create_order(intent)


def cancels(desk: Desk) -> int:
    return sum(1 for method, path, _ in desk.fake.requests if (method, path) == ("DELETE", "/api/v3/order"))


def use_published_binance_budget(desk: Desk, monkeypatch: pytest.MonkeyPatch) -> None:
    """The fake under the venue's name with Binance's own request budget (the fixture lifts it)."""
    spec = {"kind": "ccxt", "exchange_id": "binance", "credentials_id": "venues/binance"}
    spec["base_url"] = desk.fake.base_url
    monkeypatch.setenv("DESK_VENUES", json.dumps({VENUE: spec}))
    get_settings.cache_clear()
    wiring.reset()
    assert get_settings().venue_specs()[VENUE].rate_limit == BINANCE_RATE_LIMIT


def test_the_published_binance_budget_admits_the_kill_switch_without_waiting() -> None:
    # 200 cancels and the one open-orders listing fit in the bucket's burst: no token wait at all
    capacity, _ = BINANCE_RATE_LIMIT
    needed = BINANCE_REQUEST_COSTS["fetch_open_orders"] + WORKING * BINANCE_REQUEST_COSTS["cancel_order"]
    assert needed <= capacity
    # while the settings' generic default bucket (20 burst, 10/s) would make 200 cancels wait about 18 s
    fields = Settings.model_fields
    burst, refill = fields["rate_limit_capacity"].default, fields["rate_limit_refill"].default
    assert (needed - burst) / refill > 5


def test_engaging_cancels_every_working_order_and_latches_in_postgres_and_redis(
    desk: Desk, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given 200 working orders on the venue, and the venue under Binance's published request budget
    rest_orders(WORKING)
    with desk.fake.ledger.lock:
        assert sum(o.is_open for o in desk.fake.ledger.orders) == WORKING
    use_published_binance_budget(desk, monkeypatch)
    # When the kill switch is engaged through its function
    started = time.perf_counter()
    result = invoke({"action": "engage", "reason": "test breach", "by": "risk"})
    elapsed = time.perf_counter() - started
    print(f"kill switch: {WORKING} cancels in {elapsed:.2f}s")  # measured, reported; not asserted
    # Then every one was cancelled, with exactly one cancel call each
    assert result == {"latched": True, "cancelled": WORKING}
    with desk.fake.ledger.lock:
        assert [o.status for o in desk.fake.ledger.orders] == ["CANCELED"] * WORKING
    assert cancels(desk) == WORKING
    # And the latch is in PostgreSQL and mirrored in Redis
    assert desk.store.kill_switch().latched
    assert RedisKillSwitch(redis.Redis.from_url(get_settings().redis_url, decode_responses=True)).latched()


def test_while_latched_only_risk_reducing_orders_pass_until_an_explicit_release(desk: Desk) -> None:
    # Given a long position from a filled buy, then the switch engaged
    bought = desk.run(make_plan("long", [(Decimal("0.005"), OrderType.LIMIT, ASK)]))
    assert bought["status"] == "SUCCEEDED"
    invoke({"action": "engage", "reason": "drift", "by": "reconciliation"})
    # When a risk-increasing buy runs, Then the gate refuses it by name and nothing reaches the venue
    posts_before = len(desk.fake.requests)
    refused = desk.run(make_plan("more", [(Decimal("0.002"), OrderType.LIMIT, ASK)]))
    assert (refused["status"], refused.get("error")) == ("FAILED", "PreTradeRejected")
    assert not any(m == "POST" for m, _, _ in desk.fake.requests[posts_before:])
    # When a sell that only reduces the position runs, Then it passes
    reduced = desk.run(make_plan("reduce", [(Decimal("0.002"), OrderType.LIMIT, BID)], side=Side.SELL))
    assert reduced["status"] == "SUCCEEDED"
    # When the Redis mirror is lost and the switch engaged again, Then it is still latched (PostgreSQL is the truth)
    redis.Redis.from_url(get_settings().redis_url).delete(KILL_SWITCH_KEY)
    assert desk.run(make_plan("again", [(Decimal("0.002"), OrderType.LIMIT, ASK)]))["status"] == "FAILED"
    invoke({"action": "engage", "reason": "second", "by": "risk"})
    assert desk.store.kill_switch().reason == "drift"  # the first latch is kept
    # When an operator releases it explicitly, Then risk-increasing orders pass again
    assert invoke({"action": "release", "by": "operator", "reason": "reviewed"}) == {"latched": False}
    assert not RedisKillSwitch(redis.Redis.from_url(get_settings().redis_url, decode_responses=True)).latched()
    assert desk.run(make_plan("after", [(Decimal("0.002"), OrderType.LIMIT, ASK)]))["status"] == "SUCCEEDED"
