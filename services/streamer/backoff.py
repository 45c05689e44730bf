"""Reconnect pacing: exponential backoff with full jitter, and resubscription through the shared limiter."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

__all__ = ["Backoff", "acquire_tokens"]

Sleep = Callable[[float], Awaitable[None]]


@dataclass
class Backoff:
    """``delay()`` grows ``base * 2**attempt`` up to ``cap`` and draws uniformly below it (full jitter:
    reconnecting clients spread out instead of stampeding the venue together); ``reset()`` after a
    connection has delivered data."""

    base: float = 0.5
    cap: float = 30.0
    rng: random.Random = field(default_factory=random.Random)
    attempt: int = 0

    def delay(self) -> float:
        ceiling = min(self.cap, self.base * 2 ** min(self.attempt, 30))
        self.attempt += 1
        return self.rng.uniform(0, ceiling)

    def reset(self) -> None:
        self.attempt = 0


async def acquire_tokens(
    acquire: Callable[[str, float], float], bucket: str, cost: float, *, sleep: Sleep = asyncio.sleep
) -> float:
    """Take ``cost`` tokens from the shared bucket, waiting as told; returns the total wait.

    ``acquire`` is the blocking Redis call (``QuoteCache.acquire``), run off the event loop.
    """
    waited = 0.0
    while True:
        wait = await asyncio.to_thread(acquire, bucket, cost)
        if wait <= 0:
            return waited
        waited += wait
        await sleep(wait)
