"""One Lambda function with the desk's defaults, zip or container image.

Defaults live here once: Python 3.12, the configured architecture, JSON logs into a log group with
the environment's retention, X-Ray tracing, and one role per function holding only what this
function is granted (no managed policies). Zip functions carry the slim desk layer (no venue SDKs,
no quant stack: infra/packaging.py ``DESK_LAYER_ROOTS``) and AWS's published Powertools layer; every
function that imports a venue adapter or the quant layer is an image from the one Dockerfile
(quant + desk + venue SDKs + Powertools + numba caches, 10 GB limit), each with its own CMD
``functions.<name>.handler.lambda_handler``. ``package`` comes from topology.json
(``packaging.package_of``). Neither path needs Docker at synth: zip assets are bundled locally,
images only at deploy.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jsii
from aws_cdk import (
    Acknowledgment,
    Annotations,
    AssetHashType,
    BundlingOptions,
    DockerImage,
    Duration,
    IgnoreMode,
    ILocalBundling,
    RemovalPolicy,
    Stack,
    Validations,
)
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_ecr_assets as ecr_assets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from constructs import Construct, IConstruct

from infra import packaging
from infra.config_model import EnvConfig

REPO = packaging.REPO
DOCKERFILE = "infra/docker/Dockerfile"
# The image's build context is the repository; only these paths reach Docker (and cdk.out).
IMAGE_CONTEXT_EXCLUDE = [
    "*",
    "!layers/quant/quant",
    "!layers/desk/desk",
    "!functions",
    "!infra/docker",
    "!pyproject.toml",
    "!uv.lock",
    "**/__pycache__",
]
POWERTOOLS_ACCOUNT = "017000801446"


@jsii.implements(ILocalBundling)
class _LocalStep:
    """A bundling step run in this process (no Docker): ``build(output_dir)``."""

    def __init__(self, build: Any) -> None:
        self._build = build

    def try_bundle(self, output_dir: str, *_: Any, **__: Any) -> bool:
        self._build(Path(output_dir))
        return True


def _local_bundling(build: Any) -> BundlingOptions:
    # The image is never pulled: local bundling always succeeds, so CDK never falls back to Docker.
    return BundlingOptions(image=DockerImage.from_registry("local-bundling-only"), local=_LocalStep(build))


@dataclass
class FunctionEnvironment:
    """What every function of an environment shares; built once per stack by the stack."""

    config: EnvConfig
    vpc: ec2.IVpc | None = None
    security_groups: list[ec2.ISecurityGroup] = field(default_factory=list)
    environment: dict[str, str] = field(default_factory=dict)
    _layers: dict[str, lambda_.ILayerVersion] = field(default_factory=dict)

    @property
    def architecture(self) -> lambda_.Architecture:
        return lambda_.Architecture.ARM_64 if self.config.architecture == "arm64" else lambda_.Architecture.X86_64

    def desk_layer(self, scope: Construct) -> lambda_.ILayerVersion:
        """The desk layer, one LayerVersion per stack (same asset, uploaded once)."""
        stack = Stack.of(scope)
        key = stack.node.path
        if key not in self._layers:
            arch = self.config.architecture
            # The roots are part of the hash: shrinking or growing the layer is a new layer version.
            digest = packaging.tree_digest([REPO / "layers" / "desk" / "desk", packaging.LOCK])
            digest += "-" + packaging.requirements_digest(packaging.DESK_LAYER_ROOTS, arch)
            self._layers[key] = lambda_.LayerVersion(
                stack,
                "DeskLayer",
                code=lambda_.Code.from_asset(
                    str(REPO / "layers" / "desk"),
                    asset_hash_type=AssetHashType.CUSTOM,
                    asset_hash=f"desk-layer-{arch}-{digest}",
                    bundling=_local_bundling(lambda out: packaging.build_desk_layer(out, arch)),
                ),
                compatible_runtimes=[lambda_.Runtime.PYTHON_3_12],
                compatible_architectures=[self.architecture],
                description="desk runtime and its slim pinned dependencies (uv.lock); no venue SDKs, no quant",
                removal_policy=RemovalPolicy.RETAIN,
            )
        return self._layers[key]

    def powertools_layer(self, scope: Construct) -> lambda_.ILayerVersion:
        stack = Stack.of(scope)
        key = f"powertools:{stack.node.path}"
        if key in self._layers:
            return self._layers[key]
        arch = "arm64" if self.config.architecture == "arm64" else "x86_64"
        arn = (
            f"arn:{stack.partition}:lambda:{stack.region}:{POWERTOOLS_ACCOUNT}:layer:"
            f"AWSLambdaPowertoolsPythonV3-python312-{arch}:{self.config.powertools_layer_version}"
        )
        self._layers[key] = lambda_.LayerVersion.from_layer_version_arn(stack, "PowertoolsLayer", arn)
        return self._layers[key]


@dataclass(frozen=True)
class FunctionSpec:
    name: str
    timeout: int
    memory: int
    package: str  # "zip" | "image"
    in_vpc: bool = True
    environment: dict[str, str] = field(default_factory=dict)
    # Infra-owned glue (e.g. the migration custom resource): inline code + the desk layer.
    inline_code: str | None = None


class DeskFunction(Construct):
    """A function with the desk's defaults. ``function`` and ``role`` are the resources to grant on."""

    def __init__(self, scope: Construct, construct_id: str, *, spec: FunctionSpec, env: FunctionEnvironment) -> None:
        super().__init__(scope, construct_id)
        self.spec = spec
        self._env = env
        self.function_name = f"{env.config.prefix}-{spec.name.replace('_', '-')}"
        self.log_group = self._build_log_group()
        self.role = self._build_role()
        self.function = self._build_function()
        self._acknowledge()

    def _build_log_group(self) -> logs.LogGroup:
        return logs.LogGroup(
            self,
            "Logs",
            log_group_name=f"/aws/lambda/{self.function_name}",
            retention=retention(self._env.config.log_retention_days),
            removal_policy=removal(self._env.config),
        )

    def _build_role(self) -> iam.Role:
        role = iam.Role(
            self,
            "Role",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description=f"{self.function_name}: least privilege, grants added by its stack",
        )
        role.add_to_policy(
            iam.PolicyStatement(
                actions=["logs:CreateLogStream", "logs:PutLogEvents"],
                resources=[self.log_group.log_group_arn],
            )
        )
        if self.spec.in_vpc and self._env.vpc is not None:
            # The ENI actions accept no resource-level restriction (EC2 API), hence "*".
            role.add_to_policy(
                iam.PolicyStatement(
                    actions=[
                        "ec2:CreateNetworkInterface",
                        "ec2:DescribeNetworkInterfaces",
                        "ec2:DeleteNetworkInterface",
                        "ec2:AssignPrivateIpAddresses",
                        "ec2:UnassignPrivateIpAddresses",
                    ],
                    resources=["*"],
                )
            )
        return role

    def _common(self) -> dict[str, Any]:
        cfg = self._env.config
        vpc = self._env.vpc if self.spec.in_vpc else None
        env = {
            "POWERTOOLS_SERVICE_NAME": self.spec.name,
            "POWERTOOLS_METRICS_NAMESPACE": "LambdaDesk",
            "DESK_ENVIRONMENT": cfg.environment,
            "DESK_LOG_LEVEL": cfg.log_level,
            **self._env.environment,
            **self.spec.environment,
        }
        return {
            "function_name": self.function_name,
            "timeout": Duration.seconds(self.spec.timeout),
            "memory_size": self.spec.memory,
            "architecture": self._env.architecture,
            "role": self.role,
            "tracing": lambda_.Tracing.ACTIVE,
            "logging_format": lambda_.LoggingFormat.JSON,
            "application_log_level_v2": lambda_.ApplicationLogLevel(
                cfg.log_level if cfg.log_level != "WARNING" else "WARN"
            ),
            "system_log_level_v2": lambda_.SystemLogLevel.WARN,
            "log_group": self.log_group,
            "environment": env,
            "vpc": vpc,
            "vpc_subnets": ec2.SubnetSelection(subnet_group_name="app") if vpc else None,
            "security_groups": self._env.security_groups if vpc else None,
        }

    def _build_function(self) -> lambda_.Function:
        if self.spec.package == "image":
            return lambda_.DockerImageFunction(self, "Function", code=self._image_code(), **self._common())
        name = self.spec.name
        layers = [self._env.desk_layer(self), self._env.powertools_layer(self)]
        if self.spec.inline_code is not None:
            return lambda_.Function(
                self,
                "Function",
                runtime=lambda_.Runtime.PYTHON_3_12,
                handler="index.handler",
                code=lambda_.Code.from_inline(self.spec.inline_code),
                layers=layers,
                **self._common(),
            )
        if not (REPO / "functions" / name).is_dir():
            Annotations.of(self).add_warning_v2(
                "desk:missing-handler",
                f"functions/{name}/ does not exist yet: the function deploys without its handler",
            )
        digest = packaging.tree_digest([p for p in (REPO / "functions" / name,) if p.exists()] or [REPO / "functions"])
        code = lambda_.Code.from_asset(
            str(REPO / "functions"),
            asset_hash_type=AssetHashType.CUSTOM,
            asset_hash=f"fn-{name}-{digest}",
            bundling=_local_bundling(lambda out: packaging.stage_function(name, out)),
        )
        return lambda_.Function(
            self,
            "Function",
            runtime=lambda_.Runtime.PYTHON_3_12,
            handler=handler_path(name),
            code=code,
            layers=layers,
            **self._common(),
        )

    def _image_code(self) -> lambda_.DockerImageCode:
        """The one image (same context and Dockerfile: one asset, built once); this function's CMD."""
        platform = (
            ecr_assets.Platform.LINUX_ARM64
            if self._env.config.architecture == "arm64"
            else ecr_assets.Platform.LINUX_AMD64
        )
        if self.spec.inline_code is not None:
            raise ValueError(f"{self.spec.name}: inline code is zip only")
        if not (REPO / "functions" / self.spec.name / "handler.py").exists():
            Annotations.of(self).add_warning_v2(
                "desk:missing-handler",
                f"functions/{self.spec.name}/handler.py does not exist yet: the image's CMD names no module",
            )
        return lambda_.DockerImageCode.from_image_asset(
            str(REPO),
            file=DOCKERFILE,
            cmd=[handler_path(self.spec.name)],
            platform=platform,
            exclude=IMAGE_CONTEXT_EXCLUDE,
            ignore_mode=IgnoreMode.DOCKER,
        )

    def _acknowledge(self) -> None:
        acknowledge(
            self.role,
            rule="AwsSolutions-IAM5[Resource::*]",
            reason="X-Ray PutTraceSegments/PutTelemetryRecords and the VPC ENI actions support no resource scoping",
        )
        if self.spec.package == "zip" or self.spec.inline_code is not None:
            acknowledge(
                self.function,
                rule="AwsSolutions-L1",
                reason="Python 3.12 is pinned: the layer's wheels, .pyc and measured sizes target CPython 3.12",
            )


