"""Synthesised apps shared by the infra tests: each environment is synthesised once per process.

Synth is heavy (~7 s, ~550 MB): the tests share :func:`synth` (cached) instead of each building
its own app. Bundling is skipped (``aws:cdk:bundling-stacks: []``): the templates are what is
tested; asset contents are exercised by ``make size-check``. Missing ASL files and the missing
streamer Dockerfile are replaced by the small fixtures under ``tests/infra/fixtures``.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

os.environ.setdefault("JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION", "1")

FIXTURES = Path(__file__).resolve().parent / "fixtures"
ENVIRONMENTS = ("dev", "staging", "prod")


@dataclass(frozen=True)
class Synthesised:
    environment: str
    templates: dict[str, dict[str, Any]]  # stack key ("network", ...) -> CloudFormation template
    nag_errors: list[str]  # unacknowledged cdk-nag errors, "rule | construct path"
    nag_acknowledged: int
    outdir: Path


def synth(environment: str) -> Synthesised:
    """The environment's synthesised app; a failure is cached too, so it costs one synth, not one per test."""
    result = _synth(environment)
    if isinstance(result, BaseException):
        raise result
    return result


@cache
def _synth(environment: str) -> Synthesised | BaseException:
    try:
        return _build(environment)
    except Exception as exc:  # re-raised by synth() for every test that asks
        return exc


def _build(environment: str) -> Synthesised:
    from aws_cdk import App
    from cdk_nag import AwsSolutionsChecks

    from infra.cdk_app import BUNDLING_STACKS, build_app

    outdir = Path(tempfile.mkdtemp(prefix=f"cdk-{environment}-"))
    app = App(outdir=str(outdir), context={BUNDLING_STACKS: []})
    desk = build_app(
        environment,
        app=app,
        nag=False,  # run below on the tree, so a failure lists findings instead of stopping synth
        asl_fallback_dir=FIXTURES / "asl",
        streamer_dockerfile=FIXTURES / "streamer" / "Dockerfile",
    )
    assembly = app.synth()
    templates = {key: assembly.get_stack_by_name(stack.stack_name).template for key, stack in desk.stacks.items()}
    report = AwsSolutionsChecks().validate_scope(app)
    errors = [
        f"{v.rule_name} | {r.construct_path or r.resource_logical_id}"
        for v in report.violations
        if str(getattr(v, "severity", "error")).lower() == "error"
        for r in v.violating_resources
    ]
    acknowledged = json.dumps(report.metadata or {}).count("ack")
    return Synthesised(environment, templates, errors, acknowledged, outdir)


def resources(template: dict[str, Any], type_name: str) -> dict[str, dict[str, Any]]:
    return {k: v for k, v in template.get("Resources", {}).items() if v["Type"] == type_name}


def all_resources(s: Synthesised, type_name: str) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for key, template in s.templates.items():
        out.update({f"{key}/{k}": v for k, v in resources(template, type_name).items()})
    return out
