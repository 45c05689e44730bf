"""Latest quotes in Redis: one hash per (venue, symbol), written only when not older than what is there.

Each hash holds ``ts`` (the venue timestamp, integer microseconds since the epoch, which the
script compares), ``seq`` (a venue sequence number, or empty), ``rx`` (when the desk received
the update, microseconds, or empty) and ``v`` (the model as the schemas' JSON, so every ``Decimal``
is a string and survives the round trip exactly).

Out-of-order protection is one Lua script (:data:`PUT_IF_NOT_OLDER`), shared with the books: it
reads the stored stamp and writes in one atomic step, so an older update that arrives late (a slow
Lambda, a retried SQS message, a reconnecting WebSocket replaying) can never replace a newer one,
whatever the interleaving of writers. An update with the *same* stamp is written: it is either a
redelivery (same content) or a later update within the venue's clock resolution.

Every accepted write resets the key's TTL, so a dead feed's last quote disappears on its own; a
rejected (older) write does not, so replayed history cannot keep a dead quote alive.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Generic, TypeVar

import redis

from desk.cache import keys
from desk.schemas.market import Quote

__all__ = ["DEFAULT_QUOTE_TTL", "PUT_IF_NOT_OLDER", "Cached", "LatestValues", "QuoteStore", "from_micros", "micros"]

DEFAULT_QUOTE_TTL = timedelta(minutes=15)

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)

# KEYS[1]: the hash. ARGV: ts (µs), seq ('' = none), rx (µs, '' = unknown), payload, ttl (ms).
# Sequences compare as decimal strings (longer = larger), so ids beyond 2^53 stay exact where a Lua
# number would round; timestamps in µs are far below 2^53 and compare as numbers.
PUT_IF_NOT_OLDER = """
local function seq_less(a, b)
  if #a ~= #b then return #a < #b end
  return a < b
end
local cur = redis.call('HMGET', KEYS[1], 'ts', 'seq')
if cur[1] then
  local cur_seq = cur[2] or ''
  if ARGV[2] ~= '' and cur_seq ~= '' then
    if seq_less(ARGV[2], cur_seq) then return 0 end
  elseif tonumber(ARGV[1]) < tonumber(cur[1]) then
    return 0
  end
end
redis.call('HSET', KEYS[1], 'ts', ARGV[1], 'seq', ARGV[2], 'rx', ARGV[3], 'v', ARGV[4])
redis.call('PEXPIRE', KEYS[1], ARGV[5])
return 1
"""

T = TypeVar("T")


def micros(at: datetime) -> int:
    """Exact integer microseconds since the epoch (``timestamp()`` is a float and can be 1 µs off)."""
    if at.utcoffset() is None:
        raise ValueError("datetime must be timezone-aware (UTC)")
    return (at - _EPOCH) // _MICROSECOND


def from_micros(value: int) -> datetime:
    return _EPOCH + timedelta(microseconds=value)


@dataclass(frozen=True, slots=True)
class Cached(Generic[T]):
    """A cached value with the time the desk received it (``None`` when the writer did not say)."""

    value: T
    received_at: datetime | None


def _ttl_ms(ttl: timedelta) -> int:
    ms = ttl // timedelta(milliseconds=1)
    if ms <= 0:
        raise ValueError(f"TTL must be at least 1 ms, got {ttl}")
    return ms


class LatestValues:
    """The latest JSON payload per key, protected against out-of-order writes (quotes and books)."""

    def __init__(self, client: redis.Redis, ttl: timedelta) -> None:
        self._client = client
        self._ttl_ms = _ttl_ms(ttl)
        # EVALSHA with a fallback to EVAL: after a restart or SCRIPT FLUSH the script reloads itself.
        self._put = client.register_script(PUT_IF_NOT_OLDER)

    def put(self, key: str, ts: datetime, payload: str, *, sequence: int | None, received_at: datetime | None) -> bool:
        """Write unless the stored value is newer; True when written."""
        args: list[str | int] = [
            micros(ts),
            "" if sequence is None else str(sequence),
            "" if received_at is None else micros(received_at),
            payload,
            self._ttl_ms,
        ]
        return bool(self._put(keys=[key], args=args))

    def get(self, key: str) -> tuple[str, datetime | None] | None:
        payload, rx = self._client.hmget(key, ["v", "rx"])
        if payload is None:
            return None
        # Works with any client: make_client decodes replies, a caller's raw client returns bytes.
        text = payload.decode() if isinstance(payload, bytes) else str(payload)
        return text, from_micros(int(rx)) if rx else None


class QuoteStore:
    """Latest quote per venue and symbol, with staleness judged from the venue timestamp."""

    def __init__(self, client: redis.Redis, ttl: timedelta = DEFAULT_QUOTE_TTL) -> None:
        self._values = LatestValues(client, ttl)

    def put_quote(self, quote: Quote, received_at: datetime | None = None) -> bool:
        """Store ``quote`` unless a newer one (by venue ``ts``) is cached; True when stored."""
        return self._values.put(
            keys.quote_key(quote.venue, quote.symbol),
            quote.ts,
            quote.model_dump_json(),
            sequence=None,
            received_at=received_at,
        )

    def get_quote_entry(self, venue: str, symbol: str) -> Cached[Quote] | None:
        """The cached quote with its receive time, or ``None`` (never cached, expired or flushed)."""
        found = self._values.get(keys.quote_key(venue, symbol))
        if found is None:
            return None
        payload, received_at = found
        return Cached(Quote.model_validate_json(payload), received_at)

    def get_quote(self, venue: str, symbol: str) -> Quote | None:
        entry = self.get_quote_entry(venue, symbol)
        return None if entry is None else entry.value

    def is_stale(self, venue: str, symbol: str, now: datetime, max_age: timedelta) -> bool:
        """True when there is no quote or ``now - quote.ts > max_age``.

        Judged from the venue's timestamp, not the receive time: a feed that delivers old data
        promptly is still stale. ``now`` comes from the caller's clock (replayable in tests).
        """
        if now.utcoffset() is None:
            raise ValueError("now must be timezone-aware (UTC)")
        quote = self.get_quote(venue, symbol)
        return quote is None or now - quote.ts > max_age
