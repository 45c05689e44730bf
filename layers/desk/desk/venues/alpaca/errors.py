"""Alpaca failures → :mod:`desk.venues.errors`.

The rules (Alpaca's REST error semantics, as documented for the v2 trading and market-data APIs):

==========================================  ==========================================================
what happened                               becomes
==========================================  ==========================================================
requests timeout (connect or read)          :class:`VenueTimeout` (retryable)
connection refused/reset, bad chunking      :class:`VenueUnavailable` (retryable)
HTTP 429                                    :class:`RateLimited` with ``Retry-After`` when sent
HTTP 5xx                                    :class:`VenueUnavailable` (retryable)
HTTP 401                                    :class:`AuthenticationFailed`
HTTP 403 "insufficient ..." (buying power,  :class:`InsufficientFunds`
qty available, day-trading buying power)
HTTP 403 otherwise                          :class:`OrderRejected` for order calls, else
                                            :class:`AuthenticationFailed` (forbidden)
HTTP 404                                    :class:`OrderNotFound` for order calls, else
                                            :class:`UnknownSymbol` (assets, positions, data)
HTTP 422 "client_order_id must be unique"   :class:`DuplicateClientOrderId` (the order exists)
HTTP 422 / other 4xx                        :class:`OrderRejected` for order calls, else
                                            :class:`PermanentVenueError`
a payload alpaca-py cannot parse            :class:`PermanentVenueError`
==========================================  ==========================================================

Nothing here retries: retries belong to the caller (ASL ``Retry`` with backoff and jitter), and the
client disables alpaca-py's own sleeping retry loop.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import requests
from alpaca.common.exceptions import APIError
from pydantic import ValidationError

from desk.venues.errors import (
    AuthenticationFailed,
    DuplicateClientOrderId,
    InsufficientFunds,
    OrderNotFound,
    OrderRejected,
    PermanentVenueError,
    RateLimited,
    UnknownSymbol,
    VenueError,
    VenueTimeout,
    VenueUnavailable,
    classify_exception,
)

__all__ = ["ORDER_OPERATIONS", "classify", "error_body", "translate_errors"]

# Operations whose 404/403/422 are about an order rather than a symbol or the account.
ORDER_OPERATIONS = frozenset({"create_order", "fetch_order_by_client_id", "cancel_order", "fetch_order"})


def error_body(exc: APIError) -> tuple[str, str | None]:
    """(message, code) from Alpaca's ``{"code": 40310000, "message": "..."}``; the raw text otherwise."""
    raw = str(exc)
    try:
        body: Any = json.loads(raw)
    except ValueError:
        return raw or "no message", None
    if not isinstance(body, dict):
        return raw, None
    code = body.get("code")
    return str(body.get("message") or raw), None if code is None else str(code)


def _retry_after(exc: APIError) -> float | None:
    response = exc.response
    value = None if response is None else response.headers.get("Retry-After")
    try:
        return None if value is None else max(float(value), 0.0)
    except ValueError:
        return None  # an HTTP date: rare enough on Alpaca to let the caller's backoff decide


def _status(exc: APIError) -> int | None:
    status = exc.status_code
    return status if isinstance(status, int) else None


def _classify_api_error(exc: APIError, venue: str, operation: str) -> VenueError:
    message, code = error_body(exc)
    status = _status(exc)
    text = message.lower()
    on_order = operation in ORDER_OPERATIONS

    def make(kind: type[VenueError], text: str = message) -> VenueError:
        return kind(text, venue=venue, operation=operation, code=code)

    if status == 429:
        return RateLimited(message, venue=venue, operation=operation, code=code, retry_after=_retry_after(exc))
    if status is None or status >= 500:
        return make(VenueUnavailable, f"HTTP {status}: {message}")
    if status == 401:
        return make(AuthenticationFailed)
    if status == 403:
        if "insufficient" in text:
            return make(InsufficientFunds)
        return make(OrderRejected) if on_order else make(AuthenticationFailed)
    if status == 404:
        return make(OrderNotFound) if on_order else make(UnknownSymbol)
    if status == 422 and "client_order_id" in text and "unique" in text:
        return make(DuplicateClientOrderId)
    if on_order:
        return make(OrderRejected, f"HTTP {status}: {message}")
    return make(PermanentVenueError, f"HTTP {status}: {message}")


def classify(exc: BaseException, *, venue: str, operation: str) -> VenueError:
    """The venue error for anything an alpaca-py call raised (returned; raise it ``from exc``)."""
    if isinstance(exc, VenueError):
        return exc
    if isinstance(exc, APIError):
        return _classify_api_error(exc, venue, operation)
    if isinstance(exc, requests.Timeout):
        return VenueTimeout(str(exc) or "timed out", venue=venue, operation=operation)
    if isinstance(exc, requests.RequestException):
        # Connection errors, truncated bodies, unparsable JSON: the network or a proxy, not our request.
        return VenueUnavailable(str(exc) or type(exc).__name__, venue=venue, operation=operation)
    if isinstance(exc, ValidationError):
        return PermanentVenueError(f"unexpected payload: {exc}", venue=venue, operation=operation)
    return classify_exception(exc, venue=venue, operation=operation)


@contextmanager
def translate_errors(venue: str, operation: str) -> Iterator[None]:
    """Run a block of alpaca-py calls; anything it raises leaves as a :class:`VenueError`."""
    try:
        yield
    except VenueError:
        raise
    except Exception as exc:
        raise classify(exc, venue=venue, operation=operation) from exc
