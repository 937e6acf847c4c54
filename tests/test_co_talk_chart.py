"""charts/co-talk rendered by real Helm with each stack's release values (as Pulumi passes them):
Kubernetes schemas (strict), the Argo Rollouts CRD schemas of the pinned chart, checkov, bad
values, and the canary analysis query evaluated by promtool on fixture series."""

from __future__ import annotations

import copy
import json
import re
import shutil
import subprocess
from pathlib import Path

import jsonschema
import pytest
import yaml

from components.cluster.apps import CHART_PATH
from components.config import APP_MANAGEMENT_PORT, APP_READINESS_PATH
from tests.harness import STACKS, stack_plan
from tests.helm_charts import assert_lint_clean, by_kind, render_chart, the

h = pytest.importorskip("helm_python")
kubernetes_validate = pytest.importorskip("kubernetes_validate")

ROOT = Path(__file__).resolve().parent.parent
CHART = ROOT / "charts" / "co-talk"
FIXTURES = Path(__file__).resolve().parent / "fixtures" / "argo-rollouts"
K8S_VERSION = "1.31"
CRD_KINDS = {"ServiceMonitor", "TargetGroupBinding", "Rollout", "AnalysisTemplate"}


def release_values(stack: str, app: str = "api") -> dict:
    (rel,) = [
        r
        for r in stack_plan(stack).of_type("kubernetes:helm.sh/v3:Release")
        if r["props"]["chart"] == CHART_PATH and r["props"]["name"] == f"co-talk-{app}"
    ]
    return copy.deepcopy(rel["props"]["values"])


def render(values: dict, name: str = "co-talk-api", namespace: str = "voip") -> list[dict]:
    return render_chart(CHART, values, name, namespace)


@pytest.fixture(scope="module", params=STACKS)
def rendered(request):
    values = release_values(request.param)
    ns = stack_plan(request.param)["config"]["signaling"]["namespace"]
    return request.param, values, by_kind(render(values, namespace=ns))


def pod_spec(kinds):
    return the(kinds, "Rollout")["spec"]["template"]["spec"]


def container(kinds):
    (c,) = pod_spec(kinds)["containers"]
    return c


# ------------------------------------------------------------------ Kubernetes + CRD schemas


def test_lint_clean():
    assert_lint_clean(CHART, release_values("production"))


def test_core_objects_valid_against_kubernetes_schemas(rendered):
    _, _, kinds = rendered
    core = [o for kind, objs in kinds.items() if kind not in CRD_KINDS for o in objs]
    assert {"Service", "HorizontalPodAutoscaler", "PodDisruptionBudget", "ServiceAccount", "NetworkPolicy"} <= {o["kind"] for o in core}
    for obj in core:
        kubernetes_validate.validate(obj, K8S_VERSION, strict=True)
    # The pod template the Rollout carries is a core PodTemplateSpec: validate it as a Deployment's.
    rollout = the(kinds, "Rollout")
    as_deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": rollout["metadata"]["name"]},
        "spec": {"selector": rollout["spec"]["selector"], "template": rollout["spec"]["template"]},
    }
    kubernetes_validate.validate(as_deployment, K8S_VERSION, strict=True)


def crd_schema(kind: str) -> dict:
    schema = json.loads((FIXTURES / f"{kind.lower()}.schema.json").read_text())
    assert "argoproj/argo-helm" in schema["$comment"] and re.search(r"commit [0-9a-f]{40}", schema["$comment"])
    return schema


def unknown_fields(obj, schema, path="") -> list[str]:
    """Fields the API server would prune: not in the structural schema's properties."""
    if schema.get("x-kubernetes-preserve-unknown-fields"):
        return []
    out = []
    if isinstance(obj, dict) and "properties" in schema:
        for k, v in obj.items():
            if k not in schema["properties"]:
                out.append(f"{path}.{k}")
            else:
                out += unknown_fields(v, schema["properties"][k], f"{path}.{k}")
    elif isinstance(obj, dict) and isinstance(schema.get("additionalProperties"), dict):
        for k, v in obj.items():
            out += unknown_fields(v, schema["additionalProperties"], f"{path}.{k}")
    elif isinstance(obj, list) and "items" in schema:
        for i, v in enumerate(obj):
            out += unknown_fields(v, schema["items"], f"{path}[{i}]")
    return out


