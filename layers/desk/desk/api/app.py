# mypy: disable-error-code="untyped-decorator"
"""The HTTP API: one APIGatewayHttpResolver, its OpenAPI metadata, Swagger UI, and every error mapping.

Routes live in :mod:`desk.api.routers` and are mounted under ``/v1``. Every route except
``/v1/health`` and the Swagger UI needs a caller: the claims API Gateway's JWT authorizer (or the
local server) put in the event, checked here before routing, so an anonymous request is a 401
whatever else is wrong with it. Bodies are JSON only: any other declared media type is a 415 before
routing (Powertools would otherwise try to parse forms and multipart). After validation, a query
parameter the route does not declare is a 400: a misspelt ``limt=5`` must not silently mean the
default. A NUL character anywhere in the path, query or body is a 400 before routing: PostgreSQL text
cannot hold one, so it would otherwise surface as a database error. Every error leaves as one JSON shape,
:class:`ErrorBody`.
"""

from __future__ import annotations

import base64
import binascii
import re
from typing import Any
from urllib.parse import unquote

import psycopg
import redis
from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response, content_types
from aws_lambda_powertools.event_handler.api_gateway import ResponseBuilder
from aws_lambda_powertools.event_handler.exceptions import NotFoundError
from aws_lambda_powertools.event_handler.middlewares import NextMiddleware
from aws_lambda_powertools.event_handler.openapi.exceptions import (
    RequestUnsupportedContentType,
    RequestValidationError,
)
from aws_lambda_powertools.event_handler.openapi.models import HTTPBearer, Server, Tag
from pydantic import ValidationError

from desk.api.auth import claims_from_event
from desk.api.errors import ApiError, BadRequest, Unauthorized, UnsupportedMediaType
from desk.api.models import ErrorBody, ErrorDetail
from desk.api.routers import correlation, execution, health, market, orders, regime, risk, strategy
from desk.aws.executions import ExecutionConflict
from desk.domain.errors import (
    DeskError,
    InvalidTransition,
    KillSwitchNotLatched,
    OrderNotFound,
    RetryableVenueError,
)
from desk.observability import logger
from desk.store import AlertRuleConflict

__all__ = ["OPENAPI", "PUBLIC_PATHS", "app", "openapi_document"]

API_VERSION = "1.0.0"
SWAGGER_PATH = "/v1/swagger"
PUBLIC_PATHS = frozenset({"/v1/health", SWAGGER_PATH})
_BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})
# A NUL anywhere in a request: raw, or a JSON \u0000 escape (one not itself escaped by an odd backslash).
_JSON_NUL = re.compile(r"(?:^|[^\\])(?:\\\\)*\\u0000")

OPENAPI: dict[str, Any] = {
    "title": "Lambda Desk API",
    "version": API_VERSION,
    "summary": "Market data, analytics on demand, risk controls and orders of the Lambda Desk.",
    "description": (
        "Every route but `/v1/health` needs a bearer JWT (scope `desk:read`; `desk:trade` to change the desk). "
        "Errors are `{code, message, details}`. Prices and quantities are decimal strings."
    ),
    "tags": [
        Tag(name=name, description=text)
        for name, text in (
            ("market", "Quotes, books and stored bars"),
            ("regime", "Market regimes and transition probabilities"),
            ("correlation", "Correlation, PCA and position sizing"),
            ("execution", "Schedules, costs and venue routing"),
            ("risk", "VaR, stress, Kelly sizing, alert rules and the kill switch"),
            ("strategy", "Strategy targets, backtests, performance and allocation"),
            ("orders", "Order submission, status, cancellation and positions"),
            ("health", "Liveness"),
        )
    ],
    "servers": [Server(url="/")],
    "security_schemes": {"bearer": HTTPBearer(bearerFormat="JWT")},
    "security": [{"bearer": []}],
}


def _error(
    status: int, code: str, message: str, details: tuple[ErrorDetail, ...] | list[ErrorDetail] = ()
) -> Response[str]:
    body = ErrorBody(code=code, message=message, details=list(details))
    return Response(status_code=status, content_type=content_types.APPLICATION_JSON, body=body.model_dump_json())


def _field(loc: Any) -> str:
    return ".".join(str(part) for part in loc) if isinstance(loc, (list, tuple)) else str(loc)


def _not_json() -> Response[str]:
    exc = UnsupportedMediaType(f"the body must be {content_types.APPLICATION_JSON}")
    return _error(exc.status, exc.code, exc.message)


def _is_json(content_type: str) -> bool:
    return content_type.split(";", 1)[0].strip().lower() == content_types.APPLICATION_JSON


def _text_body(body: str | None, base64_encoded: bool) -> str | None:
    if body is None or not base64_encoded:
        return body
    try:
        return base64.b64decode(body).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None  # routing answers that one (400 not UTF-8 JSON)


def _carries_nul(path: str, query: dict[str, str] | None, body: str | None) -> bool:
    texts = [unquote(path), *(query or {}).keys(), *(query or {}).values()]
    if any("\x00" in text for text in texts):
        return True
    return body is not None and ("\x00" in body or _JSON_NUL.search(body) is not None)


