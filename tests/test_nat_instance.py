"""natStrategy instance: the plan (ASG of 1 over the public subnets, IMDSv2, no SSH, exact IAM)
and the boot/route scripts run for real in bash against stub `aws` and `curl` commands, which is
as far as the route re-pointing after a replacement can be proven without an account."""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
from pathlib import Path

import pytest

from components.nat_instance import FORWARDED, NAT_TAG, role_policy, route_script, user_data
from tests.harness import one, stack_plan

ASG = "aws:autoscaling/group:Group"
ACCOUNT = "123456789012"


@pytest.mark.parametrize("stack", ["dev", "nas-migration"])
def test_asg_of_one_over_every_public_subnet_with_no_nat_gateway(stack):
    plan = stack_plan(stack)
    assert plan["config"]["network"]["natStrategy"] == "instance"
    assert not plan.of_type("aws:ec2/natGateway:NatGateway")
    asg = one(plan, ASG)
    p = asg["props"]
    assert (p["minSize"], p["maxSize"], p["desiredCapacity"]) == (1, 1, 1)
    public = {s["id"] for s in plan.of_type("aws:ec2/subnet:Subnet") if s["props"]["tags"]["tier"] == "public"}
    assert set(p["vpcZoneIdentifiers"]) == public and len(public) >= 2  # a replacement may land in the other AZ
    assert p["healthCheckType"] == "EC2" and p["instanceRefresh"]["strategy"] == "Rolling"
    lt = plan.by_id(p["launchTemplate"]["id"])["props"]
    assert lt["instanceType"] == plan["config"]["network"]["natInstanceType"] and lt["instanceType"].split(".")[0].endswith("g")
    assert lt["imageId"] == "resolve:ssm:/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-arm64"
    assert lt["metadataOptions"] == {"httpEndpoint": "enabled", "httpTokens": "required", "httpPutResponseHopLimit": 1}
    assert lt["blockDeviceMappings"][0]["ebs"]["encrypted"] == "true"
    assert "keyName" not in lt
    assert {t["resourceType"]: t["tags"][NAT_TAG] for t in lt["tagSpecifications"]} == {"instance": stack, "volume": stack}
    # No Pulumi-owned default route: the instance owns it (a Pulumi route would fight it).
    private_rts = {rt["id"] for rt in plan.of_type("aws:ec2/routeTable:RouteTable") if "-private-" in rt["name"]}
    assert not [
        r
        for r in plan.of_type("aws:ec2/route:Route")
        if r["props"]["routeTableId"] in private_rts and r["props"].get("destinationCidrBlock") == "0.0.0.0/0"
    ]
    eip = one(plan, "aws:ec2/eip:Eip", lambda r: r["name"] == f"{stack}-nat-eip")
    assert eip["protect"] is plan["config"]["protectData"]


@pytest.mark.parametrize("stack", ["dev", "nas-migration"])
def test_role_may_do_exactly_what_the_scripts_call_on_exactly_these_resources(stack):
    plan = stack_plan(stack)
    policy = json.loads(
        one(plan, "aws:iam/rolePolicy:RolePolicy", lambda r: r["name"] == f"{stack}-nat-instance-routes")["props"]["policy"]
    )
    # In AZ order (the route tables are named after their AZ).
    private_rts = [
        rt["id"] for rt in sorted(plan.of_type("aws:ec2/routeTable:RouteTable"), key=lambda r: r["name"]) if "-private-" in rt["name"]
    ]
    eip = one(plan, "aws:ec2/eip:Eip", lambda r: r["name"] == f"{stack}-nat-eip")
    assert policy == json.loads(role_policy("ap-northeast-2", ACCOUNT, stack, eip["id"], private_rts))
    st = {s["Sid"]: s for s in policy["Statement"]}
    assert st["PrivateDefaultRoutes"]["Resource"] == [f"arn:aws:ec2:ap-northeast-2:{ACCOUNT}:route-table/{rt}" for rt in private_rts]
    assert st["ThisStagesNatInstance"]["Condition"] == {"StringEquals": {f"aws:ResourceTag/{NAT_TAG}": stack}}
    assert all("*" != s["Resource"] for s in policy["Statement"])
    trust = json.loads(one(plan, "aws:iam/role:Role", lambda r: r["name"] == f"{stack}-nat-instance")["props"]["assumeRolePolicy"])
    assert trust["Statement"][0]["Principal"] == {"Service": "ec2.amazonaws.com"}


def test_security_group_forwards_the_vpc_but_never_admin_ports():
    plan = stack_plan("dev")
    sg = one(plan, "aws:ec2/securityGroup:SecurityGroup", lambda r: r["name"] == "dev-nat-instance-sg")
    for rule in sg["props"]["ingress"]:
        assert rule["cidrBlocks"] == [plan["config"]["network"]["cidr"]]
        if rule["protocol"] in ("tcp", "udp"):
            assert not rule["fromPort"] <= 22 <= rule["toPort"] and not rule["fromPort"] <= 3389 <= rule["toPort"]
    covered = {(p, port) for p, lo, hi in FORWARDED if p != "icmp" for port in (21, 23, 443, 3388, 3390, 65535) if lo <= port <= hi}
    assert covered == {(p, port) for p in ("tcp", "udp") for port in (21, 23, 443, 3388, 3390, 65535)}


