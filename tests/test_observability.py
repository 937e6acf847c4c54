"""Observability under mocks, per stack: alarms reach a subscriber (SNS e-mail, Chatbot),
Alertmanager's severity routes through the real `amtool`, NAT gateway alarms, the external
WebSocket check's Lambda (and its bundle run in isolation), logs and traces with their
retention, KMS, roles and cost lines, and the config errors."""

from __future__ import annotations

import copy
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from components.alerting import ws_canary
from components.config_loader import ConfigError, load_stack_config
from tests.harness import release, stack_plan, stack_raw, variant, with_overrides
from tests.resource_types import ALARM, ASSOCIATION, LOG_GROUP, NAT, RELEASE, ROLE_POLICY, TOPIC
from tests.test_autoscaler import BOTH_OFF
from tools.cost import estimate

SUBSCRIPTION = "aws:sns/topicSubscription:TopicSubscription"
CHATBOT = "aws:chatbot/slackChannelConfiguration:SlackChannelConfiguration"
FUNCTION = "aws:lambda/function:Function"


def topic_arn(plan, topic):
    region = "us-east-1" if topic["provider"].endswith("-aws-us-east-1") else plan["config"]["aws:region"]
    return f"arn:aws:sns:{region}:123456789012:{topic['props']['name']}"


def recipients(plan) -> dict[str, set[str]]:
    """topic ARN -> who hears it: e-mail addresses and `slack:<channel>`."""
    out = {topic_arn(plan, t): set() for t in plan.of_type(TOPIC)}
    for s in plan.of_type(SUBSCRIPTION):
        out[s["props"]["topic"]].add(s["props"]["endpoint"])
    for c in plan.of_type(CHATBOT):
        for arn in c["props"]["snsTopicArns"]:
            out[arn].add(f"slack:{c['props']['slackChannelId']}")
    return out


def unheard_topics(plan) -> list[str]:
    """The invariant: where the stage sets recipients, every alarm topic has at least one."""
    n = plan["config"]["notifications"]
    if not (n["criticalEmails"] or n["warningEmails"] or n["slack"]):
        return []
    return sorted(arn for arn, who in recipients(plan).items() if not who)


# ------------------------------------------------------------------ notifications


def test_every_alarm_topic_reaches_its_recipients(plan):
    n = plan["config"]["notifications"]
    who = recipients(plan)
    slack = {f"slack:{n['slack']['channelId']}"} if n["slack"] else set()
    critical, warning = plan["outputs"]["criticalTopicArn"], plan["outputs"]["alarmTopicArn"]
    # The team (warningEmails) hears what pages too.
    assert who[critical] == set(n["criticalEmails"]) | set(n["warningEmails"]) | slack
    assert who[warning] == set(n["warningEmails"]) | slack
    # Every other alarm topic of the stage (us-east-1 edge alarms, ElastiCache events) warns.
    for arn in set(who) - {critical}:
        assert who[arn] == set(n["warningEmails"]) | slack, arn
    # critical, alarms, global and (ElastiCache stages) the cache events topic.
    elasticache = plan["config"]["cache"]["placement"] == "elasticache"
    assert plan["outputs"]["globalAlarmTopicArn"] in who and len(who) >= (4 if elasticache else 3)
    assert (plan["outputs"]["cacheEventsTopicArn"] in who) == elasticache
    assert all(s["props"]["protocol"] == "email" for s in plan.of_type(SUBSCRIPTION))
    if plan["config"]["protectData"]:
        assert who[critical], "a stage holding real data pages someone"
    assert unheard_topics(plan) == []
    # Subscriptions of the us-east-1 topic are made in us-east-1 (SNS subscribes in the topic's region).
    for s in plan.of_type(SUBSCRIPTION):
        assert s["provider"].endswith("-aws-us-east-1") == (":us-east-1:" in s["props"]["topic"])


