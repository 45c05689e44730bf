"""Correlation on real data: Bitstamp BTC, ETH and LTC daily closes."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pandas as pd
import pytest

from desk.clock import FixedClock
from desk.local import catalogue
from desk.local.memory import FrameMarketData, MemoryEventBus, MemoryStore
from desk.schemas.analytics import CorrelationSnapshot
from desk.usecases.correlation import covariance_to_correlation, run_correlation
from desk.usecases.universe import Universe, UniverseEntry
from quant.correlation import dcc_garch, ewma_covariance, ledoit_wolf

VENUE, TF = "bitstamp", "1d"
ASSETS = ("BTC", "ETH", "LTC")
CLOCK = FixedClock(datetime(2020, 1, 1, tzinfo=UTC))
UNIVERSE = Universe(entries=tuple(UniverseEntry(venue=VENUE, symbol=f"{a}/USD", timeframe=TF) for a in ASSETS))


@pytest.fixture(scope="module")
def daily() -> dict[str, pd.DataFrame]:
    return catalogue.bitstamp_daily()


@pytest.fixture
def store(daily: dict[str, pd.DataFrame]) -> MemoryStore:
    feed = FrameMarketData(VENUE, {(f"{a}/USD", TF): daily[a] for a in ASSETS}, page_limit=100_000)
    store = MemoryStore()
    for asset in ASSETS:
        store.upsert_bars(feed.series(f"{asset}/USD", TF))
    return store


def _returns(daily: dict[str, pd.DataFrame], window: int) -> pd.DataFrame:
    closes = pd.DataFrame({f"{a}/USD": daily[a]["close"] for a in ASSETS}).dropna()
    closes = closes[closes.index < pd.Timestamp("2020-01-01")].iloc[-(window + 1) :]
    return pd.DataFrame(np.log(closes.to_numpy()[1:] / closes.to_numpy()[:-1]), columns=closes.columns)


def test_the_snapshots_match_quant_on_the_same_returns(store: MemoryStore, daily: dict[str, pd.DataFrame]) -> None:
    # Given three years of daily bars stored for three coins
    bus = MemoryEventBus()

    # When the correlation runs over a 250-return window
    result = run_correlation(TF, UNIVERSE, store=store, bus=bus, clock=CLOCK, window=250)

    # Then each stored matrix is quant's estimator on the same log returns
    x = _returns(daily, 250).to_numpy()
    expected = {
        "ewma": covariance_to_correlation(ewma_covariance(x, 0.94, init_window=20)),
        "ledoit_wolf": covariance_to_correlation(ledoit_wolf(x).covariance),
        "dcc": np.asarray(dcc_garch(x).last_correlation),
    }
    stored = {key[1]: snap for key, snap in store.correlations.items()}
    assert set(stored) == set(expected) and result.failures == {}
    for method, matrix in expected.items():
        np.testing.assert_allclose(np.array(stored[method].matrix), matrix, atol=1e-9)
        assert stored[method].window == 250 and stored[method].ts == datetime(2019, 12, 31, tzinfo=UTC)
    # And the PCA shares sum to one, crypto's first factor dominating; diversification is above 1
    assert abs(sum(result.pca_explained) - 1.0) < 1e-9 and result.pca_explained[0] > 0.7
    assert result.diversification_ratio is not None and result.diversification_ratio > 1.0
    # And one correlation.updated carries the primary (DCC) snapshot
    (event,) = bus.of_type("correlation.updated")
    assert event.data_as(CorrelationSnapshot) == stored["dcc"]


def test_a_rerun_on_the_same_data_saves_the_same_keys_and_event_id(store: MemoryStore) -> None:
    # Given a completed run
    bus = MemoryEventBus()
    first = run_correlation(TF, UNIVERSE, store=store, bus=bus, clock=CLOCK, window=120)

    # When it runs again on unchanged bars
    second = run_correlation(TF, UNIVERSE, store=store, bus=bus, clock=CLOCK, window=120)

    # Then the store holds one snapshot per method and the repeated event has the same id
    assert len(store.correlations) == 3
    assert first.event is not None and second.event is not None and first.event.id == second.event.id


def test_a_universe_of_one_symbol_is_skipped(store: MemoryStore) -> None:
    # Given a timeframe with a single symbol
    single = Universe(entries=(UniverseEntry(venue=VENUE, symbol="BTC/USD", timeframe=TF),))
    bus = MemoryEventBus()

    # When the correlation runs, Then it stores and publishes nothing and says why
    result = run_correlation(TF, single, store=store, bus=bus, clock=CLOCK)
    assert result.skipped == "fewer than two symbols" and store.correlations == {} and bus.published == []
