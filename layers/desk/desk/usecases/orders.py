"""The order-placement tasks (``statemachines/order_placement.asl.json``) and the kill switch, over ports.

One function per ASL task: :func:`validate` → :func:`plan_slices` → per slice :func:`place` → :func:`poll`
→ :func:`cancel` → :func:`finish`, and :func:`abort` for every ``Catch``. Each is safe to repeat (Step
Functions retries re-run a task with the same input):

* a child order is addressed only by its deterministic client order id ``<plan id>-<slice>``; ``place``
  looks it up before sending, and after a retryable failure looks it up again and raises instead of
  resending, so the next attempt (an ASL ``Retry``) starts with a lookup: never a blind resend;
* fills are recorded unique on (venue, venue trade id) and published with ids derived from that key;
* a slice is final only when the fills recorded for it add up to what the venue says is filled.

Hard stop (:class:`OrderHardStop`): more child orders than slices, more quantity than the plan, a venue
order that is not the intent that was sent, or a second venue order under one client order id. The ASL
catches it by name, cancels what is open and alerts.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, Protocol

from desk.domain.controls import check_order
from desk.domain.controls_config import GateConfig, GateDecision, OrderActivity, OrderRequest, PreTradeRejected
from desk.domain.errors import OrderHardStop, OrderNotFound, PermanentVenueError, RetryableVenueError
from desk.domain.instruments import DECIMAL_CONTEXT, decimal_sum
from desk.domain.orders import Fill, OrderState, client_order_id
from desk.events import Envelope, new_event
from desk.ports import Alerts, Clock, EventBus, QuoteCache, Venue
from desk.schemas.analytics import CorrelationSnapshot, RiskSnapshot
from desk.schemas.market import Bar
from desk.schemas.trading import (
    ExecutionPlan,
    FillRecord,
    KillSwitchState,
    OrderCompleted,
    OrderIntent,
    OrderRecord,
    PositionRecord,
)
from desk.usecases.gate import MarketView, gate_context, strategy_key

__all__ = [
    "KillSwitchOutcome",
    "OrderHardStop",
    "OrderPorts",
    "abort",
    "cancel",
    "engage_kill_switch",
    "finish",
    "place",
    "plan_slices",
    "poll",
    "release_kill_switch",
    "validate",
]

_EVENTS = uuid.UUID("0b7c3e52-8f0e-4b57-9d8e-3c1f7a6b2d40")  # ids of events derived from natural keys
_FILL_LOOKBACK = timedelta(minutes=5)  # venue clocks run a little ahead of ours
_DEFAULT_SLICE = timedelta(minutes=1)  # the last slice's working time when the plan gives no next slice
PORTFOLIO = "desk"


class OrderStore(Protocol):
    """What the order tasks need of the store (``PostgresStore`` satisfies it)."""

    def save_plan(self, plan: ExecutionPlan) -> bool: ...
    def load_plan(self, plan_id: str) -> ExecutionPlan | None: ...
    def upsert_order(self, order: OrderRecord) -> None: ...
    def load_order(self, client_order_id: str) -> OrderRecord | None: ...
    def open_orders(self, venue: str | None = None) -> Sequence[OrderRecord]: ...
    def order_activity(self, since: datetime, until: datetime) -> Sequence[OrderActivity]: ...
    def latest_correlation(
        self, timeframe: str, method: str, window: int | None = None
    ) -> CorrelationSnapshot | None: ...
    def orders_for_plan(self, plan_id: str) -> Sequence[OrderRecord]: ...
    def append_order_event(self, event: Envelope) -> bool: ...
    def record_fill(self, fill: Fill, *, adjustment: bool = False) -> bool: ...
    def load_fills(
        self, venue: str | None = None, symbol: str | None = None, since: datetime | None = None
    ) -> Sequence[Fill]: ...
    def fills_for_orders(self, client_order_ids: Sequence[str]) -> Sequence[Fill]: ...
    def positions(
        self, as_of: datetime, venue: str | None = None, symbol: str | None = None
    ) -> Sequence[PositionRecord]: ...
    def kill_switch(self) -> KillSwitchState: ...
    def latch_kill_switch(self, reason: str, at: datetime, by: str) -> KillSwitchState: ...
    def release_kill_switch(self, at: datetime, by: str, *, reason: str = "") -> KillSwitchState: ...
    def latest_risk_snapshot(self, portfolio: str) -> RiskSnapshot | None: ...
    def load_bars(self, venue: str, symbol: str, timeframe: str, start: datetime, end: datetime) -> Sequence[Bar]: ...


class KillSwitchMirror(Protocol):
    """The Redis copy of the latch (``desk.cache.kill_switch``): fast to read, never the only copy."""

    def latched(self) -> bool: ...
    def mirror(self, state: KillSwitchState) -> None: ...


@dataclass(frozen=True)
class OrderPorts:
    store: OrderStore
    venue: Callable[[str], Venue]
    quotes: QuoteCache
    bus: EventBus
    clock: Clock
    alerts: Alerts
    gate: GateConfig
    kill_switch: KillSwitchMirror | None = None


def _result(record: OrderRecord, action: str, polls: int = 0, wait_seconds: int = 0) -> dict[str, Any]:
    return {
        "client_order_id": record.client_order_id,
        "state": record.state.value,
        "final": action == "done",
        "action": action,
        "polls": polls,
        "filled_quantity": str(record.filled_quantity),
        "wait_seconds": wait_seconds,
    }


def _plan(plan_id: str, ports: OrderPorts) -> ExecutionPlan:
    plan = ports.store.load_plan(plan_id)
    if plan is None:
        raise OrderNotFound(f"plan {plan_id} is not stored")
    return plan


# -- validate --------------------------------------------------------------------------------------


def validate(plan: ExecutionPlan, ports: OrderPorts) -> dict[str, Any]:
    """The pre-trade gate on the parent order; a refusal is recorded, then raised (ASL ``Catch``).

    The parent is judged whole, except for the notional cap, which applies to its largest slice
    (each slice is one order at the venue, gated again when it is placed).
    """
    ports.store.save_plan(plan)  # idempotent: the stored plan is the one that runs
    plan = _plan(plan.plan_id, ports)
    first = plan.intents()[0]
    request = OrderRequest(
        client_order_id=first.client_order_id,
        strategy=strategy_key(plan),
        venue=plan.venue,
        symbol=plan.symbol,
        side=plan.side,
        order_type=first.order_type,
        quantity=plan.quantity,
        limit_price=first.limit_price,
        time_in_force=first.time_in_force,
        largest_child=max(s.quantity for s in plan.slices),
    )
    decision = _gate(request, ports)
    if not decision.accepted:
        _reject(first, decision, ports)
        raise PreTradeRejected(request.client_order_id, decision.reasons)
    quote = ports.quotes.get_quote(plan.venue, plan.symbol)
    mid = None if quote is None else DECIMAL_CONTEXT.divide(DECIMAL_CONTEXT.add(quote.bid, quote.ask), 2)
    arrival = plan.arrival_price or mid
    return {"plan_id": plan.plan_id, "arrival_price": None if arrival is None else str(arrival)}


def _gate(request: OrderRequest, ports: OrderPorts) -> GateDecision:
    """Run every control on ``request`` against the world at ``now`` (:mod:`desk.usecases.gate`).

    The quote is the cached one while fresh; a late feed is replaced by the venue's own ticker (and the
    answer shared through the cache). Equity is the latest risk snapshot's, else the account's value.
    """
    store, venue, now = ports.store, ports.venue(request.venue), ports.clock.now()
    quote = ports.quotes.get_quote(request.venue, request.symbol)
    max_age = ports.gate.max_quote_age[ports.gate.asset_class(request.venue)]
    if quote is None or now - quote.ts > max_age:
        quote = venue.fetch_ticker(request.symbol)  # the feed is late: ask the venue, and share the answer
        ports.quotes.put_quote(quote)
    snapshot = store.latest_risk_snapshot(PORTFOLIO)
    mid = DECIMAL_CONTEXT.divide(DECIMAL_CONTEXT.add(quote.bid, quote.ask), 2)
    equity = snapshot.equity if snapshot is not None else _equity(venue, request.symbol, mid)
    latched = store.kill_switch().latched or (ports.kill_switch is not None and ports.kill_switch.latched())
    market = MarketView(quote, venue.markets().get(request.symbol), equity, latched)
    return check_order(request, gate_context(request, market, store=store, config=ports.gate, now=now), ports.gate)


def _equity(venue: Venue, symbol: str, mid: Decimal) -> Decimal:
    """Without a risk snapshot: the account's quote currency plus the base held, at the mid."""
    instrument = venue.markets()[symbol]
    balances = venue.fetch_balances()
    quote_total = balances[instrument.quote].total if instrument.quote in balances else Decimal(0)
    base_total = balances[instrument.base].total if instrument.base in balances else Decimal(0)
    return DECIMAL_CONTEXT.add(quote_total, DECIMAL_CONTEXT.multiply(base_total, mid))


