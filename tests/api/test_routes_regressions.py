"""Regressions found by schemathesis (tests/api/test_fuzz.py), each with the exact input it generated.

All but one are refused before any port is touched, so they call the resolver without a seeded desk
(``caller``): if one ever reached a port, it would try the unconfigured real one and fail loudly.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.api.conftest import Api, Desk, Reply

SIZING = {
    "capital": None,
    "method": "risk_parity",
    "symbols": ["0", "0"],
    "timeframe": "1d",
    "venue": "0",
    "window": 250,
}
ERROR_SHAPE = {"code", "message", "details"}


@pytest.fixture
def caller() -> Api:
    return Api()


def _refused(reply: Reply, status: int, code: str) -> None:
    assert reply.status == status, reply
    assert set(reply.body) == ERROR_SHAPE and reply.body["code"] == code, reply.body


@pytest.mark.parametrize("content_type", ["text/plain", "multipart/form-data", "application/x-www-form-urlencoded"])
@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/v1/correlation/position-sizing", SIZING),
        ("/v1/execution/optimize", {"venue": "binance", "symbol": "BTC/USDT", "side": "buy", "quantity": "1"}),
        ("/v1/orders/cancel", {"client_order_id": "0"}),
    ],
)
def test_a_body_that_is_not_json_is_415_not_500(caller: Api, path: str, body: Any, content_type: str) -> None:
    # Powertools raised RequestUnsupportedContentType (text/plain) or ValueError (multipart without a boundary)
    reply = caller.post(path, body, headers={"content-type": content_type, "idempotency-key": "00000000"})
    _refused(reply, 415, "unsupported_media_type")


def test_json_with_a_charset_is_still_json(api: Api, desk: Desk) -> None:
    reply = api.post(
        "/v1/orders/cancel", {"client_order_id": "0"}, headers={"content-type": "application/json; charset=utf-8"}
    )
    _refused(reply, 404, "not_found")


def test_route_to_a_venue_with_a_colon_is_refused_before_the_cache(caller: Api) -> None:
    # The cache's key builder raised ValueError for ':' in a venue id (it separates key parts)
    reply = caller.post("/v1/execution/route", {"quantity": 1.0, "side": "buy", "symbol": "0", "venues": [":"]})
    _refused(reply, 422, "validation_error")
    assert reply.body["details"][0]["field"].startswith("body.venues")


def test_limit_order_without_a_limit_price_is_refused_before_the_gate(caller: Api) -> None:
    # The domain OrderRequest raised a plain ValueError after the request had been accepted
    body = {"quantity": 1.0, "side": "buy", "symbol": "0", "venue": "0", "order_type": "limit"}
    reply = caller.post("/v1/orders/submit", body, headers={"idempotency-key": "00000000"})
    _refused(reply, 422, "validation_error")


@pytest.mark.parametrize(
    "path",
    [
        "/v1/data/historical/0?venue=binance&x-schemathesis-unknown-property=42",
        "/v1/positions/current?venue=0&x-schemathesis-unknown-property=42",
        "/v1/execution/venue-analysis?symbol=0&venues=0&x-schemathesis-unknown-property=42",
        "/v1/health?x-schemathesis-unknown-property=42",
    ],
)
def test_an_unknown_query_parameter_is_400(caller: Api, path: str) -> None:
    reply = caller.get(path)
    _refused(reply, 400, "bad_request")
    assert reply.body["details"] == [
        {"field": "query.x-schemathesis-unknown-property", "reason": "not a parameter of this route"}
    ]


def test_swagger_still_takes_its_format_parameter(caller: Api) -> None:
    reply = caller.get("/v1/swagger?format=json")
    assert reply.status == 200 and reply.body["openapi"].startswith("3.")


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        # JSON `false` for a number was read as 0.0 by pydantic's lax mode
        (
            "/v1/risk/alert",
            {"latch_kill_switch": False, "metric": "var", "name": "0", "portfolio": "desk", "threshold": False},
            "body.threshold",
        ),
        # JSON `0` for a date-time was read as 1970-01-01 (a Unix timestamp) and the backtest was queued
        (
            "/v1/strategy/backtest",
            {
                "end": "2000-01-01T00:00:00Z",
                "fee_bps": 10,
                "half_spread_bps": 0,
                "initial_capital": 1000000,
                "kind": "pairs",
                "params": {},
                "start": 0,
                "symbols": ["0"],
                "timeframe": "1d",
                "venue": "0",
            },
            "body.start",
        ),
        ("/v1/execution/optimize", {**SIZING, "symbol": "BTC/USDT", "side": "buy", "quantity": "1"}, "body"),
        ("/v1/correlation/position-sizing", {**SIZING, "window": "250"}, "body.window"),
    ],
)
def test_a_wrongly_typed_body_field_is_422(caller: Api, path: str, body: Any, field: str) -> None:
    reply = caller.post(path, body)
    _refused(reply, 422, "validation_error")
    assert any(d["field"].startswith(field) for d in reply.body["details"]), reply.body


def test_a_numeric_start_query_is_not_a_timestamp(caller: Api) -> None:
    # `start=0.5` was read as 1970-01-01T00:00:00.5Z and answered 200
    reply = caller.get("/v1/data/historical/0?start=0.5")
    _refused(reply, 422, "validation_error")
    assert reply.body["details"][0]["field"] == "query.start"


@pytest.mark.parametrize(
    "body",
    [
        {"action": "release", "reason": "\x00"},  # the fuzzer's input: a 500 from PostgreSQL, not a 4xx
        {"action": "latch", "reason": "drill \x00 over"},
    ],
)
def test_a_nul_in_a_body_string_is_400_before_any_port(caller: Api, body: Any) -> None:
    reply = caller.post("/v1/risk/kill-switch", body)
    _refused(reply, 400, "bad_request")
    assert reply.body["details"] == [{"field": "request", "reason": "NUL is not allowed in text"}]


@pytest.mark.parametrize(
    "path", ["/v1/data/ticker/BTC%2FUSDT?venue=a%00b", "/v1/data/historical/A%00B", "/v1/data/historical/A?a%00=1"]
)
def test_a_nul_in_the_path_or_query_is_400(caller: Api, path: str) -> None:
    _refused(caller.get(path), 400, "bad_request")


def test_an_escaped_backslash_before_u0000_is_text_not_a_nul(caller: Api) -> None:
    # `"\\u0000"` in JSON is a backslash then the letters u0000: a valid reason (refused later for other cause)
    raw = b'{"action": "maybe", "reason": "C:\\\\u0000"}'
    reply = caller.call("POST", "/v1/risk/kill-switch", raw)
    _refused(reply, 422, "validation_error")
    assert [d["field"] for d in reply.body["details"]] == ["body.action"]


def test_a_control_character_in_a_reason_is_422_with_the_field(caller: Api) -> None:
    reply = caller.post("/v1/risk/kill-switch", {"action": "latch", "reason": "bell \x07"})
    _refused(reply, 422, "validation_error")
    assert [d["field"] for d in reply.body["details"]] == ["body.reason"]
