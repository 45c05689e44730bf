"""cdk-nag (AwsSolutions) leaves no unacknowledged error; cfn-lint finds no error in any template."""

from __future__ import annotations

import json

import pytest
from cfnlint.api import ManualArgs, lint

from infra.config_model import CONFIG_DIR
from tests.infra import ENVIRONMENTS, synth


@pytest.mark.parametrize("environment", ENVIRONMENTS)
def test_cdk_nag_has_no_unacknowledged_errors(environment: str) -> None:
    assert synth(environment).nag_errors == []


@pytest.mark.parametrize("environment", ENVIRONMENTS)
def test_cfn_lint_finds_no_errors(environment: str) -> None:
    s = synth(environment)
    region = json.loads((CONFIG_DIR / f"{environment}.json").read_text())["region"]
    problems = []
    for key, template in s.templates.items():
        for match in lint(json.dumps(template), config=ManualArgs(regions=[region])):
            if match.rule.id.startswith("E"):
                problems.append(f"{key}: {match.rule.id} {match.message} ({'/'.join(map(str, match.path))})")
    assert problems == []


def test_every_acknowledgement_carries_a_reason() -> None:
    from aws_cdk import App

    from infra.constructs.function import acknowledge

    with pytest.raises(ValueError, match="needs its reason"):
        acknowledge(App(), rule="AwsSolutions-IAM5", reason="  ")
