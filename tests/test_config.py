"""Stack config validation: every bad input names its key path; all problems at once."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pulumi
import pytest
import yaml

from components.config_loader import ConfigError, load_stack_config
from tests.harness import STACKS, stack_raw, with_overrides
from tools.mocks import run_program

ROOT = Path(__file__).resolve().parent.parent


def errors_for(overrides: dict, stack: str = "dev") -> list[str]:
    raw, _ = stack_raw(stack)
    with pytest.raises(ConfigError) as info:
        load_stack_config(stack, with_overrides(raw, overrides))
    return info.value.lines


@pytest.mark.parametrize("stack", STACKS)
def test_every_stack_file_is_valid(stack):
    raw, _ = stack_raw(stack)
    cfg = load_stack_config(stack, raw)
    assert cfg.stage == stack and cfg.region == "ap-northeast-2"


BAD_INPUTS = [
    # (overrides, key path that must be named, a word of the explanation)
    ({"voip-infra:netwrk": {"cidr": "10.0.0.0/16"}}, "voip-infra:netwrk", "unknown key"),
    ({"voip-infra:network": {"cidrr": "10.0.0.0/16"}}, "voip-infra:network.cidrr", "allowed keys"),
    ({"voip-infra:network": {"cidr": "10.20.0.0/33"}}, "voip-infra:network.cidr", "not a valid IPv4 CIDR"),
    ({"voip-infra:network": {"cidr": "10.20.0.1/16"}}, "voip-infra:network.cidr", "host bits"),
    ({"voip-infra:network": {"cidr": "10.20.0.0/24"}}, "voip-infra:network.cidr", "/16 to /20"),
    ({"voip-infra:network": {"cidr": "192.168.0.0/16"}}, "voip-infra:network.cidr", "overlaps 192.168.0.0/16"),
    ({"voip-infra:network": {"cidr": "8.8.0.0/16"}}, "voip-infra:network.cidr", "private"),
    ({"voip-infra:network": {"cidr": 1020}}, "voip-infra:network.cidr", "CIDR"),
    ({"voip-infra:network": {"natStrategy": "many"}}, "voip-infra:network.natStrategy", "'per_az', 'single', 'none' or 'instance'"),
    (
        {"voip-infra:network": {"azs": ["us-east-1a", "ap-northeast-2a"]}},
        "voip-infra:network.azs.0",
        "not an availability zone of ap-northeast-2",
    ),
    ({"voip-infra:network": {"azs": ["ap-northeast-2a"]}}, "voip-infra:network.azs", "at least 2"),
    ({"voip-infra:network": {"azs": ["ap-northeast-2a", "ap-northeast-2a"]}}, "voip-infra:network.azs", "once"),
    ({"voip-infra:network": {"azs": ["seoul-a", "ap-northeast-2a"]}}, "voip-infra:network.azs.0", "availability zone"),
    ({"voip-infra:network": {"flowLogsRetentionDays": 10}}, "voip-infra:network.flowLogsRetentionDays", "allowed: 1, 3, 5"),
    ({"voip-infra:network": {"interfaceEndpoints": ["ec2"]}}, "voip-infra:network.interfaceEndpoints.0", "ecr.api"),
    ({"voip-infra:database": {"readReplicas": "three"}}, "voip-infra:database.readReplicas", "integer"),
    ({"voip-infra:database": {"readReplicas": 9}}, "voip-infra:database.readReplicas", "less than or equal to 5"),
    ({"voip-infra:database": {"instanceClass": "t4g.micro"}}, "voip-infra:database.instanceClass", "db.t4g.micro"),
    ({"voip-infra:database": {"backupWindow": "25:00-26:00"}}, "voip-infra:database.backupWindow", "hh:mm-hh:mm"),
    (
        {"voip-infra:database": {"maxAllocatedStorageGib": 30, "allocatedStorageGib": 40}},
        "voip-infra:database.maxAllocatedStorageGib",
        ">= allocatedStorageGib",
    ),
    (
        {"voip-infra:cluster": {"systemNodes": {"instanceTypes": ["m5.large"]}}},
        "voip-infra:cluster.systemNodes.instanceTypes.0",
        "Graviton",
    ),
    (
        {"voip-infra:cluster": {"signalingNodes": {"instanceTypes": ["c7g.large"], "minSize": 5, "maxSize": 2}}},
        "voip-infra:cluster.signalingNodes.desiredSize",
        "minSize <= desiredSize <= maxSize",
    ),
    (
        {"voip-infra:cluster": {"signalingNodes": {"instanceTypes": ["c7g.large"], "capacityType": "spot"}}},
        "voip-infra:cluster.signalingNodes.capacityType",
        "'ON_DEMAND' or 'SPOT'",
    ),
    ({"voip-infra:cluster": {"publicAccessCidrs": ["0.0.0.0/0"]}}, "voip-infra:cluster.publicAccessCidrs.0", "opens the API server"),
    ({"voip-infra:cluster": {"version": "2.0"}}, "voip-infra:cluster.version", "Kubernetes minor version"),
    ({"voip-infra:network": {"flowLogsAggregationSeconds": 300}}, "voip-infra:network.flowLogsAggregationSeconds", "60 or 600"),
    ({"voip-infra:network": {"flowLogsDestination": "kinesis"}}, "voip-infra:network.flowLogsDestination", "'cloud-watch-logs' or 's3'"),
    ({"voip-infra:cluster": {"version": "1.33"}}, "voip-infra:cluster.version", "left EKS standard support on 2026-07-29"),
    ({"voip-infra:cluster": {"addons": {"kubeProxy": "v1.35.2-eksbuild.1"}}}, "voip-infra:cluster.addons.kubeProxy", "cluster runs 1.36"),
    ({"voip-infra:turn": {"maxBitsPerSecond": 1_000_001}}, "voip-infra:turn.maxBitsPerSecond", "multiple of 8"),
    ({"voip-infra:turn": {"maxBps": 1_000_000}}, "voip-infra:turn.maxBps", "maxBitsPerSecond"),
    ({"voip-infra:turn": {"relayPorts": {"min": 60000, "max": 50000}}}, "voip-infra:turn.relayPorts.min", "min <= max"),
    ({"voip-infra:turn": {"relayPorts": {"min": 80, "max": 50000}}}, "voip-infra:turn.relayPorts.min", "greater than or equal to 1024"),
    ({"voip-infra:turn": {"relayPorts": {"min": 3000, "max": 4000}}}, "voip-infra:turn.relayPorts", "contains port 3478"),
    ({"voip-infra:turn": {"instanceType": "c5n.large"}}, "voip-infra:turn.instanceType", "Graviton"),
    ({"voip-infra:turn": {"nodeCount": 0}}, "voip-infra:turn.nodeCount", "greater than or equal to 1"),
    ({"voip-infra:edge": {"domain": "Not A Domain"}}, "voip-infra:edge.domain", "domain name"),
    ({"voip-infra:edge": {"priceClass": "PriceClass_100"}}, "voip-infra:edge.priceClass", "PriceClass_200"),
    ({"voip-infra:edge": {"allowList": [f"198.51.100.{i}/32" for i in range(26)]}}, "voip-infra:edge.allowList", "at most 25"),
    ({"voip-infra:edge": {"restrictToAllowList": True, "allowList": []}}, "voip-infra:edge.allowList", "at least one CIDR"),
    ({"voip-infra:edge": {"allowList": ["::/0"]}}, "voip-infra:edge.allowList.0", "::/0 allows everyone"),
    ({"voip-infra:edge": {"allowList": ["2001:db8::1/48"]}}, "voip-infra:edge.allowList.0", "IPv4 or IPv6 CIDR"),
    ({"voip-infra:edge": {"restrictToAllowList": True, "allowList": ["2001:db8::/32"]}}, "voip-infra:edge.allowList", "IPv4 range"),
    ({"voip-infra:edge": {"loadTestBypass": True}}, "voip-infra:edge.loadTestBypass", "voip-infra:loadTestBypassToken"),
    ({"voip-infra:signaling": {"replicas": {"min": 30, "max": 20}}}, "voip-infra:signaling.replicas.min", "min <= max"),
    (
        {"voip-infra:signaling": {"image": {"repository": "ghcr.io/x/y", "digest": "sha256:abc"}}},
        "voip-infra:signaling.image.digest",
        "sha256",
    ),
    ({"voip-infra:cache": {"groups": {"Bad_Name": {}}}}, "voip-infra:cache.groups.Bad_Name", "at most 16 chars"),
    ({"voip-infra:signaling": {"redisGroup": "sessions"}}, "voip-infra:signaling.redisGroup", "allowed: cache"),
    ({"voip-infra:cache": {"engine": "memcached"}}, "voip-infra:cache.engine", "'redis' or 'valkey'"),
    ({"voip-infra:protectData": "maybe"}, "voip-infra:protectData", "boolean"),
    ({"voip-infra:owner": None}, "voip-infra:owner", "required"),
    ({"aws:region": "seoul"}, "aws:region", "AWS region"),
    (
        {"voip-infra:migration": {"nasLanCidr": "10.20.5.0/24", "nasPublicIp": "211.234.10.50", "nasHost": "10.20.5.9"}},
        "voip-infra:migration.nasLanCidr",
        "overlaps network.cidr",
    ),
    (
        {"voip-infra:migration": {"nasLanCidr": "192.168.10.0/24", "nasPublicIp": "192.168.1.1", "nasHost": "192.168.10.9"}},
        "voip-infra:migration.nasPublicIp",
        "not a public address",
    ),
    (
        {
            "voip-infra:migration": {
                "nasLanCidr": "192.168.10.0/24",
                "nasPublicIp": "211.234.10.50",
                "nasHost": "192.168.10.9",
                "dms": {"engineVersion": "3.5.4"},
            }
        },
        "voip-infra:migration.dms.engineVersion",
        "stopped creating 3.5.4 instances",
    ),
]


@pytest.mark.parametrize("overrides, path, why", BAD_INPUTS, ids=[b[1] + ":" + b[2][:20] for b in BAD_INPUTS])
def test_bad_input_names_its_key_path(overrides, path, why):
    lines = errors_for(overrides)
    matching = [line for line in lines if line.startswith(f"error: {path}: ")]
    assert matching, lines
    assert any(why in line for line in matching), matching


def test_protected_stage_forbids_disposable_settings():
    lines = errors_for(
        {"voip-infra:database": {"skipFinalSnapshot": True}, "voip-infra:storage": {"forceDestroy": True}}, stack="production"
    )
    assert any(line.startswith("error: voip-infra:database.skipFinalSnapshot: not allowed while protectData") for line in lines)
    assert any(line.startswith("error: voip-infra:storage.forceDestroy: not allowed while protectData") for line in lines)


def test_all_problems_are_reported_at_once():
    lines = errors_for(
        {
            "voip-infra:network": {"cidr": "10.20.0.0/33", "natStrategy": "many"},
            "voip-infra:turn": {"relayPorts": {"min": 60000, "max": 50000}},
            "voip-infra:cluster": {"publicAccessCidrs": ["0.0.0.0/0"]},
            "voip-infra:typo": 1,
        }
    )
    # The unknown top-level key is reported first (nothing else is read until it is fixed).
    assert lines == ["error: voip-infra:typo: unknown key; allowed keys: " + lines[0].split("allowed keys: ")[1]]
    lines = errors_for(
        {
            "voip-infra:network": {"cidr": "10.20.0.0/33", "natStrategy": "many"},
            "voip-infra:turn": {"relayPorts": {"min": 60000, "max": 50000}},
            "voip-infra:cluster": {"publicAccessCidrs": ["0.0.0.0/0"]},
        }
    )
    paths = {line.split(": ")[1] for line in lines}
    assert {
        "voip-infra:network.cidr",
        "voip-infra:network.natStrategy",
        "voip-infra:turn.relayPorts.min",
        "voip-infra:cluster.publicAccessCidrs.0",
    } <= paths
    assert all(line.startswith("error: ") and "\n" not in line for line in lines)


def test_stack_name_must_be_usable_in_resource_names():
    raw, _ = stack_raw("dev")
    with pytest.raises(ConfigError) as info:
        load_stack_config("Dev_Stack", raw)
    assert info.value.lines[0].startswith("error: stack: 'Dev_Stack'")


def test_secrets_are_redacted_in_the_plan_config():
    raw, _ = stack_raw("dev")
    cfg = load_stack_config(
        "dev", with_overrides(raw, {"voip-infra:loadTestBypassToken": "hunter2-token", "voip-infra:edge": {"loadTestBypass": True}})
    )
    redacted = json.dumps(cfg.redacted())
    assert "hunter2-token" not in redacted
    assert cfg.redacted()["loadTestBypassToken"] == "[secret]"
    assert cfg.load_test_bypass_token.get_secret_value() == "hunter2-token"


# ------------------------------------------------------------- the CLI contract


def _bad_stack_file(tmp_path: Path) -> Path:
    doc = yaml.safe_load((ROOT / "stacks" / "Pulumi.dev.yaml").read_text())
    doc["config"]["voip-infra:network"]["natStrategey"] = "single"  # typo'd key
    doc["config"]["voip-infra:network"]["cidr"] = "10.20.0.0/8"  # bad CIDR
    doc["config"]["voip-infra:database"]["readReplicas"] = "two"  # wrong type
    path = tmp_path / "Pulumi.bad.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


def test_plan_cli_rejects_bad_config_without_traceback_and_writes_nothing(tmp_path):
    out = tmp_path / "plan.json"
    proc = subprocess.run(
        [sys.executable, "-m", "tools", "plan", "--stack", "dev", "--config", str(_bad_stack_file(tmp_path)), "--json", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr + proc.stdout
    lines = proc.stderr.strip().splitlines()
    assert all(line.startswith("error: ") for line in lines), lines
    assert any(line.startswith("error: voip-infra:network.natStrategey: unknown key") for line in lines)
    assert any(line.startswith("error: voip-infra:network.cidr: ") for line in lines)
    assert any(line.startswith("error: voip-infra:database.readReplicas: ") for line in lines)
    assert not out.exists()


def test_plan_cli_usage_error_exits_2():
    proc = subprocess.run([sys.executable, "-m", "tools", "plan"], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr


def test_program_under_the_engine_reports_the_same_lines_and_registers_nothing(tmp_path):
    """What `pulumi preview` runs: __main__.py raises RunError (no traceback) before any registration."""
    raw, _ = stack_raw("dev")
    bad = with_overrides(raw, {"voip-infra:network": {"cidr": "10.20.0.0/8"}, "voip-infra:netwrk": {}})
    with pytest.raises(ConfigError) as expected:
        load_stack_config("dev", bad)
    with pytest.raises(pulumi.RunError) as info:
        run_program("dev", bad)
    message = str(info.value)
    assert all(line in message for line in expected.value.lines)
