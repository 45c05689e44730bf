"""Monitoring: the SNS alert topic, the alarms that page, and one dashboard.

Alarms: any message in any DLQ; function errors and throttles; failed executions; stale quotes
(the streamer's ``QuoteAgeSeconds``), reconciliation drift and risk breaches (custom metrics the
desk publishes in the ``LambdaDesk`` namespace with Powertools metrics).
"""

from __future__ import annotations

from aws_cdk import Duration, Stack
from aws_cdk import aws_cloudwatch as cw
from aws_cdk import aws_cloudwatch_actions as cw_actions
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from infra.config_model import EnvConfig
from infra.constructs.function import DeskFunction, removal
from infra.stacks.pipeline import PipelineStack, pascal

NAMESPACE = "LambdaDesk"


class MonitoringStack(Stack):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: EnvConfig,
        pipeline: PipelineStack,
        functions: dict[str, DeskFunction],
        state_machines: dict[str, sfn.StateMachine],
        **kwargs: object,
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)  # type: ignore[arg-type]
        self.config = config
        self.topic = self._build_topic()
        self.action = cw_actions.SnsAction(self.topic)
        self.alarms: list[cw.Alarm] = []
        self._dlq_alarms(pipeline)
        self._function_alarms(functions)
        self._execution_alarms(state_machines)
        self._desk_alarms()
        self._build_dashboard(pipeline, functions, state_machines)

    def _build_topic(self) -> sns.Topic:
        key = kms.Key(
            self,
            "AlertsKey",
            description="alerts topic encryption",
            enable_key_rotation=True,
            removal_policy=removal(self.config),
        )
        # CloudWatch alarms publish to an encrypted topic only if they may use its key.
        key.grant(iam.ServicePrincipal("cloudwatch.amazonaws.com"), "kms:Decrypt", "kms:GenerateDataKey*")
        topic = sns.Topic(
            self,
            "Alerts",
            topic_name=f"{self.config.prefix}-alerts",
            master_key=key,
            enforce_ssl=True,
        )
        if self.config.alarms.email:
            topic.add_subscription(subscriptions.EmailSubscription(self.config.alarms.email))
        return topic

    def _alarm(self, construct_id: str, metric: cw.IMetric, threshold: float, description: str) -> cw.Alarm:
        a = self.config.alarms
        alarm = cw.Alarm(
            self,
            construct_id,
            metric=metric,
            threshold=threshold,
            evaluation_periods=a.evaluation_periods,
            comparison_operator=cw.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            treat_missing_data=cw.TreatMissingData.NOT_BREACHING,
            alarm_description=description,
        )
        alarm.add_alarm_action(self.action)
        self.alarms.append(alarm)
        return alarm

    def _period(self) -> Duration:
        return Duration.seconds(self.config.alarms.period_seconds)

    def _dlq_alarms(self, pipeline: PipelineStack) -> None:
        for name, dlq in pipeline.dlqs.items():
            metric = dlq.metric_approximate_number_of_messages_visible(period=self._period(), statistic="Maximum")
            # depth > 0 <=> depth >= 1 (an integer count)
            self._alarm(f"{pascal(name)}DlqDepth", metric, 1, f"messages dead-lettered from {name}")

    def _function_alarms(self, functions: dict[str, DeskFunction]) -> None:
        a = self.config.alarms
        for name, fn in functions.items():
            f = fn.function
            self._alarm(
                f"{pascal(name)}Errors", f.metric_errors(period=self._period()), a.function_errors, f"{name} errors"
            )
            self._alarm(
                f"{pascal(name)}Throttles",
                f.metric_throttles(period=self._period()),
                a.function_throttles,
                f"{name} throttled",
            )

    def _execution_alarms(self, state_machines: dict[str, sfn.StateMachine]) -> None:
        a = self.config.alarms
        for name, sm in state_machines.items():
            for kind, metric in (
                ("Failed", sm.metric_failed(period=self._period())),
                ("TimedOut", sm.metric_timed_out(period=self._period())),
                ("Aborted", sm.metric_aborted(period=self._period())),
            ):
                self._alarm(f"{pascal(name)}{kind}", metric, a.execution_failures, f"{name} executions {kind.lower()}")

    def _custom(self, metric_name: str, statistic: str) -> cw.Metric:
        return cw.Metric(
            namespace=NAMESPACE,
            metric_name=metric_name,
            dimensions_map={"service": "desk", "environment": self.config.environment},
            statistic=statistic,
            period=self._period(),
        )

    def _desk_alarms(self) -> None:
        a = self.config.alarms
        self._alarm(
            "StaleQuotes",
            self._custom("QuoteAgeSeconds", "Maximum"),
            a.stale_quote_seconds,
            "the streamer's newest quote is older than the configured age",
        )
        drift = cw.Alarm(
            self,
            "ReconciliationDrift",
            metric=self._custom("ReconciliationDrift", "Maximum"),
            threshold=a.reconciliation_drift,
            evaluation_periods=a.evaluation_periods,
            comparison_operator=cw.ComparisonOperator.GREATER_THAN_THRESHOLD,
            treat_missing_data=cw.TreatMissingData.NOT_BREACHING,
            alarm_description="ledger and venue disagree after reconciliation",
        )
        drift.add_alarm_action(self.action)
        self.alarms.append(drift)
        self._alarm("RiskBreaches", self._custom("RiskBreaches", "Sum"), a.risk_breaches, "a risk limit was breached")

    def _build_dashboard(
        self, pipeline: PipelineStack, functions: dict[str, DeskFunction], state_machines: dict[str, sfn.StateMachine]
    ) -> None:
        board = cw.Dashboard(self, "Dashboard", dashboard_name=f"{self.config.prefix}-desk")
        board.add_widgets(
            cw.AlarmStatusWidget(title="Alarms", alarms=list(self.alarms), width=24, height=6),
        )
        board.add_widgets(
            cw.GraphWidget(
                title="Queue depth",
                left=[q.metric_approximate_number_of_messages_visible() for q in pipeline.queues.values()],
                width=12,
            ),
            cw.GraphWidget(
                title="DLQ depth",
                left=[q.metric_approximate_number_of_messages_visible() for q in pipeline.dlqs.values()],
                width=12,
            ),
        )
        board.add_widgets(
            cw.GraphWidget(title="Errors", left=[f.function.metric_errors() for f in functions.values()], width=8),
            cw.GraphWidget(
                title="Duration p95",
                left=[f.function.metric_duration(statistic="p95") for f in functions.values()],
                width=8,
            ),
            cw.GraphWidget(
                title="Executions failed", left=[sm.metric_failed() for sm in state_machines.values()], width=8
            ),
        )
        board.add_widgets(
            cw.GraphWidget(title="Quote age (s)", left=[self._custom("QuoteAgeSeconds", "Maximum")], width=8),
            cw.GraphWidget(
                title="Reconciliation drift", left=[self._custom("ReconciliationDrift", "Maximum")], width=8
            ),
            cw.GraphWidget(title="Risk breaches", left=[self._custom("RiskBreaches", "Sum")], width=8),
        )
