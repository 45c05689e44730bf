"""Ingest: plan one job per (venue, symbol, timeframe), then fetch, repair, validate, store and announce bars.

A job resumes after the newest stored bar (or at its ``start`` for a new series: a backfill is the
same path), pages through the venue under the shared rate limiter, asks the venue once more for
every hole it finds, and records what is still missing as a :class:`BarGap` — a missing bar is
never invented. Bad rows are rejected with a reason and counted. Only validated bars are upserted;
the latest close refreshes the cached quote and one ``bars.ingested`` announces the range.

Idempotent by construction: a repeated job finds nothing after the last stored bar, stores
nothing and publishes nothing; the ``bars.ingested`` id is derived from the range, so a retry that
does publish again is deduplicated downstream.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from enum import StrEnum
from typing import Literal, Protocol, runtime_checkable

from desk.domain.errors import RetryableVenueError
from desk.domain.instruments import Instrument
from desk.events import REGISTRY, Envelope, event_type, new_event
from desk.ports import Clock, EventBus, MarketData, QuoteCache, Store
from desk.schemas.base import DeskModel, Identifier, Symbol, UtcDatetime
from desk.schemas.market import Bar, BarGap, BarsIngested, Quote, Timeframe
from desk.usecases.universe import Universe

__all__ = [
    "INGEST_REQUESTED",
    "STEPS",
    "BarGap",
    "GapLog",
    "IngestJob",
    "IngestResult",
    "JobSender",
    "RateLimited",
    "RejectReason",
    "Rejection",
    "find_gaps",
    "plan_ingest",
    "run_ingest",
    "validate_bars",
]

INGEST_REQUESTED = "ingest.requested"
STEPS: dict[str, timedelta] = {
    "1m": timedelta(minutes=1),
    "5m": timedelta(minutes=5),
    "15m": timedelta(minutes=15),
    "30m": timedelta(minutes=30),
    "1h": timedelta(hours=1),
    "4h": timedelta(hours=4),
    "1d": timedelta(days=1),
}
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_NAMESPACE = uuid.UUID("6f1c1f1e-52f4-4a39-9c1e-5d8f0b0e6a11")


class IngestJob(DeskModel):
    """Data of ``ingest.requested``: bring one series up to date (from ``start`` when it is new)."""

    venue: Identifier
    symbol: Symbol
    timeframe: Timeframe
    start: UtcDatetime | None = None
    calendar: Literal["24x7", "weekdays"] = "24x7"


# The job message travels on the ingest-jobs queue in the shared envelope; registered here until
# desk.events lists it with the rest of the catalogue.
if (INGEST_REQUESTED, 1) not in REGISTRY.types():
    event_type(INGEST_REQUESTED, 1)(IngestJob)


class RejectReason(StrEnum):
    WRONG_SERIES = "wrong_series"
    NON_FINITE = "non_finite"
    NON_POSITIVE_PRICE = "non_positive_price"
    HIGH_BELOW_LOW = "high_below_low"
    OPEN_OUTSIDE_RANGE = "open_outside_range"
    CLOSE_OUTSIDE_RANGE = "close_outside_range"
    NEGATIVE_VOLUME = "negative_volume"
    MISALIGNED = "misaligned"
    NOT_CLOSED = "not_closed"
    DUPLICATE = "duplicate"


@dataclass(frozen=True, slots=True)
class Rejection:
    ts: datetime
    reason: RejectReason


@runtime_checkable
class GapLog(Protocol):
    """Where unfillable gaps are recorded (the store; not yet part of the Store port)."""

    def record_gaps(self, gaps: Sequence[BarGap]) -> int: ...


@runtime_checkable
class InstrumentLog(Protocol):
    """Where the venue's view of an instrument is kept for the API's gate (the store)."""

    def upsert_instruments(self, instruments: Iterable[Instrument]) -> int: ...


class JobSender(Protocol):
    """Puts job envelopes on the ingest-jobs queue (the handler binds the SQS helper)."""

    def __call__(self, jobs: Sequence[Envelope]) -> None: ...


class RateLimited(RetryableVenueError):
    """The shared venue budget stayed exhausted: the message is retried later by SQS."""


@dataclass(frozen=True, slots=True)
class IngestResult:
    job: IngestJob
    fetched: int = 0
    stored: int = 0
    pages: int = 0
    complete: bool = True
    rejections: tuple[Rejection, ...] = ()
    gaps: tuple[BarGap, ...] = ()
    first_ts: datetime | None = None
    last_ts: datetime | None = None
    lag: timedelta | None = None
    event: Envelope | None = None
    rejected_by_reason: dict[str, int] = field(default_factory=dict)


def _stable_id(*parts: object) -> str:
    return str(uuid.uuid5(_NAMESPACE, "|".join(str(p) for p in parts)))


# ---- planner ------------------------------------------------------------------------------------


def plan_ingest(
    universe: Universe, *, at: datetime, send: JobSender, correlation_id: str | None = None
) -> list[Envelope]:
    """One ``ingest.requested`` per (venue, symbol, timeframe), sent in one call and returned.

    Job ids derive from the series and the minute of ``at``, so a redelivered schedule event
    enqueues the same ids and the worker's idempotency drops the repeats.
    """
    minute = at.astimezone(UTC).replace(second=0, microsecond=0)
    jobs = [
        new_event(
            INGEST_REQUESTED,
            IngestJob(venue=s.venue, symbol=s.symbol, timeframe=s.timeframe, start=s.start, calendar=s.calendar),
            occurred_at=at,
            event_id=_stable_id(INGEST_REQUESTED, s.venue, s.symbol, s.timeframe, minute.isoformat()),
            correlation_id=correlation_id,
        )
        for s in universe.series()
    ]
    if jobs:
        send(jobs)
    return jobs


# ---- validation and gaps ------------------------------------------------------------------------


def _reason(bar: Bar, job: IngestJob, now: datetime) -> RejectReason | None:
    step = STEPS[job.timeframe]
    o, h, lo, c, v = bar.open, bar.high, bar.low, bar.close, bar.volume
    if (bar.venue, bar.symbol, bar.timeframe) != (job.venue, job.symbol, job.timeframe):
        return RejectReason.WRONG_SERIES
    if not all(isinstance(x, Decimal) and x.is_finite() for x in (o, h, lo, c, v)):
        return RejectReason.NON_FINITE
    if min(o, h, lo, c) <= 0:
        return RejectReason.NON_POSITIVE_PRICE
    if h < lo:
        return RejectReason.HIGH_BELOW_LOW
    if not lo <= o <= h:
        return RejectReason.OPEN_OUTSIDE_RANGE
    if not lo <= c <= h:
        return RejectReason.CLOSE_OUTSIDE_RANGE
    if v < 0:
        return RejectReason.NEGATIVE_VOLUME
    # Daily equity bars open at the exchange's midnight, not UTC's: only intraday bars sit on the grid.
    if job.timeframe != "1d" and (bar.ts - _EPOCH) % step:
        return RejectReason.MISALIGNED
    if bar.ts + step > now:
        return RejectReason.NOT_CLOSED  # a forming bar would change after we store it
    return None


def validate_bars(bars: Iterable[Bar], job: IngestJob, now: datetime) -> tuple[list[Bar], list[Rejection]]:
    """Split ``bars`` into storable ones (sorted, unique ``ts``) and rejections with reasons."""
    good: dict[datetime, Bar] = {}
    rejected: list[Rejection] = []
    for bar in bars:
        reason = _reason(bar, job, now)
        if reason is None and bar.ts in good:
            reason = RejectReason.DUPLICATE
        if reason is None:
            good[bar.ts] = bar
        else:
            rejected.append(Rejection(bar.ts, reason))
    return [good[ts] for ts in sorted(good)], rejected


def _expected(start: datetime, end: datetime, step: timedelta, calendar: str) -> int:
    """Bars a series should hold in ``[start, end)``; the weekday calendar skips Saturdays and Sundays."""
    if calendar == "24x7":
        return max(0, -((start - end) // step))
    count, ts = 0, start
    while ts < end:
        count += ts.weekday() < 5
        ts += step
    return count


def find_gaps(
    times: Sequence[datetime], job: IngestJob, *, after: datetime | None = None
) -> list[tuple[datetime, datetime, int]]:
    """Holes ``(start, end, missing)`` between consecutive ``times`` (and after ``after``, the last stored bar)."""
    step = STEPS[job.timeframe]
    previous = after
    holes: list[tuple[datetime, datetime, int]] = []
    for ts in times:
        if previous is not None:
            missing = _expected(previous + step, ts, step, job.calendar)
            if missing > 0:
                holes.append((previous + step, ts, missing))
        previous = ts
    return holes


# ---- worker -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class IngestLimits:
    """How much one invocation does: the rest is left to the next run (Lambda has a timeout)."""

    page_limit: int = 1000
    max_pages: int = 50
    lookback_bars: int = 500  # a series with no history and no start begins this far back
    rate_bucket_prefix: str = "venue:"
    max_rate_wait: float = 5.0


def _acquire(cache: QuoteCache, bucket: str, limits: IngestLimits, sleep: Callable[[float], None]) -> None:
    waited = 0.0
    while (wait := cache.acquire(bucket)) > 0:
        if waited + wait > limits.max_rate_wait:
            raise RateLimited(f"rate limit {bucket} still exhausted after {waited:.1f}s")
        sleep(wait)
        waited += wait


def run_ingest(
    job: IngestJob,
    *,
    store: Store,
    market_data: MarketData,
    cache: QuoteCache,
    bus: EventBus,
    clock: Clock,
    gap_log: GapLog | None = None,
    instrument_log: InstrumentLog | None = None,
    correlation_id: str | None = None,
    limits: IngestLimits | None = None,
    sleep: Callable[[float], None] = lambda _: None,
) -> IngestResult:
    """Bring ``job``'s series up to date; see the module docstring for the steps and guarantees.

    Raises :class:`RateLimited` (retryable) when the shared venue budget stays exhausted; venue
    errors propagate, so the queue retries the job and finally dead-letters it.
    """
    lim = limits or IngestLimits()
    step, now = STEPS[job.timeframe], clock.now()
    if instrument_log is not None:  # precision, filters and halts as the venue has them now
        instrument = market_data.markets().get(job.symbol)
        if instrument is not None:
            instrument_log.upsert_instruments([instrument])
    last = store.last_bar_time(job.venue, job.symbol, job.timeframe)
    if last is not None:
        since = last + step
    elif job.start is not None:
        since = job.start
    else:
        since = now - step * lim.lookback_bars
    if since + step > now:  # the next bar has not closed yet: nothing to ask the venue for
        return IngestResult(job=job)

    bucket = lim.rate_bucket_prefix + job.venue
    raw: list[Bar] = []
    cursor, pages, complete = since, 0, False
    while pages < lim.max_pages:
        _acquire(cache, bucket, lim, sleep)
        page = [b for b in market_data.fetch_ohlcv(job.symbol, job.timeframe, since=cursor, limit=lim.page_limit)]
        pages += 1
        page = [b for b in page if b.ts >= cursor]  # a venue that ignores `since` must not loop us
        raw.extend(page)
        if len(page) < lim.page_limit or not page:
            complete = True
            break
        cursor = max(b.ts for b in page) + step

    good, rejected = validate_bars(raw, job, now)
    # Repair: ask once more for each hole; a venue page may skip bars it does have.
    for start, end, missing in find_gaps([b.ts for b in good], job, after=last):
        _acquire(cache, bucket, lim, sleep)
        pages += 1
        refill = market_data.fetch_ohlcv(job.symbol, job.timeframe, since=start, limit=missing)
        more, more_rejected = validate_bars((b for b in refill if start <= b.ts < end), job, now)
        good, rejected = (
            sorted({b.ts: b for b in (*good, *more)}.values(), key=lambda b: b.ts),
            rejected + [r for r in more_rejected if r not in rejected],
        )
    gaps = tuple(
        BarGap(venue=job.venue, symbol=job.symbol, timeframe=job.timeframe, start=s, end=e, missing=n)
        for s, e, n in find_gaps([b.ts for b in good], job, after=last)
    )
    if gaps and gap_log is not None:
        gap_log.record_gaps(gaps)

    by_reason: dict[str, int] = {}
    for r in rejected:
        by_reason[r.reason.value] = by_reason.get(r.reason.value, 0) + 1
    base = IngestResult(
        job=job,
        fetched=len(raw),
        pages=pages,
        complete=complete,
        rejections=tuple(rejected),
        gaps=gaps,
        rejected_by_reason=by_reason,
    )
    if not good:
        return base

    stored = store.upsert_bars(good)
    first, newest = good[0], good[-1]
    cache.put_quote(
        Quote(
            venue=job.venue,
            symbol=job.symbol,
            ts=newest.ts + step,  # a bar's close is the price at its close time
            bid=newest.close,
            ask=newest.close,
            bid_size=Decimal(0),
            ask_size=Decimal(0),
        )
    )
    data = BarsIngested(
        venue=job.venue,
        symbol=job.symbol,
        timeframe=job.timeframe,
        count=len(good),
        first_ts=first.ts,
        last_ts=newest.ts,
    )
    event = new_event(
        "bars.ingested",
        data,
        occurred_at=now,
        event_id=_stable_id("bars.ingested", job.venue, job.symbol, job.timeframe, first.ts, newest.ts),
        correlation_id=correlation_id,
    )
    bus.publish([event])
    return IngestResult(
        job=job,
        fetched=len(raw),
        stored=stored,
        pages=pages,
        complete=complete,
        rejections=tuple(rejected),
        gaps=gaps,
        first_ts=first.ts,
        last_ts=newest.ts,
        lag=now - (newest.ts + step),
        event=event,
        rejected_by_reason=by_reason,
    )
