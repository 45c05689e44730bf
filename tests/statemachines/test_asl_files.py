"""The ASL files, structurally: placeholders all substituted, error names real, retries shaped as required.

moto 5.2 facts the ASL is held to (measured): Wait states really sleep, so every duration comes from a
substitution; a Choice on an array index path (``$.a[0].b``) silently takes the Default branch; JSONata
definitions fail. So: no index paths in Choice rules, JSONPath only.
"""

from __future__ import annotations

import inspect
import json
import re
from collections.abc import Iterator
from typing import Any

from desk.domain import controls_config
from desk.domain import errors as domain_errors
from desk.usecases import orders
from desk.venues import errors as venue_errors
from tests.statemachines.conftest import ASL, SUBSTITUTIONS, local_substitutions

PLACEHOLDER = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
ARN_PLACEHOLDER = re.compile(r"^[A-Za-z0-9]+(FunctionArn|StateMachineArn|TopicArn|BusArn)$")
LAMBDA_SERVICE_ERRORS = {
    "Lambda.ServiceException",
    "Lambda.AWSLambdaException",
    "Lambda.SdkClientException",
    "Lambda.TooManyRequestsException",
}
# Names a Fail state gives the execution (not raised by Python, so not in the hierarchy).
FAIL_NAMES = {"OrderPlacementFailed", "OrderAbortFailed"}


def python_error_names() -> set[str]:
    names = set()
    for module in (domain_errors, venue_errors, controls_config, orders):
        names |= {n for n, c in inspect.getmembers(module, inspect.isclass) if issubclass(c, Exception)}
    return names


def states(definition: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    for name, state in definition["States"].items():
        yield name, state
        for nested in ("ItemProcessor", "Iterator"):
            if nested in state:
                yield from states(state[nested])
        for branch in state.get("Branches", []):
            yield from states(branch)


def load() -> dict[str, Any]:
    text = ASL.read_text()
    definition: dict[str, Any] = json.loads(text)
    return definition


def test_the_file_is_json_and_every_placeholder_has_a_substitution() -> None:
    # Given the ASL text and the shared substitutions file
    text = ASL.read_text()
    names = set(PLACEHOLDER.findall(text))
    # Then every non-ARN placeholder has a value in every environment, and no value is unused
    environments = json.loads(SUBSTITUTIONS.read_text())["order_placement"]
    assert set(environments) == {"local", "dev", "staging", "prod"}
    timing = {n for n in names if not ARN_PLACEHOLDER.match(n)}
    for values in environments.values():
        assert set(values) == timing
        assert all(v.isdigit() for v in values.values())
    # And with the ARNs substituted nothing is left and the document still parses
    resolved = text
    for key, value in (
        local_substitutions() | {n: "arn:aws:lambda:us-east-1:1:function:x" for n in names - timing}
    ).items():
        resolved = resolved.replace("${" + key + "}", value)
    assert PLACEHOLDER.findall(resolved) == []
    json.loads(resolved)
    # Locally nothing waits: moto's Wait states really sleep
    assert local_substitutions()["PollIntervalSeconds"] == "0" and local_substitutions()["SliceWaitMaxSeconds"] == "0"


def test_every_error_name_exists_in_python_or_is_a_service_name() -> None:
    known = python_error_names()
    for name, state in states(load()):
        for clause in state.get("Retry", []) + state.get("Catch", []):
            for error in clause["ErrorEquals"]:
                assert error in known or error.startswith("States.") or error in LAMBDA_SERVICE_ERRORS, (name, error)
        if state["Type"] == "Fail":
            assert state["Error"] in known or state["Error"] in FAIL_NAMES, name


def test_every_retryable_venue_error_is_retried_with_exponential_full_jitter_backoff() -> None:
    retryable = {
        n
        for n, c in inspect.getmembers(venue_errors, inspect.isclass)
        if issubclass(c, domain_errors.RetryableVenueError)
    }
    tasks = [(n, s) for n, s in states(load()) if s["Type"] == "Task"]
    assert tasks
    for name, state in tasks:
        [venue_retry] = [r for r in state["Retry"] if "RetryableVenueError" in r["ErrorEquals"]]
        assert set(venue_retry["ErrorEquals"]) == retryable, name  # a new subclass must be added here too
        assert venue_retry["JitterStrategy"] == "FULL" and venue_retry["BackoffRate"] > 1, name
        assert venue_retry["MaxAttempts"] >= 3 and venue_retry["MaxDelaySeconds"] >= venue_retry["IntervalSeconds"]
        assert not any(e.startswith("States.ALL") for r in state["Retry"] for e in r["ErrorEquals"]), name


def test_the_shape_bounds_that_moto_measured() -> None:
    definition = load()
    kinds = {name: s["Type"] for name, s in states(definition)}
    # Every Wait takes its duration from a path fed by a substitution, never a literal
    assert all("SecondsPath" in s for _, s in states(definition) if s["Type"] == "Wait")
    # No Choice rule reads an array index; JSONPath only
    for _, state in states(definition):
        for rule in state.get("Choices", []):
            assert "[" not in rule["Variable"]
    assert definition.get("QueryLanguage", "JSONPath") == "JSONPath"
    # One slice at a time, and the named failure states exist
    assert definition["States"]["Slices"]["MaxConcurrency"] == 1
    assert {"Rejected", "HardStopped", "PlacementFailed"} <= {n for n, k in kinds.items() if k == "Fail"}
    # Every Task outside the abort path is caught into the abort path (cancel what is open, alert)
    for name in ("PlanSlices", "Slices", "Finish"):
        assert {c["Next"] for c in definition["States"][name]["Catch"]} == {"Abort"}
    # Every Next names a state in its scope
    for _, state in states(definition):
        for target in [state.get("Next"), state.get("Default")] + [c["Next"] for c in state.get("Choices", [])]:
            assert target is None or target in kinds
