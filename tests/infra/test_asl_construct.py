"""The ASL construct: placeholders and substitutions must match exactly, or synth fails."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

os.environ.setdefault("JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION", "1")

from infra.constructs.state_machine import PlaceholderMismatch, check_substitutions, placeholders

ASL = {
    "StartAt": "Place",
    "States": {
        "Place": {
            "Type": "Task",
            "Resource": "arn:aws:states:::lambda:invoke",
            "Parameters": {"FunctionName": "${PlaceFunctionArn}", "Payload.$": "States.Format('{}', $.id)"},
            "Next": "Wait",
        },
        "Wait": {"Type": "Wait", "SecondsPath": "$.wait", "Next": "Done", "Comment": "${PollIntervalSeconds}"},
        "Done": {"Type": "Succeed"},
    },
}


@pytest.fixture
def asl(tmp_path: Path) -> Path:
    path = tmp_path / "small.asl.json"
    path.write_text(json.dumps(ASL))
    return path


def test_placeholders_are_found_and_intrinsics_ignored(asl: Path) -> None:
    assert placeholders(asl.read_text()) == {"PlaceFunctionArn", "PollIntervalSeconds"}


def test_missing_and_unused_substitutions_are_both_named(asl: Path) -> None:
    names = placeholders(asl.read_text())
    with pytest.raises(PlaceholderMismatch) as err:
        check_substitutions(asl, names, {"PlaceFunctionArn", "PollIntervalSecs"})
    assert "${PollIntervalSeconds}" in str(err.value)
    assert "PollIntervalSecs" in str(err.value)
    check_substitutions(asl, names, {"PlaceFunctionArn", "PollIntervalSeconds"})  # exact: no error


def test_construct_fails_synth_on_mismatch_and_grants_invoke_when_exact(asl: Path) -> None:
    from aws_cdk import App, Stack
    from aws_cdk import aws_lambda as lambda_
    from aws_cdk.assertions import Match, Template

    from infra.constructs.state_machine import AslStateMachine

    stack = Stack(App(), "Asl")
    fn = lambda_.Function(
        stack, "Fn", runtime=lambda_.Runtime.PYTHON_3_12, handler="index.handler", code=lambda_.Code.from_inline("x")
    )
    # Given a substitution missing, When the construct is built, Then it fails with the placeholder's name
    with pytest.raises(PlaceholderMismatch, match=r"\$\{PollIntervalSeconds\}"):
        AslStateMachine(stack, "Bad", definition_file=asl, state_machine_name="bad", functions={"PlaceFunctionArn": fn})
    # Given an extra substitution, Then it fails too
    with pytest.raises(PlaceholderMismatch, match="Typo"):
        AslStateMachine(
            stack,
            "Extra",
            definition_file=asl,
            state_machine_name="extra",
            functions={"PlaceFunctionArn": fn},
            substitutions={"PollIntervalSeconds": "5", "Typo": "1"},
        )
    # Given the exact set, Then the machine is built with logging, tracing and invoke on the function
    AslStateMachine(
        stack,
        "Good",
        definition_file=asl,
        state_machine_name="good",
        functions={"PlaceFunctionArn": fn},
        substitutions={"PollIntervalSeconds": "5"},
    )
    template = Template.from_stack(stack)
    template.has_resource_properties(
        "AWS::StepFunctions::StateMachine",
        {
            "StateMachineName": "good",
            "TracingConfiguration": {"Enabled": True},
            "LoggingConfiguration": Match.object_like({"Level": "ALL"}),
            "DefinitionSubstitutions": Match.object_like({"PollIntervalSeconds": "5"}),
        },
    )
    template.has_resource_properties(
        "AWS::IAM::Policy",
        {
            "PolicyDocument": Match.object_like(
                {"Statement": Match.array_with([Match.object_like({"Action": "lambda:InvokeFunction"})])}
            )
        },
    )
