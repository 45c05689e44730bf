"""Paper trading for the demo: plans worked by the order-placement state machine in virtual time.

Two plans started together must interleave slice by slice at their scheduled times on the demo's
clock (no real sleeping), fill on the paper venue's book, and leave a ledger that reconciles clean.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from desk import wiring
from desk.clock import FixedClock
from desk.domain.orders import OrderType, Side
from desk.local.cloud import LocalCloud
from desk.local.paper_trading import VirtualTime, paper_instruments, paper_markets, trade_plans
from desk.schemas.analytics import RiskSnapshot
from desk.schemas.market import Bar
from desk.schemas.trading import ExecutionPlan, PlanSlice
from desk.settings import get_settings
from desk.store import LambdaConnection, PostgresStore, migrate

T0 = datetime(2019, 5, 31, 0, 5, tzinfo=UTC)
MIDS = {"BTC/USDT": Decimal("8277.76"), "ETH/USDT": Decimal("254.37")}


def test_paper_instruments_and_books_are_on_binance_grids() -> None:
    btc = paper_instruments("binance", ["BTC/USDT"])["BTC/USDT"]
    assert btc.amount_to_precision(Decimal("0.123456789")) == Decimal("0.12345")
    [market] = paper_markets({"BTC/USDT": Decimal("8277.76")})
    # 2 bps wide around the mid, outward on the 0.01 tick grid
    assert (market.bid, market.ask) == (Decimal("8276.93"), Decimal("8278.59"))
    with pytest.raises(KeyError, match="no paper filters for DOGE/USDT"):
        paper_instruments("binance", ["DOGE/USDT"])


def test_virtual_time_wakes_sleepers_in_order_without_real_waiting() -> None:
    # Given two threads sleeping 600 s and 60 s of virtual time
    clock = FixedClock(T0)
    time = VirtualTime(clock)
    woke: list[tuple[str, datetime]] = []
    threads = [
        threading.Thread(target=lambda n=name, s=secs: (time.sleep(s), woke.append((n, clock.now()))))
        for name, secs in (("slow", 600.0), ("fast", 60.0))
    ]
    for t in threads:
        t.start()
    # When the driver advances whenever both (then the one left) are asleep
    running = 2
    while running:
        if time.advance_if_all_wait(running):
            time.settle(0.05)
        running = sum(t.is_alive() for t in threads)
    # Then each woke at its own virtual time, the short one first, and the clock ends at the long one
    assert woke == [("fast", T0 + timedelta(seconds=60)), ("slow", T0 + timedelta(seconds=600))]
    assert time.waited == timedelta(seconds=600)


def plan(plan_id: str, symbol: str, quantity: str, slices: int) -> ExecutionPlan:
    each = Decimal(quantity) / slices
    return ExecutionPlan(
        plan_id=plan_id, strategy="momentum", venue="binance", symbol=symbol, side=Side.BUY,
        quantity=Decimal(quantity), created_at=T0, schedule="twap", arrival_price=MIDS[symbol],
        expected_cost_bps=15.0,
        slices=tuple(PlanSlice(slice_no=k, quantity=each, not_before=T0 + timedelta(minutes=10 * k),
                               order_type=OrderType.MARKET) for k in range(slices)),
    )  # fmt: skip


@pytest.fixture
def desk(
    database_url: str, pg_schema: str, pg_url: str, redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[LocalCloud, PostgresStore, FixedClock]]:
    migrate(database_url, pg_schema)
    store = PostgresStore(LambdaConnection(pg_url))
    store.save_risk_snapshot(
        RiskSnapshot(portfolio="desk", ts=T0 - timedelta(minutes=5), confidence=0.99, horizon_days=1.0, var=0.0,
                     cvar=0.0, method="historical", equity=Decimal(1_000_000), gross_exposure=Decimal(0),
                     net_exposure=Decimal(0))
    )  # fmt: skip
    for symbol, mid in MIDS.items():
        store.upsert_bars(
            [Bar(venue="binance", symbol=symbol, timeframe="1d", ts=T0.replace(minute=0) - timedelta(days=k),
                 open=mid, high=mid, low=mid, close=mid, volume=Decimal(100_000)) for k in range(20, 0, -1)],
            now=T0,
        )  # fmt: skip
    universe = [{"venue": "binance", "symbol": s, "timeframe": "1d"} for s in MIDS]
    monkeypatch.setenv("DESK_DATABASE_URL", pg_url)
    monkeypatch.setenv("DESK_REDIS_URL", redis_url)
    monkeypatch.setenv("DESK_UNIVERSE", json.dumps(universe))
    get_settings.cache_clear()
    clock = FixedClock(T0)
    try:
        with LocalCloud() as cloud:
            wiring.install(clock=lambda: clock)  # after the cloud: entering it resets the wiring
            yield cloud, store, clock
    finally:
        wiring.reset()
        get_settings.cache_clear()
        store.close()


def test_two_plans_started_together_interleave_at_their_slice_times_and_reconcile_clean(
    desk: tuple[LocalCloud, PostgresStore, FixedClock], pg_url: str
) -> None:
    cloud, _, clock = desk
    # Given a 3-slice BTC TWAP and a 2-slice ETH TWAP, slices 10 minutes apart
    plans = [plan("ldpaperbtc", "BTC/USDT", "0.6", 3), plan("ldpapereth", "ETH/USDT", "20", 2)]
    # When both are worked on the paper venue and reconciled twice
    run = trade_plans(cloud, plans, clock, pg_url, MIDS)
    # Then both executions succeeded and everything filled, at the ask of the paper book
    assert list(run.plans["status"]) == ["SUCCEEDED", "SUCCEEDED"], run.plans["cause"].tolist()
    assert [Decimal(str(v)) for v in run.plans["filled"]] == [Decimal("0.6"), Decimal(20)]
    assert set(run.fills["price"]) == {Decimal("8278.59"), Decimal("254.40")}
    # And each child order went out at its slice time, on the virtual clock, interleaved across the plans
    sent = [(cid, ts.astimezone(UTC)) for cid, ts in zip(run.orders["client_order_id"], run.orders["created_at"],
                                                         strict=True)]  # fmt: skip
    assert sorted(sent, key=lambda x: (x[1], x[0])) == [
        ("ldpaperbtc-0", T0), ("ldpapereth-0", T0),
        ("ldpaperbtc-1", T0 + timedelta(minutes=10)), ("ldpapereth-1", T0 + timedelta(minutes=10)),
        ("ldpaperbtc-2", T0 + timedelta(minutes=20)),
    ]  # fmt: skip
    assert run.venue_orders == 5
    # And the shortfall is paying the ask over the arrival mid plus the 0.1 % taker fee on what was paid
    btc = run.plans.set_index("symbol").loc["BTC/USDT"]
    paid = Decimal("8278.59") / MIDS["BTC/USDT"]
    assert btc["shortfall bps"] == pytest.approx(float((paid - 1) * 10_000 + paid * 10), abs=1e-9)
    # And the two reconciliation runs found the ledger equal to the venue
    assert list(run.reconciliations["status"]) == ["clean", "clean"]
