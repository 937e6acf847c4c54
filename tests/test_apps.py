"""The product tier under mocks, per stack: every ALB target group bound once to a deployed app
whose chart answers its health check, images through the ECR pull-through cache, no secret in
any release's values, the app's role scoped to the file bucket, the database capacity invariant
(with its alarm), Argo Rollouts pinned, and the API node pool."""

from __future__ import annotations

import ipaddress
import json
import re
from functools import cache

import helm_python as h
import pytest
import yaml

from components import db_capacity as cap
from components.cluster.image_cache import cache_prefix
from components.cluster.valkey import CHART_PATH as VALKEY_CHART
from components.config_loader import ConfigError, load_stack_config
from components.data.storage import FILES_KEY_PREFIX
from tests.harness import stack_plan, stack_raw, variant, with_overrides
from tests.resource_types import ALARM, RELEASE, TG

CREDENTIAL_ARN = re.compile(r"^arn:aws:secretsmanager:[a-zA-Z0-9-:]+:secret:ecr\-pullthroughcache\/[a-zA-Z0-9\/_+=.@-]+$")
ECR_PREFIX = re.compile(r"(?:[a-z0-9]+(?:[._-][a-z0-9]+)*/)*[a-z0-9]+(?:[._-][a-z0-9]+)*")


def releases(plan):
    return plan.of_type(RELEASE)


def local_releases(plan):
    return [r for r in releases(plan) if r["props"]["chart"].startswith("./charts/")]


@cache
def rendered(stack: str) -> dict[str, list[dict]]:
    """Every local chart's release of the stack rendered by real Helm: release name -> objects."""
    return rendered_plan(stack_plan(stack))


def bindings(plan) -> list[tuple[str, str, dict]]:
    """(release, target group ARN, TargetGroupBinding) of every local chart's release."""
    return [
        (release, doc["spec"]["targetGroupARN"], doc)
        for release, docs in rendered(plan["stack"]).items()
        for doc in docs
        if doc["kind"] == "TargetGroupBinding"
    ]


def target_group_of(plan, arn: str) -> dict:
    """The target group an ARN names (arn:...:targetgroup/<name>/<id>)."""
    (tg,) = [t for t in plan.of_type(TG) if t["props"]["name"] == arn.split(":targetgroup/")[1].split("/")[0]]
    return tg


def assert_each_target_group_bound_once(plan, bound):
    ip_groups = sorted(tg["urn"] for tg in plan.of_type(TG) if tg["props"]["targetType"] == "ip")
    assert sorted(target_group_of(plan, arn)["urn"] for _, arn, _ in bound) == ip_groups


# ------------------------------------------------------------------ ALB hosts <-> deployed apps


def test_every_ip_target_group_is_bound_by_exactly_one_binding(plan):
    bound = bindings(plan)
    assert_each_target_group_bound_once(plan, bound)
    for release, arn, _ in bound:
        if release.startswith("co-talk-"):
            assert arn in plan["outputs"]["albTargetGroupArns"].values()
    # Mutation: a second release binding the api group (or none binding it) is caught.
    planted = bound + [("co-talk-dup", plan["outputs"]["albTargetGroupArns"]["api"], {})]
    with pytest.raises(AssertionError):
        assert_each_target_group_bound_once(plan, planted)
    with pytest.raises(AssertionError):
        assert_each_target_group_bound_once(plan, [b for b in bound if not b[0].startswith("co-talk-")])


def test_binding_names_follow_the_alb_scheme_and_helm_keeps_them(plan):
    """A binding's target group cannot change (the LB controller's webhook refuses it): the
    internal ALB's new groups get new bindings (`-internal`); internet-facing keeps today's
    names. Helm keeps a binding it no longer renders, so the old group serves until the
    distribution has moved (docs/edge.md "Moving a live stage")."""
    alb_arns = set(plan["outputs"]["albTargetGroupArns"].values())
    internal = plan["config"]["edge"]["albScheme"] == "internal"
    for release, arn, doc in bindings(plan):
        name = doc["metadata"]["name"]
        on_alb = arn in alb_arns or name.startswith("signaling-alb")
        expected = {"co-talk-": f"{release}-alb", "signaling": "signaling-alb"} if on_alb else {"signaling": "signaling-nlb"}
        stem = next(v for k, v in expected.items() if release.startswith(k))
        assert name == stem + ("-internal" if on_alb and internal else ""), (release, name)
        assert doc["metadata"]["annotations"] == {"helm.sh/resource-policy": "keep"}


