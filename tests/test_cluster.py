"""EKS cluster under mocks, per stack: control plane, nodes, add-ons, IAM, LB controller."""

from __future__ import annotations

import json
import re

import pytest

from components.config_loader import ConfigError, load_stack_config
from tests.harness import release, stack_raw, variant, with_overrides
from tests.resource_types import ADDON, CLUSTER, NODE_GROUP, RELEASE

LAUNCH_TEMPLATE = "aws:ec2/launchTemplate:LaunchTemplate"
GRAVITON = re.compile(r"[a-z]+[0-9]+g[a-z]*\.[0-9a-z]+")


def cluster_cfg(plan):
    return plan["config"]["cluster"]


def the_cluster(plan):
    (cluster,) = plan.of_type(CLUSTER)
    return cluster


def node_groups(plan):
    return {r["props"]["nodeGroupName"].rsplit("-", 1)[1]: r for r in plan.of_type(NODE_GROUP)}


def id_from_arn(arn: str) -> str:
    return arn.rsplit("/", 1)[-1]


# ------------------------------------------------------------------ control plane


def test_control_plane_encrypts_secrets_with_a_rotating_key(plan):
    props = the_cluster(plan)["props"]
    (enc,) = props["encryptionConfig"] if isinstance(props["encryptionConfig"], list) else [props["encryptionConfig"]]
    assert enc["resources"] == ["secrets"]
    key = plan.by_id(id_from_arn(enc["provider"]["keyArn"]))
    assert key["type"] == "aws:kms/key:Key"
    assert key["props"]["enableKeyRotation"] is True


def test_control_plane_logs_and_retention(plan):
    cluster = the_cluster(plan)
    assert {"api", "audit", "authenticator"} <= set(cluster["props"]["enabledClusterLogTypes"])
    name = cluster["props"]["name"]
    (group,) = [g for g in plan.of_type("aws:cloudwatch/logGroup:LogGroup") if g["props"]["name"] == f"/aws/eks/{name}/cluster"]
    assert group["props"]["retentionInDays"] == cluster_cfg(plan)["logRetentionDays"]
    assert group["props"]["kmsKeyId"].startswith("arn:aws:kms:")
    # Created before the cluster, or EKS creates it without retention.
    assert group["urn"] in cluster["dependsOn"]


def test_api_access_mode_version_and_standard_support(plan):
    props = the_cluster(plan)["props"]
    assert props["accessConfig"]["authenticationMode"] == "API"
    assert props["version"] == cluster_cfg(plan)["version"]
    assert props["upgradePolicy"]["supportType"] == "STANDARD"
    assert props["bootstrapSelfManagedAddons"] is False


def test_endpoint_private_and_public_restricted(plan):
    vpc = the_cluster(plan)["props"]["vpcConfig"]
    assert vpc["endpointPrivateAccess"] is True
    cidrs = vpc.get("publicAccessCidrs") or []
    assert "0.0.0.0/0" not in cidrs
    assert cidrs == cluster_cfg(plan)["publicAccessCidrs"]
    assert vpc["endpointPublicAccess"] is bool(cidrs)
    if plan["stack"] == "production":
        # Private-only: people over the VPN, CI on the runner inside the VPC.
        assert vpc["endpointPublicAccess"] is False and not cidrs


def test_empty_public_cidrs_means_private_endpoint_only():
    plan = variant("dev", {"voip-infra:cluster": {"publicAccessCidrs": []}})
    vpc = the_cluster(plan)["props"]["vpcConfig"]
    assert vpc["endpointPublicAccess"] is False
    assert not vpc.get("publicAccessCidrs")


def test_open_public_endpoint_is_rejected_by_config():
    raw, _ = stack_raw("production")
    with pytest.raises(ConfigError) as err:
        load_stack_config("production", with_overrides(raw, {"voip-infra:cluster": {"publicAccessCidrs": ["0.0.0.0/0"]}}))
    assert any("publicAccessCidrs.0" in line and "0.0.0.0/0" in line for line in err.value.lines)


def test_control_plane_in_private_subnets(plan):
    for sid in the_cluster(plan)["props"]["vpcConfig"]["subnetIds"]:
        assert plan.by_id(sid)["props"]["tags"]["tier"] == "private"


