"""Node autoscaling (Cluster Autoscaler) under mocks, per stack: chart, placement, discovery,
Pod Identity, IAM scope, and that `pulumi up` leaves the node groups' desired size to it."""

from __future__ import annotations

import json

import pytest

from components.config import CLUSTER_AUTOSCALER_CHART_MINORS
from components.config_loader import ConfigError, load_stack_config
from tests.harness import config_errors, stack_raw, variant, with_overrides
from tests.resource_types import ASSOCIATION, CLUSTER, NODE_GROUP, RELEASE
from tests.test_support_calendars import autoscaler_minor

COMPONENT = "voip:cluster:NodeAutoscaler"
POOL_LABEL = "voip.example.com/pool"
# Written out here, not imported: the test states what the role may do.
READ = {
    "autoscaling:Describe*",
    "ec2:DescribeImages",
    "ec2:DescribeInstanceTypes",
    "ec2:DescribeLaunchTemplateVersions",
    "ec2:GetInstanceTypesFromInstanceRequirements",
    "eks:DescribeNodegroup",
}
WRITE = {"autoscaling:SetDesiredCapacity", "autoscaling:TerminateInstanceInAutoScalingGroup"}


def autoscaler_cfg(plan):
    return plan["config"]["cluster"]["autoscaler"]


def the_cluster(plan):
    (cluster,) = plan.of_type(CLUSTER)
    return cluster


def the_release(plan):
    (release,) = [r for r in plan.of_type(RELEASE) if r["props"]["chart"] == "cluster-autoscaler"]
    return release


def the_association(plan):
    sa = the_release(plan)["props"]["values"]["rbac"]["serviceAccount"]["name"]
    (assoc,) = [a for a in plan.of_type(ASSOCIATION) if a["props"]["serviceAccount"] == sa]
    return assoc


def role_of(plan, assoc):
    return plan.by_id(assoc["props"]["roleArn"].rsplit("/", 1)[-1])


def policy_statements(plan, role):
    (policy,) = [p for p in plan.of_type("aws:iam/rolePolicy:RolePolicy") if p["parent"] == role["urn"]]
    assert policy["props"]["role"] == role["id"]
    return json.loads(policy["props"]["policy"])["Statement"]


def actions(statement) -> set[str]:
    a = statement["Action"]
    return {a} if isinstance(a, str) else set(a)


# ------------------------------------------------------------------ release


def test_chart_pinned_from_config_and_matching_the_cluster_minor(plan):
    props = the_release(plan)["props"]
    assert props["repositoryOpts"]["repo"] == "https://kubernetes.github.io/autoscaler"
    assert props["chart"] == "cluster-autoscaler"
    assert props["version"] == autoscaler_cfg(plan)["chartVersion"]
    # The autoscaler supports only the Kubernetes minor it was built for: the image the values
    # pin (the newest chart still ships 1.35.0), else the chart's appVersion.
    assert autoscaler_minor(props) == the_cluster(plan)["props"]["version"]
    assert props["namespace"] == "kube-system"
    assert props["atomic"] is True


def test_runs_on_the_system_pool_with_leader_election_replicas(plan):
    values = the_release(plan)["props"]["values"]
    assert values["nodeSelector"] == {POOL_LABEL: "system"}
    # The selector matches the labels of exactly one node group: the system one (untainted).
    (pool,) = [ng for ng in plan.of_type(NODE_GROUP) if ng["props"]["labels"].items() >= values["nodeSelector"].items()]
    assert pool["props"]["nodeGroupName"].endswith("-system")
    assert not pool["props"].get("taints")
    assert values["replicaCount"] == (2 if plan["config"]["protectData"] else 1)
    # Leader election is the autoscaler's default; nothing turns it off.
    assert str(values["extraArgs"].get("leader-elect", True)).lower() == "true"


def test_auto_discovery_names_this_cluster_in_this_region(plan):
    release = the_release(plan)
    values = release["props"]["values"]
    cluster = the_cluster(plan)
    assert values["cloudProvider"] == "aws"
    assert values["autoDiscovery"]["clusterName"] == cluster["props"]["name"]
    assert not values.get("autoscalingGroups"), "auto-discovery only, no hand-listed groups"
    assert values["awsRegion"] == plan["config"]["aws:region"]
    # ...and the release is installed into that same cluster.
    provider = plan.by_urn(release["provider"])
    kubeconfig = json.loads(provider["props"]["kubeconfig"])
    assert kubeconfig["clusters"][0]["name"] == cluster["props"]["name"]


