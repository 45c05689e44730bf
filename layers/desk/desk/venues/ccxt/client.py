"""The ccxt adapter: :class:`desk.ports.Venue` for any ccxt exchange, by id (synchronous client).

Every call goes through :meth:`CcxtVenue._call`, which takes tokens from the injected rate limiter
first and turns any exception into :mod:`desk.venues.errors`, so nothing of ccxt leaks out.

Order safety: an order is never resent without first looking it up by its client order id.
:meth:`CcxtVenue.create_order` sends once; when the send may have reached the venue (timeout, dropped
connection, 5xx) it raises :class:`AmbiguousOrderState` instead of guessing.
:meth:`CcxtVenue.place_order_idempotent` is what use cases call: look up, send, and after an ambiguous
failure look up again and resend only when the venue says it has never seen the id.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any

from desk.clock import SystemClock
from desk.domain.errors import InvalidOrder
from desk.domain.instruments import Instrument
from desk.domain.orders import Fill
from desk.ports import Clock, Venue
from desk.schemas.market import Bar, OrderBook, Quote
from desk.schemas.trading import Balance, OrderIntent, OrderRecord, PositionRecord
from desk.venues.ccxt import mapping
from desk.venues.ccxt.config import CcxtVenueConfig
from desk.venues.ccxt.errors import translate
from desk.venues.errors import (
    AmbiguousOrderState,
    DuplicateClientOrderId,
    OrderNotFound,
    OrderRejected,
    RateLimited,
    RetryableVenueError,
    UnknownSymbol,
)

__all__ = ["Acquire", "CcxtVenue", "build_exchange"]

# acquire(bucket, cost) -> seconds to wait before asking again (0.0 = granted); QuoteCache.acquire fits.
Acquire = Callable[[str, float], float]
_TIMEFRAME_MS = {"1m": 60_000, "5m": 300_000, "15m": 900_000, "30m": 1_800_000, "1h": 3_600_000}
_TIMEFRAME_MS |= {"4h": 14_400_000, "1d": 86_400_000}


def build_exchange(config: CcxtVenueConfig) -> Any:
    """A configured ccxt instance. ccxt's own throttle is off: the shared limiter replaces it."""
    import ccxt  # type: ignore[import-untyped]  # lazily: 60 MB, slow to import

    exchange = getattr(ccxt, config.exchange_id)(
        {
            "apiKey": config.api_key,
            "secret": config.secret,
            "password": config.password,
            "enableRateLimit": False,
            "timeout": config.timeout_ms,
            "options": config.ccxt_options(),
        }
    )
    if config.sandbox:
        exchange.set_sandbox_mode(True)
    if config.base_url:
        _point_at(exchange.urls, config.base_url.rstrip("/"))
    return exchange


def _point_at(urls: dict[str, Any], base: str) -> None:
    """Replace scheme and host of every REST URL under ``urls['api']``, keeping each path, so no call
    (public, private, sapi, futures) can reach the real venue."""

    def rewrite(value: Any) -> Any:
        if isinstance(value, str) and "://" in value:
            scheme_host, _, path = value.partition("://")[2].partition("/")
            return f"{base}/{path}" if scheme_host else value
        if isinstance(value, dict):
            return {k: rewrite(v) for k, v in value.items()}
        return value

    urls["api"] = rewrite(urls["api"])


