"""order-tasks: every Task state of ``statemachines/order_placement.asl.json``, dispatched on ``task``.

The input is ``{"task": "validate" | "plan" | "place" | "poll" | "cancel" | "finish" | "abort", ...}``.
Errors propagate with their class names (``RateLimited``, ``AmbiguousOrderState``, ``PreTradeRejected``,
``OrderHardStop``...): Step Functions matches ``Retry`` and ``Catch`` on them, so nothing is caught here.
"""

from __future__ import annotations

from functools import cache
from typing import Annotated, Any, Literal

from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BaseModel, ConfigDict, Field

from desk import wiring
from desk.domain.controls_config import GateConfig
from desk.observability import logger, metrics, tracer
from desk.schemas.trading import ExecutionPlan
from desk.settings import get_settings
from desk.usecases import orders
from desk.usecases.strategies import STRATEGIES


class _Task(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Validate(_Task):
    task: Literal["validate"]
    plan: ExecutionPlan


class Plan(_Task):
    task: Literal["plan"]
    plan_id: str
    config: dict[str, Any]


class Place(_Task):
    task: Literal["place"]
    plan_id: str
    slice_no: int
    wait_max_seconds: int = 0


class Poll(_Task):
    task: Literal["poll"]
    plan_id: str
    slice_no: int
    polls: int
    max_polls: int
    deadline: str


class Cancel(_Task):
    task: Literal["cancel"]
    plan_id: str
    slice_no: int
    polls: int = 0


class Finish(_Task):
    task: Literal["finish"]
    plan_id: str


class Abort(_Task):
    task: Literal["abort"]
    plan_id: str
    error: dict[str, Any] = Field(default_factory=dict)


class TaskInput(BaseModel):
    body: Annotated[Validate | Plan | Place | Poll | Cancel | Finish | Abort, Field(discriminator="task")]


@cache
def gate_config() -> GateConfig:
    """The symbols of the strategy book (the same default as the API's pre-trade check)."""
    return GateConfig(allowed_symbols=frozenset(s for spec in STRATEGIES for s in spec.symbols))


@cache
def kill_switch_mirror() -> Any:
    from desk.cache.client import get_client
    from desk.cache.kill_switch import RedisKillSwitch

    return RedisKillSwitch(get_client(get_settings().redis_url))


def ports() -> orders.OrderPorts:
    return orders.OrderPorts(
        store=wiring.store(),
        venue=wiring.venue,
        quotes=wiring.quote_cache(),
        bus=wiring.event_bus(),
        clock=wiring.clock(),
        alerts=wiring.alerts(),
        gate=gate_config(),
        kill_switch=kill_switch_mirror(),
    )


def run(body: Validate | Plan | Place | Poll | Cancel | Finish | Abort) -> dict[str, Any]:
    p = ports()
    match body:
        case Validate():
            return orders.validate(body.plan, p)
        case Plan():
            return orders.plan_slices(body.plan_id, body.config, p)
        case Place():
            return orders.place(body.plan_id, body.slice_no, body.wait_max_seconds, p)
        case Poll():
            return orders.poll(body.plan_id, body.slice_no, body.polls, body.max_polls, body.deadline, p)
        case Cancel():
            return orders.cancel(body.plan_id, body.slice_no, body.polls, p)
        case Finish():
            return orders.finish(body.plan_id, p)
        case Abort():
            return orders.abort(body.plan_id, body.error, p)


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    body = TaskInput.model_validate({"body": event}).body
    logger.append_keys(task=body.task, plan_id=getattr(body, "plan_id", None) or event.get("plan", {}).get("plan_id"))
    return run(body)
