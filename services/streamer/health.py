"""``/health`` (the process and its loop are alive) and ``/ready`` (every feed connected and fresh)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aiohttp import web

__all__ = ["HealthServer"]


class HealthServer:
    def __init__(self, ready: Callable[[], tuple[bool, dict[str, Any]]], host: str, port: int) -> None:
        self._ready = ready
        self._host, self._port = host, port
        self._runner: web.AppRunner | None = None
        self.port = port

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get("/health", self._health)
        app.router.add_get("/ready", self._ready_handler)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self._host, self._port)
        await site.start()
        server = site._server
        sockets = getattr(server, "sockets", None) or []
        if sockets:
            self.port = int(sockets[0].getsockname()[1])

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _health(self, request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    async def _ready_handler(self, request: web.Request) -> web.Response:
        ok, detail = self._ready()
        return web.json_response({"ready": ok, **detail}, status=200 if ok else 503)
