"""Who hears the alarms: the stage's critical topic (pages), e-mail subscriptions from config
on every alarm topic, and a Slack channel through AWS Chatbot on all of them.

Severity -> topic: `critical` (Alertmanager's critical alerts, the external WebSocket check)
goes to `<stage>-voip-critical`, subscribed by `notifications.criticalEmails` (the pager),
`warningEmails` (the team hears what pages too) and Slack; `warning` (Alertmanager's warnings,
every CloudWatch alarm of the stage) goes to the existing `<stage>-voip-alarms`, subscribed by
`notifications.warningEmails` and Slack. The us-east-1
topic of the CloudFront/WAF alarms gets the warning recipients too.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from components.config import NotificationsConfig
from components.context import StageContext
from components.iam import allow, policy_document, service_trust

# Chatbot is a global service whose API answers in a few regions only (us-east-2 among them);
# the channel configuration is made there and serves topics of any region.
CHATBOT_REGION = "us-east-2"
# What a channel member may do through the bot: read CloudWatch (alarm charts), nothing else.
CHATBOT_GUARDRAIL_POLICY_ARN = "arn:aws:iam::aws:policy/CloudWatchReadOnlyAccess"


@dataclass
class TopicRef:
    """An alarm topic and the provider of its region."""

    key: str  # "critical", "warning", "global"
    arn: pulumi.Input[str]
    provider: pulumi.ProviderResource | None = None


@dataclass
class NotificationsArgs:
    ctx: StageContext
    config: NotificationsConfig


def chatbot_role_policy(account_id: str) -> str:
    """The channel role: what Chatbot reads to render an alarm notification (the alarm, its
    history and its metric chart), on this account's alarms only where IAM can scope it."""
    return policy_document(
        [
            allow(
                "ReadTheAlarms",
                ["cloudwatch:DescribeAlarms", "cloudwatch:DescribeAlarmHistory"],
                f"arn:aws:cloudwatch:*:{account_id}:alarm:*",
            ),
            # Metric reads take no resource.
            allow(
                "DrawTheirMetrics",
                ["cloudwatch:GetMetricData", "cloudwatch:GetMetricStatistics", "cloudwatch:GetMetricWidgetImage"],
                "*",
            ),
        ]
    )


class Notifications(pulumi.ComponentResource):
    """The critical topic; then (`subscribe`) the e-mail subscriptions and the Chatbot Slack
    channel on every alarm topic of the stage.

    Exposes `.critical_topic` (and `.critical_topic_arn`), `.subscriptions` (topic key -> list)
    and `.slack_channel` (None without `notifications.slack`)."""

    def __init__(self, name: str, args: NotificationsArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("voip:notifications:Notifications", name, None, opts)
        self.args = args
        stage = args.ctx.stage
        # Encrypted with the data key like the alarm topic (CloudWatch cannot publish to a topic
        # under the AWS-managed SNS key).
        self.critical_topic = aws.sns.Topic(
            f"{stage}-critical",
            name=f"{stage}-voip-critical",
            kms_master_key_id=args.ctx.data_key_arn,
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.critical_topic_arn = self.critical_topic.arn
        self.subscriptions: dict[str, list[aws.sns.TopicSubscription]] = {}
        self.slack_channel: aws.chatbot.SlackChannelConfiguration | None = None
        self.register_outputs({"criticalTopicArn": self.critical_topic.arn})

    def subscribe(self, other_topics: Sequence[TopicRef]) -> None:
        """Recipients on the critical topic, the stage's alarm topic and `other_topics` (warning
        level: the us-east-1 edge topic, ElastiCache's events topic). Call once."""
        cfg, stage = self.args.config, self.args.ctx.stage
        topics = [
            (
                TopicRef("critical", self.critical_topic.arn),
                [*cfg.critical_emails, *(e for e in cfg.warning_emails if e not in cfg.critical_emails)],
            ),
            (TopicRef("warning", self.args.ctx.alarm_topic_arn), cfg.warning_emails),
            *((topic, cfg.warning_emails) for topic in other_topics),
        ]
        for topic, emails in topics:
            sub_opts = pulumi.ResourceOptions(parent=self, provider=topic.provider)
            self.subscriptions[topic.key] = [
                # E-mail subscriptions stay pending until the recipient confirms (AWS mails a link).
                aws.sns.TopicSubscription(
                    f"{stage}-{topic.key}-email-{i + 1}", topic=topic.arn, protocol="email", endpoint=email, opts=sub_opts
                )
                for i, email in enumerate(emails)
            ]
        if cfg.slack is None:
            return
        role = aws.iam.Role(
            f"{stage}-chatbot",
            name=f"{stage}-chatbot",
            description=f"{stage}: AWS Chatbot renders alarm notifications in Slack",
            assume_role_policy=service_trust("chatbot.amazonaws.com"),
            opts=pulumi.ResourceOptions(parent=self),
        )
        policy = aws.iam.RolePolicy(
            f"{stage}-chatbot-read",
            role=role.id,
            policy=pulumi.Output.from_input(self.args.ctx.account_id).apply(chatbot_role_policy),
            opts=pulumi.ResourceOptions(parent=role),
        )
        self.slack_channel = aws.chatbot.SlackChannelConfiguration(
            f"{stage}-slack",
            configuration_name=f"{stage}-voip-alarms",
            iam_role_arn=role.arn,
            slack_team_id=cfg.slack.workspace_id,
            slack_channel_id=cfg.slack.channel_id,
            sns_topic_arns=[t.arn for t, _ in topics],
            guardrail_policy_arns=[CHATBOT_GUARDRAIL_POLICY_ARN],
            logging_level="ERROR",
            region=CHATBOT_REGION,
            opts=pulumi.ResourceOptions(parent=self, depends_on=[policy]),
        )