def test_scaling_behaviour_from_config(plan):
    args = the_release(plan)["props"]["values"]["extraArgs"]
    cfg = autoscaler_cfg(plan)
    assert args["balance-similar-node-groups"] is True
    assert args["skip-nodes-with-system-pods"] is False
    assert args["expander"] == "least-waste"
    assert args["scale-down-unneeded-time"] == f"{cfg['scaleDownUnneededMinutes']}m"
    assert args["scale-down-enabled"] is cfg["scaleDownEnabled"]
    # A drained signaling pod gets its whole grace period to close its WebSockets.
    assert args["max-graceful-termination-sec"] >= plan["config"]["signaling"]["terminationGraceSeconds"]


def test_release_waits_for_nodes_dns_and_credentials(plan):
    release = the_release(plan)
    deps = set(release["dependsOn"])
    for ng in plan.of_type(NODE_GROUP):
        assert ng["urn"] in deps
    (coredns,) = [a for a in plan.of_type("aws:eks/addon:Addon") if a["props"]["addonName"] == "coredns"]
    assert coredns["urn"] in deps
    assoc = the_association(plan)
    assert assoc["urn"] in deps
    (agent,) = [a for a in plan.of_type("aws:eks/addon:Addon") if a["props"]["addonName"] == "eks-pod-identity-agent"]
    assert agent["urn"] in assoc["dependsOn"]


# ------------------------------------------------------------------ identity and IAM


def test_pod_identity_binds_the_role_to_exactly_the_release_service_account(plan):
    release = the_release(plan)
    values = release["props"]["values"]
    sa = values["rbac"]["serviceAccount"]
    assert sa["create"] is True and sa["name"]
    assoc = the_association(plan)
    cluster = the_cluster(plan)
    assert assoc["props"]["namespace"] == release["props"]["namespace"]
    assert assoc["props"]["clusterName"] == cluster["props"]["name"]
    role = role_of(plan, assoc)
    assert role["type"] == "aws:iam/role:Role"
    (trust,) = json.loads(role["props"]["assumeRolePolicy"])["Statement"]
    assert trust["Effect"] == "Allow" and trust["Principal"] == {"Service": "pods.eks.amazonaws.com"}
    assert set(trust["Action"]) == {"sts:AssumeRole", "sts:TagSession"}
    cond = trust["Condition"]["StringEquals"]
    assert cond["aws:RequestTag/kubernetes-namespace"] == release["props"]["namespace"]
    assert cond["aws:RequestTag/kubernetes-service-account"] == sa["name"]
    assert cond["aws:SourceAccount"] == "123456789012"
    assert (
        cond["aws:RequestTag/eks-cluster-arn"]
        == f"arn:aws:eks:{plan['config']['aws:region']}:123456789012:cluster/{cluster['props']['name']}"
    )
    # No other association hands this role out.
    assert [a for a in plan.of_type(ASSOCIATION) if a["props"]["roleArn"] == assoc["props"]["roleArn"]] == [assoc]


def test_write_actions_only_on_this_clusters_owned_groups(plan):
    statements = policy_statements(plan, role_of(plan, the_association(plan)))
    name = the_cluster(plan)["props"]["name"]
    assert all(s["Effect"] == "Allow" and "NotAction" not in s and "NotResource" not in s for s in statements)
    writers = [s for s in statements if actions(s) & WRITE]
    assert writers and {a for s in writers for a in actions(s)} == WRITE
    for s in writers:
        assert s["Condition"] == {"StringEquals": {f"aws:ResourceTag/k8s.io/cluster-autoscaler/{name}": "owned"}}


def test_describe_nodegroup_only_on_this_clusters_groups(plan):
    """issue 14: eks:DescribeNodegroup takes a nodegroup ARN; never `*`."""
    statements = policy_statements(plan, role_of(plan, the_association(plan)))
    cluster = the_cluster(plan)
    region = plan["config"]["aws:region"]
    (stmt,) = [s for s in statements if "eks:DescribeNodegroup" in actions(s)]
    assert actions(stmt) == {"eks:DescribeNodegroup"}
    assert stmt["Resource"] == f"arn:aws:eks:{region}:123456789012:nodegroup/{cluster['props']['name']}/*/*"
    # Every statement granting an eks: action is scoped (mutation: the old `*` fails here).
    assert all(s["Resource"] != "*" for s in statements if any(a.startswith("eks:") for a in actions(s)))


def test_read_actions_and_nothing_else(plan):
    statements = policy_statements(plan, role_of(plan, the_association(plan)))
    granted = {a for s in statements for a in actions(s)}
    assert granted == READ | WRITE
    readers = [s for s in statements if actions(s) & READ]
    assert all(actions(s) <= READ for s in readers), "read and write grants stay in separate statements"


# ------------------------------------------------------------------ node groups