def _reject(intent: OrderIntent, decision: GateDecision, ports: OrderPorts) -> None:
    """Record a refused intent: a rejected order row and its ``order.completed`` in the order-event log."""
    record = _new_record(intent, ports.clock.now()).model_copy(
        update={"state": OrderState.REJECTED, "reject_reason": decision.error_cause()}
    )
    ports.store.upsert_order(record)
    _complete(record, ports, publish=False)


# -- plan ------------------------------------------------------------------------------------------


def plan_slices(plan_id: str, config: Mapping[str, Any], ports: OrderPorts) -> dict[str, Any]:
    """Each slice's poll budget (its working time over the poll interval, capped) and deadline."""
    plan = _plan(plan_id, ports)
    poll_seconds, max_polls = float(config["poll_seconds"]), int(config["max_polls"])
    slices = []
    for s in plan.slices:
        after = plan.slices[s.slice_no + 1].not_before if s.slice_no + 1 < len(plan.slices) else None
        deadline = after if after is not None and after > s.not_before else s.not_before + _DEFAULT_SLICE
        budget = math.ceil((deadline - s.not_before).total_seconds() / poll_seconds) if poll_seconds > 0 else max_polls
        polls = max(1, min(max_polls, budget))
        slices.append({"slice_no": s.slice_no, "max_polls": polls, "deadline": deadline.isoformat()})
    return {"slices": slices}