def validate_crd(obj: dict) -> None:
    schema = crd_schema(obj["kind"])
    jsonschema.Draft7Validator(schema).validate(obj)
    assert unknown_fields(obj, schema) == [], obj["kind"]


def test_rollout_and_analysis_template_match_the_pinned_crds(rendered):
    _, _, kinds = rendered
    validate_crd(the(kinds, "Rollout"))
    validate_crd(the(kinds, "AnalysisTemplate"))


@pytest.mark.parametrize(
    "mutate",
    [
        lambda r: r["spec"]["strategy"]["canary"].update(steps=[{"setWeight": "five"}]),  # wrong type
        lambda r: r["spec"]["strategy"]["canary"].update(stepz=[]),  # a typo the API server would prune
        lambda r: r["spec"]["template"]["spec"]["containers"][0].update(readinessProbes={}),
    ],
)
def test_crd_validation_catches_a_planted_defect(mutate):
    rollout = copy.deepcopy(the(by_kind(render(release_values("production"))), "Rollout"))
    mutate(rollout)
    with pytest.raises((jsonschema.ValidationError, AssertionError)):
        validate_crd(rollout)


# ------------------------------------------------------------------ the operating envelope


def test_canary_steps_pause_and_analyse_then_continue(rendered):
    stack, values, kinds = rendered
    rollout = the(kinds, "Rollout")
    canary = rollout["spec"]["strategy"]["canary"]
    cfg = stack_plan(stack)["config"]["apps"]["api"]["canary"]
    weights = [s["setWeight"] for s in canary["steps"] if "setWeight" in s]
    assert weights == cfg["steps"] and weights[0] <= 5  # one pod first (ceil(5% of 3..20) = 1)
    for i, step in enumerate(canary["steps"]):
        if "setWeight" in step:
            assert canary["steps"][i + 1] == {"pause": {"duration": f"{cfg['pauseSeconds']}s"}}
            analysis = canary["steps"][i + 2]["analysis"]
            assert analysis["templates"] == [{"templateName": the(kinds, "AnalysisTemplate")["metadata"]["name"]}]
            assert analysis["args"] == [{"name": "canary-hash", "valueFrom": {"podTemplateHashValue": "Latest"}}]
    assert (canary["maxSurge"], canary["maxUnavailable"]) == (1, 0)  # the capacity check counts one surge pod
    assert rollout["spec"]["revisionHistoryLimit"] >= 2  # the previous ReplicaSet is kept for the rollback
    assert rollout["spec"]["progressDeadlineAbort"] is True
    assert "replicas" not in rollout["spec"]  # the HPA owns it


def test_hpa_scales_the_rollout_within_config(rendered):
    stack, _, kinds = rendered
    spec = the(kinds, "HorizontalPodAutoscaler")["spec"]
    assert spec["scaleTargetRef"] == {"apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout", "name": "co-talk-api"}
    bounds = stack_plan(stack)["config"]["apps"]["api"]["replicas"]
    assert (spec["minReplicas"], spec["maxReplicas"]) == (bounds["min"], bounds["max"])
    if stack == "production":
        assert spec["maxReplicas"] == 20  # the seed's 20 pods


def test_probes_on_actuator_groups_on_the_management_port(rendered):
    _, _, kinds = rendered
    c = container(kinds)
    assert {p["name"]: p["containerPort"] for p in c["ports"]} == {"http": 8080, "management": APP_MANAGEMENT_PORT}
    assert c["readinessProbe"]["httpGet"] == {"path": APP_READINESS_PATH, "port": "management"}
    assert c["livenessProbe"]["httpGet"] == {"path": "/actuator/health/liveness", "port": "management"}
    startup = c["startupProbe"]
    assert startup["httpGet"]["port"] == "management"
    assert startup["periodSeconds"] * startup["failureThreshold"] >= 120  # a cold JVM + Flyway


