"""Every environment synthesises; the templates hold the properties the desk relies on."""

from __future__ import annotations

import json

import pytest

from infra import packaging
from tests.infra import ENVIRONMENTS, Synthesised, all_resources, resources, synth

TOPOLOGY = json.loads((__import__("pathlib").Path(__file__).resolve().parents[2] / "topology.json").read_text())


@pytest.fixture(scope="module", params=ENVIRONMENTS)
def app(request: pytest.FixtureRequest) -> Synthesised:
    return synth(request.param)


def test_every_stack_synthesises_with_tags(app: Synthesised) -> None:
    # Given an environment, When synthesised, Then all seven stacks exist and resources carry the tags
    assert set(app.templates) == {"network", "data", "pipeline", "trading", "api", "streaming", "monitoring"}
    tagged = all_resources(app, "AWS::SQS::Queue") | all_resources(app, "AWS::Lambda::Function")
    for name, res in tagged.items():
        props = res["Properties"]
        if "lambda-desk" not in json.dumps(props.get("FunctionName", props.get("QueueName"))):
            continue  # CDK's own provider functions are raw resources the Tags aspect does not reach
        tags = {t["Key"]: t["Value"] for t in res["Properties"].get("Tags", [])}
        assert tags.get("environment") == app.environment, name
        assert {"project", "owner"} <= set(tags), name


def test_every_queue_has_a_dlq_encryption_and_its_visibility_timeout(app: Synthesised) -> None:
    queues = resources(app.templates["pipeline"], "AWS::SQS::Queue")
    by_name = {q["Properties"]["QueueName"]: q["Properties"] for q in queues.values()}
    factor = TOPOLOGY["defaults"]["visibility_timeout_factor"]
    for name, spec in TOPOLOGY["queues"].items():
        props = by_name[f"lambda-desk-{app.environment}-{name}"]
        consumer_timeout = TOPOLOGY["functions"][spec["consumer"]]["timeout"]
        assert props["VisibilityTimeout"] == factor * consumer_timeout
        assert "deadLetterTargetArn" in props["RedrivePolicy"]
        assert props["RedrivePolicy"]["maxReceiveCount"] >= 1
        assert props["SqsManagedSseEnabled"] is True
        assert f"lambda-desk-{app.environment}-{name}-dlq" in by_name
    assert all(p.get("SqsManagedSseEnabled") is True for p in by_name.values())


