"""Reconciliation: the venue's report against the ledger, as a pure diff into repairs and drift.

Conventions
-----------
* The venue is the truth for orders and fills. What the ledger lacks is repaired; what the ledger
  has and the venue does not is never deleted: it is drift, for a human.
* Repairs (:data:`Action`), in the order they should be applied:
  - :class:`RecordAdjustmentFill`: a venue fill the ledger lacks (recorded with ``adjustment=True``);
  - :class:`AdoptOrphan`: a working venue order the ledger does not know, whose client order id
    parses as ours (:func:`~desk.domain.orders.parse_client_order_id`), when the policy is ADOPT;
  - :class:`MarkOrderFinal`: an order the venue finished while the ledger thinks it is working,
    with the venue's terminal state and filled quantity;
  - :class:`CancelOrphan`: any other working orphan (a venue call; the ledger is unchanged).
* Drift (:class:`Drift`): ledger fills inside the venue's fill window that the venue does not know
  (phantom fills), fills that conflict under one key, orders whose states contradict (the ledger
  finished what the venue still works, or the two disagree on a finished order), working ledger
  orders the venue does not report, filled quantities the fills cannot explain, and position or
  balance differences left after the repairs (``amount`` = venue − ledger after repairs).
* Scope: only the report's venue. ``VenueReport.orders`` must hold the venue's working orders plus
  every order the ledger thinks is working (looked up by client order id); the venue's fills are
  those at or after ``fills_since``, and only ledger fills in that window can be phantom. Finished
  venue orders unknown to the ledger are ignored (their fills arrive as adjustment fills).
* Balances: an adjustment fill on ``BASE/QUOTE`` moves BASE by its signed quantity, QUOTE by minus
  its signed notional, and its fee currency by minus its fee; symbols without a ``/`` move no
  balance. ``positions`` / ``balances`` that are ``None`` on either side are not compared.
* Idempotent: applying the actions (:func:`apply_actions` for the ledger side, the cancels at the
  venue) and reconciling again yields no actions.
* The kill switch latches when drift survives ``threshold`` consecutive runs
  (:func:`should_latch_kill_switch`, fed by ``ControlsRepository.consecutive_drift_runs``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from types import MappingProxyType
from typing import Any, Protocol

from desk.domain.errors import InvalidClientOrderId
from desk.domain.instruments import DECIMAL_CONTEXT, as_decimal, decimal_sum, to_venue_string
from desk.domain.orders import Fill, OrderState, Side, parse_client_order_id, require_aware

__all__ = [
    "Action",
    "AdoptOrphan",
    "CancelOrphan",
    "Drift",
    "DriftKind",
    "LedgerView",
    "MarkOrderFinal",
    "OrderSnapshot",
    "OrderView",
    "OrphanPolicy",
    "ReconciliationConfig",
    "ReconciliationResult",
    "ReconciliationStatus",
    "RecordAdjustmentFill",
    "VenueReport",
    "apply_actions",
    "reconcile",
    "should_latch_kill_switch",
]

_CTX = DECIMAL_CONTEXT
_ZERO = Decimal(0)


class OrphanPolicy(StrEnum):
    CANCEL = "cancel"  # cancel every working orphan
    ADOPT = "adopt"  # adopt orphans with our client order ids, cancel the rest


class ReconciliationStatus(StrEnum):
    """The values ``ControlsRepository.record_reconciliation_run`` stores."""

    CLEAN = "clean"
    REPAIRED = "repaired"
    DRIFT = "drift"


class DriftKind(StrEnum):
    PHANTOM_FILL = "phantom_fill"
    FILL_CONFLICT = "fill_conflict"
    ORDER_CONFLICT = "order_conflict"
    UNKNOWN_AT_VENUE = "order_unknown_at_venue"
    FILL_GAP = "fill_gap"
    POSITION = "position_mismatch"
    BALANCE = "balance_mismatch"


class OrderView(Protocol):
    """What reconciliation reads from an order (``OrderRecord`` and ``Order`` satisfy it)."""

    @property
    def client_order_id(self) -> str: ...
    @property
    def venue(self) -> str: ...
    @property
    def symbol(self) -> str: ...
    @property
    def side(self) -> Side: ...
    @property
    def quantity(self) -> Decimal: ...
    @property
    def state(self) -> OrderState: ...
    @property
    def filled_quantity(self) -> Decimal: ...


@dataclass(frozen=True, slots=True)
class OrderSnapshot:
    """One side's view of an order."""

    client_order_id: str
    venue: str
    symbol: str
    side: Side
    quantity: Decimal
    state: OrderState
    filled_quantity: Decimal = _ZERO

    def __post_init__(self) -> None:
        object.__setattr__(self, "side", Side(self.side))
        object.__setattr__(self, "state", OrderState(self.state))
        object.__setattr__(self, "quantity", as_decimal(self.quantity, "quantity", allow_zero=False))
        object.__setattr__(self, "filled_quantity", as_decimal(self.filled_quantity, "filled_quantity"))

    @classmethod
    def of(cls, order: OrderView) -> OrderSnapshot:
        return cls(
            order.client_order_id,
            order.venue,
            order.symbol,
            order.side,
            order.quantity,
            order.state,
            order.filled_quantity,
        )


