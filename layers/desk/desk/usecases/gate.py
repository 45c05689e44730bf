"""The pre-trade gate's view of the world, assembled in one place for every caller.

:func:`desk.domain.controls.check_order` is pure; this module reads what it judges against. The API
(a first, cheap pass on ``POST /orders/submit``) and the order tasks (the plan's Validate step and
every child order before it is sent) differ only in where the quote, the instrument and equity come
from, so those are passed in and everything else is read here the same way:

* positions and working orders of the order's venue, from the ledger: positions from the store's
  fold of the fills (the ``positions`` view), working orders with their own fills only (an order whose
  recorded fills cover it is no longer working), so a check never reads the whole fill history;
* marks: the quote's mid for the order's symbol; every other symbol held or worked at its latest daily
  close of the last week, else (a position only) at its average entry price;
* average daily volume: the mean of the last 30 daily bars' volume (``None`` without bars: refused);
* recent intents: orders the desk sent within ``duplicate_window`` (refused ones excluded), keyed by
  :func:`strategy_key`; slices of the order's own plan are not duplicates of each other;
* order messages in the last second and minute: orders sent plus cancels requested in the window;
* correlation clusters: the newest ``config.cluster_timeframe`` / ``config.cluster_method`` snapshot;
* the kill switch: PostgreSQL's latch, or the Redis mirror's when the caller has one.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Protocol

from desk.domain.controls_config import GateConfig, GateContext, OrderActivity, OrderRequest, QuoteLike, RecentIntent
from desk.domain.errors import InvalidClientOrderId
from desk.domain.ids import parse_client_order_id
from desk.domain.instruments import DECIMAL_CONTEXT, Instrument, decimal_sum
from desk.domain.orders import Fill, Order, OrderState
from desk.schemas.analytics import CorrelationSnapshot
from desk.schemas.market import Bar
from desk.schemas.trading import ExecutionPlan, OrderRecord, PositionRecord

__all__ = ["GateStore", "MarketView", "gate_context", "strategy_key"]

_ADV_DAYS = 30
_MARK_AGE = timedelta(days=7)  # a daily close older than this is no mark; the entry price stands in
_SECOND, _MINUTE = timedelta(seconds=1), timedelta(minutes=1)


class GateStore(Protocol):
    """What the gate reads from the store (``PostgresStore`` satisfies it)."""

    def fills_for_orders(self, client_order_ids: Sequence[str]) -> Sequence[Fill]: ...
    def positions(
        self, as_of: datetime, venue: str | None = None, symbol: str | None = None
    ) -> Sequence[PositionRecord]: ...
    def open_orders(self, venue: str | None = None) -> Sequence[OrderRecord]: ...
    def order_activity(self, since: datetime, until: datetime) -> Sequence[OrderActivity]: ...
    def load_bars(self, venue: str, symbol: str, timeframe: str, start: datetime, end: datetime) -> Sequence[Bar]: ...
    def latest_correlation(
        self, timeframe: str, method: str, window: int | None = None
    ) -> CorrelationSnapshot | None: ...


@dataclass(frozen=True)
class MarketView:
    """What differs between callers: the reference quote, the venue's instrument, equity, the latch."""

    quote: QuoteLike | None
    instrument: Instrument | None
    equity: Decimal
    kill_switch_latched: bool


def strategy_key(plan: ExecutionPlan) -> str:
    """What the duplicate check calls a plan's strategy: its ``strategy``, else its signal id, else its id.

    The store's :meth:`~desk.store.trading.TradingRepository.order_activity` applies the same rule in SQL.
    """
    return plan.strategy or plan.signal_id or plan.plan_id


def _plan_of(client_order_id: str) -> str | None:
    try:
        return parse_client_order_id(client_order_id)[0]
    except InvalidClientOrderId:
        return None


def working_order(record: OrderRecord, fills: Iterable[Fill]) -> Order | None:
    """A working order as the gate sees it, its state made consistent with the fills recorded so far."""
    own = tuple(f for f in fills if f.client_order_id == record.client_order_id)
    filled = decimal_sum(f.quantity for f in own)
    if filled >= record.quantity:
        return None  # filled at the venue, not yet closed in the ledger: no longer working
    state = record.state
    if state is not OrderState.PENDING_CANCEL:
        state = OrderState.PARTIALLY_FILLED if own else OrderState.ACCEPTED
    return record.to_domain(own, state=state)


def _recent(
    activity: Sequence[OrderActivity], request: OrderRequest, now: datetime, window: timedelta
) -> list[RecentIntent]:
    own_plan = _plan_of(request.client_order_id)
    return [
        RecentIntent(a.client_order_id, a.strategy, a.symbol, a.side, a.quantity, a.created_at)
        for a in activity
        if now - a.created_at < window and (own_plan is None or _plan_of(a.client_order_id) != own_plan)
    ]


def _messages(activity: Sequence[OrderActivity], now: datetime, window: timedelta) -> int:
    sent = sum(1 for a in activity if now - a.created_at < window)
    cancels = sum(1 for a in activity if a.cancel_requested_at is not None and now - a.cancel_requested_at < window)
    return sent + cancels


def gate_context(
    request: OrderRequest, market: MarketView, *, store: GateStore, config: GateConfig, now: datetime
) -> GateContext:
    """Everything :func:`~desk.domain.controls.check_order` needs to judge ``request`` at ``now``."""
    held = {p.symbol: p for p in store.positions(now, venue=request.venue)}
    records = list(store.open_orders(request.venue))
    fills = store.fills_for_orders([r.client_order_id for r in records])
    working = [o for r in records if (o := working_order(r, fills)) is not None]
    quantities = {request.symbol: Decimal(0)} | {s: p.quantity for s, p in held.items()}
    marks: dict[str, Decimal] = {}
    for symbol in sorted(set(quantities) | {o.symbol for o in working}):
        recent = store.load_bars(request.venue, symbol, "1d", now - _MARK_AGE, now)
        if recent:
            marks[symbol] = recent[-1].close
        elif symbol in held and held[symbol].average_price > 0:
            marks[symbol] = held[symbol].average_price
    if market.quote is not None:
        marks[request.symbol] = DECIMAL_CONTEXT.divide(DECIMAL_CONTEXT.add(market.quote.bid, market.quote.ask), 2)
    bars = store.load_bars(request.venue, request.symbol, "1d", now - timedelta(days=_ADV_DAYS), now)
    adv = DECIMAL_CONTEXT.divide(decimal_sum(b.volume for b in bars), len(bars)) if bars else None
    activity = store.order_activity(now - max(config.duplicate_window, _MINUTE), now)
    return GateContext(
        now=now,
        instrument=market.instrument,
        quote=market.quote,
        equity=market.equity,
        average_daily_volume=adv,
        positions=quantities,
        marks=marks,
        open_orders=working,
        recent_intents=_recent(activity, request, now, config.duplicate_window),
        messages_last_second=_messages(activity, now, _SECOND),
        messages_last_minute=_messages(activity, now, _MINUTE),
        kill_switch_latched=market.kill_switch_latched,
        correlation=store.latest_correlation(config.cluster_timeframe, config.cluster_method),
    )