def test_jvm_heap_sized_from_the_container_limit(rendered):
    stack, _, kinds = rendered
    c = container(kinds)
    res = stack_plan(stack)["config"]["apps"]["api"]["resources"]
    assert c["resources"]["limits"]["memory"] == c["resources"]["requests"]["memory"] == f"{res['memoryMib']}Mi"
    opts = {e["name"]: e.get("value") for e in c["env"]}["JAVA_TOOL_OPTIONS"]
    pct = float(re.search(r"-XX:MaxRAMPercentage=([0-9.]+)", opts).group(1))
    assert pct == res["heapPercent"] and "-Xmx" not in opts  # a share of the limit, never a fixed heap
    heap_mib = res["memoryMib"] * pct / 100
    assert 512 <= heap_mib <= res["memoryMib"] - 192  # room for metaspace, threads and buffers


def test_drain_and_graceful_shutdown(rendered):
    _, values, kinds = rendered
    pod = pod_spec(kinds)
    sleep = container(kinds)["lifecycle"]["preStop"]["sleep"]["seconds"]
    env = {e["name"]: e.get("value") for e in container(kinds)["env"]}
    assert env["SERVER_SHUTDOWN"] == "graceful"
    spring = int(env["SPRING_LIFECYCLE_TIMEOUT_PER_SHUTDOWN_PHASE"].rstrip("s"))
    assert spring >= 30  # seed 001: 30 s graceful shutdown
    assert sleep + spring < pod["terminationGracePeriodSeconds"]  # the kubelet never kills mid-drain


def test_restricted_security_context(rendered):
    _, _, kinds = rendered
    pod = pod_spec(kinds)
    assert pod["securityContext"]["runAsNonRoot"] is True and pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert pod["automountServiceAccountToken"] is False
    sc = container(kinds)["securityContext"]
    assert sc["readOnlyRootFilesystem"] is True and sc["allowPrivilegeEscalation"] is False
    assert sc["capabilities"] == {"drop": ["ALL"]}


def test_config_by_value_credentials_by_secret_reference(rendered):
    stack, values, kinds = rendered
    env = {e["name"]: e for e in container(kinds)["env"]}
    secret = values["existingSecret"]["name"]
    uses = [f"REDIS_{u.upper()}_URL" for u in values["config"]["redisUses"]]
    for var in ("SPRING_DATA_REDIS_URL", *uses):
        assert env[var]["valueFrom"]["secretKeyRef"]["name"] == secret and "value" not in env[var]
    writer = env["SPRING_DATASOURCE_URL"]["value"]
    reader = env["APP_DATASOURCE_READER_URL"]["value"]
    plan = stack_plan(stack)
    # Secrets Manager rotates the master password: the JDBC wrapper reads the secret at connect
    # time (and after a failed login); no password in the environment or the Kubernetes Secret.
    arn = plan["outputs"]["dbMasterSecretArn"]
    assert "SPRING_DATASOURCE_PASSWORD" not in env and env["APP_DATASOURCE_SECRET_ARN"]["value"] == arn
    assert env["SPRING_DATASOURCE_DRIVER_CLASS_NAME"]["value"] == "software.amazon.jdbc.Driver"
    assert writer.startswith(f"jdbc:aws-wrapper:postgresql://{plan['outputs']['dbAddress']}:5432/") and "sslmode=require" in writer
    for url in (writer, reader):
        assert f"wrapperPlugins=awsSecretsManager&secretsManagerSecretId={arn}&secretsManagerRegion=ap-northeast-2" in url
    hosts = reader.split("//", 1)[1].split("/", 1)[0].split(",")
    assert hosts == (plan["outputs"]["dbReaderEndpoints"] or [f"{plan['outputs']['dbAddress']}:5432"])
    assert "readOnly=true" in reader and "loadBalanceHosts=true" in reader
    assert env["APP_FILES_BUCKET"]["value"] == plan["outputs"]["filesBucketName"]
    assert env["APP_FILES_PREFIX"]["value"] == "files/"  # where CloudFront serves users' files from


def test_pdb_spread_and_api_nodes(rendered):
    stack, values, kinds = rendered
    selector = the(kinds, "Rollout")["spec"]["selector"]["matchLabels"]
    assert the(kinds, "PodDisruptionBudget")["spec"] == {"maxUnavailable": 1, "selector": {"matchLabels": selector}}
    spread = {t["topologyKey"]: t for t in pod_spec(kinds)["topologySpreadConstraints"]}
    assert spread["topology.kubernetes.io/zone"]["whenUnsatisfiable"] == "DoNotSchedule"
    assert spread["topology.kubernetes.io/zone"]["matchLabelKeys"] == ["rollouts-pod-template-hash"]  # per ReplicaSet
    # The API pool, or the signaling pool where the stage has none (dev: apiNodes null).
    pool = "api" if stack_plan(stack)["config"]["cluster"]["apiNodes"] else "signaling"
    assert pod_spec(kinds)["nodeSelector"] == {"voip.example.com/pool": pool}
    assert pod_spec(kinds)["tolerations"] == values["tolerations"]
    assert [t["value"] for t in values["tolerations"]] == [pool]


