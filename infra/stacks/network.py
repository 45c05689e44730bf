"""Network: a two-AZ VPC, endpoints for the AWS APIs the functions call, and venue egress (config)."""

from __future__ import annotations

from aws_cdk import Stack
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_logs as logs
from constructs import Construct

from infra.config_model import EnvConfig
from infra.constructs.function import acknowledge, removal, retention

# Interface endpoints for every AWS API the functions and the streamer call.
INTERFACE_SERVICES = {
    "Sqs": ec2.InterfaceVpcEndpointAwsService.SQS,
    "Events": ec2.InterfaceVpcEndpointAwsService.EVENTBRIDGE,
    "StepFunctions": ec2.InterfaceVpcEndpointAwsService.STEP_FUNCTIONS,
    "SecretsManager": ec2.InterfaceVpcEndpointAwsService.SECRETS_MANAGER,
    "Sns": ec2.InterfaceVpcEndpointAwsService.SNS,
    "Logs": ec2.InterfaceVpcEndpointAwsService.CLOUDWATCH_LOGS,
    "XRay": ec2.InterfaceVpcEndpointAwsService.XRAY,
    "Monitoring": ec2.InterfaceVpcEndpointAwsService.CLOUDWATCH_MONITORING,
    "Rds": ec2.InterfaceVpcEndpointAwsService.RDS,
    "EcrApi": ec2.InterfaceVpcEndpointAwsService.ECR,
    "EcrDocker": ec2.InterfaceVpcEndpointAwsService.ECR_DOCKER,
}


class NetworkStack(Stack):
    """``vpc`` and ``app_sg`` (the security group of every function and of the streamer)."""

    def __init__(self, scope: Construct, construct_id: str, *, config: EnvConfig, **kwargs: object) -> None:
        super().__init__(scope, construct_id, **kwargs)  # type: ignore[arg-type]
        self.config = config
        self.vpc = self._build_vpc()
        self.app_sg = self._build_security_groups()
        self._build_endpoints()

    def _nat(self) -> tuple[ec2.NatProvider | None, int]:
        nat = self.config.nat
        if nat.mode == "gateway":
            return ec2.NatProvider.gateway(), nat.gateways
        if nat.mode == "instance":
            provider = ec2.NatProvider.instance_v2(
                instance_type=ec2.InstanceType(nat.instance_type),
                default_allowed_traffic=ec2.NatTrafficDirection.OUTBOUND_ONLY,
            )
            return provider, 1
        return None, 0

    def _build_vpc(self) -> ec2.Vpc:
        provider, count = self._nat()
        app_type = ec2.SubnetType.PRIVATE_WITH_EGRESS if count else ec2.SubnetType.PRIVATE_ISOLATED
        subnets = [
            ec2.SubnetConfiguration(name="app", subnet_type=app_type, cidr_mask=22),
            ec2.SubnetConfiguration(name="data", subnet_type=ec2.SubnetType.PRIVATE_ISOLATED, cidr_mask=24),
        ]
        if count:
            subnets.insert(0, ec2.SubnetConfiguration(name="public", subnet_type=ec2.SubnetType.PUBLIC, cidr_mask=26))
        flow_logs = logs.LogGroup(
            self,
            "FlowLogs",
            retention=retention(self.config.log_retention_days),
            removal_policy=removal(self.config),
        )
        vpc = ec2.Vpc(
            self,
            "Vpc",
            ip_addresses=ec2.IpAddresses.cidr(self.config.vpc_cidr),
            availability_zones=list(self.config.availability_zones),
            nat_gateway_provider=provider,
            nat_gateways=count,
            subnet_configuration=subnets,
            restrict_default_security_group=True,
            gateway_endpoints={
                "DynamoDb": ec2.GatewayVpcEndpointOptions(service=ec2.GatewayVpcEndpointAwsService.DYNAMODB),
                "S3": ec2.GatewayVpcEndpointOptions(service=ec2.GatewayVpcEndpointAwsService.S3),
            },
            flow_logs={
                "All": ec2.FlowLogOptions(
                    destination=ec2.FlowLogDestination.to_cloud_watch_logs(flow_logs),
                    traffic_type=ec2.FlowLogTrafficType.REJECT,
                )
            },
        )
        if isinstance(provider, ec2.NatInstanceProviderV2):
            provider.connections.allow_from(ec2.Peer.ipv4(self.config.vpc_cidr), ec2.Port.all_traffic())
            for rule, reason in {
                "AwsSolutions-EC28": "NAT instance: detailed monitoring would cost more than the instance",
                "AwsSolutions-EC29": "NAT instance holds no state; termination protection would only block teardown",
                "AwsSolutions-EC26": "NAT instance root volume holds only the AMI; no data at rest",
            }.items():
                acknowledge(self, rule=rule, reason=reason)
        return vpc

    def _build_security_groups(self) -> ec2.SecurityGroup:
        # The data security group lives in the data stack: RDS wires rules to the cluster's port token.
        return ec2.SecurityGroup(
            self, "AppSg", vpc=self.vpc, description="Functions and the streamer", allow_all_outbound=True
        )

    def _build_endpoints(self) -> None:
        if not self.config.endpoints.interface:
            return
        azs = list(self.config.availability_zones)[: self.config.endpoints.az_count]
        endpoint_sg = ec2.SecurityGroup(
            self, "EndpointSg", vpc=self.vpc, description="Interface endpoints", allow_all_outbound=False
        )
        endpoint_sg.add_ingress_rule(self.app_sg, ec2.Port.tcp(443), "HTTPS from functions and the streamer")
        acknowledge(
            endpoint_sg,
            rule="AwsSolutions-EC23",
            reason="ingress is from the app security group only (a token the rule cannot evaluate), never 0.0.0.0/0",
        )
        for name, service in INTERFACE_SERVICES.items():
            self.vpc.add_interface_endpoint(
                name,
                service=service,
                subnets=ec2.SubnetSelection(subnet_group_name="app", availability_zones=azs),
                security_groups=[endpoint_sg],
                private_dns_enabled=True,
            )
