"""The desk's resource manifest (``topology.json`` at the repository root), parsed and validated.

One declaration of the functions, queues, rules, schedules, tables, topics, secrets and state
machines. The CDK app reads the same file by path; the local cloud builds moto resources from it,
so local and deployed runs cannot drift apart. Cross-references (a rule's queue, a queue's
consumer, a schedule's function) are checked when the file is loaded.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, PositiveInt, model_validator

MANIFEST = Path(__file__).resolve().parents[3] / "topology.json"


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class FunctionSpec(_Model):
    path: str
    timeout: PositiveInt = Field(le=900)
    memory: PositiveInt = Field(ge=128, le=10240)
    package: Literal["zip", "image"]

    @property
    def module(self) -> str:
        """Dotted module of the handler, e.g. ``functions.regime.handler``."""
        return self.path.replace("/", ".") + ".handler"


class QueueSpec(_Model):
    consumer: str
    batch_size: PositiveInt = Field(le=10000)
    max_concurrency: int = Field(ge=2, le=1000)  # Lambda's SQS maximum concurrency starts at 2


class RuleSpec(_Model):
    detail_types: tuple[str, ...] = Field(min_length=1)
    queue: str


class ScheduleSpec(_Model):
    expression: str = Field(pattern=r"^(rate|cron)\(.+\)$")
    function: str


class TableSpec(_Model):
    partition_key: str
    ttl_attribute: str | None = None


class StateMachineSpec(_Model):
    definition: str
    type: Literal["STANDARD", "EXPRESS"]


class Defaults(_Model):
    max_receive_count: PositiveInt
    visibility_timeout_factor: PositiveInt
    idempotency_ttl_seconds: PositiveInt


class Topology(_Model):
    """The validated manifest. Queue names, rule names and so on are logical (no environment prefix)."""

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)

    comment: str = Field(default="", alias="$comment")
    bus: str
    functions: dict[str, FunctionSpec]
    queues: dict[str, QueueSpec]
    rules: dict[str, RuleSpec]
    schedules: dict[str, ScheduleSpec]
    tables: dict[str, TableSpec]
    topics: dict[str, dict[str, str]]
    secrets: dict[str, dict[str, str]]
    state_machines: dict[str, StateMachineSpec]
    defaults: Defaults

    @model_validator(mode="after")
    def _references_resolve(self) -> Topology:
        problems = [
            f"queue {q!r} names unknown consumer {s.consumer!r}"
            for q, s in self.queues.items()
            if s.consumer not in self.functions
        ]
        problems += [
            f"rule {r!r} targets unknown queue {s.queue!r}" for r, s in self.rules.items() if s.queue not in self.queues
        ]
        problems += [
            f"schedule {n!r} targets unknown function {s.function!r}"
            for n, s in self.schedules.items()
            if s.function not in self.functions
        ]
        if problems:
            raise ValueError("topology.json: " + "; ".join(problems))
        return self

    def visibility_timeout(self, queue: str) -> int:
        """A queue's visibility timeout: the factor (6, AWS's guidance) x its consumer's timeout."""
        return self.defaults.visibility_timeout_factor * self.functions[self.queues[queue].consumer].timeout

    def dlq_name(self, queue: str) -> str:
        return f"{queue}-dlq"

    def queues_for(self, detail_type: str) -> list[str]:
        """The queues an event of ``detail_type`` is routed to by the bus rules."""
        return sorted({s.queue for s in self.rules.values() if detail_type in s.detail_types})


def load(path: Path = MANIFEST) -> Topology:
    return Topology.model_validate(json.loads(path.read_text()))


@cache
def topology() -> Topology:
    """The repository's manifest, parsed once per process."""
    return load()
