"""SQS helpers: batched send, delete and visibility changes that surface per-entry failures.

SQS batch calls (10 entries, 256 KiB in total) succeed as a call while refusing some entries; the
refused ones come back under ``Failed`` and are easy to drop on the floor. Every helper here
raises :class:`BatchFailed` naming them, so a caller cannot lose a message silently.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from desk.aws.clients import client as default_client
from desk.domain.errors import DeskError

MAX_ENTRIES_PER_CALL = 10
MAX_BYTES_PER_CALL = 256 * 1024
# SQS batch entry ids: alphanumerics, hyphens and underscores, up to 80 characters.
_ENTRY_ID = re.compile(r"^[A-Za-z0-9_-]{1,80}$")


@dataclass(frozen=True, slots=True)
class EntryFailure:
    id: str
    code: str
    message: str
    sender_fault: bool


class BatchFailed(DeskError):
    """Some entries of an SQS batch call were refused; ``failures`` names them (id, code, message)."""

    def __init__(self, operation: str, failures: Sequence[EntryFailure]) -> None:
        self.operation = operation
        self.failures = tuple(failures)
        self.failed_ids = tuple(f.id for f in self.failures)
        super().__init__(f"{operation}: {len(self.failures)} entr(y/ies) refused: {', '.join(self.failed_ids)}")


def _chunks(items: Sequence[tuple[str, str]]) -> Iterator[list[tuple[str, str]]]:
    chunk: list[tuple[str, str]] = []
    size = 0
    for item in items:
        item_size = len(item[1].encode())
        if chunk and (len(chunk) == MAX_ENTRIES_PER_CALL or size + item_size > MAX_BYTES_PER_CALL):
            yield chunk
            chunk, size = [], 0
        chunk.append(item)
        size += item_size
    if chunk:
        yield chunk


def _check_ids(items: Sequence[tuple[str, str]]) -> None:
    ids = [entry_id for entry_id, _ in items]
    bad = [i for i in ids if not _ENTRY_ID.match(i)]
    if bad:
        raise ValueError(f"invalid SQS batch entry ids (alphanumerics, - and _, <= 80 chars): {bad}")
    if len(set(ids)) != len(ids):
        raise ValueError("SQS batch entry ids must be unique")


def _failures(response: Mapping[str, Any]) -> list[EntryFailure]:
    return [
        EntryFailure(str(f["Id"]), str(f.get("Code", "")), str(f.get("Message", "")), bool(f.get("SenderFault")))
        for f in response.get("Failed", [])
    ]


def send_messages(queue_url: str, messages: Mapping[str, str], *, client: Any = None) -> dict[str, str]:
    """Send ``{entry id: body}`` in batches; return ``{entry id: SQS message id}``.

    Raises :class:`BatchFailed` (after sending every batch) if any entry was refused; the entries
    that were accepted stay accepted, so the caller re-sends only ``failed_ids``.
    """
    items = list(messages.items())
    _check_ids(items)
    sqs = client or default_client("sqs")
    sent: dict[str, str] = {}
    failures: list[EntryFailure] = []
    for chunk in _chunks(items):
        response = sqs.send_message_batch(
            QueueUrl=queue_url, Entries=[{"Id": entry_id, "MessageBody": body} for entry_id, body in chunk]
        )
        sent.update({str(s["Id"]): str(s["MessageId"]) for s in response.get("Successful", [])})
        failures += _failures(response)
    if failures:
        raise BatchFailed("SendMessageBatch", failures)
    return sent


def delete_messages(queue_url: str, receipt_handles: Mapping[str, str], *, client: Any = None) -> None:
    """Delete ``{entry id: receipt handle}`` in batches; :class:`BatchFailed` names the refused ones."""
    _batched(
        "DeleteMessageBatch",
        queue_url,
        [{"Id": entry_id, "ReceiptHandle": handle} for entry_id, handle in receipt_handles.items()],
        client,
    )


def change_visibility(
    queue_url: str, receipt_handles: Mapping[str, str], timeout_seconds: int, *, client: Any = None
) -> None:
    """Set the visibility timeout of ``{entry id: receipt handle}`` (0 makes them visible again now)."""
    _batched(
        "ChangeMessageVisibilityBatch",
        queue_url,
        [
            {"Id": entry_id, "ReceiptHandle": handle, "VisibilityTimeout": timeout_seconds}
            for entry_id, handle in receipt_handles.items()
        ],
        client,
    )


def _batched(operation: str, queue_url: str, entries: list[dict[str, Any]], client: Any) -> None:
    _check_ids([(e["Id"], "") for e in entries])
    sqs = client or default_client("sqs")
    call = sqs.delete_message_batch if operation == "DeleteMessageBatch" else sqs.change_message_visibility_batch
    failures: list[EntryFailure] = []
    for start in range(0, len(entries), MAX_ENTRIES_PER_CALL):
        failures += _failures(call(QueueUrl=queue_url, Entries=entries[start : start + MAX_ENTRIES_PER_CALL]))
    if failures:
        raise BatchFailed(operation, failures)
