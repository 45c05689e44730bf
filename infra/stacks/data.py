"""Data: Aurora PostgreSQL Serverless v2 behind an IAM-auth RDS Proxy, ElastiCache Serverless (TLS),
the DynamoDB idempotency table, the venue secrets, and the schema migration run at every deploy."""

from __future__ import annotations

from aws_cdk import CustomResource, Duration, Stack
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_elasticache as elasticache
from aws_cdk import aws_logs as logs
from aws_cdk import aws_rds as rds
from aws_cdk import aws_secretsmanager as secretsmanager
from aws_cdk import custom_resources as cr
from constructs import Construct

from infra import packaging
from infra.config_model import EnvConfig
from infra.constructs.function import (
    DeskFunction,
    FunctionEnvironment,
    FunctionSpec,
    acknowledge,
    acknowledge_invoke_any_version,
    removal,
    retention,
)

DB_USER = "desk_admin"
BASIC_EXECUTION = "arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole"
MIGRATIONS = packaging.REPO / "layers" / "desk" / "desk" / "store" / "migrations"

# The custom resource's handler: an IAM token for the proxy, then `python -m desk.store.migrate`.
MIGRATE_HANDLER = """
import os, subprocess, sys
from urllib.parse import quote
import boto3

def handler(event, context):
    physical = event.get("PhysicalResourceId") or "desk-schema-migrations"
    if event["RequestType"] == "Delete":
        return {"PhysicalResourceId": physical}  # forward-only: the schema outlives the stack
    e = os.environ
    token = boto3.client("rds").generate_db_auth_token(
        DBHostname=e["DB_HOST"], Port=int(e["DB_PORT"]), DBUsername=e["DB_USER"])
    url = "postgresql://%s:%s@%s:%s/%s?sslmode=require" % (
        quote(e["DB_USER"]), quote(token, safe=""), e["DB_HOST"], e["DB_PORT"], e["DB_NAME"])
    run = subprocess.run([sys.executable, "-m", "desk.store.migrate", url, "--schema", e["DB_SCHEMA"]],
                         capture_output=True, text=True, timeout=840, env={**e, "PYTHONPATH": ":".join(sys.path)})
    print(run.stdout[-4000:])
    if run.returncode != 0:
        raise RuntimeError("migration failed: " + run.stderr[-3000:])
    return {"PhysicalResourceId": "desk-schema-migrations", "Data": {"Output": run.stdout[-200:]}}
"""