def test_network_policy_reaches_only_its_data_stores_dns_and_aws(rendered):
    stack, values, kinds = rendered
    spec = the(kinds, "NetworkPolicy")["spec"]
    assert set(spec["policyTypes"]) == {"Ingress", "Egress"}
    for rule in spec["ingress"]:
        assert rule["from"]
    egress = {(p["port"], p["protocol"]): r["to"] for r in spec["egress"] for p in r["ports"]}
    # 9411: spans to the OpenTelemetry collector in the monitoring namespace (tests/test_observability.py).
    assert set(egress) == {(53, "UDP"), (53, "TCP"), (5432, "TCP"), (6379, "TCP"), (80, "TCP"), (443, "TCP"), (9411, "TCP")}
    isolated = {t["ipBlock"]["cidr"] for t in egress[(5432, "TCP")]}
    assert isolated == set(values["networkPolicy"]["database"]["cidrs"]) and all(c.endswith("/22") for c in isolated)
    assert egress[(80, "TCP")] == [{"ipBlock": {"cidr": "169.254.170.23/32"}}]  # the Pod Identity agent only
    (aws,) = egress[(443, "TCP")]
    vpc = stack_plan(stack)["config"]["network"]["cidr"]
    assert aws["ipBlock"] == {"cidr": "0.0.0.0/0", "except": [vpc]}  # AWS APIs outside, nothing inside the VPC


def test_service_monitor_makes_job_the_release_name(rendered):
    _, _, kinds = rendered
    sm = the(kinds, "ServiceMonitor")
    (ep,) = sm["spec"]["endpoints"]
    assert (ep["port"], ep["path"], ep["interval"]) == ("management", "/actuator/prometheus", "15s")
    # jobLabel takes the Service's label value: app.kubernetes.io/instance = the release name.
    assert the(kinds, "Service")["metadata"]["labels"][sm["spec"]["jobLabel"]] == "co-talk-api"
    assert sm["spec"]["podTargetLabels"] == ["rollouts-pod-template-hash"]


def test_deployment_when_the_canary_is_off():
    values = release_values("dev")
    values["canary"]["enabled"] = False
    kinds = by_kind(render(values))
    assert "Rollout" not in kinds and "AnalysisTemplate" not in kinds
    dep = the(kinds, "Deployment")
    kubernetes_validate.validate(dep, K8S_VERSION, strict=True)
    assert dep["spec"]["strategy"]["rollingUpdate"] == {"maxUnavailable": 0, "maxSurge": 1}
    assert the(kinds, "HorizontalPodAutoscaler")["spec"]["scaleTargetRef"]["kind"] == "Deployment"


@pytest.mark.parametrize(
    "patch, message",
    [
        ({"image": {"tag": "latest"}}, "tag"),
        ({"replicas": 3}, "replicas"),  # unknown key
        ({"autoscaling": {"minReplicas": 10, "maxReplicas": 5}}, "minReplicas"),
        ({"canary": {"maxErrorRatio": 5}}, "maxErrorRatio"),  # a percent where a ratio belongs
        ({"config": {"datasourceUrl": "postgres://x"}}, "datasourceUrl"),
        ({"targetGroupBinding": {"targetGroupArn": "not-an-arn"}}, "targetGroupArn"),
        ({"resources": {"requests": {"cpu": "500m", "memory": "512Mi"}, "limits": {"cpu": "2", "memory": "1Gi"}}}, "memory"),
        ({"terminationGracePeriodSeconds": 15, "preStopSleepSeconds": 10}, "preStopSleepSeconds"),
        ({"ports": {"http": 8080, "management": 8080}}, "management"),
        ({"canary": {"prometheusAddress": ""}}, "prometheusAddress"),
    ],
)
def test_bad_values_fail_the_render(patch, message):
    base = {"existingSecret": {"name": "co-talk-api-config"}}
    with pytest.raises(h.HelmError) as err:
        render({**base, **patch})
    assert message in str(err.value)


