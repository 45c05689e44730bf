"""Ingest on real data: Coinbase BTC-USD hourly, whose source has 11 runs of hours without trades."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pandas as pd
import pytest

from desk.clock import FixedClock
from desk.local import catalogue
from desk.local.memory import FrameMarketData, MemoryEventBus, MemoryQuoteCache, MemoryStore
from desk.schemas.market import Bar, BarsIngested
from desk.usecases.ingest import IngestJob, IngestLimits, RateLimited, RejectReason, plan_ingest, run_ingest
from desk.usecases.universe import DEMO_UNIVERSE

VENUE, SYMBOL, TF = "coinbase", "BTC/USD", "1h"
START = datetime(2017, 7, 1, tzinfo=UTC)
AFTER_END = datetime(2019, 10, 18, tzinfo=UTC)
JOB = IngestJob(venue=VENUE, symbol=SYMBOL, timeframe=TF, start=START)
LIMITS = IngestLimits(page_limit=1000, max_pages=100)


@pytest.fixture(scope="module")
def hourly() -> pd.DataFrame:
    return catalogue.coinbase_btcusd_hourly()


def _feed(frame: pd.DataFrame, clock: FixedClock) -> FrameMarketData:
    # drop_empty: a venue returns nothing for an hour without trades; the CSV mirror fills it with flat rows.
    return FrameMarketData(VENUE, {(SYMBOL, TF): frame}, drop_empty=True, page_limit=1000, clock=clock)


def _zero_volume_runs(frame: pd.DataFrame) -> list[tuple[datetime, int]]:
    empty = frame["volume"] == 0
    runs: list[tuple[datetime, int]] = []
    for ts, is_empty in empty.items():
        stamp = pd.Timestamp(ts).tz_localize(UTC).to_pydatetime()
        if is_empty and runs and runs[-1][0] + timedelta(hours=runs[-1][1]) == stamp:
            runs[-1] = (runs[-1][0], runs[-1][1] + 1)
        elif is_empty:
            runs.append((stamp, 1))
    return runs


def _ingest(store: MemoryStore, feed: FrameMarketData, clock: FixedClock, **kw: object) -> tuple:  # type: ignore[type-arg]
    cache, bus = kw.pop("cache", MemoryQuoteCache()), MemoryEventBus()
    result = run_ingest(
        JOB, store=store, market_data=feed, cache=cache, bus=bus, clock=clock, gap_log=store, limits=LIMITS, **kw
    )  # type: ignore[arg-type]
    return result, cache, bus


def test_backfill_pages_through_the_venue_and_records_the_real_gaps_without_inventing_bars(
    hourly: pd.DataFrame,
) -> None:
    # Given the real hourly series served 1000 bars per page, with the 11 no-trade runs missing
    clock = FixedClock(AFTER_END)
    feed, store = _feed(hourly, clock), MemoryStore()
    runs = _zero_volume_runs(hourly)
    assert len(runs) == 11

    # When a new series is backfilled from its start date
    result, cache, bus = _ingest(store, feed, clock)

    # Then every traded hour is stored, fetched over many pages
    traded = int((hourly["volume"] > 0).sum())
    assert result.stored == store.bar_count(VENUE, SYMBOL, TF) == traded
    assert result.pages > traded // 1000
    # And each no-trade run is recorded as a gap of exactly its length, with no bar inside it
    assert [(g.start, g.missing) for g in store.known_gaps(VENUE, SYMBOL, TF)] == runs
    stored = store.bars[(VENUE, SYMBOL, TF)]
    assert all(start + timedelta(hours=i) not in stored for start, n in runs for i in range(n))
    # And one bars.ingested announces the range, and the quote is the last close
    (event,) = bus.of_type("bars.ingested")
    data = event.data_as(BarsIngested)
    assert (data.count, data.first_ts, data.last_ts) == (traded, START.replace(hour=11), max(stored))
    quote = cache.get_quote(VENUE, SYMBOL)
    assert quote is not None and quote.bid == Decimal(repr(float(hourly["close"].iloc[-1])))


def test_running_the_same_job_twice_stores_and_publishes_nothing_new(hourly: pd.DataFrame) -> None:
    # Given a series already ingested
    clock = FixedClock(AFTER_END)
    feed, store = _feed(hourly.iloc[-500:], clock), MemoryStore()
    _ingest(store, feed, clock)
    before = dict(store.bars[(VENUE, SYMBOL, TF)])

    # When the same job runs again (a redelivery, or the next tick before a new bar closes)
    again, _, bus = _ingest(store, feed, clock)

    # Then nothing is stored, published or recorded
    assert (again.stored, again.event, again.gaps) == (0, None, ())
    assert bus.published == []
    assert store.bars[(VENUE, SYMBOL, TF)] == before


def test_the_next_run_resumes_after_the_last_stored_bar(hourly: pd.DataFrame) -> None:
    # Given 300 hours ingested, then three more hours pass
    clock = FixedClock(datetime(2019, 10, 1, tzinfo=UTC))
    feed, store = _feed(hourly.loc["2019-09-18":], clock), MemoryStore()
    _ingest(store, feed, clock)
    last = store.last_bar_time(VENUE, SYMBOL, TF)
    clock.advance(timedelta(hours=3))

    # When the job runs again
    result, _, bus = _ingest(store, feed, clock)

    # Then it asks only for bars after the last stored one and stores the three that closed
    assert last is not None and feed.calls[-1].since == last + timedelta(hours=1)
    assert result.stored == 3 and bus.of_type("bars.ingested")[0].data_as(BarsIngested).count == 3


def test_bad_rows_are_rejected_with_reasons_counted_and_left_as_gaps(hourly: pd.DataFrame) -> None:
    # Given a venue response with three corrupt rows among real ones
    clock = FixedClock(AFTER_END)
    feed, store = _feed(hourly.iloc[-200:], clock), MemoryStore()
    series = feed.series(SYMBOL, TF)
    bad = {series[10].ts: "high", series[50].ts: "close", series[90].ts: "volume"}
    feed.corrupt(SYMBOL, TF, series[10].ts, high=series[10].low - 1)
    feed.corrupt(SYMBOL, TF, series[50].ts, close=series[50].high * 2)
    feed.corrupt(SYMBOL, TF, series[90].ts, volume=Decimal(-1))

    # When ingested
    result, _, _ = _ingest(store, feed, clock)

    # Then the three are rejected and counted by reason, the rest stored
    assert result.rejected_by_reason == {
        RejectReason.HIGH_BELOW_LOW.value: 1,
        RejectReason.CLOSE_OUTSIDE_RANGE.value: 1,
        RejectReason.NEGATIVE_VOLUME.value: 1,
    }
    assert result.stored == len(series) - 3
    # And their hours are recorded as one-bar gaps, never filled with made-up prices
    assert {g.start: g.missing for g in result.gaps} == dict.fromkeys(bad, 1)
    assert not set(bad) & set(store.bars[(VENUE, SYMBOL, TF)])


class _SkippingFeed(FrameMarketData):
    """A venue whose bulk pages drop some bars it does hold (seen on real exchanges under load)."""

    def __init__(self, *args: object, skip: set[datetime], **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.skip = skip

    def fetch_ohlcv(
        self, symbol: str, timeframe: str, since: datetime | None = None, limit: int | None = None
    ) -> Sequence[Bar]:
        page = super().fetch_ohlcv(symbol, timeframe, since, limit)
        return page if limit != LIMITS.page_limit else [b for b in page if b.ts not in self.skip]


def test_a_hole_the_venue_can_fill_is_repaired_by_asking_again(hourly: pd.DataFrame) -> None:
    # Given a venue that omits two bars from its pages but returns them when asked for the hole
    clock = FixedClock(AFTER_END)
    frame = hourly.iloc[-300:]
    skipped = {pd.Timestamp(frame.index[100]).tz_localize(UTC).to_pydatetime()}
    feed = _SkippingFeed(VENUE, {(SYMBOL, TF): frame}, skip=skipped, page_limit=1000, clock=clock)
    store = MemoryStore()

    # When ingested
    result, _, _ = _ingest(store, feed, clock)

    # Then the hole is refilled from the venue and nothing is recorded as missing
    assert result.gaps == () and result.stored == len(frame)
    assert skipped <= set(store.bars[(VENUE, SYMBOL, TF)])


def test_an_exhausted_rate_limit_raises_retryable_and_stores_nothing(hourly: pd.DataFrame) -> None:
    # Given the shared venue bucket is empty
    clock = FixedClock(AFTER_END)
    feed, store = _feed(hourly.iloc[-50:], clock), MemoryStore()
    cache = MemoryQuoteCache(budgets={f"venue:{VENUE}": 0}, retry_after=2.0)
    waits: list[float] = []

    # When the job runs, Then it gives up after its wait budget, without calling the venue
    with pytest.raises(RateLimited):
        _ingest(store, feed, clock, cache=cache, sleep=waits.append)
    assert waits == [2.0, 2.0] and feed.calls == [] and store.bar_count(VENUE, SYMBOL, TF) == 0


def test_the_planner_sends_one_job_per_series_with_ids_stable_within_the_minute() -> None:
    # Given the demo universe and a sender that records
    sent: list[list[str]] = []
    at = datetime(2024, 3, 1, 12, 0, 7, tzinfo=UTC)

    # When the schedule fires twice within the same minute
    first = plan_ingest(DEMO_UNIVERSE, at=at, send=lambda jobs: sent.append([j.id for j in jobs]))
    second = plan_ingest(
        DEMO_UNIVERSE, at=at + timedelta(seconds=30), send=lambda jobs: sent.append([j.id for j in jobs])
    )

    # Then each run sends one job per (venue, symbol, timeframe), and the ids repeat (deduplicated by the worker)
    series = {(j.data_as(IngestJob).venue, j.data_as(IngestJob).symbol, j.data_as(IngestJob).timeframe) for j in first}
    assert len(first) == len(series) == len(DEMO_UNIVERSE.series()) == 6
    assert sent[0] == sent[1] == [j.id for j in second]


class _InstrumentLog:
    def __init__(self) -> None:
        self.written: list[object] = []

    def upsert_instruments(self, instruments: Sequence[object]) -> int:
        self.written.extend(instruments)
        return len(self.written)


def test_each_job_refreshes_the_venues_instrument_for_the_api_gate(hourly: pd.DataFrame) -> None:
    # Given a feed whose venue lists the job's symbol, and a run with nothing new to fetch
    clock = FixedClock(START)
    feed, log = _feed(hourly, clock), _InstrumentLog()
    store = MemoryStore()
    # When the job runs, before any bar is due
    result, _, _ = _ingest(store, feed, clock, instrument_log=log)
    # Then the venue's instrument (its grid and whether it trades) was written all the same
    assert result.stored == 0
    assert log.written == [feed.markets()[SYMBOL]]
