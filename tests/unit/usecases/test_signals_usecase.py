"""Signals use case on real S&P 500 closes with the in-memory ports."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pandas as pd
import pytest

from desk.clock import FixedClock
from desk.domain.errors import InvalidEvent
from desk.events import Envelope, new_event
from desk.local import catalogue
from desk.local.memory import FrameMarketData, MemoryEventBus, MemoryStore
from desk.schemas.analytics import CorrelationSnapshot, Regime, RegimeChanged
from desk.usecases.signals import run_signals
from desk.usecases.strategies import StrategySpec
from quant.signals import MomentumStrategy, StrategyData

SYMBOLS = ("AAPL", "MSFT")
NOW = datetime(2023, 1, 2, tzinfo=UTC)


def _closes() -> pd.DataFrame:
    return catalogue.sp500_stocks()[list(SYMBOLS)].iloc[-400:]


def _store() -> MemoryStore:
    store = MemoryStore()
    closes = _closes()
    frames = {
        (s, "1d"): pd.DataFrame(
            {"open": closes[s], "high": closes[s], "low": closes[s], "close": closes[s], "volume": 1e6}
        )
        for s in SYMBOLS
    }
    feed = FrameMarketData("alpaca", frames)
    for s in SYMBOLS:
        store.upsert_bars(feed.series(s, "1d"))
    return store


SPEC = StrategySpec(
    key="momentum_test",
    kind="momentum",
    venue="alpaca",
    symbols=SYMBOLS,
    timeframe="1d",
    params={"lookback": 252, "skip": 21},
    history=timedelta(days=600),
)


def _last_ts() -> datetime:
    return pd.Timestamp(_closes().index[-1]).tz_localize(UTC).to_pydatetime()


def _regime(symbol: str, label: str, ts: datetime) -> Regime:
    return Regime(symbol=symbol, timeframe="1d", ts=ts, model="rules", label=label, state=0, probabilities=(1.0,))


def _regime_event(symbol: str, label: str, ts: datetime) -> Envelope:
    data = RegimeChanged(previous="RANGING", current=_regime(symbol, label, ts))
    return new_event("regime.changed", data, occurred_at=ts + timedelta(minutes=1))


def test_signals_match_the_strategy_and_are_stored_once_per_id() -> None:
    # Given a year and a half of AAPL and MSFT closes, both in a TRENDING regime
    store, bus, clock = _store(), MemoryEventBus(), FixedClock(NOW)
    ts = _last_ts()
    store.save_regime(_regime("MSFT", "TRENDING", ts))
    event = _regime_event("AAPL", "TRENDING", ts)

    # When the regime change is delivered twice
    first = run_signals(event, store=store, bus=bus, clock=clock, strategies=[SPEC])
    second = run_signals(event, store=store, bus=bus, clock=clock, strategies=[SPEC])

    # Then each symbol's target is the momentum strategy's last target on the same closes
    expected = MomentumStrategy(lookback=252, skip=21).target_positions(StrategyData(prices=_closes())).iloc[-1]
    assert {s.symbol: s.target_weight for s in first.signals} == pytest.approx(expected.to_dict())
    assert all(s.target_weight != 0.0 for s in first.signals)
    # And the signals are stored once under deterministic ids, the repeat storing nothing
    assert [s.signal_id for s in first.signals] == [s.signal_id for s in second.signals]
    assert (first.stored, second.stored) == (2, 0)
    assert set(store.signals) == {s.signal_id for s in first.signals}
    # And both deliveries publish the same events (same ids), which consumers dedupe
    published = bus.of_type("signal.generated")
    assert len(published) == 4 and len({e.id for e in published}) == 2
    assert all(e.correlation_id == event.correlation_id for e in published)


def test_a_regime_outside_the_strategys_regimes_targets_flat() -> None:
    # Given AAPL in a CRISIS regime (momentum trades TRENDING only)
    store, bus = _store(), MemoryEventBus()
    ts = _last_ts()
    store.save_regime(_regime("MSFT", "TRENDING", ts))

    # When AAPL's regime change arrives
    run = run_signals(
        _regime_event("AAPL", "CRISIS", ts), store=store, bus=bus, clock=FixedClock(NOW), strategies=[SPEC]
    )

    # Then AAPL's target is flat, and MSFT's is not
    weights = {s.symbol: s.target_weight for s in run.signals}
    assert weights["AAPL"] == 0.0 and weights["MSFT"] != 0.0
    assert {s.symbol: s.regime for s in run.signals} == {"AAPL": "CRISIS", "MSFT": "TRENDING"}


def test_a_strategy_waits_until_every_symbol_has_the_bar() -> None:
    # Given a correlation update for a bar after the last stored one
    store, bus = _store(), MemoryEventBus()
    ts = _last_ts() + timedelta(days=1)
    snap = CorrelationSnapshot(
        ts=ts, timeframe="1d", method="pearson", window=60, symbols=SYMBOLS, matrix=((1.0, 0.5), (0.5, 1.0))
    )
    event = new_event("correlation.updated", snap, occurred_at=ts)

    # When it is delivered
    run = run_signals(event, store=store, bus=bus, clock=FixedClock(NOW), strategies=[SPEC])

    # Then the strategy is reported waiting and nothing is stored or published
    assert run.signals == () and run.waiting == ("momentum_test",)
    assert store.signals == {} and bus.published == []


def test_other_timeframes_and_event_types_are_not_signals_triggers() -> None:
    # Given a 1h regime change and a fill event
    store, bus = _store(), MemoryEventBus()
    hourly = Regime(
        symbol="AAPL", timeframe="1h", ts=_last_ts(), model="rules", label="TRENDING", state=0, probabilities=(1.0,)
    )
    event = new_event("regime.changed", RegimeChanged(previous=None, current=hourly), occurred_at=NOW)

    # When each is run, Then the 1h one concerns no daily strategy and the other is refused
    assert run_signals(event, store=store, bus=bus, clock=FixedClock(NOW), strategies=[SPEC]).signals == ()
    fill = Envelope.parse((catalogue.REPO_ROOT / "events" / "fill.recorded.json").read_text())
    with pytest.raises(InvalidEvent):
        run_signals(fill, store=store, bus=bus, clock=FixedClock(NOW), strategies=[SPEC])
