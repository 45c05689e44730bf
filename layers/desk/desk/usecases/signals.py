"""Signals: run the enabled strategies when a regime changes or the correlation is updated.

A ``regime.changed`` event names one (symbol, timeframe, bar); a ``correlation.updated`` event a set of
symbols. Every enabled strategy of that timeframe trading one of those symbols runs on the stored
closes up to that bar, with the latest regime of each symbol and, when the trigger carries one, the
correlation matrix. Each target becomes a :class:`~desk.schemas.Signal` whose id is a hash of what
defines it (strategy key and parameters, venue, symbol, timeframe, bar), so the same bar never makes
two signals, whichever trigger comes first or how often one is redelivered.

Every signal is published, new or not, under an event id derived from its signal id: a crash between
saving and publishing is repaired by the redelivery, and consumers dedupe the repeat on the event id.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import pandas as pd

from desk.domain.errors import InvalidEvent
from desk.events import Envelope, new_event
from desk.ports import Clock, EventBus, Store
from desk.schemas.analytics import CorrelationSnapshot, RegimeChanged, Signal
from desk.usecases.strategies import StrategySpec
from quant.signals import StrategyData

__all__ = ["SIGNAL_EVENT_NAMESPACE", "SignalRun", "Trigger", "run_signals", "signal_id", "trigger_of"]

# Event ids of published signals are uuid5(namespace, signal id): stable across redeliveries.
SIGNAL_EVENT_NAMESPACE = uuid.UUID("6b1f3f4e-52a8-4c61-9a0e-5d1c2b7e9f01")


@dataclass(frozen=True)
class Trigger:
    """What a trigger event says changed: ``symbols`` at bar ``ts`` of ``timeframe``."""

    symbols: frozenset[str]
    timeframe: str
    ts: datetime
    regime: dict[str, str]
    correlation: pd.DataFrame | None


@dataclass(frozen=True)
class SignalRun:
    """What one trigger produced: every signal, how many were new, and strategies that could not run."""

    signals: tuple[Signal, ...]
    stored: int
    waiting: tuple[str, ...]

    def summary(self) -> dict[str, Any]:
        return {"signals": [s.signal_id for s in self.signals], "stored": self.stored, "waiting": list(self.waiting)}


def trigger_of(event: Envelope) -> Trigger:
    """The symbols, timeframe and bar a ``regime.changed`` or ``correlation.updated`` event is about."""
    if event.type == "regime.changed":
        current = event.data_as(RegimeChanged).current
        return Trigger(
            frozenset({current.symbol}), current.timeframe, current.ts, {current.symbol: current.label}, None
        )
    if event.type == "correlation.updated":
        snap = event.data_as(CorrelationSnapshot)
        matrix = pd.DataFrame(list(snap.matrix), index=list(snap.symbols), columns=list(snap.symbols))
        return Trigger(frozenset(snap.symbols), snap.timeframe, snap.ts, {}, matrix)
    raise InvalidEvent(f"signals runs on regime.changed or correlation.updated, not {event.type}")


def signal_id(spec: StrategySpec, symbol: str, ts: datetime) -> str:
    """``sg`` + BLAKE2b-120 of the strategy key, its parameters, venue, symbol, timeframe and bar."""
    params = json.dumps(dict(spec.params), sort_keys=True, default=str)
    parts = (spec.key, spec.kind, params, spec.venue, symbol, spec.timeframe, ts.isoformat())
    return "sg" + hashlib.blake2b("\x1f".join(parts).encode(), digest_size=15).hexdigest()


def run_signals(
    event: Envelope, *, store: Store, bus: EventBus, clock: Clock, strategies: Sequence[StrategySpec]
) -> SignalRun:
    """Run the strategies ``event`` concerns, store their signals and publish ``signal.generated``.

    A strategy whose bars (or any of its symbols' bar at the trigger's time) are not stored yet is
    reported in ``waiting`` and not run: the trigger of its last symbol will run it.
    """
    trigger = trigger_of(event)
    signals: list[Signal] = []
    waiting: list[str] = []
    for spec in strategies:
        if not spec.enabled or spec.timeframe != trigger.timeframe or not trigger.symbols & set(spec.symbols):
            continue
        made = _run_one(spec, trigger, store)
        if made is None:
            waiting.append(spec.key)
        else:
            signals.extend(made)
    stored = sum(store.save_signal(s) for s in signals)
    if signals:
        bus.publish([_event(s, event.correlation_id, clock) for s in signals])
    return SignalRun(tuple(signals), stored, tuple(waiting))


def _event(signal: Signal, correlation_id: str, clock: Clock) -> Envelope:
    event_id = str(uuid.uuid5(SIGNAL_EVENT_NAMESPACE, signal.signal_id))
    return new_event("signal.generated", signal, clock=clock, correlation_id=correlation_id, event_id=event_id)


def _closes(spec: StrategySpec, ts: datetime, store: Store) -> pd.DataFrame | None:
    columns: dict[str, pd.Series] = {}
    for symbol in spec.symbols:
        bars = store.load_bars(spec.venue, symbol, spec.timeframe, ts - spec.history, ts + spec.step)
        if not bars:
            return None
        index = pd.DatetimeIndex([b.ts for b in bars])
        columns[symbol] = pd.Series([float(b.close) for b in bars], index=index)
    # Inner join: a strategy compares instruments bar by bar, so only bars every symbol has count.
    prices = pd.DataFrame(columns).dropna()
    if len(prices) < 2 or prices.index[-1] != pd.Timestamp(ts):
        return None
    return prices


def _run_one(spec: StrategySpec, trigger: Trigger, store: Store) -> list[Signal] | None:
    prices = _closes(spec, trigger.ts, store)
    if prices is None:
        return None
    labels: dict[str, str | None] = {}
    for symbol in spec.symbols:
        if symbol in trigger.regime:
            labels[symbol] = trigger.regime[symbol]
        else:
            latest = store.latest_regime(symbol, spec.timeframe)
            labels[symbol] = latest.label if latest is not None and latest.ts <= trigger.ts else None
    # Only the last bar's target is used, so the latest label stands for the whole window.
    regimes = pd.DataFrame({s: [labels[s]] * len(prices) for s in spec.symbols}, index=prices.index, dtype=object)
    correlation = None
    if trigger.correlation is not None and set(spec.symbols) <= set(trigger.correlation.index):
        correlation = trigger.correlation.loc[list(spec.symbols), list(spec.symbols)]
    data = StrategyData(prices=prices, regimes=regimes, correlation=correlation)
    last = spec.build().target_positions(data).iloc[-1]
    n = len(spec.symbols)
    out = []
    for symbol in spec.symbols:
        weight = float(last[symbol])
        out.append(
            Signal(
                signal_id=signal_id(spec, symbol, trigger.ts),
                strategy=spec.key,
                venue=spec.venue,
                symbol=symbol,
                timeframe=spec.timeframe,
                ts=trigger.ts,
                target_weight=weight,
                # Conviction = the target as a share of the strategy's per-instrument budget (1/n).
                strength=max(-1.0, min(1.0, weight * n)),
                regime=labels[symbol],
            )
        )
    return out