# -- place, poll, cancel ----------------------------------------------------------------------------


def place(plan_id: str, slice_no: int, wait_max_seconds: int, ports: OrderPorts) -> dict[str, Any]:
    """Place slice ``slice_no`` at most once: look up, gate, send; a venue rejection ends the slice."""
    plan = _plan(plan_id, ports)
    intent = plan.intents()[slice_no]
    store, venue, now = ports.store, ports.venue(plan.venue), ports.clock.now()
    early = plan.slices[slice_no].not_before - now
    stored = store.load_order(intent.client_order_id)
    if stored is None and wait_max_seconds > 0 and early > timedelta(0):
        wait = min(wait_max_seconds, math.ceil(early.total_seconds()))
        return _result(_new_record(intent, now), "early", wait_seconds=wait)
    if stored is not None and stored.state.is_terminal and _recorded(plan, stored, ports) == stored.filled_quantity:
        return _result(stored, "done")
    found = venue.fetch_order_by_client_id(intent.symbol, intent.client_order_id)
    if found is None:
        _guard_before_send(plan, intent, ports)
        if stored is None or stored.venue_order_id is None:
            decision = _gate(OrderRequest.from_intent(intent, strategy=strategy_key(plan)), ports)
            if not decision.accepted:
                _reject(intent, decision, ports)
                raise PreTradeRejected(intent.client_order_id, decision.reasons)
            intent = intent.model_copy(update=dict(decision.adjustments))  # a market order goes out collared
        store.upsert_order(_new_record(intent, now))  # before the send: a crash leaves a row to reconcile
        try:
            found = venue.create_order(intent)
        except RetryableVenueError as exc:
            # It may have arrived: look up; if the venue has not seen it the ASL Retry sends again, after a lookup.
            try:
                found = venue.fetch_order_by_client_id(intent.symbol, intent.client_order_id)
            except RetryableVenueError:
                raise exc from None
            if found is None:
                raise
        except PermanentVenueError as exc:
            rejected = _new_record(intent, now).model_copy(
                update={"state": OrderState.REJECTED, "reject_reason": f"{type(exc).__name__}: {exc}"}
            )
            store.upsert_order(rejected)
            _complete(rejected, ports, publish=False)
            return _result(rejected, "done")
    _guard_after_send(intent, stored, found)
    return _result(found, "done" if _sync(plan, found, ports) else "wait")


