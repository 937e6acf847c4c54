"""Every PrometheusRule group the program installs, through the real `promtool`:

- the signaling chart's PrometheusRule (rendered by real Helm with each stack's release values)
  and the monitoring side's `voip-alerts` (apps + TURN, from the plan) pass `promtool check rules`;
- every alert has a `promtool test rules` case that fires it and one that keeps it quiet
  (tests/alert_cases.py); an alert without a case fails here;
- the TURN rules use only metric names coturn 4.6.3's exporter registers (vendored source).

promtool runs twice in all (one `check rules` and one `test rules` over every file of every
stack), each time with a planted defect beside the real files to show the check can fail.
"""

from __future__ import annotations

import copy
import json
import re
import shutil
import subprocess
from functools import cache
from pathlib import Path

import pytest
import yaml

from components.cluster.alert_rules import APP_RELEASES, CUSTOM_METRICS, TURN_JOB
from components.cluster.valkey import NAMESPACE as VALKEY_NAMESPACE
from components.config import TurnImageConfig
from tests.alert_cases import CASES, Ctx
from tests.harness import STACKS, stack_plan

h = pytest.importorskip("helm_python")

ROOT = Path(__file__).resolve().parent.parent
CHART = ROOT / "charts" / "signaling"
COTURN_SOURCE = ROOT / "tests" / "fixtures" / "coturn-4.6.3-prom_server.c"
CRD_FIELDS = ROOT / "tests" / "fixtures" / "prometheus-operator-v0.93.0-crd-fields.json"
RULE_TYPE = "kubernetes:monitoring.coreos.com/v1:PrometheusRule"
TESTED_STACK = "production"
SCRAPE_TYPE = "kubernetes:monitoring.coreos.com/v1alpha1:ScrapeConfig"


def promtool() -> str:
    path = shutil.which("promtool")
    if path is None:
        pytest.skip(
            "promtool is not installed (Debian package `prometheus`; `make test` installs it as root): the alert rules are NOT verified"
        )
    return path


def signaling_release(plan):
    (rel,) = [r for r in plan.of_type("kubernetes:helm.sh/v3:Release") if r["props"]["chart"] == "./charts/signaling"]
    return rel


@cache
def rendered_signaling(stack: str) -> list[dict]:
    rel = signaling_release(stack_plan(stack))
    p = rel["props"]
    manifests = h.Chart.load(str(CHART)).render(values=copy.deepcopy(p["values"]), name=p["name"], namespace=p["namespace"])
    return [d for text in manifests.values() for d in yaml.safe_load_all(text) if d]


def installed_groups(stack: str) -> dict[str, list[dict]]:
    """source -> rule groups, as the program installs them on `stack`."""
    chart = [d for d in rendered_signaling(stack) if d["kind"] == "PrometheusRule"]
    (monitoring,) = stack_plan(stack).of_type(RULE_TYPE)
    return {"signaling-chart": [g for d in chart for g in d["spec"]["groups"]], "voip-alerts": monitoring["props"]["spec"]["groups"]}


def alerts(groups: list[dict]) -> list[dict]:
    return [r for g in groups for r in g["rules"] if "alert" in r]


def context(stack: str) -> Ctx:
    plan = stack_plan(stack)
    values = signaling_release(plan)["props"]["values"]
    objs = rendered_signaling(stack)
    (deployment,) = [d for d in objs if d["kind"] == "Deployment"]
    turn = plan["config"]["turn"]
    rule = values.get("monitoring", {}).get("prometheusRule", {})
    defaults = yaml.safe_load((CHART / "values.yaml").read_text())["monitoring"]["prometheusRule"]
    return Ctx(
        apps_namespace=plan["config"]["signaling"]["namespace"],
        signaling_namespace=signaling_release(plan)["props"]["namespace"],
        signaling_job="signaling",
        signaling_deployment=deployment["metadata"]["name"],
        signaling_min_replicas=values["autoscaling"]["minReplicas"],
        high_connections=rule.get("highConnectionsPerPod", defaults["highConnectionsPerPod"]),
        high_error_rate=rule.get("highErrorRatePerSecond", defaults["highErrorRatePerSecond"]),
        turn_bandwidth_mbps=turn["nodeBandwidthMbps"] * turn["bandwidthAlarmPercent"] / 100,
        turn_allocations=turn["totalQuota"] * turn["bandwidthAlarmPercent"] // 100,
        cache_namespace=VALKEY_NAMESPACE,
    )


