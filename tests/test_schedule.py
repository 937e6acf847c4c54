"""The sleep schedule of dev (EventBridge Scheduler): targets, order, time zone, the exact IAM,
config errors for unsafe combinations, and clones inheriting it."""

from __future__ import annotations

import json
import re

import pytest

from components.config import SleepScheduleConfig
from components.config_loader import ConfigError, load_stack_config
from components.schedule import cron
from tests.harness import stack_plan, stack_raw, with_overrides

SCHEDULE = "aws:scheduler/schedule:Schedule"
ACCOUNT = "123456789012"
SDK = "arn:aws:scheduler:::aws-sdk:"


def _schedules(plan) -> dict[str, dict]:
    return {r["props"]["name"].removeprefix(f"{plan['stack']}-"): r["props"] for r in plan.of_type(SCHEDULE)}


def _minutes(expr: str) -> tuple[int, str]:
    m = re.fullmatch(r"cron\((\d+) (\d+) \? \* ([A-Z,]+) \*\)", expr)
    assert m, expr
    return int(m[2]) * 60 + int(m[1]), m[3]


def test_dev_sleeps_every_node_group_turn_database_and_nat_and_wakes_them():
    plan = stack_plan("dev")
    scheds = _schedules(plan)
    node_groups = {ng["props"]["nodeGroupName"]: ng for ng in plan.of_type("aws:eks/nodeGroup:NodeGroup")}
    turn_ids = sorted(i["id"] for i in plan.of_type("aws:ec2/instance:Instance") if "-turn-" in i["name"])
    db = next(r for r in plan.of_type("aws:rds/instance:Instance") if not r["props"].get("replicateSourceDb"))
    asg = plan.of_type("aws:autoscaling/group:Group")[0]

    targets: dict[str, set] = {}
    for props in scheds.values():
        assert props["scheduleExpressionTimezone"] == "Asia/Seoul" and props["groupName"] == "dev-sleep"
        assert props["flexibleTimeWindow"] == {"mode": "OFF"}
        t = props["target"]
        assert t["arn"].startswith(SDK)
        targets.setdefault(t["arn"].removeprefix(SDK), set()).add(t["input"])
    sleeping = {json.loads(i)["NodegroupName"]: json.loads(i)["ScalingConfig"] for i in targets["eks:updateNodegroupConfig"]}
    assert set(sleeping) == set(node_groups)
    for name, ng in node_groups.items():
        size = ng["props"]["scalingConfig"]
        inputs = [json.loads(i) for i in targets["eks:updateNodegroupConfig"] if json.loads(i)["NodegroupName"] == name]
        assert {json.dumps(i["ScalingConfig"], sort_keys=True) for i in inputs} == {
            json.dumps({"MinSize": 0, "DesiredSize": 0, "MaxSize": size["maxSize"]}, sort_keys=True),
            json.dumps({"MinSize": size["minSize"], "DesiredSize": size["desiredSize"], "MaxSize": size["maxSize"]}, sort_keys=True),
        }
    assert {json.dumps(json.loads(i)) for i in targets["ec2:stopInstances"]} == {json.dumps({"InstanceIds": turn_ids})}
    assert {json.loads(i)["DbInstanceIdentifier"] for i in targets["rds:stopDBInstance"] | targets["rds:startDBInstance"]} == {
        db["props"]["identifier"]
    }
    nat = [json.loads(i) for i in targets["autoscaling:updateAutoScalingGroup"]]
    assert sorted(n["DesiredCapacity"] for n in nat) == [0, 1] and {n["AutoScalingGroupName"] for n in nat} == {asg["props"]["name"]}


def test_wake_order_database_and_nat_before_nodes_and_sleep_order_nodes_before_database():
    plan = stack_plan("dev")
    cfg = plan["config"]["schedule"]
    at = {key: _minutes(p["scheduleExpression"]) for key, p in _schedules(plan).items()}
    assert {days for _, days in at.values()} == {",".join(cfg["days"])}
    wake_db, wake_nat = at["wake-database"][0], at["wake-nat"][0]
    for key, (minute, _) in at.items():
        if key.startswith("wake-nodes"):
            assert minute - max(wake_db, wake_nat) == cfg["nodesAfterMinutes"] >= 5
        if key.startswith("sleep-nodes"):
            assert minute < at["sleep-database"][0] and minute < at["sleep-nat"][0]
    assert at["wake-database"][0] == 8 * 60 and at["sleep-nodes-1"][0] == 20 * 60


