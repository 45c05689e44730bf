"""The Redis client: built lazily from a URL, cached per URL, tuned for Lambda and ElastiCache Serverless.

* ``rediss://`` turns on TLS (ElastiCache Serverless accepts TLS only) with certificate and host-name
  checks left on; ``redis://`` and ``unix://`` are for local Redis and tests.
* Timeouts are short: a Lambda must fail fast and let SQS / Step Functions retry rather than hang
  on a half-open socket until the function's own timeout.
* Connection errors and timeouts are retried a few times with jittered exponential backoff, and an
  idle connection is pinged before reuse. That covers a failover, a server restart, idle
  connections reaped by the server or NAT while a Lambda was frozen, and ``CLIENT KILL``. Every
  write the desk makes is idempotent or errs on the safe side when repeated (a repeated
  rate-limit acquire takes tokens twice: fewer requests, never more), so a retried command is safe.
"""

from __future__ import annotations

from functools import cache

import redis
from redis.backoff import ExponentialWithJitterBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from redis.retry import Retry

__all__ = ["get_client", "make_client"]

SOCKET_TIMEOUT = 2.0
CONNECT_TIMEOUT = 2.0
RETRIES = 3
# Below the usual server/NAT idle timeouts, so a connection kept across frozen invocations is
# checked before a command is written to a socket the other end has already dropped.
HEALTH_CHECK_INTERVAL = 30


def make_client(
    url: str,
    *,
    socket_timeout: float = SOCKET_TIMEOUT,
    connect_timeout: float = CONNECT_TIMEOUT,
    retries: int = RETRIES,
    client_name: str | None = None,
) -> redis.Redis:
    """A new client for ``url`` (``redis://``, ``rediss://`` or ``unix://``; ``?db=`` / ``/db`` honoured).

    Responses are decoded as UTF-8 text: everything the desk stores is text (JSON, decimal strings).
    """
    if not url.startswith(("redis://", "rediss://", "unix://")):
        raise ValueError(f"unsupported Redis URL scheme: {url.split('://', 1)[0]!r}")
    # TCP keepalive only applies to TCP; redis-py's unix-socket connection rejects the option.
    tcp = {} if url.startswith("unix://") else {"socket_keepalive": True}
    return redis.Redis.from_url(
        url,
        decode_responses=True,
        socket_timeout=socket_timeout,
        socket_connect_timeout=connect_timeout,
        **tcp,
        health_check_interval=HEALTH_CHECK_INTERVAL,
        retry=Retry(ExponentialWithJitterBackoff(base=0.05, cap=1.0), retries),
        retry_on_error=[RedisConnectionError, RedisTimeoutError],
        client_name=client_name,
    )


@cache
def get_client(url: str) -> redis.Redis:
    """The process-wide client for ``url``, built on first use (never at import, so tests set the
    environment first) and reused across warm Lambda invocations; its pool is thread-safe."""
    return make_client(url)
