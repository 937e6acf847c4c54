"""The sleep schedule (`schedule`, dev and clones): EventBridge Scheduler puts the stage to sleep
outside working hours and wakes it in order.

Sleep at `sleepAt`: every EKS node group to 0 nodes (its pods and the autoscaler with them) and
the TURN nodes stopped; `STOP_DELAY` minutes later the database and the NAT instance. Wake at
`wakeAt`: database, NAT instance and TURN nodes; `nodesAfterMinutes` later the node groups, so the
pods start against a database that is up. Universal targets (`aws-sdk:<service>:<action>`) call
the APIs directly: no Lambda to keep. The role may call exactly those actions on exactly these
resources, and only schedules of this stage's group may assume it.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field

import pulumi
import pulumi_aws as aws

from components.config import SleepScheduleConfig
from components.context import StageContext
from components.iam import allow, policy_document

STOP_DELAY_MINUTES = 10  # the database stops after the nodes that use it
SDK = "arn:aws:scheduler:::aws-sdk"


@dataclass
class SleepingNodeGroup:
    node_group_name: pulumi.Input[str]
    min_size: pulumi.Input[int]
    desired_size: pulumi.Input[int]
    max_size: pulumi.Input[int]


@dataclass
class ScheduleArgs:
    ctx: StageContext
    config: SleepScheduleConfig
    cluster_name: pulumi.Input[str]
    node_groups: Sequence[SleepingNodeGroup]
    db_instance_identifier: pulumi.Input[str]
    turn_instance_ids: Sequence[pulumi.Input[str]] = field(default_factory=tuple)
    nat_asg_name: pulumi.Input[str] | None = None


def cron(hh_mm: str, days: Sequence[str], plus_minutes: int = 0) -> str:
    """`cron(M H ? * DAYS *)` in the schedule's own time zone."""
    h, m = map(int, hh_mm.split(":"))
    total = h * 60 + m + plus_minutes
    if total >= 24 * 60:
        raise ValueError(f"{hh_mm} + {plus_minutes} min passes midnight")
    return f"cron({total % 60} {total // 60} ? * {','.join(days)} *)"


def role_policy(
    region: str, account: str, cluster: str, node_groups: Sequence[str], db: str, instances: Sequence[str], asg: str | None
) -> str:
    statements = [
        allow(
            "NodeGroupsScale",
            "eks:UpdateNodegroupConfig",
            [f"arn:aws:eks:{region}:{account}:nodegroup/{cluster}/{ng}/*" for ng in node_groups],
        ),
        allow("DatabaseStopStart", ["rds:StopDBInstance", "rds:StartDBInstance"], f"arn:aws:rds:{region}:{account}:db:{db}"),
    ]
    if instances:
        statements.append(
            allow(
                "TurnStopStart",
                ["ec2:StopInstances", "ec2:StartInstances"],
                [f"arn:aws:ec2:{region}:{account}:instance/{i}" for i in instances],
            )
        )
    if asg:
        statements.append(
            allow(
                "NatInstanceScale",
                "autoscaling:UpdateAutoScalingGroup",
                f"arn:aws:autoscaling:{region}:{account}:autoScalingGroup:*:autoScalingGroupName/{asg}",
            )
        )
    return policy_document(statements)


