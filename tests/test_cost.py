"""`tools cost`: exact arithmetic on synthetic plans, completeness on the real stacks, the CLI contract."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

from tests.harness import stack_plan
from tools import prices as P
from tools.cost import NOT_PRICED, estimate, format_total, render
from tools.plan import write_json

ROOT = Path(__file__).resolve().parent.parent
H = 730
IPV4 = P.PUBLIC_IPV4_HOURLY * H


def _cents(usd: float) -> int:
    """Cents, half-up (the rule docs/cost.md states), independent of tools.cost's helper."""
    return int(Decimal(f"{usd:.6f}").quantize(Decimal("0.01"), rounding=ROUND_HALF_UP) * 100)


def res(typ: str, name: str, props: dict | None = None, *, rid: str | None = None, parent: str | None = "urn:comp", custom: bool = True):
    return {
        "urn": f"urn:pulumi:t::voip-infra::{typ}::{name}",
        "type": typ,
        "name": name,
        "custom": custom,
        "id": rid or (f"id-{name}" if custom else None),
        "parent": parent,
        "provider": None,
        "protect": False,
        "retainOnDelete": False,
        "aliases": [],
        "dependsOn": [],
        "props": props or {},
    }


def synthetic(*resources) -> dict:
    comp = res("voip:test:Comp", "comp", parent=None, custom=False)
    comp["urn"] = "urn:comp"
    return {"version": 1, "project": "voip-infra", "stack": "t", "config": {}, "resources": [comp, *resources], "outputs": {}}


# ------------------------------------------------------------------ exact arithmetic


def test_nat_gateway_is_hourly_price_plus_its_public_ipv4():
    report = estimate(synthetic(res("aws:ec2/natGateway:NatGateway", "nat", {"connectivityType": "public"})))
    assert report.line("nat").cents == _cents(P.NAT_GATEWAY_HOURLY * H + IPV4) == 4672  # 0.059 × 730 + 0.005 × 730
    assert report.total_cents == 4672


def test_eip_of_a_nat_gateway_is_not_counted_twice_but_a_free_standing_eip_is():
    plan = synthetic(
        res("aws:ec2/eip:Eip", "nat-eip", {"domain": "vpc"}, rid="eipalloc-1"),
        res("aws:ec2/natGateway:NatGateway", "nat", {"allocationId": "eipalloc-1"}),
        res("aws:ec2/eip:Eip", "turn-eip", {"domain": "vpc"}, rid="eipalloc-2"),
    )
    report = estimate(plan)
    assert report.line("nat-eip").cents == 0 and "counted on nat" in report.line("nat-eip").basis
    assert report.line("turn-eip").cents == _cents(IPV4) == 365
    assert report.total_cents == 4672 + 365


def test_rds_multi_az_doubles_instance_and_storage_and_replicas_are_single_az_with_the_source_storage():
    db = {"instanceClass": "db.r7g.large", "allocatedStorage": 100, "storageType": "gp3", "identifier": "db"}
    single = estimate(synthetic(res("aws:rds/instance:Instance", "db", {**db, "multiAz": False}))).line("db")
    multi = estimate(synthetic(res("aws:rds/instance:Instance", "db", {**db, "multiAz": True}))).line("db")
    per_copy = P.RDS_POSTGRES_HOURLY["db.r7g.large"] * H + 100 * P.RDS_STORAGE_GB_MONTH["gp3"]
    assert single.cents == _cents(per_copy)
    assert multi.cents == _cents(2 * per_copy)
    assert "2 × db.r7g.large Multi-AZ" in multi.basis

    replica = {"instanceClass": "db.r7g.large", "storageType": "gp3", "replicateSourceDb": "db", "multiAz": False}
    report = estimate(
        synthetic(res("aws:rds/instance:Instance", "db", {**db, "multiAz": True}), res("aws:rds/instance:Instance", "r1", replica))
    )
    assert report.line("r1").cents == single.cents  # storage of the source, one copy


