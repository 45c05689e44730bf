"""Run Lambda invokes in process: moto's simple Lambda backend dispatches to Python handlers.

moto has no hook for running a Python handler, but every invoke path we use ends in
``LambdaSimpleBackend.invoke`` (boto3 ``Invoke``, Step Functions Task states, SQS event-source
mappings; SNS → Lambda calls the function object instead and is not used by the desk). The shim
replaces that one method while installed, so the real ASL, retries and ``Catch`` clauses run
against the desk's real handlers. A handler is registered as a dotted module path (imported on
first invoke, like a Lambda cold start) or, in tests, as a callable.
"""

from __future__ import annotations

import importlib
import json
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

Handler = Callable[[Any, Any], Any]


@dataclass
class FakeContext:
    """The attributes of the Lambda context object that Powertools and handlers read."""

    function_name: str
    invoked_function_arn: str
    memory_limit_in_mb: int = 128
    timeout_s: int = 60
    function_version: str = "$LATEST"
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    _deadline: float = 0.0

    def __post_init__(self) -> None:
        self._deadline = time.monotonic() + self.timeout_s
        self.log_group_name = f"/aws/lambda/{self.function_name}"
        self.log_stream_name = f"local/{self.aws_request_id}"

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


def _name(function: str) -> str:
    # Accept a name, a function ARN or a qualified ARN, as Lambda does.
    return function.split(":")[6] if function.startswith("arn:") else function


def _jsonable(result: Any) -> Any:
    dump = getattr(result, "model_dump", None)
    return dump(mode="json") if callable(dump) else result


class LambdaShim:
    """Registered handlers by function name, callable directly or through moto's Lambda API."""

    def __init__(self, account_id: str = "123456789012", region: str = "us-east-1") -> None:
        self._handlers: dict[str, Handler | str] = {}
        self._specs: dict[str, tuple[int, int]] = {}
        self._account_id = account_id
        self._region = region
        self.invocations: dict[str, int] = {}

    def register(self, function: str, handler: Handler | str, *, memory: int = 128, timeout: int = 60) -> None:
        """``handler`` is a callable or a module path whose ``handler(event, context)`` is called."""
        self._handlers[function] = handler
        self._specs[function] = (memory, timeout)

    def handler_for(self, function: str) -> Handler:
        name = _name(function)
        try:
            target = self._handlers[name]
        except KeyError:
            raise LookupError(f"no handler registered for Lambda function {name!r}") from None
        if isinstance(target, str):
            target = importlib.import_module(target).lambda_handler  # every handler module exports lambda_handler
            self._handlers[name] = target
        return target

    def call(self, function: str, event: Any) -> Any:
        """Invoke the handler in process; its exceptions propagate (the caller decides what they mean)."""
        name = _name(function)
        handler = self.handler_for(name)
        memory, timeout = self._specs.get(name, (128, 60))
        arn = f"arn:aws:lambda:{self._region}:{self._account_id}:function:{name}"
        self.invocations[name] = self.invocations.get(name, 0) + 1
        return handler(event, FakeContext(name, arn, memory, timeout))

    def invoke_payload(self, function: str, body: Any, response_headers: dict[str, Any]) -> bytes:
        """What moto's ``invoke`` returns: the JSON result, or Lambda's error payload and header."""
        event = json.loads(body) if body else {}
        try:
            result = self.call(function, event)
        except Exception as exc:  # a handler error is a function error, as in Lambda
            response_headers["x-amz-function-error"] = "Unhandled"
            # Step Functions matches Retry/Catch on errorType, the exception's class name.
            error = {"errorType": type(exc).__name__, "errorMessage": str(exc)}
            return json.dumps(error).encode()
        return json.dumps(_jsonable(result), default=str).encode()

    @contextmanager
    def installed(self) -> Iterator[LambdaShim]:
        """Route moto's Lambda invokes to this shim for the duration of the block."""
        from moto.awslambda_simple.models import LambdaSimpleBackend

        original = LambdaSimpleBackend.__dict__["invoke"]
        shim = self

        def invoke(
            self: Any, function_name: str, qualifier: Any, body: Any, headers: Mapping[str, Any], response_headers: Any
        ) -> bytes:
            self.get_function(function_name, qualifier)  # keeps Lambda's 404 for an unknown function
            return shim.invoke_payload(function_name, body, response_headers)

        setattr(LambdaSimpleBackend, "invoke", invoke)  # noqa: B010 - patching a class, on purpose
        try:
            yield self
        finally:
            setattr(LambdaSimpleBackend, "invoke", original)  # noqa: B010