class SleepSchedule(pulumi.ComponentResource):
    """`schedules`: name -> aws.scheduler.Schedule; `role`."""

    def __init__(self, name: str, args: ScheduleArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("voip:cost:SleepSchedule", name, None, opts)
        ctx, cfg = args.ctx, args.config
        stage, region, account_id = ctx.stage, ctx.region, ctx.account_id
        child = pulumi.ResourceOptions(parent=self)
        self.group = aws.scheduler.ScheduleGroup(f"{stage}-sleep", name=f"{stage}-sleep", opts=child)
        self.role = aws.iam.Role(
            f"{stage}-sleep-scheduler",
            description=f"EventBridge Scheduler: put {stage} to sleep and wake it",
            assume_role_policy=pulumi.Output.all(account_id, self.group.name).apply(
                lambda v: policy_document(
                    [
                        {
                            "Effect": "Allow",
                            "Principal": {"Service": "scheduler.amazonaws.com"},
                            "Action": "sts:AssumeRole",
                            "Condition": {
                                "StringEquals": {"aws:SourceAccount": v[0]},
                                "ArnLike": {"aws:SourceArn": f"arn:aws:scheduler:{region}:{v[0]}:schedule/{v[1]}/*"},
                            },
                        }
                    ]
                )
            ),
            opts=child,
        )
        ng_names = [ng.node_group_name for ng in args.node_groups]
        n_ng, n_turn = len(ng_names), len(args.turn_instance_ids)
        policy = aws.iam.RolePolicy(
            f"{stage}-sleep-scheduler",
            role=self.role.id,
            policy=pulumi.Output.all(
                account_id, args.cluster_name, args.db_instance_identifier, args.nat_asg_name, *ng_names, *args.turn_instance_ids
            ).apply(lambda v: role_policy(region, v[0], v[1], v[4 : 4 + n_ng], v[2], v[4 + n_ng : 4 + n_ng + n_turn], v[3])),
            opts=pulumi.ResourceOptions(parent=self.role),
        )
        self.schedules: dict[str, aws.scheduler.Schedule] = {}
        days = cfg.days

        def schedule(key: str, when: str, action: str, payload: pulumi.Input[dict], description: str) -> None:
            self.schedules[key] = aws.scheduler.Schedule(
                f"{stage}-{key}",
                name=f"{stage}-{key}",
                group_name=self.group.name,
                description=description,
                schedule_expression=when,
                schedule_expression_timezone=cfg.timezone,
                flexible_time_window={"mode": "OFF"},
                target={
                    "arn": f"{SDK}:{action}",
                    "role_arn": self.role.arn,
                    "input": pulumi.Output.from_input(payload).apply(lambda p: json.dumps(p, sort_keys=True)),
                    "retry_policy": {"maximum_event_age_in_seconds": 3600, "maximum_retry_attempts": 5},
                },
                opts=pulumi.ResourceOptions(parent=self, depends_on=[policy]),
            )

        sleep, wake = cfg.sleep_at, cfg.wake_at
        for i, ng in enumerate(args.node_groups):
            nodes = pulumi.Output.from_input(ng.node_group_name)
            base = {"ClusterName": args.cluster_name, "NodegroupName": nodes}
            schedule(
                f"sleep-nodes-{i + 1}",
                cron(sleep, days),
                "eks:updateNodegroupConfig",
                {**base, "ScalingConfig": {"MinSize": 0, "DesiredSize": 0, "MaxSize": ng.max_size}},
                "node group to zero",
            )
            schedule(
                f"wake-nodes-{i + 1}",
                cron(wake, days, cfg.nodes_after_minutes),
                "eks:updateNodegroupConfig",
                {**base, "ScalingConfig": {"MinSize": ng.min_size, "DesiredSize": ng.desired_size, "MaxSize": ng.max_size}},
                f"node group back to its size, {cfg.nodes_after_minutes} min after the database",
            )
        if args.turn_instance_ids:
            ids = pulumi.Output.all(*args.turn_instance_ids)
            schedule("sleep-turn", cron(sleep, days), "ec2:stopInstances", {"InstanceIds": ids}, "stop the TURN nodes")
            schedule("wake-turn", cron(wake, days), "ec2:startInstances", {"InstanceIds": ids}, "start the TURN nodes")
        db = {"DbInstanceIdentifier": args.db_instance_identifier}
        schedule("sleep-database", cron(sleep, days, STOP_DELAY_MINUTES), "rds:stopDBInstance", db, "stop the database after the nodes")
        schedule("wake-database", cron(wake, days), "rds:startDBInstance", db, "start the database first")
        if args.nat_asg_name is not None:
            nat = {"AutoScalingGroupName": args.nat_asg_name}
            schedule(
                "sleep-nat",
                cron(sleep, days, STOP_DELAY_MINUTES),
                "autoscaling:updateAutoScalingGroup",
                {**nat, "MinSize": 0, "MaxSize": 0, "DesiredCapacity": 0},
                "NAT instance to zero",
            )
            schedule(
                "wake-nat",
                cron(wake, days),
                "autoscaling:updateAutoScalingGroup",
                {**nat, "MinSize": 1, "MaxSize": 1, "DesiredCapacity": 1},
                "NAT instance back before the nodes",
            )
        self.register_outputs({"scheduleGroup": self.group.name, "roleArn": self.role.arn, "schedules": list(self.schedules)})