def promtool_test_file(rule_file: str, groups: list[dict], ctx: Ctx, quiet: bool = True) -> dict:
    """A promtool test file: per alert one firing and (`quiet`) one quiet test."""
    tests = []
    for rule in alerts(groups):
        name = rule["alert"]
        case = CASES[name](ctx)
        expected = {**case.labels, **rule.get("labels", {})}
        for series, exp in ((case.fire, [{"exp_labels": expected}]), *([(case.quiet, [])] if quiet else [])):
            tests.append(
                {
                    "name": f"{name} {'fires' if exp else 'stays quiet'}",
                    "interval": "1m",
                    "input_series": [{"series": s, "values": v} for s, v in series],
                    "alert_rule_test": [{"eval_time": case.at, "alertname": name, "exp_alerts": exp}],
                }
            )
    return {"rule_files": [rule_file], "evaluation_interval": "1m", "tests": tests}


def without_annotations(groups: list[dict]) -> list[dict]:
    """promtool compares annotations exactly; the tests assert labels (the templates are
    validated by `check rules`)."""
    out = copy.deepcopy(groups)
    for rule in alerts(out):
        rule.pop("annotations", None)
    return out


def _reports(output: str, verb: str) -> dict[str, str]:
    """promtool's per-file report: {file name: text after its header}."""
    parts = re.split(rf"^{verb}\s+(\S+)\s*$", output, flags=re.M)
    return {Path(parts[i]).name: parts[i + 1] for i in range(1, len(parts), 2)}


@pytest.fixture(scope="module")
def rule_files(tmp_path_factory):
    d = tmp_path_factory.mktemp("rules")
    files = {}
    for stack in STACKS:
        for source, groups in installed_groups(stack).items():
            path = d / f"{stack}-{source}.yml"
            path.write_text(yaml.safe_dump({"groups": groups}, sort_keys=False))
            files[(stack, source)] = (path, groups)
    return d, files


