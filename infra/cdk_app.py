"""The CDK app: ``cdk synth|deploy -c env=<dev|staging|prod>``, or ``python infra/cdk_app.py`` (``DESK_ENV``).

Reads ``infra/config/<env>.json`` into the validated config model (a bad file stops synth with a
message per problem), reads ``topology.json`` by path (infra never imports runtime code), builds
the seven stacks with the project/environment/owner tags, and runs cdk-nag's AwsSolutions pack on
all of them: an unacknowledged error fails synth. Synth needs no credentials, Docker or network.
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
if (
    __name__ == "__main__"
):  # run as a script: import `infra` from the repository, and let no infra/*.py shadow a package
    sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != REPO / "infra"]
    sys.path.insert(0, str(REPO))

from aws_cdk import App, Environment, Stack, Tags, Validations  # noqa: E402
from cdk_nag import AwsSolutionsChecks  # noqa: E402

from infra.config_model import ConfigError, EnvConfig, load_config  # noqa: E402
from infra.constructs.function import FunctionEnvironment  # noqa: E402
from infra.stacks.api import ApiStack  # noqa: E402
from infra.stacks.data import DataStack  # noqa: E402
from infra.stacks.monitoring import MonitoringStack  # noqa: E402
from infra.stacks.network import NetworkStack  # noqa: E402
from infra.stacks.pipeline import PipelineStack  # noqa: E402
from infra.stacks.streaming import StreamingStack  # noqa: E402
from infra.stacks.trading import TradingStack  # noqa: E402

TOPOLOGY = REPO / "topology.json"
DEFAULT_ENV = "dev"
BUNDLING_STACKS = "aws:cdk:bundling-stacks"
# CDK renders Tags on these although CloudFormation rejects them (cfn-lint E3002).
UNTAGGABLE = ["AWS::RDS::DBProxyTargetGroup"]


def load_topology(path: Path = TOPOLOGY) -> dict[str, Any]:
    """``topology.json`` with its cross-references checked (the same checks as ``desk.topology``)."""
    topology: dict[str, Any] = json.loads(path.read_text())
    fns, queues = topology["functions"], topology["queues"]
    problems = [
        f"queue {q!r}: unknown consumer {s['consumer']!r}" for q, s in queues.items() if s["consumer"] not in fns
    ]
    problems += [
        f"rule {r!r}: unknown queue {s['queue']!r}" for r, s in topology["rules"].items() if s["queue"] not in queues
    ]
    problems += [
        f"schedule {n!r}: unknown function {s['function']!r}"
        for n, s in topology["schedules"].items()
        if s["function"] not in fns
    ]
    if problems:
        raise ConfigError(f"{path}: " + "; ".join(problems))
    return topology


@dataclass
class DeskApp:
    app: App
    config: EnvConfig
    stacks: dict[str, Stack]


def build_app(
    environment: str,
    *,
    app: App | None = None,
    nag: bool = True,
    asl_fallback_dir: Path | None = None,
    streamer_dockerfile: Path | None = None,
) -> DeskApp:
    """Every stack of ``environment`` in ``app`` (a new one by default), tagged and nag-checked."""
    config = load_config(environment)
    topology = load_topology()
    app = app or App()
    env = Environment(account=config.account, region=config.region)
    if config.account:
        # AZs are fixed by config: seed the lookup CDK would otherwise make with credentials.
        key = f"availability-zones:account={config.account}:region={config.region}"
        app.node.set_context(key, list(config.availability_zones))

    def name(stack: str) -> str:
        return f"{config.prefix}-{stack}"

    network = NetworkStack(app, name("network"), config=config, env=env)
    data = DataStack(
        app,
        name("data"),
        config=config,
        topology=topology,
        vpc=network.vpc,
        app_sg=network.app_sg,
        env=env,
    )
    functions_env = FunctionEnvironment(config=config, vpc=network.vpc, security_groups=[network.app_sg])
    functions_env.environment.update(
        {
            "DESK_DATABASE_URL": data.database_url,
            # No password anywhere: each new connection signs an IAM token for RDS Proxy with the role.
            "DESK_DATABASE_IAM_AUTH": "true",
            "DESK_REDIS_URL": data.redis_url,
            "DESK_IDEMPOTENCY_TABLE": data.idempotency.table_name,
            "DESK_UNIVERSE": json.dumps([u.model_dump(exclude_none=True) for u in config.universe]),
            # Names only: the functions read the values from Secrets Manager at run time.
            "DESK_VENUE_SECRETS": json.dumps({n.split("/")[-1]: f"{config.prefix}/{n}" for n in topology["secrets"]}),
        }
    )
    pipeline = PipelineStack(
        app, name("pipeline"), config=config, topology=topology, data=data, functions_env=functions_env, env=env
    )
    trading = TradingStack(
        app,
        name("trading"),
        config=config,
        topology=topology,
        data=data,
        pipeline=pipeline,
        functions_env=functions_env,
        asl_fallback_dir=asl_fallback_dir,
        env=env,
    )
    api = ApiStack(app, name("api"), config=config, data=data, pipeline=pipeline, functions_env=functions_env, env=env)
    streaming = StreamingStack(
        app,
        name("streaming"),
        config=config,
        vpc=network.vpc,
        app_sg=network.app_sg,
        data=data,
        environment={k: v for k, v in functions_env.environment.items() if k.startswith("DESK_")},
        dockerfile=streamer_dockerfile,
        env=env,
    )
    functions = {**pipeline.functions, **trading.task_functions, "api": api.function}
    monitoring = MonitoringStack(
        app,
        name("monitoring"),
        config=config,
        pipeline=pipeline,
        functions=functions,
        state_machines=trading.state_machines,
        env=env,
    )
    stacks: dict[str, Stack] = {
        "network": network,
        "data": data,
        "pipeline": pipeline,
        "trading": trading,
        "api": api,
        "streaming": streaming,
        "monitoring": monitoring,
    }
    for stack in stacks.values():
        for key, value in (("project", config.project), ("environment", config.environment), ("owner", config.owner)):
            Tags.of(stack).add(key, value, exclude_resource_types=UNTAGGABLE)
    if nag:
        Validations.of(app).add_plugins(AwsSolutionsChecks(app))
    return DeskApp(app=app, config=config, stacks=stacks)


def selected_environment(app: App) -> str:
    return str(app.node.try_get_context("env") or os.environ.get("DESK_ENV") or DEFAULT_ENV)


def main() -> int:
    outdir = os.environ.get("CDK_OUTDIR")  # set by the CDK CLI; plain runs write cdk.out/<env>
    probe = App(outdir=outdir) if outdir else None
    environment = selected_environment(probe) if probe else os.environ.get("DESK_ENV", DEFAULT_ENV)
    context = {}
    if os.environ.get("DESK_SKIP_BUNDLING") == "1":
        context[BUNDLING_STACKS] = []  # templates only: asset contents are not built (no pip downloads)
    app = probe or App(outdir=str(REPO / "cdk.out" / environment), context=context)
    try:
        desk = build_app(environment, app=app)
    except ConfigError as exc:
        print(f"synth stopped: {exc}", file=sys.stderr)
        return 2
    desk.app.synth()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
