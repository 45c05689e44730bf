"""desk.cache.ratelimit on a real Redis: one atomic token bucket per venue key, on Redis's clock."""

from __future__ import annotations

import math
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
import redis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from desk.cache import BucketLimit, RateLimiter, bucket_id, make_client
from desk.cache.keys import rate_limit_key

T0 = datetime(2024, 3, 1, 12, 0, tzinfo=UTC)
BUCKET = bucket_id("binance", "key-1")


@pytest.fixture
def client(redis_url: str) -> Iterator[redis.Redis]:
    client = make_client(redis_url)
    yield client
    client.close()


def _server_seconds(client: redis.Redis) -> float:
    seconds, micros = client.time()
    return seconds + micros / 1_000_000


def test_a_burst_takes_exactly_the_capacity_then_waits_for_one_token(client: redis.Redis) -> None:
    # Given a bucket of 5 tokens refilled at 2 per second, at a frozen instant
    limiter = RateLimiter(client, {BUCKET: BucketLimit(capacity=5, refill_per_second=2)})
    # When 6 requests arrive at once
    waits = [limiter.acquire(BUCKET, now=T0) for _ in range(6)]
    # Then the first 5 are granted and the 6th must wait exactly one token's refill time
    assert waits == [0.0] * 5 + [0.5]


def test_tokens_refill_with_time_and_never_beyond_capacity(client: redis.Redis) -> None:
    # Given an empty bucket of 5 tokens refilled at 2 per second
    limiter = RateLimiter(client, {BUCKET: BucketLimit(capacity=5, refill_per_second=2)})
    for _ in range(5):
        limiter.acquire(BUCKET, now=T0)
    # When a quarter of a second passes, Then half a token is there: wait another quarter
    assert limiter.acquire(BUCKET, now=T0 + timedelta(seconds=0.25)) == 0.25
    # When the returned wait has passed, Then the request is granted and the next one waits a full token
    assert limiter.acquire(BUCKET, now=T0 + timedelta(seconds=0.5)) == 0.0
    assert limiter.acquire(BUCKET, now=T0 + timedelta(seconds=0.5)) == 0.5
    # When an hour passes, Then the bucket holds its capacity and no more
    later = T0 + timedelta(hours=1)
    assert [limiter.acquire(BUCKET, now=later) for _ in range(6)] == [0.0] * 5 + [0.5]


def test_a_costly_request_waits_for_its_whole_cost_and_takes_nothing_meanwhile(client: redis.Redis) -> None:
    # Given 2 tokens left in a bucket refilled at 1 per second
    limiter = RateLimiter(client, {BUCKET: BucketLimit(capacity=4, refill_per_second=1)})
    assert limiter.acquire(BUCKET, cost=2, now=T0) == 0.0
    # When a request costing 3 arrives, Then it waits 1 s and takes nothing
    assert limiter.acquire(BUCKET, cost=3, now=T0) == 1.0
    # And the 2 tokens are still there for cheaper requests
    assert limiter.acquire(BUCKET, cost=2, now=T0) == 0.0


def test_a_clock_going_backwards_mints_no_tokens(client: redis.Redis) -> None:
    # Given an emptied bucket at T0 + 10 s
    limiter = RateLimiter(client, {BUCKET: BucketLimit(capacity=2, refill_per_second=1)})
    later = T0 + timedelta(seconds=10)
    limiter.acquire(BUCKET, cost=2, now=later)
    # When a caller asks with an earlier time (a failover to a server whose clock lags)
    wait = limiter.acquire(BUCKET, now=T0)
    # Then nothing is granted
    assert wait == 1.0


def test_buckets_are_independent_per_venue_key(client: redis.Redis) -> None:
    # Given two keys on one venue, one of them exhausted
    other = bucket_id("binance", "key-2")
    limiter = RateLimiter(client, {}, default=BucketLimit(capacity=1, refill_per_second=1))
    assert limiter.acquire(BUCKET, now=T0) == 0.0
    assert limiter.acquire(BUCKET, now=T0) == 1.0
    # When the other key asks, Then it has its own full budget
    assert limiter.acquire(other, now=T0) == 0.0


def test_bad_requests_are_refused_before_touching_redis(client: redis.Redis) -> None:
    # Given a bucket of 3 tokens
    limiter = RateLimiter(client, {BUCKET: BucketLimit(capacity=3, refill_per_second=1)})
    # When a request costs more than the capacity (never grantable), nothing, or names an unknown bucket
    # Then each is refused
    for cost in (4.0, 0.0, -1.0, math.nan):
        with pytest.raises(ValueError, match="cost"):
            limiter.acquire(BUCKET, cost=cost)
    with pytest.raises(ValueError, match="no rate limit"):
        limiter.acquire(bucket_id("kraken", "k"))
    with pytest.raises(ValueError, match="capacity"):
        BucketLimit(capacity=0, refill_per_second=1)
    assert client.exists(rate_limit_key(BUCKET)) == 0


