"""`tools tfplan` (the Terraform-plan translation) and checkov's terraform_plan framework over it:
production and nas-migration are gated by policies/checkov-skips.yaml, dev is reported."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from functools import cache
from pathlib import Path

import pytest

from tests.conftest import ROOT
from tests.harness import stack_plan
from tools import tfplan

SKIPS_FILE = ROOT / "policies" / "checkov-skips.yaml"
GATED = ("production", "nas-migration")


@cache
def _tf(stack: str) -> dict:
    return tfplan.translate(json.loads(json.dumps(stack_plan(stack))))


def _values(tf: dict, address: str) -> dict:
    return next(r["values"] for r in tf["planned_values"]["root_module"]["resources"] if r["address"] == address)


def _expressions(tf: dict, address: str) -> dict:
    return next(r["expressions"] for r in tf["configuration"]["root_module"]["resources"] if r["address"] == address)


# ------------------------------------------------------------------ the translation


@pytest.mark.parametrize("stack", ["dev", "nas-migration", "production"])
def test_every_aws_resource_once_under_its_terraform_type(stack):
    plan, tf = stack_plan(stack), _tf(stack)
    aws = [r for r in plan["resources"] if r["custom"] and r["type"].startswith("aws:")]
    planned = tf["planned_values"]["root_module"]["resources"]
    assert len(planned) == len(aws) == len({r["address"] for r in planned})
    assert {tf["pulumi_urns"][r["address"]] for r in planned} == {r["urn"] for r in aws}
    assert {r["type"] for r in planned} == {tfplan.TYPES[r["type"]] for r in aws}
    assert [r["address"] for r in tf["resource_changes"]] == [r["address"] for r in planned]
    for r in planned:
        for key in r["values"]:
            assert re.fullmatch(r"[a-z0-9_]+", key), (r["address"], key)


def test_blocks_are_lists_maps_stay_maps_and_plural_blocks_get_terraform_names():
    tf = _tf("production")
    dist = _values(tf, "aws_cloudfront_distribution.production-cdn")
    assert isinstance(dist["viewer_certificate"], list) and dist["viewer_certificate"][0]["minimum_protocol_version"] == "TLSv1.2_2021"
    assert "ordered_cache_behavior" in dist and "orderedCacheBehaviors" not in dist and "origin" in dist
    assert isinstance(dist["tags"], dict)
    listener = _values(tf, "aws_lb_listener.production-alb-http")
    assert listener["default_action"][0]["redirect"][0]["protocol"] == "HTTPS"
    sg = _values(tf, "aws_security_group.production-alb-sg")
    assert sg["ingress"][0]["prefix_list_ids"] and sg["ingress"][0]["cidr_blocks"] == []  # Terraform's attribute-as-block shape
    lt = _values(tf, "aws_launch_template.production-turn-lt")
    assert lt["metadata_options"] == [{"http_endpoint": "enabled", "http_tokens": "required", "http_put_response_hop_limit": 1}] or (
        lt["metadata_options"][0]["http_tokens"] == "required"
    )


def test_references_link_what_graph_checks_follow():
    tf = _tf("production")
    refs = {
        r["address"]: r["expressions"]
        for r in tf["configuration"]["root_module"]["resources"]
        if r["expressions"]  # noqa: SIM118
    }
    files = next(a for a in refs if a.startswith("aws_s3_bucket_public_access_block.production-files"))
    assert "aws_s3_bucket.production-files" in refs[files]["bucket"]["references"]
    turn = _expressions(tf, "aws_instance.production-turn-1")
    assert "aws_launch_template.production-turn-lt" in turn["launch_template"][0]["id"]["references"]
    dist = _expressions(tf, "aws_cloudfront_distribution.production-cdn")
    assert "aws_wafv2_web_acl.production-web-acl" in dist["web_acl_id"]["references"]
    flow = next(a for a in refs if a.startswith("aws_flow_log."))
    assert "aws_vpc.production-vpc" in refs[flow]["vpc_id"]["references"]
    # (production serves voip-bootstrap's apex zone, looked up by name: its query log refers to no
    # resource of the plan, so the zone link is checked on nas-migration, which owns its zone)
    nas = {r["address"]: r["expressions"] for r in _tf("nas-migration")["configuration"]["root_module"]["resources"] if r["expressions"]}
    (qlog,) = [a for a in nas if a.startswith("aws_route53_query_log.")]
    assert "aws_route53_zone.nas-migration-zone" in nas[qlog]["zone_id"]["references"]


def test_an_unknown_type_is_an_error_not_a_silent_drop():
    plan = json.loads(json.dumps(stack_plan("dev")))
    plan["resources"].append({**plan["resources"][-1], "type": "aws:new/thing:Thing", "custom": True, "urn": "urn:x", "name": "x"})
    with pytest.raises(KeyError, match="aws:new/thing:Thing"):
        tfplan.translate(plan)


def test_cli_writes_the_translation(tmp_path):
    (tmp_path / "plan.json").write_text(json.dumps(stack_plan("dev")))
    out = tmp_path / "tf.json"
    done = subprocess.run(
        [sys.executable, "-m", "tools", "tfplan", "--plan", str(tmp_path / "plan.json"), "--out", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(out.read_text())["planned_values"] == _tf("dev")["planned_values"]


# ------------------------------------------------------------------ checkov (two processes: production; nas-migration + dev)


@pytest.fixture(scope="module")
def checkov_results(tmp_path_factory):
    checkov = shutil.which("checkov", path=str(Path(sys.executable).parent))
    if checkov is None:
        pytest.fail("checkov is pinned in requirements-test.txt but not installed in the venv")
    work = tmp_path_factory.mktemp("tfplan")
    files = {}
    for stack in ("production", "nas-migration", "dev"):
        files[stack] = work / f"{stack}.tfplan.json"
        files[stack].write_text(json.dumps(_tf(stack)))
    env = {**os.environ, "BC_SKIP_MAPPING": "TRUE", "CHECKOV_RUN_SCA_PACKAGE_SCAN_V2": "false"}
    base = [checkov, "--framework", "terraform_plan", "-o", "json", "--skip-download", "--compact"]
    runs = [
        subprocess.Popen([*base, "-f", str(files["production"])], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env),
        subprocess.Popen(
            [*base, "-f", str(files["nas-migration"]), "-f", str(files["dev"])],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            env=env,
        ),
    ]
    out: dict[str, dict] = {s: {"failed": [], "resources": 0} for s in files}
    for proc in runs:
        stdout, _ = proc.communicate(timeout=180)
        data = json.loads(stdout)
        for report in data if isinstance(data, list) else [data]:
            for check in report["results"]["failed_checks"]:
                stack = next(s for s, f in files.items() if check["file_path"].endswith(f.name))
                out[stack]["failed"].append(check)
            for check in report["results"]["passed_checks"]:
                stack = next(s for s, f in files.items() if check["file_path"].endswith(f.name))
                out[stack]["resources"] += 1
    return out


@pytest.mark.parametrize("stack", GATED)
def test_checkov_finds_nothing_outside_the_argued_skips(checkov_results, stack):
    result = checkov_results[stack]
    assert result["resources"] > 200  # checkov read the plan (hundreds of passed checks)
    missing, _ = tfplan.uncovered(result["failed"], tfplan.load_skips(SKIPS_FILE), stack)
    assert missing == [], "\n".join(missing)


def test_every_skip_is_argued_and_still_needed(checkov_results):
    skips = tfplan.load_skips(SKIPS_FILE)
    used: set[int] = set()
    for stack in GATED:
        used |= tfplan.uncovered(checkov_results[stack]["failed"], skips, stack)[1]
    stale = [s["check"] for i, s in enumerate(skips) if i not in used and not s.get("pending")]
    assert stale == [], f"skips nothing needs any more: {stale}"
    for s in skips:
        assert re.fullmatch(r"CKV2?_AWS_\d+", s["check"]) and len(s["reason"]) >= 100, s["check"]
    assert len({s["check"] for s in skips}) == len(skips)


def test_dev_is_reported_not_gated(checkov_results, capsys):
    result = checkov_results["dev"]
    assert result["resources"] > 200
    missing, _ = tfplan.uncovered(result["failed"], tfplan.load_skips(SKIPS_FILE), "dev")
    with capsys.disabled():
        print(f"\ncheckov dev (reported, not gated): {len(result['failed'])} failed, {len(missing)} outside the skip list")


def test_gate_fails_on_a_planted_failure():
    """The gate itself: a failure of a check nobody argued, or of an argued check on a resource
    its skip does not name, is reported."""
    skips = tfplan.load_skips(SKIPS_FILE)
    planted = [
        {"check_id": "CKV_AWS_19", "resource": "aws_s3_bucket.production-files", "check_name": "S3 encrypted at rest"},
        {"check_id": "CKV_AWS_293", "resource": "aws_db_instance.production-postgres", "check_name": "deletion protection"},
        {"check_id": "CKV_AWS_293", "resource": "aws_db_instance.production-postgres-replica-1", "check_name": "deletion protection"},
    ]
    missing, used = tfplan.uncovered(planted, skips, "production")
    assert [m.split(":")[0] for m in missing] == [
        "CKV_AWS_19 aws_s3_bucket.production-files",
        "CKV_AWS_293 aws_db_instance.production-postgres",
    ]
    assert [skips[i]["check"] for i in used] == ["CKV_AWS_293"]


def test_docs_list_every_skip():
    text = (ROOT / "docs" / "policies.md").read_text()
    assert all(f"| `{s['check']}` |" in text for s in tfplan.load_skips(SKIPS_FILE))


def test_secrets_are_marked_sensitive():
    tf = _tf("production")
    version = next(r for r in tf["planned_values"]["root_module"]["resources"] if r["type"] == "aws_secretsmanager_secret_version")
    secret_keys = [k for k, v in version["values"].items() if v == "[secret]"]
    assert secret_keys and all(version["sensitive_values"][k] is True for k in secret_keys)
