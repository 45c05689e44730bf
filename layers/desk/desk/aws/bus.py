"""The EventBridge adapter of the :class:`~desk.ports.EventBus` port.

``PutEvents`` accepts at most 10 entries and 256 KiB per request, and it fails *per entry*: the
call succeeds while ``FailedEntryCount`` says some entries were refused (throttled, internal
failure). botocore's retries only cover whole-call failures, so this adapter re-sends just the
refused entries with exponential backoff, and names the ones that still fail in
:class:`~desk.domain.errors.PublishFailed`. Re-publishing them is safe: consumers dedupe on the
envelope id.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from desk.aws.clients import client as default_client
from desk.domain.errors import PublishFailed
from desk.events import EVENTBRIDGE_MAX_ENTRY_BYTES, Envelope

MAX_ENTRIES_PER_CALL = 10
# The request limit equals the entry limit: a batch is cut when the next entry would cross it.
MAX_BYTES_PER_CALL = EVENTBRIDGE_MAX_ENTRY_BYTES
_TIME_BYTES = 14  # EventBridge counts a Time as 14 bytes


def entry_size(entry: dict[str, Any]) -> int:
    """Bytes EventBridge counts for a ``PutEvents`` entry (Time, Source, DetailType, Detail, Resources)."""
    size = _TIME_BYTES if "Time" in entry else 0
    for key in ("Source", "DetailType", "Detail"):
        size += len(str(entry.get(key, "")).encode())
    return size + sum(len(r.encode()) for r in entry.get("Resources", ()))


def batches(entries: Sequence[tuple[str, dict[str, Any]]]) -> Iterator[list[tuple[str, dict[str, Any]]]]:
    """Split ``(id, entry)`` pairs into ``PutEvents`` calls: <= 10 entries and <= 256 KiB each, order kept."""
    batch: list[tuple[str, dict[str, Any]]] = []
    size = 0
    for item in entries:
        item_size = entry_size(item[1])
        if batch and (len(batch) == MAX_ENTRIES_PER_CALL or size + item_size > MAX_BYTES_PER_CALL):
            yield batch
            batch, size = [], 0
        batch.append(item)
        size += item_size
    if batch:
        yield batch


class EventBridgeBus:
    """Publishes envelopes to one EventBridge bus (``Source`` = the service, ``DetailType`` = event type).

    ``sleep`` is injected so tests (and the local cloud's simulated clock) never wait for real.
    """

    def __init__(
        self,
        bus_name: str,
        source: str,
        *,
        client: Any = None,
        sleep: Callable[[float], None] = time.sleep,
        max_attempts: int = 4,
        base_delay: float = 0.05,
        max_delay: float = 2.0,
    ) -> None:
        if max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        self.bus_name = bus_name
        self.source = source
        self._client = client
        self._sleep = sleep
        self._max_attempts = max_attempts
        self._base_delay = base_delay
        self._max_delay = max_delay

    @property
    def client(self) -> Any:
        # Resolved on first use, not in __init__, so the cached factory sees the test's environment.
        if self._client is None:
            self._client = default_client("events")
        return self._client

    def publish(self, events: Sequence[Envelope]) -> None:
        """Publish every event; raise :class:`PublishFailed` naming those still refused after the retries.

        Oversized events raise :class:`~desk.domain.errors.InvalidEvent` before anything is sent.
        """
        # Build every entry first: a too-large event fails the call before a partial publish.
        entries = [(e.id, e.to_eventbridge_entry(self.source, self.bus_name)) for e in events]
        failed: list[str] = []
        errors: list[str] = []
        for batch in batches(entries):
            still_failing, error = self._put_with_retries(batch)
            failed.extend(still_failing)
            if error:
                errors.append(error)
        if failed:
            raise PublishFailed(failed, "; ".join(sorted(set(errors))))

    def _put_with_retries(self, batch: list[tuple[str, dict[str, Any]]]) -> tuple[list[str], str]:
        pending = batch
        error = ""
        for attempt in range(self._max_attempts):
            if attempt:
                self._sleep(min(self._max_delay, self._base_delay * 2 ** (attempt - 1)))
            try:
                response = self.client.put_events(Entries=[entry for _, entry in pending])
            except (ClientError, BotoCoreError) as exc:
                # botocore has already retried throttles and 5xx; what reaches here will not heal.
                return [event_id for event_id, _ in pending], f"{type(exc).__name__}: {exc}"
            if not response.get("FailedEntryCount"):
                return [], ""
            # Result entries line up with request entries; a failed one carries an ErrorCode.
            results = response.get("Entries", [])
            retry = [item for item, result in zip(pending, results, strict=True) if result.get("ErrorCode")]
            error = ", ".join(sorted({str(r["ErrorCode"]) for r in results if r.get("ErrorCode")}))
            pending = retry
        return [event_id for event_id, _ in pending], error
