"""Streaming: an ECS cluster and the Fargate streamer (exchange WebSockets -> Redis quotes and books).

The image is built from ``services/streamer/Dockerfile`` (build context: the repository, so it can
hold ``desk``) by ``ContainerImage.from_asset``: Docker runs at deploy, never at synth. While that
Dockerfile does not exist, the cluster is created without a service and synth says so.
"""

from __future__ import annotations

from pathlib import Path

from aws_cdk import Annotations, Duration, IgnoreMode, Stack
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_ecr_assets as ecr_assets
from aws_cdk import aws_ecs as ecs
from aws_cdk import aws_iam as iam
from aws_cdk import aws_logs as logs
from constructs import Construct

from infra import packaging
from infra.config_model import EnvConfig
from infra.constructs.function import IMAGE_CONTEXT_EXCLUDE, acknowledge, removal, retention
from infra.stacks.data import DB_USER, DataStack

STREAMER_CONTEXT_EXCLUDE = [*IMAGE_CONTEXT_EXCLUDE, "!services/streamer"]


class StreamingStack(Stack):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: EnvConfig,
        vpc: ec2.IVpc,
        app_sg: ec2.ISecurityGroup,
        data: DataStack,
        environment: dict[str, str],
        dockerfile: Path | None = None,
        **kwargs: object,
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)  # type: ignore[arg-type]
        self.config, self.data = config, data
        self.cluster = ecs.Cluster(
            self,
            "Cluster",
            vpc=vpc,
            cluster_name=f"{config.prefix}-streaming",
            container_insights_v2=ecs.ContainerInsights.ENABLED,
        )
        self.service: ecs.FargateService | None = None
        dockerfile = dockerfile or packaging.REPO / config.streamer.dockerfile
        if not config.streamer.enabled:
            Annotations.of(self).add_info("streamer disabled in config: cluster only")
        elif not dockerfile.exists():
            Annotations.of(self).add_warning_v2(
                "desk:streamer-missing", f"{dockerfile} does not exist yet: cluster created, no streamer service"
            )
        else:
            self.service = self._build_service(vpc, app_sg, dockerfile, environment)

    def _build_service(
        self, vpc: ec2.IVpc, app_sg: ec2.ISecurityGroup, dockerfile: Path, environment: dict[str, str]
    ) -> ecs.FargateService:
        s = self.config.streamer
        arm = self.config.architecture == "arm64"
        task = ecs.FargateTaskDefinition(
            self,
            "Task",
            cpu=s.cpu,
            memory_limit_mib=s.memory_mib,
            runtime_platform=ecs.RuntimePlatform(
                cpu_architecture=ecs.CpuArchitecture.ARM64 if arm else ecs.CpuArchitecture.X86_64,
                operating_system_family=ecs.OperatingSystemFamily.LINUX,
            ),
        )
        log_group = logs.LogGroup(
            self,
            "Logs",
            log_group_name=f"/ecs/{self.config.prefix}-streamer",
            retention=retention(self.config.log_retention_days),
            removal_policy=removal(self.config),
        )
        directory = packaging.REPO
        task.add_container(
            "streamer",
            image=ecs.ContainerImage.from_asset(
                str(directory),
                file=str(dockerfile.resolve().relative_to(directory.resolve())),
                exclude=[*STREAMER_CONTEXT_EXCLUDE, f"!{dockerfile.resolve().relative_to(directory.resolve()).parent}"],
                ignore_mode=IgnoreMode.DOCKER,
                platform=ecr_assets.Platform.LINUX_ARM64 if arm else ecr_assets.Platform.LINUX_AMD64,
            ),
            logging=ecs.LogDrivers.aws_logs(stream_prefix="streamer", log_group=log_group),
            environment={**environment, "DESK_SERVICE": "streamer"},
            health_check=ecs.HealthCheck(
                command=list(s.health_check_command),
                interval=Duration.seconds(30),
                timeout=Duration.seconds(5),
                retries=3,
                start_period=Duration.seconds(60),
            ),
            stop_timeout=Duration.seconds(s.stop_timeout_seconds),
        )
        self.data.proxy.grant_connect(task.task_role, DB_USER)
        task.task_role.add_to_principal_policy(
            iam.PolicyStatement(
                actions=["cloudwatch:PutMetricData"],
                resources=["*"],
                conditions={"StringEquals": {"cloudwatch:namespace": "LambdaDesk"}},
            )
        )
        acknowledge(
            task,
            rule="AwsSolutions-IAM5[Resource::*]",
            reason="PutMetricData has no resource scoping; it is limited to the LambdaDesk namespace by condition",
        )
        acknowledge(
            task, rule="AwsSolutions-ECS2", reason="environment holds endpoints and names only; no secret values"
        )
        egress = self.config.nat.mode != "none"
        service = ecs.FargateService(
            self,
            "Service",
            cluster=self.cluster,
            task_definition=task,
            service_name=f"{self.config.prefix}-streamer",
            desired_count=s.desired_count,
            security_groups=[app_sg],
            vpc_subnets=ec2.SubnetSelection(subnet_group_name="app"),
            assign_public_ip=False,
            circuit_breaker=ecs.DeploymentCircuitBreaker(rollback=True),
            min_healthy_percent=0 if s.desired_count <= 1 else 50,
            max_healthy_percent=200,
            enable_execute_command=False,
        )
        if not egress:
            Annotations.of(self).add_warning_v2(
                "desk:streamer-no-egress", "nat.mode is 'none': the streamer cannot reach exchange WebSockets"
            )
        return service