def test_desired_size_stays_ignored_on_every_node_group(plan):
    # The autoscaler owns desired size; `pulumi up` must not set it back to the config value.
    groups = plan.of_type(NODE_GROUP)
    cluster_cfg = plan["config"]["cluster"]
    assert len(groups) == (3 if cluster_cfg["apiNodes"] else 2)  # apiNodes: null has no API pool
    for ng in groups:
        assert "scalingConfig.desiredSize" in plan.ignore_changes.get(ng["urn"], []), ng["name"]
        kind = ng["props"]["nodeGroupName"].rsplit("-", 1)[1]
        # maxSize from config is the ceiling the autoscaler respects.
        assert ng["props"]["scalingConfig"]["maxSize"] == cluster_cfg[f"{kind}Nodes"]["maxSize"]


# Shared with tests/test_monitoring.py (Alertmanager -> SNS off) and tests/test_observability.py
# (logs and traces off): one variant plan for these switches, and with both off the LB controller's and the apps' are the only pod identity associations left.
BOTH_OFF = {
    "voip-infra:cluster": {"autoscaler": {"enabled": False}},
    "voip-infra:monitoring": {"alertsToSns": False, "logs": {"enabled": False}, "traces": {"enabled": False}},
    # Also tests/test_apps.py's GHCR token (written into the pull-through cache's secret).
    "voip-infra:ghcrToken": "ghp_exampletoken",
}


def test_disabled_builds_no_autoscaler():
    plan = variant("dev", BOTH_OFF)
    assert not plan.of_type(COMPONENT)
    assert not [r for r in plan.of_type(RELEASE) if r["props"]["chart"] == "cluster-autoscaler"]
    assert sorted(a["props"]["serviceAccount"] for a in plan.of_type(ASSOCIATION)) == ["aws-load-balancer-controller", "co-talk-api"]
    assert not [r for r in plan.of_type("aws:iam/role:Role") if "autoscaler" in r["name"]]


# ------------------------------------------------------------------ config


def test_config_defaults():
    # nas-migration sets no autoscaler key: the defaults.
    raw, _ = stack_raw("nas-migration")
    auto = load_stack_config("nas-migration", raw).cluster.autoscaler
    assert (auto.enabled, auto.scale_down_unneeded_minutes, auto.scale_down_enabled) == (True, 10, True)
    assert (auto.chart_version, auto.image_tag, auto.app_minor) == ("9.59.0", "v1.36.1", "1.36")
    assert CLUSTER_AUTOSCALER_CHART_MINORS[auto.chart_version] == "1.35"  # the newest chart ships 1.35.0


@pytest.mark.parametrize(
    ("autoscaler", "path", "words"),
    [
        ({"scaleDownUnneededMinutes": 0}, "voip-infra:cluster.autoscaler.scaleDownUnneededMinutes", "greater than or equal to 1"),
        ({"scaleDownUnneededMinutes": 121}, "voip-infra:cluster.autoscaler.scaleDownUnneededMinutes", "less than or equal to 120"),
        ({"chartVersion": "latest"}, "voip-infra:cluster.autoscaler.chartVersion", "chart version"),
        ({"maxNodes": 5}, "voip-infra:cluster.autoscaler.maxNodes", "allowed keys"),
        ({"imageTag": "v1.35.2"}, "voip-infra:cluster.autoscaler.imageTag", "runs Cluster Autoscaler 1.35, the cluster runs 1.36"),
        ({"imageTag": "latest"}, "voip-infra:cluster.autoscaler.imageTag", "release tag"),
    ],
)
def test_bad_autoscaler_config_names_its_key(autoscaler, path, words):
    lines = config_errors({"voip-infra:cluster": {"autoscaler": autoscaler}})
    assert any(line.startswith(f"error: {path}:") and words in line for line in lines), lines


def test_a_mismatched_chart_is_fine_while_disabled():
    raw, _ = stack_raw("dev")
    cfg = load_stack_config(
        "dev", with_overrides(raw, {"voip-infra:cluster": {"autoscaler": {"enabled": False, "chartVersion": "9.53.0"}}})
    )
    assert cfg.cluster.autoscaler.enabled is False


def test_without_an_image_tag_the_charts_app_version_must_match():
    raw, _ = stack_raw("dev")
    cluster = json.loads(raw["voip-infra:cluster"])
    cluster["autoscaler"] = {"chartVersion": "9.53.0", "imageTag": None}  # explicit null: the chart's appVersion runs
    with pytest.raises(ConfigError) as info:
        load_stack_config("dev", {**raw, "voip-infra:cluster": json.dumps(cluster)})
    assert any(
        line.startswith("error: voip-infra:cluster.autoscaler.chartVersion:")
        and "runs Cluster Autoscaler 1.34, the cluster runs 1.36" in line
        for line in info.value.lines
    ), info.value.lines