def test_health_check_is_the_charts_readiness_probe(plan):
    for release, arn, _ in bindings(plan):
        if not release.startswith("co-talk-"):
            continue
        tg = target_group_of(plan, arn)
        (workload,) = [d for d in rendered(plan["stack"])[release] if d["kind"] in ("Rollout", "Deployment")]
        (c,) = workload["spec"]["template"]["spec"]["containers"]
        ports = {p["name"]: p["containerPort"] for p in c["ports"]}
        probe = c["readinessProbe"]["httpGet"]
        hc = tg["props"]["healthCheck"]
        assert (hc["path"], int(hc["port"])) == (probe["path"], ports[probe["port"]])
        assert tg["props"]["port"] == ports["http"]


def test_cloudfront_api_paths_reach_a_bound_host_and_no_host_serves_the_web_app_alone(plan):
    hosts = [h["name"] for h in plan["config"]["edge"]["albHosts"]]
    apps = plan["config"]["apps"]
    assert sorted(hosts) == sorted(a["host"] for a in apps.values())  # one app per host, no empty host
    assert "admin" not in hosts  # decided: no admin app exists; the host is dropped (docs/apps.md)


def test_a_host_without_an_app_is_a_config_error():
    raw, _ = stack_raw("production")
    bad = with_overrides(
        raw, {"voip-infra:edge": {"albHosts": [*json.loads(raw["voip-infra:edge"])["albHosts"], {"name": "admin", "priority": 200}]}}
    )
    with pytest.raises(ConfigError) as info:
        load_stack_config("production", bad)
    (line,) = info.value.lines
    assert line.startswith("error: voip-infra:edge.albHosts.1.name: 'admin' has no app behind it")


def test_a_host_checking_another_path_is_a_config_error():
    raw, _ = stack_raw("dev")
    hosts = json.loads(raw["voip-infra:edge"])["albHosts"]
    hosts[0]["healthCheckPath"] = "/ready"
    with pytest.raises(ConfigError) as info:
        load_stack_config("dev", with_overrides(raw, {"voip-infra:edge": {"albHosts": hosts}}))
    assert any(line.startswith("error: voip-infra:edge.albHosts.0.healthCheckPath:") for line in info.value.lines)


# ------------------------------------------------------------------ images through the cache


def test_pull_through_cache_rule_and_every_image_resolves_to_it(plan):
    (rule,) = plan.of_type("aws:ecr/pullThroughCacheRule:PullThroughCacheRule")
    stage = plan["stack"]
    props = rule["props"]
    assert props["upstreamRegistryUrl"] == "ghcr.io"
    assert props["ecrRepositoryPrefix"] == cache_prefix(stage) and ECR_PREFIX.fullmatch(props["ecrRepositoryPrefix"])
    assert 2 <= len(props["ecrRepositoryPrefix"]) <= 30
    secret = next(
        s for s in plan.of_type("aws:secretsmanager/secret:Secret") if s["props"].get("name", "").startswith("ecr-pullthroughcache/")
    )
    assert props["credentialArn"] == plan["outputs"]["ghcrCacheCredentialSecretArn"]
    assert CREDENTIAL_ARN.fullmatch(props["credentialArn"]) and secret["props"]["name"] in props["credentialArn"]
    cache = f"123456789012.dkr.ecr.{plan['config']['aws:region']}.amazonaws.com/{cache_prefix(stage)}/"
    # The in-cluster Valkey (cache.placement cluster) is docker.io's official image, pulled over
    # the NAT: the stage's rule serves ghcr.io only (tests/test_cache_placement.py pins it).
    for rel in [r for r in local_releases(plan) if r["props"]["chart"] != VALKEY_CHART]:
        repo = rel["props"]["values"]["image"]["repository"]
        assert repo.startswith(cache), (rel["name"], repo)
        assert rule["urn"] in rel["dependsOn"]  # the rule exists before the first pull
    (template,) = plan.of_type("aws:ecr/repositoryCreationTemplate:RepositoryCreationTemplate")
    assert template["props"]["prefix"] == props["ecrRepositoryPrefix"] and template["props"]["appliedFors"] == ["PULL_THROUGH_CACHE"]


