"""CI inside each stage's VPC: the CodeBuild-hosted GitHub Actions runner, its reach to the private
cluster API, least privilege, and the targets a first run creates it with."""

from __future__ import annotations

import json

from tests.harness import stack_plan
from tools.runner_targets import runner_targets

PROJECT = "aws:codebuild/project:Project"


def runner(plan):
    (project,) = plan.of_type(PROJECT)
    return project


def test_runner_project_in_the_private_subnets(plan):
    stage = plan["stack"]
    props = runner(plan)["props"]
    assert props["name"] == f"{stage}-voip-ci-runner"
    assert props["source"] == {"type": "GITHUB", "location": "https://github.com/example-org/voip-infra.git"}
    assert props["environment"]["image"] == "aws/codebuild/standard:7.0" and props["environment"]["type"] == "LINUX_CONTAINER"
    private = {s["id"] for s in plan.of_type("aws:ec2/subnet:Subnet") if s["props"]["tags"]["tier"] == "private"}
    assert set(props["vpcConfig"]["subnets"]) == private
    (sg_id,) = props["vpcConfig"]["securityGroupIds"]
    sg = plan.by_id(sg_id)["props"]
    assert not sg.get("ingress") and [(e["fromPort"], e["toPort"]) for e in sg["egress"]] == [(443, 443)]
    (hook,) = plan.of_type("aws:codebuild/webhook:Webhook")
    assert hook["props"]["filterGroups"] == [{"filters": [{"type": "EVENT", "pattern": "WORKFLOW_JOB_QUEUED"}]}]


def test_runner_reaches_the_private_api_and_nothing_else(plan):
    stage = plan["stack"]
    sg_id = runner(plan)["props"]["vpcConfig"]["securityGroupIds"][0]
    (rule,) = [
        r
        for r in plan.of_type("aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule")
        if r["name"] == f"{stage}-eks-api-from-ci-runner"
    ]
    (cluster,) = plan.of_type("aws:eks/cluster:Cluster")
    assert rule["props"]["referencedSecurityGroupId"] == sg_id and (rule["props"]["fromPort"], rule["props"]["toPort"]) == (443, 443)
    assert rule["props"]["securityGroupId"] == f"sg-eks-{cluster['id'][-8:]}"
    role = plan.by_urn(next(r["urn"] for r in plan.of_type("aws:iam/role:Role") if r["name"] == f"{stage}-ci-runner"))
    trust = json.loads(role["props"]["assumeRolePolicy"])["Statement"][0]
    assert (
        trust["Condition"]["StringEquals"]["aws:SourceArn"]
        == f"arn:aws:codebuild:ap-northeast-2:123456789012:project/{stage}-voip-ci-runner"
    )
    (policy,) = [p for p in plan.of_type("aws:iam/rolePolicy:RolePolicy") if p["name"] == f"{stage}-ci-runner"]
    actions = {
        a
        for st in json.loads(policy["props"]["policy"])["Statement"]
        for a in ([st["Action"]] if isinstance(st["Action"], str) else st["Action"])
    }
    # Logs and VPC interfaces only: the jobs assume the stage's CI roles through OIDC.
    assert all(a.startswith(("logs:", "ec2:")) for a in actions) and "ec2:CreateNetworkInterfacePermission" in actions


def test_runner_targets_are_closed_and_leave_the_cluster_out():
    plan = stack_plan("production")
    targets = runner_targets(plan)
    by_urn = {r["urn"]: r for r in plan.resources}
    types = {by_urn[u]["type"] for u in targets}
    assert {"aws:codebuild/project:Project", "aws:ec2/natGateway:NatGateway", "aws:ec2/route:Route", "pulumi:providers:aws"} <= types
    assert not {t for t in types if t.startswith(("aws:eks/", "kubernetes:", "aws:rds/"))}
    # Closed: every target's dependencies and parent are targets too (else `up --target` fails).
    from tools.critical_path import dependencies

    graph = dependencies(plan)
    for urn in targets:
        assert graph.get(urn, set()) <= set(targets), urn
        parent = by_urn[urn]["parent"]
        assert parent is None or parent in targets