def test_stateful_parts_protected_where_data_lives(plan):
    protect = plan["config"]["protectData"]
    cluster = the_cluster(plan)
    assert cluster["protect"] is protect
    assert cluster["props"].get("deletionProtection", False) is protect
    (key,) = [k for k in plan.of_type("aws:kms/key:Key") if "eks" in k["name"]]
    assert key["protect"] is protect


ADMIN_POLICY = "arn:aws:eks::aws:cluster-access-policy/AmazonEKSClusterAdminPolicy"
VIEW_POLICY = "arn:aws:eks::aws:cluster-access-policy/AmazonEKSViewPolicy"


def access_grants(plan) -> dict[str, str]:
    """principal ARN -> the access policy of its entry (one entry, one cluster-scoped policy each)."""
    entries = plan.of_type("aws:eks/accessEntry:AccessEntry")
    assocs = plan.of_type("aws:eks/accessPolicyAssociation:AccessPolicyAssociation")
    assert len(entries) == len(assocs) == len({e["props"]["principalArn"] for e in entries})
    for a in assocs:
        assert a["props"]["accessScope"] == {"type": "cluster"} and not a["protect"]
        assert plan.by_urn(a["parent"])["props"]["principalArn"] == a["props"]["principalArn"]
    return {a["props"]["principalArn"]: a["props"]["policyArn"] for a in assocs}


def test_access_entries_for_people_and_ci_pinned_by_arn(plan):
    stage = plan["stack"]
    acct = "arn:aws:iam::123456789012:role"
    assert access_grants(plan) == {
        f"{acct}/voip-people/voip-platform-admin": ADMIN_POLICY,
        f"{acct}/voip-people/voip-platform-viewer": VIEW_POLICY,
        # The deploy role creates the cluster (creator: ci): EKS's own entry makes it admin.
        f"{acct}/voip-ci/voip-infra-{stage}-preview": VIEW_POLICY,
    }
    assert the_cluster(plan)["props"]["accessConfig"] == {"authenticationMode": "API", "bootstrapClusterCreatorAdminPermissions": True}
    # The Kubernetes half waits for the entries (whoever runs `up` may depend on one).
    (k8s,) = plan.of_type("pulumi:providers:kubernetes")
    assocs = {a["urn"] for a in plan.of_type("aws:eks/accessPolicyAssociation:AccessPolicyAssociation")}
    assert assocs <= set(k8s["dependsOn"])


def test_ci_roles_are_the_ones_bootstrap_creates():
    from tests.harness import bootstrap_plan, stack_plan

    roles = {r["props"]["name"]: r for r in bootstrap_plan().of_type("aws:iam/role:Role")}
    arns = bootstrap_plan()["outputs"]
    for stage in ("dev", "nas-migration", "production"):
        granted = access_grants(stack_plan(stage))
        assert arns["previewRoleArns"][stage] in granted
        assert set(arns["peopleRoleArns"].values()) <= set(granted)
    assert "voip-infra-review-deploy" in roles


def test_access_when_a_person_created_the_cluster_and_ci_of_another_stage():
    arn = "arn:aws:iam::123456789012:role/platform-admin"
    plan = variant(
        "dev",
        {
            "voip-infra:cluster": {
                "access": {"admins": [arn], "viewers": [], "creator": "sso/AWSReservedSSO_Admin_1a2b", "ciRoles": "review"}
            }
        },
    )
    assert access_grants(plan) == {
        arn: ADMIN_POLICY,
        "arn:aws:iam::123456789012:role/voip-ci/voip-infra-review-deploy": ADMIN_POLICY,
        "arn:aws:iam::123456789012:role/voip-ci/voip-infra-review-preview": VIEW_POLICY,
    }