def test_spot_node_group_applies_the_spot_fraction_to_instances_not_disks():
    lt = res(
        "aws:ec2/launchTemplate:LaunchTemplate",
        "lt",
        {"blockDeviceMappings": [{"deviceName": "/dev/xvda", "ebs": {"volumeSize": 40, "volumeType": "gp3"}}]},
        rid="lt-1",
    )

    def group(capacity):
        props = {
            "instanceTypes": ["c7g.large", "m7g.large"],
            "capacityType": capacity,
            "scalingConfig": {"minSize": 1, "desiredSize": 2, "maxSize": 3},
            "launchTemplate": {"id": "lt-1", "version": "1"},
        }
        return estimate(synthetic(lt, res("aws:eks/nodeGroup:NodeGroup", "ng", props))).line("ng")

    disk = 2 * 40 * P.EBS_GB_MONTH["gp3"]
    on_demand, spot = group("ON_DEMAND"), group("SPOT")
    assert on_demand.cents == _cents(2 * P.EC2_HOURLY["c7g.large"] * H + disk)
    assert spot.cents == _cents(2 * P.EC2_HOURLY["c7g.large"] * P.SPOT_FRACTION * H + disk)
    assert "spot" in spot.basis and "spot" not in on_demand.basis


def test_ec2_instance_takes_type_disk_and_monitoring_from_its_launch_template():
    lt = res(
        "aws:ec2/launchTemplate:LaunchTemplate",
        "turn-lt",
        {
            "instanceType": "c7gn.large",
            "monitoring": {"enabled": True},
            "blockDeviceMappings": [{"ebs": {"volumeSize": 16, "volumeType": "gp3"}}],
        },
        rid="lt-t",
    )
    report = estimate(synthetic(lt, res("aws:ec2/instance:Instance", "turn-1", {"launchTemplate": {"id": "lt-t"}})))
    expected = P.EC2_HOURLY["c7gn.large"] * H + 16 * P.EBS_GB_MONTH["gp3"] + P.EC2_DETAILED_MONITORING_MONTH
    assert report.line("turn-1").cents == _cents(expected)


def test_load_balancers_pay_public_ipv4_per_az_only_when_internet_facing():
    subnets = ["subnet-a", "subnet-b", "subnet-c"]
    report = estimate(
        synthetic(
            res("aws:lb/loadBalancer:LoadBalancer", "alb", {"loadBalancerType": "application", "internal": False, "subnets": subnets}),
            res("aws:lb/loadBalancer:LoadBalancer", "internal", {"loadBalancerType": "application", "internal": True, "subnets": subnets}),
            res("aws:lb/loadBalancer:LoadBalancer", "nlb", {"loadBalancerType": "network", "subnets": subnets[:2]}),
        )
    )
    alb_hours = (P.ALB_HOURLY + P.ALB_LCU_HOURLY) * H
    assert report.line("alb").cents == _cents(alb_hours + 3 * IPV4)
    assert report.line("internal").cents == _cents(alb_hours)
    assert report.line("nlb").cents == _cents((P.NLB_HOURLY + P.NLB_NLCU_HOURLY) * H + 2 * IPV4)


