"""Pipeline: the bus, rules -> SQS (each with a DLQ), schedules, and every topology function with its source.

Everything here is built from ``topology.json``: a queue's visibility timeout is the factor x its
consumer's timeout, ``maxReceiveCount`` comes from the environment's config (else the topology
default), consumers report partial batch failures and run at the queue's maximum concurrency.
"""

from __future__ import annotations

from typing import Any

from aws_cdk import ArnFormat, Duration, Stack
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda_event_sources as sources
from aws_cdk import aws_scheduler as scheduler
from aws_cdk import aws_scheduler_targets as scheduler_targets
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from infra.config_model import EnvConfig
from infra.constructs.function import (
    DeskFunction,
    FunctionEnvironment,
    FunctionSpec,
    acknowledge,
    acknowledge_invoke_any_version,
)
from infra.stacks.data import DB_USER, DataStack

VENUE_FUNCTIONS = {"ingest_worker"}  # functions that call venues: they read the venue secrets


def pascal(name: str) -> str:
    return "".join(part.capitalize() for part in name.replace("-", "_").replace("/", "_").split("_"))


class PipelineStack(Stack):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: EnvConfig,
        topology: dict[str, Any],
        data: DataStack,
        functions_env: FunctionEnvironment,
        **kwargs: object,
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)  # type: ignore[arg-type]
        self.config, self.topology, self.data, self.functions_env = config, topology, data, functions_env
        self.bus = events.EventBus(self, "Bus", event_bus_name=f"{config.prefix}-{topology['bus']}")
        self.queues: dict[str, sqs.Queue] = {}
        self.dlqs: dict[str, sqs.Queue] = {}
        self._build_queues()
        self.functions: dict[str, DeskFunction] = {}
        self._build_functions()
        self._build_rules()
        self._build_schedules()

    def max_receive_count(self) -> int:
        return self.config.max_receive_count or int(self.topology["defaults"]["max_receive_count"])

    def visibility_timeout(self, queue: str) -> int:
        consumer = self.topology["queues"][queue]["consumer"]
        factor = int(self.topology["defaults"]["visibility_timeout_factor"])
        return factor * int(self.topology["functions"][consumer]["timeout"])

    def _build_queues(self) -> None:
        for name in self.topology["queues"]:
            dlq = sqs.Queue(
                self,
                f"{pascal(name)}Dlq",
                queue_name=f"{self.config.prefix}-{name}-dlq",
                encryption=sqs.QueueEncryption.SQS_MANAGED,
                enforce_ssl=True,
                retention_period=Duration.days(14),
            )
            acknowledge(dlq, rule="AwsSolutions-SQS3", reason="this queue is itself a dead-letter queue")
            self.dlqs[name] = dlq
            self.queues[name] = sqs.Queue(
                self,
                f"{pascal(name)}Queue",
                queue_name=f"{self.config.prefix}-{name}",
                encryption=sqs.QueueEncryption.SQS_MANAGED,
                enforce_ssl=True,
                visibility_timeout=Duration.seconds(self.visibility_timeout(name)),
                retention_period=Duration.days(4),
                dead_letter_queue=sqs.DeadLetterQueue(queue=dlq, max_receive_count=self.max_receive_count()),
            )

    def _build_functions(self) -> None:
        consumers = {spec["consumer"]: q for q, spec in self.topology["queues"].items()}
        for name, spec in self.topology["functions"].items():
            fn = DeskFunction(
                self,
                pascal(name),
                spec=FunctionSpec(name=name, timeout=spec["timeout"], memory=spec["memory"], package=spec["package"]),
                env=self.functions_env,
            )
            self._grant_common(fn)
            if name in consumers:
                queue = consumers[name]
                qspec = self.topology["queues"][queue]
                fn.function.add_event_source(
                    sources.SqsEventSource(
                        self.queues[queue],
                        batch_size=qspec["batch_size"],
                        max_concurrency=qspec["max_concurrency"],
                        report_batch_item_failures=True,
                    )
                )
            if name in VENUE_FUNCTIONS:
                for secret in self.data.venue_secrets.values():
                    secret.grant_read(fn.role)
            self.functions[name] = fn
        planner = self.functions.get("ingest_planner")
        if planner is not None and "ingest-jobs" in self.queues:
            self.queues["ingest-jobs"].grant_send_messages(planner.role)
        optimiser = self.functions.get("cost_optimiser")
        if optimiser is not None:
            optimiser.role.add_to_policy(
                iam.PolicyStatement(actions=["states:StartExecution"], resources=[self.order_state_machine_arn()])
            )

    def _grant_common(self, fn: DeskFunction) -> None:
        """What every desk function does: publish events, idempotency records, Postgres via the proxy, alerts."""
        self.bus.grant_put_events_to(fn.role)
        self.data.idempotency.grant_read_write_data(fn.role)
        self.data.proxy.grant_connect(fn.role, DB_USER)
        fn.role.add_to_policy(iam.PolicyStatement(actions=["sns:Publish"], resources=[self.alerts_topic_arn()]))

    def order_state_machine_arn(self) -> str:
        # Built from the fixed name so the pipeline needs no reference to the trading stack (no cycle).
        return self.format_arn(
            service="states",
            resource="stateMachine",
            resource_name=f"{self.config.prefix}-order-placement",
            arn_format=ArnFormat.COLON_RESOURCE_NAME,
        )

    def alerts_topic_arn(self) -> str:
        return self.format_arn(
            service="sns", resource=f"{self.config.prefix}-alerts", arn_format=ArnFormat.NO_RESOURCE_NAME
        )

    def _build_rules(self) -> None:
        for name, spec in self.topology["rules"].items():
            rule = events.Rule(
                self,
                f"{pascal(name)}Rule",
                event_bus=self.bus,
                rule_name=f"{self.config.prefix}-{name}",
                event_pattern=events.EventPattern(detail_type=list(spec["detail_types"])),
            )
            rule.add_target(targets.SqsQueue(self.queues[spec["queue"]]))

    def _build_schedules(self) -> None:
        group = scheduler.ScheduleGroup(self, "Schedules", schedule_group_name=f"{self.config.prefix}-schedules")
        for name, spec in self.topology["schedules"].items():
            scheduler.Schedule(
                self,
                f"{pascal(name)}Schedule",
                schedule_name=f"{self.config.prefix}-{name}",
                schedule_group=group,
                schedule=scheduler.ScheduleExpression.expression(spec["expression"]),
                target=scheduler_targets.LambdaInvoke(
                    self.functions[spec["function"]].function,
                    retry_attempts=2,
                    max_event_age=Duration.minutes(5),
                ),
                description=f"topology schedule {name!r}",
            )
            acknowledge_invoke_any_version(self, self.functions[spec["function"]].function, f"schedule {name}")