@pytest.mark.parametrize(
    "stack, access, message",
    [
        (
            "production",
            {"admins": []},
            "error: voip-infra:cluster.access.admins: a stage that holds data (protectData: true) needs at least one person as cluster admin",
        ),
        ("dev", {"creator": "ops/admin", "admins": ["ops/admin"]}, "error: voip-infra:cluster.access.admins: 'ops/admin' is the creator"),
        (
            "dev",
            {"viewers": ["voip-people/voip-platform-admin"]},
            "error: voip-infra:cluster.access.viewers: 'voip-people/voip-platform-admin' is also an admin",
        ),
        (
            "dev",
            {"admins": ["arn:aws:iam::12345:role/x"]},
            "error: voip-infra:cluster.access.admins.0: 'arn:aws:iam::12345:role/x' is not an IAM role ARN",
        ),
    ],
)
def test_access_config_errors(stack, access, message):
    raw, _ = stack_raw(stack)
    with pytest.raises(ConfigError) as info:
        load_stack_config(stack, with_overrides(raw, {"voip-infra:cluster": {"access": access}}))
    assert any(line.startswith(message) for line in info.value.lines), info.value.lines


# ------------------------------------------------------------------ nodes


def test_managed_node_groups_in_private_subnets_on_graviton(plan):
    groups = node_groups(plan)
    # The API pool exists exactly where the stage configures one (dev: apiNodes null).
    assert set(groups) == {"system", "signaling", *(["api"] if cluster_cfg(plan)["apiNodes"] else [])}
    assert set(groups) == ({"system", "signaling"} if plan["stack"] == "dev" else {"system", "signaling", "api"})
    for ng in groups.values():
        props = ng["props"]
        assert props["amiType"] == "AL2023_ARM_64_STANDARD"
        assert props["instanceTypes"] and all(GRAVITON.fullmatch(t) for t in props["instanceTypes"])
        assert props["subnetIds"]
        for sid in props["subnetIds"]:
            assert plan.by_id(sid)["props"]["tags"]["tier"] == "private"
        assert props["clusterName"] == the_cluster(plan)["props"]["name"]


def test_capacity_types(plan):
    groups = node_groups(plan)
    cfg = cluster_cfg(plan)
    assert groups["system"]["props"]["capacityType"] == cfg["systemNodes"]["capacityType"]
    if plan["config"]["protectData"]:
        assert groups["system"]["props"]["capacityType"] == "ON_DEMAND"
    assert groups["signaling"]["props"]["capacityType"] == cfg["signalingNodes"]["capacityType"]
    if plan["stack"] == "production":
        assert groups["signaling"]["props"]["capacityType"] == "ON_DEMAND"
    if plan["stack"] == "dev":
        assert groups["signaling"]["props"]["capacityType"] == "SPOT"


def test_spot_signaling_nodes_rejected_where_data_lives():
    raw, _ = stack_raw("production")
    with pytest.raises(ConfigError) as err:
        load_stack_config("production", with_overrides(raw, {"voip-infra:cluster": {"signalingNodes": {"capacityType": "SPOT"}}}))
    assert any("signalingNodes.capacityType" in line for line in err.value.lines)


def test_scaling_from_config(plan):
    for kind, key in (("system", "systemNodes"), ("signaling", "signalingNodes")):
        sc = node_groups(plan)[kind]["props"]["scalingConfig"]
        want = cluster_cfg(plan)[key]
        assert (sc["minSize"], sc["desiredSize"], sc["maxSize"]) == (want["minSize"], want["desiredSize"], want["maxSize"])


def test_launch_templates_imdsv2_hop_limit_1_encrypted_gp3(plan):
    node_sg = plan["outputs"]["nodeSecurityGroupId"]
    for ng in node_groups(plan).values():
        lt = plan.by_id(ng["props"]["launchTemplate"]["id"])
        assert lt["type"] == LAUNCH_TEMPLATE
        md = lt["props"]["metadataOptions"]
        assert md["httpTokens"] == "required"
        assert md["httpPutResponseHopLimit"] == 1  # pods cannot reach IMDS
        (bdm,) = lt["props"]["blockDeviceMappings"]
        assert bdm["ebs"]["volumeType"] == "gp3" and bdm["ebs"]["encrypted"] == "true"
        sgs = lt["props"]["vpcSecurityGroupIds"]
        assert node_sg in sgs
        assert any(s.startswith("sg-eks-") for s in sgs)  # the EKS cluster SG stays on the nodes
        assert "diskSize" not in ng["props"]  # set in the launch template instead


