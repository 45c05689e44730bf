"""The Alpaca venue: :class:`desk.ports.Venue` for US equities over alpaca-py.

``TradingClient`` serves orders, positions, the account and assets; ``StockHistoricalDataClient``
serves bars and quotes. Both are real alpaca-py clients; the adapter only

* bounds every HTTP request with ``config.timeout_seconds`` (alpaca-py sets no timeout) and turns
  off alpaca-py's own retry loop (it sleeps 3 s on 429/504; retries belong to ASL ``Retry``);
* posts orders with exact decimal strings (see :func:`~desk.venues.alpaca.mapping.order_request_json`);
* reads fills from the ``FILL`` account activities (one record per execution, with a venue trade id),
  which ``TradingClient`` has no method for, through its generic ``get``.

Idempotent placement: an order is never resent blind. ``create_order`` whose send times out or
fails on the server side looks the order up by its client order id; if Alpaca has it, that is the
answer, and if not :class:`AmbiguousOrderState` tells the caller to look up again before resending.
A resend that Alpaca refuses as a duplicate (422 "client_order_id must be unique") yields the
existing order.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, TypeVar

from alpaca.common.enums import Sort
from alpaca.common.rest import RESTClient
from alpaca.data.enums import DataFeed
from alpaca.data.historical.stock import StockHistoricalDataClient
from alpaca.data.models import BarSet
from alpaca.data.requests import StockBarsRequest, StockLatestQuoteRequest
from alpaca.trading.client import TradingClient
from alpaca.trading.enums import AssetClass, AssetStatus, QueryOrderStatus
from alpaca.trading.models import Asset, Position, TradeAccount
from alpaca.trading.models import Order as AlpacaOrder
from alpaca.trading.requests import GetAssetsRequest, GetOrdersRequest
from requests.adapters import HTTPAdapter

from desk.clock import SystemClock
from desk.domain.instruments import Instrument
from desk.domain.orders import Fill
from desk.ports import Clock
from desk.schemas.market import Bar, OrderBook, Quote
from desk.schemas.trading import Balance, OrderIntent, OrderRecord, PositionRecord
from desk.venues.alpaca import mapping
from desk.venues.alpaca.config import AlpacaConfig
from desk.venues.alpaca.errors import translate_errors
from desk.venues.errors import (
    AmbiguousOrderState,
    DuplicateClientOrderId,
    OrderNotFound,
    PermanentVenueError,
    UnknownSymbol,
    VenueError,
    VenueTimeout,
    VenueUnavailable,
)

__all__ = ["AlpacaVenue"]

_ACTIVITY_PAGE = 100  # Alpaca's default and maximum page size for account activities


_T = TypeVar("_T")


class _TimeoutAdapter(HTTPAdapter):
    """Gives every request a timeout unless the caller set one."""

    def __init__(self, timeout: float) -> None:
        super().__init__(max_retries=0)
        self._timeout = timeout

    def send(self, request: Any, *args: Any, **kwargs: Any) -> Any:
        if kwargs.get("timeout") is None:
            kwargs["timeout"] = self._timeout
        return super().send(request, *args, **kwargs)


def _harden(client: RESTClient, timeout: float) -> None:
    # alpaca-py exposes neither knob publicly; both attributes have been stable since 0.8.
    client._retry = 0  # no silent resend, no sleep: a 429/504 surfaces and is classified
    adapter = _TimeoutAdapter(timeout)
    client._session.mount("https://", adapter)
    client._session.mount("http://", adapter)


def _expect(kind: type[_T], value: object, operation: str) -> _T:
    # alpaca-py returns ``Model | RawData``; with raw_data=False the model is guaranteed, checked here.
    if not isinstance(value, kind):
        raise PermanentVenueError(f"expected {kind.__name__}, got {type(value).__name__}", operation=operation)
    return value


class AlpacaVenue:
    """Alpaca (paper or live by ``config.paper``) as a :class:`desk.ports.Venue`; symbols are tickers."""

    def __init__(
        self,
        config: AlpacaConfig,
        *,
        clock: Clock | None = None,
        trading: TradingClient | None = None,
        data: StockHistoricalDataClient | None = None,
    ) -> None:
        self._config = config
        self._clock: Clock = clock or SystemClock()
        key, secret = config.api_key.get_secret_value(), config.secret_key.get_secret_value()
        self._trading = trading or TradingClient(key, secret, paper=config.paper, url_override=config.trading_base_url)
        self._data = data or StockHistoricalDataClient(key, secret, url_override=config.data_base_url)
        for client in (self._trading, self._data):
            _harden(client, config.timeout_seconds)
        self._markets: dict[str, Instrument] | None = None
        self._markets_at = 0.0  # time.monotonic() of the last load
        self._order_ids: dict[str, str] = {}  # Alpaca order id -> client order id (fills name only the former)

    @property
    def venue(self) -> str:
        return self._config.venue

    def _errors(self, operation: str) -> Any:
        return translate_errors(self.venue, operation)

    # ------------------------------------------------------------------ market data

    def markets(self) -> Mapping[str, Instrument]:
        """Active US equities, halted ones included (``active=False``), re-read after ``markets_ttl_seconds``."""
        if self._markets is None or time.monotonic() - self._markets_at > self._config.markets_ttl_seconds:
            request = GetAssetsRequest(status=AssetStatus.ACTIVE, asset_class=AssetClass.US_EQUITY)
            with self._errors("markets"):
                assets = self._trading.get_all_assets(request)
                self._markets = {
                    a.symbol: mapping.instrument_from_asset(
                        a,
                        self.venue,
                        fractional_decimals=self._config.fractional_decimals,
                        min_notional=self._config.fractional_min_notional,
                    )
                    for a in assets
                    if isinstance(a, Asset)
                }
                self._markets_at = time.monotonic()
        return self._markets

    def instrument(self, symbol: str) -> Instrument:
        found = self.markets().get(symbol)
        if found is None:
            raise UnknownSymbol(f"{symbol} is not an active tradable US equity", venue=self.venue, operation="markets")
        return found

    def fetch_ohlcv(
        self, symbol: str, timeframe: str, since: datetime | None = None, limit: int | None = None
    ) -> Sequence[Bar]:
        """Closed bars, oldest first. alpaca-py follows ``next_page_token`` until ``limit`` or the end.

        Without ``since`` the newest bars are asked for (``sort=desc``) and reversed, so ``limit``
        counts back from now. A bar is closed when ``ts + timeframe <= now``.
        """
        if timeframe not in mapping.TIMEFRAMES:
            raise PermanentVenueError(f"unsupported timeframe {timeframe}", venue=self.venue, operation="fetch_ohlcv")
        alpaca_timeframe, length = mapping.TIMEFRAMES[timeframe]
        now = self._clock.now()
        # One more than asked: the newest may be the forming bar, dropped below.
        ask = None if limit is None else limit + 1
        request = StockBarsRequest(
            symbol_or_symbols=symbol,
            timeframe=alpaca_timeframe,
            start=since,
            end=now,
            limit=ask,
            feed=DataFeed(self._config.feed),
            sort=Sort.ASC if since is not None else Sort.DESC,
        )
        with self._errors("fetch_ohlcv"):
            bar_set = _expect(BarSet, self._data.get_stock_bars(request), "fetch_ohlcv")
            raw = bar_set.data.get(symbol, [])
            bars = [mapping.bar_from_alpaca(b, self.venue, symbol, timeframe) for b in raw]
        bars.sort(key=lambda b: b.ts)
        closed = [b for b in bars if b.ts + length <= now and (since is None or b.ts >= since)]
        if limit is None:
            return closed
        return closed[:limit] if since is not None else closed[-limit:]

    def fetch_ticker(self, symbol: str) -> Quote:
        request = StockLatestQuoteRequest(symbol_or_symbols=symbol, feed=DataFeed(self._config.feed))
        with self._errors("fetch_ticker"):
            quotes = self._data.get_stock_latest_quote(request)
            if not isinstance(quotes, dict) or symbol not in quotes:
                raise UnknownSymbol(f"no quote for {symbol}", venue=self.venue, operation="fetch_ticker")
            return mapping.quote_from_alpaca(quotes[symbol], self.venue, symbol)

    def fetch_order_book(self, symbol: str, depth: int = 20) -> OrderBook:
        """The top of book only: Alpaca publishes no depth for equities (``depth`` cannot be honoured)."""
        return mapping.book_from_quote(self.fetch_ticker(symbol))

    # ------------------------------------------------------------------ orders

    def create_order(self, intent: OrderIntent) -> OrderRecord:
        instrument = self.instrument(intent.symbol)
        body = mapping.order_request_json(intent, instrument)
        try:
            with self._errors("create_order"):
                raw = self._trading.post("/orders", body)
                return self._record(AlpacaOrder(**_expect(dict, raw, "create_order")), "create_order")
        except DuplicateClientOrderId:
            existing = self.fetch_order_by_client_id(intent.symbol, intent.client_order_id)
            if existing is None:  # Alpaca said it has it; a lookup that misses is a venue inconsistency
                raise AmbiguousOrderState(
                    "duplicate client id but lookup found nothing",
                    venue=self.venue,
                    client_order_id=intent.client_order_id,
                ) from None
            return existing
        except (VenueTimeout, VenueUnavailable) as exc:
            # The request may have reached Alpaca: find out before anyone sends it again.
            return self._resolve_after_failed_send(intent, exc)

    def _resolve_after_failed_send(self, intent: OrderIntent, cause: VenueError) -> OrderRecord:
        try:
            existing = self.fetch_order_by_client_id(intent.symbol, intent.client_order_id)
        except VenueError as lookup_error:
            raise AmbiguousOrderState(
                f"create failed ({cause.message}) and the lookup failed too ({lookup_error.message})",
                venue=self.venue,
                client_order_id=intent.client_order_id,
            ) from cause
        if existing is not None:
            return existing
        raise AmbiguousOrderState(
            f"create failed ({cause.message}) and Alpaca does not show the order yet: look it up again, then resend",
            venue=self.venue,
            client_order_id=intent.client_order_id,
        ) from cause

    def fetch_order_by_client_id(self, symbol: str, client_order_id: str) -> OrderRecord | None:
        try:
            with self._errors("fetch_order_by_client_id"):
                order = self._trading.get_order_by_client_id(client_order_id)
                return self._record(_expect(AlpacaOrder, order, "fetch_order_by_client_id"), "fetch_order")
        except OrderNotFound:
            return None

    def cancel_order(self, symbol: str, client_order_id: str) -> OrderRecord:
        current = self.fetch_order_by_client_id(symbol, client_order_id)
        if current is None:
            raise OrderNotFound(f"no order {client_order_id}", venue=self.venue, operation="cancel_order")
        if current.state.is_terminal or current.venue_order_id is None:
            return current
        try:
            with self._errors("cancel_order"):
                self._trading.cancel_order_by_id(current.venue_order_id)
        except PermanentVenueError as exc:
            # 422 "order is not cancelable": it filled or was cancelled meanwhile; the lookup says which.
            if isinstance(exc, OrderNotFound):
                raise
        after = self.fetch_order_by_client_id(symbol, client_order_id)
        return after if after is not None else current

    def fetch_open_orders(self, symbol: str | None = None) -> Sequence[OrderRecord]:
        request = GetOrdersRequest(
            status=QueryOrderStatus.OPEN, limit=500, symbols=None if symbol is None else [symbol], direction=Sort.ASC
        )
        with self._errors("fetch_open_orders"):
            orders = self._trading.get_orders(request)
            records = [self._maybe_record(_expect(AlpacaOrder, o, "fetch_open_orders")) for o in orders]
        return [r for r in records if r is not None and not r.state.is_terminal]

    def _maybe_record(self, order: AlpacaOrder) -> OrderRecord | None:
        self._order_ids[str(order.id)] = order.client_order_id
        return mapping.order_record(order, self.venue)

    def _record(self, order: AlpacaOrder, operation: str) -> OrderRecord:
        record = self._maybe_record(order)
        if record is None:
            raise PermanentVenueError(f"order {order.client_order_id} is not a desk order", operation=operation)
        return record

    # ------------------------------------------------------------------ fills and account

    def fetch_fills(self, since: datetime, symbol: str | None = None) -> Sequence[Fill]:
        """``FILL`` activities after ``since`` (Alpaca's ``after`` is exclusive; the filter below keeps
        executions exactly at ``since``), paged by the last activity id, oldest first."""
        activities: list[Mapping[str, Any]] = []
        params: dict[str, Any] = {
            "after": since.astimezone(UTC).isoformat(),
            "direction": "asc",
            "page_size": _ACTIVITY_PAGE,
        }
        with self._errors("fetch_fills"):
            while True:
                page = _expect(list, self._trading.get("/account/activities/FILL", dict(params)), "fetch_fills")
                activities.extend(a for a in page if isinstance(a, dict))
                if len(page) < _ACTIVITY_PAGE:
                    break
                params["page_token"] = str(page[-1]["id"])
            fills = []
            for activity in activities:
                if symbol is not None and activity.get("symbol") != symbol:
                    continue
                client_id = self._client_id_of(str(activity["order_id"]))
                fill = mapping.fill_from_activity(activity, self.venue, client_id)
                if fill.occurred_at >= since:
                    fills.append(fill)
        return sorted(fills, key=lambda f: (f.occurred_at, f.venue_trade_id))

    def _client_id_of(self, order_id: str) -> str:
        if order_id not in self._order_ids:
            order = _expect(AlpacaOrder, self._trading.get_order_by_id(order_id), "fetch_fills")
            self._order_ids[order_id] = order.client_order_id
        return self._order_ids[order_id]

    def fetch_balances(self) -> Mapping[str, Balance]:
        with self._errors("fetch_balances"):
            account = _expect(TradeAccount, self._trading.get_account(), "fetch_balances")
            return mapping.balances_from_account(account, self.venue)

    def fetch_positions(self, symbols: Sequence[str] | None = None) -> Sequence[PositionRecord]:
        now = self._clock.now()
        with self._errors("fetch_positions"):
            positions = self._trading.get_all_positions()
            records = [
                mapping.position_from_alpaca(_expect(Position, p, "fetch_positions"), self.venue, now)
                for p in positions
            ]
        wanted = None if symbols is None else set(symbols)
        return [r for r in records if wanted is None or r.symbol in wanted]
