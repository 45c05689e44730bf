"""Start Step Functions executions idempotently: the execution name is the caller's id (a plan id).

Standard workflows keep execution names unique for 90 days. AWS returns the running execution for
a repeated ``StartExecution`` with the same name and input, but raises ``ExecutionAlreadyExists``
once that execution has closed, or when the input differs. A retried start (a redelivered message,
a client retry after a timeout) must be a no-op in both of the first two cases, so the error is
resolved here by comparing the stored input; only a different input is a real conflict.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from botocore.exceptions import ClientError

from desk.aws.clients import client as default_client
from desk.domain.errors import DeskError

# AWS forbids whitespace, brackets, wildcards, these punctuation marks and control characters.
_FORBIDDEN = re.compile(r"[\s<>{}\[\]?*\"#%\\^|~`$&,;:/\x00-\x1f\x7f-\x9f]")


class ExecutionConflict(DeskError):
    """An execution with this name exists with a different input: not a retry of the same start."""

    def __init__(self, execution_arn: str) -> None:
        self.execution_arn = execution_arn
        super().__init__(f"execution {execution_arn} already exists with a different input")


def execution_arn(state_machine_arn: str, name: str) -> str:
    """The ARN an execution ``name`` of ``state_machine_arn`` has (AWS derives it; so can we)."""
    prefix, sep, machine = state_machine_arn.partition(":stateMachine:")
    if not sep:
        raise ValueError(f"not a state machine ARN: {state_machine_arn}")
    return f"{prefix}:execution:{machine.split(':')[0]}:{name}"


def canonical_input(execution_input: Mapping[str, Any] | str) -> str:
    """JSON with sorted keys, so the same logical input always produces the same text."""
    value = json.loads(execution_input) if isinstance(execution_input, str) else execution_input
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)


def start_execution(
    state_machine_arn: str, name: str, execution_input: Mapping[str, Any] | str, *, client: Any = None
) -> str:
    """Start ``name`` (idempotently) and return its execution ARN.

    A repeat with the same input, running or finished, returns the existing ARN; a repeat with a
    different input raises :class:`ExecutionConflict`.
    """
    if not 1 <= len(name) <= 80 or _FORBIDDEN.search(name):
        raise ValueError(f"invalid execution name {name!r}")
    sfn = client or default_client("stepfunctions")
    payload = canonical_input(execution_input)
    try:
        response = sfn.start_execution(stateMachineArn=state_machine_arn, name=name, input=payload)
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") != "ExecutionAlreadyExists":
            raise
        arn = execution_arn(state_machine_arn, name)
        existing = sfn.describe_execution(executionArn=arn)
        if canonical_input(existing.get("input") or "{}") != payload:
            raise ExecutionConflict(arn) from exc
        return arn
    return str(response["executionArn"])
