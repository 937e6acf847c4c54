"""The project's CloudWatch conventions, written once: log groups with a retention under a
customer-managed key, and alarms that tell the stage's topic when they fire and when they
clear. Thin on purpose: each call still names every metric setting it alarms on."""

from __future__ import annotations

from collections.abc import Sequence

import pulumi
import pulumi_aws as aws


def log_group(
    logical: str, name: pulumi.Input[str], retention_days: int, key_arn: pulumi.Input[str], opts: pulumi.ResourceOptions
) -> aws.cloudwatch.LogGroup:
    """The log group `name`, kept `retention_days` days, encrypted with `key_arn` (a key
    whose policy admits CloudWatch Logs of this account: the stage's data key does)."""
    return aws.cloudwatch.LogGroup(logical, name=name, retention_in_days=retention_days, kms_key_id=key_arn, opts=opts)


def metric_alarm(
    logical: str,
    description: str,
    topic: pulumi.Input[str] | None,
    opts: pulumi.ResourceOptions,
    *,
    name: str | None = None,
    actions: Sequence[pulumi.Input[str]] = (),
    **metric,
) -> aws.cloudwatch.MetricAlarm:
    """An alarm named `name` (default: its logical name) on `metric` (namespace, metric name
    or queries, statistic, threshold, comparison, missing-data rule): its state changes go to
    `topic` (none where the stage has no topic); `actions` run before the topic is told
    (e.g. EC2 recover)."""
    notify = [topic] if topic is not None else []
    return aws.cloudwatch.MetricAlarm(
        logical,
        name=name or logical,
        alarm_description=description,
        alarm_actions=[*actions, *notify],
        ok_actions=notify,
        opts=opts,
        **metric,
    )