class CcxtVenue:
    """:class:`desk.ports.Venue` over a ccxt exchange. ``acquire``/``sleep``/``clock`` are injected."""

    def __init__(
        self,
        config: CcxtVenueConfig,
        *,
        exchange: Any | None = None,
        acquire: Acquire | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Clock | None = None,
    ) -> None:
        self.config = config
        self._exchange: Any = exchange if exchange is not None else build_exchange(config)
        self._acquire = acquire
        self._sleep = sleep
        self._clock: Clock = clock or SystemClock()
        self._instruments: dict[str, Instrument] | None = None
        self._instruments_at = 0.0  # time.monotonic() of the last load
        self._client_ids: dict[str, str] = {}  # venue order id -> client order id (fills carry only the former)

    @property
    def venue(self) -> str:
        return self.config.venue_id

    # ------------------------------------------------------------------ plumbing
    def _throttle(self, operation: str) -> None:
        if self._acquire is None:
            return
        cost, waited = self.config.cost(operation), 0.0
        while (wait := self._acquire(self.config.bucket, cost)) > 0:
            if waited + wait > self.config.max_rate_wait_seconds:
                raise RateLimited(
                    f"bucket {self.config.bucket} needs {wait:.3f}s more",
                    venue=self.venue,
                    operation=operation,
                    retry_after=wait,
                )
            self._sleep(wait)
            waited += wait

    def _call(self, operation: str, method: str, *args: Any, **kwargs: Any) -> Any:
        self._throttle(operation)
        try:
            return getattr(self._exchange, method)(*args, **kwargs)
        except Exception as exc:  # every client exception is mapped, none escapes
            raise translate(exc, self._exchange, venue=self.venue, operation=operation) from exc

    def _remember(self, record: OrderRecord) -> OrderRecord:
        if record.venue_order_id is not None:
            self._client_ids[record.venue_order_id] = record.client_order_id
        return record

    def _order(self, raw: Any) -> OrderRecord:
        return self._remember(mapping.order_from_ccxt(self.venue, raw, self._clock.now()))

    # ------------------------------------------------------------------ market data
    def markets(self) -> Mapping[str, Instrument]:
        """Spot markets, halted ones included (``active=False``), re-read after ``markets_ttl_seconds``."""
        stale = time.monotonic() - self._instruments_at > self.config.markets_ttl_seconds
        if self._instruments is None or stale:
            raw = self._call("load_markets", "load_markets", self._instruments is not None)  # reload=True when stale
            mode = self._exchange.precisionMode
            self._instruments = {
                symbol: mapping.instrument_from_market(self.venue, market, mode)
                for symbol, market in raw.items()
                if market.get("spot", True)
            }
            self._instruments_at = time.monotonic()
        return self._instruments

    def instrument(self, symbol: str) -> Instrument:
        found = self.markets().get(symbol)
        if found is None:
            raise UnknownSymbol(f"{symbol} is not listed", venue=self.venue, operation="markets")
        return found

    def fetch_ohlcv(
        self, symbol: str, timeframe: str, since: datetime | None = None, limit: int | None = None
    ) -> Sequence[Bar]:
        self.instrument(symbol)
        since_ms = None if since is None else mapping.to_ms(since)
        rows = self._call("fetch_ohlcv", "fetch_ohlcv", symbol, timeframe, since_ms, limit)
        return self._closed_bars(symbol, timeframe, rows, since_ms, None)[: limit or None]

    def backfill_ohlcv(
        self, symbol: str, timeframe: str, since: datetime, until: datetime | None = None, page_limit: int = 1000
    ) -> list[Bar]:
        """Closed bars with ``since <= ts < until`` (now if None), ascending, paging forward ``page_limit``
        at a time. Pages may overlap or repeat a bar; each open time is kept once."""
        self.instrument(symbol)
        step = _TIMEFRAME_MS[timeframe]
        cursor, end = mapping.to_ms(since), mapping.to_ms(until or self._clock.now())
        bars: dict[int, Bar] = {}
        while cursor < end:
            params = {"until": end - 1}
            rows = self._call("fetch_ohlcv", "fetch_ohlcv", symbol, timeframe, cursor, page_limit, params)
            for bar in self._closed_bars(symbol, timeframe, rows, cursor, end):
                bars[mapping.to_ms(bar.ts)] = bar
            if not rows:
                break
            cursor = max(cursor + step, int(rows[-1][0]) + step)  # always forward, even on a stuck page
        return [bars[ts] for ts in sorted(bars)]

    def _closed_bars(self, symbol: str, timeframe: str, rows: Any, start: int | None, end: int | None) -> list[Bar]:
        # The bar still forming must never be stored: it would change after ingest.
        now_ms, step = mapping.to_ms(self._clock.now()), _TIMEFRAME_MS[timeframe]
        keep = [
            row
            for row in rows or []
            if int(row[0]) + step <= now_ms
            and (start is None or int(row[0]) >= start)
            and (end is None or int(row[0]) < end)
        ]
        return [mapping.bar_from_ohlcv(self.venue, symbol, timeframe, row) for row in keep]

    def fetch_ticker(self, symbol: str) -> Quote:
        self.instrument(symbol)
        # Top of book: Binance's bookTicker (fetchBidsAsks) is lighter and fresher than the 24h ticker.
        if self._exchange.has.get("fetchBidsAsks"):
            ticker = self._call("fetch_ticker", "fetch_bids_asks", [symbol])[symbol]
        else:
            ticker = self._call("fetch_ticker", "fetch_ticker", symbol)
        return mapping.quote_from_ticker(self.venue, symbol, ticker, self._clock.now())

    def fetch_order_book(self, symbol: str, depth: int = 20) -> OrderBook:
        self.instrument(symbol)
        raw = self._call("fetch_order_book", "fetch_order_book", symbol, depth)
        return mapping.book_from_ccxt(self.venue, symbol, raw, self._clock.now(), depth)

    # ------------------------------------------------------------------ orders
    def create_order(self, intent: OrderIntent) -> OrderRecord:
        """Send once. A duplicate client id yields the existing order; a send that may have arrived
        raises :class:`AmbiguousOrderState` (look it up before any resend)."""
        try:
            request = mapping.order_request(intent, self.instrument(intent.symbol))
        except InvalidOrder as exc:
            raise OrderRejected(str(exc), venue=self.venue, operation="create_order", code=exc.reason) from exc
        try:
            return self._order(self._call("create_order", "create_order", *request))
        except DuplicateClientOrderId:
            existing = self.fetch_order_by_client_id(intent.symbol, intent.client_order_id)
            if existing is None:
                raise
            return existing
        except RateLimited:
            raise  # refused before processing: nothing was placed
        except RetryableVenueError as exc:
            raise AmbiguousOrderState(
                f"{intent.client_order_id}: {exc.message}",
                venue=self.venue,
                code=exc.code,
                client_order_id=intent.client_order_id,
            ) from exc

    def place_order_idempotent(self, intent: OrderIntent, *, lookup_first: bool = True) -> OrderRecord:
        """Place ``intent`` at most once, whatever failed before.

        ``lookup_first`` (default) makes a retried call safe: a Step Functions retry cannot tell that
        an earlier attempt timed out after the venue accepted, so the id is looked up before sending.
        Pass False only when the ledger proves the id was never sent. After an ambiguous send the id is
        looked up; only a definite "not found" allows the one resend. If the lookup itself fails, the
        :class:`AmbiguousOrderState` propagates and the caller's retry starts with a lookup again.
        """
        if lookup_first:
            existing = self.fetch_order_by_client_id(intent.symbol, intent.client_order_id)
            if existing is not None:
                return existing
        try:
            return self.create_order(intent)
        except AmbiguousOrderState as first:
            try:
                found = self.fetch_order_by_client_id(intent.symbol, intent.client_order_id)
            except RetryableVenueError as exc:
                raise first from exc
            if found is not None:
                return found
        return self.create_order(intent)

    def fetch_order_by_client_id(self, symbol: str, client_order_id: str) -> OrderRecord | None:
        self.instrument(symbol)
        try:
            raw = self._call("fetch_order", "fetch_order", None, symbol, {"clientOrderId": client_order_id})
        except OrderNotFound:
            return None
        return self._order(raw)

    def cancel_order(self, symbol: str, client_order_id: str) -> OrderRecord:
        self.instrument(symbol)
        try:
            return self._order(
                self._call("cancel_order", "cancel_order", None, symbol, {"clientOrderId": client_order_id})
            )
        except OrderNotFound:
            # Binance says "unknown order" for closed ones too: the port wants those back unchanged.
            existing = self.fetch_order_by_client_id(symbol, client_order_id)
            if existing is None:
                raise
            return existing

    def fetch_open_orders(self, symbol: str | None = None) -> Sequence[OrderRecord]:
        if symbol is not None:
            self.instrument(symbol)
        else:
            self.markets()
        return [self._order(raw) for raw in self._call("fetch_open_orders", "fetch_open_orders", symbol)]

    # ------------------------------------------------------------------ account
    def fetch_fills(self, since: datetime, symbol: str | None = None) -> Sequence[Fill]:
        symbols = [symbol] if symbol is not None else list(self.config.symbols)
        fills: list[Fill] = []
        for sym in symbols:
            self.instrument(sym)
            fills.extend(self._fills_for(sym, mapping.to_ms(since)))
        return sorted(fills, key=lambda f: (f.occurred_at, f.venue_trade_id))

    def _fills_for(self, symbol: str, since_ms: int, page: int = 1000) -> list[Fill]:
        trades: list[Any] = []
        rows = self._call("fetch_fills", "fetch_my_trades", symbol, since_ms, page)
        while rows:
            trades.extend(rows)
            if len(rows) < page:
                break
            # By trade id after the first page: time windows are capped at 24 h on Binance.
            rows = self._call("fetch_fills", "fetch_my_trades", symbol, None, page, {"fromId": int(rows[-1]["id"]) + 1})
        return [
            mapping.fill_from_trade(self.venue, t, self._client_id(symbol, str(t["order"])))
            for t in trades
            if int(t["timestamp"]) >= since_ms
        ]

    def _client_id(self, symbol: str, venue_order_id: str) -> str:
        if venue_order_id not in self._client_ids:
            self._order(self._call("fetch_order", "fetch_order", venue_order_id, symbol))
        return self._client_ids[venue_order_id]

    def fetch_balances(self) -> Mapping[str, Balance]:
        return mapping.balances_from_ccxt(self.venue, self._call("fetch_balances", "fetch_balance"))

    def fetch_positions(self, symbols: Sequence[str] | None = None) -> Sequence[PositionRecord]:
        """Spot: the base currency's total balance per symbol, at no known average price."""
        wanted = list(symbols if symbols is not None else self.config.symbols)
        balances, now = self.fetch_balances(), self._clock.now()
        positions = []
        for symbol in wanted:
            held = balances.get(self.instrument(symbol).base)
            if held is not None and held.total:
                positions.append(
                    PositionRecord(
                        venue=self.venue,
                        symbol=symbol,
                        quantity=held.total,
                        average_price=Decimal(0),
                        realised_pnl=Decimal(0),
                        as_of=now,
                    )
                )
        return positions


def _implements_the_port(venue: CcxtVenue) -> Venue:
    # mypy checks CcxtVenue against the Venue protocol here, so a port change fails lint, not production.
    return venue
