"""The SQS dispatcher: Lambda's partial-batch semantics, redrive to the DLQ, and the burst."""

from __future__ import annotations

import json
import random
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.idempotency import (
    DynamoDBPersistenceLayer,
    IdempotencyConfig,
    idempotent_function,
)

from desk.aws import clients
from desk.aws.bus import EventBridgeBus
from desk.aws.queues import send_messages
from desk.events import Envelope, new_event
from desk.local.cloud import LocalCloud
from desk.schemas.analytics import Signal
from desk.topology import topology

T0 = datetime(2024, 1, 1, tzinfo=UTC)
NS = uuid.UUID("0b9c7c1e-3f3e-4c59-8d1e-9a4f2f7c0d11")
MAX_RECEIVES = topology().defaults.max_receive_count
WAVE = 250


@pytest.fixture
def cloud() -> Iterator[LocalCloud]:
    with LocalCloud() as running:
        yield running


def _bodies(url: str) -> list[str]:
    sqs, out = clients.client("sqs"), []
    while batch := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", []):
        out += [m["Body"] for m in batch]
    return out


def test_a_reported_failure_is_redelivered_and_the_rest_deleted(cloud: LocalCloud) -> None:
    # Given three messages on the risk queue and a consumer that reports "bad" as failed
    deliveries: list[tuple[str, str]] = []

    def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        failures = []
        for record in event["Records"]:
            deliveries.append((record["body"], record["attributes"]["ApproximateReceiveCount"]))
            if record["body"] == "bad":
                failures.append({"itemIdentifier": record["messageId"]})
        return {"batchItemFailures": failures}

    cloud.register("risk", handler)
    send_messages(cloud.queue_urls["risk"], {"a": "good-1", "b": "bad", "c": "good-2"})
    dispatcher = cloud.dispatcher()
    # When one step runs
    dispatcher.step()
    # Then the two good ones are gone and only "bad" is received again, with its receive count up
    assert sorted(b for b, _ in deliveries) == ["bad", "good-1", "good-2"]
    dispatcher.step()
    assert deliveries[3:] == [("bad", "2")]
    # When the queue is drained, Then after maxReceiveCount receives it sits in the DLQ, once
    stats = dispatcher.drain()
    assert [n for b, n in deliveries if b == "bad"] == [str(i) for i in range(1, MAX_RECEIVES + 1)]
    assert _bodies(cloud.dlq_urls["risk"]) == ["bad"]
    assert _bodies(cloud.queue_urls["risk"]) == []
    assert (stats.received, stats.succeeded, stats.failed, stats.redriven) == (2 + MAX_RECEIVES, 2, MAX_RECEIVES, 1)


def test_a_handler_exception_fails_the_whole_batch(cloud: LocalCloud) -> None:
    # Given a consumer that raises on its first invocation only
    seen: list[str] = []

    def handler(event: dict[str, Any], context: Any) -> None:
        seen.extend(r["body"] for r in event["Records"])
        if len(seen) <= 2:
            raise RuntimeError("cold dependency")

    cloud.register("risk", handler)
    send_messages(cloud.queue_urls["risk"], {"a": "1", "b": "2"})
    # When drained, Then both messages came back and were then processed, none lost
    stats = cloud.dispatcher().drain()
    assert sorted(seen) == ["1", "1", "2", "2"]
    assert (stats.failed, stats.succeeded, stats.redriven) == (2, 2, 0)


def test_an_unknown_item_identifier_fails_the_whole_batch(cloud: LocalCloud) -> None:
    calls = Counter[str]()

    def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        calls.update(r["body"] for r in event["Records"])
        first = calls["x"] == 1
        return {"batchItemFailures": [{"itemIdentifier": "not-in-this-batch"}] if first else []}

    cloud.register("risk", handler)
    send_messages(cloud.queue_urls["risk"], {"a": "x", "b": "y"})
    cloud.dispatcher().drain()
    assert calls == Counter({"x": 2, "y": 2})


