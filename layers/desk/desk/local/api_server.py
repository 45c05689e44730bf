"""Serve the API's resolver on 127.0.0.1 for development (``make api``), as API Gateway would call it.

Each HTTP request becomes an API Gateway HTTP API payload v2 event; a bearer token is verified
with the local secret (:mod:`desk.api.auth`) and its claims are put in
``requestContext.authorizer.jwt``, where the JWT authorizer puts them in AWS. An invalid token
leaves the claims out, so the resolver answers 401 exactly as it would behind API Gateway. The
resolver keeps per-request state, so requests are served one at a time.

:func:`make_wsgi_app` is the same translation as a WSGI application, so tests (schemathesis's WSGI
transport) reach the resolver in-process through exactly the events the HTTP server builds.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import json
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from http.client import responses
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, quote, urlsplit
from wsgiref.types import StartResponse, WSGIApplication, WSGIEnvironment

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver

from desk.api.auth import verify_token
from desk.api.errors import Unauthorized
from desk.ports import Clock

__all__ = ["build_event", "main", "make_server", "make_wsgi_app"]


class _Context:
    """The few LambdaContext attributes Powertools reads."""

    function_name = "desk-api-local"
    memory_limit_in_mb = 512
    invoked_function_arn = "arn:aws:lambda:local:000000000000:function:desk-api-local"
    aws_request_id = "local"

    def get_remaining_time_in_millis(self) -> int:
        return 30_000


def build_event(
    method: str, target: str, headers: Mapping[str, str], body: bytes, claims: Mapping[str, Any] | None
) -> dict[str, Any]:
    """An HTTP API payload v2 event for one request (the raw path keeps its percent-encoding)."""
    parts = urlsplit(target)
    query: dict[str, str] = {}
    for key, value in parse_qsl(parts.query, keep_blank_values=True):
        query[key] = f"{query[key]},{value}" if key in query else value  # API Gateway joins repeats
    lowered = {k.lower(): v for k, v in headers.items()}
    try:
        text, encoded = body.decode("utf-8"), False
    except UnicodeDecodeError:
        text, encoded = base64.b64encode(body).decode(), True
    context: dict[str, Any] = {
        "accountId": "000000000000",
        "apiId": "local",
        "domainName": "127.0.0.1",
        "http": {"method": method, "path": parts.path, "protocol": "HTTP/1.1", "sourceIp": "127.0.0.1"},
        "requestId": uuid.uuid4().hex,
        "routeKey": "$default",
        "stage": "$default",
        "time": time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime()),
        "timeEpoch": int(time.time() * 1000),
    }
    if claims is not None:
        scope = claims.get("scope", "")
        context["authorizer"] = {"jwt": {"claims": dict(claims), "scopes": str(scope).split() or None}}
    return {
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": parts.path,
        "rawQueryString": parts.query,
        "headers": lowered,
        "queryStringParameters": query or None,
        "requestContext": context,
        "body": text or None,
        "isBase64Encoded": encoded,
    }


def _claims(headers: Mapping[str, str], clock: Clock) -> dict[str, Any] | None:
    auth = next((v for k, v in headers.items() if k.lower() == "authorization"), "")
    scheme, _, token = auth.partition(" ")
    if scheme.lower() != "bearer" or not token:
        return None
    try:
        return verify_token(token.strip(), now=clock.now())
    except Unauthorized:
        return None


Reply = tuple[int, list[tuple[str, str]], bytes]


def _invoker(resolver: APIGatewayHttpResolver, clock: Clock) -> Callable[[str, str, dict[str, str], bytes], Reply]:
    """One request in, one (status, headers, body) out, through a v2 event; calls are serialised."""
    lock = threading.Lock()

    def invoke(method: str, target: str, headers: dict[str, str], body: bytes) -> Reply:
        event = build_event(method, target, headers, body, _claims(headers, clock))
        with lock:
            result = resolver.resolve(event, _Context())  # type: ignore[arg-type]
        payload = result.get("body") or ""
        data = base64.b64decode(payload) if result.get("isBase64Encoded") else str(payload).encode()
        out = [(key, str(value)) for key, value in (result.get("headers") or {}).items()]
        out += [("Set-Cookie", cookie) for cookie in result.get("cookies") or []]
        out.append(("Content-Length", str(len(data))))
        return int(result.get("statusCode", 500)), out, data

    return invoke


def make_server(
    resolver: APIGatewayHttpResolver, clock: Clock, host: str = "127.0.0.1", port: int = 8000
) -> ThreadingHTTPServer:
    """A server for ``resolver``; ``port=0`` picks a free port (tests)."""
    invoke = _invoker(resolver, clock)

    class Handler(BaseHTTPRequestHandler):
        def _serve(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            status, headers, data = invoke(self.command, self.path, dict(self.headers.items()), body)
            self.send_response(status)
            for key, value in headers:
                self.send_header(key, value)
            self.end_headers()
            self.wfile.write(data)

        def __getattr__(self, name: str) -> Any:
            # Every method (QUERY, TRACE...) goes to the resolver, which answers unknown ones as API Gateway does.
            if name.startswith("do_"):
                return self._serve
            raise AttributeError(name)

        def log_message(self, format: str, *args: Any) -> None:  # stdout stays for the operator's output
            return

    return ThreadingHTTPServer((host, port), Handler)


def _wsgi_target(environ: WSGIEnvironment) -> str:
    # The path as sent, percent-encoding kept, as the HTTP server sees it (some servers leave the query out).
    raw = str(environ.get("RAW_URI") or environ.get("REQUEST_URI") or "")
    path = raw.split("?", 1)[0] or quote(
        str(environ.get("PATH_INFO", "")).encode("latin-1"), safe="/%:@!$&'()*+,;=-._~"
    )
    query = str(environ.get("QUERY_STRING", ""))
    return f"{path}?{query}" if query else path


def _wsgi_headers(environ: WSGIEnvironment) -> dict[str, str]:
    headers = {
        key[5:].replace("_", "-").title(): str(value) for key, value in environ.items() if key.startswith("HTTP_")
    }
    for key, name in (("CONTENT_TYPE", "Content-Type"), ("CONTENT_LENGTH", "Content-Length")):
        if environ.get(key):
            headers[name] = str(environ[key])
    return headers


def make_wsgi_app(resolver: APIGatewayHttpResolver, clock: Clock) -> WSGIApplication:
    """``resolver`` as a WSGI application, with the server's event building and token check (tests)."""
    invoke = _invoker(resolver, clock)

    def application(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length) if length else b""
        method = str(environ["REQUEST_METHOD"])
        status, headers, data = invoke(method, _wsgi_target(environ), _wsgi_headers(environ), body)
        start_response(f"{status} {responses.get(status, 'Unknown')}", headers)
        return [data]

    return application


