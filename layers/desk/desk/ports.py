"""Ports: the interfaces use cases receive. Adapters (store/, cache/, venues/, aws/, local/) implement them.

Shared contracts
----------------
* Every datetime in or out is timezone-aware UTC; every price, quantity and balance is ``Decimal``.
* Venue methods raise only :class:`~desk.domain.errors.RetryableVenueError` (timeouts, 429, 5xx,
  maintenance: the caller may retry with backoff) or :class:`~desk.domain.errors.PermanentVenueError`
  (rejections, insufficient funds, precision, unknown symbol), never a client library's own types.
* "Idempotent" means a repeat of the same call with the same arguments has no further effect and
  returns the same kind of answer, so at-least-once delivery and Step Functions retries are safe.
* Ports never read the clock themselves when a time is part of the decision: it is a parameter.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any, Protocol, runtime_checkable

from desk.domain.instruments import Instrument
from desk.domain.orders import Fill
from desk.events import Envelope
from desk.schemas.analytics import CorrelationSnapshot, Regime, RiskSnapshot, Signal
from desk.schemas.market import Bar, BarGap, OrderBook, Quote
from desk.schemas.trading import (
    Balance,
    ExecutionPlan,
    KillSwitchState,
    OrderIntent,
    OrderRecord,
    PositionRecord,
)

__all__ = ["Clock", "EventBus", "MarketData", "QuoteCache", "Store", "Venue"]


@runtime_checkable
class Clock(Protocol):
    """The only source of "now". Production: the system clock; local/tests: a replay or fixed clock."""

    def now(self) -> datetime:
        """The current time, timezone-aware UTC. Monotone non-decreasing between calls."""
        ...


class MarketData(Protocol):
    """Public market data from one venue (what ingest and the streamer need; no account access)."""

    @property
    def venue(self) -> str:
        """The venue id used in every record this port returns (``binance``, ``alpaca``, ``paper``)."""
        ...

    def markets(self) -> Mapping[str, Instrument]:
        """Instruments by unified symbol, with precision and limits. Cached by the adapter; cheap to call."""
        ...

    def fetch_ohlcv(
        self, symbol: str, timeframe: str, since: datetime | None = None, limit: int | None = None
    ) -> Sequence[Bar]:
        """Closed bars with open time >= ``since`` (oldest first), at most ``limit`` (venue default if None).

        The bar still forming is not returned, so a stored bar never changes. Empty when none exist.
        """
        ...

    def fetch_ticker(self, symbol: str) -> Quote:
        """The current top of book."""
        ...

    def fetch_order_book(self, symbol: str, depth: int = 20) -> OrderBook:
        """A depth snapshot with up to ``depth`` levels per side."""
        ...


class Venue(MarketData, Protocol):
    """Trading on one venue account. Orders are addressed by the desk's client order id."""

    def create_order(self, intent: OrderIntent) -> OrderRecord:
        """Send ``intent`` with ``newClientOrderId = intent.client_order_id``; return the venue's view.

        Not idempotent at the venue, but safe to retry by protocol: after a timeout the caller must
        call :meth:`fetch_order_by_client_id` and resend only if that finds nothing. A venue that
        reports the client id as a duplicate yields the existing order, not an error.
        """
        ...

    def fetch_order_by_client_id(self, symbol: str, client_order_id: str) -> OrderRecord | None:
        """The order with this client id, or ``None`` if the venue has never seen it (safe to send)."""
        ...

    def cancel_order(self, symbol: str, client_order_id: str) -> OrderRecord:
        """Request cancellation; idempotent. Returns the order's state after the request: already
        terminal orders come back unchanged (no error), unknown ones raise
        :class:`~desk.domain.errors.OrderNotFound`."""
        ...

    def fetch_open_orders(self, symbol: str | None = None) -> Sequence[OrderRecord]:
        """All working orders (every symbol when ``symbol`` is None)."""
        ...

    def fetch_fills(self, since: datetime, symbol: str | None = None) -> Sequence[Fill]:
        """Executions at or after ``since``, oldest first, each with its venue trade id (for dedupe)."""
        ...

    def fetch_balances(self) -> Mapping[str, Balance]:
        """Balances by currency (zero balances may be omitted)."""
        ...

    def fetch_positions(self, symbols: Sequence[str] | None = None) -> Sequence[PositionRecord]:
        """Venue-held positions (derivatives, equities); spot venues return derived ones or ``()``."""
        ...


