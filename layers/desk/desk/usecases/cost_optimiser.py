"""Cost optimiser: turn a signal's target into an execution plan and start its order-placement execution.

From a ``signal.generated`` event: cap the target weight (the strategy's ``max_weight`` and fractional
Kelly from the symbol's own returns, :func:`quant.portfolio.kelly`), convert it to a quantity at the
arrival price, subtract the current position (folded from the stored fills), pick the venue
(:func:`quant.routing.choose_venues` over the cached books of the candidate venues), round the change
to the venue's lot (:mod:`desk.domain.instruments`, truncating), cut it into slices (TWAP, VWAP or
Almgren–Chriss from :mod:`quant.execution`) whose Decimal quantities sum exactly to it, and price it
(:func:`quant.costs.estimate_cost`).

Idempotency: the plan id is ``plan_id_from(signal id, strategy)``. A redelivered signal finds its plan
stored and reuses it unchanged (the position may have moved since, so it is never recomputed), and the
execution is started under the plan id as its name, which the :class:`ExecutionStarter` treats as
idempotent: a redelivery never makes a second execution, and a crash between saving and starting is
repaired by the redelivery.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal
from typing import Any

import numpy as np
import pandas as pd

from desk.domain.errors import InvalidOrder
from desk.domain.instruments import DECIMAL_CONTEXT, Instrument, as_decimal
from desk.domain.orders import OrderType, Side, plan_id_from
from desk.domain.positions import position_from_fills
from desk.events import Envelope, new_event
from desk.ports import Clock, EventBus, ExecutionStarter, MarketData, QuoteCache, Store
from desk.schemas.analytics import Signal
from desk.schemas.trading import ExecutionPlan, PlanSlice
from desk.usecases.strategies import StrategySpec, find_strategy
from quant.costs import Market, Order, estimate_cost
from quant.execution import almgren_chriss, twap, vwap
from quant.portfolio import kelly
from quant.routing import choose_venues

__all__ = ["PLAN_EVENT_NAMESPACE", "ExecutionStarter", "MarketDataUnavailable", "PlanOutcome", "optimise"]

PLAN_EVENT_NAMESPACE = uuid.UUID("0c6f0a55-3f0e-4a8e-8f43-2a7f5e1d9b02")
_DAY = timedelta(days=1)


class MarketDataUnavailable(RuntimeError):
    """No price or bars to plan against yet; the message is retried (and ends in the DLQ if it persists)."""


@dataclass(frozen=True)
class PlanOutcome:
    """``plan`` is None when nothing is to be traded (``reason`` says why); ``created`` is False on a redelivery."""

    signal_id: str
    plan: ExecutionPlan | None
    execution_arn: str | None = None
    created: bool = False
    reason: str | None = None

    def summary(self) -> dict[str, Any]:
        plan = self.plan
        return {
            "signal_id": self.signal_id,
            "plan_id": None if plan is None else plan.plan_id,
            "execution_arn": self.execution_arn,
            "created": self.created,
            "reason": self.reason,
        }


@dataclass(frozen=True)
class _Arrival:
    bid: float
    ask: float
    daily_vol: float
    adv: float  # base units per day; 0 when the venue reports no volume
    mu: float  # per-bar mean return
    var: float  # per-bar return variance
    profile: pd.Series  # mean volume by bar time of day, for VWAP


def optimise(
    event: Envelope,
    *,
    store: Store,
    quotes: QuoteCache,
    market_data: Callable[[str], MarketData],
    starter: ExecutionStarter,
    bus: EventBus,
    clock: Clock,
    strategies: Sequence[StrategySpec],
) -> PlanOutcome:
    """Plan the position change ``event``'s signal asks for, store it and start its execution."""
    signal = event.data_as(Signal)
    spec = find_strategy(strategies, signal.strategy)
    if store.kill_switch().latched:
        return PlanOutcome(signal.signal_id, None, reason="kill switch latched")
    plan_id = plan_id_from(signal.signal_id, signal.strategy)
    plan = store.load_plan(plan_id)
    created = False
    if plan is None:
        built = _build_plan(plan_id, signal, spec, store, quotes, market_data, clock)
        if isinstance(built, str):
            return PlanOutcome(signal.signal_id, None, reason=built)
        created = store.save_plan(built)
        # A concurrent delivery may have saved first: the stored plan is the one that runs.
        plan = built if created else (store.load_plan(plan_id) or built)
    arn = starter.start(plan.plan_id, plan.model_dump(mode="json"))
    event_id = str(uuid.uuid5(PLAN_EVENT_NAMESPACE, plan.plan_id))
    bus.publish([new_event("plan.created", plan, clock=clock, correlation_id=event.correlation_id, event_id=event_id)])
    return PlanOutcome(signal.signal_id, plan, arn, created)


