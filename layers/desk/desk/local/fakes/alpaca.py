"""A fake Alpaca (trading v2 + market data v2) on 127.0.0.1, with a ground-truth ledger and faults.

Real alpaca-py clients talk to it through ``url_override``. It serves the routes the desk's adapter
calls, in Alpaca's JSON shapes (which alpaca-py's models validate):

``GET /v2/account`` · ``GET /v2/assets`` · ``GET /v2/assets/{symbol}`` · ``POST /v2/orders`` ·
``GET /v2/orders`` · ``GET /v2/orders/{id}`` · ``GET /v2/orders:by_client_order_id`` ·
``DELETE /v2/orders/{id}`` · ``GET /v2/positions`` · ``GET /v2/account/activities/FILL`` ·
``GET /v2/stocks/bars`` · ``GET /v2/stocks/{symbol}/bars`` · ``GET /v2/stocks/quotes/latest`` ·
``GET /v2/stocks/{symbol}/quotes/latest``

Daily bars are real (``desk.local.catalogue.spy_2017_2018()`` by default), stamped at midnight New
York time like Alpaca's, paged ``page_size`` at a time with opaque ``next_page_token`` s. The quote
is the last served close ± ``half_spread``; :meth:`FakeAlpaca.set_quote` moves it and matches
resting limit orders. Market orders fill at the touch; limit orders fill when marketable.

Faults come from a seed (``fault_rates``: a probability per fault for each order POST) or are
queued for the next call to an operation (:meth:`FakeAlpaca.queue_fault`):

* ``timeout_after_accept`` books the order, then holds the response past any client timeout;
* ``error_after_accept`` books the order, then answers 500;
* ``rate_limit`` (429 with ``Retry-After``) and ``server_error`` (503) refuse before any effect;
* ``partial_fill`` fills half of a marketable order and leaves the rest working;
* ``reject`` answers 422 without booking.
"""

from __future__ import annotations

import base64
import json
import random
import threading
import uuid
from collections import Counter, deque
from collections.abc import Callable, Mapping
from contextlib import suppress
from datetime import UTC, datetime
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pandas as pd

from desk.local.fakes._alpaca_ledger import AlpacaMatching, FakeAsset, Fault, Json, _HttpError, _parse_time, _time

__all__ = ["FakeAlpaca", "FakeAsset", "Fault"]


def _daily_bars(frame: pd.DataFrame) -> list[Json]:
    # Alpaca stamps a daily bar at midnight New York time, in UTC (04:00Z or 05:00Z).
    stamps = pd.DatetimeIndex(frame.index).tz_localize("America/New_York").tz_convert("UTC")
    rows: list[list[float]] = frame[["open", "high", "low", "close", "volume"]].to_numpy(dtype=float).tolist()
    return [
        {"t": _time(ts.to_pydatetime()), "o": o, "h": h, "l": lo, "c": c, "v": v, "n": 1000, "vw": (h + lo + c) / 3}
        for ts, (o, h, lo, c, v) in zip(stamps, rows, strict=True)
    ]