def _frozen(mapping: Mapping[str, Decimal] | None) -> Mapping[str, Decimal] | None:
    return None if mapping is None else MappingProxyType(dict(mapping))


@dataclass(frozen=True, slots=True)
class VenueReport:
    """What the venue said at ``as_of``: orders (see the module docstring), fills since ``fills_since``,
    signed positions by symbol and total balances by currency."""

    venue: str
    as_of: datetime
    fills_since: datetime
    orders: Sequence[OrderSnapshot] = ()
    fills: Sequence[Fill] = ()
    positions: Mapping[str, Decimal] | None = None
    balances: Mapping[str, Decimal] | None = None

    def __post_init__(self) -> None:
        require_aware(self.as_of, "as_of")
        require_aware(self.fills_since, "fills_since")
        object.__setattr__(self, "orders", tuple(self.orders))
        object.__setattr__(self, "fills", tuple(self.fills))
        object.__setattr__(self, "positions", _frozen(self.positions))
        object.__setattr__(self, "balances", _frozen(self.balances))


@dataclass(frozen=True, slots=True)
class LedgerView:
    """What the ledger holds: orders, fills, signed positions by symbol, expected balances by currency."""

    orders: Sequence[OrderSnapshot] = ()
    fills: Sequence[Fill] = ()
    positions: Mapping[str, Decimal] | None = None
    balances: Mapping[str, Decimal] | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "orders", tuple(self.orders))
        object.__setattr__(self, "fills", tuple(self.fills))
        object.__setattr__(self, "positions", _frozen(self.positions))
        object.__setattr__(self, "balances", _frozen(self.balances))


@dataclass(frozen=True, slots=True)
class ReconciliationConfig:
    orphan_policy: OrphanPolicy = OrphanPolicy.CANCEL
    position_tolerance: Decimal = _ZERO  # absolute, base units
    balance_tolerance: Decimal = _ZERO  # absolute, per currency
    kill_switch_threshold: int = 3


@dataclass(frozen=True, slots=True)
class RecordAdjustmentFill:
    fill: Fill


@dataclass(frozen=True, slots=True)
class AdoptOrphan:
    order: OrderSnapshot


@dataclass(frozen=True, slots=True)
class MarkOrderFinal:
    client_order_id: str
    state: OrderState
    filled_quantity: Decimal


@dataclass(frozen=True, slots=True)
class CancelOrphan:
    order: OrderSnapshot


Action = RecordAdjustmentFill | AdoptOrphan | MarkOrderFinal | CancelOrphan


@dataclass(frozen=True, slots=True)
class Drift:
    """An unrepaired difference: ``key`` names what differs (a fill key, an order id, a symbol, a currency)."""

    kind: DriftKind
    key: str
    message: str
    amount: Decimal | None = None


@dataclass(frozen=True, slots=True)
class ReconciliationResult:
    actions: tuple[Action, ...]
    drift: tuple[Drift, ...]
    status: ReconciliationStatus = field(init=False)

    def __post_init__(self) -> None:
        if self.drift:
            status = ReconciliationStatus.DRIFT
        else:
            status = ReconciliationStatus.REPAIRED if self.actions else ReconciliationStatus.CLEAN
        object.__setattr__(self, "status", status)

    @property
    def drift_count(self) -> int:
        return len(self.drift)

    def details(self) -> dict[str, Any]:
        """JSON-ready summary for ``ReconciliationRun.details``."""
        counts: dict[str, int] = {}
        for action in self.actions:
            counts[type(action).__name__] = counts.get(type(action).__name__, 0) + 1
        drift = [
            {"kind": d.kind.value, "key": d.key, "message": d.message}
            | ({} if d.amount is None else {"amount": to_venue_string(d.amount)})
            for d in self.drift
        ]
        return {"actions": counts, "drift": drift}