class DeskResolver(APIGatewayHttpResolver):
    """Checks the caller and the body's media type before routing (validation would otherwise answer first)."""

    def _resolve(self) -> ResponseBuilder[Any]:
        event = self.current_event
        if event.path not in PUBLIC_PATHS:
            try:
                claims_from_event(event.raw_event)
            except Unauthorized as exc:
                response = _error(exc.status, exc.code, exc.message)
                response.headers["WWW-Authenticate"] = "Bearer"
                return ResponseBuilder(response=response, serializer=self._serializer)
        body = _text_body(event.body, bool(event.is_base64_encoded))
        if _carries_nul(event.path, event.query_string_parameters, body):
            detail = ErrorDetail(field="request", reason="NUL is not allowed in text")
            response = _error(400, "bad_request", "the request contains a NUL character", [detail])
            return ResponseBuilder(response=response, serializer=self._serializer)
        content_type = (event.headers or {}).get("content-type")
        if content_type and not _is_json(content_type) and (event.body or event.http_method in _BODY_METHODS):
            return ResponseBuilder(response=_not_json(), serializer=self._serializer)
        return super()._resolve()


def _known_query_only(app: APIGatewayHttpResolver, next_middleware: NextMiddleware) -> Response[Any]:
    route = app.context.get("_route")
    if route is not None and app.current_event.path != SWAGGER_PATH:  # Swagger UI takes ?format=json
        known = {param.alias for param in route.dependant.query_params}
        unknown = sorted(set(app.current_event.query_string_parameters or {}) - known)
        if unknown:
            details = [ErrorDetail(field=f"query.{name}", reason="not a parameter of this route") for name in unknown]
            raise BadRequest("unknown query parameters", details)
    return next_middleware(app)


app = DeskResolver(enable_validation=True)
app.enable_swagger(path=SWAGGER_PATH, persist_authorization=True, **OPENAPI)
app.use(middlewares=[_known_query_only])
for _router in (market, regime, correlation, execution, risk, strategy, orders, health):
    app.include_router(_router.router, prefix="/v1")


def openapi_document() -> str:
    """The OpenAPI document of :data:`app`, as committed in ``docs/openapi.json``."""
    return app.get_openapi_json_schema(**OPENAPI)


# -- the one place exceptions become responses ----------------------------------------------------
@app.exception_handler(ApiError)
def _api_error(exc: ApiError) -> Response[str]:
    return _error(exc.status, exc.code, exc.message, exc.details)


@app.exception_handler(RequestValidationError)
def _request_invalid(exc: RequestValidationError) -> Response[str]:
    details = [
        ErrorDetail(field=_field(e.get("loc", ())), reason=str(e.get("msg", e.get("type")))) for e in exc.errors()
    ]
    return _error(422, "validation_error", "the request is not valid", details)


@app.exception_handler(ValidationError)
def _model_invalid(exc: ValidationError) -> Response[str]:
    details = [ErrorDetail(field=_field(e["loc"]), reason=e["msg"]) for e in exc.errors(include_input=False)]
    return _error(422, "validation_error", "the request cannot be turned into a valid desk object", details)


@app.exception_handler(RequestUnsupportedContentType)
def _unsupported_media(exc: RequestUnsupportedContentType) -> Response[str]:
    return _not_json()


@app.exception_handler(UnicodeDecodeError)
def _not_text(exc: UnicodeDecodeError) -> Response[str]:
    return _error(400, "bad_request", "the body is not UTF-8 JSON")


@app.exception_handler(NotFoundError)
def _no_route(exc: NotFoundError) -> Response[str]:
    return _error(404, "not_found", "no such route")


@app.exception_handler([KillSwitchNotLatched, InvalidTransition, ExecutionConflict, AlertRuleConflict])
def _conflict(exc: DeskError) -> Response[str]:
    return _error(409, "conflict", str(exc))


@app.exception_handler(OrderNotFound)
def _order_not_found(exc: OrderNotFound) -> Response[str]:
    return _error(404, "not_found", str(exc))


@app.exception_handler(DeskError)
def _desk_error(exc: DeskError) -> Response[str]:
    if isinstance(exc, ValueError):  # the domain's input errors (InvalidOrder, InvalidNumber...)
        return _error(422, "invalid", str(exc))
    logger.exception("desk error")
    return _error(500, "internal", type(exc).__name__)


@app.exception_handler([RetryableVenueError, psycopg.OperationalError, redis.ConnectionError, redis.TimeoutError])
def _unavailable(exc: Exception) -> Response[str]:
    logger.warning("dependency unavailable", extra={"error": type(exc).__name__})
    return _error(503, "unavailable", "a dependency is unavailable; retry later")


@app.exception_handler(Exception)
def _internal(exc: Exception) -> Response[str]:
    logger.exception("unhandled error")
    return _error(500, "internal", "internal error")
