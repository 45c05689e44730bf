"""API: the HTTP API and its function. ``GET /v1/health`` is open; every other route needs a JWT.

Routes arrive later in the function (Powertools resolver), so API Gateway forwards ``$default`` and
``ANY /{proxy+}`` to it. Throttling: the stage default plus per-route limits from config.
"""

from __future__ import annotations

from typing import Any

import jsii
from aws_cdk import Duration, Stack
from aws_cdk import aws_apigateway as apigateway
from aws_cdk import aws_apigatewayv2 as apigw
from aws_cdk import aws_apigatewayv2_authorizers as authorizers
from aws_cdk import aws_apigatewayv2_integrations as integrations
from aws_cdk import aws_cognito as cognito
from aws_cdk import aws_iam as iam
from aws_cdk import aws_logs as logs
from constructs import Construct

from infra import packaging
from infra.config_model import EnvConfig
from infra.constructs.function import DeskFunction, FunctionEnvironment, FunctionSpec, acknowledge, removal, retention
from infra.stacks.data import DB_USER, DataStack
from infra.stacks.pipeline import PipelineStack

HEALTH_ROUTE = "GET /v1/health"
PROXY_ROUTE = "ANY /{proxy+}"


class ApiStack(Stack):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: EnvConfig,
        data: DataStack,
        pipeline: PipelineStack,
        functions_env: FunctionEnvironment,
        **kwargs: object,
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)  # type: ignore[arg-type]
        self.config, self.data, self.pipeline = config, data, pipeline
        self.function = self._build_function(functions_env)
        self.authorizer = self._build_authorizer()
        self.api, self.stage = self._build_api()

    def _build_function(self, functions_env: FunctionEnvironment) -> DeskFunction:
        a = self.config.api
        fn = DeskFunction(
            self,
            "Api",
            spec=FunctionSpec(
                name="api", timeout=a.function_timeout, memory=a.function_memory, package=packaging.package_of("api")
            ),
            env=functions_env,
        )
        self.data.proxy.grant_connect(fn.role, DB_USER)
        self.data.idempotency.grant_read_write_data(fn.role)
        self.pipeline.bus.grant_put_events_to(fn.role)
        fn.role.add_to_policy(
            iam.PolicyStatement(actions=["states:StartExecution"], resources=[self.pipeline.order_state_machine_arn()])
        )
        # Large backtests run as asynchronous self-invocations. A separate policy, not the role's
        # default one: the function depends on its default policy, which would make a cycle.
        iam.Policy(
            self,
            "ApiSelfInvoke",
            roles=[fn.role],
            statements=[
                iam.PolicyStatement(
                    actions=["lambda:InvokeFunction"],
                    resources=[fn.function.function_arn],  # unqualified: no aliases are used
                )
            ],
        )
        return fn

    def _build_authorizer(self) -> authorizers.HttpJwtAuthorizer:
        a = self.config.api
        if a.jwt_issuer:
            return authorizers.HttpJwtAuthorizer("Jwt", a.jwt_issuer, jwt_audience=list(a.jwt_audience))
        pool = cognito.UserPool(
            self,
            "Users",
            user_pool_name=f"{self.config.prefix}-users",
            self_sign_up_enabled=False,
            sign_in_aliases=cognito.SignInAliases(email=True),
            password_policy=cognito.PasswordPolicy(
                min_length=14, require_digits=True, require_lowercase=True, require_uppercase=True, require_symbols=True
            ),
            mfa=cognito.Mfa.REQUIRED,
            mfa_second_factor=cognito.MfaSecondFactor(otp=True, sms=False),
            account_recovery=cognito.AccountRecovery.EMAIL_ONLY,
            removal_policy=removal(self.config, stateful=False),
        )
        acknowledge(
            pool,
            rule="AwsSolutions-COG3",
            reason="a handful of operator accounts with required TOTP MFA; threat protection (Plus plan) not worth it",
        )
        acknowledge(
            pool,
            rule="AwsSolutions-COG8",
            reason="the Plus feature plan is billed per user; a few operator accounts use Essentials with TOTP MFA",
        )
        client = pool.add_client(
            "Operators",
            auth_flows=cognito.AuthFlow(user_srp=True),
            access_token_validity=Duration.hours(1),
            id_token_validity=Duration.hours(1),
            generate_secret=False,
        )
        issuer = f"https://cognito-idp.{self.region}.amazonaws.com/{pool.user_pool_id}"
        return authorizers.HttpJwtAuthorizer("Jwt", issuer, jwt_audience=[client.user_pool_client_id])

    def _build_api(self) -> tuple[apigw.HttpApi, apigw.HttpStage]:
        integration = integrations.HttpLambdaIntegration("ApiFunction", self.function.function)
        api = apigw.HttpApi(
            self,
            "HttpApi",
            api_name=f"{self.config.prefix}-api",
            create_default_stage=False,
            default_integration=integration,  # the $default route
            default_authorizer=self.authorizer,
        )
        api.add_routes(path="/{proxy+}", methods=[apigw.HttpMethod.ANY], integration=integration)
        health = api.add_routes(
            path="/v1/health",
            methods=[apigw.HttpMethod.GET],
            integration=integration,
            authorizer=apigw.HttpNoneAuthorizer(),
        )
        for route in health:
            acknowledge(
                route,
                rule="AwsSolutions-APIG4",
                reason="the health check is public by design (load balancers, uptime probes)",
            )
        access_logs = logs.LogGroup(
            self,
            "AccessLogs",
            retention=retention(self.config.log_retention_days),
            removal_policy=removal(self.config),
        )
        t = self.config.api.throttle
        stage = apigw.HttpStage(
            self,
            "Stage",
            http_api=api,
            stage_name="$default",
            auto_deploy=True,
            throttle=apigw.ThrottleSettings(rate_limit=t.rate_limit, burst_limit=t.burst_limit),
            access_log_settings=_AccessLogs(apigw.LogGroupLogDestination(access_logs)),
        )
        cfn_stage: Any = stage.node.default_child
        route_settings = {
            key: {"ThrottlingRateLimit": r.rate_limit, "ThrottlingBurstLimit": r.burst_limit}
            for key, r in self.config.api.route_throttles.items()
        }
        if route_settings:
            cfn_stage.add_property_override("RouteSettings", route_settings)
            for route in api.node.find_all():
                if isinstance(route, apigw.HttpRoute):
                    stage.node.add_dependency(route)
        return api, stage


@jsii.implements(apigw.IAccessLogSettings)
class _AccessLogs:
    """JSON access logs into a log group with the environment's retention."""

    def __init__(self, destination: apigw.IAccessLogDestination) -> None:
        self._destination = destination

    @property
    def destination(self) -> apigw.IAccessLogDestination:
        return self._destination

    @property
    def format(self) -> apigateway.AccessLogFormat:
        return apigateway.AccessLogFormat.custom(_ACCESS_LOG_FORMAT)


_ACCESS_LOG_FORMAT = (
    '{"requestId":"$context.requestId","ip":"$context.identity.sourceIp","routeKey":"$context.routeKey",'
    '"status":"$context.status","latency":"$context.responseLatency","sub":"$context.authorizer.claims.sub"}'
)