def test_node_role_may_pull_through_the_cache_only_under_its_prefix(plan):
    stage = plan["stack"]
    (policy,) = [p for p in plan.of_type("aws:iam/rolePolicy:RolePolicy") if p["name"] == f"{stage}-eks-node-ghcr-cache"]
    doc = json.loads(policy["props"]["policy"])
    (stmt,) = doc["Statement"]
    assert set(stmt["Action"]) == {"ecr:CreateRepository", "ecr:BatchImportUpstreamImage"}
    assert stmt["Resource"].endswith(f":repository/{cache_prefix(stage)}/*")
    (node_role,) = [r for r in plan.of_type("aws:iam/role:Role") if r["name"] == f"{stage}-eks-node-role"]
    assert policy["props"]["role"] in (node_role["id"], node_role["props"].get("name"))
    attached = {a["props"]["policyArn"] for a in plan.of_type("aws:iam/rolePolicyAttachment:RolePolicyAttachment")}
    assert "arn:aws:iam::aws:policy/AmazonEC2ContainerRegistryPullOnly" in attached


def test_ghcr_token_is_written_as_a_secret_when_given():
    from tests.test_autoscaler import BOTH_OFF  # one shared variant plan (the token is its only effect here)

    assert BOTH_OFF["voip-infra:ghcrToken"] == "ghp_exampletoken"
    plan = variant("dev", BOTH_OFF)
    (version,) = [v for v in plan.of_type("aws:secretsmanager/secretVersion:SecretVersion") if "ImageCache" in v["urn"]]
    assert version["props"]["secretString"] == "[secret]"
    assert "ghp_exampletoken" not in json.dumps(plan["resources"])
    (rule,) = plan.of_type("aws:ecr/pullThroughCacheRule:PullThroughCacheRule")
    assert version["urn"] in rule["dependsOn"]


# ------------------------------------------------------------------ secrets


def test_no_secret_in_any_release_values(plan):
    for rel in releases(plan):
        text = json.dumps(rel["props"].get("values") or {})
        assert "[secret]" not in text, rel["name"]
        for needle in ("redis://", "rediss://", "placeholder", "offline-placeholder"):
            assert needle not in text, (rel["name"], needle)
        assert not re.search(r"password\"\s*:\s*\"(?!\")", text, flags=re.I), rel["name"]


def test_app_secret_holds_credentials_and_every_redis_use(plan):
    (secret,) = [s for s in plan.of_type("kubernetes:core/v1:Secret") if s["props"]["metadata"]["name"] == "co-talk-api-config"]
    assert secret["props"]["stringData"] == "[secret]"
    (rel,) = [r for r in local_releases(plan) if r["props"]["name"] == "co-talk-api"]
    assert rel["props"]["values"]["existingSecret"]["name"] == "co-talk-api-config"
    assert secret["urn"] in rel["dependsOn"]
    assert sorted(rel["props"]["values"]["config"]["redisUses"]) == sorted(plan["config"]["cache"]["groups"])


# ------------------------------------------------------------------ the app's AWS identity


