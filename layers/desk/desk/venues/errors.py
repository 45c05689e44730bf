"""The venue error hierarchy every adapter raises, and :func:`classify_exception` to get there.

Two families only, because that is the one decision a caller makes: retry (with backoff, ASL
``Retry``) or stop (ASL ``Catch``). The classes derive from the domain's
:class:`~desk.domain.errors.RetryableVenueError` / :class:`~desk.domain.errors.PermanentVenueError`
and keep their names, so ``except`` clauses written against the ports contract and Step Functions
matching by error name both see them.

::

    VenueError (venue, operation, retryable, code)
    ├── RetryableVenueError          the same request may succeed later
    │   ├── RateLimited              429 / 418 / weight exceeded; ``retry_after`` seconds when known
    │   ├── VenueUnavailable         5xx, maintenance, connection refused/reset
    │   ├── VenueTimeout             no answer in time (a read that may be repeated)
    │   └── AmbiguousOrderState      a create timed out AFTER sending: look up by client id before resending
    └── PermanentVenueError          retrying cannot help
        ├── OrderRejected            filters, precision, post-only would take, market closed
        │   ├── InsufficientFunds
        │   └── DuplicateClientOrderId   the venue already has this client id ("already placed")
        ├── OrderNotFound            unknown order (after a timeout: safe to resend)
        ├── AuthenticationFailed     bad key/signature/permissions
        └── UnknownSymbol

This module imports no client library: ccxt exceptions are recognised by class name along their
MRO, so the alpaca and paper adapters can use it without loading ccxt (60 MB, slow to import).
As in :mod:`desk.domain.errors`, the class names are the contract (ASL matches on them) and read as
states, without an ``Error`` suffix.
"""

from __future__ import annotations

import socket
from typing import ClassVar

from desk.domain import errors as domain

__all__ = [
    "AmbiguousOrderState",
    "AuthenticationFailed",
    "DuplicateClientOrderId",
    "InsufficientFunds",
    "OrderNotFound",
    "OrderRejected",
    "PermanentVenueError",
    "RateLimited",
    "RetryableVenueError",
    "UnknownSymbol",
    "VenueError",
    "VenueTimeout",
    "VenueUnavailable",
    "classify_exception",
]


class VenueError(domain.VenueError):
    """A failed venue call: which ``venue``, which ``operation``, and whether it may be ``retryable``.

    ``code`` is the venue's own error code when it gave one (Binance ``-2010``), for logs and tests.
    """

    retryable: ClassVar[bool] = False

    def __init__(
        self, message: str, *, venue: str = "unknown", operation: str = "unknown", code: str | None = None
    ) -> None:
        self.venue = venue
        self.operation = operation
        self.code = code
        self.message = message
        super().__init__(f"{venue} {operation}: {message}")

    def __reduce__(self) -> tuple[object, ...]:
        # Keyword-only arguments do not survive the default pickling; Lambda and tests may pickle.
        return (_rebuild, (type(self), self.args, self.__dict__))


def _rebuild(cls: type[VenueError], args: tuple[object, ...], state: dict[str, object]) -> VenueError:
    error = cls.__new__(cls, *args)
    error.args = args
    error.__dict__.update(state)
    return error


class RetryableVenueError(VenueError, domain.RetryableVenueError):
    """Timeouts, 429, 5xx, maintenance, network: the same request may succeed later."""

    retryable: ClassVar[bool] = True


class PermanentVenueError(VenueError, domain.PermanentVenueError):
    """Rejections, insufficient funds, precision/filters, auth, unknown symbol: do not retry."""

    retryable: ClassVar[bool] = False


class RateLimited(RetryableVenueError):
    """The venue refused for rate; ``retry_after`` is the wait in seconds it asked for (None: unknown)."""

    def __init__(
        self,
        message: str,
        *,
        venue: str = "unknown",
        operation: str = "unknown",
        code: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message, venue=venue, operation=operation, code=code)
        self.retry_after = retry_after


class VenueUnavailable(RetryableVenueError):
    """5xx, maintenance, connection refused or reset."""


class VenueTimeout(RetryableVenueError):
    """No answer within the client timeout."""