def test_small_fixed_fees():
    rules = [
        {"name": "m", "statement": {"managedRuleGroupStatement": {"name": "x"}}},
        {"name": "r", "statement": {"rateBasedStatement": {}}},
    ]
    report = estimate(
        synthetic(
            res("aws:wafv2/webAcl:WebAcl", "acl", {"rules": rules}),
            res("aws:route53/zone:Zone", "zone"),
            res("aws:route53/healthCheck:HealthCheck", "hc", {"type": "TCP", "requestInterval": 30}),
            res("aws:route53/healthCheck:HealthCheck", "hc-fast-https", {"type": "HTTPS", "requestInterval": 10}),
            res("aws:secretsmanager/secret:Secret", "secret"),
            res("aws:kms/key:Key", "key"),
            res("aws:cloudwatch/metricAlarm:MetricAlarm", "alarm", {"period": 300}),
            res("aws:cloudwatch/metricAlarm:MetricAlarm", "alarm-10s", {"period": 10}),
            res("aws:ec2/vpcEndpoint:VpcEndpoint", "sts", {"vpcEndpointType": "Interface", "subnetIds": ["a", "b"]}),
            res("aws:ec2/vpcEndpoint:VpcEndpoint", "s3", {"vpcEndpointType": "Gateway"}),
            res("aws:elasticache/replicationGroup:ReplicationGroup", "redis", {"nodeType": "cache.r7g.large", "numCacheClusters": 2}),
            res("aws:eks/cluster:Cluster", "eks", {"upgradePolicy": {"supportType": "STANDARD"}}),
        )
    )
    cents = {ln.name: ln.cents for ln in report.lines}
    assert cents["acl"] == 500 + 2 * 100
    assert (cents["zone"], cents["hc"], cents["hc-fast-https"]) == (50, 50, 250)
    assert (cents["secret"], cents["key"], cents["alarm"], cents["alarm-10s"]) == (40, 100, 10, 30)
    assert cents["sts"] == _cents(2 * P.INTERFACE_ENDPOINT_HOURLY_PER_AZ * H) and cents["s3"] == 0
    assert cents["redis"] == _cents(2 * P.ELASTICACHE_HOURLY["cache.r7g.large"] * H)
    assert cents["eks"] == 7300


def test_unknown_types_and_unknown_skus_are_listed_at_zero_never_dropped():
    report = estimate(
        synthetic(
            res("aws:foo/bar:Bar", "mystery"),
            res("aws:ec2/instance:Instance", "future", {"instanceType": "x9z.huge"}),
            res("aws:s3/bucket:Bucket", "files"),
        )
    )
    assert [ln.name for ln in report.lines] == ["mystery", "future", "files"]
    mystery, future, files = report.lines
    assert (mystery.cents, mystery.priced) == (0, False) and mystery.basis.startswith(NOT_PRICED)
    assert (future.cents, future.priced) == (0, False) and "x9z.huge" in future.basis
    assert files.basis == f"{NOT_PRICED}: storage and requests"
    assert any("aws:foo/bar:Bar" in n for n in report.notes) and any("x9z.huge" in n for n in report.notes)
    assert report.total_cents == 0 and render(report).splitlines()[-1] == "total_usd_month: 0.00"


def test_lines_group_under_the_nearest_ancestor_component_through_custom_parents():
    lt = res("aws:ec2/launchTemplate:LaunchTemplate", "lt", rid="lt-1")
    ng = res("aws:eks/nodeGroup:NodeGroup", "ng", {"instanceTypes": ["t4g.medium"], "scalingConfig": {"desiredSize": 1}}, parent=lt["urn"])
    orphan = res("aws:kms/key:Key", "orphan", parent=None)
    report = estimate(synthetic(lt, ng, orphan))
    assert report.line("ng").component == "voip:test:Comp comp"
    assert report.line("orphan").component == "(no component)"
    assert sum(sub for _, _, sub in report.by_component()) == report.total_cents


# ------------------------------------------------------------------ the real stacks


def test_every_custom_resource_appears_once_and_lines_sum_to_the_total(plan):
    report = estimate(plan)
    custom = [r["urn"] for r in plan.resources if r["custom"]]
    assert sorted(ln.urn for ln in report.lines) == sorted(custom)
    assert report.total_cents > 0
    assert sum(ln.cents for ln in report.lines) == report.total_cents
    assert not [ln for ln in report.lines if ln.basis.startswith("NOT PRICED")], "a priced type met a SKU missing from tools/prices.py"
    assert not [ln for ln in report.lines if "no estimator" in ln.basis], "a new resource type needs an estimator or a free/usage entry"
    text = render(report)
    assert text.splitlines()[-1] == format_total(report)
    assert all(ln.name in text for ln in report.lines)


def test_stage_totals_are_ordered_production_nas_migration_dev(plans):
    totals = {stack: estimate(p).total_cents for stack, p in plans.items()}
    assert totals["production"] > totals["nas-migration"] > totals["dev"] > 0


