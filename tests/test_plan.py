"""The plan file (CONTRACTS.md v1), the recorded resource options, providers and tags."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from components.config_loader import load_stack_config
from tests.harness import stack_raw
from tools.mocks import run_program
from tools.plan import render_markdown, render_tree

ROOT = Path(__file__).resolve().parent.parent
RESOURCE_KEYS = {"urn", "type", "name", "custom", "id", "parent", "provider", "protect", "retainOnDelete", "aliases", "dependsOn", "props"}


def test_plan_file_v1_shape(plan):
    assert plan["version"] == 1 and plan["project"] == "voip-infra"
    assert set(plan) == {"version", "project", "stack", "config", "resources", "outputs"}
    json.dumps(plan)  # plain data all the way down
    for r in plan.resources:
        assert set(r) == RESOURCE_KEYS, r["urn"]
        assert r["urn"].startswith(f"urn:pulumi:{plan['stack']}::voip-infra::")
        assert r["urn"].endswith("::" + r["name"])
        assert isinstance(r["protect"], bool) and isinstance(r["retainOnDelete"], bool)
    custom = [r for r in plan.resources if r["custom"]]
    ids = [r["id"] for r in custom]
    assert all(ids) and len(ids) == len(set(ids)), "mocked ids must be unique"
    assert all(r["id"] is None for r in plan.resources if not r["custom"])
    urns = {r["urn"] for r in plan.resources}
    assert all(r["parent"] in urns for r in plan.resources if r["parent"])
    assert all(d in urns for r in plan.resources for d in r["dependsOn"])


def test_every_aws_resource_uses_an_explicit_tagged_provider(plan):
    providers = {r["urn"]: r for r in plan.of_type("pulumi:providers:aws")}
    copy_region = plan["config"]["backup"]["copyRegion"]
    assert len(providers) == 2 + bool(copy_region)
    regions = sorted(p["props"]["region"] for p in providers.values())
    assert regions == sorted([plan["config"]["aws:region"], "us-east-1", *([copy_region] if copy_region else [])])
    for p in providers.values():
        tags = (
            json.loads(p["props"]["defaultTags"])["tags"]
            if isinstance(p["props"]["defaultTags"], str)
            else p["props"]["defaultTags"]["tags"]
        )
        assert tags == {
            "stage": plan["stack"],
            "project": "voip-infra",
            "managed-by": "pulumi",
            "owner": plan["config"]["owner"],
            "cost-center": plan["config"]["costCenter"],
        }
    for r in plan.resources:
        if r["custom"] and r["type"].startswith("aws:"):
            assert r["provider"] in providers, f"{r['urn']} uses a default provider"


def test_resource_options_come_from_the_registrations(plan):
    (igw,) = plan.of_type("aws:ec2/internetGateway:InternetGateway")
    for nat in plan.of_type("aws:ec2/natGateway:NatGateway"):
        assert igw["urn"] in nat["dependsOn"]  # explicit depends_on, seen by the engine
        assert plan.by_urn(nat["parent"])["type"] == "aws:ec2/subnet:Subnet"


def test_options_recorder_sees_protect_retain_and_aliases(tmp_path):
    program = tmp_path / "prog.py"
    program.write_text(
        "import pulumi, pulumi_aws as aws\n"
        "p = aws.Provider('p', region='ap-northeast-2')\n"
        "old = pulumi.Alias(name='old-bucket-name')\n"
        "b = aws.s3.Bucket('files', opts=pulumi.ResourceOptions(provider=p, protect=True, retain_on_delete=True, aliases=[old]))\n"
        "pulumi.export('secret', pulumi.Output.secret('s3cr3t'))\n"
        "pulumi.export('name', b.bucket)\n"
    )
    raw, _ = stack_raw("dev")
    run = run_program("dev", raw, program_file=program)
    (bucket,) = [r for r in run.registrations if r.type == "aws:s3/bucket:Bucket"]
    assert bucket.protect is True and bucket.retain_on_delete is True
    assert "urn:pulumi:dev::voip-infra::aws:s3/bucket:Bucket::old-bucket-name" in bucket.aliases
    assert bucket.provider == "urn:pulumi:dev::voip-infra::pulumi:providers:aws::p"
    assert run.secret_outputs == {"secret"}


def test_cli_writes_plan_json_and_markdown(tmp_path):
    out, md = tmp_path / "p.json", tmp_path / "p.md"
    proc = subprocess.run(
        [sys.executable, "-m", "tools", "plan", "--stack", "dev", "--json", str(out), "--markdown", str(md)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    plan = json.loads(out.read_text())
    assert plan["version"] == 1 and plan["stack"] == "dev"
    assert len(plan["resources"]) > 20
    assert "voip:network:Network dev-network" in proc.stdout
    assert "aws:ec2/subnet:Subnet × 6" in proc.stdout
    assert md.read_text().startswith("### `voip-infra` / `dev`")
    # CONTRACTS.md: the plan also prints the policy summary and the monthly cost.
    from tools import cost

    assert "policy: " in proc.stdout and " 0 mandatory " in proc.stdout
    total = cost.estimate(plan).total_usd
    assert f"monthly cost (approx., Seoul on-demand, before traffic): ${total:,.2f}" in proc.stdout
    assert "policy: " in md.read_text() and "monthly cost" in md.read_text()


def test_tree_and_markdown_count_every_custom_resource(plan):
    tree = render_tree(plan)
    counted = sum(int(line.rsplit("× ", 1)[1]) for line in tree.splitlines() if "× " in line)
    assert counted == sum(1 for r in plan.resources if r["custom"])
    md = render_markdown(plan)
    assert sum(int(line.rsplit("|", 2)[1]) for line in md.splitlines() if line.startswith("| `")) == counted


# What `protect` may sit on: data and addresses, plus the settings that keep a bucket's
# data safe (versioning, encryption, public access block, its policy, ...). Anything else
# protected would only block routine replacements.
PROTECTABLE = {
    "aws:rds/instance:Instance",
    "aws:elasticache/replicationGroup:ReplicationGroup",
    "aws:kms/key:Key",
    "aws:secretsmanager/secret:Secret",  # the NAS bridge's endpoint and mirror credentials
    "aws:ec2/eip:Eip",
    "aws:route53/zone:Zone",
    "aws:eks/cluster:Cluster",
    "aws:cloudwatch/logGroup:LogGroup",
    "aws:s3/bucket:Bucket",
    "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock",
    "aws:s3/bucketVersioning:BucketVersioning",
    "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration",
    "aws:s3/bucketOwnershipControls:BucketOwnershipControls",
    "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration",
    "aws:s3/bucketPolicy:BucketPolicy",
    "aws:backup/vault:Vault",  # recovery points
}


def test_protect_sits_on_stateful_resources_only_and_only_where_data_matters(plan):
    protected = [r for r in plan.resources if r["protect"]]
    if not plan["config"]["protectData"]:
        assert protected == []
        return
    assert {r["type"] for r in protected} <= PROTECTABLE, sorted({r["type"] for r in protected} - PROTECTABLE)
    for typ in (
        "aws:rds/instance:Instance",
        "aws:elasticache/replicationGroup:ReplicationGroup",
        "aws:kms/key:Key",
        "aws:route53/zone:Zone",
    ):
        if typ == "aws:route53/zone:Zone" and not plan.of_type(typ):
            continue  # production serves voip-bootstrap's apex zone (protected there)
        assert any(r["type"] == typ for r in protected), typ


def test_plan_order_is_stable_whatever_order_registrations_arrive_in():
    """The engine registers resources in no guaranteed order; plan files must still diff
    cleanly: parents before children, siblings by URN."""
    import random

    from tools.plan import to_plan

    raw, secrets = stack_raw("nas-migration")
    cfg = load_stack_config("nas-migration", raw)
    run = run_program("nas-migration", raw, secrets)
    first = json.dumps(to_plan(cfg, run))
    for seed in (1, 2):
        random.Random(seed).shuffle(run.registrations)
        assert json.dumps(to_plan(cfg, run)) == first
    seen: set[str] = set()
    for r in json.loads(first)["resources"]:
        assert r["parent"] is None or r["parent"] in seen, r["urn"]
        seen.add(r["urn"])


def test_mocked_runs_skip_source_positions_and_restore_the_sdk_after():
    """run_mocked stubs the SDK's per-registration stack walk (no engine reads it offline) and puts
    the SDK's own function back, also when the program fails."""
    from pulumi.runtime import resource as sdk

    from tools.mocks import run_mocked

    original, seen = sdk._get_stack_trace, []

    def build():
        seen.append(sdk._get_stack_trace)
        return {}

    run_mocked("dev", "ap-northeast-2", build)
    assert seen and seen[0] is not original and not seen[0]().frames
    assert sdk._get_stack_trace is original

    def broken():
        raise RuntimeError("boom")

    with pytest.raises(Exception, match="boom"):
        run_mocked("dev", "ap-northeast-2", broken)
    assert sdk._get_stack_trace is original