def _build_plan(
    plan_id: str,
    signal: Signal,
    spec: StrategySpec,
    store: Store,
    quotes: QuoteCache,
    market_data: Callable[[str], MarketData],
    clock: Clock,
) -> ExecutionPlan | str:
    """The plan, or the reason there is nothing to trade."""
    arrival = _arrival(signal, spec, store, quotes)
    mid = 0.5 * (arrival.bid + arrival.ask)
    weight = _capped_weight(signal.target_weight, spec, arrival)
    target = as_decimal(weight * float(spec.capital) / mid, "target", allow_negative=True)
    current = sum(
        (position_from_fills(store.load_fills(venue=v, symbol=signal.symbol), venue=v, symbol=signal.symbol).quantity)
        for v in spec.venues
    )
    change = DECIMAL_CONTEXT.subtract(target, Decimal(current))
    if change.is_zero():
        return "no change"
    side = Side.BUY if change > 0 else Side.SELL
    listed = {v: m for v in spec.venues if (m := market_data(v).markets().get(signal.symbol)) is not None}
    if not listed:
        raise MarketDataUnavailable(f"no candidate venue of {spec.key} lists {signal.symbol}")
    instruments = {v: m for v, m in listed.items() if m.active}  # a halted venue is no route
    if not instruments:
        return f"{signal.symbol} is halted on every venue of {spec.key} ({', '.join(sorted(listed))})"
    venue = _route(side, float(abs(change)), signal, spec, quotes, instruments)
    instrument = instruments[venue]
    try:
        quantity = instrument.amount_to_precision(abs(change))
        arrival_price = instrument.price_to_precision(mid)
        instrument.check_order(quantity, arrival_price)
    except InvalidOrder as exc:
        return f"change {change} is not tradable on {venue}: {exc}"
    now = clock.now()
    name, weights, times = _schedule(float(quantity), spec, arrival, now)
    slices = _slices(quantity, weights, times, instrument, arrival_price)
    cost = estimate_cost(
        Order(side=side.value, quantity=float(quantity)),
        Market(bid=arrival.bid, ask=arrival.ask, adv=arrival.adv or math.ulp(1.0), daily_vol=arrival.daily_vol),
        spec.execution.fee(venue),
        impact_c=1.0 if arrival.adv > 0 else 0.0,
    )
    return ExecutionPlan(
        plan_id=plan_id,
        signal_id=signal.signal_id,
        strategy=spec.key,
        venue=venue,
        symbol=signal.symbol,
        side=side,
        quantity=quantity,
        created_at=now,
        schedule=name,
        arrival_price=arrival_price,
        expected_cost_bps=cost.total_bps,
        slices=slices,
    )


def _arrival(signal: Signal, spec: StrategySpec, store: Store, quotes: QuoteCache) -> _Arrival:
    bars = store.load_bars(
        signal.venue, signal.symbol, signal.timeframe, signal.ts - spec.history, signal.ts + spec.step
    )
    if len(bars) < 3:
        raise MarketDataUnavailable(f"{len(bars)} bars of {signal.venue} {signal.symbol} {signal.timeframe}")
    closes = pd.Series([float(b.close) for b in bars])
    volumes = pd.Series([float(b.volume) for b in bars], index=[b.ts.time() for b in bars])
    returns = closes.pct_change().dropna()
    per_day = _DAY / spec.step
    quote = quotes.get_quote(signal.venue, signal.symbol)
    # Outside trading hours no quote is cached: the last close is the arrival price then.
    bid, ask = (float(quote.bid), float(quote.ask)) if quote is not None else (closes.iloc[-1], closes.iloc[-1])
    return _Arrival(
        bid=bid,
        ask=ask,
        daily_vol=float(returns.std(ddof=1)) * math.sqrt(per_day),
        adv=float(volumes.mean()) * per_day,
        mu=float(returns.mean()),
        var=float(returns.var(ddof=1)),
        profile=volumes.groupby(level=0).mean(),
    )


def _capped_weight(weight: float, spec: StrategySpec, arrival: _Arrival) -> float:
    if not spec.allow_short:
        weight = max(weight, 0.0)  # long-only: a short view means flat
    cap = spec.max_weight
    if spec.kelly_fraction is not None and arrival.var > 0.0:
        # |Kelly| caps the size whatever the direction: the strategy decides the sign.
        full = kelly(np.array([arrival.mu]), np.array([[arrival.var]]), fraction=spec.kelly_fraction)
        cap = min(cap, abs(float(full[0])))
    return math.copysign(min(abs(weight), cap), weight)


