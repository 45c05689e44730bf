"""Large backtests in Lambda: the API function invokes itself with a job event and the handler runs the job.

The HTTP request goes through ``functions/api/handler.py`` as API Gateway would send it, with the
Lambda runtime's environment set, so the real ``deps.job_runner`` picks the self-invoking runner;
moto's Lambda (no Docker) answers the asynchronous invoke and a botocore hook records it. The job
event is then given to the same handler, as the Lambda service would deliver it.
"""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

import boto3
import pytest
from aws_lambda_powertools.event_handler.api_gateway import BaseRouter
from botocore.exceptions import ClientError
from moto import mock_aws

from desk.api import deps, jobs
from desk.api.app import app
from desk.api.models import BacktestJob
from desk.api.routers import strategy
from desk.aws import clients
from desk.local.api_server import build_event
from desk.observability import logger
from functions.api.handler import lambda_handler
from tests.api.conftest import Api, Desk

FUNCTION = "desk-api"
SMALL = {"kind": "momentum", "params": {"lookback": 20, "skip": 1}, "venue": "binance",
         "symbols": ["BTC/USDT"], "start": "2018-09-01T00:00:00Z", "end": "2019-10-18T00:00:00Z"}  # fmt: skip
LARGE = {**SMALL, "symbols": ["BTC/USDT", "ETH/USDT", "LTC/USDT"], "start": "2010-01-01T00:00:00Z"}


@dataclass(frozen=True)
class Context:
    """The parts of the Lambda context Powertools reads."""

    invoked_function_arn: str
    function_name: str = FUNCTION
    function_version: str = "$LATEST"
    memory_limit_in_mb: int = 1024
    aws_request_id: str = "req-1"


@dataclass
class Aws:
    arn: str
    invokes: list[dict[str, Any]]

    def context(self) -> Context:
        return Context(self.arn)

    def post(self, body: Any, arn: str | None = None) -> tuple[int, Any]:
        claims = {"sub": "tester", "scope": "desk:read desk:trade"}
        event = build_event("POST", "/v1/strategy/backtest", {"content-type": "application/json"},
                            json.dumps(body).encode(), claims)  # fmt: skip
        reply = lambda_handler(event, Context(arn or self.arn))
        return reply["statusCode"], json.loads(reply["body"])


def _zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("handler.py", "def lambda_handler(event, context):\n    return event\n")
    return buffer.getvalue()


@pytest.fixture
def aws(desk: Desk, monkeypatch: pytest.MonkeyPatch) -> Iterator[Aws]:
    for key, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_LAMBDA_FUNCTION_NAME": FUNCTION,  # what the Lambda runtime sets: select the self-invoking runner
    }.items():
        monkeypatch.setenv(key, value)
    app.dependency_overrides.pop(deps.job_runner, None)  # the real port, not the conftest's inline runner
    with mock_aws(config={"lambda": {"use_docker": False}}):
        clients.reset()
        role = boto3.client("iam").create_role(
            RoleName="desk-api", AssumeRolePolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": []})
        )["Role"]["Arn"]
        arn = boto3.client("lambda").create_function(
            FunctionName=FUNCTION, Runtime="python3.12", Role=role, Handler="handler.lambda_handler",
            Code={"ZipFile": _zip()},
        )["FunctionArn"]  # fmt: skip
        invokes: list[dict[str, Any]] = []

        def record(params: dict[str, Any], **_: Any) -> None:
            invokes.append({**params, "Payload": json.loads(params["body"])})

        clients.client("lambda").meta.events.register("before-call.lambda.Invoke", record)
        yield Aws(arn, invokes)
    clients.reset()


def _deliver(aws: Aws, event: dict[str, Any]) -> dict[str, Any]:
    return lambda_handler(event, aws.context())  # type: ignore[no-any-return]


def test_lambda_runner_invokes_itself_and_the_job_event_completes_the_job_once(
    aws: Aws, api: Api, desk: Desk, monkeypatch: pytest.MonkeyPatch
) -> None:
    status, queued = aws.post(LARGE)
    assert status == 202 and queued["status"] == "queued", queued
    job_id = queued["job_id"]
    [invoke] = aws.invokes
    assert unquote(invoke["url_path"]) == f"/2015-03-31/functions/{aws.arn}/invocations"  # the context's ARN
    assert invoke["headers"]["X-Amz-Invocation-Type"] == "Event"
    assert invoke["Payload"] == {"desk_job": "backtest", "job_id": job_id}
    assert api.get(f"/v1/strategy/backtest/{job_id}").body["status"] == "queued"  # nothing ran in the request

    assert _deliver(aws, invoke["Payload"]) == {"desk_job": "backtest", "job_id": job_id, "status": "completed"}
    done = api.get(f"/v1/strategy/backtest/{job_id}").body
    assert done["status"] == "completed" and done["result"]["bars"] > 300 and done["error"] is None

    runs: list[object] = []
    monkeypatch.setattr(strategy, "_run", lambda *a: runs.append(a))  # a re-run would be seen (and fail)
    assert _deliver(aws, invoke["Payload"])["status"] == "skipped"  # a second delivery is a no-op
    assert runs == [] and api.get(f"/v1/strategy/backtest/{job_id}").body == done


