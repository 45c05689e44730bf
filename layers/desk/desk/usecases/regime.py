"""Regime: classify the newest bar of a series and announce the label only when it changes.

The classifier (``quant.regime``) needs a warm-up and a trailing history for its percentiles, so
the use case loads ``history + warmup`` bars ending at the ingested bar, not just the new ones.
The label is compared with the stored latest one *before* saving: ``regime.changed`` goes out on
the first label of a series and on every change, never on a repeat, so a redelivered
``bars.ingested`` (or a run over unchanged data) stores the same row and publishes nothing.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np
import pandas as pd

from desk.events import Envelope, new_event
from desk.ports import Clock, EventBus, Store
from desk.schemas.analytics import Regime, RegimeChanged
from desk.schemas.market import Bar, BarsIngested
from desk.usecases.ingest import STEPS
from quant.regime import Regime as RegimeLabel
from quant.regime import RegimeThresholds, classify_regimes, next_regime_probabilities, regime_features

__all__ = ["MODEL", "STATES", "RegimeResult", "bars_to_frame", "run_regime", "thresholds_for"]

MODEL = "rules-v1"
STATES: tuple[str, ...] = tuple(RegimeLabel)
_NAMESPACE = uuid.UUID("0b6f5a3e-1d6c-4c1e-8f0e-7f4b2d9a6c21")


@dataclass(frozen=True, slots=True)
class RegimeResult:
    regime: Regime | None  # None while the series is still in its warm-up
    previous: str | None
    changed: bool
    bars: int
    features: dict[str, float]
    event: Envelope | None = None


def bars_to_frame(bars: Sequence[Bar]) -> pd.DataFrame:
    """OHLCV floats indexed by the bars' open time (UTC): the quant layer's input shape."""
    return pd.DataFrame(
        {
            "open": [float(b.open) for b in bars],
            "high": [float(b.high) for b in bars],
            "low": [float(b.low) for b in bars],
            "close": [float(b.close) for b in bars],
            "volume": [float(b.volume) for b in bars],
        },
        index=pd.DatetimeIndex([b.ts for b in bars], name="ts"),
    )


def thresholds_for(timeframe: str, *, crypto: bool = True) -> RegimeThresholds:
    """The module's defaults with the annualisation of the timeframe (labels do not depend on it)."""
    per_day = timedelta(days=1) / STEPS[timeframe]
    days = 365.0 if crypto else 252.0
    return RegimeThresholds(periods_per_year=days * per_day)


def _lookback(timeframe: str, bars: int) -> timedelta:
    # Weekends and holidays hold no equity bars: ask for enough calendar time to cover them.
    return STEPS[timeframe] * math.ceil(bars * 1.5)


def run_regime(
    ingested: BarsIngested,
    *,
    store: Store,
    bus: EventBus,
    clock: Clock,
    thresholds: RegimeThresholds | None = None,
    correlation_id: str | None = None,
) -> RegimeResult:
    """Classify ``ingested``'s series at its last bar; save it and publish ``regime.changed`` on a change."""
    th = thresholds or thresholds_for(ingested.timeframe)
    needed = th.history + th.warmup
    end = ingested.last_ts + STEPS[ingested.timeframe]
    start = end - _lookback(ingested.timeframe, needed)
    bars = list(store.load_bars(ingested.venue, ingested.symbol, ingested.timeframe, start, end))[-needed:]
    if not bars:
        return RegimeResult(regime=None, previous=None, changed=False, bars=0, features={})
    frame = bars_to_frame(bars)
    labels = classify_regimes(frame["high"], frame["low"], frame["close"], th)
    features = regime_features(frame["high"], frame["low"], frame["close"], th).iloc[-1]
    feature_values = {str(k): float(v) for k, v in features.items() if np.isfinite(v)}
    current = labels.iloc[-1]
    if current is None:
        return RegimeResult(regime=None, previous=None, changed=False, bars=len(bars), features=feature_values)

    probabilities = next_regime_probabilities(labels, steps=1, states=STATES).to_numpy()
    regime = Regime(
        symbol=ingested.symbol,
        timeframe=ingested.timeframe,
        ts=bars[-1].ts,
        model=MODEL,
        label=str(current),
        state=STATES.index(str(current)),
        probabilities=tuple(float(p) for p in probabilities / probabilities.sum()),
    )
    latest = store.latest_regime(ingested.symbol, ingested.timeframe)
    # An older bar delivered late must not announce a "change" back to a superseded label.
    stale = latest is not None and latest.ts > regime.ts
    changed = not stale and (latest is None or (latest.label != regime.label and latest.ts != regime.ts))
    previous = latest.label if latest is not None else None
    event = None
    # Publish before saving: if the save fails, the retry still sees the old label and publishes the
    # same event id again (deduplicated downstream); saving first would lose the announcement.
    if changed:
        event = new_event(
            "regime.changed",
            RegimeChanged(previous=previous, current=regime),
            clock=clock,
            event_id=_event_id(regime.symbol, regime.timeframe, regime.ts),
            correlation_id=correlation_id,
        )
        bus.publish([event])
    store.save_regime(regime)
    return RegimeResult(
        regime=regime, previous=previous, changed=changed, bars=len(bars), features=feature_values, event=event
    )


def _event_id(symbol: str, timeframe: str, ts: datetime) -> str:
    return str(uuid.uuid5(_NAMESPACE, f"regime.changed|{MODEL}|{symbol}|{timeframe}|{ts.isoformat()}"))
