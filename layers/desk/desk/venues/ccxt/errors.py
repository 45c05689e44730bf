"""ccxt exceptions → :mod:`desk.venues.errors`, refined with what the venue's body says.

ccxt's class is not always precise enough to decide safely: Binance's ``-2010`` covers both
"Duplicate order sent." (the order IS there: fetch it) and other rejections, and ``-1013`` filter
failures arrive as a bare ``BadRequest``. The body is in the exception text, so we read the code and
message from it, and the ``Retry-After`` header from the exchange's last response.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from desk.venues.errors import (
    DuplicateClientOrderId,
    InsufficientFunds,
    OrderRejected,
    RateLimited,
    VenueError,
    classify_exception,
)

__all__ = ["retry_after_seconds", "translate", "venue_code"]

_BODY = re.compile(r"\{.*\}", re.DOTALL)
# Binance message → class, where ccxt's class would lose the distinction that matters.
_MESSAGES: dict[str, type[VenueError]] = {
    "Duplicate order sent.": DuplicateClientOrderId,
    "Account has insufficient balance for requested action.": InsufficientFunds,
}
_CODES: dict[str, type[VenueError]] = {"-1013": OrderRejected, "-2010": OrderRejected}


def venue_code(exc: BaseException) -> tuple[str | None, str | None]:
    """``(code, msg)`` from a JSON body quoted in the exception text, or ``(None, None)``."""
    match = _BODY.search(str(exc))
    if match is None:
        return None, None
    try:
        body = json.loads(match.group(0))
    except ValueError:
        return None, None
    if not isinstance(body, dict):
        return None, None
    code, msg = body.get("code"), body.get("msg")
    return (None if code is None else str(code)), (None if msg is None else str(msg))


def retry_after_seconds(headers: Mapping[str, Any] | None) -> float | None:
    """The ``Retry-After`` header in seconds (Binance sends seconds; HTTP dates are not used there)."""
    if not headers:
        return None
    for name, value in headers.items():
        if str(name).lower() == "retry-after":
            try:
                return max(float(value), 0.0)
            except (TypeError, ValueError):
                return None
    return None


def translate(exc: BaseException, exchange: Any, *, venue: str, operation: str) -> VenueError:
    """Our error for ``exc`` raised by ``exchange`` (a ccxt instance) during ``operation``."""
    code, msg = venue_code(exc)
    headers = getattr(exchange, "last_response_headers", None)
    generic = classify_exception(exc, venue=venue, operation=operation, code=code)
    if isinstance(generic, RateLimited):
        retry_after = retry_after_seconds(headers if isinstance(headers, Mapping) else None)
        return RateLimited(generic.message, venue=venue, operation=operation, code=code, retry_after=retry_after)
    refined = _MESSAGES.get(msg or "") or _CODES.get(code or "")
    if refined is not None and not generic.retryable and not isinstance(generic, refined):
        return refined(generic.message, venue=venue, operation=operation, code=code)
    return generic
