"""An Alpaca-shaped stock market-data WebSocket (v2, msgpack) on 127.0.0.1 for alpaca-py's StockDataStream.

alpaca-py connects through ``StockDataStream(url_override=FakeAlpacaWs.url)`` and runs the real
protocol: the server greets with ``[{"T": "success", "msg": "connected"}]``, the client sends
``{"action": "auth", ...}`` (answered ``authenticated`` or ``error`` 402), then
``{"action": "subscribe", "quotes": [...], "trades": [...], "bars": [...]}`` (answered with the
``subscription`` frame). Every frame is a msgpack array of messages and every ``t`` is a msgpack
``Timestamp`` (extension type -1), which is what alpaca-py decodes with ``to_datetime()``.

No equity tick capture exists in ``../shared/data``, so the tape walks the real SPY daily closes
(``desk.local.catalogue.spy_2017_2018``) one step per tick, ``rate`` ticks a second: each tick is a
quote (close ± one cent) and a trade at the close, and every ``bar_every`` ticks a minute bar of
those ticks (bar minutes are compressed: one per ``bar_every`` ticks). Venue times are the moment
of sending, so staleness judged against the wall clock behaves as live.

Controls (thread-safe, callable from tests), as on :class:`~desk.local.fakes.ws_binance.FakeBinanceWs`:
:meth:`silence` / :meth:`resume` (connections stay open, mute), :meth:`drop` (close every
connection), :meth:`send_malformed` (one frame that is not msgpack); ``stats`` counts
``connections``, ``auth``, ``subscribe``, ``sent``, ``drops``, ``malformed``.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections import Counter
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import msgpack  # type: ignore[import-untyped]  # no stubs; pyproject's overrides list it not
from aiohttp import WSMsgType, web

__all__ = ["FakeAlpacaWs"]

_CHANNELS = ("quotes", "trades", "bars")


def _stamp(at_ns: int) -> msgpack.Timestamp:
    return msgpack.Timestamp.from_unix_nano(at_ns)


def _spy_closes() -> list[float]:
    from desk.local.catalogue import spy_2017_2018

    return [float(c) for c in spy_2017_2018()["close"].to_numpy()]


class _Conn:
    def __init__(self, ws: web.WebSocketResponse) -> None:
        self.ws = ws
        self.authenticated = False
        self.subs: dict[str, set[str]] = {c: set() for c in _CHANNELS}


class FakeAlpacaWs:
    """``with FakeAlpacaWs(symbols=("SPY",)) as venue:``; point alpaca-py at :attr:`url`."""

    def __init__(
        self,
        *,
        symbols: Sequence[str] = ("SPY",),
        rate: float = 50.0,
        bar_every: int = 25,
        closes: Sequence[float] | None = None,
        key: str = "fake-key",
        secret: str = "fake-secret",  # noqa: S107  # a test credential the fake checks
        autostart: bool = True,
    ) -> None:
        if rate <= 0 or bar_every < 1:
            raise ValueError("rate must be > 0 and bar_every >= 1")
        self.symbols = tuple(symbols)
        self.rate = rate
        self.bar_every = bar_every
        self.closes = list(closes) if closes is not None else _spy_closes()
        self.key, self.secret = key, secret
        self.stats: Counter[str] = Counter()
        self.port = 0
        self._conns: set[_Conn] = set()
        self._autostart = autostart
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="fake-alpaca-ws", daemon=True)
        self._runner: web.AppRunner | None = None
        self._playing: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None

    # ------------------------------------------------------------------ lifecycle
    def __enter__(self) -> FakeAlpacaWs:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(10)
        return self

    def __exit__(self, *exc: object) -> None:
        asyncio.run_coroutine_threadsafe(self._stop(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/v2/iex"

    async def _start(self) -> None:
        app = web.Application()
        app.router.add_get("/{tail:.*}", self._websocket)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self._playing = asyncio.Event()
        if self._autostart:
            self._playing.set()
        self._task = asyncio.create_task(self._play())

    async def _stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        for conn in list(self._conns):
            await conn.ws.close()
        if self._runner is not None:
            await self._runner.cleanup()

    # ------------------------------------------------------------------ controls
    def start(self) -> None:
        self.resume()

    def silence(self) -> None:
        self._loop.call_soon_threadsafe(self._event().clear)

    def resume(self) -> None:
        self._loop.call_soon_threadsafe(self._event().set)

    def drop(self) -> None:
        async def drop() -> None:
            for conn in list(self._conns):
                await conn.ws.close()
            self.stats["drops"] += 1

        asyncio.run_coroutine_threadsafe(drop(), self._loop).result(10)

    def send_malformed(self) -> None:
        async def send() -> None:
            for conn in [c for c in self._conns if c.authenticated]:
                with contextlib.suppress(ConnectionError):
                    await conn.ws.send_bytes(b"\xc1\xc1 not msgpack")
            self.stats["malformed"] += 1

        asyncio.run_coroutine_threadsafe(send(), self._loop).result(10)

    def connections(self) -> int:
        return len(self._conns)

    def _event(self) -> asyncio.Event:
        if self._playing is None:
            raise RuntimeError("the fake is not started")
        return self._playing

    # ------------------------------------------------------------------ replay
    async def _play(self) -> None:
        playing = self._event()
        tick = 0
        bar_open: dict[str, list[float]] = {}
        first_minute = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(minutes=1)
        next_at = time.monotonic()
        while True:
            if not playing.is_set():
                await playing.wait()
                next_at = time.monotonic()
            delay = next_at - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            next_at += 1 / self.rate
            now_ns = time.time_ns()
            for n, symbol in enumerate(self.symbols):
                price = round(self.closes[(tick + 7 * n) % len(self.closes)] * (1 + n / 10), 2)
                quote = {"T": "q", "S": symbol, "bx": "V", "bp": round(price - 0.01, 2), "bs": 3, "ax": "V",
                         "ap": round(price + 0.01, 2), "as": 4, "c": ["R"], "z": "B", "t": _stamp(now_ns)}  # fmt: skip
                trade = {"T": "t", "S": symbol, "i": tick + 1, "x": "V", "p": price, "s": 10, "c": ["@"], "z": "B",
                         "t": _stamp(now_ns)}  # fmt: skip
                await self._send("quotes", symbol, quote)
                await self._send("trades", symbol, trade)
                bar_open.setdefault(symbol, []).append(price)
            tick += 1
            if tick % self.bar_every == 0:
                minute = first_minute + timedelta(minutes=tick // self.bar_every)
                for symbol, prices in bar_open.items():
                    bar = {"T": "b", "S": symbol, "o": prices[0], "h": max(prices), "l": min(prices), "c": prices[-1],
                           "v": 10 * len(prices), "n": len(prices), "vw": sum(prices) / len(prices),
                           "t": _stamp(int(minute.timestamp()) * 1_000_000_000)}  # fmt: skip
                    await self._send("bars", symbol, bar)
                bar_open.clear()

    async def _send(self, channel: str, symbol: str, message: dict[str, Any]) -> None:
        frame: bytes | None = None
        for conn in list(self._conns):
            subs = conn.subs[channel]
            if symbol in subs or "*" in subs:
                frame = frame or msgpack.packb([message])
                with contextlib.suppress(ConnectionError):
                    await conn.ws.send_bytes(frame)
                self.stats["sent"] += 1

    # ------------------------------------------------------------------ protocol
    async def _websocket(self, request: web.Request) -> web.StreamResponse:
        if request.headers.get("Upgrade", "").lower() != "websocket":
            raise web.HTTPNotFound()
        ws = web.WebSocketResponse(heartbeat=None, autoping=True)
        await ws.prepare(request)
        conn = _Conn(ws)
        self._conns.add(conn)
        self.stats["connections"] += 1
        try:
            await ws.send_bytes(msgpack.packb([{"T": "success", "msg": "connected"}]))
            async for msg in ws:
                if msg.type not in (WSMsgType.BINARY, WSMsgType.TEXT):
                    continue
                data = msg.data if isinstance(msg.data, bytes) else msg.data.encode()
                await ws.send_bytes(msgpack.packb([self._answer(conn, msgpack.unpackb(data))]))
        finally:
            self._conns.discard(conn)
        return ws

    def _answer(self, conn: _Conn, req: dict[str, Any]) -> dict[str, Any]:
        action = req.get("action")
        if action == "auth":
            if req.get("key") != self.key or req.get("secret") != self.secret:
                return {"T": "error", "code": 402, "msg": "auth failed"}
            conn.authenticated = True
            self.stats["auth"] += 1
            return {"T": "success", "msg": "authenticated"}
        if not conn.authenticated:
            return {"T": "error", "code": 401, "msg": "not authenticated"}
        if action in ("subscribe", "unsubscribe"):
            for channel in _CHANNELS:
                change = set(req.get(channel, []))
                if action == "subscribe":
                    conn.subs[channel] |= change
                else:
                    conn.subs[channel] -= change
            self.stats[action] += 1
            return {"T": "subscription", **{c: sorted(conn.subs[c]) for c in _CHANNELS}}
        return {"T": "error", "code": 400, "msg": "invalid syntax"}
