"""CloudWatch alarms for the edge: a dead target group, a 5xx storm at the ALB, slow
targets, CloudFront errors, or the WAF blocking everyone must not go unnoticed.

Regional alarms (ALB, NLB) publish to the stage's alarm topic. CloudFront and WAF
(CLOUDFRONT scope) publish their metrics only in us-east-1, and an alarm can notify only
a topic of its own region: those alarms get a us-east-1 topic, encrypted with a
us-east-1 key whose policy lets CloudWatch publish. Nothing subscribes to it here (as
for the regional topic): on-call subscribes, or forwards both topics to the pager.

Metric names and dimensions:
  AWS/ApplicationELB  HTTPCode_ELB_5XX_Count, HTTPCode_Target_5XX_Count, TargetResponseTime
                      (LoadBalancer = arn suffix); UnHealthyHostCount (TargetGroup + LoadBalancer)
  AWS/NetworkELB      UnHealthyHostCount (TargetGroup + LoadBalancer)
  AWS/CloudFront      5xxErrorRate, Average (DistributionId, Region = Global), us-east-1 only
  AWS/WAFV2           BlockedRequests, Sum (WebACL, Rule = ALL; no Region dimension for
                      CLOUDFRONT-scope web ACLs), us-east-1
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from components.cloudwatch import metric_alarm
from components.config import EdgeAlarmsConfig
from components.context import StageContext
from components.data.keys import account_administers_statement, alarm_publishers_statement, rotating_key
from components.iam import policy_document

GLOBAL_REGION = "us-east-1"
FIVE_MINUTES = 300


def global_alarm_key_policy(account_id: str) -> str:
    """The account administers the key through IAM; CloudWatch alarms of this account may
    publish to the topic it encrypts. Nothing else (no other publisher exists in us-east-1)."""
    return policy_document(
        [
            account_administers_statement(account_id),
            alarm_publishers_statement(account_id, ["cloudwatch.amazonaws.com"], sid="CloudWatchAlarmsOfThisAccount"),
        ]
    )


@dataclass
class EdgeAlarmsArgs:
    ctx: StageContext
    config: EdgeAlarmsConfig
    # ARN suffixes (`app/<name>/<id>`, `targetgroup/<name>/<id>`): CloudWatch's ELB dimensions.
    alb_arn_suffix: pulumi.Input[str]
    alb_target_group_arn_suffixes: Mapping[str, pulumi.Input[str]]
    # None and {}: the stage has no NLB (Edge), so no NLB alarms.
    nlb_arn_suffix: pulumi.Input[str] | None
    nlb_target_group_arn_suffixes: Mapping[str, pulumi.Input[str]]
    distribution_id: pulumi.Input[str]
    # The web ACL's name (= its metric name): the WebACL dimension.
    web_acl_name: pulumi.Input[str]


class EdgeAlarms(pulumi.ComponentResource):
    """Attributes: `global_alarm_topic_arn` (us-east-1 topic, no subscription),
    `global_alarm_key_arn`, `alarm_names` (regional and global alarm names)."""

    def __init__(self, name: str, args: EdgeAlarmsArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("voip:edge:EdgeAlarms", name, None, opts)
        self.args = args
        self.alarm_names: list[pulumi.Output[str]] = []
        self._global_topic(args)
        self._load_balancers(args)
        self._cloudfront_and_waf(args)
        self.register_outputs(
            {
                "globalAlarmTopicArn": self.global_alarm_topic_arn,
                "globalAlarmKeyArn": self.global_alarm_key_arn,
                "alarmNames": self.alarm_names,
            }
        )

    def _alarm(self, logical: str, description: str, topic: pulumi.Input[str], provider: pulumi.ProviderResource | None, **kwargs) -> None:
        """Above `threshold` alarms; no data (ELB publishes error counts only when there are
        some, no targets registered, no requests) is no error."""
        alarm = metric_alarm(
            logical,
            description,
            topic,
            pulumi.ResourceOptions(parent=self, provider=provider),
            comparison_operator="GreaterThanThreshold",
            treat_missing_data="notBreaching",
            **kwargs,
        )
        self.alarm_names.append(alarm.name)

    # ------------------------------------------------------------- us-east-1 topic

    def _global_topic(self, args: EdgeAlarmsArgs) -> None:
        stage = args.ctx.stage
        east = pulumi.ResourceOptions(parent=self, provider=args.ctx.us_east_1)
        self.global_key, _ = rotating_key(
            f"{stage}-alarms-global",
            description=f"{stage}: the us-east-1 alarm topic (CloudFront and WAF alarms)",
            policy=pulumi.Output.from_input(args.ctx.account_id).apply(global_alarm_key_policy),
            protect=args.ctx.protect,
            parent=self,
            provider=args.ctx.us_east_1,
        )
        # Encrypted with the customer-managed key: CloudWatch cannot publish to a topic under
        # the AWS-managed SNS key.
        self.global_topic = aws.sns.Topic(
            f"{stage}-alarms-global",
            name=f"{stage}-voip-alarms-global",
            kms_master_key_id=self.global_key.arn,
            opts=east,
        )
        self.global_alarm_topic_arn = self.global_topic.arn
        self.global_alarm_key_arn = self.global_key.arn

    # ------------------------------------------------------------------- ALB, NLB

    def _load_balancers(self, args: EdgeAlarmsArgs) -> None:
        stage, cfg, topic = args.ctx.stage, args.config, args.ctx.alarm_topic_arn
        alb = {"LoadBalancer": args.alb_arn_suffix}
        # ELB publishes the 5xx counts only when there are some: no data is no error.
        for source, metric, limit, what in (
            (
                "elb",
                "HTTPCode_ELB_5XX_Count",
                cfg.alb_5xx_per_5_min,
                "ALB returned more than {} 5xx itself in 5 minutes (no healthy target, target timeouts)",
            ),
            ("target", "HTTPCode_Target_5XX_Count", cfg.target_5xx_per_5_min, "ALB targets returned more than {} 5xx in 5 minutes"),
        ):
            self._alarm(
                f"{stage}-alb-{source}-5xx", f"{stage} {what.format(limit)}", topic, None,
                namespace="AWS/ApplicationELB", metric_name=metric, dimensions=alb,
                statistic="Sum", period=FIVE_MINUTES, evaluation_periods=1, threshold=limit,
            )  # fmt: skip
        # p99 over 5 minutes, 2 of 3 periods: one slow burst is not an incident. Periods with
        # too few requests for a meaningful p99 (a quiet dev stage) are not evaluated.
        self._alarm(
            f"{stage}-alb-target-p99",
            f"{stage} ALB target response time p99 above {cfg.target_p99_seconds:g} s in 2 of 3 five-minute periods",
            topic, None,
            namespace="AWS/ApplicationELB", metric_name="TargetResponseTime", dimensions=alb,
            extended_statistic="p99", period=FIVE_MINUTES, evaluation_periods=3, datapoints_to_alarm=2,
            evaluate_low_sample_count_percentiles="ignore",
            threshold=cfg.target_p99_seconds,
        )  # fmt: skip
        for kind, namespace, lb_suffix, groups in (
            ("alb", "AWS/ApplicationELB", args.alb_arn_suffix, args.alb_target_group_arn_suffixes),
            ("nlb", "AWS/NetworkELB", args.nlb_arn_suffix, args.nlb_target_group_arn_suffixes),
        ):
            for label, tg_suffix in groups.items():
                # Any target failing its health check for 3 minutes: a bad rollout, a dead
                # node, or a broken readiness path. No data (no targets registered) is not an alarm.
                self._alarm(
                    f"{stage}-{kind}-{label}-unhealthy",
                    f"{stage} {kind.upper()} target group {label}: unhealthy targets for 3 minutes",
                    topic, None,
                    namespace=namespace, metric_name="UnHealthyHostCount",
                    dimensions={"TargetGroup": tg_suffix, "LoadBalancer": lb_suffix},
                    statistic="Maximum", period=60, evaluation_periods=3,
                    threshold=0,
                )  # fmt: skip

    # ---------------------------------------------------------- CloudFront, WAF

    def _cloudfront_and_waf(self, args: EdgeAlarmsArgs) -> None:
        stage, cfg, topic, east = args.ctx.stage, args.config, self.global_topic.arn, args.ctx.us_east_1
        # 5xxErrorRate is a standard CloudFront metric (no additional metrics subscription).
        self._alarm(
            f"{stage}-cdn-5xx-rate",
            f"{stage} CloudFront: more than {cfg.cloudfront_5xx_percent:g}% of viewer requests got a 5xx over 5 minutes, twice in a row",
            topic, east,
            namespace="AWS/CloudFront", metric_name="5xxErrorRate",
            dimensions={"DistributionId": args.distribution_id, "Region": "Global"},
            statistic="Average", period=FIVE_MINUTES, evaluation_periods=2,
            threshold=cfg.cloudfront_5xx_percent,
        )  # fmt: skip
        # Rule=ALL counts every block of the web ACL (rules and default action): a spike is an
        # attack, or a rule (or the allow-list) blocking real users.
        self._alarm(
            f"{stage}-waf-blocked",
            f"{stage} WAF blocked more than {cfg.waf_blocked_per_5_min} requests in 5 minutes: attack, or a rule blocking real users",
            topic, east,
            namespace="AWS/WAFV2", metric_name="BlockedRequests",
            dimensions={"WebACL": args.web_acl_name, "Rule": "ALL"},
            statistic="Sum", period=FIVE_MINUTES, evaluation_periods=1,
            threshold=cfg.waf_blocked_per_5_min,
        )  # fmt: skip
