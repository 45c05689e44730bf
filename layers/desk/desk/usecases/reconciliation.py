"""Reconciliation runs: the venue's orders, fills and balances against the ledger; repair, alert, latch.

One run is four steps (the tasks of ``statemachines/reconciliation.asl.json``; :func:`reconcile_venue`
runs them in one call). Each step's output is a JSON-ready model, so Step Functions carries it.

1. :func:`take_snapshot` reads the venue (open orders, every order the ledger thinks is working looked
   up by client order id, fills since ``now - lookback`` for every symbol in scope, balances) and the
   ledger (those orders, its fills, the opening balances of the last consistent run).
2. :func:`diff` is :func:`desk.domain.reconciliation.reconcile` (pure) plus what the repairs need.
3. :func:`repair` records missing fills as flagged adjustments, moves ledger orders forward (final
   states, filled quantities), adopts or cancels orphans. Every write is idempotent, so a retried
   task is safe.
4. :func:`record` stores the run, alerts on drift, and latches the kill switch when drift has survived
   ``kill_switch_threshold`` consecutive runs. :func:`record_failure` stores a ``failed`` run and alerts.

Balances: the ledger holds fills, not deposits. A consistent run (clean or repaired) stores an
*opening* per currency = venue totals - the balance effects of every ledger fill after its repairs;
the next run expects opening + effects of every ledger fill. A read racing a fill can make one run
inconsistent (which does not move the opening); it cannot leave a lasting error. The first run of a
venue compares no balances. Positions are not compared: on a spot venue they are balances.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from desk.domain.instruments import DECIMAL_CONTEXT, decimal_sum
from desk.domain.orders import Fill
from desk.domain.reconciliation import (
    Action,
    AdoptOrphan,
    CancelOrphan,
    LedgerView,
    MarkOrderFinal,
    OrderSnapshot,
    OrphanPolicy,
    ReconciliationConfig,
    RecordAdjustmentFill,
    VenueReport,
    apply_actions,
    reconcile,
    should_latch_kill_switch,
)
from desk.ports import Alerts, Clock, Venue
from desk.schemas.base import UtcDatetime
from desk.schemas.trading import KillSwitchState, OrderRecord

__all__ = [
    "AUTHOR",
    "Diff",
    "ReconciliationLedger",
    "RepairSummary",
    "RunConfig",
    "RunOutcome",
    "RunRecord",
    "RunState",
    "Snapshot",
    "decode_actions",
    "diff",
    "encode_actions",
    "reconcile_venue",
    "record",
    "record_failure",
    "repair",
    "take_snapshot",
]

AUTHOR = "reconciliation"  # who latches the kill switch
_CONSISTENT = ("clean", "repaired")
_RUNS_SEARCHED = 50  # how far back the last consistent run's opening balances are looked for
Amounts = dict[str, Decimal]
Status = Literal["clean", "repaired", "drift", "failed"]


@dataclass(frozen=True, slots=True)
class RunRecord:
    """One stored run; the fields of ``desk.store.ReconciliationRun`` (use cases cannot import the store)."""

    run_id: str
    venue: str
    started_at: datetime
    finished_at: datetime
    status: Status
    drift_count: int = 0
    details: Mapping[str, Any] = field(default_factory=dict)


class StoredRun(Protocol):
    @property
    def status(self) -> str: ...
    @property
    def details(self) -> Mapping[str, Any]: ...


class ReconciliationLedger(Protocol):
    """The part of the store reconciliation uses (``PostgresStore`` implements it)."""

    def open_orders(self, venue: str | None = None) -> Sequence[OrderRecord]: ...
    def load_order(self, client_order_id: str) -> OrderRecord | None: ...
    def upsert_order(self, order: OrderRecord) -> None: ...
    def load_fills(
        self, venue: str | None = None, symbol: str | None = None, since: datetime | None = None
    ) -> Sequence[Fill]: ...
    def record_fill(self, fill: Fill, *, adjustment: bool = False) -> bool: ...
    def record_reconciliation_run(self, run: Any) -> bool: ...
    def recent_reconciliation_runs(self, venue: str, limit: int = 10) -> Sequence[StoredRun]: ...
    def consecutive_drift_runs(self, venue: str, limit: int = 10) -> int: ...
    def latch_kill_switch(self, reason: str, at: datetime, by: str) -> KillSwitchState: ...


class _Wire(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class RunConfig(_Wire):
    """Per-environment settings (the ASL's substitutions arrive as strings; pydantic parses them)."""

    orphan_policy: OrphanPolicy = OrphanPolicy.CANCEL
    fills_lookback_minutes: int = Field(default=1440, gt=0)
    balance_tolerance: Decimal = Field(default=Decimal(0), ge=0)
    kill_switch_threshold: int = Field(default=3, ge=1)
    settle_seconds: int = Field(default=0, ge=0)  # used by the ASL's Wait state only

    def domain(self) -> ReconciliationConfig:
        return ReconciliationConfig(
            orphan_policy=self.orphan_policy,
            balance_tolerance=self.balance_tolerance,
            kill_switch_threshold=self.kill_switch_threshold,
        )


class Snapshot(_Wire):
    """What one run read. ``ledger_fills``: the window's plus those of every order in scope."""

    venue: str
    as_of: UtcDatetime
    fills_since: UtcDatetime
    venue_orders: tuple[OrderSnapshot, ...]
    venue_fills: tuple[Fill, ...]
    venue_balances: Amounts | None
    ledger_orders: tuple[OrderSnapshot, ...]
    ledger_fills: tuple[Fill, ...]
    fill_effects: Amounts  # balance effects of every ledger fill of the venue
    opening: Amounts | None  # from the last consistent run; None: balances are not compared

    def report(self) -> VenueReport:
        return VenueReport(
            self.venue, self.as_of, self.fills_since, self.venue_orders, self.venue_fills, None, self.venue_balances
        )

    def ledger(self) -> LedgerView:
        balances = None if self.opening is None else _add(self.opening, self.fill_effects)
        return LedgerView(self.ledger_orders, self.ledger_fills, None, balances)


class Diff(_Wire):
    status: Literal["clean", "repaired", "drift"]
    has_actions: bool  # a plain boolean: ASL Choice states cannot test array indexes reliably in moto
    actions: tuple[dict[str, Any], ...]
    order_updates: tuple[OrderSnapshot, ...]  # ledger orders the repairs move forward
    drift_count: int
    details: dict[str, Any]
    opening: Amounts | None  # the opening balances this run establishes (consistent runs only)


class RepairSummary(_Wire):
    fills_recorded: int = 0
    orders_updated: int = 0
    orphans_adopted: int = 0
    orphans_cancelled: int = 0


class RunState(BaseModel):
    """The state machine's state as the ``record`` tasks receive it (``"run.$": "$"``)."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    venue: str
    run_id: str
    trigger: str = "manual"
    config: RunConfig = RunConfig()
    snapshot: Snapshot | None = None
    diff: Diff | None = None
    repair: RepairSummary | None = None
    error: dict[str, Any] | None = None


class RunOutcome(_Wire):
    run_id: str
    venue: str
    status: Status
    drift_count: int
    consecutive_drift_runs: int
    latched_kill_switch: bool


# -- wire form of the domain actions --------------------------------------------------------------
_ACTIONS: dict[str, TypeAdapter[Any]] = {
    c.__name__: TypeAdapter(c) for c in (RecordAdjustmentFill, AdoptOrphan, MarkOrderFinal, CancelOrphan)
}


def encode_actions(actions: Iterable[Action]) -> tuple[dict[str, Any], ...]:
    return tuple({"kind": type(a).__name__} | _ACTIONS[type(a).__name__].dump_python(a, mode="json") for a in actions)


def decode_actions(raw: Iterable[Mapping[str, Any]]) -> tuple[Action, ...]:
    decoded = []
    for item in raw:
        body = {k: v for k, v in item.items() if k != "kind"}
        decoded.append(_ACTIONS[str(item["kind"])].validate_python(body))
    return tuple(decoded)


# -- arithmetic -----------------------------------------------------------------------------------
def _add(base: Mapping[str, Decimal], other: Mapping[str, Decimal], sign: int = 1) -> Amounts:
    out = {}
    for key in set(base) | set(other):
        delta = other.get(key, Decimal(0))
        out[key] = DECIMAL_CONTEXT.add(base.get(key, Decimal(0)), delta if sign > 0 else -delta)
    return out


def _effects(fills: Iterable[Fill]) -> Amounts:
    """Balance effects of ``fills`` (the domain's rule, through its public API)."""
    view = apply_actions(LedgerView(balances={}), [RecordAdjustmentFill(f) for f in fills])
    return dict(view.balances or {})


def _average_price(fills: Sequence[Fill]) -> Decimal | None:
    quantity = decimal_sum(f.quantity for f in fills)
    return None if not quantity else DECIMAL_CONTEXT.divide(decimal_sum(f.notional for f in fills), quantity)


# -- 1. snapshot ----------------------------------------------------------------------------------
def _opening(store: ReconciliationLedger, venue: str) -> Amounts | None:
    for run in store.recent_reconciliation_runs(venue, _RUNS_SEARCHED):
        opening = run.details.get("opening") if run.status in _CONSISTENT else None
        if opening is not None:
            return {k: Decimal(str(v)) for k, v in opening.items()}
    return None


def take_snapshot(
    venue_name: str,
    config: RunConfig,
    *,
    venue: Venue,
    store: ReconciliationLedger,
    clock: Clock,
    symbols: Iterable[str] = (),
) -> Snapshot:
    as_of = clock.now()
    since = as_of - timedelta(minutes=config.fills_lookback_minutes)
    ledger_open = {o.client_order_id: o for o in store.open_orders(venue_name)}
    venue_open = {o.client_order_id: o for o in venue.fetch_open_orders()}
    for cid, order in ledger_open.items():  # the venue's view of every order the ledger thinks is working
        if cid not in venue_open and (found := venue.fetch_order_by_client_id(order.symbol, cid)) is not None:
            venue_open[cid] = found
    ledger_orders = dict(ledger_open)
    for cid in venue_open.keys() - ledger_open.keys():  # a working venue order the ledger finished is drift
        if (known := store.load_order(cid)) is not None:
            ledger_orders[cid] = known
    all_fills = store.load_fills(venue=venue_name)
    in_scope = set(ledger_orders) | set(venue_open)
    ledger_fills = [f for f in all_fills if f.occurred_at >= since or f.client_order_id in in_scope]
    wanted = set(symbols) | {o.symbol for o in (*ledger_orders.values(), *venue_open.values())}
    wanted |= {f.symbol for f in all_fills if f.occurred_at >= since}
    venue_fills = [fill for symbol in sorted(wanted) for fill in venue.fetch_fills(since, symbol)]
    balances = {currency: b.total for currency, b in venue.fetch_balances().items()}
    return Snapshot(
        venue=venue_name,
        as_of=as_of,
        fills_since=since,
        venue_orders=tuple(OrderSnapshot.of(o) for o in venue_open.values()),
        venue_fills=tuple(venue_fills),
        venue_balances=balances,
        ledger_orders=tuple(OrderSnapshot.of(o) for o in ledger_orders.values()),
        ledger_fills=tuple(ledger_fills),
        fill_effects=_effects(all_fills),
        opening=_opening(store, venue_name),
    )


# -- 2. diff (pure) -------------------------------------------------------------------------------
def diff(snapshot: Snapshot, config: RunConfig) -> Diff:
    ledger = snapshot.ledger()
    result = reconcile(snapshot.report(), ledger, config.domain())
    before = {o.client_order_id: o for o in ledger.orders}
    after = apply_actions(ledger, result.actions)
    updates = tuple(o for o in after.orders if o.client_order_id in before and o != before[o.client_order_id])
    opening = None
    if snapshot.venue_balances is not None and result.status.value in _CONSISTENT:
        adjustments = [a.fill for a in result.actions if isinstance(a, RecordAdjustmentFill)]
        opening = _add(snapshot.venue_balances, _add(snapshot.fill_effects, _effects(adjustments)), sign=-1)
    return Diff(
        status=result.status.value,
        has_actions=bool(result.actions),
        actions=encode_actions(result.actions),
        order_updates=updates,
        drift_count=result.drift_count,
        details=result.details(),
        opening=opening,
    )


# -- 3. repair ------------------------------------------------------------------------------------
def repair(
    venue_name: str, the_diff: Diff, *, venue: Venue, store: ReconciliationLedger, clock: Clock
) -> RepairSummary:
    actions = decode_actions(the_diff.actions)
    fills = [a.fill for a in actions if isinstance(a, RecordAdjustmentFill)]
    recorded = sum(store.record_fill(f, adjustment=True) for f in fills)
    adopted = cancelled = 0
    for action in actions:
        if isinstance(action, AdoptOrphan):
            # The venue's full record (type, price, venue id): the diff carries only the snapshot.
            found = venue.fetch_order_by_client_id(action.order.symbol, action.order.client_order_id)
            if found is not None:
                store.upsert_order(found)
                adopted += 1
    updated = 0
    for update in the_diff.order_updates:
        current = store.load_order(update.client_order_id)
        if current is None or (current.state, current.filled_quantity) == (update.state, update.filled_quantity):
            continue
        own = [f for f in store.load_fills(venue_name, current.symbol) if f.client_order_id == current.client_order_id]
        moved = current.model_dump() | {
            "state": update.state,
            "filled_quantity": update.filled_quantity,
            "average_price": _average_price(own) if update.filled_quantity else None,
            "updated_at": max(clock.now(), current.updated_at),
        }
        store.upsert_order(OrderRecord.model_validate(moved))
        updated += 1
    for action in actions:
        if isinstance(action, CancelOrphan):
            venue.cancel_order(action.order.symbol, action.order.client_order_id)
            cancelled += 1
    return RepairSummary(
        fills_recorded=recorded, orders_updated=updated, orphans_adopted=adopted, orphans_cancelled=cancelled
    )


# -- 4. record ------------------------------------------------------------------------------------
def _drift_keys(details: Mapping[str, Any]) -> set[tuple[str, str]]:
    return {(d["kind"], d["key"]) for d in details.get("drift", ())}


def _drift_text(details: Mapping[str, Any]) -> str:
    lines = [f"- {d['kind']} {d['key']}: {d['message']}" for d in details.get("drift", ())]
    return "\n".join(lines) or "(none)"


def _outcome(
    state: RunState, status: Status, drift: int = 0, consecutive: int = 0, *, latched: bool = False
) -> RunOutcome:
    return RunOutcome(
        run_id=state.run_id,
        venue=state.venue,
        status=status,
        drift_count=drift,
        consecutive_drift_runs=consecutive,
        latched_kill_switch=latched,
    )


def record(state: RunState, *, store: ReconciliationLedger, clock: Clock, alerts: Alerts) -> RunOutcome:
    """Store the run; alert on drift; latch the kill switch once drift has survived the threshold."""
    if state.snapshot is None or state.diff is None:
        raise ValueError("record needs the run's snapshot and diff")
    d, venue = state.diff, state.venue
    details: dict[str, Any] = dict(d.details) | {"trigger": state.trigger, "as_of": state.snapshot.as_of.isoformat()}
    if state.repair is not None:
        details["repairs"] = state.repair.model_dump()
    if d.opening is not None:
        details["opening"] = {k: str(v) for k, v in d.opening.items()}
    finished = max(clock.now(), state.snapshot.as_of)
    run = RunRecord(state.run_id, venue, state.snapshot.as_of, finished, d.status, d.drift_count, details)
    store.record_reconciliation_run(run)
    if d.status != "drift":
        return _outcome(state, d.status)
    consecutive = store.consecutive_drift_runs(venue)
    text = _drift_text(d.details)
    # One alert per distinct drift, not one a minute: the ReconciliationDrift metric tracks persistence.
    runs = store.recent_reconciliation_runs(venue, 2)
    before = _drift_keys(runs[1].details) if consecutive > 1 and len(runs) > 1 else None
    if _drift_keys(d.details) != before:
        alerts.publish(
            f"Reconciliation drift on {venue} ({d.drift_count})",
            f"Run {state.run_id}: {d.drift_count} unrepaired difference(s), {consecutive} run(s) in a row.\n{text}",
        )
    latched = False
    if should_latch_kill_switch(consecutive, state.config.kill_switch_threshold):
        reason = f"reconciliation drift on {venue} survived {consecutive} consecutive runs (last {state.run_id})"
        # Idempotent: an already latched switch keeps its first reason, and this run alerts nothing more.
        latched = store.latch_kill_switch(reason, finished, AUTHOR).reason == reason
        if latched:
            alerts.publish(f"Kill switch latched: reconciliation drift on {venue}", f"{reason}\n{text}")
    return _outcome(state, "drift", d.drift_count, consecutive, latched=latched)


def record_failure(state: RunState, *, store: ReconciliationLedger, clock: Clock, alerts: Alerts) -> RunOutcome:
    """Store a ``failed`` run (it breaks a drift streak: nothing was compared) and alert."""
    error = dict(state.error or {})
    name, cause = str(error.get("Error", "Unknown")), str(error.get("Cause", ""))
    now = clock.now()
    started = state.snapshot.as_of if state.snapshot is not None and state.snapshot.as_of <= now else now
    details = {"trigger": state.trigger, "error": name, "cause": cause[:2000]}
    store.record_reconciliation_run(RunRecord(state.run_id, state.venue, started, now, "failed", 0, details))
    alerts.publish(f"Reconciliation failed on {state.venue}: {name}", f"Run {state.run_id} failed.\n{cause[:4000]}")
    return _outcome(state, "failed")


def reconcile_venue(
    venue_name: str,
    run_id: str,
    config: RunConfig,
    *,
    venue: Venue,
    store: ReconciliationLedger,
    clock: Clock,
    alerts: Alerts,
    symbols: Iterable[str] = (),
    trigger: str = "manual",
) -> RunOutcome:
    """One whole run without the state machine (on demand, tests). An error is recorded, then re-raised."""
    state = RunState(venue=venue_name, run_id=run_id, trigger=trigger, config=config)
    try:
        snapshot = take_snapshot(venue_name, config, venue=venue, store=store, clock=clock, symbols=symbols)
        state = state.model_copy(update={"snapshot": snapshot, "diff": diff(snapshot, config)})
        assert state.diff is not None  # noqa: S101 - set on the line above
        if state.diff.has_actions:
            summary = repair(venue_name, state.diff, venue=venue, store=store, clock=clock)
            state = state.model_copy(update={"repair": summary})
        return record(state, store=store, clock=clock, alerts=alerts)
    except Exception as exc:
        failed = state.model_copy(update={"error": {"Error": type(exc).__name__, "Cause": str(exc)}})
        record_failure(failed, store=store, clock=clock, alerts=alerts)
        raise