def test_production_pages_through_email_and_slack_and_an_unheard_topic_is_caught():
    plan = stack_plan("production")
    assert unheard_topics(plan) == []
    # The planted defect: the critical topic's subscribers gone.
    broken = copy.deepcopy(plan)
    broken["resources"] = [
        r
        for r in broken["resources"]
        if not (r["type"] == SUBSCRIPTION and r["props"]["topic"] == plan["outputs"]["criticalTopicArn"]) and r["type"] != CHATBOT
    ]
    broken.__class__ = type(plan)
    assert unheard_topics(broken) == [plan["outputs"]["criticalTopicArn"]]


def test_chatbot_channel_is_least_privilege_and_global():
    plan = stack_plan("production")
    (channel,) = plan.of_type(CHATBOT)
    p = channel["props"]
    assert p["region"] == "us-east-2"  # Chatbot's API region; it serves topics of every region
    assert p["guardrailPolicyArns"] == ["arn:aws:iam::aws:policy/CloudWatchReadOnlyAccess"]
    (role,) = [r for r in plan.of_type("aws:iam/role:Role") if r["props"].get("name") == "production-chatbot"]
    trust = json.loads(role["props"]["assumeRolePolicy"])["Statement"]
    assert trust == [{"Effect": "Allow", "Principal": {"Service": "chatbot.amazonaws.com"}, "Action": "sts:AssumeRole"}]
    (policy,) = [r for r in plan.of_type(ROLE_POLICY) if r["parent"] == role["urn"]]
    alarms, metrics = json.loads(policy["props"]["policy"])["Statement"]
    assert alarms["Resource"] == "arn:aws:cloudwatch:*:123456789012:alarm:*"  # this account's alarms only
    assert set(alarms["Action"]) == {"cloudwatch:DescribeAlarms", "cloudwatch:DescribeAlarmHistory"}
    assert all(a.startswith("cloudwatch:GetMetric") for a in metrics["Action"])  # no write, no wildcard


def test_critical_topic_is_encrypted_like_the_alarm_topic(plan):
    topics = {t["props"]["name"]: t for t in plan.of_type(TOPIC)}
    crit, warn = topics[f"{plan['stack']}-voip-critical"], topics[f"{plan['stack']}-voip-alarms"]
    assert crit["props"]["kmsMasterKeyId"] == warn["props"]["kmsMasterKeyId"] == plan["outputs"]["dataKeyArn"]


# ------------------------------------------------------------------ Alertmanager through amtool


def amtool() -> str:
    path = shutil.which("amtool")
    if path is None:
        pytest.skip(
            "amtool is not installed (Debian package `prometheus-alertmanager`; `make test` installs it as root): "
            "the Alertmanager routes are NOT verified"
        )
    return path


def am_config(stack):
    (kps,) = [r for r in stack_plan(stack).of_type(RELEASE) if r["props"]["chart"] == "kube-prometheus-stack"]
    return kps["props"]["values"]["alertmanager"]["config"]