class AmbiguousOrderState(RetryableVenueError):
    """A create may or may not have reached the venue. Resolve by looking up ``client_order_id``."""

    def __init__(
        self,
        message: str,
        *,
        venue: str = "unknown",
        operation: str = "create_order",
        code: str | None = None,
        client_order_id: str | None = None,
    ) -> None:
        super().__init__(message, venue=venue, operation=operation, code=code)
        self.client_order_id = client_order_id


class OrderRejected(PermanentVenueError):
    """The venue refused the order (filters, precision, post-only, market closed...)."""


class InsufficientFunds(OrderRejected):
    """Not enough free balance for the order."""


class DuplicateClientOrderId(OrderRejected):
    """The venue already holds an order with this client id: the order was placed before."""


class OrderNotFound(PermanentVenueError, domain.OrderNotFound):
    """The venue knows no order with the given id."""


class AuthenticationFailed(PermanentVenueError):
    """Bad API key, signature, timestamp window or permissions."""


class UnknownSymbol(PermanentVenueError):
    """The venue does not list the symbol."""


# ccxt class name -> ours. Walking the raised class's MRO and taking the first name found here gives
# the most specific mapping (OrderNotFound before InvalidOrder, OnMaintenance before NetworkError).
_CCXT_NAMES: dict[str, type[VenueError]] = {
    "DuplicateOrderId": DuplicateClientOrderId,
    "OrderNotFound": OrderNotFound,
    "InsufficientFunds": InsufficientFunds,
    "InvalidOrder": OrderRejected,
    "OperationRejected": OrderRejected,
    "AuthenticationError": AuthenticationFailed,
    "BadSymbol": UnknownSymbol,
    "BadRequest": PermanentVenueError,
    "ArgumentsRequired": PermanentVenueError,
    "NotSupported": PermanentVenueError,
    "RateLimitExceeded": RateLimited,
    "DDoSProtection": RateLimited,
    "RequestTimeout": VenueTimeout,
    "OnMaintenance": VenueUnavailable,
    "ExchangeNotAvailable": VenueUnavailable,
    "InvalidNonce": RetryableVenueError,  # clock skew: a fresh timestamp on the retry fixes it
    "NetworkError": VenueUnavailable,
    "CancelPending": RetryableVenueError,
    "BadResponse": RetryableVenueError,  # an unparsable body is usually a proxy's error page
    "OperationFailed": RetryableVenueError,
    "ExchangeError": PermanentVenueError,
    "BaseError": PermanentVenueError,
}


def _ccxt_class(exc: BaseException) -> type[VenueError] | None:
    for cls in type(exc).__mro__:
        if cls.__module__.startswith("ccxt") and cls.__name__ in _CCXT_NAMES:
            return _CCXT_NAMES[cls.__name__]
    return None


def _stdlib_class(exc: BaseException) -> type[VenueError] | None:
    if isinstance(exc, TimeoutError | socket.timeout):
        return VenueTimeout
    if isinstance(exc, ConnectionError | OSError):
        return VenueUnavailable
    return None


def classify_exception(
    exc: BaseException,
    *,
    venue: str = "unknown",
    operation: str = "unknown",
    code: str | None = None,
    retry_after: float | None = None,
) -> VenueError:
    """Map any exception from a venue call to this hierarchy (returned, not raised; chain it with ``from``).

    Our own errors come back unchanged; domain venue errors keep their family; ccxt errors map by
    class (see the table above); ``TimeoutError`` is a timeout and other ``OSError`` s are network
    failures (retryable). Anything else is a permanent failure: an unknown error must not be retried
    blindly, least of all around orders.
    """
    if isinstance(exc, VenueError):
        return exc
    message = str(exc) or type(exc).__name__
    target = _ccxt_class(exc) or _stdlib_class(exc)
    if target is None:
        if isinstance(exc, domain.OrderNotFound):
            target = OrderNotFound
        elif isinstance(exc, domain.RetryableVenueError):
            target = RetryableVenueError
        else:
            target = PermanentVenueError
    if target is RateLimited:
        return RateLimited(message, venue=venue, operation=operation, code=code, retry_after=retry_after)
    return target(message, venue=venue, operation=operation, code=code)
