"""The local cloud: every manifest resource exists, routing follows the rules, invokes reach handlers."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from desk.aws import clients
from desk.aws.executions import ExecutionConflict, start_execution
from desk.domain.errors import PermanentVenueError
from desk.events import Envelope, new_event
from desk.local.cloud import LocalCloud
from desk.settings import get_settings
from desk.topology import topology
from desk.wiring import event_bus

T0 = datetime(2024, 1, 1, tzinfo=UTC)
BARS = {
    "venue": "binance",
    "symbol": "BTC/USDT",
    "timeframe": "1m",
    "count": 1,
    "first_ts": T0.isoformat(),
    "last_ts": T0.isoformat(),
}


@pytest.fixture
def cloud() -> Iterator[LocalCloud]:
    with LocalCloud() as running:
        yield running


def _drain(url: str) -> list[dict[str, Any]]:
    sqs, out = clients.client("sqs"), []
    while batch := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", []):
        out += batch
    return out


def test_every_resource_of_the_manifest_exists(cloud: LocalCloud) -> None:
    # Given the manifest, read independently of the cloud
    topo = topology()
    sqs, events = clients.client("sqs"), clients.client("events")
    # Then the bus, each queue and DLQ (with its redrive and visibility timeout) exist
    events.describe_event_bus(Name=topo.bus)
    for queue in topo.queues:
        url = sqs.get_queue_url(QueueName=queue)["QueueUrl"]
        dlq_url = sqs.get_queue_url(QueueName=topo.dlq_name(queue))["QueueUrl"]
        attrs = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
        dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        assert int(attrs["VisibilityTimeout"]) == topo.visibility_timeout(queue)
        redrive = json.loads(attrs["RedrivePolicy"])
        assert redrive["deadLetterTargetArn"] == dlq_arn
        assert int(redrive["maxReceiveCount"]) == topo.defaults.max_receive_count
    # And each rule matches its detail types and targets its queue
    for rule, spec in topo.rules.items():
        described = events.describe_rule(Name=rule, EventBusName=topo.bus)
        assert json.loads(described["EventPattern"]) == {"detail-type": list(spec.detail_types)}
        targets = events.list_targets_by_rule(Rule=rule, EventBusName=topo.bus)["Targets"]
        assert [t["Arn"] for t in targets] == [cloud.queue_arns[spec.queue]]
    # And every function, table (with TTL), topic and secret
    lam, dynamodb = clients.client("lambda"), clients.client("dynamodb")
    for function, fspec in topo.functions.items():
        config = lam.get_function(FunctionName=function)["Configuration"]
        assert (config["Timeout"], config["MemorySize"]) == (fspec.timeout, fspec.memory)
    for table, tspec in topo.tables.items():
        key = dynamodb.describe_table(TableName=table)["Table"]["KeySchema"]
        assert key == [{"AttributeName": tspec.partition_key, "KeyType": "HASH"}]
        ttl = dynamodb.describe_time_to_live(TableName=table)["TimeToLiveDescription"]
        assert ttl["AttributeName"] == tspec.ttl_attribute
    topics = {t["TopicArn"].rsplit(":", 1)[1] for t in clients.client("sns").list_topics()["Topics"]}
    assert topics == set(topo.topics)
    secrets = {s["Name"] for s in clients.client("secretsmanager").list_secrets()["SecretList"]}
    assert secrets == set(topo.secrets)


def test_settings_point_at_the_local_resources(cloud: LocalCloud) -> None:
    settings = get_settings()
    assert settings.event_bus_name == topology().bus
    assert settings.idempotency_table == cloud.table_names["idempotency"]
    assert settings.alerts_topic_arn == cloud.topic_arns["alerts"]
    assert settings.ingest_queue_url == cloud.queue_urls["ingest-jobs"]


@pytest.mark.parametrize("detail_type", ["bars.ingested", "signal.generated", "fill.recorded", "quote.stale"])
def test_an_event_lands_in_exactly_the_queues_the_rules_name(cloud: LocalCloud, detail_type: str) -> None:
    # Given one event of each routed shape, published through the desk's own bus adapter
    data = {
        "bars.ingested": BARS,
        "signal.generated": {
            "signal_id": "s-1",
            "strategy": "trend",
            "venue": "binance",
            "symbol": "BTC/USDT",
            "timeframe": "1m",
            "ts": T0.isoformat(),
            "target_weight": 0.1,
            "strength": 0.5,
        },
        "fill.recorded": {
            "venue": "binance",
            "venue_trade_id": "t-1",
            "client_order_id": "c-1",
            "symbol": "BTC/USDT",
            "side": "buy",
            "quantity": "0.1",
            "price": "40000",
            "occurred_at": T0.isoformat(),
        },
        "quote.stale": None,
    }[detail_type]
    # quote.stale has no rule: it must land nowhere
    event = _quote_stale() if data is None else new_event(detail_type, data, occurred_at=T0)
    # When it is published
    event_bus().publish([event])
    # Then it is in exactly queues_for(detail_type), once each, and nowhere else
    landed = {
        q: [Envelope.from_sqs_record({"body": m["Body"]}).id for m in _drain(u)] for q, u in cloud.queue_urls.items()
    }
    expected = topology().queues_for(detail_type)
    assert {q: ids for q, ids in landed.items() if ids} == {q: [event.id] for q in expected}


def _quote_stale() -> Envelope:
    data = {"venue": "binance", "symbol": "BTC/USDT", "last_quote_at": None, "detected_at": T0.isoformat()}
    return new_event("quote.stale", data | {"max_age_seconds": 2.0}, occurred_at=T0)


def test_a_boto3_invoke_reaches_the_in_process_handler(cloud: LocalCloud) -> None:
    # Given a callable registered for the risk function
    seen: list[tuple[Any, str, int]] = []

    def handler(event: Any, context: Any) -> dict[str, Any]:
        seen.append((event, context.function_name, context.memory_limit_in_mb))
        return {"ok": True, "remaining": context.get_remaining_time_in_millis() > 0}

    cloud.register("risk", handler)
    # When it is invoked through the Lambda API (by ARN, as Step Functions would)
    response = clients.client("lambda").invoke(FunctionName=cloud.function_arns["risk"], Payload=b'{"x": 1}')
    # Then the handler ran with the event and a Lambda-like context, and its result is the payload
    assert seen == [({"x": 1}, "risk", topology().functions["risk"].memory)]
    assert json.loads(response["Payload"].read()) == {"ok": True, "remaining": True}
    assert "FunctionError" not in response


def test_a_handler_exception_is_a_function_error_named_by_its_class(cloud: LocalCloud) -> None:
    def handler(event: Any, context: Any) -> None:
        raise PermanentVenueError("rejected")

    cloud.register("risk", handler)
    response = clients.client("lambda").invoke(FunctionName="risk", Payload=b"{}")
    assert response["FunctionError"] == "Unhandled"
    assert json.loads(response["Payload"].read()) == {"errorType": "PermanentVenueError", "errorMessage": "rejected"}


ASL = {
    "StartAt": "Price",
    "States": {
        "Price": {
            "Type": "Task",
            "Resource": "arn:aws:states:::lambda:invoke",
            "Parameters": {"FunctionName": "${cost_optimiser_arn}", "Payload.$": "$"},
            "ResultSelector": {"plan.$": "$.Payload"},
            "Catch": [{"ErrorEquals": ["PermanentVenueError"], "ResultPath": "$.error", "Next": "Rejected"}],
            "End": True,
        },
        "Rejected": {"Type": "Pass", "Result": {"outcome": "rejected"}, "End": True},
    },
}


def test_a_state_machine_task_runs_the_registered_handler(cloud: LocalCloud) -> None:
    # Given a tiny ASL whose Task calls the cost optimiser, and a handler that prices the input
    calls: list[Any] = []

    def handler(event: Any, context: Any) -> dict[str, Any]:
        calls.append(event)
        if event.get("reject"):
            raise PermanentVenueError("no")
        return {"slices": event["qty"] * 2}

    cloud.register("cost_optimiser", handler)
    machine = cloud.create_state_machine("tiny", json.dumps(ASL))
    sfn = clients.client("stepfunctions")
    # When executions start (named by plan id) and run in moto
    ok = start_execution(machine, "plan-ok", {"qty": 3})
    rejected = start_execution(machine, "plan-rejected", {"qty": 1, "reject": True})
    cloud.wait_for_executions()
    # Then the handler ran once for each (moto runs executions on threads: the order of calls is not fixed),
    # the result flowed through ResultSelector, and Catch matched the error name
    assert sorted(calls, key=lambda event: event["qty"]) == [{"qty": 1, "reject": True}, {"qty": 3}]
    done = sfn.describe_execution(executionArn=ok)
    assert (done["status"], json.loads(done["output"])) == ("SUCCEEDED", {"plan": {"slices": 6}})
    assert json.loads(sfn.describe_execution(executionArn=rejected)["output"]) == {"outcome": "rejected"}
    # And a repeated start with the same name and input is a no-op (the handler does not run again)
    assert start_execution(machine, "plan-ok", {"qty": 3}) == ok
    cloud.wait_for_executions()
    assert len(calls) == 2
    # While the same name with another input is refused
    with pytest.raises(ExecutionConflict):
        start_execution(machine, "plan-ok", {"qty": 4})


def test_the_topology_schedules_invoke_their_functions(cloud: LocalCloud) -> None:
    # Given recording handlers for the scheduled functions
    calls: list[tuple[str, str]] = []
    for function in ("ingest_planner", "risk", "correlation"):
        cloud.register(function, lambda e, c, f=function: calls.append((f, e["time"])))
    scheduler = cloud.scheduler(T0)
    # When ten simulated minutes pass
    scheduler.advance(T0 + timedelta(minutes=10))
    # Then ingest ran every minute and risk every five, in time order
    assert [c for c in calls if c[0] == "risk"] == [("risk", "2024-01-01T00:05:00Z"), ("risk", "2024-01-01T00:10:00Z")]
    assert len([c for c in calls if c[0] == "ingest_planner"]) == 10
    assert [t for _, t in calls] == sorted(t for _, t in calls)


def test_stopping_restores_the_environment() -> None:
    # Given the settings before the cloud starts
    before = get_settings().event_bus_name
    with LocalCloud(prefix="t1-") as cloud:
        # Then inside, names carry the prefix
        assert get_settings().event_bus_name == "t1-desk-events" == cloud.bus_name
    # And after, the settings are what they were
    assert get_settings().event_bus_name == before
