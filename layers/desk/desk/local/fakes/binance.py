"""A Binance-shaped spot REST API on 127.0.0.1 with a ground-truth ledger and seeded faults.

Tests and ``make demo`` point the real ccxt client at it (see ``desk.venues.ccxt.config``). It keeps
what Binance keeps — orders, fills, balances — in :class:`Ledger`, so a test can compare what the
client believes with what the "venue" holds. Behaviour that matters for order safety is Binance's:

* a client order id is unique among OPEN orders only (``-2010 Duplicate order sent.``); once an order
  is filled or cancelled the same id is accepted again, which is exactly why a resend without a
  lookup would duplicate an order;
* filters are checked as Binance does (``-1013 Filter failure: PRICE_FILTER | LOT_SIZE | NOTIONAL``),
  balance last (``-2010 Account has insufficient balance for requested action.``);
* marketable orders fill at once against the configured book (taker, at the touch), others rest.

Faults come from :class:`FaultPlan`: queued per route for a single test, or drawn from a seeded RNG
per order placement. ``TIMEOUT_AFTER_ACCEPT`` and ``DROP_AFTER_ACCEPT`` record the order and then
hold the response past the client's timeout or close the connection without one.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from desk.local.fakes._binance_ledger import (
    DEFAULT_MARKETS,
    ORDER_ROUTE,
    BinanceMatching,
    FakeMarket,
    Fault,
    FaultPlan,
    Ledger,
    LedgerFill,
    LedgerOrder,
    Payload,
    VenueReject,
    _d,
)

__all__ = [
    "ORDER_ROUTE",
    "FakeBinance",
    "FakeMarket",
    "Fault",
    "FaultPlan",
    "Kline",
    "Ledger",
    "LedgerFill",
    "LedgerOrder",
]

# (open time ms, open, high, low, close, volume) as Binance's strings.
Kline = tuple[int, str, str, str, str, str]
INTERVAL_MS = {"1m": 60_000, "5m": 300_000, "15m": 900_000, "30m": 1_800_000, "1h": 3_600_000, "4h": 14_400_000}
INTERVAL_MS["1d"] = 86_400_000


class FakeBinance(BinanceMatching):
    """Start with ``with FakeBinance() as fake:``; ``fake.base_url`` is ``http://127.0.0.1:<port>``."""

    def __init__(
        self,
        *,
        markets: Sequence[FakeMarket] = DEFAULT_MARKETS,
        klines: Mapping[tuple[str, str], Sequence[Kline]] | None = None,
        balances: Mapping[str, Decimal] | None = None,
        faults: FaultPlan | None = None,
        fee_rate: Decimal = Decimal("0.001"),
        clock_ms: Callable[[], int] | None = None,
        api_key: str = "test-key",
    ) -> None:
        self.markets = {m.symbol: m for m in markets}
        self.klines = dict(klines or {})
        start = balances if balances is not None else {"USDT": Decimal(100_000), "BTC": Decimal(1), "ETH": Decimal(10)}
        self.ledger = Ledger({asset: [Decimal(v), Decimal(0)] for asset, v in start.items()})
        self.faults = faults or FaultPlan()
        self.fee_rate = fee_rate
        self.clock_ms = clock_ms or (lambda: int(time.time() * 1000))
        self.api_key = api_key
        self.requests: list[tuple[str, str, dict[str, str]]] = []  # (method, path, params) as received
        self._stopping = threading.Event()
        self._server: ThreadingHTTPServer | None = None
        self._ids = iter(range(1, 10**9))

    # ---------------------------------------------------------------- lifecycle
    @property
    def base_url(self) -> str:
        assert self._server is not None, "FakeBinance is not started"  # noqa: S101 - a usage error
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def start(self) -> FakeBinance:
        server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        server.daemon_threads = True
        server.fake = self  # type: ignore[attr-defined]
        self._server = server
        # A short poll keeps stop() fast (shutdown waits for the loop to notice).
        threading.Thread(target=server.serve_forever, args=(0.05,), name="fake-binance", daemon=True).start()
        return self

    def stop(self) -> None:
        self._stopping.set()  # releases held "timeout" responses at once
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    def __enter__(self) -> FakeBinance:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()

    # ---------------------------------------------------------------- test helpers
    def fill_resting(self, client_order_id: str, quantity: Decimal | None = None) -> None:
        """Fill an open order (all that remains, or ``quantity``) at its limit price, as a maker."""
        with self.ledger.lock:
            order = next(o for o in reversed(self.ledger.orders) if o.client_order_id == client_order_id and o.is_open)
            assert order.price is not None  # noqa: S101 - resting orders are limit orders
            self._fill(order, quantity or order.quantity - order.executed, order.price)

    # ---------------------------------------------------------------- dispatch
    def handle(
        self, method: str, path: str, params: dict[str, str], headers: Mapping[str, str], fault: Fault | None = None
    ) -> Payload:
        routes: dict[str, Callable[[dict[str, str]], Payload]] = {
            "GET /api/v3/ping": lambda p: {},
            "GET /api/v3/time": lambda p: {"serverTime": self.clock_ms()},
            "GET /api/v3/exchangeInfo": self._exchange_info,
            "GET /api/v3/klines": self._klines,
            "GET /api/v3/ticker/bookTicker": self._book_ticker,
            "GET /api/v3/depth": self._depth,
            ORDER_ROUTE: lambda p: self._new_order(p, fault),
            "GET /api/v3/order": self._get_order,
            "DELETE /api/v3/order": self._cancel_order,
            "GET /api/v3/openOrders": self._open_orders,
            "GET /api/v3/myTrades": self._my_trades,
            "GET /api/v3/account": self._account,
        }
        route = f"{method} {path}"
        if route not in routes:
            raise VenueReject(404, -1100, f"Unknown route {route}")
        if "signature" in params or route in (ORDER_ROUTE, "GET /api/v3/account"):
            if headers.get("X-MBX-APIKEY") != self.api_key:
                raise VenueReject(401, -2014, "API-key format invalid.")
            if "signature" not in params or "timestamp" not in params:
                raise VenueReject(400, -1102, "Mandatory parameter 'signature' was not sent.")
        return routes[route](params)

    # ---------------------------------------------------------------- public endpoints
    def _exchange_info(self, params: dict[str, str]) -> Payload:
        def symbol(m: FakeMarket) -> dict[str, Any]:
            filters = [
                {"filterType": "PRICE_FILTER", "minPrice": _d(m.min_price), "maxPrice": _d(m.max_price),
                 "tickSize": _d(m.tick_size)},
                {"filterType": "LOT_SIZE", "minQty": _d(m.min_qty), "maxQty": _d(m.max_qty),
                 "stepSize": _d(m.step_size)},
                {"filterType": "NOTIONAL", "minNotional": _d(m.min_notional), "applyMinToMarket": True,
                 "maxNotional": "9000000", "applyMaxToMarket": False, "avgPriceMins": 5},
            ]  # fmt: skip
            return {
                "symbol": m.symbol, "status": m.status, "baseAsset": m.base, "baseAssetPrecision": 8,
                "quoteAsset": m.quote, "quotePrecision": 8, "quoteAssetPrecision": 8, "orderTypes": ["LIMIT", "MARKET"],
                "icebergAllowed": True, "ocoAllowed": True, "isSpotTradingAllowed": True,
                "isMarginTradingAllowed": False, "filters": filters, "permissions": [], "permissionSets": [["SPOT"]],
            }  # fmt: skip

        return {"timezone": "UTC", "serverTime": self.clock_ms(), "rateLimits": [], "exchangeFilters": [],
                "symbols": [symbol(m) for m in self.markets.values()]}  # fmt: skip

    def _klines(self, params: dict[str, str]) -> Payload:
        market, interval = self._market(params), params.get("interval", "")
        if interval not in INTERVAL_MS:
            raise VenueReject(400, -1120, "Invalid interval.")
        start, end = int(params.get("startTime", 0)), int(params.get("endTime", 2**62))
        limit = min(int(params.get("limit", 500)), 1000)
        bars = [k for k in self.klines.get((market.symbol, interval), ()) if start <= k[0] <= end][:limit]
        width = INTERVAL_MS[interval]
        return [[t, o, h, lo, c, v, t + width - 1, "0", 0, "0", "0", "0"] for t, o, h, lo, c, v in bars]

    def _book_ticker(self, params: dict[str, str]) -> Payload:
        def one(m: FakeMarket) -> dict[str, Any]:
            return {"symbol": m.symbol, "bidPrice": _d(m.bid), "bidQty": _d(m.depth_qty), "askPrice": _d(m.ask),
                    "askQty": _d(m.depth_qty)}  # fmt: skip

        if "symbol" in params:
            return one(self._market(params))
        wanted = json.loads(params["symbols"]) if "symbols" in params else list(self.markets)
        return [one(self._market({"symbol": s})) for s in wanted]

    def _depth(self, params: dict[str, str]) -> Payload:
        m, limit = self._market(params), min(int(params.get("limit", 100)), 5000)
        bids = [[_d(m.bid - i * m.tick_size), _d(m.depth_qty * (i + 1))] for i in range(limit)]
        asks = [[_d(m.ask + i * m.tick_size), _d(m.depth_qty * (i + 1))] for i in range(limit)]
        return {"lastUpdateId": len(self.requests), "bids": [b for b in bids if Decimal(b[0]) > 0], "asks": asks}


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as Binance; every answer carries Content-Length
    # One write per answer (flushed by http.server after each request) and no Nagle: otherwise the
    # header/body split meets delayed ACKs and every call costs 40 ms.
    wbufsize = 1 << 16
    disable_nagle_algorithm = True

    def log_message(self, format: str, *args: Any) -> None:
        """Silenced: pytest output stays readable."""

    def _dispatch(self) -> None:
        fake: FakeBinance = self.server.fake  # type: ignore[attr-defined]
        url = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length).decode() if length else ""
        params = dict(parse_qsl(url.query)) | dict(parse_qsl(body))
        route = f"{self.command} {url.path}"
        fake.requests.append((self.command, url.path, params))  # every request, faulted ones included
        fault = fake.faults.take(route)
        if fault is Fault.RATE_LIMIT:
            payload = {"code": -1003, "msg": "Too many requests; current limit is 1200 request weight per 1 MINUTE."}
            return self._send(429, payload, {"Retry-After": str(fake.faults.retry_after)})
        if fault is Fault.SERVER_ERROR:
            payload = {"code": -1001, "msg": "Internal error; unable to process your request. Please try again."}
            return self._send(503, payload)
        try:
            result = fake.handle(self.command, url.path, params, dict(self.headers.items()), fault)
        except VenueReject as exc:
            return self._send(exc.status, {"code": exc.code, "msg": exc.msg})
        if fault is Fault.TIMEOUT_AFTER_ACCEPT:
            fake._stopping.wait(fake.faults.hold_seconds)  # the client has given up long before
        if fault in (Fault.TIMEOUT_AFTER_ACCEPT, Fault.DROP_AFTER_ACCEPT):
            self.close_connection = True  # accepted, but the client never hears about it
            return None
        return self._send(200, result)

    def _send(self, status: int, payload: Payload, headers: Mapping[str, str] | None = None) -> None:
        data = json.dumps(payload).encode()
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json;charset=UTF-8")
            self.send_header("Content-Length", str(len(data)))
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True

    do_GET = do_POST = do_DELETE = _dispatch  # noqa: N815 - http.server's naming