def poll(plan_id: str, slice_no: int, polls: int, max_polls: int, deadline: str, ports: OrderPorts) -> dict[str, Any]:
    """The slice's order by client order id; record its new fills; ``cancel`` at the deadline."""
    plan = _plan(plan_id, ports)
    cid = client_order_id(plan_id, slice_no)
    record = ports.venue(plan.venue).fetch_order_by_client_id(plan.symbol, cid)
    if record is None:
        raise OrderNotFound(f"{cid} was placed but the venue does not know it")
    _guard_after_send(plan.intents()[slice_no], ports.store.load_order(cid), record)
    polls += 1
    if _sync(plan, record, ports):
        return _result(record, "done", polls)
    late = polls >= max_polls or ports.clock.now() >= datetime.fromisoformat(deadline)
    return _result(record, "cancel" if late and not record.state.is_terminal else "wait", polls)


def cancel(plan_id: str, slice_no: int, polls: int, ports: OrderPorts) -> dict[str, Any]:
    """Cancel what is left of the slice (idempotent: a closed order comes back unchanged)."""
    plan = _plan(plan_id, ports)
    cid = client_order_id(plan_id, slice_no)
    record = ports.venue(plan.venue).cancel_order(plan.symbol, cid)
    return _result(record, "done" if _sync(plan, record, ports) else "wait", polls)


def _new_record(intent: OrderIntent, now: datetime) -> OrderRecord:
    return OrderRecord(
        client_order_id=intent.client_order_id,
        venue=intent.venue,
        symbol=intent.symbol,
        side=intent.side,
        order_type=intent.order_type,
        quantity=intent.quantity,
        limit_price=intent.limit_price,
        time_in_force=intent.time_in_force,
        state=OrderState.NEW,
        updated_at=now,
    )


def _guard_before_send(plan: ExecutionPlan, intent: OrderIntent, ports: OrderPorts) -> None:
    others = [o for o in ports.store.orders_for_plan(plan.plan_id) if o.client_order_id != intent.client_order_id]
    sent = decimal_sum(o.quantity for o in others if o.state is not OrderState.REJECTED or o.venue_order_id)
    if len(others) + 1 > len(plan.slices):
        raise OrderHardStop(f"plan {plan.plan_id}: {len(others) + 1} child orders for {len(plan.slices)} slices")
    if DECIMAL_CONTEXT.add(sent, intent.quantity) > plan.quantity:
        raise OrderHardStop(f"plan {plan.plan_id}: {sent} + {intent.quantity} sent exceeds {plan.quantity}")


def _guard_after_send(intent: OrderIntent, stored: OrderRecord | None, found: OrderRecord) -> None:
    if (found.client_order_id, found.symbol, found.side, found.quantity) != (
        intent.client_order_id,
        intent.symbol,
        intent.side,
        intent.quantity,
    ):
        raise OrderHardStop(f"{intent.client_order_id}: the venue holds {found.quantity} {found.side}, not the intent")
    if stored is not None and stored.venue_order_id and found.venue_order_id != stored.venue_order_id:
        message = (
            f"{intent.client_order_id}: a second venue order {found.venue_order_id} (first {stored.venue_order_id})"
        )
        raise OrderHardStop(message)


def _recorded(plan: ExecutionPlan, record: OrderRecord, ports: OrderPorts) -> Decimal:
    return decimal_sum(f.quantity for f in ports.store.fills_for_orders([record.client_order_id]))