def test_alertmanager_config_passes_amtool_and_routes_by_severity(tmp_path):
    tool = amtool()
    files = []
    for stack in ("dev", "production"):
        f = tmp_path / f"{stack}.yml"
        f.write_text(yaml.safe_dump(am_config(stack)))
        files.append(f)
    # The planted defect: a route to a receiver that does not exist.
    bad = copy.deepcopy(am_config("production"))
    bad["route"]["routes"].append({"receiver": "pager-that-is-not-there", "matchers": ['team = "x"']})
    (tmp_path / "bad.yml").write_text(yaml.safe_dump(bad))
    run = subprocess.run([tool, "check-config", *map(str, files)], capture_output=True, text=True, timeout=30)
    assert run.returncode == 0, run.stdout + run.stderr
    assert run.stdout.count("Checking") == len(files) and "FAILED" not in run.stdout
    run = subprocess.run([tool, "check-config", str(tmp_path / "bad.yml")], capture_output=True, text=True, timeout=30)
    assert run.returncode != 0 and "pager-that-is-not-there" in run.stdout + run.stderr

    prod = str(files[1])
    for labels, receiver in (
        (["severity=critical", "alertname=MultipleInstancesDown"], "sns-critical"),
        (["severity=warning", "alertname=InstanceDown"], "sns-warning"),
        (["severity=info", "alertname=KubeletTooManyPods"], "null"),
        (["severity=none", "alertname=Watchdog"], "null"),
        (["alertname=SomethingUnlabelled"], "sns-warning"),
    ):
        run = subprocess.run(
            [tool, "config", "routes", "test", "--config.file", prod, "--verify.receivers", receiver, *labels],
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert run.returncode == 0 and run.stdout.strip() == receiver, (labels, run.stdout, run.stderr)
    # And a wrong expectation fails (the routing test can fail).
    run = subprocess.run(
        [tool, "config", "routes", "test", "--config.file", prod, "--verify.receivers", "sns-warning", "severity=critical"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert run.returncode != 0


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_real_alertmanager_mutes_warnings_under_the_matching_critical(tmp_path):
    """Production's config (SNS integrations stripped: no network) in a real Alertmanager: the
    API reports which alerts the inhibit rules suppress."""
    import time
    import urllib.request

    binary = shutil.which("prometheus-alertmanager") or shutil.which("alertmanager")
    if binary is None:
        pytest.skip("Alertmanager is not installed (Debian package `prometheus-alertmanager`): inhibition is NOT verified")
    config = copy.deepcopy(am_config("production"))
    for receiver in config["receivers"]:
        receiver.pop("sns_configs", None)
    config.pop("templates", None)
    (tmp_path / "am.yml").write_text(yaml.safe_dump(config))
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    proc = subprocess.Popen(
        [
            binary,
            f"--config.file={tmp_path / 'am.yml'}",
            f"--storage.path={tmp_path / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--cluster.listen-address=",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 15
        while True:
            try:
                urllib.request.urlopen(f"{url}/-/ready", timeout=1)
                break
            except OSError:
                assert time.monotonic() < deadline and proc.poll() is None, "Alertmanager did not start"
                time.sleep(0.1)
        alerts = [
            {"alertname": "MultipleInstancesDown", "severity": "critical", "namespace": "voip", "job": "co-talk-api"},
            {"alertname": "InstanceDown", "severity": "warning", "namespace": "voip", "job": "co-talk-api", "pod": "a"},
            {"alertname": "InstanceDown", "severity": "warning", "namespace": "voip", "job": "co-talk-admin", "pod": "b"},
            {"alertname": "TurnBandwidthHigh", "severity": "critical", "namespace": "monitoring"},
            {"alertname": "TurnBandwidthHigh", "severity": "warning", "namespace": "monitoring"},
            {"alertname": "HighCpuUsage", "severity": "warning", "namespace": "voip", "job": "co-talk-api", "pod": "a"},
        ]
        body = json.dumps([{"labels": a} for a in alerts]).encode()
        urllib.request.urlopen(
            urllib.request.Request(f"{url}/api/v2/alerts", data=body, headers={"Content-Type": "application/json"}), timeout=5
        )
        expected = {("InstanceDown", "co-talk-api", "warning"), ("TurnBandwidthHigh", "", "warning")}
        # The inhibitor marks alerts asynchronously after the POST: read until the marks settle
        # (a loaded machine took > 0 s), at most 10 s, then judge the last answer.
        deadline = time.monotonic() + 10
        while True:
            got = json.load(urllib.request.urlopen(f"{url}/api/v2/alerts", timeout=5))
            muted = {
                (a["labels"]["alertname"], a["labels"].get("job", ""), a["labels"]["severity"]) for a in got if a["status"]["inhibitedBy"]
            }
            if (len(got) == len(alerts) and muted == expected) or time.monotonic() > deadline:
                break
            time.sleep(0.2)
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    assert len(got) == len(alerts)
    assert muted == expected


def test_warnings_are_inhibited_by_the_matching_critical(plan):
    rules = am_config(plan["stack"])["inhibit_rules"]
    assert {
        "source_matchers": ["severity = critical"],
        "target_matchers": ["severity =~ warning|info"],
        "equal": ["namespace", "alertname"],
    } in rules
    (pair,) = [r for r in rules if r.get("source_matchers") == ["alertname = MultipleInstancesDown"]]
    assert pair["target_matchers"] == ["alertname = InstanceDown"] and pair["equal"] == ["namespace", "job"]


# ------------------------------------------------------------------ NAT gateway alarms


def nat_alarm_gaps(plan) -> list[str]:
    """The invariant: every NAT gateway has its port-allocation and dropped-packet alarms."""
    topic = plan["outputs"]["alarmTopicArn"]
    covered: dict[str, set[str]] = {}
    for a in plan.of_type(ALARM):
        p = a["props"]
        if topic not in p.get("alarmActions", []):
            continue
        if p.get("metricName") == "ErrorPortAllocation":
            covered.setdefault(p["dimensions"]["NatGatewayId"], set()).add("ports")
        for q in p.get("metricQueries") or []:
            if (q.get("metric") or {}).get("metricName") == "PacketsDropCount":
                covered.setdefault(q["metric"]["dimensions"]["NatGatewayId"], set()).add("drops")
    return sorted(g["id"] for g in plan.of_type(NAT) if covered.get(g["id"]) != {"ports", "drops"})


def test_every_nat_gateway_has_its_alarms(plan):
    gateways = plan.of_type(NAT)
    if plan["config"]["network"]["natStrategy"] == "per_az":  # (other strategies may use a NAT instance)
        assert len(gateways) == len(plan["config"]["network"]["azs"])
    assert nat_alarm_gaps(plan) == []
    drops = [a for a in plan.of_type(ALARM) if a["name"].endswith("-packets-dropped")]
    for a in drops:
        (expr,) = [q for q in a["props"]["metricQueries"] if q.get("returnData")]
        assert expr["expression"] == "100 * drops / (from_src + from_dst)"
        assert a["props"]["threshold"] == 0.01
    # The planted defect: one gateway's drop alarm removed.
    if gateways:
        broken = copy.deepcopy(plan)
        broken["resources"] = [r for r in broken["resources"] if r["urn"] != drops[0]["urn"]]
        broken.__class__ = type(plan)
        assert len(nat_alarm_gaps(broken)) == 1


# ------------------------------------------------------------------ the external WebSocket check


def test_websocket_check_runs_outside_the_vpc_every_interval_and_pages_on_failure():
    plan = stack_plan("production")
    cfg = plan["config"]["monitoring"]["canary"]
    (fn,) = plan.of_type(FUNCTION)
    p = fn["props"]
    assert p["runtime"] == "python3.13" and p["handler"] == "ws_check.handler"
    assert "vpcConfig" not in p  # the public path users take
    assert p["environment"]["variables"]["TARGET_URL"] == plan["outputs"]["publicUrls"]["signaling"] == "wss://ws.voip.example.com"
    assert p["timeout"] > cfg["timeoutSeconds"]
    (rule,) = plan.of_type("aws:cloudwatch/eventRule:EventRule")
    assert rule["props"]["scheduleExpression"] == f"rate({cfg['intervalMinutes']} minute)"
    (alarm,) = [a for a in plan.of_type(ALARM) if a["name"] == "production-ws-check-failing"]
    a = alarm["props"]
    assert a["alarmActions"] == [plan["outputs"]["criticalTopicArn"]]
    assert a["treatMissingData"] == "breaching"  # a check that does not run is a failed check
    assert (a["metricName"], a["comparisonOperator"], a["threshold"]) == ("Success", "LessThanThreshold", 1)
    assert a["dimensions"] == {"Target": "wss://ws.voip.example.com"}
    assert a["evaluationPeriods"] == a["datapointsToAlarm"] == cfg["failuresToAlarm"]
    (log,) = [g for g in plan.of_type(LOG_GROUP) if g["props"]["name"] == "/aws/lambda/production-ws-check"]
    assert log["props"]["kmsKeyId"] == plan["outputs"]["dataKeyArn"]
    (role,) = [r for r in plan.of_type("aws:iam/role:Role") if r["props"].get("name") == "production-ws-check"]
    assert p["role"].endswith(":role/production-ws-check")
    assert json.loads(role["props"]["assumeRolePolicy"])["Statement"][0]["Principal"] == {"Service": "lambda.amazonaws.com"}
    (policy,) = [r for r in plan.of_type(ROLE_POLICY) if r["name"] == "production-ws-check-access"]
    (metrics,) = [s for s in json.loads(policy["props"]["policy"])["Statement"] if s["Action"] == "cloudwatch:PutMetricData"]
    assert metrics["Condition"] == {"StringEquals": {"cloudwatch:namespace": "VoipInfra/WebSocketCheck"}}
    # Allow-listed stages cannot be reached from AWS's addresses: no check there.
    assert not stack_plan("dev").of_type(FUNCTION)


def test_websocket_check_bundle_runs_without_site_packages(tmp_path):
    """The Lambda's archive: the script and the pinned websockets sources, nothing built for
    this machine; imported by an isolated interpreter (no site-packages), it runs the check."""
    archive = ws_canary.code_archive()
    names = set(archive.assets)
    assert "ws_check.py" in names and "websockets/sync/client.py" in names
    assert all(n.endswith(".py") for n in names)
    for name, asset in archive.assets.items():
        dest = tmp_path / name
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(asset.path, dest)
    code = "import sys; sys.path.insert(0, %r); import ws_check, websockets; assert websockets.__file__.startswith(%r); print(ws_check.check('ws://127.0.0.1:9/', 1.0).ok)"
    run = subprocess.run(
        [sys.executable, "-S", "-I", "-c", code % (str(tmp_path), str(tmp_path))], cwd=tmp_path, capture_output=True, text=True, timeout=30
    )
    assert run.returncode == 0 and run.stdout.strip() == "False", run.stderr


# ------------------------------------------------------------------ logs and traces


def role_policy_of(plan, service_account):
    (assoc,) = [a for a in plan.of_type(ASSOCIATION) if a["props"]["serviceAccount"] == service_account]
    role = plan.by_id(assoc["props"]["roleArn"].rsplit("/", 1)[-1])
    (policy,) = [p for p in plan.of_type(ROLE_POLICY) if p["parent"] == role["urn"]]
    assert assoc["props"]["namespace"] == "monitoring"
    return json.loads(policy["props"]["policy"])["Statement"]


def test_pod_logs_leave_the_node_encrypted_with_retention_from_config(plan):
    cfg = plan["config"]["monitoring"]["logs"]
    (group,) = [g for g in plan.of_type(LOG_GROUP) if g["props"]["name"] == f"/voip/{plan['stack']}/pods"]
    assert group["props"]["retentionInDays"] == cfg["retentionDays"]
    assert group["props"]["kmsKeyId"] == plan["outputs"]["dataKeyArn"]
    assert group["props"]["logGroupClass"] == cfg["logClass"]
    assert group["protect"] == plan["config"]["protectData"]
    fb = release(plan, "aws-for-fluent-bit")
    v = fb["props"]["values"]
    assert fb["props"]["version"] == cfg["fluentBitChartVersion"] and fb["props"]["repositoryOpts"] == {
        "repo": "https://aws.github.io/eks-charts"
    }
    assert v["cloudWatchLogs"]["logGroupName"] == group["props"]["name"]
    assert v["cloudWatchLogs"]["region"] == plan["config"]["aws:region"]
    assert v["cloudWatchLogs"]["autoCreateGroup"] is False  # the group is Pulumi's (KMS, retention)
    assert v["filter"]["mergeLog"] == "On" and v["filter"]["keepLog"] == "Off"  # JSON parsed, not stored twice
    assert v["tolerations"] == [{"operator": "Exists"}]  # every node, the signaling nodes too
    (write,) = role_policy_of(plan, "fluent-bit")
    arn = f"arn:aws:logs:{plan['config']['aws:region']}:123456789012:log-group:{group['props']['name']}"
    assert write["Resource"] == [arn, f"{arn}:log-stream:*"]
    assert "logs:CreateLogGroup" not in write["Action"]
    assert plan["outputs"]["podLogGroup"] == group["props"]["name"]


def test_traces_zipkin_in_sampled_to_tempo_on_s3(plan):
    cfg = plan["config"]["monitoring"]["traces"]
    col = release(plan, "opentelemetry-collector")["props"]["values"]
    conf = col["alternateConfig"]
    assert col["image"]["repository"] == "otel/opentelemetry-collector-contrib"
    assert conf["receivers"]["zipkin"]["endpoint"].endswith(":9411")
    assert conf["processors"]["probabilistic_sampler"] == {"sampling_percentage": cfg["samplingPercent"]}
    (pipeline,) = conf["service"]["pipelines"].values()
    assert "zipkin" in pipeline["receivers"] and "probabilistic_sampler" in pipeline["processors"]
    assert conf["exporters"]["otlp/tempo"]["endpoint"] == "tempo.monitoring.svc:4317"
    assert plan["outputs"]["zipkinEndpoint"] == "http://otel-collector.monitoring.svc:9411/api/v2/spans"
    tempo = release(plan, "tempo")
    t = tempo["props"]["values"]["tempo"]
    bucket = f"{plan['stack']}-voip-traces-123456789012"
    assert t["storage"]["trace"]["backend"] == "s3" and t["storage"]["trace"]["s3"]["bucket"] == bucket
    assert t["retention"] == f"{cfg['retentionDays'] * 24}h"
    (b,) = [r for r in plan.of_type("aws:s3/bucket:Bucket") if r["props"]["bucket"] == bucket]
    (sse,) = [r for r in plan.children(b["urn"]) if r["type"].endswith("BucketServerSideEncryptionConfiguration")]
    assert sse["props"]["rules"][0]["applyServerSideEncryptionByDefault"] == {
        "sseAlgorithm": "aws:kms",
        "kmsMasterKeyId": plan["outputs"]["dataKeyArn"],
    }
    (logging,) = [r for r in plan.children(b["urn"]) if r["type"].endswith("BucketLogging")]
    assert logging["props"]["targetPrefix"].endswith("traces/")  # into the stage's access-log bucket
    (lifecycle,) = [r for r in plan.children(b["urn"]) if r["type"].endswith("BucketLifecycleConfiguration")]
    assert {"id": "expire", "status": "Enabled", "filter": {}, "expiration": {"days": cfg["retentionDays"] + 1}} in lifecycle["props"][
        "rules"
    ]
    statements = role_policy_of(plan, "tempo")
    assert {s["Resource"] if isinstance(s["Resource"], str) else None for s in statements} == {
        f"arn:aws:s3:::{bucket}",
        f"arn:aws:s3:::{bucket}/*",
        plan["outputs"]["dataKeyArn"],
    }
    # Grafana reads both.
    grafana = release(plan, "kube-prometheus-stack")["props"]["values"]["grafana"]
    assert {d["type"] for d in grafana["additionalDataSources"]} == {"tempo", "cloudwatch"}
    (query, listing, stop) = role_policy_of(plan, "kube-prometheus-stack-grafana")
    groups = f"arn:aws:logs:{plan['config']['aws:region']}:123456789012:log-group:"
    assert query["Resource"][0] == f"{groups}/voip/{plan['stack']}/pods"
    assert listing["Resource"] == f"{groups}*" and set(listing["Action"]) == {"logs:DescribeLogGroups", "logs:GetQueryResults"}
    assert stop["Action"] == "logs:StopQuery" and stop["Resource"] == "*"  # a query id: no resource


def test_logs_and_traces_off_build_neither():
    plan = variant("dev", BOTH_OFF)
    assert not [g for g in plan.of_type(LOG_GROUP) if g["props"]["name"].endswith("/pods")]
    charts = {r["props"]["chart"] for r in plan.of_type(RELEASE)}
    assert not {"aws-for-fluent-bit", "tempo", "opentelemetry-collector"} & charts
    assert not plan.of_type("voip:monitoring:Telemetry")
    assert release(plan, "kube-prometheus-stack")["props"]["values"]["grafana"]["additionalDataSources"] == []


def test_logs_and_traces_have_a_cost_line():
    report = estimate(stack_plan("production"))
    cfg = stack_plan("production")["config"]["monitoring"]
    logs, traces = report.line("production-pod-logs"), report.line("production-traces")
    from tools import prices as P

    # Production's group is Infrequent Access: half the ingestion price of the standard class.
    assert cfg["logs"]["logClass"] == "INFREQUENT_ACCESS"
    expected = cfg["logs"]["estimatedGibPerDay"] * (
        P.DAYS_PER_MONTH * P.CLOUDWATCH_LOGS_INGEST_PER_GB / 2 + cfg["logs"]["retentionDays"] * P.CLOUDWATCH_LOGS_STORED_GB_MONTH
    )
    assert logs.usd == pytest.approx(expected, abs=0.01) and logs.usd > 50
    assert traces.usd == pytest.approx(cfg["traces"]["estimatedGibPerDay"] * cfg["traces"]["retentionDays"] * 0.025, abs=0.01)
    (fn,) = [line for line in report.lines if line.urn.endswith("aws:lambda/function:Function::production-ws-check")]
    assert 0.5 < fn.usd < 1.5  # cents of Lambda + 2 custom metrics


# ------------------------------------------------------------------ config errors


def _errors(stack, overrides):
    raw, _ = stack_raw(stack)
    with pytest.raises(ConfigError) as exc:
        load_stack_config(stack, with_overrides(raw, overrides))
    return exc.value.lines


@pytest.mark.parametrize(
    "stack, overrides, expected",
    [
        (
            "dev",
            {"voip-infra:notifications": {"warningEmails": ["not-an-address"]}},
            "voip-infra:notifications.warningEmails.0: 'not-an-address' is not an e-mail",
        ),
        (
            "dev",
            {"voip-infra:notifications": {"slack": {"workspaceId": "T07EA123LEP", "channelId": "general"}}},
            "notifications.slack.channelId: 'general' is not a Slack channel ID",
        ),
        ("dev", {"voip-infra:notifications": {"pager": ["x@example.com"]}}, "voip-infra:notifications.pager"),
        (
            "production",
            {"voip-infra:notifications": {"criticalEmails": [], "slack": None}},
            "notifications.criticalEmails: a stage with protectData needs someone paged",
        ),
        (
            "dev",
            {"voip-infra:monitoring": {"canary": {"enabled": True}}},
            "monitoring.canary.enabled: the check runs from AWS's public addresses",
        ),
        (
            "dev",
            {"voip-infra:monitoring": {"logs": {"retentionDays": 10}}},
            "monitoring.logs.retentionDays: 10 is not a CloudWatch Logs retention",
        ),
        ("dev", {"voip-infra:monitoring": {"traces": {"samplingPercent": 0}}}, "monitoring.traces.samplingPercent"),
        ("dev", {"voip-infra:notifications": {"warningEmails": ["a@example.com", "a@example.com"]}}, "warningEmails: duplicate addresses"),
    ],
)
def test_notification_and_observability_config_errors(stack, overrides, expected):
    lines = _errors(stack, overrides)
    assert any(expected in line and line.startswith("error: voip-infra:") for line in lines), lines


def test_the_apps_alert_rules_follow_the_custom_metrics_contract_in_the_docs():
    doc = (Path(__file__).resolve().parent.parent / "docs" / "monitoring.md").read_text()
    assert "management.zipkin.tracing.endpoint" in doc and "percentiles-histogram" in doc


def test_the_apps_report_spans_to_the_collector_and_may_reach_it():
    """The co-talk release (rendered by real Helm): Brave's Zipkin reporter points at the
    telemetry tier's collector, and the app's NetworkPolicy lets exactly that port out to the
    monitoring namespace."""
    from tests.test_apps import rendered

    plan = stack_plan("production")
    objs = rendered("production")["co-talk-api"]
    (workload,) = [o for o in objs if o["kind"] in ("Rollout", "Deployment")]
    (container,) = workload["spec"]["template"]["spec"]["containers"]
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["MANAGEMENT_ZIPKIN_TRACING_ENDPOINT"] == plan["outputs"]["zipkinEndpoint"]
    assert env["MANAGEMENT_TRACING_SAMPLING_PROBABILITY"] == "1.0"  # the collector samples
    (policy,) = [o for o in objs if o["kind"] == "NetworkPolicy"]
    to_monitoring = [
        r
        for r in policy["spec"]["egress"]
        if any(t.get("namespaceSelector", {}).get("matchLabels", {}).get("kubernetes.io/metadata.name") == "monitoring" for t in r["to"])
    ]
    assert [p["port"] for r in to_monitoring for p in r["ports"]] == [9411]