def test_without_a_context_the_function_name_from_the_runtime_is_invoked(aws: Aws, api: Api) -> None:
    queued = api.post("/v1/strategy/backtest", LARGE)  # the resolver without a Lambda context
    assert queued.status == 202
    [invoke] = aws.invokes
    assert invoke["url_path"].split("/")[3] == FUNCTION
    assert invoke["Payload"]["job_id"] == queued.body["job_id"]


def test_unknown_and_malformed_job_events_are_logged_and_ignored(
    aws: Aws, desk: Desk, monkeypatch: pytest.MonkeyPatch
) -> None:
    warnings: list[tuple[str, Any]] = []
    monkeypatch.setattr(logger, "warning", lambda msg, *a, **k: warnings.append((msg, k.get("extra"))))
    unknown = "0" * 32
    assert _deliver(aws, {"desk_job": "backtest", "job_id": unknown})["status"] == "unknown"
    assert warnings == [("unknown or expired job ignored", {"job_id": unknown})]
    assert desk.redis.get(jobs.job_key(unknown)) is None  # nothing created
    assert _deliver(aws, {"desk_job": "backtest", "job_id": "not-a-job"}) == {"status": "ignored"}
    assert _deliver(aws, {"desk_job": "reindex", "job_id": unknown}) == {"status": "ignored"}


def test_a_failing_job_records_failed_with_a_reason(aws: Aws, api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    status, bad = aws.post({**LARGE, "params": {"nope": 1}})  # accepted, refused by the strategy when it runs
    assert status == 202
    assert _deliver(aws, aws.invokes[-1]["Payload"])["status"] == "failed"
    failed = api.get(f"/v1/strategy/backtest/{bad['job_id']}").body
    assert failed["status"] == "failed" and failed["result"] is None
    assert failed["error"]["code"] == "unprocessable"
    assert "bad parameters for momentum" in failed["error"]["message"]

    def boom(*_: Any) -> Any:
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(strategy, "_run", boom)
    status, crashed = aws.post(LARGE)
    assert _deliver(aws, aws.invokes[-1]["Payload"])["status"] == "failed"
    error = api.get(f"/v1/strategy/backtest/{crashed['job_id']}").body["error"]
    assert error == {"code": "internal", "message": "the backtest failed (RuntimeError)", "details": []}


def test_a_job_claimed_by_another_delivery_is_not_run_twice(aws: Aws, api: Api, desk: Desk) -> None:
    status, queued = aws.post(LARGE)
    assert status == 202
    job_id = queued["job_id"]
    desk.redis.set(f"desk:api:backtest-job-claim:{job_id}", "1")  # a concurrent delivery holds the claim
    assert _deliver(aws, aws.invokes[-1]["Payload"])["status"] == "skipped"
    assert api.get(f"/v1/strategy/backtest/{job_id}").body["status"] == "queued"


class RefusingLambda:
    def invoke(self, **_: Any) -> Any:
        raise ClientError({"Error": {"Code": "TooManyRequestsException", "Message": "Rate exceeded"}}, "Invoke")


def test_an_invoke_that_fails_is_a_503_and_the_job_is_recorded_failed(
    aws: Aws, desk: Desk, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(deps, "_lambda_client", RefusingLambda)
    status, body = aws.post(LARGE)
    assert status == 503 and body["code"] == "unavailable", body
    records = [BacktestJob.model_validate_json(desk.redis.get(k) or b"") for k in desk.redis.keys(jobs.job_key("*"))]
    assert [r.status for r in records] == ["failed"]
    assert records[0].error is not None and "could not be started" in records[0].error.message


def test_outside_lambda_the_runner_is_an_in_process_thread(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AWS_LAMBDA_FUNCTION_NAME", raising=False)
    assert deps.job_runner() is jobs.thread_runner
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_NAME", FUNCTION)
    monkeypatch.setattr(BaseRouter, "lambda_context", None)  # no request context: the runtime's function name
    runner = deps.job_runner()
    assert isinstance(runner, jobs.SelfInvokeRunner) and runner.function == FUNCTION