def _sync(plan: ExecutionPlan, record: OrderRecord, ports: OrderPorts) -> bool:
    """Store the venue's view and its new fills; True when the order is terminal with every fill recorded."""
    store = ports.store
    if _recorded(plan, record, ports) < record.filled_quantity:
        since = plan.created_at - _FILL_LOOKBACK
        for fill in ports.venue(plan.venue).fetch_fills(since, plan.symbol):
            if fill.client_order_id == record.client_order_id and store.record_fill(fill):
                event = new_event(
                    "fill.recorded",
                    FillRecord.from_domain(fill),
                    occurred_at=fill.occurred_at,
                    correlation_id=plan.plan_id,
                    event_id=str(uuid.uuid5(_EVENTS, f"fill:{fill.venue}:{fill.venue_trade_id}")),
                )
                store.append_order_event(event)
                ports.bus.publish([event])
    complete = _recorded(plan, record, ports) == record.filled_quantity
    store.upsert_order(record)
    if record.state.is_terminal and complete:
        _complete(record, ports, publish=False)
    return record.state.is_terminal and complete


def _complete(record: OrderRecord, ports: OrderPorts, *, publish: bool) -> Envelope:
    event = new_event(
        "order.completed",
        OrderCompleted.model_validate(record.model_dump()),
        occurred_at=record.updated_at,
        correlation_id=record.client_order_id.rpartition("-")[0] or record.client_order_id,
        event_id=str(uuid.uuid5(_EVENTS, f"completed:{record.client_order_id}:{record.state.value}")),
    )
    ports.store.append_order_event(event)
    if publish:
        ports.bus.publish([event])
    return event


# -- finish and abort -------------------------------------------------------------------------------


def _settle(plan: ExecutionPlan, ports: OrderPorts, *, cancel_open: bool) -> list[OrderRecord]:
    """Every child order of the plan brought up to date with the venue (optionally cancelling open ones)."""
    venue, out = ports.venue(plan.venue), []
    for row in ports.store.orders_for_plan(plan.plan_id):
        if row.state is OrderState.REJECTED and row.venue_order_id is None:
            out.append(row)
            continue
        record = venue.fetch_order_by_client_id(plan.symbol, row.client_order_id)
        if record is None:  # recorded before a send that never arrived
            record = row.model_copy(update={"state": OrderState.REJECTED, "reject_reason": "never reached the venue"})
        elif cancel_open and not record.state.is_terminal:
            record = venue.cancel_order(plan.symbol, row.client_order_id)
        _sync(plan, record, ports)
        out.append(record)
    return out


def finish(plan_id: str, ports: OrderPorts) -> dict[str, Any]:
    """Aggregate the fills, the implementation shortfall against the arrival price; publish ``order.completed``."""
    from quant.costs import implementation_shortfall  # numpy/pandas: only the finishing task pays for them

    plan = _plan(plan_id, ports)
    children = _settle(plan, ports, cancel_open=True)
    fills = [
        f
        for f in ports.store.load_fills(venue=plan.venue, symbol=plan.symbol, since=plan.created_at - _FILL_LOOKBACK)
        if f.client_order_id.rpartition("-")[0] == plan_id
    ]
    for child in children:
        if child.state.is_terminal:
            _complete(child, ports, publish=True)
    filled = decimal_sum(f.quantity for f in fills)
    quote = ports.quotes.get_quote(plan.venue, plan.symbol)
    final = None if quote is None else float(DECIMAL_CONTEXT.divide(DECIMAL_CONTEXT.add(quote.bid, quote.ask), 2))
    arrival = plan.arrival_price or (None if final is None else Decimal(str(final)))
    summary: dict[str, Any] = {
        "plan_id": plan_id,
        "orders": len(children),
        "fills": len(fills),
        "filled_quantity": str(filled),
        "intended_quantity": str(plan.quantity),
        "shortfall_bps": None,
    }
    if arrival is not None and (filled == plan.quantity or final is not None):
        shortfall = implementation_shortfall(
            plan.side.value,
            float(arrival),
            ([float(f.price) for f in fills], [float(f.quantity) for f in fills]),
            float(plan.quantity),
            final_price=final,
            fees=float(decimal_sum(f.fee for f in fills if f.fee_currency in (None, _quote_ccy(plan.symbol)))),
        )
        summary["shortfall_bps"] = None if math.isnan(shortfall.total_bps) else round(shortfall.total_bps, 4)
    return summary