def test_production_lines_that_anchor_the_estimate(plans):
    report = estimate(plans["production"])
    eks = [ln for ln in report.lines if ln.type == "aws:eks/cluster:Cluster"]
    assert [ln.cents for ln in eks] == [7300]
    primary = report.line("production-postgres")
    assert "2 × db.r7g.large Multi-AZ" in primary.basis
    # Every public IPv4 is paid exactly once: 9 EIPs (3 NAT, 3 NLB, 3 TURN) + 3 ALB addresses.
    ipv4_lines = sum(ln.basis.count("public IPv4") for ln in report.lines if ln.cents)
    assert ipv4_lines == 3 + 1 + 1 + 3  # 3 NAT lines, ALB line, NLB line, 3 TURN EIP lines
    assert all(ln.cents == 0 for ln in report.lines if ln.type == "aws:ec2/eip:Eip" and "counted on" in ln.basis)


def test_dev_signaling_nodes_are_spot():
    report = estimate(stack_plan("dev"))
    assert "spot" in report.line("dev-signaling-nodes").basis


# ------------------------------------------------------------------ CLI


def test_cli_prints_the_report_and_ends_with_the_total(tmp_path):
    path = tmp_path / "dev.json"
    write_json(stack_plan("dev"), path)
    proc = subprocess.run(
        [sys.executable, "-m", "tools", "cost", "--plan", str(path)], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stderr
    last = proc.stdout.rstrip("\n").splitlines()[-1]
    assert re.fullmatch(r"total_usd_month: [0-9.]+", last)
    assert float(last.split()[1]) == estimate(json.loads(path.read_text())).total_usd


def test_cli_rejects_a_file_that_is_not_a_plan(tmp_path, capsys):
    from tools.__main__ import main  # in-process: the subprocess path is proven above

    bad = tmp_path / "bad.json"
    bad.write_text('{"hello": 1}')
    assert main(["cost", "--plan", str(bad)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error:") and "not a plan file" in err
    assert main(["cost", "--plan", str(tmp_path / "missing.json")]) == 1
    assert "cannot read" in capsys.readouterr().err


def test_production_total_is_near_the_seed_target(plans):
    # Seed 001 targets ~$3,400/month including ~$200 of transfer; the fixed part should land within 25 %.
    total = estimate(plans["production"]).total_usd
    assert 0.75 * 3200 <= total <= 1.25 * 3400


def test_flow_logs_are_priced_from_the_assumed_volume(plans):
    """Issue 15 item 9: the flow log line carries delivery + storage of the stage's assumed
    volume (tools/prices.py), and the chosen defaults are the cheap ones at production volume."""
    gb = P.flow_log_gb_per_month
    # The seed's production setting (CloudWatch Logs, 60 s) vs the chosen one (S3, 600 s).
    seed, chosen = gb("production", 60) * P.FLOW_LOGS_CWL_PER_GB, gb("production", 600) * P.FLOW_LOGS_S3_PER_GB
    assert round(gb("production", 60)) == 222 and round(gb("production", 600)) == 68
    assert round(seed) == 169 and round(chosen) == 26
    assert gb("production", 600, "REJECT") < 0.1 * gb("production", 600)
    assert gb("qa-clone", 600) == gb("dev", 600)  # clones: dev-sized assumption
    for stack, plan in plans.items():
        report = estimate(plan)
        (line,) = [ln for ln in report.lines if ln.type == "aws:ec2/flowLog:FlowLog"]
        net = plan["config"]["network"]
        volume = gb(stack, net["flowLogsAggregationSeconds"], net["flowLogsTrafficType"])
        per_gb = P.FLOW_LOGS_S3_PER_GB if net["flowLogsDestination"] == "s3" else P.FLOW_LOGS_CWL_PER_GB
        assert line.priced and line.cents >= _cents(volume * per_gb) > 0, line
        assert f"{net['flowLogsRetentionDays']} days kept" in line.basis
    prod = next(ln for ln in estimate(plans["production"]).lines if ln.type == "aws:ec2/flowLog:FlowLog")
    assert prod.usd < 35 and "to S3" in prod.basis
