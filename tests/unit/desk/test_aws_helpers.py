"""The thin boto3 helpers: event bus, SQS batches and idempotent Step Functions starts (moto or stubs)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest
from moto import mock_aws

from desk.aws import clients
from desk.aws.bus import EventBridgeBus, batches, entry_size
from desk.aws.executions import ExecutionConflict, execution_arn, start_execution
from desk.aws.queues import BatchFailed, delete_messages, send_messages
from desk.domain.errors import InvalidEvent, PublishFailed
from desk.events import Envelope, new_event

T0 = datetime(2024, 1, 1, tzinfo=UTC)
REGION = "us-east-1"


def _event(i: int, note: str = "") -> Envelope:
    data = {
        "signal_id": f"s-{i}",
        "strategy": "trend" + note,
        "venue": "binance",
        "symbol": "BTC/USDT",
        "timeframe": "1m",
        "ts": T0.isoformat(),
        "target_weight": 0.1,
        "strength": 0.5,
    }
    return new_event("signal.generated", data, occurred_at=T0, event_id=f"e-{i}")


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    with mock_aws():
        clients.reset()
        yield
    clients.reset()


class _FlakyEvents:
    """PutEvents that refuses chosen ids a number of times, recording every call."""

    def __init__(self, refuse: dict[str, int]) -> None:
        self.refuse = dict(refuse)
        self.calls: list[list[str]] = []

    def put_events(self, Entries: list[dict[str, Any]]) -> dict[str, Any]:
        ids = [json.loads(e["Detail"])["id"] for e in Entries]
        self.calls.append(ids)
        results = []
        for event_id in ids:
            if self.refuse.get(event_id, 0) > 0:
                self.refuse[event_id] -= 1
                results.append({"ErrorCode": "ThrottlingException", "ErrorMessage": "slow down"})
            else:
                results.append({"EventId": f"x-{event_id}"})
        return {"FailedEntryCount": sum("ErrorCode" in r for r in results), "Entries": results}


def test_publish_sends_batches_of_ten_that_reach_the_bus(aws: None) -> None:
    # Given a bus with a rule to a queue
    sqs, events = boto3.client("sqs"), boto3.client("events")
    events.create_event_bus(Name="b")
    url = sqs.create_queue(QueueName="q")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    events.put_rule(Name="r", EventBusName="b", EventPattern=json.dumps({"detail-type": ["signal.generated"]}))
    events.put_targets(Rule="r", EventBusName="b", Targets=[{"Id": "q", "Arn": arn}])
    # When 23 events are published
    EventBridgeBus("b", "test").publish([_event(i) for i in range(23)])
    # Then all 23 arrive, each parsing back into its envelope
    received: list[str] = []
    while batch := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", []):
        received += [Envelope.from_sqs_record({"body": m["Body"]}).id for m in batch]
    assert sorted(received) == sorted(f"e-{i}" for i in range(23))


def test_only_the_refused_entries_are_retried_with_backoff() -> None:
    # Given a bus that refuses e-3 twice and e-12 once
    fake = _FlakyEvents({"e-3": 2, "e-12": 1})
    sleeps: list[float] = []
    bus = EventBridgeBus("b", "test", client=fake, sleep=sleeps.append, base_delay=0.1)
    # When 15 events are published
    bus.publish([_event(i) for i in range(15)])
    # Then the first batch of 10 is followed by retries of e-3 alone, and the second batch by e-12 alone
    assert [len(c) for c in fake.calls] == [10, 1, 1, 5, 1]
    assert fake.calls[1] == fake.calls[2] == ["e-3"]
    assert fake.calls[4] == ["e-12"]
    # And the waits back off exponentially
    assert sleeps == [0.1, 0.2, 0.1]


def test_entries_still_refused_after_the_last_attempt_are_named() -> None:
    fake = _FlakyEvents({"e-1": 99, "e-4": 99})
    bus = EventBridgeBus("b", "test", client=fake, sleep=lambda s: None, max_attempts=3)
    with pytest.raises(PublishFailed) as info:
        bus.publish([_event(i) for i in range(6)])
    assert info.value.failed_ids == ("e-1", "e-4")
    assert "ThrottlingException" in str(info.value)
    assert len(fake.calls) == 3


def test_an_oversized_event_fails_before_anything_is_sent() -> None:
    # Given a batch whose last event is over EventBridge's 256 KiB entry limit
    fake = _FlakyEvents({})
    bus = EventBridgeBus("b", "test", client=fake, sleep=lambda s: None)
    small = _event(9)
    # model_copy skips validation: the only way to build an envelope this large from a small model
    big = small.model_copy(update={"data": small.data.model_copy(update={"strategy": "x" * 300_000})})
    # When it is published, Then nothing is sent (no partial publish of the batch)
    with pytest.raises(InvalidEvent):
        bus.publish([_event(0), _event(1), big])
    assert fake.calls == []


def test_batches_also_respect_the_request_size_limit() -> None:
    # Given five 100 KiB entries
    entries = [(str(i), {"Source": "s", "DetailType": "t", "Detail": "x" * 100_000}) for i in range(5)]
    # Then each call carries at most two of them (256 KiB per request)
    assert [len(b) for b in batches(entries)] == [2, 2, 1]
    assert entry_size(entries[0][1]) == 100_002


def test_send_messages_batches_and_returns_message_ids(aws: None) -> None:
    sqs = boto3.client("sqs")
    url = sqs.create_queue(QueueName="q")["QueueUrl"]
    sent = send_messages(url, {f"m{i}": json.dumps({"i": i}) for i in range(25)})
    assert sorted(sent) == sorted(f"m{i}" for i in range(25))
    assert sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"])["Attributes"] == {
        "ApproximateNumberOfMessages": "25"
    }


def test_refused_entries_are_surfaced_not_dropped() -> None:
    # Given an SQS that refuses one entry of the second batch
    class Sqs:
        def send_message_batch(self, QueueUrl: str, Entries: list[dict[str, str]]) -> dict[str, Any]:
            ok = [e for e in Entries if e["Id"] != "m12"]
            failed = [{"Id": "m12", "Code": "InternalError", "Message": "x", "SenderFault": False}]
            return {
                "Successful": [{"Id": e["Id"], "MessageId": "id-" + e["Id"]} for e in ok],
                "Failed": failed if len(ok) != len(Entries) else [],
            }

    # When 15 messages are sent, Then the error names m12 and the other batches were still sent
    with pytest.raises(BatchFailed) as info:
        send_messages("url", {f"m{i}": "{}" for i in range(15)}, client=Sqs())
    assert info.value.failed_ids == ("m12",)
    assert info.value.failures[0].code == "InternalError"


def test_bad_batch_entry_ids_are_rejected_before_sending() -> None:
    with pytest.raises(ValueError):
        send_messages("url", {"has space": "{}"}, client=object())
    with pytest.raises(ValueError):
        delete_messages("url", {"x" * 81: "handle"}, client=object())


def test_delete_messages_with_a_stale_receipt_handle_is_surfaced(aws: None) -> None:
    sqs = boto3.client("sqs")
    url = sqs.create_queue(QueueName="q")["QueueUrl"]
    with pytest.raises(BatchFailed) as info:
        delete_messages(url, {"a": "not-a-real-handle"})
    assert info.value.failed_ids == ("a",)


def _state_machine() -> str:
    definition = {"StartAt": "Done", "States": {"Done": {"Type": "Pass", "End": True}}}
    return str(
        boto3.client("stepfunctions").create_state_machine(
            name="orders", definition=json.dumps(definition), roleArn="arn:aws:iam::123456789012:role/sfn"
        )["stateMachineArn"]
    )


def test_a_repeated_start_with_the_same_input_is_a_no_op(aws: None) -> None:
    # Given a started execution named by the plan id
    machine = _state_machine()
    first = start_execution(machine, "plan-1", {"b": 1, "a": 2})
    # When it has closed and the same start is retried (keys in another order)
    boto3.client("stepfunctions").stop_execution(executionArn=first)
    again = start_execution(machine, "plan-1", {"a": 2, "b": 1})
    # Then the existing execution is returned and no second one exists
    assert again == first == execution_arn(machine, "plan-1")
    assert len(boto3.client("stepfunctions").list_executions(stateMachineArn=machine)["executions"]) == 1


def test_a_start_while_running_with_the_same_input_returns_it(aws: None) -> None:
    machine = _state_machine()
    assert start_execution(machine, "plan-2", "{}") == start_execution(machine, "plan-2", {})


def test_the_same_name_with_a_different_input_is_a_conflict(aws: None) -> None:
    machine = _state_machine()
    start_execution(machine, "plan-3", {"qty": "1"})
    with pytest.raises(ExecutionConflict):
        start_execution(machine, "plan-3", {"qty": "2"})


@pytest.mark.parametrize("name", ["", "has space", "a/b", "x" * 81, "semi;colon"])
def test_invalid_execution_names_are_rejected(name: str) -> None:
    with pytest.raises(ValueError):
        start_execution("arn:aws:states:us-east-1:1:stateMachine:m", name, {}, client=object())
