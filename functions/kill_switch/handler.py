"""kill-switch: ``{"action": "engage", "reason", "by"}`` latches and cancels every working order on every
venue; ``{"action": "release", "by", "reason"}`` is the operator's explicit release (nothing else clears it).

Invoked by the risk function on a breach, by reconciliation on persistent drift, and by an operator.
Cancels that fail raise ``KillSwitchIncomplete`` after the latch is set, so the invoke is retried (the
latch is idempotent and only what is still working is cancelled again).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BaseModel, ConfigDict, Field

from desk import wiring
from desk.domain.errors import DeskError
from desk.observability import logger, metrics, tracer
from desk.settings import get_settings
from desk.usecases import orders


class KillSwitchIncomplete(DeskError):
    """The latch is set but some working orders could not be cancelled yet (retry the invoke)."""


class Engage(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    action: Literal["engage"]
    reason: Annotated[str, Field(min_length=1)]
    by: Annotated[str, Field(min_length=1)]


class Release(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    action: Literal["release"]
    by: Annotated[str, Field(min_length=1)]
    reason: str = ""


class Command(BaseModel):
    body: Annotated[Engage | Release, Field(discriminator="action")]


def mirror() -> Any:
    from desk.cache.client import get_client
    from desk.cache.kill_switch import RedisKillSwitch

    return RedisKillSwitch(get_client(get_settings().redis_url))


def run(body: Engage | Release) -> dict[str, Any]:
    if isinstance(body, Release):
        state = orders.release_kill_switch(
            body.by, body.reason, store=wiring.store(), mirror=mirror(), clock=wiring.clock()
        )
        return {"latched": state.latched}
    venues = {name: wiring.venue(name) for name in get_settings().venue_specs()}
    outcome = orders.engage_kill_switch(
        body.reason, body.by, store=wiring.store(), mirror=mirror(), venues=venues, clock=wiring.clock(),
        alerts=wiring.alerts(),
    )  # fmt: skip
    if outcome.failed:
        raise KillSwitchIncomplete(f"latched; {len(outcome.failed)} cancel(s) failed: {', '.join(outcome.failed)}")
    return {"latched": outcome.state.latched, "cancelled": len(outcome.cancelled)}


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    body = Command.model_validate({"body": event}).body
    logger.info("kill switch", extra={"action": body.action, "by": body.by})
    return run(body)