def should_latch_kill_switch(consecutive_drift_runs: int, threshold: int = 3) -> bool:
    """True once drift has survived ``threshold`` consecutive runs (the count includes this run)."""
    if threshold < 1:
        raise ValueError("threshold must be at least 1")
    return consecutive_drift_runs >= threshold


def _is_ours(client_order_id: str) -> bool:
    try:
        parse_client_order_id(client_order_id)
    except InvalidClientOrderId:
        return False
    return True


def reconcile(venue: VenueReport, ledger: LedgerView, config: ReconciliationConfig) -> ReconciliationResult:
    """Diff ``venue`` against ``ledger``: repairs for what the ledger lacks, drift for the rest. Pure."""
    actions: list[Action] = []
    drift: list[Drift] = []
    ledger_fills = {f.key: f for f in ledger.fills if f.venue == venue.venue}
    venue_fills = {f.key: f for f in venue.fills}
    adjustments: list[Fill] = []
    for key, fill in sorted(venue_fills.items()):
        known = ledger_fills.get(key)
        if known is None:
            adjustments.append(fill)
        elif known != fill:
            drift.append(Drift(DriftKind.FILL_CONFLICT, "/".join(key), f"fill {key} differs between venue and ledger"))
    actions.extend(RecordAdjustmentFill(f) for f in adjustments)
    for key, fill in sorted(ledger_fills.items()):
        if key not in venue_fills and fill.occurred_at >= venue.fills_since:
            message = f"ledger fill {key} ({fill.side} {fill.quantity} {fill.symbol}) unknown to the venue"
            drift.append(Drift(DriftKind.PHANTOM_FILL, "/".join(key), message, fill.signed_quantity))

    all_fills = list(ledger_fills.values()) + adjustments
    actions_orders, order_drift = _diff_orders(venue, ledger, config, all_fills)
    actions.extend(actions_orders)
    drift.extend(order_drift)

    if venue.positions is not None and ledger.positions is not None:
        expected = _add(ledger.positions, _position_effects(adjustments))
        drift.extend(_mismatches(DriftKind.POSITION, venue.positions, expected, config.position_tolerance))
    if venue.balances is not None and ledger.balances is not None:
        expected = _add(ledger.balances, _balance_effects(adjustments))
        drift.extend(_mismatches(DriftKind.BALANCE, venue.balances, expected, config.balance_tolerance))
    return ReconciliationResult(tuple(actions), tuple(drift))


def _diff_orders(
    venue: VenueReport, ledger: LedgerView, config: ReconciliationConfig, fills: Sequence[Fill]
) -> tuple[list[Action], list[Drift]]:
    filled_by_order: dict[str, Decimal] = {}
    for fill in fills:
        filled_by_order[fill.client_order_id] = _CTX.add(
            filled_by_order.get(fill.client_order_id, _ZERO), fill.quantity
        )
    ours = {o.client_order_id: o for o in ledger.orders if o.venue == venue.venue}
    theirs = {o.client_order_id: o for o in venue.orders}
    adopt: list[Action] = []
    finals: list[Action] = []
    cancels: list[Action] = []
    drift: list[Drift] = []
    for cid, v in sorted(theirs.items()):
        known = ours.get(cid)
        if known is None:
            if v.state.is_terminal:
                continue
            adoptable = config.orphan_policy is OrphanPolicy.ADOPT and _is_ours(cid)
            (adopt if adoptable else cancels).append(AdoptOrphan(v) if adoptable else CancelOrphan(v))
            continue
        explained = filled_by_order.get(cid, _ZERO)
        if v.filled_quantity != explained:
            message = f"order {cid}: venue filled {v.filled_quantity}, fills explain {explained}"
            drift.append(Drift(DriftKind.FILL_GAP, cid, message, _CTX.subtract(v.filled_quantity, explained)))
            continue
        if v.state.is_terminal and not known.state.is_terminal:
            finals.append(MarkOrderFinal(cid, v.state, v.filled_quantity))
        elif known.state.is_terminal and v.state != known.state:
            # States only move forward: a finished ledger order cannot be reopened or re-finished.
            message = f"order {cid}: ledger says {known.state}, venue says {v.state}"
            drift.append(Drift(DriftKind.ORDER_CONFLICT, cid, message))
    for cid, known in sorted(ours.items()):
        if cid not in theirs and not known.state.is_terminal:
            message = f"ledger order {cid} ({known.state}) is not reported by {venue.venue}"
            drift.append(Drift(DriftKind.UNKNOWN_AT_VENUE, cid, message))
    return adopt + finals + cancels, drift


