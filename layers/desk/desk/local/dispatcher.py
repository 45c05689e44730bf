"""Drain SQS queues into their consumer handlers the way Lambda's SQS event source does.

Per queue and step: receive up to ``batch_size`` messages, build the ``aws:sqs`` event, invoke the
consumer, delete what succeeded. With ``ReportBatchItemFailures`` (every desk consumer has it) the
ids in ``batchItemFailures`` stay on the queue; a handler exception, or an unknown id in the
response, fails the whole batch, as in Lambda. Failed messages are made visible again at once
(``ChangeMessageVisibility`` 0) instead of waiting out the visibility timeout, since local time
is simulated. moto applies the redrive policy on receive, so a message received more than
``maxReceiveCount`` times moves to the DLQ by itself, exactly as in SQS.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from desk.aws.clients import client as default_client
from desk.aws.queues import change_visibility, delete_messages

Invoke = Callable[[str, Mapping[str, Any]], Any]
_RECEIVE_MAX = 10  # SQS returns at most 10 messages per ReceiveMessage


@dataclass(frozen=True)
class QueueBinding:
    """One event-source mapping: a queue, its consumer function and its DLQ."""

    name: str
    url: str
    arn: str
    function: str
    batch_size: int
    dlq_url: str


@dataclass
class DispatchStats:
    received: int = 0
    succeeded: int = 0
    failed: int = 0
    redriven: int = 0
    invocations: int = 0
    steps: int = 0
    per_queue: dict[str, dict[str, int]] = field(default_factory=dict)

    def _add(self, queue: str, key: str, n: int) -> None:
        setattr(self, key, getattr(self, key) + n)
        counts = self.per_queue.setdefault(queue, {"received": 0, "succeeded": 0, "failed": 0, "redriven": 0})
        counts[key] += n


class Dispatcher:
    """Polls every bound queue in turn; ``drain`` runs steps until nothing is received."""

    def __init__(self, bindings: Sequence[QueueBinding], invoke: Invoke, *, region: str = "us-east-1") -> None:
        self.bindings = list(bindings)
        self._invoke = invoke
        self._region = region
        self.stats = DispatchStats()

    def drain(self, max_steps: int = 100_000) -> DispatchStats:
        """Step until a step receives nothing (all queues empty) or ``max_steps`` steps have run."""
        before = self._dlq_depths()
        for _ in range(max_steps):
            if self.step() == 0:
                break
        for binding in self.bindings:
            self.stats._add(binding.name, "redriven", self._dlq_depth(binding) - before[binding.name])
        return self.stats

    def step(self) -> int:
        """One poll of every queue (one batch each); returns the number of messages received."""
        self.stats.steps += 1
        return sum(self._poll(binding) for binding in self.bindings)

    def _poll(self, binding: QueueBinding) -> int:
        messages = self._receive(binding)
        if not messages:
            return 0
        self.stats._add(binding.name, "received", len(messages))
        failed_ids = self._run(binding, messages)
        # SQS message ids are uuids: valid, unique batch entry ids.
        handles = {m["MessageId"]: m["ReceiptHandle"] for m in messages}
        done = {i: h for i, h in handles.items() if i not in failed_ids}
        retry = {i: h for i, h in handles.items() if i in failed_ids}
        if done:
            delete_messages(binding.url, done, client=self._sqs)
        if retry:
            change_visibility(binding.url, retry, 0, client=self._sqs)
        self.stats._add(binding.name, "succeeded", len(done))
        self.stats._add(binding.name, "failed", len(retry))
        return len(messages)

    def _run(self, binding: QueueBinding, messages: list[dict[str, Any]]) -> set[str]:
        """Invoke the consumer; return the message ids that failed."""
        all_ids = {m["MessageId"] for m in messages}
        self.stats.invocations += 1
        try:
            response = self._invoke(binding.function, self._event(binding, messages))
        except Exception:  # an errored invocation fails the whole batch
            return all_ids
        if not isinstance(response, Mapping):
            return set()
        reported = {str(item.get("itemIdentifier")) for item in response.get("batchItemFailures") or ()}
        # Lambda treats an id it did not send (or a missing one) as a failure of the whole batch.
        return all_ids if not reported <= all_ids else reported

    def _receive(self, binding: QueueBinding) -> list[dict[str, Any]]:
        messages: list[dict[str, Any]] = []
        while len(messages) < binding.batch_size:
            got = self._sqs.receive_message(
                QueueUrl=binding.url,
                MaxNumberOfMessages=min(_RECEIVE_MAX, binding.batch_size - len(messages)),
                AttributeNames=["All"],
                MessageAttributeNames=["All"],
                WaitTimeSeconds=0,
            ).get("Messages", [])
            messages += got
            if len(got) < _RECEIVE_MAX:
                break
        return messages

    def _event(self, binding: QueueBinding, messages: list[dict[str, Any]]) -> dict[str, Any]:
        return {
            "Records": [
                {
                    "messageId": m["MessageId"],
                    "receiptHandle": m["ReceiptHandle"],
                    "body": m["Body"],
                    "attributes": m.get("Attributes", {}),
                    "messageAttributes": m.get("MessageAttributes", {}),
                    "md5OfBody": m.get("MD5OfBody", ""),
                    "eventSource": "aws:sqs",
                    "eventSourceARN": binding.arn,
                    "awsRegion": self._region,
                }
                for m in messages
            ]
        }

    @property
    def _sqs(self) -> Any:
        return default_client("sqs")

    def _dlq_depth(self, binding: QueueBinding) -> int:
        attrs = self._sqs.get_queue_attributes(
            QueueUrl=binding.dlq_url,
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
        return int(attrs["ApproximateNumberOfMessages"]) + int(attrs["ApproximateNumberOfMessagesNotVisible"])

    def _dlq_depths(self) -> dict[str, int]:
        return {b.name: self._dlq_depth(b) for b in self.bindings}