class Store(Protocol):
    """The system of record (PostgreSQL). Writes are idempotent on the natural keys named below."""

    # bars -------------------------------------------------------------------------------------
    def upsert_bars(self, bars: Sequence[Bar], *, now: datetime | None = None) -> int:
        """Insert or overwrite by (venue, symbol, timeframe, ts); returns the number of rows written.

        Idempotent: an identical bar is left alone. Bad rows (high < low, negative volume, out of
        order, later than ``now``) are rejected with a reason and counted, never stored.
        """
        ...

    def load_bars(self, venue: str, symbol: str, timeframe: str, start: datetime, end: datetime) -> Sequence[Bar]:
        """Bars with ``start <= ts < end``, oldest first."""
        ...

    def last_bar_time(self, venue: str, symbol: str, timeframe: str) -> datetime | None:
        """The open time of the newest stored bar (ingest resumes after it); ``None`` if none."""
        ...

    # analytics ---------------------------------------------------------------------------------
    def save_regime(self, regime: Regime) -> None:
        """Idempotent on (symbol, timeframe, model, ts)."""
        ...

    def latest_regime(self, symbol: str, timeframe: str) -> Regime | None: ...

    def save_correlation(self, snapshot: CorrelationSnapshot) -> None:
        """Idempotent on (timeframe, method, window, ts)."""
        ...

    def latest_correlation(self, timeframe: str, method: str, window: int | None = None) -> CorrelationSnapshot | None:
        """The newest snapshot of that kind (any window when ``window`` is None), or None."""
        ...

    def record_gaps(self, gaps: Sequence[BarGap]) -> int:
        """Record bars the venue could not provide (never invented); idempotent on (series, start)."""
        ...

    def save_risk_snapshot(self, snapshot: RiskSnapshot) -> None:
        """Idempotent on (portfolio, ts)."""
        ...

    def latest_risk_snapshot(self, portfolio: str) -> RiskSnapshot | None: ...

    def save_signal(self, signal: Signal) -> bool:
        """Idempotent on ``signal_id``; returns False when it was already stored."""
        ...

    # plans, orders, fills ----------------------------------------------------------------------
    def save_plan(self, plan: ExecutionPlan) -> bool:
        """Idempotent on ``plan_id``; returns False when it existed (a redelivered signal)."""
        ...

    def load_plan(self, plan_id: str) -> ExecutionPlan | None: ...

    def upsert_order(self, order: OrderRecord) -> None:
        """Insert or update by ``client_order_id``. Callers pass states from the domain state machine,
        so the row only ever moves forward; an adapter may refuse a lower-ranked state."""
        ...

    def load_order(self, client_order_id: str) -> OrderRecord | None: ...

    def open_orders(self, venue: str | None = None) -> Sequence[OrderRecord]:
        """Orders in a non-terminal state (reconciliation's ledger side)."""
        ...

    def append_order_event(self, event: Envelope) -> bool:
        """Append to the order-event log; idempotent on ``event.id`` (returns False for a repeat)."""
        ...

    def record_fill(self, fill: Fill, *, adjustment: bool = False) -> bool:
        """Insert a fill, unique on (venue, venue_trade_id); returns False if it was already there.

        A different fill under an existing key raises
        :class:`~desk.domain.errors.DuplicateFillConflict`. ``adjustment`` flags fills that
        reconciliation took from the venue rather than from our own order flow.
        """
        ...

    def load_fills(
        self, venue: str | None = None, symbol: str | None = None, since: datetime | None = None
    ) -> Sequence[Fill]:
        """Fills matching the filters, oldest first (positions are folded from these)."""
        ...

    def fills_for_orders(self, client_order_ids: Sequence[str]) -> Sequence[Fill]:
        """The fills of these client order ids, oldest first."""
        ...

    def positions(
        self, as_of: datetime, venue: str | None = None, symbol: str | None = None
    ) -> Sequence[PositionRecord]:
        """Every (venue, symbol) position folded from the fills (``position_from_fills``), stamped ``as_of``."""
        ...

    # kill switch ---------------------------------------------------------------------------------
    def kill_switch(self) -> KillSwitchState:
        """The current latch (unlatched if it has never been set)."""
        ...

    def latch_kill_switch(self, reason: str, at: datetime, by: str) -> KillSwitchState:
        """Latch (idempotent: latching a latched switch keeps the first reason and time)."""
        ...

    def release_kill_switch(self, at: datetime, by: str, *, reason: str = "") -> KillSwitchState:
        """Release (a human action, recorded in the history). Raises ``KillSwitchNotLatched`` if not latched."""
        ...


class QuoteCache(Protocol):
    """Redis: data that may be lost and rebuilt (quotes, books, rate-limit buckets)."""

    def put_quote(self, quote: Quote) -> None:
        """Store if newer than the cached one (by ``quote.ts``); an older quote is ignored."""
        ...

    def get_quote(self, venue: str, symbol: str) -> Quote | None: ...

    def is_stale(self, venue: str, symbol: str, now: datetime, max_age: timedelta) -> bool:
        """True when there is no quote or ``now - quote.ts > max_age`` (pre-trade checks refuse then)."""
        ...

    def put_book(self, book: OrderBook) -> None:
        """Store if newer than the cached one (by ``sequence``, else ``ts``)."""
        ...

    def get_book(self, venue: str, symbol: str) -> OrderBook | None: ...

    def acquire(self, bucket: str, cost: float = 1.0) -> float:
        """Take ``cost`` tokens from the shared token bucket ``bucket`` (one per venue API key).

        Returns 0.0 when granted, else the seconds to wait before asking again (nothing is taken).
        Shared across all Lambda instances, so concurrent functions respect one venue limit.
        """
        ...


class EventBus(Protocol):
    """EventBridge (or the local bus). Delivery is at least once; consumers dedupe on event id."""

    def publish(self, events: Sequence[Envelope]) -> None:
        """Publish all ``events`` (batched as the transport needs). On partial failure raise
        :class:`~desk.domain.errors.PublishFailed` with the failed ids; re-publishing those is safe."""
        ...


class ExecutionStarter(Protocol):
    """Starts the order-placement state machine (Step Functions ``StartExecution``).

    ``start`` is idempotent on ``name``: starting a name that already exists with the same input
    returns that execution's ARN and starts nothing; the same name with other input is an error.
    """

    def start(self, name: str, execution_input: Mapping[str, Any]) -> str: ...


class Alerts(Protocol):
    """Operator alerts (SNS in AWS): one message with a subject line."""

    def publish(self, subject: str, message: str) -> None: ...
