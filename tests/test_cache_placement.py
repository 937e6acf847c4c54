"""cache.placement: `cluster` runs each cache group as one Valkey pod (charts/valkey) instead of an
ElastiCache replication group; dev does, the stages holding data may not.

- dev's plan has no ElastiCache resource of any kind (nor its alarms, events topic, slow log);
- charts/valkey rendered by real Helm with dev's release values: lint-clean, valid against the
  Kubernetes schemas (strict), and hardened: non-root (the image's uid 999), read-only root,
  no capability, RuntimeDefault seccomp, one pod per group (Recreate), requirepass from the
  Secret (no password in values or ConfigMap), maxmemory and its policy from config, no
  persistence, ElastiCache's withheld commands refused;
- the NetworkPolicies: Valkey admits exactly the signaling and app pods on 6379 (their real
  rendered pod labels), and those pods' egress names exactly the group's Service selector;
- REDIS_URL of signaling and the apps: the in-cluster Service, redis:// with the password, secret;
- the config refuses `cluster` where data is protected, with replicas, and the memory key in the
  wrong placement; an invariant over every stage: protectData => ElastiCache with a replica.
"""

from __future__ import annotations

import copy
import hashlib
import json
from pathlib import Path

import pytest
import yaml

from components.cluster.valkey import APP_POD_LABELS, CHART_PATH, IMAGE_TAG, NAMESPACE, SIGNALING_POD_LABELS, group_selector
from tests.harness import STACKS, component_plan, config_errors, release, stack_plan, unit_ctx
from tests.helm_charts import assert_lint_clean, by_kind, render_chart, the

h = pytest.importorskip("helm_python")
kubernetes_validate = pytest.importorskip("kubernetes_validate")

ROOT = Path(__file__).resolve().parent.parent
CHART = ROOT / "charts" / "valkey"
RELEASE = "kubernetes:helm.sh/v3:Release"
K8S_VERSION = "1.31"
# ElastiCache's restricted commands (docs.aws.amazon.com/AmazonElastiCache/latest/dg/ClientConfig.RestrictedCommands.html).
ELASTICACHE_RESTRICTED = {"BGREWRITEAOF", "BGSAVE", "CONFIG", "DEBUG", "MIGRATE", "REPLICAOF", "SAVE", "SLAVEOF", "SHUTDOWN", "SYNC"}


def rendered(plan, chart: str, name: str | None = None) -> dict[str, list[dict]]:
    p = release(plan, chart, name)["props"]
    return by_kind(render_chart(ROOT / chart, copy.deepcopy(p["values"]), p["name"], p["namespace"]))


@pytest.fixture(scope="module")
def dev():
    plan = stack_plan("dev")
    assert plan["config"]["cache"]["placement"] == "cluster"
    return plan


@pytest.fixture(scope="module")
def valkey(dev):
    return rendered(dev, CHART_PATH)


def conf(valkey, group: str) -> list[str]:
    (cm,) = [c for c in valkey["ConfigMap"] if c["metadata"]["name"] == f"valkey-{group}"]
    return cm["data"]["valkey.conf"].splitlines()


# ------------------------------------------------------------------ no ElastiCache in dev


def test_dev_has_no_elasticache_resource_nor_what_hangs_off_one(dev):
    assert [r["name"] for r in dev["resources"] if r["type"].startswith("aws:elasticache/")] == []
    assert not [r for r in dev.of_type("aws:cloudwatch/metricAlarm:MetricAlarm") if r["props"].get("namespace") == "AWS/ElastiCache"]
    assert not [t for t in dev.of_type("aws:sns/topic:Topic") if t["props"]["name"].endswith("-cache-events")]
    assert not [g for g in dev.of_type("aws:cloudwatch/logGroup:LogGroup") if "/elasticache/" in g["props"]["name"]]
    assert not [s for s in dev.of_type("aws:ec2/securityGroup:SecurityGroup") if s["name"].endswith("-redis-sg")]
    out = dev["outputs"]
    assert out["cacheEventsTopicArn"] is None and out["cacheReaderEndpoints"] is None
    assert out["cacheEndpoints"] == {g: f"valkey-{g}.{NAMESPACE}.svc.cluster.local" for g in dev["config"]["cache"]["groups"]}
    assert out["cacheUrls"] == "[secret]"