def _position_effects(fills: Iterable[Fill]) -> dict[str, Decimal]:
    effects: dict[str, Decimal] = {}
    for fill in fills:
        effects[fill.symbol] = _CTX.add(effects.get(fill.symbol, _ZERO), fill.signed_quantity)
    return effects


def _balance_effects(fills: Iterable[Fill]) -> dict[str, Decimal]:
    effects: dict[str, Decimal] = {}

    def move(currency: str, amount: Decimal) -> None:
        effects[currency] = _CTX.add(effects.get(currency, _ZERO), amount)

    for fill in fills:
        base, slash, quote = fill.symbol.partition(":")[0].partition("/")
        if slash:
            move(base, fill.signed_quantity)
            move(quote, _CTX.minus(_CTX.multiply(fill.signed_quantity, fill.price)))
        if fill.fee_currency is not None and not fill.fee.is_zero():
            move(fill.fee_currency, _CTX.minus(fill.fee))
    return effects


def _add(base: Mapping[str, Decimal], effects: Mapping[str, Decimal]) -> dict[str, Decimal]:
    return {k: _CTX.add(base.get(k, _ZERO), effects.get(k, _ZERO)) for k in set(base) | set(effects)}


def _mismatches(
    kind: DriftKind, truth: Mapping[str, Decimal], expected: Mapping[str, Decimal], tolerance: Decimal
) -> list[Drift]:
    drift = []
    for key in sorted(set(truth) | set(expected)):
        diff = _CTX.subtract(truth.get(key, _ZERO), expected.get(key, _ZERO))
        if abs(diff) > tolerance:
            message = f"{key}: venue {truth.get(key, _ZERO)}, ledger after repairs {expected.get(key, _ZERO)}"
            drift.append(Drift(kind, key, message, diff))
    return drift


def apply_actions(ledger: LedgerView, actions: Iterable[Action]) -> LedgerView:
    """The ledger after the repairs (what the use case writes). ``CancelOrphan`` is a venue call: no change."""
    orders = {o.client_order_id: o for o in ledger.orders}
    fills = {f.key: f for f in ledger.fills}
    added: list[Fill] = []
    for action in actions:
        if isinstance(action, RecordAdjustmentFill) and action.fill.key not in fills:
            fills[action.fill.key] = action.fill
            added.append(action.fill)
        elif isinstance(action, AdoptOrphan):
            orders.setdefault(action.order.client_order_id, action.order)
        elif isinstance(action, MarkOrderFinal):
            order = orders[action.client_order_id]
            if not order.state.is_terminal:
                orders[action.client_order_id] = replace(
                    order, state=action.state, filled_quantity=action.filled_quantity
                )
    # An order's filled quantity is the sum of its fills: the adjustments move it (and NEW/ACCEPTED forward).
    for cid in {f.client_order_id for f in added} & set(orders):
        order = orders[cid]
        filled = decimal_sum(f.quantity for f in fills.values() if f.client_order_id == cid)
        state = order.state
        if state in (OrderState.NEW, OrderState.ACCEPTED) and filled:
            state = OrderState.FILLED if filled == order.quantity else OrderState.PARTIALLY_FILLED
        orders[cid] = replace(order, state=state, filled_quantity=filled)
    positions = None if ledger.positions is None else _add(ledger.positions, _position_effects(added))
    balances = None if ledger.balances is None else _add(ledger.balances, _balance_effects(added))
    return LedgerView(tuple(orders.values()), tuple(fills.values()), positions, balances)
