"""Recently closed bars in Redis: one capped stream per (venue, timeframe, symbol), oldest first.

The streamer closes minute bars from trades; the ingest path reconciles its stored venue bars
against them. Each entry's stream id is the bar's open time in milliseconds, so Redis itself keeps
the entries in time order and refuses a bar that is not newer than the last one (a redelivery or a
restarted writer replaying a minute) — one Lua script (:data:`APPEND_IF_NEWER`) appends, trims to
the last ``keep`` bars and refreshes the TTL in one atomic step, and a refused bar does not keep a
dead feed's key alive. The value is the model as the schemas' JSON (every ``Decimal`` a string).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta

import redis

from desk.cache import keys
from desk.cache.quotes import micros
from desk.schemas.market import Bar

__all__ = ["APPEND_IF_NEWER", "DEFAULT_BARS_KEEP", "DEFAULT_BARS_TTL", "BarStore"]

DEFAULT_BARS_KEEP = 1_440  # one day of minute bars
DEFAULT_BARS_TTL = timedelta(days=1)

# KEYS[1]: the stream. ARGV: id ('<open ms>-0'), payload, keep, ttl (ms).
APPEND_IF_NEWER = """
local added = redis.pcall('XADD', KEYS[1], 'MAXLEN', ARGV[3], ARGV[1], 'v', ARGV[2])
if type(added) == 'table' and added.err then
  if string.find(added.err, 'equal or smaller', 1, true) then return 0 end
  return added
end
redis.call('PEXPIRE', KEYS[1], ARGV[4])
return 1
"""


def _value(fields: Mapping[str | bytes, str | bytes] | None) -> str:
    """An entry's ``v`` as text: make_client decodes replies, a caller's raw client returns bytes."""
    found = next((v for k, v in (fields or {}).items() if k in ("v", b"v")), None)
    if found is None:
        raise ValueError("bar entry without a value")
    return found.decode() if isinstance(found, bytes) else found


class BarStore:
    """The last ``keep`` closed bars per venue, symbol and timeframe."""

    def __init__(self, client: redis.Redis, ttl: timedelta = DEFAULT_BARS_TTL, keep: int = DEFAULT_BARS_KEEP) -> None:
        if keep < 1:
            raise ValueError(f"bars kept must be >= 1, got {keep}")
        ttl_ms = ttl // timedelta(milliseconds=1)
        if ttl_ms <= 0:
            raise ValueError(f"TTL must be at least 1 ms, got {ttl}")
        self._client = client
        self._keep = keep
        self._ttl_ms = ttl_ms
        self._append = client.register_script(APPEND_IF_NEWER)

    def put_bar(self, bar: Bar) -> bool:
        """Append ``bar`` unless one at or after its open time is stored; True when appended."""
        key = keys.bars_key(bar.venue, bar.symbol, bar.timeframe)
        args: list[str | int] = [f"{micros(bar.ts) // 1000}-0", bar.model_dump_json(), self._keep, self._ttl_ms]
        return bool(self._append(keys=[key], args=args))

    def get_bars(self, venue: str, symbol: str, timeframe: str, since: datetime | None = None) -> list[Bar]:
        """The stored bars opening at or after ``since`` (all when ``None``), oldest first."""
        start = "-" if since is None else str(-(-micros(since) // 1000))  # ceil: no bar before `since`
        entries = self._client.xrange(keys.bars_key(venue, symbol, timeframe), min=start, max="+") or []
        return [Bar.model_validate_json(_value(fields)) for _, fields in entries]
