"""Operator alerts on SNS (the ``Alerts`` port)."""

from __future__ import annotations

from desk.aws.clients import client

# SNS limits the subject to 100 printable ASCII characters; a longer one is rejected outright.
_SUBJECT_MAX = 100


class SnsAlerts:
    def __init__(self, topic_arn: str) -> None:
        if not topic_arn:
            raise ValueError("alerts need a topic ARN (DESK_ALERTS_TOPIC_ARN)")
        self._topic_arn = topic_arn

    def publish(self, subject: str, message: str) -> None:
        safe = "".join(c if 32 <= ord(c) < 127 else "?" for c in subject)[:_SUBJECT_MAX] or "Lambda Desk alert"
        client("sns").publish(TopicArn=self._topic_arn, Subject=safe, Message=message)
