"""Every Redis key the desk uses, in one place, under one version prefix.

Layout (``ld`` = Lambda Desk, ``v1`` = the layout of the values below):

* ``ld:v1:quote:{venue}:{symbol}``  hash: the latest top of book (see :mod:`desk.cache.quotes`)
* ``ld:v1:book:{venue}:{symbol}``   hash: the latest depth snapshot (see :mod:`desk.cache.books`)
* ``ld:v1:bars:{venue}:{timeframe}:{symbol}``  stream: the last closed bars (see :mod:`desk.cache.bars`)
* ``ld:v1:rl:{venue}:{key_id}``     hash: one token bucket per venue API key (see :mod:`desk.cache.ratelimit`)

Bumping :data:`VERSION` when a value's layout changes lets old and new code share one Redis during a
deploy: each reads only what it can parse, and the old keys expire on their own TTLs.

Each operation touches exactly one key, so the layout also works on a cluster-mode endpoint
(ElastiCache Serverless) without hash tags. Venue ids may not contain ``:`` so that a key names
exactly one (venue, symbol) pair; symbols may (``ETH/USDT:USDT``) because they come last.
"""

from __future__ import annotations

import re

__all__ = ["PREFIX", "VERSION", "bars_key", "book_key", "bucket_id", "quote_key", "rate_limit_key"]

VERSION = "v1"
PREFIX = f"ld:{VERSION}"

# Printable ASCII without space: the same alphabet as the schemas' identifiers and symbols.
_PART = re.compile(r"^[!-~]{1,128}$")


def _part(name: str, value: str, *, colon: bool) -> str:
    if not _PART.match(value):
        raise ValueError(f"{name} must be 1-128 printable ASCII characters without spaces, got {value!r}")
    if not colon and ":" in value:
        raise ValueError(f"{name} must not contain ':' (it separates key parts), got {value!r}")
    return value


def quote_key(venue: str, symbol: str) -> str:
    """The key of the latest quote of ``symbol`` on ``venue``."""
    return f"{PREFIX}:quote:{_part('venue', venue, colon=False)}:{_part('symbol', symbol, colon=True)}"


def book_key(venue: str, symbol: str) -> str:
    """The key of the latest order-book snapshot of ``symbol`` on ``venue``."""
    return f"{PREFIX}:book:{_part('venue', venue, colon=False)}:{_part('symbol', symbol, colon=True)}"


def bars_key(venue: str, symbol: str, timeframe: str) -> str:
    """The key of the recent closed ``timeframe`` bars of ``symbol`` on ``venue`` (the timeframe has no colon)."""
    return (
        f"{PREFIX}:bars:{_part('venue', venue, colon=False)}:{_part('timeframe', timeframe, colon=False)}"
        f":{_part('symbol', symbol, colon=True)}"
    )


def bucket_id(venue: str, key_id: str) -> str:
    """The rate-limit bucket name of one venue API key (what :meth:`QuoteCache.acquire` takes)."""
    return f"{_part('venue', venue, colon=False)}:{_part('key_id', key_id, colon=True)}"


def rate_limit_key(bucket: str) -> str:
    """The key of the token bucket ``bucket`` (normally built by :func:`bucket_id`)."""
    return f"{PREFIX}:rl:{_part('bucket', bucket, colon=True)}"
