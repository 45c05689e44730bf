"""The desk's typed exceptions.

Every error the runtime raises on purpose derives from :class:`DeskError`, so a handler can map the
whole family to responses (API exception handlers, ASL ``Catch`` by error name) in one place. Errors
that describe bad input also derive from :class:`ValueError`, so pydantic validators that call domain
code turn them into ordinary ``ValidationError`` entries. The class name is the contract: Step
Functions matches on it, so renaming one is a breaking change
(which is also why the names read as states, ``InvalidOrder``, rather than carrying an ``Error`` suffix).
"""

from __future__ import annotations

from collections.abc import Sequence

__all__ = [
    "DeskError",
    "DuplicateFillConflict",
    "InvalidClientOrderId",
    "InvalidEvent",
    "InvalidFill",
    "InvalidNumber",
    "InvalidOrder",
    "InvalidTransition",
    "KillSwitchNotLatched",
    "OrderHardStop",
    "OrderNotFound",
    "Overfill",
    "PermanentVenueError",
    "PrecisionError",
    "PublishFailed",
    "RetryableVenueError",
    "UnknownEventType",
    "VenueError",
]


class DeskError(Exception):
    """Base of every error the desk raises deliberately."""


class InvalidNumber(DeskError, ValueError):
    """A money or quantity value that is not a finite, correctly signed decimal.

    Raised for NaN, ±inf, booleans, negative quantities and unsupported types. ``field`` names the
    offending input so the message can be traced back to a venue payload or an API request.
    """

    def __init__(self, field: str, value: object, reason: str) -> None:
        self.field = field
        self.value = value
        self.reason = reason
        super().__init__(f"{field}={value!r}: {reason}")


class InvalidOrder(DeskError, ValueError):
    """An order that the venue's filters would reject (permanent: resending cannot help).

    ``reason`` is a short machine-readable code (``min_amount``, ``max_price``, ``min_notional``,
    ``tick``, ``lot``, ...) so callers can branch on it without parsing the message.
    """

    def __init__(self, reason: str, message: str) -> None:
        self.reason = reason
        super().__init__(f"{reason}: {message}")


class PrecisionError(InvalidOrder):
    """A price or amount that rounds to zero (or is not representable) at the venue's precision."""


class InvalidClientOrderId(InvalidOrder):
    """A client order id that breaks a venue's length or charset rule."""


class InvalidTransition(DeskError):
    """An order event that the lifecycle state machine does not allow from the current state.

    Examples: a fill on a cancelled order, a rejection after acceptance, a cancel of a filled order.
    """

    def __init__(self, client_order_id: str, state: str, event: str) -> None:
        self.client_order_id = client_order_id
        self.state = state
        self.event = event
        super().__init__(f"order {client_order_id}: {event} is not allowed in state {state}")


class InvalidFill(DeskError, ValueError):
    """A fill that cannot belong where it is applied (another order or symbol, a bad side)."""


class Overfill(InvalidFill):
    """A fill that would take the filled quantity above the order quantity."""


class DuplicateFillConflict(InvalidFill):
    """Two fills share (venue, venue trade id) but differ in content: the ledger needs a human."""


class UnknownEventType(DeskError, LookupError):
    """An event (type, version) with no registered data model."""

    def __init__(self, event_type: str, version: int | None) -> None:
        self.event_type = event_type
        self.version = version
        super().__init__(f"no data model registered for event type {event_type!r} version {version!r}")


class InvalidEvent(DeskError, ValueError):
    """An event envelope or transport wrapper that is malformed (not a data-validation error)."""


class PublishFailed(DeskError):
    """Some events were not accepted by the bus; ``failed_ids`` may be retried (ids are idempotency keys)."""

    def __init__(self, failed_ids: Sequence[str], message: str = "") -> None:
        self.failed_ids = tuple(failed_ids)
        ids = ", ".join(self.failed_ids)
        super().__init__(f"{len(self.failed_ids)} event(s) not published: {ids} {message}".strip())


class VenueError(DeskError):
    """A venue call failed. Adapters map every venue exception to one of the two subclasses."""


class RetryableVenueError(VenueError):
    """Timeouts, HTTP 429, 5xx, maintenance: the same request may succeed later (ASL ``Retry``)."""


class PermanentVenueError(VenueError):
    """Rejections, insufficient funds, bad precision, unknown symbol: retrying cannot help."""


class OrderNotFound(PermanentVenueError):
    """The venue knows no order with the given id (after a timeout: safe to resend)."""


class OrderHardStop(DeskError):
    """More child orders or more quantity sent for a plan than it allows: stop, never resend.

    The class name is the order-placement ASL's ``Catch`` error name.
    """


class KillSwitchNotLatched(DeskError):
    """A release was requested while the kill switch is not latched (nothing to release)."""
