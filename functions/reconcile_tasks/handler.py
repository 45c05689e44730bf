"""reconcile_tasks: the steps of the reconciliation state machine, and the schedule that starts it.

* ``{"task": "snapshot" | "diff" | "repair" | "record" | "record_failure", ...}``: one Task state of
  ``statemachines/reconciliation.asl.json`` (README_reconciliation.md). Exceptions propagate: the ASL's
  Retry/Catch match them by class name.
* An EventBridge ``Scheduled Event``: one execution per reconciled venue, named
  ``recon-<venue>-<yyyymmddHHMM>``, so a redelivered or repeated firing in the same minute starts nothing.
"""

from __future__ import annotations

from datetime import datetime
from functools import cache
from typing import Annotated, Any, Literal

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter
from pydantic_settings import BaseSettings, SettingsConfigDict

from desk import wiring
from desk.aws.executions import start_execution
from desk.observability import logger, metrics, tracer
from desk.settings import get_settings
from desk.usecases.reconciliation import Diff, RunConfig, RunState, Snapshot, diff, record, record_failure, repair
from desk.usecases.reconciliation import take_snapshot as snapshot
from desk.usecases.universe import parse_universe


class ReconcileSettings(BaseSettings):
    """Read once; ``DESK_RECONCILIATION_*`` until ``desk.settings.Settings`` carries these fields."""

    model_config = SettingsConfigDict(env_prefix="DESK_", extra="ignore", frozen=True)

    reconciliation_state_machine_arn: str = ""
    reconciliation_venues: str = ""  # comma-separated; empty: every venue of the universe


@cache
def reconcile_settings() -> ReconcileSettings:
    return ReconcileSettings()


class _Step(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    venue: str
    run_id: str
    config: RunConfig


class SnapshotTask(_Step):
    task: Literal["snapshot"]


class DiffTask(_Step):
    task: Literal["diff"]
    snapshot: Snapshot


class RepairTask(_Step):
    task: Literal["repair"]
    diff: Diff


class RecordTask(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    task: Literal["record", "record_failure"]
    run: RunState


class ScheduledEvent(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore", populate_by_name=True)
    detail_type: Literal["Scheduled Event"] = Field(alias="detail-type")
    time: datetime


Task = TypeAdapter(Annotated[SnapshotTask | DiffTask | RepairTask | RecordTask, Field(discriminator="task")])


def _universe_symbols(venue: str) -> list[str]:
    universe = parse_universe(get_settings().universe)
    return list(dict.fromkeys(s.symbol for s in universe.series() if s.venue == venue))


def _venues() -> list[str]:
    configured = [v.strip() for v in reconcile_settings().reconciliation_venues.split(",") if v.strip()]
    return configured or list(dict.fromkeys(s.venue for s in parse_universe(get_settings().universe).series()))


def start_scheduled(event: ScheduledEvent) -> dict[str, Any]:
    arn = reconcile_settings().reconciliation_state_machine_arn
    if not arn:
        raise ValueError("DESK_RECONCILIATION_STATE_MACHINE_ARN is not set")
    minute = event.time.strftime("%Y%m%d%H%M")
    venues = _venues()
    metrics.add_metric(name="ReconciliationsStarted", unit=MetricUnit.Count, value=len(venues))
    started = {
        venue: start_execution(
            arn, f"recon-{venue}-{minute}", {"venue": venue, "trigger": "schedule", "scheduled_at": event.time}
        )
        for venue in venues
    }
    return {"executions": started}


def run_task(event: dict[str, Any]) -> dict[str, Any]:
    request = Task.validate_python(event)
    metrics.add_metric(name="ReconciliationSteps", unit=MetricUnit.Count, value=1)
    if isinstance(request, SnapshotTask):
        symbols = _universe_symbols(request.venue)
        taken = snapshot(
            request.venue,
            request.config,
            venue=wiring.venue(request.venue),
            store=wiring.store(),
            clock=wiring.clock(),
            symbols=symbols,
        )
        return taken.model_dump(mode="json")
    if isinstance(request, DiffTask):
        return diff(request.snapshot, request.config).model_dump(mode="json")
    if isinstance(request, RepairTask):
        ports = {"venue": wiring.venue(request.venue), "store": wiring.store(), "clock": wiring.clock()}
        return repair(request.venue, request.diff, **ports).model_dump(mode="json")
    ports = {"store": wiring.store(), "clock": wiring.clock(), "alerts": wiring.alerts()}
    outcome = (record if request.task == "record" else record_failure)(request.run, **ports)
    metrics.add_metric(name="ReconciliationDrift", unit=MetricUnit.Count, value=outcome.drift_count)
    metrics.add_metric(name="ReconciliationFailed", unit=MetricUnit.Count, value=int(outcome.status == "failed"))
    return outcome.model_dump(mode="json")


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    if event.get("detail-type") == "Scheduled Event":
        return start_scheduled(ScheduledEvent.model_validate(event))
    logger.append_keys(task=event.get("task"), venue=event.get("venue"), run_id=event.get("run_id"))
    return run_task(event)
