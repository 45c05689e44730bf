"""Regime on real data: the S&P 500 (^GSPC) daily OHLCV 1999-2018, stored as SPY bars."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from desk.clock import FixedClock
from desk.local import catalogue
from desk.local.memory import FrameMarketData, MemoryEventBus, MemoryStore
from desk.schemas.analytics import RegimeChanged
from desk.schemas.market import Bar, BarsIngested
from desk.usecases.regime import bars_to_frame, run_regime, thresholds_for
from quant.regime import classify_regimes

VENUE, SYMBOL, TF = "alpaca", "SPY", "1d"
TH = thresholds_for(TF, crypto=False)


@pytest.fixture(scope="module")
def bars() -> list[Bar]:
    feed = FrameMarketData(VENUE, {(SYMBOL, TF): catalogue.sp500_ohlcv()}, page_limit=10_000)
    return list(feed.series(SYMBOL, TF))


def _ingested(bar: Bar) -> BarsIngested:
    return BarsIngested(venue=VENUE, symbol=SYMBOL, timeframe=TF, count=1, first_ts=bar.ts, last_ts=bar.ts)


def _run(store: MemoryStore, bus: MemoryEventBus, bar: Bar):  # type: ignore[no-untyped-def]
    return run_regime(
        _ingested(bar), store=store, bus=bus, clock=FixedClock(datetime(2019, 1, 1, tzinfo=UTC)), thresholds=TH
    )


def test_regime_changed_is_published_only_when_the_label_changes(bars: list[Bar]) -> None:
    # Given two years of stored bars, then 120 more arriving one at a time (late 2008: the crisis)
    store, bus = MemoryStore(), MemoryEventBus()
    start = next(i for i, b in enumerate(bars) if b.ts >= datetime(2008, 8, 1, tzinfo=UTC))
    store.upsert_bars(bars[:start])
    labels: list[str] = []

    # When each new bar is classified
    for bar in bars[start : start + 120]:
        store.upsert_bars([bar])
        result = _run(store, bus, bar)
        assert result.regime is not None
        labels.append(result.regime.label)

    # Then one event goes out for the first label and one per change, never for a repeat
    changes = [(a, b) for a, b in zip([None, *labels], labels, strict=False) if a != b]
    events = [e.data_as(RegimeChanged) for e in bus.of_type("regime.changed")]
    assert [(e.previous, e.current.label) for e in events] == changes
    assert 1 < len(events) < len(labels) and "CRISIS" in labels
    # And every bar's regime is stored, the latest readable
    latest = store.latest_regime(SYMBOL, TF)
    assert len(store.regimes) == 120 and latest is not None and latest.label == labels[-1]


def test_the_label_is_quants_on_the_loaded_warm_up_window(bars: list[Bar]) -> None:
    # Given the whole history stored
    store, bus = MemoryStore(), MemoryEventBus()
    store.upsert_bars(bars)

    # When the last bar is classified
    result = _run(store, bus, bars[-1])

    # Then it equals quant's classification of the same history + warm-up window
    window = bars[-(TH.history + TH.warmup) :]
    frame = bars_to_frame(window)
    expected = classify_regimes(frame["high"], frame["low"], frame["close"], TH).iloc[-1]
    assert result.regime is not None and result.bars == len(window)
    assert result.regime.label == str(expected) and result.regime.ts == bars[-1].ts
    assert abs(sum(result.regime.probabilities) - 1.0) < 1e-9


def test_a_redelivered_bars_ingested_publishes_nothing_more(bars: list[Bar]) -> None:
    # Given a bar already classified and announced
    store, bus = MemoryStore(), MemoryEventBus()
    store.upsert_bars(bars[:1500])
    _run(store, bus, bars[1499])
    assert len(bus.published) == 1

    # When the same bars.ingested is processed again
    again = _run(store, bus, bars[1499])

    # Then the same regime is stored once and nothing is published
    assert again.changed is False and len(bus.published) == 1 and len(store.regimes) == 1


def test_a_series_in_its_warm_up_stores_and_publishes_nothing(bars: list[Bar]) -> None:
    # Given fewer bars than the classifier's warm-up
    store, bus = MemoryStore(), MemoryEventBus()
    store.upsert_bars(bars[:100])

    # When classified
    result = _run(store, bus, bars[99])

    # Then there is no regime yet
    assert result.regime is None and store.regimes == {} and bus.published == []
