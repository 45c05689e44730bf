"""The gate's view of the world as assembled from a real PostgreSQL ledger (desk.usecases.gate).

The pure gate is tested in tests/unit/desk/test_controls.py; here the question is whether what it
judges against (recent intents, order-message counts, clusters, working orders) is read correctly.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from desk.domain.controls import check_order
from desk.domain.controls_config import GateConfig, OrderRequest, ReasonCode
from desk.domain.orders import Fill, OrderState, OrderType, Side, client_order_id
from desk.schemas import CorrelationSnapshot, Quote
from desk.schemas.market import Bar
from desk.schemas.trading import ExecutionPlan, OrderRecord, PlanSlice
from desk.store import LambdaConnection, PostgresStore, migrate
from desk.usecases.gate import MarketView, gate_context, strategy_key

T0 = datetime(2024, 3, 1, 12, 0, tzinfo=UTC)
VENUE, SYMBOL, QTY = "binance", "BTC/USDT", Decimal("0.01")
CONFIG = GateConfig(allowed_symbols=frozenset({SYMBOL, "ETH/USDT"}))


@pytest.fixture
def store(database_url: str, pg_schema: str, pg_url: str) -> Iterator[PostgresStore]:
    migrate(database_url, pg_schema)
    s = PostgresStore(LambdaConnection(pg_url))
    bars = [
        Bar(venue=VENUE, symbol=SYMBOL, timeframe="1d", ts=T0 - timedelta(days=k), open=Decimal(60_000),
            high=Decimal(60_500), low=Decimal(59_500), close=Decimal(60_000), volume=Decimal(10_000))
        for k in range(1, 11)
    ]  # fmt: skip
    s.upsert_bars(bars, now=T0)
    yield s
    s.close()


def plan(plan_id: str, strategy: str | None, slices: int = 2) -> ExecutionPlan:
    return ExecutionPlan(
        plan_id=plan_id, strategy=strategy, venue=VENUE, symbol=SYMBOL, side=Side.BUY, quantity=QTY * slices,
        created_at=T0, schedule="twap",
        slices=tuple(PlanSlice(slice_no=k, quantity=QTY, not_before=T0, limit_price=Decimal("60000.00"))
                     for k in range(slices)),
    )  # fmt: skip


def sent(store: PostgresStore, p: ExecutionPlan, slice_no: int, at: datetime, state: OrderState) -> str:
    cid = client_order_id(p.plan_id, slice_no)
    store.upsert_order(
        OrderRecord(client_order_id=cid, venue=VENUE, symbol=SYMBOL, side=Side.BUY, order_type=OrderType.LIMIT,
                    quantity=QTY, limit_price=Decimal("60000.00"), state=state, updated_at=at)
    )  # fmt: skip
    return cid


def request(p: ExecutionPlan, slice_no: int) -> OrderRequest:
    return OrderRequest(
        client_order_id=client_order_id(p.plan_id, slice_no), strategy=strategy_key(p), venue=VENUE, symbol=SYMBOL,
        side=Side.BUY, order_type=OrderType.LIMIT, quantity=QTY, limit_price=Decimal("60000.00"),
    )  # fmt: skip


def market(now: datetime) -> MarketView:
    quote = Quote(venue=VENUE, symbol=SYMBOL, ts=now, bid=Decimal("59999.99"), ask=Decimal("60000.01"),
                  bid_size=Decimal(1), ask_size=Decimal(1))  # fmt: skip
    return MarketView(quote=quote, instrument=None, equity=Decimal(10_000_000), kill_switch_latched=False)


def test_the_same_order_from_another_plan_of_the_strategy_within_two_seconds_is_a_duplicate(
    store: PostgresStore,
) -> None:
    # Given a momentum plan whose first slice went out at T0
    first = plan("ldmomone", "momentum")
    store.save_plan(first)
    sent(store, first, 0, T0, OrderState.ACCEPTED)
    # When another momentum plan sends the same order 1.5 s later, Then the gate calls it a duplicate
    second = plan("ldmomtwo", "momentum")
    store.save_plan(second)
    now = T0 + timedelta(seconds=1.5)
    context = gate_context(request(second, 0), market(now), store=store, config=CONFIG, now=now)
    assert [i.client_order_id for i in context.recent_intents] == [client_order_id(first.plan_id, 0)]
    assert ReasonCode.DUPLICATE in check_order(request(second, 0), context, CONFIG).codes
    # But the first plan's own next slice is not a duplicate of its sibling
    own = gate_context(request(first, 1), market(now), store=store, config=CONFIG, now=now)
    assert list(own.recent_intents) == []
    # And 2 s later the same order is no longer a duplicate; nor is another strategy's at once
    later = T0 + timedelta(seconds=2)
    assert gate_context(request(second, 0), market(later), store=store, config=CONFIG, now=later).recent_intents == []
    other = plan("ldrevone", "mean_reversion")
    store.save_plan(other)
    context = gate_context(request(other, 0), market(now), store=store, config=CONFIG, now=now)
    assert ReasonCode.DUPLICATE not in check_order(request(other, 0), context, CONFIG).codes


def test_order_messages_count_sends_and_cancels_in_the_last_second_and_minute(store: PostgresStore) -> None:
    # Given 12 orders sent over the last 30 s (3 in the last second), one of the old ones cancelled just now,
    # and one refused by the gate (never sent)
    p = plan("ldburst", "momentum", slices=14)
    store.save_plan(p)
    now = T0 + timedelta(seconds=30)
    for k in range(12):
        at = now - timedelta(seconds=29 - 2.5 * k) if k < 9 else now - timedelta(milliseconds=300 * (k - 8))
        sent(store, p, k, at, OrderState.ACCEPTED)
    sent(store, p, 0, now - timedelta(milliseconds=100), OrderState.CANCELLED)
    sent(store, p, 13, now - timedelta(milliseconds=50), OrderState.REJECTED)
    # When the gate looks, Then the second counts 3 sends + 1 cancel and the minute 12 + 1
    context = gate_context(request(p, 12), market(now), store=store, config=CONFIG, now=now)
    assert (context.messages_last_second, context.messages_last_minute) == (4, 13)
    # And a throttle of 4 a second refuses the next order by name
    tight = GateConfig(allowed_symbols=CONFIG.allowed_symbols, max_messages_per_second=4)
    assert ReasonCode.THROTTLE_SECOND in check_order(request(p, 12), context, tight).codes


def test_clusters_come_from_the_newest_stored_snapshot_of_the_configured_kind(store: PostgresStore) -> None:
    # Given two Ledoit-Wolf snapshots (different windows) and a newer EWMA one
    def snapshot(method: str, ts: datetime, window: int, rho: float) -> CorrelationSnapshot:
        matrix = ((1.0, rho), (rho, 1.0))
        return CorrelationSnapshot(ts=ts, timeframe="1d", method=method, window=window, symbols=(SYMBOL, "ETH/USDT"),
                                   matrix=matrix)  # fmt: skip

    store.save_correlation(snapshot("ledoit_wolf", T0 - timedelta(days=2), 250, 0.2))
    store.save_correlation(snapshot("ledoit_wolf", T0 - timedelta(days=1), 180, 0.85))
    store.save_correlation(snapshot("ewma", T0, 250, 0.1))
    # When the gate assembles its context, Then it reads the newest Ledoit-Wolf one, whatever its window
    p = plan("ldclus", "momentum")
    context = gate_context(request(p, 0), market(T0), store=store, config=CONFIG, now=T0)
    assert context.correlation is not None and context.correlation.matrix[0][1] == pytest.approx(0.85)
    # And the average daily volume is the stored bars' mean
    assert context.average_daily_volume == Decimal(10_000)


def test_a_ledger_with_fills_on_two_symbols_gives_a_position_per_symbol(store: PostgresStore) -> None:
    # Given fills on BTC and on ETH (the gate once folded every fill of the venue into the order's symbol
    # and raised as soon as a second symbol had traded: found by the demo's paper trading)
    for n, (symbol, qty, price) in enumerate([(SYMBOL, "0.5", "60000"), ("ETH/USDT", "4", "3000")]):
        store.record_fill(
            Fill(venue=VENUE, venue_trade_id=str(n + 1), client_order_id=f"ldfills-{n}", symbol=symbol,
                 side=Side.BUY, quantity=Decimal(qty), price=Decimal(price), occurred_at=T0 - timedelta(hours=1))
        )  # fmt: skip
    # When the gate looks at a BTC order, Then each symbol has its own position and the other is marked at cost
    p = plan("ldtwosym", "momentum")
    context = gate_context(request(p, 0), market(T0), store=store, config=CONFIG, now=T0)
    assert dict(context.positions) == {SYMBOL: Decimal("0.5"), "ETH/USDT": Decimal(4)}
    assert context.marks["ETH/USDT"] == Decimal(3000) and context.marks[SYMBOL] == Decimal(60_000)