class FakeAlpaca(AlpacaMatching):
    """The fake server and its ledger. Use as a context manager; ``url`` is the base for both clients."""

    def __init__(
        self,
        bars: Mapping[str, pd.DataFrame] | None = None,
        *,
        assets: tuple[FakeAsset, ...] | None = None,
        seed: int = 0,
        fault_rates: Mapping[Fault, float] | None = None,
        cash: Decimal = Decimal(100_000),
        page_size: int = 100,
        half_spread: Decimal = Decimal("0.01"),
        stall_seconds: float = 30.0,
        start: datetime = datetime(2019, 1, 2, 15, tzinfo=UTC),
    ) -> None:
        if bars is None:
            from desk.local.catalogue import spy_2017_2018

            bars = {"SPY": spy_2017_2018()}
        self.bars = {symbol: _daily_bars(frame) for symbol, frame in bars.items()}
        self.assets = {a.symbol: a for a in (assets or tuple(FakeAsset(s) for s in bars))}
        self.cash = cash
        self.page_size = page_size
        self.stall_seconds = stall_seconds
        self.orders: dict[str, Json] = {}  # by Alpaca id, in submission order
        self.fills: list[Json] = []  # FILL activities
        self.positions: dict[str, tuple[Decimal, Decimal]] = {}  # symbol -> (qty, average cost)
        self.requests: Counter[str] = Counter()  # operation -> calls, for tests
        self.quotes = {s: self._initial_quote(s, half_spread) for s in self.assets}
        self._rng = random.Random(seed)  # noqa: S311 - reproducible faults and ids, not secrets
        self._rates = dict(fault_rates or {})
        self._queued: dict[str, deque[Fault]] = {}
        self._now = start
        self._lock = threading.RLock()
        self._release = threading.Event()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------------ lifecycle

    def __enter__(self) -> FakeAlpaca:
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self._server.daemon_threads = True
        # A short poll keeps shutdown (which waits one poll) fast in tests.
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, name="fake-alpaca", daemon=True
        )
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._release.set()  # wake stalled responses so their threads end
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError("start the fake with `with FakeAlpaca() as fake:`")
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    # ------------------------------------------------------------------ internals

    def _initial_quote(self, symbol: str, half_spread: Decimal) -> tuple[Decimal, Decimal, Decimal]:
        served = self.bars.get(symbol)
        last = Decimal(repr(served[-1]["c"])) if served else Decimal(10)
        return last - half_spread, last + half_spread, Decimal(100)

    def handle(
        self, method: str, path: str, query: Mapping[str, str], body: Json | None
    ) -> tuple[int, Any, Fault | None]:
        """Route one request: (status, JSON body, fault to apply after the effect)."""
        routes: list[tuple[str, str, Callable[..., tuple[int, Any, Fault | None]]]] = [
            ("GET", "/v2/account", self._account),
            ("GET", "/v2/assets", self._assets),
            ("GET", "/v2/positions", self._positions),
            ("GET", "/v2/account/activities/FILL", self._activities),
            ("GET", "/v2/orders:by_client_order_id", self._order_by_client_id),
            ("POST", "/v2/orders", self._create),
            ("GET", "/v2/orders", self._list_orders),
            ("GET", "/v2/stocks/bars", self._bars),
            ("GET", "/v2/stocks/quotes/latest", self._latest_quotes),
        ]
        for verb, route, action in routes:
            if (method, path) == (verb, route):
                return action(query, body)
        parts = path.strip("/").split("/")
        if parts[:2] == ["v2", "orders"] and len(parts) == 3:
            return (self._cancel if method == "DELETE" else self._get_order)(parts[2])
        if parts[:2] == ["v2", "assets"] and len(parts) == 3:
            return 200, self._asset_json(self._asset(parts[2])), None
        if parts[:2] == ["v2", "stocks"] and len(parts) >= 4:
            symbol, rest = parts[2], "/".join(parts[3:])
            if rest == "bars":
                status, payload, fault = self._bars({**query, "symbols": symbol}, None)
                return status, {**payload, "bars": payload["bars"].get(symbol, []), "symbol": symbol}, fault
            if rest == "quotes/latest":
                return 200, {"symbol": symbol, "quote": self._quote_json(symbol)}, None
        raise _HttpError(404, 40410000, f"route not found: {method} {path}")

    def _asset_json(self, a: FakeAsset) -> Json:
        return {"id": str(uuid.uuid5(uuid.NAMESPACE_URL, a.symbol)), "class": "us_equity", "exchange": a.exchange,
                "symbol": a.symbol, "name": a.symbol, "status": "active", "tradable": a.tradable,
                "marginable": True, "shortable": False, "easy_to_borrow": False, "fractionable": a.fractionable,
                "attributes": []}  # fmt: skip

    def _assets(self, query: Mapping[str, str], _: object) -> tuple[int, Any, None]:
        return 200, [self._asset_json(a) for a in self.assets.values()], None

    # ------------------------------------------------------------------ market data

    def _bars(self, query: Mapping[str, str], _: object) -> tuple[int, Any, Fault | None]:
        fault = self.fault("bars")
        if fault is Fault.RATE_LIMIT:
            raise _HttpError(429, 42910000, "rate limit exceeded", {"Retry-After": "1"})
        if fault is Fault.SERVER_ERROR:
            raise _HttpError(500, 50010000, "internal server error")
        if query.get("timeframe") != "1Day":
            raise _HttpError(422, 42210000, f"the fake serves 1Day bars only, not {query.get('timeframe')}")
        start = _parse_time(query["start"]) if query.get("start") else None
        end = _parse_time(query["end"]) if query.get("end") else None
        limit = min(int(query.get("limit") or 1000), self.page_size)
        out: dict[str, list[Json]] = {}
        next_token = None
        for symbol in query.get("symbols", "").split(","):
            rows = [b for b in self.bars.get(symbol, []) if (start is None or _parse_time(b["t"]) >= start)
                    and (end is None or _parse_time(b["t"]) <= end)]  # fmt: skip
            if query.get("sort") == "desc":
                rows.reverse()
            offset = int(base64.b64decode(query["page_token"])) if query.get("page_token") else 0
            out[symbol] = rows[offset : offset + limit]
            if offset + limit < len(rows):
                next_token = base64.b64encode(str(offset + limit).encode()).decode()
        return 200, {"bars": out, "next_page_token": next_token}, None

    def _quote_json(self, symbol: str) -> Json:
        self._asset(symbol)
        bid, ask, size = self.quotes[symbol]
        return {"t": _time(self._now), "bp": float(bid), "ap": float(ask), "bs": float(size), "as": float(size),
                "bx": "V", "ax": "V", "c": ["R"], "z": "B"}  # fmt: skip

    def _latest_quotes(self, query: Mapping[str, str], _: object) -> tuple[int, Any, None]:
        return 200, {"quotes": {s: self._quote_json(s) for s in query.get("symbols", "").split(",")}}, None