def test_the_bucket_expires_once_it_would_be_full_again(client: redis.Redis) -> None:
    # Given a bucket of 10 tokens refilled at 1 per second, 4 tokens taken
    limiter = RateLimiter(client, {BUCKET: BucketLimit(capacity=10, refill_per_second=1)})
    limiter.acquire(BUCKET, cost=4, now=T0)
    # When its key's TTL is read, Then it lasts the 4 s refill plus a 1 s margin (a missing bucket is a full one)
    assert 4_000 < client.pttl(rate_limit_key(BUCKET)) <= 5_000


def test_the_server_clock_is_used_when_no_time_is_given(client: redis.Redis) -> None:
    # Given a bucket of 3 tokens that refills so slowly (1 token per 1000 s) that test duration cannot matter
    limiter = RateLimiter(client, {BUCKET: BucketLimit(capacity=3, refill_per_second=0.001)})
    before = _server_seconds(client)
    # When 4 requests arrive on the server's clock
    waits = [limiter.acquire(BUCKET) for _ in range(4)]
    after = _server_seconds(client)
    # Then 3 are granted and the 4th waits about 1000 s (less only by what refilled during the test)
    assert waits[:3] == [0.0, 0.0, 0.0]
    assert 1000 - (after - before) * 1.01 - 0.001 <= waits[3] <= 1000
    # And the bucket is stamped with Redis TIME, not with this host's clock
    stamped = float(str(client.hget(rate_limit_key(BUCKET), "ts"))) / 1_000_000
    assert before <= stamped <= after


def micros_since_t0(offset_us: int) -> int:
    return (T0 - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1) + offset_us


class _ReferenceBucket:
    """The token bucket in plain Python, float for float the same arithmetic as the Lua script."""

    def __init__(self, capacity: float, rate: float) -> None:
        self.capacity, self.rate = capacity, rate
        self.tokens: float | None = None
        self.ts = 0

    def acquire(self, cost: float, now: int) -> int:
        if self.tokens is None:
            self.tokens, self.ts = self.capacity, now
        elif now > self.ts:
            self.tokens, self.ts = self.tokens + (now - self.ts) * self.rate / 1_000_000, now
        self.tokens = min(self.tokens, self.capacity)
        if self.tokens + 1e-9 >= cost:
            self.tokens -= cost
            return 0
        return math.ceil((cost - self.tokens) * 1_000_000 / self.rate)


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(
    capacity=st.integers(1, 20),
    rate=st.sampled_from([0.5, 1.0, 3.0, 10.0, 0.001]),
    steps=st.lists(st.tuples(st.integers(0, 2_000_000), st.sampled_from([0.5, 1.0, 2.0, 3.0])), max_size=40),
)
def test_the_script_matches_the_reference_and_never_over_grants(
    client: redis.Redis, capacity: int, rate: float, steps: list[tuple[int, float]]
) -> None:
    # Given a fresh bucket and any sequence of (time step in µs, cost) requests
    client.delete(rate_limit_key(BUCKET))
    limiter = RateLimiter(client, {BUCKET: BucketLimit(capacity=capacity, refill_per_second=rate)})
    reference = _ReferenceBucket(capacity, rate)
    now_us, granted = 0, 0.0
    for step_us, cost in steps:
        if cost > capacity:
            continue
        now_us += step_us
        # When each request is made at its injected time
        wait = limiter.acquire(BUCKET, cost=cost, now=T0 + timedelta(microseconds=now_us))
        # Then the script decides exactly as the reference does
        assert wait == reference.acquire(cost, micros_since_t0(now_us)) / 1_000_000
        granted += cost if wait == 0.0 else 0.0
        # And the total granted never exceeds the capacity plus what refilled since the first request
        assert granted <= capacity + rate * now_us / 1_000_000 + 1e-6


def test_many_concurrent_clients_never_over_grant(redis_url: str, client: redis.Redis) -> None:
    # Given one bucket of 20 tokens refilled at 50 per second, shared by 8 independent clients (8 Lambdas)
    limit = BucketLimit(capacity=20, refill_per_second=50)
    clients = [make_client(redis_url) for _ in range(8)]
    limiters = [RateLimiter(c, {BUCKET: limit}) for c in clients]
    granted = [0] * 8
    start = threading.Barrier(8)

    def hammer(i: int) -> None:
        start.wait()
        for _ in range(60):
            if limiters[i].acquire(BUCKET) == 0.0:
                granted[i] += 1

    # When they all ask as fast as they can, on the server's clock
    begin = _server_seconds(client)
    threads = [threading.Thread(target=hammer, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = _server_seconds(client) - begin
    for c in clients:
        c.close()
    # Then the whole burst was used, and never more than capacity + refill over the window was granted
    total = sum(granted)
    assert total >= limit.capacity
    assert total <= limit.capacity + limit.refill_per_second * elapsed + 1e-6
    # And some requests were refused (the test really pushed past the budget)
    assert total < 8 * 60