# ------------------------------------------------------------------ checkov (once, production)


def readme_skips() -> dict[str, str]:
    section = (CHART / "README.md").read_text().split("## Checkov skips", 1)[1]
    return dict(re.findall(r"^\| (CKV2?_K8S_[0-9]+) \| (.+?) \|$", section, flags=re.M))


# ------------------------------------------------------------------ the canary analysis, evaluated

PROMTOOL = shutil.which("promtool")
CANARY, STABLE = "6d5f7c9b8", "5c4b3a291"


def analysis(values: dict) -> tuple[str, float]:
    """The analysis query for the canary hash, and the ratio above which it fails."""
    (metric,) = the(by_kind(render(values)), "AnalysisTemplate")["spec"]["metrics"]
    query = metric["provider"]["prometheus"]["query"].replace("{{args.canary-hash}}", CANARY)
    fail = re.fullmatch(r"len\(result\) > 0 && result\[0\] > ([0-9.]+)", metric["failureCondition"])
    ok = re.fullmatch(r"len\(result\) == 0 \|\| result\[0\] <= ([0-9.]+)", metric["successCondition"])
    assert fail and ok and fail.group(1) == ok.group(1), "success and failure split at one threshold"
    return query, float(fail.group(1))


def series(hash_: str, status: str, per_15s: int) -> dict:
    labels = f'job="co-talk-api",rollouts_pod_template_hash="{hash_}",status="{status}",uri="/api/messages",method="GET"'
    return {"series": f"http_server_requests_seconds_count{{{labels}}}", "values": f"0+{per_15s}x20"}


def promtool_case(tmp_path: Path, query: str, threshold: float, canary_5xx_per_100: int) -> subprocess.CompletedProcess:
    rules = {"groups": [{"name": "canary", "rules": [{"alert": "CanaryAbort", "expr": f"({query}) > {threshold}"}]}]}
    (tmp_path / "rules.yml").write_text(yaml.safe_dump(rules))
    inputs = [
        series(CANARY, "200", 100 - canary_5xx_per_100),
        series(CANARY, "500", canary_5xx_per_100),
        # The stable pods fail hard: the analysis must judge the canary alone.
        series(STABLE, "200", 50),
        series(STABLE, "503", 50),
    ]
    fires = canary_5xx_per_100 / 100 > threshold
    test = {
        "rule_files": ["rules.yml"],
        "evaluation_interval": "15s",
        "tests": [
            {
                "interval": "15s",
                "input_series": inputs,
                "promql_expr_test": [
                    {"expr": query, "eval_time": "3m", "exp_samples": [{"labels": "{}", "value": canary_5xx_per_100 / 100}]}
                ],
                "alert_rule_test": [
                    {"eval_time": "3m", "alertname": "CanaryAbort", "exp_alerts": [{"exp_labels": {}}] if fires else []},
                ],
            }
        ],
    }
    (tmp_path / "test.yml").write_text(yaml.safe_dump(test))
    return subprocess.run([PROMTOOL, "test", "rules", "test.yml"], cwd=tmp_path, capture_output=True, text=True, timeout=60)


@pytest.mark.skipif(PROMTOOL is None, reason="promtool missing: `make test` installs it from the Debian package `prometheus`")
@pytest.mark.parametrize("percent, aborts", [(6, True), (4, False)])
def test_canary_analysis_aborts_at_6_percent_and_passes_at_4(tmp_path, percent, aborts):
    query, threshold = analysis(release_values("production"))
    assert threshold == 0.05
    proc = promtool_case(tmp_path, query, threshold, percent)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    # And the opposite expectation fails: promtool really evaluated the query.
    test = yaml.safe_load((tmp_path / "test.yml").read_text())
    case = test["tests"][0]["alert_rule_test"][0]
    case["exp_alerts"] = [] if aborts else [{"exp_labels": {}}]
    (tmp_path / "test.yml").write_text(yaml.safe_dump(test))
    flipped = subprocess.run([PROMTOOL, "test", "rules", "test.yml"], cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert flipped.returncode != 0