def test_elasticache_stages_keep_their_replication_groups():
    for stack in ("nas-migration", "production"):
        plan = stack_plan(stack)
        assert plan["config"]["cache"]["placement"] == "elasticache"
        assert len(plan.of_type("aws:elasticache/replicationGroup:ReplicationGroup")) == len(plan["config"]["cache"]["groups"])
        assert not [r for r in plan.of_type(RELEASE) if r["props"]["chart"] == CHART_PATH]


# ------------------------------------------------------------------ the chart


def test_chart_lint_clean_and_valid_against_kubernetes_schemas(dev, valkey):
    assert_lint_clean(CHART, release(dev, CHART_PATH)["props"]["values"])
    assert {"ConfigMap", "Deployment", "Service", "NetworkPolicy"} == set(valkey)
    for obj in (o for objs in valkey.values() for o in objs):
        kubernetes_validate.validate(obj, K8S_VERSION, strict=True)


def test_one_hardened_unreplicated_pod_per_group(dev, valkey):
    groups = dev["config"]["cache"]["groups"]
    assert {d["metadata"]["name"] for d in valkey["Deployment"]} == {f"valkey-{g}" for g in groups}
    for d in valkey["Deployment"]:
        assert d["spec"]["replicas"] == 1 and d["spec"]["strategy"] == {"type": "Recreate"}
        pod = d["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True and pod["securityContext"]["runAsUser"] == 999
        assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
        assert pod["automountServiceAccountToken"] is False
        assert pod["nodeSelector"] == {"voip.example.com/pool": "system"}
        (c,) = pod["containers"]
        sc = c["securityContext"]
        assert sc["readOnlyRootFilesystem"] is True and sc["allowPrivilegeEscalation"] is False
        assert sc["capabilities"] == {"drop": ["ALL"]} and sc["runAsUser"] == 999
        assert c["image"] == f"docker.io/valkey/valkey:{IMAGE_TAG}"
        # The image's major is the config's engine major (the valkey8 family).
        assert IMAGE_TAG.split(".")[0] == dev["config"]["cache"]["engineVersion"].split(".")[0]
        assert {v["name"]: v["mountPath"] for v in c["volumeMounts"]} == {"config": "/etc/valkey", "data": "/data"}
        assert "emptyDir" in next(v for v in pod["volumes"] if v["name"] == "data")
        assert c["readinessProbe"]["exec"]["command"][-1].endswith('ping)" = PONG ]') and "tcpSocket" in c["livenessProbe"]


def test_requirepass_comes_from_the_secret_never_from_values_or_the_configmap(dev, valkey):
    values = release(dev, CHART_PATH)["props"]["values"]
    (secret,) = [s for s in dev.of_type("kubernetes:core/v1:Secret") if s["props"]["metadata"]["name"] == "valkey-auth"]
    assert secret["props"]["stringData"] == "[secret]" and secret["props"]["metadata"]["namespace"] == NAMESPACE
    assert values["existingSecret"] == {"name": "valkey-auth"}
    assert "requirepass" not in json.dumps(values) and "password" not in json.dumps(values).lower()
    for d in valkey["Deployment"]:
        group = d["metadata"]["labels"]["app.kubernetes.io/component"]
        (c,) = d["spec"]["template"]["spec"]["containers"]
        env = {e["name"]: e["valueFrom"]["secretKeyRef"] for e in c["env"]}
        assert env["VALKEY_PASSWORD"] == env["REDISCLI_AUTH"] == {"name": "valkey-auth", "key": group}
        assert c["args"] == ["/etc/valkey/valkey.conf", "--requirepass", "$(VALKEY_PASSWORD)"]
        assert not [line for line in conf(valkey, group) if line.startswith("requirepass")]


def test_memory_and_eviction_follow_config_and_nothing_persists(dev, valkey):
    for group, gcfg in dev["config"]["cache"]["groups"].items():
        lines = conf(valkey, group)
        mib = gcfg["memoryMib"]
        assert f"maxmemory {mib}mb" in lines and f"maxmemory-policy {gcfg['maxmemoryPolicy']}" in lines
        assert 'save ""' in lines and "appendonly no" in lines
        (d,) = [d for d in valkey["Deployment"] if d["metadata"]["name"] == f"valkey-{group}"]
        (c,) = d["spec"]["template"]["spec"]["containers"]
        limit = int(c["resources"]["limits"]["memory"].removesuffix("Mi"))
        assert limit >= mib + 64 and c["resources"]["requests"]["memory"] == c["resources"]["limits"]["memory"]


def test_elasticaches_withheld_commands_are_refused(valkey):
    for cm in valkey["ConfigMap"]:
        renamed = {line.split()[1] for line in cm["data"]["valkey.conf"].splitlines() if line.startswith("rename-command ")}
        assert ELASTICACHE_RESTRICTED | {"MODULE"} <= renamed
        assert all(line.endswith(' ""') for line in cm["data"]["valkey.conf"].splitlines() if line.startswith("rename-command "))


def test_policy_change_restarts_the_pod():
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    a = the(by_kind(render_chart(CHART, values, "valkey", NAMESPACE)), "Deployment")
    values["groups"]["cache"]["maxmemoryPolicy"] = "noeviction"
    b = the(by_kind(render_chart(CHART, values, "valkey", NAMESPACE)), "Deployment")
    key = "checksum/config"
    assert a["spec"]["template"]["metadata"]["annotations"][key] != b["spec"]["template"]["metadata"]["annotations"][key]


# ------------------------------------------------------------------ who reaches it


def test_network_policy_admits_only_the_signaling_and_app_pods_on_6379(dev, valkey):
    (np,) = valkey["NetworkPolicy"]
    assert np["spec"]["policyTypes"] == ["Ingress", "Egress"] and np["spec"]["egress"] == []
    (rule,) = np["spec"]["ingress"]
    assert rule["ports"] == [{"port": 6379, "protocol": "TCP"}]
    ns = dev["config"]["signaling"]["namespace"]
    assert rule["from"] == [
        {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": ns}}, "podSelector": {"matchLabels": SIGNALING_POD_LABELS}},
        {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": ns}}, "podSelector": {"matchLabels": APP_POD_LABELS}},
    ]
    # Those labels select the real pods: the rendered signaling Deployment's and every app's workload.
    sig = the(rendered(dev, "./charts/signaling"), "Deployment")["spec"]["template"]["metadata"]["labels"]
    assert SIGNALING_POD_LABELS.items() <= sig.items()
    for app in dev["config"]["apps"]:
        kinds = rendered(dev, "./charts/co-talk", f"co-talk-{app}")
        workload = the(kinds, "Rollout" if "Rollout" in kinds else "Deployment")
        assert APP_POD_LABELS.items() <= workload["spec"]["template"]["metadata"]["labels"].items()
    # Nothing else in the cluster carries them (the monitoring stack, the runner, ...).
    for rel in dev.of_type(RELEASE):
        if rel["props"]["chart"] not in ("./charts/signaling", "./charts/co-talk"):
            assert rel["props"]["namespace"] != ns or rel["props"]["chart"] == CHART_PATH, rel["name"]


def test_client_egress_names_exactly_the_services_selector(dev, valkey):
    """The VPC CNI's policy controller admits a Service's ClusterIP only to a podSelector equal to
    the Service's selector, with port == targetPort (aws/amazon-network-policy-controller-k8s#207)."""
    services = {s["metadata"]["name"]: s for s in valkey["Service"]}
    for s in services.values():
        (port,) = s["spec"]["ports"]
        assert port["port"] == port["targetPort"] == 6379 and s["spec"]["type"] == "ClusterIP"
    group = dev["config"]["signaling"]["redisGroup"]
    assert services[f"valkey-{group}"]["spec"]["selector"] == group_selector(group)

    def redis_egress(kinds) -> list[dict]:
        (np,) = kinds["NetworkPolicy"]
        return [r for r in np["spec"]["egress"] if {"port": 6379, "protocol": "TCP"} in r.get("ports", [])]

    expected = {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": NAMESPACE}}}
    (rule,) = redis_egress(rendered(dev, "./charts/signaling"))
    assert rule["to"] == [{**expected, "podSelector": {"matchLabels": group_selector(group)}}]
    for app in dev["config"]["apps"]:
        (rule,) = redis_egress(rendered(dev, "./charts/co-talk", f"co-talk-{app}"))
        assert rule["to"] == [{**expected, "podSelector": {"matchLabels": group_selector(g)}} for g in dev["config"]["cache"]["groups"]]


def test_signaling_and_app_redis_urls_come_from_the_in_cluster_passwords(dev):
    (pw,) = [r for r in dev.of_type("random:index/randomPassword:RandomPassword") if r["name"].endswith("-valkey-password")]
    secrets = {s["name"]: s for s in dev.of_type("kubernetes:core/v1:Secret")}
    for name in ("dev-signaling-redis", *(f"dev-co-talk-{a}-config" for a in dev["config"]["apps"])):
        assert pw["urn"] in secrets[name]["dependsOn"], name
        assert secrets[name]["props"]["stringData"] == "[secret]"
    # The clients start once Valkey is ready (its release is atomic).
    valkey = release(dev, CHART_PATH)["urn"]
    for rel in dev.of_type(RELEASE):
        if rel["props"]["chart"] in ("./charts/signaling", "./charts/co-talk"):
            assert valkey in rel["dependsOn"], rel["name"]


def test_connection_urls_are_secret_plain_redis_to_the_service():
    from components.cluster.pod_identity import ClusterAccess
    from components.cluster.valkey import InClusterCache, InClusterCacheArgs
    from components.config import CacheConfig

    cfg = CacheConfig.model_validate({"placement": "cluster", "groups": {"pubsub": {"maxmemoryPolicy": "noeviction"}}})

    def build():
        import pulumi_kubernetes as k8s

        access = ClusterAccess("unit-eks", "arn:aws:eks:ap-northeast-2:123456789012:cluster/unit-eks", k8s.Provider("unit-k8s"))
        cache = InClusterCache(
            "unit-cache", InClusterCacheArgs(ctx=unit_ctx(protect=False), config=cfg, cluster=access, client_namespace="voip")
        )
        return {"url": cache.connection_urls["pubsub"], "host": cache.primary_endpoints["pubsub"]}

    plan, values = component_plan(build)
    password = ("mock" + hashlib.sha256(b"unit-pubsub-valkey-password").hexdigest())[:64]
    assert values["url"] == (f"redis://:{password}@valkey-pubsub.cache.svc.cluster.local:6379", True)
    assert values["host"] == ("valkey-pubsub.cache.svc.cluster.local", False)
    (rel,) = plan.of_type(RELEASE)
    assert rel["props"]["values"]["groups"] == {"pubsub": {"maxmemoryMib": 128, "maxmemoryPolicy": "noeviction"}}
    assert not plan.of_type("aws:elasticache/replicationGroup:ReplicationGroup")


# ------------------------------------------------------------------ config


@pytest.mark.parametrize(
    ("overrides", "key", "words"),
    [
        ({"voip-infra:protectData": True, "voip-infra:schedule": {"enabled": False}}, "voip-infra:cache.placement", "protectData"),
        (
            {"voip-infra:cache": {"groups": {"cache": {"replicas": 1}}}},
            "voip-infra:cache.groups.cache.replicas",
            "no replica and no failover",
        ),
        (
            {"voip-infra:cache": {"groups": {"cache": {"nodeType": "cache.t4g.small"}}}},
            "voip-infra:cache.groups.cache.nodeType",
            "memoryMib",
        ),
        ({"voip-infra:cache": {"engine": "redis", "engineVersion": "7.1"}}, "voip-infra:cache.placement", "engine: valkey"),
        ({"voip-infra:cache": {"groups": {"cache": {"memoryMib": 4096}}}}, "voip-infra:cache.groups.cache.memoryMib", "1024"),
        ({"voip-infra:cache": {"placement": "pods"}}, "voip-infra:cache.placement", "'elasticache' or 'cluster'"),
    ],
)
def test_config_refuses_what_the_in_cluster_cache_cannot_be(overrides, key, words):
    lines = config_errors(overrides)
    assert any(line.startswith(f"error: {key}: ") and words in line for line in lines), lines


def test_memory_key_is_refused_in_elasticache_placement():
    lines = config_errors({"voip-infra:cache": {"groups": {"cache": {"memoryMib": 256}}}}, stack="production")
    assert any(line.startswith("error: voip-infra:cache.groups.cache.memoryMib: only for placement cluster") for line in lines), lines


def test_every_stage_holding_data_keeps_managed_replicated_groups():
    """The invariant: protectData => ElastiCache, every group with a replica (failover, Multi-AZ)."""
    for stack in STACKS:
        cfg = stack_plan(stack)["config"]
        if cfg["protectData"]:
            assert cfg["cache"]["placement"] == "elasticache", stack
            assert all(g["replicas"] >= 1 for g in cfg["cache"]["groups"].values()), stack