def _quote_ccy(symbol: str) -> str:
    return symbol.partition("/")[2].partition(":")[0]


def abort(plan_id: str, error: Mapping[str, Any], ports: OrderPorts) -> dict[str, Any]:
    """Catch: cancel every open child order of the plan, record their fills and final states, alert."""
    plan = ports.store.load_plan(plan_id)
    name = str(error.get("Error", "unknown"))
    children = [] if plan is None else _settle(plan, ports, cancel_open=True)
    for child in children:
        if child.state.is_terminal:
            _complete(child, ports, publish=True)
    subject = f"{'HARD STOP' if name == OrderHardStop.__name__ else 'Order placement failed'}: {plan_id}"
    ports.alerts.publish(subject, f"{name}: {error.get('Cause', '')}\n" + "\n".join(_line(c) for c in children))
    return {"plan_id": plan_id, "error": name, "cancelled": [c.client_order_id for c in children]}


def _line(record: OrderRecord) -> str:
    return f"{record.client_order_id} {record.state.value} {record.filled_quantity}/{record.quantity}"


# -- kill switch ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class KillSwitchOutcome:
    state: KillSwitchState
    cancelled: tuple[str, ...] = ()
    failed: tuple[str, ...] = ()


def engage_kill_switch(
    reason: str, by: str, *, store: OrderStore, mirror: KillSwitchMirror, venues: Mapping[str, Venue],
    clock: Clock, alerts: Alerts, workers: int = 16,
) -> KillSwitchOutcome:  # fmt: skip
    """Latch (PostgreSQL first: the truth), mirror to Redis, then cancel every working order on every venue.

    Idempotent: a repeat keeps the first latch and cancels whatever is still working. Cancels that fail
    are listed in ``failed`` (the caller raises so the invoke is retried); the latch stays either way.
    """
    from concurrent.futures import ThreadPoolExecutor

    state = store.latch_kill_switch(reason, clock.now(), by)
    mirror.mirror(state)
    working: list[tuple[str, Venue, OrderRecord]] = []
    unreachable: list[str] = []
    for name, venue in venues.items():
        try:
            working += [(name, venue, o) for o in venue.fetch_open_orders()]
        except (RetryableVenueError, PermanentVenueError):
            unreachable.append(f"{name}:*")  # the latch holds; the retried invoke lists this venue again

    def one(item: tuple[str, Venue, OrderRecord]) -> tuple[str, OrderRecord | None]:
        name, venue, order = item
        try:
            return f"{name}:{order.client_order_id}", venue.cancel_order(order.symbol, order.client_order_id)
        except (RetryableVenueError, PermanentVenueError):
            return f"{name}:{order.client_order_id}", None

    with ThreadPoolExecutor(max_workers=max(1, min(workers, len(working)))) as pool:
        results = list(pool.map(one, working))
    for _, record in results:
        if record is not None and record.client_order_id.count("-"):
            store.upsert_order(record)
    cancelled = tuple(key for key, record in results if record is not None)
    failed = tuple(unreachable) + tuple(key for key, record in results if record is None)
    alerts.publish("Kill switch latched", f"{reason} (by {by}): {len(cancelled)} cancelled, {len(failed)} failed")
    return KillSwitchOutcome(state, cancelled, failed)


def release_kill_switch(
    by: str, reason: str, *, store: OrderStore, mirror: KillSwitchMirror, clock: Clock
) -> KillSwitchState:
    """An operator's explicit release: PostgreSQL first, then the mirror (``KillSwitchNotLatched`` if not latched)."""
    state: KillSwitchState = store.release_kill_switch(clock.now(), by, reason=reason)
    mirror.mirror(state)
    return state
