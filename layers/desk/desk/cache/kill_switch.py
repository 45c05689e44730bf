"""The kill-switch latch mirrored in Redis (``ld:v1:killswitch``): a fast read for every pre-trade check.

PostgreSQL holds the latch (the system of record); this copy may be lost like everything in Redis.
Readers treat "latched in either place" as latched, so a lost or stale mirror can only make the desk
more careful, never less. Writers set PostgreSQL first, then this key (no TTL: it changes only when
the latch does).
"""

from __future__ import annotations

import redis

from desk.cache.keys import PREFIX
from desk.schemas.trading import KillSwitchState

__all__ = ["KILL_SWITCH_KEY", "RedisKillSwitch"]

KILL_SWITCH_KEY = f"{PREFIX}:killswitch"


class RedisKillSwitch:
    """``KillSwitchMirror`` on one Redis key holding the :class:`KillSwitchState` JSON."""

    def __init__(self, client: redis.Redis) -> None:
        self._client = client

    def mirror(self, state: KillSwitchState) -> None:
        self._client.set(KILL_SWITCH_KEY, state.model_dump_json())

    def state(self) -> KillSwitchState | None:
        raw = self._client.get(KILL_SWITCH_KEY)
        return None if raw is None else KillSwitchState.model_validate_json(raw)

    def latched(self) -> bool:
        state = self.state()
        return state is not None and state.latched