# ------------------------------------------------------------------ the scripts, for real


def _stubs(tmp: Path, *, missing_route: str, instance_id: str = "i-0new") -> dict[str, str]:
    """`aws` records its arguments and fails replace-route for `missing_route` (no route yet);
    `curl` answers IMDSv2 (token, then the instance id)."""
    bin_dir = tmp / "bin"
    bin_dir.mkdir()
    log = tmp / "aws.log"
    (bin_dir / "aws").write_text(
        f"""#!/bin/bash
echo "$*" >> {log}
if [[ "$*" == *"replace-route"* && "$*" == *"--route-table-id {missing_route} "* ]]; then echo "RouteNotFound" >&2; exit 254; fi
exit 0
"""
    )
    (bin_dir / "curl").write_text(
        f"""#!/bin/bash
if [[ "$*" == *"api/token"* ]]; then echo -n TOKEN; else [[ "$*" == *"X-aws-ec2-metadata-token: TOKEN"* ]] && echo -n {instance_id}; fi
"""
    )
    for f in ("aws", "curl"):
        (bin_dir / f).chmod(stat.S_IRWXU)
    return {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}"}


def test_route_script_points_every_private_route_at_the_new_instance(tmp_path):
    script = tmp_path / "routes.sh"
    script.write_text(route_script("ap-northeast-2", ["rtb-a", "rtb-c"]))
    env = _stubs(tmp_path, missing_route="rtb-c", instance_id="i-0replacement")
    proc = subprocess.run(["bash", str(script)], env=env, capture_output=True, text=True, timeout=30)
    assert proc.returncode == 0, proc.stderr
    calls = (tmp_path / "aws.log").read_text().splitlines()
    assert calls == [
        "ec2 replace-route --region ap-northeast-2 --route-table-id rtb-a --destination-cidr-block 0.0.0.0/0 --instance-id i-0replacement",
        "ec2 replace-route --region ap-northeast-2 --route-table-id rtb-c --destination-cidr-block 0.0.0.0/0 --instance-id i-0replacement",
        "ec2 create-route --region ap-northeast-2 --route-table-id rtb-c --destination-cidr-block 0.0.0.0/0 --instance-id i-0replacement",
    ]


def test_route_script_fails_loudly_without_an_instance_id(tmp_path):
    script = tmp_path / "routes.sh"
    script.write_text(route_script("ap-northeast-2", ["rtb-a"]))
    env = _stubs(tmp_path, missing_route="none", instance_id="")
    proc = subprocess.run(["bash", str(script)], env=env, capture_output=True, text=True, timeout=30)
    assert proc.returncode == 1 and "no instance id" in proc.stderr
    assert not (tmp_path / "aws.log").exists()


def test_boot_script_is_valid_bash_and_takes_the_address_before_the_routes(tmp_path):
    text = user_data("ap-northeast-2", "10.20.0.0/16", "eipalloc-1", ["rtb-a", "rtb-c"])
    path = tmp_path / "boot.sh"
    path.write_text(text)
    assert subprocess.run(["bash", "-n", str(path)], capture_output=True, timeout=30).returncode == 0
    order = [
        "net.ipv4.ip_forward = 1",
        "-s 10.20.0.0/16 -j MASQUERADE",
        "--no-source-dest-check",
        'associate-address --region "$REGION" --allocation-id eipalloc-1',
        "--allow-reassociation",
        "OnUnitActiveSec=60",
        "systemctl enable --now voip-nat-routes.timer",
    ]
    positions = [text.index(s) for s in order]
    assert positions == sorted(positions)
    # The embedded route script is the same one tested above.
    assert route_script("ap-northeast-2", ["rtb-a", "rtb-c"]) in text


@pytest.mark.skipif(shutil.which("bash") is None, reason="bash")
def test_plan_user_data_renders_the_plans_route_tables_and_eip():
    import base64

    plan = stack_plan("dev")
    lt = one(plan, "aws:ec2/launchTemplate:LaunchTemplate", lambda r: r["name"] == "dev-nat-lt")
    text = base64.b64decode(lt["props"]["userData"]).decode()
    eip = one(plan, "aws:ec2/eip:Eip", lambda r: r["name"] == "dev-nat-eip")
    private_rts = [
        rt["id"] for rt in sorted(plan.of_type("aws:ec2/routeTable:RouteTable"), key=lambda r: r["name"]) if "-private-" in rt["name"]
    ]
    assert f"--allocation-id {eip['id']}" in text
    assert f"for rt in {' '.join(private_rts)}; do" in text