def test_every_installed_group_passes_promtool_check(rule_files):
    tool = promtool()
    d, files = rule_files
    # The planted defect: a rule whose expression does not parse.
    bad = d / "planted-bad.yml"
    bad.write_text(yaml.safe_dump({"groups": [{"name": "bad", "rules": [{"alert": "Broken", "expr": "rate(up[5m]"}]}]}))
    run = subprocess.run(
        [tool, "check", "rules", *[str(p) for p, _ in files.values()], str(bad)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=60,
    )
    reports = _reports(run.stdout, "Checking")
    for (stack, source), (path, groups) in files.items():
        n = sum(len(g["rules"]) for g in groups)
        assert f"SUCCESS: {n} rules found" in reports[path.name], f"{stack} {source}: {reports[path.name]}"
    assert "FAILED" in reports[bad.name] and run.returncode != 0, "promtool must reject the planted rule"


def test_every_alert_has_a_firing_and_a_quiet_case(rule_files):
    names = {r["alert"] for _, groups in rule_files[1].values() for r in alerts(groups)}
    assert names - set(CASES) == set(), f"alerts without a promtool case in tests/alert_cases.py: {sorted(names - set(CASES))}"
    assert set(CASES) - names == set(), f"cases for alerts the program no longer installs: {sorted(set(CASES) - names)}"


def test_every_alert_fires_at_its_threshold_and_stays_quiet_below(rule_files):
    tool = promtool()
    d, files = rule_files
    tests = []
    # Besides a stage's own groups (cache.placement cluster: the in-cluster cache's) the alert set
    # is the same on every stack (only thresholds and names differ, and the cases read those from
    # the stack): the cases run against production's rules plus the groups production does not
    # install, to keep promtool's time small; every stack's rules pass `check rules` above.
    tested = {g["name"] for groups in installed_groups(TESTED_STACK).values() for g in groups}
    for (stack, source), (_path, all_groups) in files.items():
        groups = all_groups if stack == TESTED_STACK else [g for g in all_groups if g["name"] not in tested]
        if not groups:
            continue
        stripped = d / f"{stack}-{source}.test-rules.yml"
        stripped.write_text(yaml.safe_dump({"groups": without_annotations(groups)}, sort_keys=False))
        test = d / f"{stack}-{source}.test.yml"
        test.write_text(yaml.safe_dump(promtool_test_file(stripped.name, groups, context(stack)), sort_keys=False))
        tests.append(test)
    # The planted defect: production's monitoring rules with every `>` threshold moved far away
    # (x1000 + 1000): their firing cases must now fail.
    (path, groups) = files[(TESTED_STACK, "voip-alerts")]
    mutant, mutated = without_annotations(groups), set()
    for rule in alerts(mutant):
        moved = re.sub(r"(>=?) ([0-9.e+]+)$", lambda m: f"{m.group(1)} {float(m.group(2)) * 1000 + 1000:g}", rule["expr"])
        if moved != rule["expr"]:
            rule["expr"] = moved
            mutated.add(rule["alert"])
    (d / "planted.test-rules.yml").write_text(yaml.safe_dump({"groups": mutant}, sort_keys=False))
    planted = d / "planted.test.yml"
    planted.write_text(
        yaml.safe_dump(promtool_test_file("planted.test-rules.yml", groups, context(TESTED_STACK), quiet=False), sort_keys=False)
    )

    run = subprocess.run(
        [tool, "test", "rules", *map(str, tests), str(planted)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=120,
        cwd=d,
    )
    reports = _reports(run.stdout, "Unit Testing: ")
    for test in tests:
        assert reports[test.name].strip().startswith("SUCCESS"), f"{test.name}:\n{reports[test.name][:3000]}"
    assert "FAILED" in reports[planted.name] and run.returncode != 0
    failed = set(re.findall(r"alertname: (\w+)", reports[planted.name]))
    assert len(mutated) >= 10 and mutated <= failed, mutated - failed


# ------------------------------------------------------------------ metric names


def coturn_metrics() -> set[str]:
    return set(re.findall(r'prom_(?:counter|gauge)_new\(\s*"(\w+)"', COTURN_SOURCE.read_text()))


def test_turn_rules_use_coturns_real_metric_names(plan):
    """Names from the vendored coturn source (the version the nodes run); the names the old
    chart rules used (turn_bandwidth_mbps, turn_active_sessions) do not exist there."""
    assert f"tag {TurnImageConfig().tag}," in COTURN_SOURCE.read_text(), "re-vendor coturn's prom_server.c for the pinned image tag"
    assert plan["config"]["turn"]["image"]["tag"] == TurnImageConfig().tag
    exported = coturn_metrics()
    assert {"turn_total_allocations", "turn_total_traffic_sentb", "turn_total_traffic_peer_sentb"} <= exported
    assert not {"turn_bandwidth_mbps", "turn_active_sessions"} & exported
    (rules,) = plan.of_type(RULE_TYPE)
    (turn,) = [g for g in rules["props"]["spec"]["groups"] if g["name"] == "turn"]
    for rule in turn["rules"]:
        used = set(re.findall(r"\b([a-z_]+)\{", rule["expr"])) - {"up"}
        assert used <= exported, f"{rule['alert']}: {used - exported} not exported by coturn"
        assert f'job="{TURN_JOB}"' in rule["expr"]


def test_app_rules_select_every_release_by_job_and_namespace(plan):
    (rules,) = plan.of_type(RULE_TYPE)
    (apps,) = [g for g in rules["props"]["spec"]["groups"] if g["name"] == "co-talk-apps"]
    ns = plan["config"]["signaling"]["namespace"]
    severities = {r["alert"]: r["labels"]["severity"] for r in apps["rules"]}
    # Seed 001's table.
    assert severities == {
        "InstanceDown": "warning",
        "MultipleInstancesDown": "critical",
        "HighHttp5xxRate": "critical",
        "SlowResponses": "warning",
        "HighCpuUsage": "warning",
        "HighMemoryUsage": "warning",
        "DbConnectionPoolExhausted": "critical",
        "RedisPublishFailures": "critical",
        "WebSocketDeliveryFailures": "critical",
        "UnevenDelivery": "warning",
    }
    for rule in apps["rules"]:
        assert f'namespace="{ns}",job=~"{"|".join(APP_RELEASES)}"' in rule["expr"], rule["alert"]
    # Custom metrics only from the documented contract.
    contract = set(CUSTOM_METRICS.values())
    used = {m for r in apps["rules"] for m in re.findall(r"\b(cotalk_\w+)\{", r["expr"])}
    assert used and used <= contract
    doc = (ROOT / "docs" / "monitoring.md").read_text()
    for micrometer, prom in CUSTOM_METRICS.items():
        assert f"`{micrometer}`" in doc and f"`{prom}`" in doc, f"docs/monitoring.md must document {micrometer} -> {prom}"


# ------------------------------------------------------------------ TURN scrape


def test_prometheus_scrapes_exactly_the_turn_nodes(plan):
    (scrape,) = plan.of_type(SCRAPE_TYPE)
    spec = scrape["props"]["spec"]
    port = plan["config"]["turn"]["metricsPort"]
    targets = {(c["labels"]["node"], t) for c in spec["staticConfigs"] for t in c["targets"]}
    nodes = [r for r in plan.of_type("aws:ec2/instance:Instance") if r["name"].startswith(f"{plan['stack']}-turn-")]
    assert len(nodes) == plan["config"]["turn"]["nodeCount"]
    expected = {
        (n["name"], f"{ip}:{port}") for n, ip in zip(sorted(nodes, key=lambda n: n["name"]), plan["outputs"]["turnPrivateIps"], strict=True)
    }
    assert targets == expected
    assert spec["jobName"] == TURN_JOB and spec["metricsPath"] == "/metrics"
    assert scrape["props"]["metadata"]["namespace"] == "monitoring"


def test_turn_exporter_port_is_open_to_the_vpc_only(plan):
    (sg,) = [s for s in plan.of_type("aws:ec2/securityGroup:SecurityGroup") if s["props"].get("name") == f"{plan['stack']}-turn"]
    port = plan["config"]["turn"]["metricsPort"]
    rules = [r for r in sg["props"]["ingress"] if r["fromPort"] <= port <= r["toPort"] and r["protocol"] in ("tcp", "-1")]
    assert rules and all(r.get("cidrBlocks") == [plan["config"]["network"]["cidr"]] for r in rules), rules


def test_custom_resources_use_fields_the_installed_crds_know(plan):
    """Unknown fields of a CRD are pruned silently by the API server: every field the program sets
    on its PrometheusRule and ScrapeConfig must exist in the CRDs (vendored field lists)."""
    crds = json.loads(CRD_FIELDS.read_text())["crds"]
    (rules,) = plan.of_type(RULE_TYPE)
    (scrape,) = plan.of_type(SCRAPE_TYPE)
    for obj, kind in ((rules, "PrometheusRule"), (scrape, "ScrapeConfig")):
        assert obj["props"]["apiVersion"] == crds[kind]["apiVersion"]
        assert set(obj["props"]["spec"]) <= set(crds[kind]["spec"]), kind
    for group in rules["props"]["spec"]["groups"]:
        assert set(group) <= set(crds["PrometheusRule"]["spec.groups[]"])
        for rule in group["rules"]:
            assert set(rule) <= set(crds["PrometheusRule"]["spec.groups[].rules[]"])
    for static in scrape["props"]["spec"]["staticConfigs"]:
        assert set(static) <= set(crds["ScrapeConfig"]["spec.staticConfigs[]"])
    # The check can fail: a misspelt field is caught.
    assert "jobname" not in crds["ScrapeConfig"]["spec"] and "jobName" in crds["ScrapeConfig"]["spec"]