def _handler(fake: FakeAlpaca) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            pass  # quiet: tests read the ledger, not the access log

        def _serve(self, method: str) -> None:
            split = urlsplit(self.path)
            query = {k: v[-1] for k, v in parse_qs(split.query).items()}
            length = int(self.headers.get("Content-Length") or 0)
            body = json.loads(self.rfile.read(length)) if length else None
            fake.requests[f"{method} {split.path}"] += 1
            if not self.headers.get("APCA-API-KEY-ID") or not self.headers.get("APCA-API-SECRET-KEY"):
                return self._send(401, {"code": 40110000, "message": "request is not authorized"})
            try:
                with fake._lock:
                    status, payload, after = fake.handle(method, split.path, query, body)
            except _HttpError as err:
                return self._send(err.status, {"code": err.code, "message": err.message}, err.headers)
            if after is Fault.TIMEOUT_AFTER_ACCEPT:
                fake._release.wait(fake.stall_seconds)  # booked; the answer never arrives in time
                return self.close_connection_now()
            if after is Fault.ERROR_AFTER_ACCEPT:
                return self._send(500, {"code": 50010000, "message": "internal server error"})
            self._send(status, payload)

        def close_connection_now(self) -> None:
            self.close_connection = True

        def _send(self, status: int, payload: Any, headers: Mapping[str, str] | None = None) -> None:
            data = b"" if payload is None else json.dumps(payload).encode()
            with suppress(OSError):  # the client may have given up (timeouts)
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for key, value in (headers or {}).items():
                    self.send_header(key, value)
                self.end_headers()
                self.wfile.write(data)

        def do_GET(self) -> None:
            self._serve("GET")

        def do_POST(self) -> None:
            self._serve("POST")

        def do_DELETE(self) -> None:
            self._serve("DELETE")

    return Handler
