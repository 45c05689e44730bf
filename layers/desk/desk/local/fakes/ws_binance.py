"""A Binance-shaped WebSocket + REST market-data venue on 127.0.0.1 that replays the real captures.

The real ccxt.pro client connects to it (``urls['api']['ws']`` and the REST base pointed here, see
:meth:`FakeBinanceWs.ccxt_urls`). Each market (``spot``, ``usdm``) replays its capture files
(``desk.local.catalogue.tick_lines``: ``<receive ns> <JSON>``) merged by receive time, at ``speed``
times real time, to every connection subscribed to the symbol. Venue times (``E``, ``T``) are
rebased to the moment of sending, so staleness judged against the wall clock behaves as live.

The fake keeps its own book per symbol (the capture's REST snapshot plus every diff it has sent),
so ``GET /api/v3/depth`` / ``GET /fapi/v1/depth`` answer with a snapshot consistent with the stream
at any moment, as Binance does. Controls (thread-safe, callable from tests):

* :meth:`drop` closes every connection of a market (clients must reconnect);
* :meth:`silence` / :meth:`resume` pause and restart a market's tape (connections stay open, mute);
* :meth:`skip_sequence` sends the next depth diff of a symbol to nobody (a sequence gap);
* :meth:`send_malformed` sends one frame that is not JSON;
* ``loops`` replays the tape again at the end: connections drop (like venue maintenance) and the
  update ids jump forward, so sequence numbers stay increasing across loops.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import json
import threading
import time
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from aiohttp import WSMsgType, web

from desk.local.catalogue import tick_lines

__all__ = ["DEFAULT_CAPTURES", "FakeBinanceWs", "Tape"]

DEFAULT_CAPTURES: Mapping[str, Sequence[str]] = {
    "spot": ("ticks/hftbacktest_spot_btcusdt_20240808.gz", "ticks/hftbacktest_spot_ethusdt_20240808.gz"),
    "usdm": ("ticks/hftbacktest_usdm_btcusdt_20240808.gz",),
}
_ASSETS = {"BTCUSDT": ("BTC", "USDT"), "ETHUSDT": ("ETH", "USDT")}


def load_capture(name: str, max_lines: int) -> tuple[str, dict[str, Any], list[tuple[int, dict[str, Any]]]]:
    """(symbol id, first REST snapshot, the first ``max_lines`` stream messages as (receive ns, data))."""
    snapshot: dict[str, Any] | None = None
    messages: list[tuple[int, dict[str, Any]]] = []
    symbol = ""
    with tick_lines(name) as lines:
        for n, line in enumerate(lines):
            if n >= max_lines:
                break
            ns, _, text = line.partition(" ")
            obj = json.loads(text)
            if "lastUpdateId" in obj:
                snapshot = snapshot or obj
                continue
            data = obj["data"]
            data.setdefault("e", "bookTicker")  # spot bookTicker frames carry no event type
            symbol = data["s"]
            messages.append((int(ns), data))
    if snapshot is None:
        raise ValueError(f"{name}: no depth snapshot in the first {max_lines} lines")
    return symbol, snapshot, messages


@dataclass
class Tape:
    """One symbol's replay state: the messages, the fake's own book and the update-id offset."""

    symbol: str
    snapshot: dict[str, Any]
    messages: list[tuple[int, dict[str, Any]]]
    offset: int = 0
    bids: dict[Decimal, str] = field(default_factory=dict)
    asks: dict[Decimal, str] = field(default_factory=dict)
    last_id: int = 0
    skip_next_depth: bool = False

    def reset(self) -> None:
        self.bids = {Decimal(p): q for p, q in self.snapshot["bids"]}
        self.asks = {Decimal(p): q for p, q in self.snapshot["asks"]}
        self.last_id = int(self.snapshot["lastUpdateId"])

    def apply(self, data: dict[str, Any]) -> None:
        if int(data["u"]) <= self.last_id:
            return  # older than the book: Binance would not have it in the snapshot either
        for side, levels in ((self.bids, data["b"]), (self.asks, data["a"])):
            for price, qty in levels:
                if Decimal(qty) == 0:
                    side.pop(Decimal(price), None)
                else:
                    side[Decimal(price)] = qty
        self.last_id = int(data["u"])

    def depth(self, limit: int) -> dict[str, Any]:
        bids = sorted(self.bids.items(), reverse=True)[:limit]
        asks = sorted(self.asks.items())[:limit]
        return {
            "lastUpdateId": self.last_id + self.offset,
            "bids": [[str(p), q] for p, q in bids],
            "asks": [[str(p), q] for p, q in asks],
        }


class _Conn:
    def __init__(self, ws: web.WebSocketResponse, market: str) -> None:
        self.ws = ws
        self.market = market
        self.streams: set[str] = set()  # "btcusdt@depth", "btcusdt@trade", "btcusdt@ticker"


class FakeBinanceWs:
    """``with FakeBinanceWs(speed=20) as venue:``; :meth:`ccxt_urls` gives the URL overrides."""

    def __init__(
        self,
        *,
        captures: Mapping[str, Sequence[str]] = DEFAULT_CAPTURES,
        speed: float = 20.0,
        max_lines: int = 3000,
        loops: int = 1,
        autostart: bool = True,
    ) -> None:
        if speed <= 0 or loops < 1:
            raise ValueError("speed must be > 0 and loops >= 1")
        self.speed = speed
        self.loops = loops
        self.tapes: dict[str, dict[str, Tape]] = {}
        for market, names in captures.items():
            for name in names:
                symbol, snapshot, messages = load_capture(name, max_lines)
                tape = Tape(symbol, snapshot, messages)
                tape.reset()
                self.tapes.setdefault(market, {})[symbol] = tape
        self.stats: Counter[str] = Counter()
        self.finished = threading.Event()  # set when every market has played all its loops
        self._autostart = autostart
        self._conns: set[_Conn] = set()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="fake-binance-ws", daemon=True)
        self._runner: web.AppRunner | None = None
        self._playing: dict[str, asyncio.Event] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self.port = 0

    # ------------------------------------------------------------------ lifecycle
    def __enter__(self) -> FakeBinanceWs:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(10)
        return self

    def __exit__(self, *exc: object) -> None:
        asyncio.run_coroutine_threadsafe(self._stop(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()

    async def _start(self) -> None:
        app = web.Application()
        app.router.add_get("/api/v3/exchangeInfo", self._exchange_info)
        app.router.add_get("/fapi/v1/exchangeInfo", self._exchange_info)
        app.router.add_get("/api/v3/depth", self._depth)
        app.router.add_get("/fapi/v1/depth", self._depth)
        app.router.add_get("/{tail:.*}", self._websocket)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        for market in self.tapes:
            self._playing[market] = asyncio.Event()
            if self._autostart:
                self._playing[market].set()
            self._tasks.append(asyncio.create_task(self._play(market)))

    async def _stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        for conn in list(self._conns):
            await conn.ws.close()
        if self._runner is not None:
            await self._runner.cleanup()

    def _call(self, fn: Any, *args: Any) -> None:
        self._loop.call_soon_threadsafe(fn, *args)

    # ------------------------------------------------------------------ controls
    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def ccxt_urls(self, market: str) -> tuple[str, str]:
        """(ws base, REST base) for ccxt: spot URLs must contain ``/stream`` (ccxt tells spot by it)."""
        if market == "spot":
            return f"ws://127.0.0.1:{self.port}/stream/spot/ws", f"{self.base_url}/api/v3"
        return f"ws://127.0.0.1:{self.port}/usdm/ws", f"{self.base_url}/fapi/v1"

    def start(self, market: str | None = None) -> None:
        self.resume(market)

    def silence(self, market: str | None = None) -> None:
        for name in self._markets(market):
            self._call(self._playing[name].clear)

    def resume(self, market: str | None = None) -> None:
        for name in self._markets(market):
            self._call(self._playing[name].set)

    def drop(self, market: str | None = None) -> None:
        fut = asyncio.run_coroutine_threadsafe(self._drop(market), self._loop)
        fut.result(10)

    def skip_sequence(self, market: str, symbol: str) -> None:
        def flag() -> None:
            self.tapes[market][symbol].skip_next_depth = True

        self._call(flag)

    def send_malformed(self, market: str) -> None:
        async def send() -> None:
            for conn in [c for c in self._conns if c.market == market]:
                await conn.ws.send_str('{"stream": "btcusdt@trade", "data": {"e": "trade", ')
            self.stats["malformed"] += 1

        asyncio.run_coroutine_threadsafe(send(), self._loop).result(10)

    def connections(self, market: str | None = None) -> int:
        return sum(1 for c in list(self._conns) if market is None or c.market == market)

    def _markets(self, market: str | None) -> list[str]:
        return list(self.tapes) if market is None else [market]

    async def _drop(self, market: str | None) -> None:
        for conn in [c for c in self._conns if market is None or c.market == market]:
            await conn.ws.close()
        self.stats["drops"] += 1

    # ------------------------------------------------------------------ replay
    def _merged(self, market: str) -> Iterator[tuple[int, str, dict[str, Any]]]:
        def labelled(tape: Tape) -> Iterator[tuple[int, str, dict[str, Any]]]:
            return ((ns, tape.symbol, data) for ns, data in tape.messages)

        return heapq.merge(*(labelled(t) for t in self.tapes[market].values()), key=lambda item: item[0])

    async def _play(self, market: str) -> None:
        playing = self._playing[market]
        for loop in range(self.loops):
            self.stats[f"loop:{market}"] = loop + 1  # the loop now playing (tests snapshot between loops)
            if loop:
                for tape in self.tapes[market].values():
                    tape.offset += tape.last_id - int(tape.snapshot["lastUpdateId"]) + 1_000
                    tape.reset()
                await self._drop(market)
            await playing.wait()
            start_ns, wall = None, time.monotonic()
            for ns, symbol, data in self._merged(market):
                if start_ns is None:
                    start_ns = ns
                if not playing.is_set():
                    paused = time.monotonic()
                    await playing.wait()
                    wall += time.monotonic() - paused
                delay = wall + (ns - start_ns) / 1e9 / self.speed - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
                await self._emit(market, self.tapes[market][symbol], data)
        self.stats[f"finished:{market}"] += 1
        if all(self.stats[f"finished:{m}"] for m in self.tapes):
            self.finished.set()

    async def _emit(self, market: str, tape: Tape, data: dict[str, Any]) -> None:
        kind = data["e"]
        now_ms = int(time.time() * 1000)
        out = dict(data)
        for key in ("E", "T"):
            if key in out:
                out[key] = now_ms
        if kind == "depthUpdate":
            tape.apply(data)
            for key in ("U", "u", "pu"):
                if key in out:
                    out[key] = int(out[key]) + tape.offset
            if tape.skip_next_depth:
                tape.skip_next_depth = False
                self.stats["skipped"] += 1
                return
            frames = [("depth", out)]
        elif kind == "trade":
            frames = [("trade", out)]
        elif kind == "bookTicker":
            # Binance's 24h ticker carries the top of book too; the fake derives it from bookTicker.
            ticker = {"e": "24hrTicker", "E": now_ms, "s": data["s"], "b": data["b"], "B": data["B"]}
            ticker |= {"a": data["a"], "A": data["A"], "c": data["b"], "C": now_ms}
            frames = [("bookTicker", out), ("ticker", ticker)]
        else:
            return
        for conn in list(self._conns):
            if conn.market != market:
                continue
            for stream_kind, payload in frames:
                if any(s.startswith(f"{tape.symbol.lower()}@{stream_kind}") for s in conn.streams):
                    with contextlib.suppress(ConnectionError):
                        await conn.ws.send_str(json.dumps(payload))
                    self.stats["sent"] += 1

    # ------------------------------------------------------------------ handlers
    async def _websocket(self, request: web.Request) -> web.StreamResponse:
        if not request.headers.get("Upgrade", "").lower() == "websocket":
            raise web.HTTPNotFound()
        ws = web.WebSocketResponse(heartbeat=None, autoping=True)
        await ws.prepare(request)
        conn = _Conn(ws, "spot" if "/stream" in request.path else "usdm")
        self._conns.add(conn)
        self.stats["connections"] += 1
        try:
            async for msg in ws:
                if msg.type != WSMsgType.TEXT:
                    continue
                req = json.loads(msg.data)
                if req.get("method") == "SUBSCRIBE":
                    conn.streams.update(req.get("params", []))
                    self.stats["subscribe"] += 1
                elif req.get("method") == "UNSUBSCRIBE":
                    conn.streams.difference_update(req.get("params", []))
                await ws.send_str(json.dumps({"result": None, "id": req.get("id")}))
        finally:
            self._conns.discard(conn)
        return ws

    async def _depth(self, request: web.Request) -> web.Response:
        market = "spot" if request.path.startswith("/api/") else "usdm"
        tape = self.tapes.get(market, {}).get(request.query.get("symbol", ""))
        if tape is None:
            return web.json_response({"code": -1121, "msg": "Invalid symbol."}, status=400)
        self.stats[f"snapshot:{market}:{tape.symbol}"] += 1
        body = tape.depth(int(request.query.get("limit", "1000")))
        if market == "usdm":
            body |= {"E": int(time.time() * 1000), "T": int(time.time() * 1000)}
        return web.json_response(body)

    async def _exchange_info(self, request: web.Request) -> web.Response:
        futures = request.path.startswith("/fapi/")
        symbols = [self._symbol_info(s, futures) for s in self.tapes.get("usdm" if futures else "spot", {})]
        return web.json_response({"timezone": "UTC", "serverTime": int(time.time() * 1000), "symbols": symbols})

    @staticmethod
    def _symbol_info(symbol: str, futures: bool) -> dict[str, Any]:
        base, quote = _ASSETS.get(symbol, (symbol[:-4], symbol[-4:]))
        filters = [
            {"filterType": "PRICE_FILTER", "minPrice": "0.01", "maxPrice": "1000000", "tickSize": "0.01"},
            {"filterType": "LOT_SIZE", "minQty": "0.00001", "maxQty": "9000", "stepSize": "0.00001"},
        ]
        info: dict[str, Any] = {"symbol": symbol, "status": "TRADING", "baseAsset": base, "quoteAsset": quote}
        info |= {"baseAssetPrecision": 8, "quotePrecision": 8, "quoteAssetPrecision": 8, "filters": filters}
        if futures:
            info |= {"contractType": "PERPETUAL", "marginAsset": quote, "pricePrecision": 2, "quantityPrecision": 3}
            info |= {"deliveryDate": 4133404800000, "onboardDate": 1569398400000, "underlyingType": "COIN"}
        else:
            info |= {"isSpotTradingAllowed": True, "isMarginTradingAllowed": False, "permissionSets": [["SPOT"]]}
        return info
