"""The one way a data store sits in the network: the isolated subnets (its subnet group)
and its own security group admitting one port from named source security groups only (no
CIDR), with no egress (a store opens no connections)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws

from components.cloudwatch import metric_alarm
from components.context import StageContext


def data_store_security_group(
    name: str,
    *,
    what: str,
    port: int,
    vpc_id: pulumi.Input[str],
    sources: Sequence[pulumi.Input[str]],
    opts: pulumi.ResourceOptions,
) -> aws.ec2.SecurityGroup:
    """`name` is the stage-derived resource and group name, e.g. `production-postgres`."""
    return aws.ec2.SecurityGroup(
        f"{name}-sg",
        name=name,
        description=f"{name}: {what} on {port} from named security groups only",
        vpc_id=vpc_id,
        ingress=[
            aws.ec2.SecurityGroupIngressArgs(
                protocol="tcp",
                from_port=port,
                to_port=port,
                security_groups=list(sources),
                description=f"{what} from the named sources",
            )
        ]
        if sources
        else [],
        egress=[],
        tags={"Name": name},
        opts=opts,
    )


@dataclass(frozen=True)
class DataPlacement:
    """Where the stage's data stores sit: the network tier's isolated subnets (no route to an
    internet or NAT gateway), one per AZ."""

    vpc_id: pulumi.Input[str]
    subnet_ids: Sequence[pulumi.Input[str]]
    availability_zones: Sequence[str] = ()


@dataclass(kw_only=True)
class DataStoreArgs:
    """What every data store's Args start with: the context and where the store sits."""

    ctx: StageContext
    placement: DataPlacement
    # The only sources admitted, on the store's one port. Nothing else is.
    allowed_security_group_ids: Sequence[pulumi.Input[str]]


@dataclass(frozen=True)
class DataStoreKind:
    """How a kind of store is named and described in the network: `<stage>-<label>`."""

    label: str
    what: str  # its protocol, in the security group's description
    service: str  # the AWS service, in the subnet group's description
    subnet_group: Callable[..., Any]  # the service's subnet group type
    metrics: str  # the CloudWatch namespace of its metrics
    member_dimension: str  # the metric dimension naming one instance or node


@dataclass(frozen=True)
class DataStoreNetwork:
    security_group: aws.ec2.SecurityGroup
    subnet_group: pulumi.CustomResource


def data_store_network(kind: DataStoreKind, port: int, store: DataStoreArgs, opts: pulumi.ResourceOptions) -> DataStoreNetwork:
    """The security group `<stage>-<label>-sg` admitting `port` and the subnet group
    `<stage>-<label>-subnets` over the isolated subnets. `store`: the store's Args."""
    stage, placement = store.ctx.stage, store.placement
    name, sources = f"{stage}-{kind.label}", store.allowed_security_group_ids
    sg = data_store_security_group(name, what=kind.what, port=port, vpc_id=placement.vpc_id, sources=sources, opts=opts)
    description = f"{stage} {kind.service}: isolated subnets"
    subnets = kind.subnet_group(f"{name}-subnets", name=name, description=description, subnet_ids=list(placement.subnet_ids), opts=opts)
    return DataStoreNetwork(sg, subnets)


_COMPARISONS = {">": "GreaterThanThreshold", "<": "LessThanThreshold"}


@dataclass(frozen=True)
class Watch:
    """One CloudWatch alarm on a metric of one store member: `<member>-<suffix>`, described
    as "<member>: <what>"."""

    suffix: str
    what: str
    metric: str
    statistic: str
    above_or_below: str  # ">" or "<" the threshold
    threshold: float
    period: int = 300
    periods: int = 3
    missing: str = "missing"


def watch_alarms(
    kind: DataStoreKind, member: str, watches: Sequence[Watch], topic: pulumi.Input[str] | None, opts: pulumi.ResourceOptions
) -> None:
    """The alarms of `member` (an RDS instance, an ElastiCache node), telling `topic` (if any).
    `opts`: off the store's component, not the (protected) store: a child inherits `protect`."""
    for w in watches:
        metric_alarm(
            f"{member}-{w.suffix}",
            f"{member}: {w.what}",
            topic,
            opts,
            namespace=kind.metrics,
            metric_name=w.metric,
            dimensions={kind.member_dimension: member},
            statistic=w.statistic,
            period=w.period,
            evaluation_periods=w.periods,
            threshold=w.threshold,
            comparison_operator=_COMPARISONS[w.above_or_below],
            treat_missing_data=w.missing,
        )