def test_scheduler_role_is_exact_and_assumable_only_by_this_stages_schedules():
    plan = stack_plan("dev")
    (role,) = [r for r in plan.of_type("aws:iam/role:Role") if r["name"] == "dev-sleep-scheduler"]
    trust = json.loads(role["props"]["assumeRolePolicy"])["Statement"]
    assert trust == [
        {
            "Effect": "Allow",
            "Principal": {"Service": "scheduler.amazonaws.com"},
            "Action": "sts:AssumeRole",
            "Condition": {
                "StringEquals": {"aws:SourceAccount": ACCOUNT},
                "ArnLike": {"aws:SourceArn": f"arn:aws:scheduler:ap-northeast-2:{ACCOUNT}:schedule/dev-sleep/*"},
            },
        }
    ]
    (policy,) = [r for r in plan.of_type("aws:iam/rolePolicy:RolePolicy") if r["name"] == "dev-sleep-scheduler"]
    statements = {s["Sid"]: (s["Action"], s["Resource"]) for s in json.loads(policy["props"]["policy"])["Statement"]}
    turn = next(i["id"] for i in plan.of_type("aws:ec2/instance:Instance") if "-turn-" in i["name"])
    arn = f"ap-northeast-2:{ACCOUNT}"
    assert statements == {
        "NodeGroupsScale": (
            "eks:UpdateNodegroupConfig",
            [f"arn:aws:eks:{arn}:nodegroup/dev-eks/{ng}/*" for ng in ("dev-system", "dev-signaling")],  # no dev-api: apiNodes null
        ),
        "DatabaseStopStart": (["rds:StopDBInstance", "rds:StartDBInstance"], f"arn:aws:rds:{arn}:db:dev-postgres"),
        "TurnStopStart": (["ec2:StopInstances", "ec2:StartInstances"], [f"arn:aws:ec2:{arn}:instance/{turn}"]),
        "NatInstanceScale": (
            "autoscaling:UpdateAutoScalingGroup",
            f"arn:aws:autoscaling:{arn}:autoScalingGroup:*:autoScalingGroupName/dev-nat",
        ),
    }
    # Every action a schedule calls is granted (and nothing else).
    called = {p["target"]["arn"].removeprefix(SDK).split(":")[1].lower() for p in _schedules(plan).values()}
    granted = {a.split(":")[1].lower() for actions, _ in statements.values() for a in ([actions] if isinstance(actions, str) else actions)}
    assert called == granted


def test_stages_without_a_schedule_have_none():
    for stack in ("nas-migration", "production"):
        assert not stack_plan(stack).of_type(SCHEDULE)


@pytest.mark.parametrize(
    "stack, overrides, message",
    [
        ("production", {"voip-infra:schedule": {"enabled": True}}, "voip-infra:schedule.enabled: a sleep schedule stops the database"),
        (
            "dev",
            {"voip-infra:database": {"readReplicas": 1}},
            "voip-infra:schedule.enabled: RDS cannot stop an instance that has read replicas",
        ),
        ("dev", {"voip-infra:schedule": {"sleepAt": "07:00"}}, "voip-infra:schedule.sleepAt: 07:00 must be after wakeAt 08:00"),
        ("dev", {"voip-infra:schedule": {"sleepAt": "23:55"}}, "voip-infra:schedule.sleepAt: 23:55 is too late"),
        (
            "dev",
            {"voip-infra:schedule": {"timezone": "Korea/Busan"}},
            "voip-infra:schedule.timezone: 'Korea/Busan' is not an IANA time zone",
        ),
        ("dev", {"voip-infra:schedule": {"days": ["MON", "MON"]}}, "voip-infra:schedule.days: each day may appear once"),
        # the other unsafe combinations of issue 13
        (
            "production",
            {"voip-infra:cluster": {"systemNodes": {"capacityType": "SPOT"}}},
            "voip-infra:cluster.systemNodes.capacityType: SPOT is not allowed while protectData is true",
        ),
        (
            "production",
            {"voip-infra:database": {"instanceClass": "db.t4g.large"}},
            "voip-infra:database.instanceClass: db.t4g.large is burstable (CPU credits) and the stage holds data",
        ),
        (
            "nas-migration",
            {"voip-infra:database": {"allowBurstableWriter": False}},
            "voip-infra:database.instanceClass: db.t4g.medium is burstable",
        ),
    ],
)
def test_unsafe_combinations_are_config_errors(stack, overrides, message):
    raw, _ = stack_raw(stack)
    with pytest.raises(ConfigError) as err:
        load_stack_config(stack, with_overrides(raw, overrides))
    assert any(line.startswith(f"error: {message}") for line in err.value.lines), err.value.lines


def test_burstable_writer_is_accepted_with_the_explicit_override():
    raw, _ = stack_raw("production")
    cfg = load_stack_config(
        "production", with_overrides(raw, {"voip-infra:database": {"instanceClass": "db.t4g.large", "allowBurstableWriter": True}})
    )
    assert cfg.database.instance_class == "db.t4g.large"


def test_awake_hours_and_cron():
    cfg = SleepScheduleConfig.model_validate({"enabled": True})
    assert cfg.awake_hours_per_week() == 60  # Mon-Fri 08:00-20:00
    assert cron("08:00", ["MON", "FRI"], 15) == "cron(15 8 ? * MON,FRI *)"
    with pytest.raises(ValueError):
        cron("23:55", ["MON"], 10)


def test_clones_of_dev_inherit_the_schedule(tmp_path):
    import datetime
    import shutil

    from tools.clone_stack import clone_stack
    from tools.stackfile import STACKS, load_stack_file

    stacks = tmp_path / "stacks"
    shutil.copytree(STACKS, stacks)
    result = clone_stack("dev", "qa", stacks, today=datetime.date(2026, 11, 29))
    raw, _ = load_stack_file(result.path)
    cfg = load_stack_config("qa", raw)
    assert cfg.schedule.enabled and cfg.schedule.timezone == "Asia/Seoul" and cfg.network.nat_strategy == "instance"