def handler_path(name: str) -> str:
    """The handler of function ``name``: the zip function's ``handler``, the image function's CMD."""
    return f"functions.{name}.handler.lambda_handler"


def acknowledge(scope: IConstruct, *, rule: str, reason: str) -> None:
    """Acknowledge one cdk-nag finding on ``scope`` (and its children); the reason is mandatory."""
    if not reason.strip():
        raise ValueError(f"{rule}: a suppression needs its reason")
    Validations.of(scope).acknowledge(Acknowledgment(id=rule, reason=reason))


def acknowledge_invoke_any_version(scope: IConstruct, fn: lambda_.IFunction, who: str) -> None:
    """``grant_invoke`` also allows ``<arn>:*`` (every version/alias): acknowledge that one finding."""
    stack = Stack.of(fn)
    cfn = fn.node.default_child
    logical = stack.resolve(stack.get_logical_id(cfn))  # type: ignore[arg-type]
    acknowledge(
        scope,
        rule=f"AwsSolutions-IAM5[Resource::<{logical}.Arn>:*]",
        reason=f"{who} may invoke any version or alias of {fn.node.path}; no other function",
    )


_RETENTION = {
    1: "ONE_DAY", 3: "THREE_DAYS", 5: "FIVE_DAYS", 7: "ONE_WEEK", 14: "TWO_WEEKS", 30: "ONE_MONTH",
    60: "TWO_MONTHS", 90: "THREE_MONTHS", 120: "FOUR_MONTHS", 150: "FIVE_MONTHS", 180: "SIX_MONTHS",
    365: "ONE_YEAR", 400: "THIRTEEN_MONTHS", 545: "EIGHTEEN_MONTHS", 731: "TWO_YEARS", 1096: "THREE_YEARS",
    1827: "FIVE_YEARS", 2192: "SIX_YEARS", 2557: "SEVEN_YEARS", 2922: "EIGHT_YEARS",
}  # fmt: skip


def retention(days: int) -> logs.RetentionDays:
    """The CloudWatch Logs retention enum for a validated number of days."""
    return logs.RetentionDays[_RETENTION[days]]


def removal(config: EnvConfig, *, stateful: bool = False) -> RemovalPolicy:
    """The removal policy for a resource: config's for stateful ones, DESTROY for logs in ``destroy`` envs."""
    if config.removal_policy == "destroy":
        return RemovalPolicy.DESTROY
    if config.removal_policy == "snapshot" and stateful:
        return RemovalPolicy.SNAPSHOT
    return RemovalPolicy.RETAIN