def test_app_role_reaches_only_the_file_bucket_and_its_key(plan):
    (assoc,) = [
        a for a in plan.of_type("aws:eks/podIdentityAssociation:PodIdentityAssociation") if a["props"]["serviceAccount"] == "co-talk-api"
    ]
    assert assoc["props"]["namespace"] == plan["config"]["signaling"]["namespace"]
    (policy,) = [p for p in plan.of_type("aws:iam/rolePolicy:RolePolicy") if p["name"].endswith("co-talk-api-policy")]
    doc = json.loads(policy["props"]["policy"])
    bucket = plan["outputs"]["filesBucketArn"]
    resources = {s["Sid"]: s["Resource"] for s in doc["Statement"]}
    # Users' files only (the prefix CloudFront serves), not the rest of the bucket.
    key = plan["outputs"]["dataKeyArn"]
    assert resources == {
        "ListFiles": bucket,
        "Files": f"{bucket}/{FILES_KEY_PREFIX}*",
        "FilesKey": key,
        # The rotated master secret, read at connect time (no copy in Kubernetes), and its key via Secrets Manager.
        "DatabaseSecret": plan["outputs"]["dbMasterSecretArn"],
        "DatabaseSecretKey": key,
    }
    (sm,) = [s for s in doc["Statement"] if s["Sid"] == "DatabaseSecret"]
    assert sm["Action"] == "secretsmanager:GetSecretValue"
    (smk,) = [s for s in doc["Statement"] if s["Sid"] == "DatabaseSecretKey"]
    assert smk["Condition"] == {"StringEquals": {"kms:ViaService": f"secretsmanager.{plan['config']['aws:region']}.amazonaws.com"}}
    (listing,) = [s for s in doc["Statement"] if s["Sid"] == "ListFiles"]
    assert listing["Condition"] == {"StringLike": {"s3:prefix": f"{FILES_KEY_PREFIX}*"}}
    actions = {a for s in doc["Statement"] for a in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"])}
    assert not {a for a in actions if "*" in a or a.startswith(("s3:PutBucket", "s3:DeleteBucket", "kms:Create", "iam:"))}
    key = next(s for s in doc["Statement"] if s["Sid"] == "FilesKey")
    assert key["Condition"] == {"StringEquals": {"kms:ViaService": f"s3.{plan['config']['aws:region']}.amazonaws.com"}}


# ------------------------------------------------------------------ database capacity


def test_capacity_formula_boundaries():
    # RDS's formula on nominal memory minus the reserve; capped at 5000.
    assert cap.max_connections("db.t4g.micro") == 79  # below the nominal 1 GiB's 112: RDS keeps memory for itself
    assert cap.max_connections("db.r7g.large") == 1712
    assert cap.max_connections("db.r7g.4xlarge") == 5000
    assert cap.max_connections("db.t4g.micro", explicit=200) == 200
    assert cap.max_connections("db.m7g.micro") is None  # no such class
    assert cap.usable(79) == 71 and cap.alarm_threshold(1712) == 1369


def _dev_with(api: dict, database: dict | None = None):
    raw, _ = stack_raw("dev")
    over = {"voip-infra:apps": {"api": api}}
    if database:
        over["voip-infra:database"] = database
    return load_stack_config("dev", with_overrides(raw, over))


def test_capacity_holds_at_the_boundary_and_fails_one_past_it():
    # dev: db.t4g.micro, 71 poolable; 10 reserve; no replicas so both pools land on the writer.
    # (max + 1) x 12 + 10 <= 71  ->  max + 1 <= 5
    assert _dev_with({"replicas": {"min": 2, "max": 4}}).connection_demand()[0] == 70
    with pytest.raises(ConfigError) as info:
        _dev_with({"replicas": {"min": 2, "max": 5}})  # the mutation: maxReplicas past the limit
    (line,) = info.value.lines
    assert line.startswith("error: voip-infra:apps.api.replicas.max: the writer needs 82 connections")
    assert "max_connections is 79" in line and "writerPoolSize" in line


def test_the_seed_pools_on_dev_fail_and_name_the_keys():
    # Today's NAS settings (3 instances x HikariCP 50) on db.t4g.micro: the defect the issue names.
    with pytest.raises(ConfigError) as info:
        _dev_with({"replicas": {"min": 3, "max": 3}, "database": {"writerPoolSize": 50, "readerPoolSize": 0}})
    assert info.value.lines[0].startswith("error: voip-infra:apps.api.replicas.max: the writer needs 210 connections")


def test_an_explicit_max_connections_or_a_bigger_class_makes_room():
    seed = {"replicas": {"min": 3, "max": 3}, "database": {"writerPoolSize": 50, "readerPoolSize": 0}}
    assert _dev_with(seed, {"instanceClass": "db.t4g.medium"})
    assert _dev_with(seed, {"maxConnections": 240})


def test_replicas_are_checked_worst_case_on_one_replica():
    raw, _ = stack_raw("production")
    bad = with_overrides(raw, {"voip-infra:database": {"replicaInstanceClass": "db.t4g.small"}})
    with pytest.raises(ConfigError) as info:
        load_stack_config("production", bad)
    assert info.value.lines[0].startswith("error: voip-infra:apps.api.database.readerPoolSize: the reader pools open up to 210")


def test_capacity_holds_on_every_stage(plan):
    cfg = plan["config"]
    db = cfg["database"]
    limit = cap.max_connections(db["instanceClass"], db.get("maxConnections"))
    writer = cap.ADMIN_RESERVE + (cap.DMS_RESERVE if (cfg.get("migration") or {}).get("enabled") else 0)
    for app in cfg["apps"].values():
        pools = app["database"]["writerPoolSize"] + (0 if db["readReplicas"] else app["database"]["readerPoolSize"])
        writer += (app["replicas"]["max"] + 1) * pools
    assert writer <= cap.usable(limit)


def test_database_connections_alarm_at_80_percent_of_the_computed_max(plan):
    db = plan["config"]["database"]
    limit = cap.max_connections(db["instanceClass"], db.get("maxConnections"))
    (alarm,) = [a for a in plan.of_type(ALARM) if a["props"].get("metricName") == "DatabaseConnections"]
    props = alarm["props"]
    assert props["threshold"] == int(limit * 0.8)
    assert props["namespace"] == "AWS/RDS" and props["comparisonOperator"] == "GreaterThanThreshold"
    (primary,) = [r for r in plan.of_type("aws:rds/instance:Instance") if not r["props"].get("replicateSourceDb")]
    assert props["dimensions"] == {"DBInstanceIdentifier": primary["props"]["identifier"]}
    assert props["alarmActions"] == [plan["outputs"]["alarmTopicArn"]]


# ------------------------------------------------------------------ delivery and nodes


def test_argo_rollouts_is_pinned_and_on_the_system_nodes(plan):
    (rel,) = [r for r in releases(plan) if r["props"]["chart"] == "argo-rollouts"]
    props = rel["props"]
    assert props["version"] == plan["config"]["delivery"]["argoRolloutsChartVersion"] == "2.41.0"
    assert props["repositoryOpts"]["repo"] == "https://argoproj.github.io/argo-helm"
    assert props["values"]["controller"]["nodeSelector"] == {"voip.example.com/pool": "system"}
    assert props["values"]["installCRDs"] is True and props["values"]["keepCRDs"] is True
    assert props["values"]["controller"]["replicas"] == (2 if plan["config"]["protectData"] else 1)
    app = next(r for r in local_releases(plan) if r["props"]["name"] == "co-talk-api")
    assert rel["urn"] in app["dependsOn"]  # the CRDs exist before the Rollout


def test_apps_share_the_signaling_nodes_without_an_api_pool():
    # dev (apiNodes: null): the apps take the signaling pool's selector and toleration.
    plan = stack_plan("dev")
    assert plan["config"]["cluster"]["apiNodes"] is None
    assert not [n for n in plan.of_type("aws:eks/nodeGroup:NodeGroup") if n["props"]["nodeGroupName"].endswith("-api")]
    (app,) = [r for r in local_releases(plan) if r["props"]["name"] == "co-talk-api"]
    (sig,) = [r for r in local_releases(plan) if r["props"]["name"] == "signaling"]
    assert app["props"]["values"]["nodeSelector"] == sig["props"]["values"]["nodeSelector"] == {"voip.example.com/pool": "signaling"}
    assert app["props"]["values"]["tolerations"] == sig["props"]["values"]["tolerations"]


def test_no_api_pool_refused_where_data_is_protected():
    raw, _ = stack_raw("production")
    cluster = json.loads(raw["voip-infra:cluster"])
    cluster["apiNodes"] = None  # an explicit YAML null (with_overrides drops None keys)
    with pytest.raises(ConfigError) as info:
        load_stack_config("production", {**raw, "voip-infra:cluster": json.dumps(cluster)})
    assert info.value.lines[0].startswith("error: voip-infra:cluster.apiNodes: null is not allowed while protectData is true")


def test_api_node_pool_spot_only_where_data_is_not_protected(plan):
    if plan["config"]["cluster"]["apiNodes"] is None:
        assert plan["stack"] == "dev"  # its layout: test_apps_share_the_signaling_nodes_without_an_api_pool
        return
    (ng,) = [n for n in plan.of_type("aws:eks/nodeGroup:NodeGroup") if n["props"]["nodeGroupName"].endswith("-api")]
    props = ng["props"]
    assert props["labels"] == {"voip.example.com/pool": "api"}
    assert props["taints"] == [{"key": "voip.example.com/dedicated", "value": "api", "effect": "NO_SCHEDULE"}]
    assert props["capacityType"] == ("ON_DEMAND" if plan["config"]["protectData"] else "SPOT")
    from tools.cost import estimate

    line = estimate(plan).line(ng["name"])
    assert line.cents > 0 and "×" in line.basis


def test_spot_api_nodes_refused_where_data_is_protected():
    raw, _ = stack_raw("production")
    bad = with_overrides(raw, {"voip-infra:cluster": {"apiNodes": {"capacityType": "SPOT"}}})
    with pytest.raises(ConfigError) as info:
        load_stack_config("production", bad)
    assert info.value.lines[0].startswith("error: voip-infra:cluster.apiNodes.capacityType: SPOT is not allowed")


def test_app_pods_get_target_health_readiness_gates(plan):
    # The LB controller injects readiness gates in namespaces labelled so: a canary or scale-out
    # pod counts as ready only once healthy in the ALB target group (as for signaling).
    (rel,) = [r for r in local_releases(plan) if r["props"]["name"] == "co-talk-api"]
    (ns,) = [n for n in plan.of_type("kubernetes:core/v1:Namespace") if n["props"]["metadata"]["name"] == rel["props"]["namespace"]]
    assert ns["props"]["metadata"]["labels"]["elbv2.k8s.aws/pod-readiness-gate-inject"] == "enabled"
    secret = next(s for s in plan.of_type("kubernetes:core/v1:Secret") if s["props"]["metadata"]["name"] == "co-talk-api-config")
    assert ns["urn"] in secret["dependsOn"]


def test_every_listener_rule_forwards_to_a_bound_group_including_the_cutover_name(plan):
    # Each host rule (the apex and, on nas-migration, the weighted app.<domain> too) ends on pods.
    bound = {arn for _, arn, _ in bindings(plan)}
    rules = plan.of_type("aws:lb/listenerRule:ListenerRule")
    assert rules
    hosts = set()
    for rule in rules:
        (action,) = rule["props"]["actions"]
        assert action["targetGroupArn"] in bound, rule["name"]
        hosts |= {h for c in rule["props"]["conditions"] if "hostHeader" in c for h in c["hostHeader"]["values"]}
    cutover = plan["outputs"].get("cutoverName")
    if cutover:
        assert cutover in hosts  # the AWS share of the weighted record reaches co-talk-api


@pytest.mark.parametrize(
    "override, line",
    [
        ({"voip-infra:apps": {"api": {"replicaz": 1}}}, "error: voip-infra:apps.api.replicaz: unknown key; allowed keys: canary,"),
        ({"voip-infra:apps": {"API": {"host": "api"}}}, "error: voip-infra:apps.API: 'API' is not a lowercase name"),
        ({"voip-infra:apps": {"api": {"canary": {"steps": [50, 25]}}}}, "error: voip-infra:apps.api.canary.steps: [50, 25] must rise"),
        ({"voip-infra:apps": {"api": {"host": "www"}}}, "error: voip-infra:apps.api.host: 'www' is not an ALB host; allowed: api"),
        ({"voip-infra:apps": {"web": {"host": "api"}}}, "error: voip-infra:apps.web.host: 'api' is already served by apps.api"),
        (
            {"voip-infra:apps": {"api": {"terminationGraceSeconds": 15}}},
            "error: voip-infra:apps.api.terminationGraceSeconds: 15 leaves under 10 s",
        ),
        (
            {"voip-infra:delivery": {"argoRolloutsChartVersion": "latest"}},
            "error: voip-infra:delivery.argoRolloutsChartVersion: 'latest' is not",
        ),
        (
            {"voip-infra:database": {"instanceClass": "db.x9z.large"}},
            "error: voip-infra:database.instanceClass: the memory of db.x9z.large",
        ),
    ],
)
def test_app_config_errors_name_the_key(override, line):
    raw, _ = stack_raw("dev")
    with pytest.raises(ConfigError) as info:
        load_stack_config("dev", with_overrides(raw, override))
    assert any(x.startswith(line) for x in info.value.lines), info.value.lines


def test_without_monitoring_the_app_rolls_out_as_a_deployment_without_argo():
    from tests.test_monitoring import MONITORING_OFF  # the same variant plan

    plan = variant("dev", MONITORING_OFF)
    assert not [r for r in releases(plan) if r["props"]["chart"] == "argo-rollouts"]
    kinds = {d["kind"] for d in rendered_plan(plan)["co-talk-api"]}
    assert "Deployment" in kinds and not kinds & {"Rollout", "AnalysisTemplate", "ServiceMonitor"}
    assert "TargetGroupBinding" in kinds  # still bound to its ALB group


def rendered_plan(plan) -> dict[str, list[dict]]:
    out = {}
    for rel in local_releases(plan):
        props = rel["props"]
        manifests = h.Chart.load(props["chart"]).render(values=props["values"], name=props["name"], namespace=props["namespace"])
        out[props["name"]] = [d for text in manifests.values() for d in yaml.safe_load_all(text) if d]
    return out


# ------------------------------------------------------------------ the migration's dual run

NAS_DB = "192.168.10.22"


def dual_run_apps_plan():
    from tests.test_dual_run_redis import DUAL_RUN

    over = {
        **DUAL_RUN,
        "voip-infra:migration": {**DUAL_RUN["voip-infra:migration"], "dualRunDatabase": {"host": NAS_DB, "username": "co_talk"}},
        "voip-infra:nasAppDbPassword": "nas-app-db-secret",
    }
    return variant("nas-migration", over, secret_keys=("voip-infra:nasRedisPassword", "voip-infra:nasAppDbPassword"))


def test_dual_run_points_the_apps_at_the_nas_database_and_redis_and_opens_only_those():
    from tests.test_dual_run_redis import NAS_REDIS

    plan = dual_run_apps_plan()
    (rel,) = [r for r in local_releases(plan) if r["props"]["name"] == "co-talk-api"]
    values = rel["props"]["values"]
    # RDS is DMS's replication target until the cutover: the AWS pods write to the NAS, like the NAS pods.
    assert values["config"]["datasourceUrl"] == f"jdbc:postgresql://{NAS_DB}:5432/voip?sslmode=prefer"
    assert values["config"]["datasourceSecretArn"] == ""  # the NAS login rides in the app's Kubernetes Secret
    assert values["config"]["readerDatasourceUrl"].startswith(f"jdbc:postgresql://{NAS_DB}:5432/voip?sslmode=prefer&")
    np = values["networkPolicy"]
    assert np["database"] == {"cidrs": [f"{NAS_DB}/32"], "port": 5432}
    assert np["redis"] == {"cidrs": [f"{NAS_REDIS}/32"], "port": 6379}
    (sg,) = [r for r in plan.of_type("aws:ec2/securityGroup:SecurityGroup") if r["name"].endswith("-eks-nodes-sg")]
    vpc = ipaddress.ip_network(plan["config"]["network"]["cidr"])
    outside = sorted(
        (c, e["fromPort"])
        for e in sg["props"]["egress"]
        for c in e.get("cidrBlocks", [])
        if e["fromPort"] != 443 and not ipaddress.ip_network(c).subnet_of(vpc)
    )
    assert outside == sorted([(f"{NAS_DB}/32", 5432), (f"{NAS_REDIS}/32", 6379)])
    (secret,) = [s for s in plan.of_type("kubernetes:core/v1:Secret") if s["props"]["metadata"]["name"] == "co-talk-api-config"]
    assert secret["props"]["stringData"] == "[secret]"
    assert "nas-app-db-secret" not in json.dumps(plan["resources"])
    # The capacity alarm keeps watching RDS (where the pools land after the cutover).
    (alarm,) = [a for a in plan.of_type(ALARM) if a["props"].get("metricName") == "DatabaseConnections"]
    (primary,) = [r for r in plan.of_type("aws:rds/instance:Instance") if not r["props"].get("replicateSourceDb")]
    assert alarm["props"]["dimensions"] == {"DBInstanceIdentifier": primary["props"]["identifier"]}


@pytest.mark.parametrize(
    "migration, secrets, line",
    [
        (
            {"dualRunDatabase": {"username": "co_talk"}, "dualRunRedis": {}},
            {"voip-infra:nasRedisPassword": "x"},
            "error: voip-infra:nasAppDbPassword: required",
        ),
        (
            {"dualRunDatabase": {"username": "co_talk"}},
            {"voip-infra:nasAppDbPassword": "x"},
            "error: voip-infra:migration.dualRunDatabase: set dualRunRedis too",
        ),
        (
            {"dualRunDatabase": {"username": "co_talk", "host": "10.9.9.9"}, "dualRunRedis": {}},
            {"voip-infra:nasRedisPassword": "x", "voip-infra:nasAppDbPassword": "x"},
            "error: voip-infra:migration.dualRunDatabase.host: 10.9.9.9 is outside nasLanCidr",
        ),
    ],
)
def test_dual_run_database_config_errors(migration, secrets, line):
    raw, _ = stack_raw("nas-migration")
    with pytest.raises(ConfigError) as info:
        load_stack_config("nas-migration", with_overrides(raw, {"voip-infra:migration": migration, **secrets}))
    assert any(x.startswith(line) for x in info.value.lines), info.value.lines