class DataStack(Stack):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: EnvConfig,
        topology: dict[str, object],
        vpc: ec2.IVpc,
        app_sg: ec2.ISecurityGroup,
        **kwargs: object,
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)  # type: ignore[arg-type]
        self.config = config
        self.topology = topology
        self.vpc, self.app_sg = vpc, app_sg
        self.data_sg = self._build_security_group()
        self.cluster, self.proxy = self._build_database()
        self.cache = self._build_cache()
        self.idempotency = self._build_idempotency_table()
        self.venue_secrets = self._build_secrets()
        self.database_url = (
            f"postgresql://{DB_USER}@{self.proxy.endpoint}:5432/{config.aurora.database_name}"
            f"?sslmode=require&options=-csearch_path%3D{config.aurora.schema_name}"
        )
        self.redis_url = f"rediss://{self.cache.attr_endpoint_address}:{self.cache.attr_endpoint_port}/0"
        self._build_migration()

    def _build_security_group(self) -> ec2.SecurityGroup:
        data = ec2.SecurityGroup(
            self, "DataSg", vpc=self.vpc, description="Aurora, RDS Proxy and the cache", allow_all_outbound=False
        )
        data.add_ingress_rule(self.app_sg, ec2.Port.tcp(5432), "PostgreSQL via RDS Proxy")
        data.add_ingress_rule(data, ec2.Port.tcp(5432), "RDS Proxy to Aurora")
        data.add_egress_rule(data, ec2.Port.tcp(5432), "RDS Proxy to Aurora")
        data.add_ingress_rule(self.app_sg, ec2.Port.tcp_range(6379, 6380), "Valkey/Redis (TLS)")
        return data

    def _data_subnets(self) -> ec2.SubnetSelection:
        return ec2.SubnetSelection(subnet_group_name="data")

    def _build_database(self) -> tuple[rds.DatabaseCluster, rds.DatabaseProxy]:
        a = self.config.aurora
        major = a.engine_version.split(".")[0]
        # Created here with its retention (instead of cloudwatch_logs_retention's extra custom resource).
        postgres_logs = logs.LogGroup(
            self,
            "AuroraLogs",
            log_group_name=f"/aws/rds/cluster/{self.config.prefix}-aurora/postgresql",
            retention=retention(self.config.log_retention_days),
            removal_policy=removal(self.config),
        )
        cluster = rds.DatabaseCluster(
            self,
            "Aurora",
            engine=rds.DatabaseClusterEngine.aurora_postgres(
                version=rds.AuroraPostgresEngineVersion.of(a.engine_version, major)
            ),
            writer=rds.ClusterInstance.serverless_v2("writer", enable_performance_insights=False),
            readers=[rds.ClusterInstance.serverless_v2(f"reader{i}", scale_with_writer=True) for i in range(a.readers)],
            serverless_v2_min_capacity=a.min_acu,
            serverless_v2_max_capacity=a.max_acu,
            serverless_v2_auto_pause_duration=Duration.seconds(a.seconds_until_auto_pause) if a.min_acu == 0 else None,
            vpc=self.vpc,
            vpc_subnets=self._data_subnets(),
            security_groups=[self.data_sg],
            credentials=rds.Credentials.from_generated_secret(DB_USER),
            default_database_name=a.database_name,
            storage_encrypted=True,
            iam_authentication=True,
            deletion_protection=self.config.environment == "prod",
            backup=rds.BackupProps(retention=Duration.days(a.backup_retention_days)),
            cluster_identifier=f"{self.config.prefix}-aurora",
            cloudwatch_logs_exports=["postgresql"],
            removal_policy=removal(self.config, stateful=True),
        )
        cluster.node.add_dependency(postgres_logs)
        proxy = cluster.add_proxy(
            "Proxy",
            vpc=self.vpc,
            vpc_subnets=self._data_subnets(),
            security_groups=[self.data_sg],
            secrets=[cluster.secret] if cluster.secret else [],
            iam_auth=True,
            require_tls=True,
            db_proxy_name=f"{self.config.prefix}-proxy",
        )
        for rule, reason in {
            "AwsSolutions-RDS10": "deletion protection is on in prod only; dev/staging are torn down by design",
            "AwsSolutions-RDS11": "5432 is reachable only from the proxy's security group; obscurity adds nothing",
            "AwsSolutions-SMG4": "the admin secret is read only by RDS Proxy; rotation is a documented manual step",
        }.items():
            acknowledge(cluster, rule=rule, reason=reason)
        return cluster, proxy

    def _build_cache(self) -> elasticache.CfnServerlessCache:
        c = self.config.cache
        subnets = self.vpc.select_subnets(subnet_group_name="data").subnet_ids
        # Serverless caches always encrypt in transit (TLS-only endpoint) and at rest.
        return elasticache.CfnServerlessCache(
            self,
            "Cache",
            engine=c.engine,
            serverless_cache_name=f"{self.config.prefix}-cache",
            major_engine_version=c.major_version,
            security_group_ids=[self.data_sg.security_group_id],
            subnet_ids=subnets,
            cache_usage_limits=elasticache.CfnServerlessCache.CacheUsageLimitsProperty(
                data_storage=elasticache.CfnServerlessCache.DataStorageProperty(maximum=c.max_storage_gb, unit="GB"),
                ecpu_per_second=elasticache.CfnServerlessCache.ECPUPerSecondProperty(maximum=c.max_ecpu_per_second),
            ),
            description="quotes, books, rate-limit buckets (rebuildable)",
        )

    def _build_idempotency_table(self) -> dynamodb.TableV2:
        spec = self.topology["tables"]["idempotency"]  # type: ignore[index]
        return dynamodb.TableV2(
            self,
            "Idempotency",
            table_name=f"{self.config.prefix}-idempotency",
            partition_key=dynamodb.Attribute(name=spec["partition_key"], type=dynamodb.AttributeType.STRING),
            time_to_live_attribute=spec.get("ttl_attribute"),
            billing=dynamodb.Billing.on_demand(),
            encryption=dynamodb.TableEncryptionV2.aws_managed_key(),
            point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
                point_in_time_recovery_enabled=True
            ),
            removal_policy=removal(self.config, stateful=False),
        )

    def _build_secrets(self) -> dict[str, secretsmanager.Secret]:
        secrets = {}
        for name in self.topology["secrets"]:  # type: ignore[union-attr]
            logical = "".join(part.capitalize() for part in name.replace("/", "-").split("-"))
            secret = secretsmanager.Secret(
                self,
                f"Secret{logical}",
                secret_name=f"{self.config.prefix}/{name}",
                description=f"{name}: set the venue's API key JSON after deploy (docs/deploy.md); never in code",
                removal_policy=removal(self.config),
            )
            acknowledge(
                secret,
                rule="AwsSolutions-SMG4",
                reason="venue API keys are issued and rotated at the venue, then set here by hand",
            )
            secrets[name] = secret
        return secrets

    def _build_migration(self) -> None:
        a = self.config.aurora
        env = FunctionEnvironment(config=self.config, vpc=self.vpc, security_groups=[self.app_sg])
        fn = DeskFunction(
            self,
            "Migrate",
            spec=FunctionSpec(
                name="migrate",
                timeout=900,
                memory=512,
                package="zip",
                inline_code=MIGRATE_HANDLER,
                environment={
                    "DB_HOST": self.proxy.endpoint,
                    "DB_PORT": "5432",
                    "DB_USER": DB_USER,
                    "DB_NAME": a.database_name,
                    "DB_SCHEMA": a.schema_name,
                },
            ),
            env=env,
        )
        self.proxy.grant_connect(fn.role, DB_USER)
        provider_logs = logs.LogGroup(
            self,
            "MigrationProviderLogs",
            retention=retention(self.config.log_retention_days),
            removal_policy=removal(self.config),
        )
        provider = cr.Provider(self, "MigrationProvider", on_event_handler=fn.function, log_group=provider_logs)
        for rule, reason in {
            f"AwsSolutions-IAM4[Policy::{BASIC_EXECUTION}]": (
                "CDK's custom-resource provider framework function; its role is generated by the framework"
            ),
            "AwsSolutions-L1": "the provider framework's Node.js runtime is chosen by aws-cdk-lib",
        }.items():
            acknowledge(provider, rule=rule, reason=reason)
        acknowledge_invoke_any_version(provider, fn.function, "the provider framework")
        resource = CustomResource(
            self,
            "SchemaMigrations",
            service_token=provider.service_token,
            properties={
                # A new migration file changes this digest, so CloudFormation re-runs the migration.
                "MigrationsDigest": packaging.tree_digest([MIGRATIONS]),
                "Schema": a.schema_name,
            },
        )
        resource.node.add_dependency(self.proxy)
        resource.node.add_dependency(self.cluster)
