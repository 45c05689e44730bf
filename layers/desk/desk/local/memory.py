"""In-memory adapters for the ports: the store, the quote cache, the event bus and a market-data feed.

They honour the contracts in :mod:`desk.ports` (idempotent writes on the natural keys, newer-wins
quotes, a token-bucket ``acquire``) so use-case tests and the local cloud exercise the same rules
the PostgreSQL, Redis and EventBridge adapters enforce. Each one also exposes what it recorded
(``published``, ``gaps``, ``calls``...) so tests can assert on behaviour rather than on mocks.

:class:`FrameMarketData` serves real bars from pandas frames (``desk.local.catalogue``) the way a
venue does: oldest first, at most ``page_limit`` per call (so callers must paginate), only closed
bars when given a clock, and with holes where it is told to leave a gap or where the source has
no trades (a real venue returns nothing for an hour without trades; CSV mirrors fill it with flat
zero-volume rows).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pandas as pd

from desk.domain.errors import DuplicateFillConflict, PublishFailed
from desk.domain.instruments import Instrument, PrecisionMode
from desk.domain.orders import Fill
from desk.domain.positions import position_from_fills
from desk.events import Envelope
from desk.ports import Clock
from desk.schemas.analytics import CorrelationSnapshot, Regime, RiskSnapshot, Signal
from desk.schemas.market import Bar, BarGap, OrderBook, Quote
from desk.schemas.trading import ExecutionPlan, KillSwitchState, OrderRecord, PositionRecord
from desk.usecases.ingest import STEPS as TIMEFRAME_DELTAS

__all__ = [
    "TIMEFRAME_DELTAS",
    "FrameMarketData",
    "MemoryEventBus",
    "MemoryQuoteCache",
    "MemoryStore",
]

BarKey = tuple[str, str, str]  # (venue, symbol, timeframe)


class MemoryStore:
    """The :class:`~desk.ports.Store` in dictionaries, idempotent on the same keys as PostgreSQL."""

    def __init__(self) -> None:
        self.bars: dict[BarKey, dict[datetime, Bar]] = {}
        self.gaps: dict[tuple[BarKey, datetime], BarGap] = {}
        self.regimes: dict[tuple[str, str, str, datetime], Regime] = {}
        self.correlations: dict[tuple[str, str, int, datetime], CorrelationSnapshot] = {}
        self.risk_snapshots: dict[tuple[str, datetime], RiskSnapshot] = {}
        self.signals: dict[str, Signal] = {}
        self.plans: dict[str, ExecutionPlan] = {}
        self.orders: dict[str, OrderRecord] = {}
        self.order_events: dict[str, Envelope] = {}
        self.fills: dict[tuple[str, str], Fill] = {}
        self.adjustments: set[tuple[str, str]] = set()
        self._kill_switch = KillSwitchState(latched=False)

    # bars -------------------------------------------------------------------------------------
    def upsert_bars(self, bars: Sequence[Bar]) -> int:
        for bar in bars:
            self.bars.setdefault((bar.venue, bar.symbol, bar.timeframe), {})[bar.ts] = bar
        return len(bars)

    def load_bars(self, venue: str, symbol: str, timeframe: str, start: datetime, end: datetime) -> Sequence[Bar]:
        series = self.bars.get((venue, symbol, timeframe), {})
        return [series[ts] for ts in sorted(series) if start <= ts < end]

    def last_bar_time(self, venue: str, symbol: str, timeframe: str) -> datetime | None:
        series = self.bars.get((venue, symbol, timeframe))
        return max(series) if series else None

    def bar_count(self, venue: str, symbol: str, timeframe: str) -> int:
        return len(self.bars.get((venue, symbol, timeframe), {}))

    # gaps (not yet on the Store port: ingest records what the venue could not fill) -------------
    def record_gaps(self, gaps: Sequence[BarGap]) -> int:
        """Idempotent on (series, start); returns how many were new."""
        new = 0
        for gap in gaps:
            key = ((gap.venue, gap.symbol, gap.timeframe), gap.start)
            new += key not in self.gaps
            self.gaps[key] = gap
        return new

    def known_gaps(self, venue: str, symbol: str, timeframe: str) -> Sequence[BarGap]:
        series = (venue, symbol, timeframe)
        return [gap for (key, _), gap in sorted(self.gaps.items(), key=lambda kv: kv[0][1]) if key == series]

    # analytics ---------------------------------------------------------------------------------
    def save_regime(self, regime: Regime) -> None:
        self.regimes[(regime.symbol, regime.timeframe, regime.model, regime.ts)] = regime

    def latest_regime(self, symbol: str, timeframe: str) -> Regime | None:
        found = [r for (s, tf, _, _), r in self.regimes.items() if s == symbol and tf == timeframe]
        return max(found, key=lambda r: r.ts) if found else None

    def save_correlation(self, snapshot: CorrelationSnapshot) -> None:
        self.correlations[(snapshot.timeframe, snapshot.method, snapshot.window, snapshot.ts)] = snapshot

    def latest_correlation(self, timeframe: str, method: str, window: int | None = None) -> CorrelationSnapshot | None:
        found = [
            c
            for (tf, m, w, _), c in self.correlations.items()
            if (tf, m) == (timeframe, method) and window in (None, w)
        ]
        return max(found, key=lambda c: c.ts) if found else None

    def save_risk_snapshot(self, snapshot: RiskSnapshot) -> None:
        self.risk_snapshots[(snapshot.portfolio, snapshot.ts)] = snapshot

    def latest_risk_snapshot(self, portfolio: str) -> RiskSnapshot | None:
        found = [s for (p, _), s in self.risk_snapshots.items() if p == portfolio]
        return max(found, key=lambda s: s.ts) if found else None

    def save_signal(self, signal: Signal) -> bool:
        if signal.signal_id in self.signals:
            return False
        self.signals[signal.signal_id] = signal
        return True

    # plans, orders, fills ----------------------------------------------------------------------
    def save_plan(self, plan: ExecutionPlan) -> bool:
        if plan.plan_id in self.plans:
            return False
        self.plans[plan.plan_id] = plan
        return True

    def load_plan(self, plan_id: str) -> ExecutionPlan | None:
        return self.plans.get(plan_id)

    def upsert_order(self, order: OrderRecord) -> None:
        current = self.orders.get(order.client_order_id)
        # Like the SQL adapter: a late, lower-ranked report never moves an order backwards.
        if current is not None and order.state.rank < current.state.rank:
            return
        self.orders[order.client_order_id] = order

    def load_order(self, client_order_id: str) -> OrderRecord | None:
        return self.orders.get(client_order_id)

    def open_orders(self, venue: str | None = None) -> Sequence[OrderRecord]:
        return [o for o in self.orders.values() if not o.state.is_terminal and venue in (None, o.venue)]

    def append_order_event(self, event: Envelope) -> bool:
        if event.id in self.order_events:
            return False
        self.order_events[event.id] = event
        return True

    def record_fill(self, fill: Fill, *, adjustment: bool = False) -> bool:
        key = (fill.venue, fill.venue_trade_id)
        existing = self.fills.get(key)
        if existing is not None:
            if existing != fill:
                raise DuplicateFillConflict(f"fill {key} already recorded with different content")
            return False
        self.fills[key] = fill
        if adjustment:
            self.adjustments.add(key)
        return True

    def load_fills(
        self, venue: str | None = None, symbol: str | None = None, since: datetime | None = None
    ) -> Sequence[Fill]:
        found = [
            f
            for f in self.fills.values()
            if venue in (None, f.venue) and symbol in (None, f.symbol) and (since is None or f.occurred_at >= since)
        ]
        return sorted(found, key=lambda f: (f.occurred_at, f.venue_trade_id))

    def fills_for_orders(self, client_order_ids: Sequence[str]) -> Sequence[Fill]:
        wanted = set(client_order_ids)
        return sorted(
            (f for f in self.fills.values() if f.client_order_id in wanted),
            key=lambda f: (f.occurred_at, f.venue_trade_id),
        )

    def positions(self, as_of: datetime, venue: str | None = None, symbol: str | None = None) -> list[PositionRecord]:
        by_key: dict[tuple[str, str], list[Fill]] = {}
        for f in self.load_fills(venue, symbol):
            by_key.setdefault((f.venue, f.symbol), []).append(f)
        out = []
        for (v, s), own in sorted(by_key.items()):
            p = position_from_fills(own, venue=v, symbol=s)
            out.append(
                PositionRecord(
                    venue=v, symbol=s, quantity=p.quantity, average_price=p.average_price,
                    realised_pnl=p.realised_pnl, as_of=as_of,
                )
            )  # fmt: skip
        return out

    # kill switch ---------------------------------------------------------------------------------
    def kill_switch(self) -> KillSwitchState:
        return self._kill_switch

    def latch_kill_switch(self, reason: str, at: datetime, by: str) -> KillSwitchState:
        if not self._kill_switch.latched:
            self._kill_switch = KillSwitchState(latched=True, reason=reason, changed_at=at, changed_by=by)
        return self._kill_switch

    def release_kill_switch(self, at: datetime, by: str) -> KillSwitchState:
        if self._kill_switch.latched:
            self._kill_switch = KillSwitchState(latched=False, changed_at=at, changed_by=by)
        return self._kill_switch


class MemoryQuoteCache:
    """The :class:`~desk.ports.QuoteCache` in dictionaries, with per-bucket token budgets.

    ``budgets`` maps a bucket to the tokens it holds (no refill: tests call :meth:`refill`); a bucket
    without a budget grants every request. A refused ``acquire`` returns ``retry_after`` seconds.
    """

    def __init__(self, budgets: Mapping[str, float] | None = None, retry_after: float = 1.0) -> None:
        self.quotes: dict[tuple[str, str], Quote] = {}
        self.books: dict[tuple[str, str], OrderBook] = {}
        self.tokens: dict[str, float] = dict(budgets or {})
        self.granted: dict[str, float] = {}
        self.refused: dict[str, int] = {}
        self.retry_after = retry_after

    def put_quote(self, quote: Quote) -> None:
        key = (quote.venue, quote.symbol)
        current = self.quotes.get(key)
        if current is None or quote.ts >= current.ts:
            self.quotes[key] = quote

    def get_quote(self, venue: str, symbol: str) -> Quote | None:
        return self.quotes.get((venue, symbol))

    def is_stale(self, venue: str, symbol: str, now: datetime, max_age: timedelta) -> bool:
        quote = self.quotes.get((venue, symbol))
        return quote is None or now - quote.ts > max_age

    def put_book(self, book: OrderBook) -> None:
        key = (book.venue, book.symbol)
        current = self.books.get(key)
        if current is None:
            self.books[key] = book
        elif book.sequence is not None and current.sequence is not None:
            if book.sequence >= current.sequence:
                self.books[key] = book
        elif book.ts >= current.ts:
            self.books[key] = book

    def get_book(self, venue: str, symbol: str) -> OrderBook | None:
        return self.books.get((venue, symbol))

    def acquire(self, bucket: str, cost: float = 1.0) -> float:
        if bucket in self.tokens:
            if self.tokens[bucket] < cost:
                self.refused[bucket] = self.refused.get(bucket, 0) + 1
                return self.retry_after
            self.tokens[bucket] -= cost
        self.granted[bucket] = self.granted.get(bucket, 0.0) + cost
        return 0.0

    def refill(self, bucket: str, tokens: float) -> None:
        self.tokens[bucket] = self.tokens.get(bucket, 0.0) + tokens


class MemoryEventBus:
    """The :class:`~desk.ports.EventBus` as a list: ``published`` holds every accepted envelope in order.

    ``fail_types`` makes publishing those event types raise :class:`PublishFailed` (the rest of the
    batch is still accepted, like a partial ``PutEvents`` failure).
    """

    def __init__(self, fail_types: Iterable[str] = ()) -> None:
        self.published: list[Envelope] = []
        self.fail_types = set(fail_types)

    def publish(self, events: Sequence[Envelope]) -> None:
        failed = [e.id for e in events if e.type in self.fail_types]
        self.published.extend(e for e in events if e.type not in self.fail_types)
        if failed:
            raise PublishFailed(failed)

    def of_type(self, type_: str) -> list[Envelope]:
        return [e for e in self.published if e.type == type_]


@dataclass(frozen=True, slots=True)
class FetchCall:
    symbol: str
    timeframe: str
    since: datetime | None
    limit: int | None
    returned: int


def _utc_index(frame: pd.DataFrame) -> pd.DatetimeIndex:
    index = pd.DatetimeIndex(frame.index)
    return index.tz_localize(UTC) if index.tz is None else index.tz_convert(UTC)


def _dec(value: Any) -> Decimal:
    # repr keeps the float's shortest round-trip digits, as the venue printed them.
    return Decimal(repr(float(value)))


class FrameMarketData:
    """A :class:`~desk.ports.MarketData` that serves bars from OHLCV frames keyed by (symbol, timeframe).

    Frames need ``open``, ``high``, ``low``, ``close``, ``volume`` columns and a datetime index (naive
    means UTC). Bars are built with ``Bar.model_construct`` — as a fast adapter backfill does — so
    a bad source row reaches the caller and must be caught by validation, not by this fake.

    Parameters
    ----------
    venue
        The venue id stamped on every bar.
    frames
        ``{(symbol, timeframe): frame}``.
    page_limit
        The most bars one ``fetch_ohlcv`` returns (the venue's page size); callers paginate.
    drop_empty
        Omit zero-volume rows, as a venue omits intervals without trades.
    clock
        When given, a bar is served only once closed (``ts + timeframe <= now``).
    instruments
        The venue's instruments by symbol (its tick and lot grid); by default every symbol trades in
        cents and 8 decimal places of the base.
    """

    def __init__(
        self,
        venue: str,
        frames: Mapping[tuple[str, str], pd.DataFrame],
        *,
        page_limit: int = 500,
        drop_empty: bool = False,
        clock: Clock | None = None,
        instruments: Mapping[str, Instrument] | None = None,
    ) -> None:
        self._venue = venue
        self._instruments = dict(instruments or {})
        self.page_limit = page_limit
        self.clock = clock
        self.calls: list[FetchCall] = []
        self.ticker_calls = 0
        self._series: dict[tuple[str, str], list[Bar]] = {}
        for (symbol, timeframe), frame in frames.items():
            data = frame[frame["volume"] > 0] if drop_empty else frame
            self._series[(symbol, timeframe)] = self._bars(symbol, timeframe, data)

    def _bars(self, symbol: str, timeframe: str, frame: pd.DataFrame) -> list[Bar]:
        columns = [frame[c].to_numpy() for c in ("open", "high", "low", "close", "volume")]
        return [
            Bar.model_construct(
                venue=self._venue,
                symbol=symbol,
                timeframe=timeframe,
                ts=ts.to_pydatetime(),
                open=_dec(o),
                high=_dec(h),
                low=_dec(lo),
                close=_dec(c),
                volume=_dec(v),
            )
            for ts, o, h, lo, c, v in zip(_utc_index(frame), *columns, strict=True)
        ]

    # test controls ---------------------------------------------------------------------------------
    def leave_gap(self, symbol: str, timeframe: str, start: datetime, end: datetime) -> int:
        """Drop bars ``start <= ts < end`` for good (the venue has no data there); returns how many."""
        series = self._series[(symbol, timeframe)]
        kept = [b for b in series if not start <= b.ts < end]
        self._series[(symbol, timeframe)] = kept
        return len(series) - len(kept)

    def corrupt(self, symbol: str, timeframe: str, ts: datetime, **fields: Any) -> None:
        """Replace fields of the bar at ``ts`` (e.g. ``high=...`` below its low): a bad row from the venue."""
        series = self._series[(symbol, timeframe)]
        for i, bar in enumerate(series):
            if bar.ts == ts:
                series[i] = Bar.model_construct(**{**bar.__dict__, **fields})
                return
        raise KeyError(f"no bar at {ts} for {symbol} {timeframe}")

    def series(self, symbol: str, timeframe: str) -> Sequence[Bar]:
        return tuple(self._series[(symbol, timeframe)])

    # MarketData -------------------------------------------------------------------------------------
    @property
    def venue(self) -> str:
        return self._venue

    def markets(self) -> Mapping[str, Instrument]:
        out: dict[str, Instrument] = {}
        for symbol, _ in self._series:
            if symbol in self._instruments:
                out[symbol] = self._instruments[symbol]
                continue
            base, _, quote = symbol.partition("/")
            out[symbol] = Instrument(
                venue=self._venue,
                symbol=symbol,
                base=base,
                quote=quote or "USD",
                precision_mode=PrecisionMode.DECIMAL_PLACES,
                price_precision=Decimal(2),
                amount_precision=Decimal(8),
            )
        return out

    def _closed(self, symbol: str, timeframe: str) -> list[Bar]:
        series = self._series.get((symbol, timeframe), [])
        if self.clock is None:
            return series
        now, step = self.clock.now(), TIMEFRAME_DELTAS[timeframe]
        return [b for b in series if b.ts + step <= now]

    def fetch_ohlcv(
        self, symbol: str, timeframe: str, since: datetime | None = None, limit: int | None = None
    ) -> Sequence[Bar]:
        size = min(limit or self.page_limit, self.page_limit)
        page = [b for b in self._closed(symbol, timeframe) if since is None or b.ts >= since][:size]
        self.calls.append(FetchCall(symbol, timeframe, since, limit, len(page)))
        return page

    def fetch_ticker(self, symbol: str) -> Quote:
        """A locked quote at the last closed bar's close, stamped with that bar's close time."""
        self.ticker_calls += 1
        timeframe = next(tf for s, tf in self._series if s == symbol)
        last = self._closed(symbol, timeframe)[-1]
        return Quote(
            venue=self._venue,
            symbol=symbol,
            ts=last.ts + TIMEFRAME_DELTAS[timeframe],
            bid=last.close,
            ask=last.close,
            bid_size=Decimal(0),
            ask_size=Decimal(0),
        )

    def fetch_order_book(self, symbol: str, depth: int = 20) -> OrderBook:
        quote = self.fetch_ticker(symbol)
        return OrderBook(venue=self._venue, symbol=symbol, ts=quote.ts, bids=(), asks=())