@contextlib.contextmanager
def local_cloud(schema: str = "api_dev") -> Iterator[dict[str, str]]:
    """The local cloud behind ``make api``: moto (bus, queues, state machines, tables), real PostgreSQL
    and Redis (configured ones when they answer, throwaway ones otherwise) and a freshly migrated schema."""
    import os
    import shutil
    import tempfile
    from pathlib import Path

    from desk import wiring
    from desk.local.cloud import LocalCloud
    from desk.local.desk_run import prepare_schema
    from desk.local.servers import postgres_server, redis_server
    from desk.settings import get_settings

    work = Path(tempfile.mkdtemp(prefix="desk-api-"))
    saved = {k: os.environ.get(k) for k in ("DESK_DATABASE_URL", "DESK_REDIS_URL")}
    try:
        with postgres_server(work) as database, redis_server(work) as redis_url, LocalCloud() as cloud:
            os.environ.update({"DESK_DATABASE_URL": prepare_schema(database, schema), "DESK_REDIS_URL": redis_url})
            get_settings.cache_clear()
            wiring.reset()
            yield {**cloud.environment(), "DESK_REDIS_URL": redis_url, "schema": schema}
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        get_settings.cache_clear()
        wiring.reset()
        shutil.rmtree(work, ignore_errors=True)


def main(argv: list[str] | None = None, *, serve: Callable[[ThreadingHTTPServer], None] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Serve the desk API locally (API Gateway HTTP API v2 events)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument(
        "--no-local-cloud", action="store_true", help="use the configured DESK_* services as they are (no moto)"
    )
    args = parser.parse_args(argv)
    with contextlib.ExitStack() as stack:
        if not args.no_local_cloud:
            stack.enter_context(local_cloud())
        return _serve(args.host, args.port, serve)


def _serve(host: str, port: int, serve: Callable[[ThreadingHTTPServer], None] | None) -> int:
    from desk.api.app import app
    from desk.api.auth import READ, TRADE, issue_token
    from desk.clock import SystemClock

    clock = SystemClock()
    server = make_server(app, clock, host, port)
    token = issue_token("developer", (READ, TRADE), now=clock.now())
    print(json.dumps({"url": f"http://{host}:{server.server_port}/v1", "swagger": "/v1/swagger", "token": token}))
    try:
        (serve or (lambda s: s.serve_forever()))(server)
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