def test_signaling_nodes_are_tainted_and_labelled_for_the_release(plan):
    groups = node_groups(plan)
    assert not groups["system"]["props"].get("taints")
    (taint,) = groups["signaling"]["props"]["taints"]
    assert taint["effect"] == "NO_SCHEDULE"
    values = release(plan, "./charts/signaling")["props"]["values"]
    # The release selects the signaling pool and tolerates exactly its taint.
    assert values["nodeSelector"].items() <= groups["signaling"]["props"]["labels"].items()
    assert {"key": taint["key"], "value": taint["value"], "operator": "Equal", "effect": "NoSchedule"} in values["tolerations"]


def test_node_security_group_admits_no_cidr(plan):
    sg = plan.by_id(plan["outputs"]["nodeSecurityGroupId"])
    assert sg["props"]["vpcId"] == plan["outputs"]["vpcId"]
    for rule in sg["props"].get("ingress") or []:
        assert not rule.get("cidrBlocks"), rule  # only the LB security groups, by SG id
        assert {rule["fromPort"], rule["toPort"]} <= {8080, 8081, 9090}  # traffic, /ready, Actuator
    for rule in sg["props"].get("egress") or []:
        if "0.0.0.0/0" in (rule.get("cidrBlocks") or []):
            assert (rule["protocol"], rule["fromPort"], rule["toPort"]) == ("tcp", 443, 443)


def test_node_role_policies(plan):
    role_arn = node_groups(plan)["system"]["props"]["nodeRoleArn"]
    role = plan.by_id(id_from_arn(role_arn))
    attachments = plan.of_type("aws:iam/rolePolicyAttachment:RolePolicyAttachment")
    node_policies = {a["props"]["policyArn"].rsplit("/", 1)[-1] for a in attachments if "eks-node" in a["name"]}
    assert node_policies == {"AmazonEKSWorkerNodePolicy", "AmazonEC2ContainerRegistryPullOnly", "AmazonEKS_CNI_Policy"}
    trust = json.loads(role["props"]["assumeRolePolicy"])
    assert trust["Statement"][0]["Principal"] == {"Service": "ec2.amazonaws.com"}


# ------------------------------------------------------------------ add-ons


def test_addons_pinned_from_config_and_ordered(plan):
    # The cluster's own add-ons (the EBS CSI driver belongs to components/cluster/ebs_csi.py).
    addons = {a["props"]["addonName"]: a for a in plan.of_type(ADDON) if "voip:cluster:Cluster" in a["urn"]}
    assert set(addons) == {"vpc-cni", "coredns", "kube-proxy", "eks-pod-identity-agent"}
    cfg = cluster_cfg(plan)["addons"]
    for name, key in (
        ("vpc-cni", "vpcCni"),
        ("coredns", "coredns"),
        ("kube-proxy", "kubeProxy"),
        ("eks-pod-identity-agent", "eksPodIdentityAgent"),
    ):
        assert addons[name]["props"]["addonVersion"] == cfg[key]
    # NetworkPolicy objects are enforced only with the CNI's policy agent on.
    assert json.loads(addons["vpc-cni"]["props"]["configurationValues"])["enableNetworkPolicy"] == "true"
    groups = node_groups(plan).values()
    for ng in groups:
        assert addons["vpc-cni"]["urn"] in ng["dependsOn"]
        assert ng["urn"] in addons["coredns"]["dependsOn"]


# ------------------------------------------------------------------ LB controller + provider


def test_lb_controller_release(plan):
    lbc = release(plan, "aws-load-balancer-controller")["props"]
    assert lbc["repositoryOpts"]["repo"] == "https://aws.github.io/eks-charts"
    assert lbc["version"] == cluster_cfg(plan)["lbControllerChartVersion"]
    assert lbc["namespace"] == "kube-system"
    values = lbc["values"]
    assert values["clusterName"] == the_cluster(plan)["props"]["name"]
    assert values["region"] == plan["config"]["aws:region"]
    assert values["vpcId"] == plan["outputs"]["vpcId"]
    sa = values["serviceAccount"]["name"]
    # One association per service account (the Cluster Autoscaler has its own).
    (assoc,) = [a for a in plan.of_type("aws:eks/podIdentityAssociation:PodIdentityAssociation") if a["props"]["serviceAccount"] == sa]
    assert assoc["props"]["namespace"] == "kube-system"
    role = plan.by_id(id_from_arn(assoc["props"]["roleArn"]))
    assert "lb-controller" in role["name"]