def test_event_sources_report_batch_failures_with_max_concurrency(app: Synthesised) -> None:
    mappings = resources(app.templates["pipeline"], "AWS::Lambda::EventSourceMapping")
    assert len(mappings) == len(TOPOLOGY["queues"])
    for m in mappings.values():
        assert m["Properties"]["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
        assert m["Properties"]["ScalingConfig"]["MaximumConcurrency"] >= 2


def test_functions_have_defaults_log_retention_and_one_role_each(app: Synthesised) -> None:
    functions = all_resources(app, "AWS::Lambda::Function")
    desk = {k: v for k, v in functions.items() if "lambda-desk" in str(v["Properties"].get("FunctionName", ""))}
    assert len(desk) >= len(TOPOLOGY["functions"]) + 1  # + api (+ migrate)
    roles = [json.dumps(f["Properties"]["Role"]) for f in desk.values()]
    assert len(set(roles)) == len(roles)
    for name, fn in desk.items():
        p = fn["Properties"]
        assert p["TracingConfig"] == {"Mode": "Active"}, name
        assert p["LoggingConfig"]["LogFormat"] == "JSON", name
        if p.get("PackageType") != "Image":
            assert p["Runtime"] == "python3.12", name
            assert len(p["Layers"]) == 2, name
    retention = {"dev": 7, "staging": 30, "prod": 90}[app.environment]
    groups = all_resources(app, "AWS::Logs::LogGroup")
    assert groups and all(g["Properties"].get("RetentionInDays") == retention for g in groups.values())


def test_functions_ship_as_topology_says_images_with_their_own_cmd(app: Synthesised) -> None:
    # Given every desk function, When synthesised, Then images run their handler as CMD from one image
    # asset, and zip functions carry the slim desk layer + Powertools with the same handler path
    functions = all_resources(app, "AWS::Lambda::Function")
    by_name = {}
    for fn in functions.values():
        name = fn["Properties"].get("FunctionName")
        if isinstance(name, str) and name.startswith(f"lambda-desk-{app.environment}-"):
            by_name[name.removeprefix(f"lambda-desk-{app.environment}-").replace("-", "_")] = fn["Properties"]
    expected = {name: packaging.package_of(name) for name in [*TOPOLOGY["functions"], "api"]}
    assert set(expected) <= set(by_name)
    image_uris = set()
    for name, package in expected.items():
        p = by_name[name]
        if package == "image":
            assert p["PackageType"] == "Image", name
            assert p["ImageConfig"]["Command"] == [f"functions.{name}.handler.lambda_handler"], name
            assert "Layers" not in p and "Runtime" not in p and "Handler" not in p, name
            image_uris.add(json.dumps(p["Code"]["ImageUri"], sort_keys=True))
        else:
            assert p.get("PackageType", "Zip") == "Zip", name
            assert p["Handler"] == f"functions.{name}.handler.lambda_handler", name
            assert len(p["Layers"]) == 2, name
    assert len(image_uris) == 1  # one Dockerfile, one context: one image, built once per deploy
    assert expected["api"] == "image" and expected["ingest_planner"] == "zip"


def test_no_wildcard_actions_and_data_resources_scoped(app: Synthesised) -> None:
    for name, policy in all_resources(app, "AWS::IAM::Policy").items():
        for st in policy["Properties"]["PolicyDocument"]["Statement"]:
            actions = st["Action"] if isinstance(st["Action"], list) else [st["Action"]]
            assert not any(a == "*" or a.endswith(":*") for a in actions), (name, actions)
            data_actions = [a for a in actions if a.split(":")[0] in {"dynamodb", "sqs", "secretsmanager", "rds-db"}]
            if data_actions:
                assert st["Resource"] != "*", (name, data_actions)


def test_data_layer(app: Synthesised) -> None:
    data = app.templates["data"]
    (cluster,) = resources(data, "AWS::RDS::DBCluster").values()
    scaling = cluster["Properties"]["ServerlessV2ScalingConfiguration"]
    assert scaling["MinCapacity"] == (0 if app.environment == "dev" else 0.5)
    assert cluster["Properties"]["StorageEncrypted"] is True
    (proxy,) = resources(data, "AWS::RDS::DBProxy").values()
    assert proxy["Properties"]["RequireTLS"] is True
    assert proxy["Properties"]["Auth"][0]["IAMAuth"] == "REQUIRED"
    (table,) = resources(data, "AWS::DynamoDB::GlobalTable").values()
    assert table["Properties"]["TimeToLiveSpecification"] == {"AttributeName": "expiration", "Enabled": True}
    replica = table["Properties"]["Replicas"][0]
    assert replica["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"] is True
    assert table["Properties"]["SSESpecification"]["SSEEnabled"] is True
    secrets = resources(data, "AWS::SecretsManager::Secret")
    names = {s["Properties"].get("Name") for s in secrets.values()}
    assert {f"lambda-desk-{app.environment}/{n}" for n in TOPOLOGY["secrets"]} <= names
    assert resources(data, "AWS::CloudFormation::CustomResource") or resources(data, "Custom::AWS")


def test_every_desk_process_reaches_postgres_by_iam_token_over_tls(app: Synthesised) -> None:
    # The proxy requires IAM auth and TLS, so every function and the streamer task that is given the
    # database URL must sign tokens (DESK_DATABASE_IAM_AUTH) and the URL must ask for TLS, with no password.
    environments = [
        fn["Properties"].get("Environment", {}).get("Variables", {})
        for fn in all_resources(app, "AWS::Lambda::Function").values()
    ]
    for task in all_resources(app, "AWS::ECS::TaskDefinition").values():
        for container in task["Properties"]["ContainerDefinitions"]:
            environments.append({e["Name"]: e["Value"] for e in container.get("Environment", [])})
    with_db = [env for env in environments if "DESK_DATABASE_URL" in env]
    assert len(with_db) >= 5
    for env in with_db:
        assert env.get("DESK_DATABASE_IAM_AUTH") == "true"
        url = json.dumps(env["DESK_DATABASE_URL"])
        assert "sslmode=require" in url and "desk_admin@" in url and "desk_admin:" not in url


def test_secret_values_never_in_function_environment(app: Synthesised) -> None:
    for name, fn in all_resources(app, "AWS::Lambda::Function").items():
        env = fn["Properties"].get("Environment", {}).get("Variables", {})
        for key, value in env.items():
            assert not any(w in key.upper() for w in ("API_KEY", "PASSWORD", "SECRET_VALUE")), (name, key)
            assert "SecretString" not in json.dumps(value), (name, key)


def test_network_endpoints_and_egress(app: Synthesised) -> None:
    net = app.templates["network"]
    endpoints = resources(net, "AWS::EC2::VPCEndpoint").values()
    services = json.dumps([e["Properties"]["ServiceName"] for e in endpoints])
    assert "dynamodb" in services
    if app.environment != "dev":  # dev trades interface endpoints for its NAT instance (config)
        for svc in ("sqs", "events", "states", "secretsmanager", "sns", "logs", "xray"):
            assert f".{svc}" in services, svc
    nat_gateways = resources(net, "AWS::EC2::NatGateway")
    assert len(nat_gateways) == {"dev": 0, "staging": 1, "prod": 2}[app.environment]


def test_api_authorizer_on_every_route_but_health(app: Synthesised) -> None:
    routes = resources(app.templates["api"], "AWS::ApiGatewayV2::Route")
    keys = {r["Properties"]["RouteKey"]: r["Properties"] for r in routes.values()}
    assert {"$default", "ANY /{proxy+}", "GET /v1/health"} <= set(keys)
    for key, props in keys.items():
        if key == "GET /v1/health":
            assert props.get("AuthorizationType", "NONE") == "NONE"
        else:
            assert props["AuthorizationType"] == "JWT", key
    (stage,) = resources(app.templates["api"], "AWS::ApiGatewayV2::Stage").values()
    assert stage["Properties"]["DefaultRouteSettings"]["ThrottlingRateLimit"] > 0
    assert "GET /v1/health" in stage["Properties"]["RouteSettings"]


def test_state_machines_logging_tracing_substitutions(app: Synthesised) -> None:
    machines = resources(app.templates["trading"], "AWS::StepFunctions::StateMachine")
    assert len(machines) == len(TOPOLOGY["state_machines"])
    for sm in machines.values():
        p = sm["Properties"]
        assert p["TracingConfiguration"] == {"Enabled": True}
        assert p["LoggingConfiguration"]["Level"] == "ALL"
        assert "${" not in json.dumps(p.get("DefinitionSubstitutions", {}))


def test_monitoring_alarms_cover_every_dlq_and_desk_metrics(app: Synthesised) -> None:
    alarms = resources(app.templates["monitoring"], "AWS::CloudWatch::Alarm")
    text = json.dumps(alarms)
    assert text.count("ApproximateNumberOfMessagesVisible") >= len(TOPOLOGY["queues"])
    for metric in ("Errors", "Throttles", "ExecutionsFailed", "QuoteAgeSeconds", "ReconciliationDrift", "RiskBreaches"):
        assert metric in text, metric
    assert resources(app.templates["monitoring"], "AWS::CloudWatch::Dashboard")
    assert resources(app.templates["streaming"], "AWS::ECS::Service")


def test_the_api_function_may_invoke_itself_for_backtest_jobs(app: Synthesised) -> None:
    # Large backtests are asynchronous self-invocations of the API function (desk.api.jobs)
    policies = resources(app.templates["api"], "AWS::IAM::Policy")
    statements = [st for p in policies.values() for st in p["Properties"]["PolicyDocument"]["Statement"]]
    invoke = [st for st in statements if st["Action"] == "lambda:InvokeFunction"]
    assert invoke, "the API function cannot invoke itself"
    assert all(r != "*" for st in invoke for r in st["Resource"])
