"""A token bucket shared by every Lambda, the streamer and the CLI: one per venue API key, in Redis.

The whole decision (refill, compare, take) is one Lua script, so it is atomic however many
processes ask at once, and it reads the time from Redis ``TIME`` inside the script, so every caller
shares one clock as well as one budget: a Lambda host's skewed clock cannot mint tokens.

``acquire`` never sleeps. It returns 0.0 when the tokens were taken, else how many seconds until
they would be there (nothing is taken); the caller decides whether to wait, requeue or give up
(a Lambda near its deadline should not sleep).

State is a hash ``{tokens, ts}`` that expires once the bucket would be full again, since a missing
bucket *is* a full one. The same holds after a flush or failover: the budget resets to full, which
can let one extra burst through; the venue's own 429 (a retryable venue error) is the backstop.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

import redis

from desk.cache import keys
from desk.cache.quotes import micros

__all__ = ["BUCKET_SCRIPT", "BucketLimit", "RateLimiter"]

# KEYS[1]: the bucket. ARGV[1] capacity (tokens), ARGV[2] refill (tokens per second), ARGV[3] cost,
# ARGV[4] now in µs since the epoch, or '' for the server's TIME (tests pass a value to move time
# without sleeping). Returns the wait in whole µs (0 = granted), rounded up so that waiting that
# long is enough. Time never runs backwards for a bucket: an earlier `now` refills nothing.
# The 1e-9 tolerance absorbs float rounding in the refill, so a caller who waits exactly the
# returned time is granted rather than told to wait another microsecond.
BUCKET_SCRIPT = """
local capacity = tonumber(ARGV[1])
local rate = tonumber(ARGV[2])
local cost = tonumber(ARGV[3])
local now = tonumber(ARGV[4])
if not now then
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000000 + tonumber(t[2])
end
local state = redis.call('HMGET', KEYS[1], 'tokens', 'ts')
local tokens = tonumber(state[1])
local ts = tonumber(state[2])
if not tokens or not ts then
  tokens, ts = capacity, now
elseif now > ts then
  tokens = tokens + (now - ts) * rate / 1000000
  ts = now
end
if tokens > capacity then tokens = capacity end
local wait = 0
if tokens + 1e-9 >= cost then
  tokens = tokens - cost
else
  wait = math.ceil((cost - tokens) * 1000000 / rate)
end
redis.call('HSET', KEYS[1], 'tokens', string.format('%.17g', tokens), 'ts', string.format('%.17g', ts))
redis.call('PEXPIRE', KEYS[1], math.ceil((capacity - tokens) * 1000 / rate) + 1000)
return wait
"""


@dataclass(frozen=True, slots=True)
class BucketLimit:
    """``capacity`` tokens at most (the burst), refilled continuously at ``refill_per_second``."""

    capacity: float
    refill_per_second: float

    def __post_init__(self) -> None:
        for name in ("capacity", "refill_per_second"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                raise ValueError(f"{name} must be finite and > 0, got {value}")


class RateLimiter:
    """Token buckets by name (see :func:`desk.cache.keys.bucket_id`), each with its own limit."""

    def __init__(
        self, client: redis.Redis, limits: Mapping[str, BucketLimit], default: BucketLimit | None = None
    ) -> None:
        self._limits = dict(limits)
        self._default = default
        self._script = client.register_script(BUCKET_SCRIPT)

    def limit(self, bucket: str) -> BucketLimit:
        found = self._limits.get(bucket, self._default)
        if found is None:
            raise ValueError(f"no rate limit configured for bucket {bucket!r}")
        return found

    def acquire(self, bucket: str, cost: float = 1.0, *, now: datetime | None = None) -> float:
        """Take ``cost`` tokens: 0.0 when granted, else the seconds to wait (nothing taken).

        ``now`` replaces the server's clock (tests and replays only); production leaves it None.
        """
        limit = self.limit(bucket)
        if not (math.isfinite(cost) and 0 < cost <= limit.capacity):
            # A cost above capacity could never be granted: the caller would wait forever.
            raise ValueError(f"cost must be in (0, {limit.capacity}] for bucket {bucket!r}, got {cost}")
        args = [repr(limit.capacity), repr(limit.refill_per_second), repr(cost), "" if now is None else micros(now)]
        wait_us = int(self._script(keys=[keys.rate_limit_key(bucket)], args=args))
        return wait_us / 1_000_000
