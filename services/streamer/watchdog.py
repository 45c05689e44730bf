"""Per-channel staleness: no message within a channel's threshold → reconnect the venue, mark the
symbol stale (``quote.stale``), and ``feed.recovered`` once every channel of the symbol flows again.

Detection runs on the monotonic clock (receive times); event times come from the injected
:class:`~desk.ports.Clock`. A stale quote needs no deletion: its venue timestamp is older than the
threshold, so ``QuoteCache.is_stale`` already refuses it — the events tell the rest of the desk.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from desk.events import Envelope, new_event
from desk.observability import logger
from desk.ports import Clock
from desk.schemas.market import FeedRecovered, QuoteStale

__all__ = ["PrivateStreamGuard", "Watchdog"]

Key = tuple[str, str, str]  # venue, symbol, channel


@dataclass
class _Channel:
    threshold: float
    last_rx: float
    last_at: datetime | None = None
    stale: bool = False


class Watchdog:
    def __init__(
        self,
        *,
        clock: Clock,
        publish: Callable[[Sequence[Envelope]], Awaitable[None]],
        reconnect: Callable[[str], None],
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._clock = clock
        self._publish = publish
        self._reconnect = reconnect
        self._mono = monotonic
        self._channels: dict[Key, _Channel] = {}
        self._down_since: dict[tuple[str, str], datetime] = {}
        self.detections = 0

    def register(self, venue: str, symbol: str, channel: str, threshold: float) -> None:
        self._channels[(venue, symbol, channel)] = _Channel(threshold, self._mono())

    def seen(self, venue: str, symbol: str, channel: str) -> Envelope | None:
        """A message arrived; returns the ``feed.recovered`` event when this ends the symbol's outage."""
        state = self._channels.get((venue, symbol, channel))
        if state is None:
            return None
        state.last_rx, state.last_at = self._mono(), self._clock.now()
        if not state.stale:
            return None
        state.stale = False
        down_since = self._down_since.get((venue, symbol))
        if down_since is None or any(c.stale for (v, s, _), c in self._channels.items() if (v, s) == (venue, symbol)):
            return None
        del self._down_since[(venue, symbol)]
        now = self._clock.now()
        logger.info("feed recovered", extra={"venue": venue, "symbol": symbol})
        data = FeedRecovered(venue=venue, symbol=symbol, down_since=down_since, recovered_at=max(now, down_since))
        return new_event("feed.recovered", data, occurred_at=now)

    def check(self) -> list[Envelope]:
        """Mark newly stale channels; one ``quote.stale`` per symbol going down; reconnect their venues."""
        now_mono, now = self._mono(), self._clock.now()
        events: list[Envelope] = []
        venues: set[str] = set()
        for (venue, symbol, channel), state in self._channels.items():
            if state.stale or now_mono - state.last_rx <= state.threshold:
                continue
            state.stale = True
            self.detections += 1
            venues.add(venue)
            logger.warning("channel stale", extra={"venue": venue, "symbol": symbol, "channel": channel})
            if (venue, symbol) not in self._down_since:
                self._down_since[(venue, symbol)] = now
                data = QuoteStale(venue=venue, symbol=symbol, last_quote_at=state.last_at, detected_at=now,
                                  max_age_seconds=state.threshold)  # fmt: skip
                events.append(new_event("quote.stale", data, occurred_at=now))
        for venue in sorted(venues):
            self._reconnect(venue)
        return events

    def stale_symbols(self) -> list[tuple[str, str]]:
        return sorted(self._down_since)

    def all_fresh(self) -> bool:
        return not self._down_since

    async def run(self, stop: asyncio.Event) -> None:
        period = min((c.threshold for c in self._channels.values()), default=1.0) / 4
        while not stop.is_set():
            events = self.check()
            if events:
                await self._publish(events)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), period)


class PrivateStreamGuard:
    """Requests cancel-all (once per outage) when a venue's private stream stays down past ``after``.

    Without the private stream the desk cannot see fills, so resting orders would trade blind.
    """

    def __init__(self, cancel_all: Callable[[str], Awaitable[None]], after: timedelta, clock: Clock) -> None:
        self._cancel_all = cancel_all
        self._after = after
        self._clock = clock
        self._down: dict[str, datetime] = {}
        self._requested: set[str] = set()

    def disconnected(self, venue: str) -> None:
        self._down.setdefault(venue, self._clock.now())

    def connected(self, venue: str) -> None:
        self._down.pop(venue, None)
        self._requested.discard(venue)

    async def check(self) -> list[str]:
        now = self._clock.now()
        due = [v for v, since in self._down.items() if now - since > self._after and v not in self._requested]
        for venue in due:
            self._requested.add(venue)
            logger.warning("private stream down too long: cancel-all requested", extra={"venue": venue})
            await self._cancel_all(venue)
        return due
