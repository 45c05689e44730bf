"""A Step Functions state machine from a ``statemachines/*.asl.json`` file.

The ASL stays a reviewable file that moto executes locally; here it is loaded with
``DefinitionBody.from_file`` and ``definition_substitutions``. Synth fails when the file's
``${placeholders}`` and the substitutions differ in either direction: a placeholder left
unsubstituted would deploy a broken definition, a substitution with no placeholder is a typo.
Functions are passed separately (placeholder -> function) so invoke is granted on each of them.
Logging (ALL, with execution data) and X-Ray tracing are always on.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path

from aws_cdk import Acknowledgment, RemovalPolicy, Validations
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

PLACEHOLDER = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


class PlaceholderMismatch(ValueError):
    """The ASL's placeholders and the substitutions differ; the message names both sides."""


def placeholders(definition: str) -> set[str]:
    """The ``${Name}`` placeholders of an ASL document's text."""
    return set(PLACEHOLDER.findall(definition))


def check_substitutions(path: Path, names: set[str], provided: set[str]) -> None:
    missing, unused = sorted(names - provided), sorted(provided - names)
    if missing or unused:
        parts = []
        if missing:
            parts.append(f"placeholders without a substitution: {', '.join('${' + m + '}' for m in missing)}")
        if unused:
            parts.append(f"substitutions with no placeholder in the file: {', '.join(unused)}")
        raise PlaceholderMismatch(f"{path}: " + "; ".join(parts))


class AslStateMachine(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        definition_file: Path,
        state_machine_name: str,
        substitutions: Mapping[str, str] | None = None,
        functions: Mapping[str, lambda_.IFunction] | None = None,
        state_machine_type: sfn.StateMachineType = sfn.StateMachineType.STANDARD,
        log_retention: logs.RetentionDays = logs.RetentionDays.ONE_MONTH,
        removal_policy: RemovalPolicy = RemovalPolicy.DESTROY,
    ) -> None:
        super().__init__(scope, construct_id)
        self.definition_file = definition_file
        substitutions = dict(substitutions or {})
        functions = dict(functions or {})
        clash = sorted(set(substitutions) & set(functions))
        if clash:
            raise PlaceholderMismatch(f"{definition_file}: {clash} given both as a substitution and as a function")
        self.placeholders = placeholders(definition_file.read_text())
        check_substitutions(definition_file, self.placeholders, set(substitutions) | set(functions))
        self.log_group = logs.LogGroup(
            self,
            "Logs",
            log_group_name=f"/aws/vendedlogs/states/{state_machine_name}",
            retention=log_retention,
            removal_policy=removal_policy,
        )
        self.state_machine = sfn.StateMachine(
            self,
            "StateMachine",
            state_machine_name=state_machine_name,
            state_machine_type=state_machine_type,
            definition_body=sfn.DefinitionBody.from_file(str(definition_file)),
            definition_substitutions={**substitutions, **{k: fn.function_arn for k, fn in functions.items()}},
            logs=sfn.LogOptions(destination=self.log_group, level=sfn.LogLevel.ALL, include_execution_data=True),
            tracing_enabled=True,
        )
        if functions:
            # The ASL invokes the unqualified ARNs: grant exactly those (grant_invoke would add "<arn>:*").
            self.state_machine.add_to_role_policy(
                iam.PolicyStatement(
                    actions=["lambda:InvokeFunction"],
                    resources=sorted({fn.function_arn for fn in functions.values()}),
                )
            )
        Validations.of(self.state_machine.role).acknowledge(
            Acknowledgment(
                id="AwsSolutions-IAM5[Resource::*]",
                reason="X-Ray segments and CloudWatch Logs delivery (vended logs) accept no resource scoping",
            )
        )
