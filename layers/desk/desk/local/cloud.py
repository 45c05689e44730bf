"""The local cloud: moto in process, built from ``topology.json``, with handlers run in process.

:class:`LocalCloud` starts moto (Step Functions executing ASL for real, Lambda without Docker),
then creates every resource the manifest declares: the bus; each queue with its DLQ (redrive
``maxReceiveCount`` from the defaults, visibility timeout from the topology); each rule with its
SQS target; the tables (with TTL); topics; secrets; the state machines whose ASL files exist; and
a Lambda function per function, whose invokes the :class:`~desk.local.lambda_shim.LambdaShim`
sends to the in-process handler module. It points the settings at what it built (``DESK_*``
variables) and resets the cached clients and ports, so handlers run unchanged.

Names are the manifest's logical names plus an optional ``prefix`` (the stacks prefix per
environment). Every function is registered as a zip function: moto cannot run image functions,
and the shim runs the handler module whichever way it ships.
"""

from __future__ import annotations

import io
import json
import os
import zipfile
from collections.abc import Iterator, Mapping
from contextlib import ExitStack, contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

from desk import wiring
from desk.aws import clients
from desk.clock import FixedClock
from desk.local.dispatcher import Dispatcher, QueueBinding
from desk.local.lambda_shim import Handler, LambdaShim
from desk.local.scheduler import Scheduler
from desk.settings import get_settings
from desk.topology import MANIFEST, Topology, topology

REGION = "us-east-1"
ACCOUNT_ID = "123456789012"  # moto's default account
_LAMBDA_TRUST = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}],
}
_DLQ_RETENTION_S = 14 * 24 * 3600  # the SQS maximum: time to inspect and redrive