def _burst(cloud: LocalCloud, n: int, seed: int) -> dict[str, Any]:
    """N messages: signals queue → stage 1 → bus → cost-optimiser queue → stage 2 (idempotent side effect)."""
    rng = random.Random(seed)
    ids = [f"m{i:06d}" for i in range(n)]
    poison = set(rng.sample(ids, n // 100))  # 1 %: stage 1 always fails them
    flaky_1 = set(rng.sample(ids, n * 5 // 100))  # 5 %: stage 1 fails once *after* publishing (a duplicate)
    flaky_2 = set(rng.sample(ids, n * 5 // 100))  # 5 %: stage 2 fails once before its side effect
    failed_once: set[tuple[int, str]] = set()
    effects = Counter[str]()
    applied_calls = Counter[str]()
    bus = EventBridgeBus(cloud.bus_name, "burst", sleep=lambda s: None)

    def stage_1_record(record: SQSRecord) -> None:
        msg_id = json.loads(record.body)["id"]
        if msg_id in poison:
            raise ValueError(f"poison {msg_id}")
        signal = {
            "signal_id": msg_id,
            "strategy": "burst",
            "venue": "binance",
            "symbol": "BTC/USDT",
            "timeframe": "1m",
            "ts": T0.isoformat(),
            "target_weight": 0.1,
            "strength": 0.5,
        }
        # The event id derives from the message id, so a redelivered message republishes the same event.
        event_id = str(uuid.uuid5(NS, msg_id))
        bus.publish([new_event("signal.generated", signal, occurred_at=T0, event_id=event_id)])
        if msg_id in flaky_1 and (1, msg_id) not in failed_once:
            failed_once.add((1, msg_id))
            raise RuntimeError("transient after publish")

    processor_1 = BatchProcessor(event_type=EventType.SQS)

    def stage_1(event: dict[str, Any], context: Any) -> dict[str, Any]:
        return process_partial_response(
            event=event, record_handler=stage_1_record, processor=processor_1, context=context
        )

    persistence = DynamoDBPersistenceLayer(
        table_name=cloud.table_names["idempotency"], boto3_client=clients.client("dynamodb")
    )
    config = IdempotencyConfig(
        event_key_jmespath="id", expires_after_seconds=topology().defaults.idempotency_ttl_seconds
    )

    @idempotent_function(data_keyword_argument="envelope", persistence_store=persistence, config=config)
    def apply(envelope: dict[str, Any]) -> dict[str, Any]:
        msg_id = envelope["data"]["signal_id"]
        effects[msg_id] += 1  # the side effect: must happen once per message
        return {"applied": msg_id}

    def stage_2_record(record: SQSRecord) -> None:
        envelope = Envelope.from_sqs_record(record.raw_event)
        msg_id = envelope.data_as(Signal).signal_id
        if msg_id in flaky_2 and (2, msg_id) not in failed_once:
            failed_once.add((2, msg_id))
            raise RuntimeError("transient before the side effect")
        applied_calls[msg_id] += 1
        apply(envelope=envelope.model_dump(mode="json"))

    processor_2 = BatchProcessor(event_type=EventType.SQS)

    def stage_2(event: dict[str, Any], context: Any) -> dict[str, Any]:
        config.register_lambda_context(context)
        return process_partial_response(
            event=event, record_handler=stage_2_record, processor=processor_2, context=context
        )

    cloud.register("signals", stage_1)
    cloud.register("cost_optimiser", stage_2)
    started = time.perf_counter()
    dispatcher = cloud.dispatcher()
    # The burst arrives in waves: moto recomputes a queue's attributes over every message on each
    # send and receive (measured: quadratic in queue depth), so one 20,000-deep queue would take hours.
    for start in range(0, n, WAVE):
        send_messages(cloud.queue_urls["signals"], {i: json.dumps({"id": i}) for i in ids[start : start + WAVE]})
        stats = dispatcher.drain()
    return {
        "ids": set(ids),
        "poison": poison,
        "duplicates": (flaky_1 - poison),
        "effects": effects,
        "applied_calls": applied_calls,
        "stats": stats,
        "dlq": {q: sorted(json.loads(b)["id"] for b in _bodies(u)) for q, u in cloud.dlq_urls.items()},
        "left": {q: _bodies(u) for q, u in cloud.queue_urls.items()},
        "seconds": time.perf_counter() - started,
    }


def _assert_burst(result: dict[str, Any]) -> None:
    ids, poison, effects = result["ids"], result["poison"], result["effects"]
    # Then no message is lost: each is either applied or in a DLQ
    assert set(effects) | poison == ids
    assert not set(effects) & poison
    # And the DLQs hold exactly the poison messages, once each (the stage-1 DLQ; the others are empty)
    assert result["dlq"] == {q: (sorted(poison) if q == "signals" else []) for q in result["dlq"]}
    # And there is no duplicate side effect, although duplicates did reach stage 2 (idempotency absorbed them)
    assert set(effects.values()) == {1}
    redelivered = sum(result["applied_calls"].values()) - len(effects)
    assert redelivered == len(result["duplicates"]) > 0
    # And the queues are empty, the counters add up
    assert all(not left for left in result["left"].values())
    stats = result["stats"]
    assert stats.redriven == len(poison)
    assert stats.received == stats.succeeded + stats.failed
    print(f"\nburst of {len(ids)}: {result['seconds']:.1f} s, {stats}")


def test_burst_through_a_two_stage_chain_loses_nothing_and_duplicates_nothing(cloud: LocalCloud) -> None:
    # Given 1,000 seeded messages with 1 % poison and 5 % transient failures at each stage
    # When they flow through stage 1 → bus → rule → stage 2 until the queues are empty
    result = _burst(cloud, 1_000, seed=20240101)
    _assert_burst(result)


@pytest.mark.soak
def test_burst_at_full_size(cloud: LocalCloud) -> None:
    # The 20,000 messages (`make soak`)
    result = _burst(cloud, 20_000, seed=7)
    _assert_burst(result)
