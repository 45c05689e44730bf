"""The ``ExecutionStarter`` port over Step Functions: one execution per name, repeat starts are no-ops."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from desk.aws.executions import start_execution


class StepFunctionsStarter:
    def __init__(self, state_machine_arn: str) -> None:
        if not state_machine_arn:
            raise ValueError("the execution starter needs a state machine ARN (DESK_ORDER_STATE_MACHINE_ARN)")
        self._arn = state_machine_arn

    def start(self, name: str, execution_input: Mapping[str, Any]) -> str:
        return start_execution(self._arn, name, execution_input)