class LocalCloud:
    """Start with ``with LocalCloud() as cloud:`` (or :meth:`start` / :meth:`stop`)."""

    def __init__(self, topo: Topology | None = None, *, prefix: str = "", root: Path | None = None) -> None:
        self.topology = topo or topology()
        self.prefix = prefix
        self.root = root or MANIFEST.parent
        self.shim = LambdaShim(ACCOUNT_ID, REGION)
        self.bus_name = ""
        self.bus_arn = ""
        self.queue_urls: dict[str, str] = {}
        self.queue_arns: dict[str, str] = {}
        self.dlq_urls: dict[str, str] = {}
        self.rule_arns: dict[str, str] = {}
        self.function_arns: dict[str, str] = {}
        self.table_names: dict[str, str] = {}
        self.topic_arns: dict[str, str] = {}
        self.secret_arns: dict[str, str] = {}
        self.state_machine_arns: dict[str, str] = {}
        self._stack: ExitStack | None = None
        self._saved_env: dict[str, str | None] = {}

    # lifecycle -----------------------------------------------------------------------------------
    def __enter__(self) -> LocalCloud:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> LocalCloud:
        from moto import mock_aws

        stack = ExitStack()
        self._stack = stack
        # Fake credentials first: boto3 must never find (or use) real ones here.
        self._set_env({"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_SESSION_TOKEN": "x"})
        self._set_env({"AWS_DEFAULT_REGION": REGION, "DESK_REGION": REGION})
        config: Any = {"stepfunctions": {"execute_state_machine": True}, "lambda": {"use_docker": False}}
        stack.enter_context(mock_aws(config=config))
        stack.enter_context(self.shim.installed())
        self._refresh()
        try:
            self._build()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        if self._stack is not None:
            self._stack.close()
            self._stack = None
        for name, value in self._saved_env.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        self._saved_env.clear()
        self._refresh()

    def _set_env(self, values: Mapping[str, str]) -> None:
        for name, value in values.items():
            self._saved_env.setdefault(name, os.environ.get(name))
            os.environ[name] = value

    def _refresh(self) -> None:
        # Settings, clients and ports are cached per process; they must see the new environment.
        get_settings.cache_clear()
        clients.reset()
        wiring.reset()

    # building ------------------------------------------------------------------------------------
    def name(self, logical: str) -> str:
        return f"{self.prefix}{logical}"

    def _build(self) -> None:
        topo = self.topology
        events = clients.client("events")
        self.bus_name = self.name(topo.bus)
        self.bus_arn = events.create_event_bus(Name=self.bus_name)["EventBusArn"]
        for queue in topo.queues:
            self._create_queue(queue)
        for rule, spec in topo.rules.items():
            pattern = json.dumps({"detail-type": list(spec.detail_types)})
            arn = events.put_rule(Name=self.name(rule), EventBusName=self.bus_name, EventPattern=pattern)["RuleArn"]
            target = {"Id": spec.queue, "Arn": self.queue_arns[spec.queue]}
            events.put_targets(Rule=self.name(rule), EventBusName=self.bus_name, Targets=[target])
            self.rule_arns[rule] = arn
        self._create_functions()
        self._create_tables()
        sns, secrets = clients.client("sns"), clients.client("secretsmanager")
        for topic in topo.topics:
            self.topic_arns[topic] = sns.create_topic(Name=self.name(topic))["TopicArn"]
        for secret in topo.secrets:
            self.secret_arns[secret] = secrets.create_secret(Name=self.name(secret), SecretString="{}")["ARN"]
        for machine, machine_spec in topo.state_machines.items():
            path = self.root / machine_spec.definition
            if path.exists():
                self.create_state_machine(machine, path.read_text(), machine_spec.type)
        self._set_env(self.environment())
        self._refresh()

    def _create_queue(self, queue: str) -> None:
        sqs = clients.client("sqs")
        dlq_url = sqs.create_queue(
            QueueName=self.name(self.topology.dlq_name(queue)),
            Attributes={"MessageRetentionPeriod": str(_DLQ_RETENTION_S)},
        )["QueueUrl"]
        redrive = {
            "deadLetterTargetArn": self._queue_arn(dlq_url),
            "maxReceiveCount": self.topology.defaults.max_receive_count,
        }
        url = sqs.create_queue(
            QueueName=self.name(queue),
            Attributes={
                "VisibilityTimeout": str(self.topology.visibility_timeout(queue)),
                "RedrivePolicy": json.dumps(redrive),
            },
        )["QueueUrl"]
        self.queue_urls[queue], self.dlq_urls[queue] = url, dlq_url
        self.queue_arns[queue] = self._queue_arn(url)

    def _queue_arn(self, url: str) -> str:
        attrs = clients.client("sqs").get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])
        return str(attrs["Attributes"]["QueueArn"])

    def _create_functions(self) -> None:
        role = clients.client("iam").create_role(
            RoleName=self.name("desk-local-lambda"), AssumeRolePolicyDocument=json.dumps(_LAMBDA_TRUST)
        )["Role"]["Arn"]
        code = io.BytesIO()
        with zipfile.ZipFile(code, "w") as archive:  # never run: the shim calls the module in process
            stub = "def lambda_handler(event, context):\n    raise RuntimeError('local shim only')\n"
            archive.writestr("handler.py", stub)
        lam = clients.client("lambda")
        for function, spec in self.topology.functions.items():
            arn = lam.create_function(
                FunctionName=self.name(function),
                Runtime="python3.12",
                Role=role,
                Handler="handler.lambda_handler",
                Code={"ZipFile": code.getvalue()},
                Timeout=spec.timeout,
                MemorySize=spec.memory,
            )["FunctionArn"]
            self.function_arns[function] = arn
            self.shim.register(self.name(function), spec.module, memory=spec.memory, timeout=spec.timeout)

    def _create_tables(self) -> None:
        dynamodb = clients.client("dynamodb")
        for table, spec in self.topology.tables.items():
            name = self.name(table)
            dynamodb.create_table(
                TableName=name,
                KeySchema=[{"AttributeName": spec.partition_key, "KeyType": "HASH"}],
                AttributeDefinitions=[{"AttributeName": spec.partition_key, "AttributeType": "S"}],
                BillingMode="PAY_PER_REQUEST",
            )
            if spec.ttl_attribute:
                dynamodb.update_time_to_live(
                    TableName=name, TimeToLiveSpecification={"Enabled": True, "AttributeName": spec.ttl_attribute}
                )
            self.table_names[table] = name

    def create_state_machine(
        self, machine: str, definition: str, type_: str = "STANDARD", substitutions: Mapping[str, str] | None = None
    ) -> str:
        """Create a state machine from ASL text, filling its ``${placeholders}``.

        ARN placeholders use the CDK construct's names (``${OrderTasksFunctionArn}``,
        ``${ReconciliationStateMachineArn}``; ``${<function>_arn}`` also works); the other values are
        the ``local`` entries of ``statemachines/substitutions*.json``, then ``substitutions``.
        """
        values = {f"{f}_arn": arn for f, arn in self.function_arns.items()}
        values |= {f"{_pascal(f)}FunctionArn": arn for f, arn in self.function_arns.items()}
        values |= {f"{_pascal(m)}StateMachineArn": arn for m, arn in self.state_machine_arns.items()}
        values |= local_substitutions(self.root)
        values |= dict(substitutions or {})
        for key, value in values.items():
            definition = definition.replace("${" + key + "}", value)
        arn = clients.client("stepfunctions").create_state_machine(
            name=self.name(machine),
            definition=definition,
            roleArn=f"arn:aws:iam::{ACCOUNT_ID}:role/{self.name('desk-local-sfn')}",
            type=type_,
        )["stateMachineArn"]
        self.state_machine_arns[machine] = str(arn)
        return str(arn)

    def environment(self) -> dict[str, str]:
        """The ``DESK_*`` settings that point handlers at this cloud."""
        env = {"DESK_ENVIRONMENT": "local", "DESK_EVENT_BUS_NAME": self.bus_name}
        if "idempotency" in self.table_names:
            env["DESK_IDEMPOTENCY_TABLE"] = self.table_names["idempotency"]
        if "alerts" in self.topic_arns:
            env["DESK_ALERTS_TOPIC_ARN"] = self.topic_arns["alerts"]
        if "order-placement" in self.state_machine_arns:
            env["DESK_ORDER_STATE_MACHINE_ARN"] = self.state_machine_arns["order-placement"]
        if "ingest-jobs" in self.queue_urls:
            env["DESK_INGEST_QUEUE_URL"] = self.queue_urls["ingest-jobs"]
        return env

    # running -------------------------------------------------------------------------------------
    def register(self, function: str, handler: Handler | str) -> None:
        """Replace a function's handler (tests register callables; the default is the module)."""
        spec = self.topology.functions[function]
        self.shim.register(self.name(function), handler, memory=spec.memory, timeout=spec.timeout)

    def dispatcher(self) -> Dispatcher:
        """A dispatcher over every queue of the manifest, invoking consumers through the shim."""
        bindings = [
            QueueBinding(
                name=q,
                url=self.queue_urls[q],
                arn=self.queue_arns[q],
                function=self.name(spec.consumer),
                batch_size=spec.batch_size,
                dlq_url=self.dlq_urls[q],
            )
            for q, spec in self.topology.queues.items()
        ]
        return Dispatcher(bindings, self.shim.call, region=REGION)

    def scheduler(self, start: datetime) -> Scheduler:
        """The manifest's schedules on a simulated clock starting at ``start``."""
        schedules = {
            self.name(n): s.model_copy(update={"function": self.name(s.function)})
            for n, s in self.topology.schedules.items()
        }
        return Scheduler(schedules, FixedClock(start), self.shim.call, REGION, ACCOUNT_ID)

    def wait_for_executions(self, timeout: float = 30.0) -> None:
        """Join moto's Step Functions worker threads (each execution runs in one)."""
        from moto.stepfunctions.parser.utils import TMP_THREADS

        for thread in list(TMP_THREADS):
            thread.join(timeout)
            if thread.is_alive():
                raise TimeoutError("a Step Functions execution is still running")


@contextmanager
def local_cloud(**kwargs: Any) -> Iterator[LocalCloud]:
    with LocalCloud(**kwargs) as cloud:
        yield cloud


def _pascal(name: str) -> str:
    """``order_tasks`` / ``order-placement`` -> ``OrderTasks`` / ``OrderPlacement`` (the CDK construct's naming)."""
    return "".join(part.capitalize() for part in name.replace("-", "_").split("_"))


def local_substitutions(root: Path | None = None) -> dict[str, str]:
    """The ``local`` values of every ``statemachines/substitutions*.json`` (one file per state machine)."""
    folder = (root or Path(__file__).resolve().parents[4]) / "statemachines"
    values: dict[str, str] = {}
    for path in sorted(folder.glob("substitutions*.json")):
        for machine, envs in json.loads(path.read_text()).items():
            if machine.startswith("$") or not isinstance(envs, dict):
                continue
            values |= {k: str(v) for k, v in envs.get("local", {}).items()}
    return values