def _route(
    side: Side, quantity: float, signal: Signal, spec: StrategySpec, quotes: QuoteCache, instruments: Mapping[str, Any]
) -> str:
    """The candidate venue the cheapest fill goes to most; the signal's venue when no book is cached."""
    books: dict[str, tuple[list[float], list[float]]] = {}
    for venue in instruments:
        book = quotes.get_book(venue, signal.symbol)
        levels = () if book is None else (book.asks if side is Side.BUY else book.bids)
        if levels:
            books[venue] = ([float(lv.price) for lv in levels], [float(lv.quantity) for lv in levels])
    if not books:
        return signal.venue if signal.venue in instruments else next(iter(instruments))
    decision = choose_venues(side.value, quantity, books, {v: spec.execution.fee(v) for v in books})
    allocated = decision.allocations["quantity"]
    return str(allocated.idxmax()) if float(allocated.max()) > 0 else next(iter(books))


def _schedule(quantity: float, spec: StrategySpec, arrival: _Arrival, now: datetime) -> tuple[str, Any, list[datetime]]:
    """Schedule name, slice weights (floats summing to ``quantity``) and slice start times."""
    execution = spec.execution
    horizon_days = execution.horizon / _DAY
    n = execution.max_slices
    times = [now + execution.horizon * k / n for k in range(n)]
    name = execution.schedule
    if name == "auto":
        expected_volume = arrival.adv * horizon_days
        busy = expected_volume > 0 and quantity / expected_volume >= execution.ac_participation
        name = "almgren_chriss" if busy else "twap"
    if name == "almgren_chriss" and arrival.adv > 0:
        mid = 0.5 * (arrival.bid + arrival.ask)
        spread = max(arrival.ask - arrival.bid, mid * 1e-4)
        # Almgren & Chriss (2000) §4 calibration: trading 1% of ADV costs one spread of temporary
        # impact, 10% of ADV moves the price permanently by one spread.
        result = almgren_chriss(
            X=quantity,
            T=horizon_days,
            N=n,
            sigma=arrival.daily_vol * mid,
            eta=spread / (0.01 * arrival.adv),
            epsilon=0.5 * spread + mid * execution.fee(spec.venue) / 1e4,
            gamma=spread / (0.1 * arrival.adv),
            lam=execution.risk_aversion,
        )
        return name, result.trades, times
    if name == "vwap":
        slots = pd.Index([t.time() for t in times])
        profile = arrival.profile.reindex(slots).fillna(arrival.profile.mean() if len(arrival.profile) else 0.0)
        if float(profile.sum()) > 0:
            return name, vwap(quantity, profile.to_numpy())["quantity"].to_numpy(), times
    return "twap", twap(quantity, 0.0, 1.0, n)["quantity"].to_numpy(), times


def _lot(instrument: Instrument, quantity: Decimal) -> Decimal:
    step = instrument.lot_size
    if step is not None:
        return step
    # Significant digits: multiples of the total's own step are on the grid at every smaller size.
    return Decimal(1).scaleb(quantity.adjusted() - int(instrument.amount_precision) + 1)


def _slices(
    quantity: Decimal, weights: Any, times: list[datetime], instrument: Instrument, price: Decimal
) -> tuple[PlanSlice, ...]:
    """Whole-lot slices summing exactly to ``quantity`` (largest remainder), each above the venue minimums."""
    lot = _lot(instrument, quantity)
    lots = int(DECIMAL_CONTEXT.divide(quantity, lot))
    smallest = max(lot, instrument.min_amount or lot)
    if instrument.min_notional is not None:
        smallest = max(smallest, DECIMAL_CONTEXT.divide(instrument.min_notional, price))
    min_lots = int(DECIMAL_CONTEXT.divide(smallest, lot).to_integral_value(rounding=ROUND_CEILING))
    n = max(1, min(len(times), lots // max(min_lots, 1)))
    w = np.asarray(weights, dtype=float)
    if n < len(w):
        # Fewer slices than planned: merge neighbours so the schedule's shape is kept.
        w = np.array([chunk.sum() for chunk in np.array_split(w, n)])
        times = [times[int(i)] for i in np.linspace(0, len(times) - 1, n).round()]
    share = np.clip(w, 0.0, None) / w.clip(0.0).sum() if w.clip(0.0).sum() > 0 else np.full(n, 1.0 / n)
    raw = [Decimal(lots) * Decimal(repr(float(s))) for s in share]
    units = [int(r.to_integral_value(rounding=ROUND_FLOOR)) for r in raw]
    order = sorted(range(n), key=lambda i: (-(raw[i] - units[i]), i))
    for i in order[: lots - sum(units)]:
        units[i] += 1
    # A slice under the venue minimum is carried into the next one; what is left joins the last kept slice.
    carry = 0
    for i in range(n):
        carry, units[i] = (0, carry + units[i]) if carry + units[i] >= min_lots else (carry + units[i], 0)
    kept_at = [i for i in range(n) if units[i] > 0] or [0]
    units[kept_at[-1]] += carry
    return tuple(
        PlanSlice(
            slice_no=k,
            quantity=DECIMAL_CONTEXT.multiply(lot, Decimal(units[i])).normalize(DECIMAL_CONTEXT),
            not_before=times[i],
            order_type=OrderType.MARKET,
        )
        for k, i in enumerate(kept_at)
    )
