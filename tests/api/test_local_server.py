"""`make api`: the same resolver served on 127.0.0.1 over the local cloud (moto + real servers)."""

from __future__ import annotations

import json
import threading
import urllib.request
from http.server import ThreadingHTTPServer
from typing import Any

from desk.local.api_server import main
from desk.settings import get_settings


def test_make_api_serves_the_resolver_over_the_local_cloud() -> None:
    seen: dict[str, Any] = {}

    def serve(server: ThreadingHTTPServer) -> None:
        # While serving, one real HTTP request reaches the resolver through the stdlib adapter
        worker = threading.Thread(target=server.handle_request)
        worker.start()
        url = f"http://127.0.0.1:{server.server_port}/v1/health"
        with urllib.request.urlopen(url, timeout=60) as response:
            seen["health"] = json.load(response)
        worker.join(60)
        seen["state_machine"] = get_settings().order_state_machine_arn
        seen["bus"] = get_settings().event_bus_name

    # Given `make api`'s entry point on a free port, When it runs, Then health sees real PostgreSQL and Redis
    assert main(["--port", "0"], serve=serve) == 0
    assert seen["health"]["checks"] == {"postgres": True, "redis": True}
    # And the handlers are pointed at the local cloud's state machine and bus
    assert seen["state_machine"].startswith("arn:aws:states:")
    assert seen["bus"]
    # And the environment is restored afterwards
    assert get_settings().order_state_machine_arn == ""
