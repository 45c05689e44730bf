"""The API's own typed errors: what a route raises when a request cannot be served as asked.

Each carries the HTTP status and the stable ``code`` of the one error shape (``{code, message,
details}``); :mod:`desk.api.app` maps these, the domain's errors and validation failures to that
shape in one place. Routes raise; they never build error responses themselves.
"""

from __future__ import annotations

from collections.abc import Sequence

from aws_lambda_powertools.event_handler.openapi.types import OpenAPIResponse

from desk.api.models import ErrorBody, ErrorDetail

__all__ = [
    "ERRORS",
    "ApiError",
    "BadRequest",
    "Conflict",
    "Forbidden",
    "NotFound",
    "ServiceUnavailable",
    "Unauthorized",
    "Unprocessable",
    "UnsupportedMediaType",
    "documented",
]


class ApiError(Exception):
    """Base of the API's errors: ``status`` and ``code`` are the contract, ``message`` is for humans."""

    status: int = 400
    code: str = "bad_request"

    def __init__(self, message: str, details: Sequence[ErrorDetail] = (), *, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = tuple(details)
        if code is not None:
            self.code = code


class BadRequest(ApiError):
    status, code = 400, "bad_request"


class Unauthorized(ApiError):
    status, code = 401, "unauthorized"


class Forbidden(ApiError):
    status, code = 403, "forbidden"


class NotFound(ApiError):
    status, code = 404, "not_found"


class Conflict(ApiError):
    status, code = 409, "conflict"


class UnsupportedMediaType(ApiError):
    status, code = 415, "unsupported_media_type"


class Unprocessable(ApiError):
    """Well-formed input the desk cannot act on (too little data, an unknown instrument...)."""

    status, code = 422, "unprocessable"


class ServiceUnavailable(ApiError):
    status, code = 503, "unavailable"


def _documented(description: str) -> OpenAPIResponse:
    return {"description": description, "content": {"application/json": {"model": ErrorBody}}}


# What every protected route can answer besides its success (documented in the OpenAPI document).
ERRORS: dict[int, OpenAPIResponse] = {
    400: _documented("Bad request"),
    401: _documented("No valid bearer token"),
    403: _documented("The token lacks the scope this action needs"),
    404: _documented("Not found"),
    409: _documented("Conflicts with the desk's state"),
    415: _documented("The body is not application/json"),
    422: _documented("Invalid request"),
    500: _documented("Internal error"),
    503: _documented("A dependency is unavailable"),
}


def documented(status: int = 200, description: str = "Success") -> dict[int, OpenAPIResponse]:
    """The success response (its schema from the route's return type) and every error response."""
    return {status: {"description": description}, **ERRORS}
