"""Trading: the order-placement and reconciliation state machines from ``statemachines/*.asl.json``.

Substitutions are resolved by name from one catalogue, so the ASL authors and this stack share a
small vocabulary (documented in docs/deploy.md):

* ``${<Pascal>FunctionArn}``: the function ``functions/<snake>``: a topology function, else a task
  function created here (zip, config's task defaults) when its directory exists;
* ``${EventBusName}``, ``${EventBusArn}``, ``${AlertsTopicArn}``, ``${IdempotencyTableName}``;
* ``${<Pascal>StateMachineArn}``: another state machine of this environment (by its fixed name);
* any other name: its value for this environment in ``statemachines/substitutions.json`` (by path).

A placeholder outside that vocabulary is left unsubstituted and the ASL construct fails synth.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from aws_cdk import Annotations, ArnFormat, CfnWaitConditionHandle, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from infra import packaging
from infra.config_model import EnvConfig
from infra.constructs.function import DeskFunction, FunctionEnvironment, FunctionSpec, removal, retention
from infra.constructs.state_machine import AslStateMachine, placeholders
from infra.stacks.data import DB_USER, DataStack
from infra.stacks.pipeline import PipelineStack, pascal

FUNCTION_ARN = re.compile(r"^([A-Za-z0-9]+)FunctionArn$")
STATE_MACHINE_ARN = re.compile(r"^([A-Za-z0-9]+)StateMachineArn$")


def snake(pascal_name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", pascal_name).lower()


class TradingStack(Stack):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: EnvConfig,
        topology: dict[str, Any],
        data: DataStack,
        pipeline: PipelineStack,
        functions_env: FunctionEnvironment,
        asl_fallback_dir: Path | None = None,
        **kwargs: object,
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)  # type: ignore[arg-type]
        self.config, self.topology, self.data, self.pipeline = config, topology, data, pipeline
        self.functions_env = functions_env
        self.asl_fallback_dir = asl_fallback_dir
        self.task_functions: dict[str, DeskFunction] = {}
        self.state_machines: dict[str, sfn.StateMachine] = {}
        for name, spec in topology["state_machines"].items():
            self._build_state_machine(name, spec)
        if not self.state_machines and not self.task_functions:
            # CloudFormation rejects a stack without resources; keep the stack (and its exports) deployable.
            CfnWaitConditionHandle(self, "Empty")

    def state_machine_name(self, name: str) -> str:
        return f"{self.config.prefix}-{name}"

    def _definition(self, name: str, relative: str) -> Path | None:
        path = packaging.REPO / relative
        if path.exists():
            return path
        if self.asl_fallback_dir is not None and (self.asl_fallback_dir / path.name).exists():
            Annotations.of(self).add_warning_v2(
                "desk:asl-fallback", f"{relative} missing: using {self.asl_fallback_dir / path.name} (tests only)"
            )
            return self.asl_fallback_dir / path.name
        Annotations.of(self).add_warning_v2(
            "desk:asl-missing", f"state machine {name!r} skipped: {relative} does not exist yet"
        )
        return None

    def _function(self, pascal_name: str) -> lambda_.IFunction | None:
        name = snake(pascal_name)
        if name in self.pipeline.functions:
            return self.pipeline.functions[name].function
        if name in self.task_functions:
            return self.task_functions[name].function
        if not (packaging.REPO / "functions" / name / "handler.py").exists():
            return None
        defaults = self.config.task_functions
        fn = DeskFunction(
            self,
            pascal(name),
            spec=FunctionSpec(
                name=name, timeout=defaults.timeout, memory=defaults.memory, package=packaging.package_of(name)
            ),
            env=self.functions_env,
        )
        self.pipeline.bus.grant_put_events_to(fn.role)
        self.data.idempotency.grant_read_write_data(fn.role)
        self.data.proxy.grant_connect(fn.role, DB_USER)
        for secret in self.data.venue_secrets.values():  # order tasks and reconciliation call venues
            secret.grant_read(fn.role)
        self.task_functions[name] = fn
        return fn.function

    def _values_file(self, definition: Path) -> dict[str, str]:
        """Non-ARN values for this definition and environment from ``statemachines/substitutions*.json``.

        Read by path; every ``substitutions*.json`` is merged (sorted), so a per-machine file works too.
        """
        machine = definition.name.removesuffix(".asl.json")
        values: dict[str, str] = {}
        for path in sorted((packaging.REPO / "statemachines").glob("substitutions*.json")):
            per_machine = json.loads(path.read_text()).get(machine, {})
            values.update({k: str(v) for k, v in per_machine.get(self.config.environment, {}).items()})
        return values

    def _catalogue(self, wanted: set[str], definition: Path) -> tuple[dict[str, str], dict[str, lambda_.IFunction]]:
        values: dict[str, str] = {
            **self._values_file(definition),
            "EventBusName": self.pipeline.bus.event_bus_name,
            "EventBusArn": self.pipeline.bus.event_bus_arn,
            "AlertsTopicArn": self.pipeline.alerts_topic_arn(),
            "IdempotencyTableName": self.data.idempotency.table_name,
        }
        substitutions: dict[str, str] = {}
        functions: dict[str, lambda_.IFunction] = {}
        for placeholder in sorted(wanted):
            if placeholder in values:
                substitutions[placeholder] = values[placeholder]
            elif m := FUNCTION_ARN.match(placeholder):
                fn = self._function(m.group(1))
                if fn is not None:
                    functions[placeholder] = fn
            elif m := STATE_MACHINE_ARN.match(placeholder):
                other = snake(m.group(1)).replace("_", "-")
                if other in self.topology["state_machines"]:
                    substitutions[placeholder] = self._state_machine_arn(other)
        return substitutions, functions

    def _state_machine_arn(self, name: str) -> str:
        return self.format_arn(
            service="states",
            resource="stateMachine",
            resource_name=self.state_machine_name(name),
            arn_format=ArnFormat.COLON_RESOURCE_NAME,
        )

    def _build_state_machine(self, name: str, spec: dict[str, str]) -> None:
        path = self._definition(name, spec["definition"])
        if path is None:
            return
        substitutions, functions = self._catalogue(placeholders(path.read_text()), path)
        machine = AslStateMachine(
            self,
            pascal(name),
            definition_file=path,
            state_machine_name=self.state_machine_name(name),
            substitutions=substitutions,
            functions=functions,
            state_machine_type=sfn.StateMachineType[spec["type"]],
            log_retention=retention(self.config.log_retention_days),
            removal_policy=removal(self.config),
        )
        sm = machine.state_machine
        if "EventBusName" in substitutions or "EventBusArn" in substitutions:
            self.pipeline.bus.grant_put_events_to(sm)
        if "AlertsTopicArn" in substitutions:
            sm.add_to_role_policy(
                iam.PolicyStatement(actions=["sns:Publish"], resources=[self.pipeline.alerts_topic_arn()])
            )
        others = [v for k, v in substitutions.items() if STATE_MACHINE_ARN.match(k)]
        if others:
            sm.add_to_role_policy(iam.PolicyStatement(actions=["states:StartExecution"], resources=others))
        self.state_machines[name] = sm