def test_lb_controller_role_is_least_privilege(plan):
    (role,) = [r for r in plan.of_type("aws:iam/role:Role") if "lb-controller" in r["name"]]
    trust = json.loads(role["props"]["assumeRolePolicy"])["Statement"][0]
    assert trust["Principal"] == {"Service": "pods.eks.amazonaws.com"}
    cond = trust["Condition"]["StringEquals"]
    assert cond["aws:RequestTag/kubernetes-service-account"] == "aws-load-balancer-controller"
    # Pinned by ARN: the cluster's name, in this account and region (components/iam.py).
    assert (
        cond["aws:RequestTag/eks-cluster-arn"]
        == f"arn:aws:eks:{plan['config']['aws:region']}:123456789012:cluster/{the_cluster(plan)['props']['name']}"
    )
    (policy,) = [p for p in plan.of_type("aws:iam/rolePolicy:RolePolicy") if p["parent"] == role["urn"]]
    doc = json.loads(policy["props"]["policy"])
    actions = [a for s in doc["Statement"] for a in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"])]
    assert not any(a.endswith("*") for a in actions)
    assert not any(re.match(r"elasticloadbalancing:(Create|Delete|Modify)", a) for a in actions)
    (write,) = [s for s in doc["Statement"] if "elasticloadbalancing:RegisterTargets" in s["Action"]]
    assert write["Condition"]["StringEquals"]["aws:ResourceTag/stage"] == plan["stack"]
    # The condition only matches if the target groups really carry that tag (provider default tags).
    tgs = plan.of_type("aws:lb/targetGroup:TargetGroup")
    assert tgs
    providers = {r["urn"]: r for r in plan.resources if r["type"] == "pulumi:providers:aws"}
    for tg in tgs:
        default_tags = json.loads(providers[tg["provider"]]["props"]["defaultTags"])["tags"]
        assert {**default_tags, **(tg["props"].get("tags") or {})}.get("stage") == plan["stack"], tg["name"]


def test_metrics_server_serves_the_hpa_cpu_metric(plan):
    # EKS installs no metrics-server: without it the signaling HPA's CPU target has no data.
    ms = release(plan, "metrics-server")
    assert ms["props"]["repositoryOpts"]["repo"] == "https://kubernetes-sigs.github.io/metrics-server/"
    assert ms["props"]["version"] == cluster_cfg(plan)["metricsServerChartVersion"]
    assert ms["props"]["namespace"] == "kube-system"
    assert ms["props"]["values"]["nodeSelector"] == {"voip.example.com/pool": "system"}
    for ng in node_groups(plan).values():
        assert ng["urn"] in ms["dependsOn"]


def test_k8s_provider_execs_aws_eks_get_token(plan):
    (provider,) = plan.of_type("pulumi:providers:kubernetes")
    kubeconfig = json.loads(provider["props"]["kubeconfig"])
    (user,) = kubeconfig["users"]
    exec_ = user["user"]["exec"]
    assert exec_["command"] == "aws" and exec_["args"][:2] == ["eks", "get-token"]
    name = the_cluster(plan)["props"]["name"]
    assert exec_["args"][exec_["args"].index("--cluster-name") + 1] == name
    assert kubeconfig["clusters"][0]["cluster"]["server"] == plan["outputs"]["clusterEndpoint"]
    assert "token" not in json.dumps(user["user"]).replace("get-token", "")
    for r in plan.resources:
        if r["type"].startswith("kubernetes:"):
            assert r["provider"] == provider["urn"], r["name"]


def test_done_when_counts(plan):
    assert len(plan.of_type(CLUSTER)) == 1
    assert len(plan.of_type(NODE_GROUP)) >= 2
    assert len(plan.of_type(ADDON)) >= 4
    charts = {r["props"]["chart"] for r in plan.of_type(RELEASE)}
    assert {"aws-load-balancer-controller", "./charts/signaling"} <= charts
