"""Deterministic client order ids and each venue's rules for them.

``client_order_id(plan_id, slice_no)`` is ``"<plan id>-<slice>"``. Plan ids from :func:`plan_id_from`
are ``"ld"`` + 24 base32 characters (120-bit BLAKE2b of the plan's identifying parts), so a client
order id is at most 26 + 1 + 9 = 36 characters in ``[a-z2-7-]`` and fits Binance's
``newClientOrderId`` (36, ``[.A-Z:/a-z0-9_-]``), Alpaca's 128 and Step Functions execution names.
Being deterministic, a retried slice reuses its id, so after a timeout the order can be looked up by
that id before any resend, and the venue refuses an accidental duplicate.
"""

from __future__ import annotations

import base64
import hashlib
import re
from dataclasses import dataclass

from desk.domain.errors import InvalidClientOrderId

__all__ = [
    "ALPACA_CLIENT_IDS",
    "BINANCE_CLIENT_IDS",
    "PORTABLE_CLIENT_IDS",
    "ClientIdRules",
    "client_order_id",
    "parse_client_order_id",
    "plan_id_from",
]


@dataclass(frozen=True, slots=True)
class ClientIdRules:
    """A venue's constraint on client order ids: maximum length and allowed characters."""

    venue: str
    max_length: int
    pattern: re.Pattern[str]

    def check(self, value: str) -> str:
        if not value or len(value) > self.max_length:
            limit = f"1..{self.max_length}"
            raise InvalidClientOrderId("client_order_id", f"{value!r} must be {limit} chars on {self.venue}")
        if not self.pattern.fullmatch(value):
            raise InvalidClientOrderId("client_order_id", f"{value!r} has characters {self.venue} does not accept")
        return value


# Binance spot newClientOrderId: ^[\.A-Z\:/a-z0-9_-]{1,36}$. Alpaca client_order_id: any string up to
# 128 characters; we still keep to printable ASCII without spaces so ids survive logs and URLs.
BINANCE_CLIENT_IDS = ClientIdRules("binance", 36, re.compile(r"[.A-Z:/a-z0-9_-]+"))
ALPACA_CLIENT_IDS = ClientIdRules("alpaca", 128, re.compile(r"[!-~]+"))
# The strictest venue we know: ids that pass it are valid everywhere we trade.
PORTABLE_CLIENT_IDS = BINANCE_CLIENT_IDS

_PLAN_PREFIX = "ld"
_MAX_SLICE = 999_999_999


def plan_id_from(*parts: str) -> str:
    """A compact, deterministic plan id: ``"ld"`` + base32(BLAKE2b-120 of the parts), 26 chars.

    Derive it from what identifies the plan (e.g. the signal event id and the strategy), so a
    redelivered signal yields the same plan id and the Step Functions execution named by it is
    started at most once. 120 bits make a collision negligible over any desk's lifetime.
    """
    if not parts or not all(parts):
        raise ValueError("plan_id_from needs at least one non-empty part")
    # The unit separator keeps ("ab", "c") and ("a", "bc") apart.
    digest = hashlib.blake2b("\x1f".join(parts).encode(), digest_size=15).digest()
    return _PLAN_PREFIX + base64.b32encode(digest).decode().lower()


def client_order_id(plan_id: str, slice_no: int, rules: ClientIdRules = PORTABLE_CLIENT_IDS) -> str:
    """``"<plan id>-<slice>"``, checked against ``rules`` (Binance's by default).

    Raises
    ------
    InvalidClientOrderId
        When the id is too long or uses a character the venue refuses, or ``slice_no`` is not an
        integer in ``0..999_999_999``.
    """
    if isinstance(slice_no, bool) or not isinstance(slice_no, int) or not 0 <= slice_no <= _MAX_SLICE:
        raise InvalidClientOrderId("slice_no", f"slice number must be an int in 0..{_MAX_SLICE}, got {slice_no!r}")
    if not plan_id:
        raise InvalidClientOrderId("plan_id", "plan id must not be empty")
    return rules.check(f"{plan_id}-{slice_no}")


def parse_client_order_id(value: str) -> tuple[str, int]:
    """Inverse of :func:`client_order_id`: ``(plan_id, slice_no)``; :class:`InvalidClientOrderId` otherwise."""
    plan_id, sep, tail = value.rpartition("-")
    if not sep or not plan_id or not tail.isdigit() or not tail.isascii() or len(tail) > len(str(_MAX_SLICE)):
        raise InvalidClientOrderId("client_order_id", f"{value!r} is not '<plan id>-<slice>'")
    if tail != str(int(tail)):
        raise InvalidClientOrderId("client_order_id", f"{value!r}: slice number has leading zeros")
    return plan_id, int(tail)
