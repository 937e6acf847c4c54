"""`clone-stack`: a new ephemeral stage from a template, always in a temporary copy of stacks/."""

from __future__ import annotations

import datetime
import ipaddress
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from components.config import RESERVED_RANGES
from components.config_loader import load_stack_config
from tests.harness import plan_of
from tests.test_edge import address_family_violations
from tests.test_vpc_origin import vpc_origin_violations
from tools.__main__ import main
from tools.clone_stack import CloneError, clone_stack, free_cidr, used_ranges
from tools.stackfile import STACKS, load_stack_file

ROOT = Path(__file__).resolve().parent.parent
NS = "voip-infra:"
# The ranges of the repo's stages and the NAS LAN (a clone must overlap none of them).
TAKEN = [ipaddress.ip_network(c) for c in ("10.20.0.0/16", "10.30.0.0/16", "10.40.0.0/16", "192.168.10.0/24")]


@pytest.fixture
def stacks(tmp_path) -> Path:
    """A copy of the repo's stacks/ (the tests never write into the repo)."""
    target = tmp_path / "stacks"
    shutil.copytree(STACKS, target)
    return target


def _config(path: Path, stage: str):
    raw, secrets = load_stack_file(path)
    return load_stack_config(stage, raw), raw, secrets


def test_clone_dev_to_qa_is_free_valid_and_ephemeral(stacks):
    before = {p.name: p.read_bytes() for p in stacks.iterdir()}
    result = clone_stack("dev", "qa", stacks, today=datetime.date(2025, 3, 1))

    assert result.path == stacks / "Pulumi.qa.yaml" and result.path.exists()
    assert {p.name: p.read_bytes() for p in stacks.iterdir() if p.name != "Pulumi.qa.yaml"} == before
    # The lowest free /16 from 10.50.0.0/16, clear of every stage, the NAS LAN and the reserved LAN ranges.
    assert result.cidr == ipaddress.ip_network("10.50.0.0/16")
    for taken in [*TAKEN, *RESERVED_RANGES]:
        assert not result.cidr.overlaps(taken), taken

    cfg, raw, _ = _config(result.path, "qa")
    dev, _, _ = _config(stacks / "Pulumi.dev.yaml", "dev")
    assert cfg.network.cidr == result.cidr
    assert raw["aws:region"] == "ap-northeast-2" and raw["pulumi:disable-default-providers"] == '["*"]'
    assert (cfg.owner, cfg.cost_center) == (dev.owner, dev.cost_center)
    assert cfg.protect_data is False and cfg.ttl_days == 7
    assert cfg.network.nat_strategy == "instance"
    assert cfg.schedule == dev.schedule and cfg.schedule.enabled  # clones of dev sleep like dev
    assert cfg.database.multi_az is False and cfg.database.read_replicas == 0 and cfg.database.replica_instance_class is None
    assert cfg.database.skip_final_snapshot is True and cfg.database.backup_retention_days == 1
    assert cfg.storage.force_destroy is True
    assert set(cfg.cache.groups) == set(dev.cache.groups) and all(g.replicas == 0 for g in cfg.cache.groups.values())
    assert cfg.turn.node_count == 1
    assert cfg.edge.domain == "qa.dev.voip.example.com" and cfg.edge.hosted_zone_id is None
    assert cfg.edge.restrict_to_allow_list is True and cfg.edge.allow_list == dev.edge.allow_list
    assert cfg.edge.alb_scheme == dev.edge.alb_scheme == "internal"  # clones of dev inherit its (default) scheme
    assert not (cfg.edge.alb_deletion_protection or cfg.edge.nlb_deletion_protection or cfg.edge.nlb_static_ips)
    assert cfg.migration is None
    assert cfg.cluster.signaling_nodes.capacity_type == dev.cluster.signaling_nodes.capacity_type
    # dev's layout carries over: no API pool (apiNodes: null), the apps on the signaling nodes.
    assert cfg.cluster.api_nodes is None and cfg.cluster.system_nodes == dev.cluster.system_nodes
    assert cfg.signaling.replicas == dev.signaling.replicas

    header = result.path.read_text().split("\nconfig:")[0]
    assert "cloned from dev" in header and "2025-03-01" in header and "ttlDays 7" in header
    assert "pulumi destroy --stack qa" in header and "pulumi stack rm qa" in header


def test_clone_of_nas_migration_drops_the_bridge_and_still_avoids_its_lan(stacks):
    nas = stacks / "Pulumi.nas-migration.yaml"
    # The NAS LAN sits exactly where the clone would otherwise go: it must be stepped over.
    nas.write_text(
        nas.read_text()
        .replace("nasLanCidr: 192.168.10.0/24", "nasLanCidr: 10.50.8.0/24")
        .replace("nasHost: 192.168.10.20", "nasHost: 10.50.8.20")
        + "  voip-infra:dmsSourcePassword:\n    secure: v1:AAAA\n"  # set, as before the stage's first up
    )
    result = clone_stack("nas-migration", "mig-rehearsal", stacks, ttl_days=30)

    assert result.cidr == ipaddress.ip_network("10.51.0.0/16")
    cfg, raw, _ = _config(result.path, "mig-rehearsal")
    assert cfg.migration is None and f"{NS}migration" not in raw
    assert cfg.ttl_days == 30
    # The template's pinned image and protections: digest kept, ALB/NLB deletion protection off.
    assert cfg.signaling.image.digest is not None
    assert cfg.edge.alb_deletion_protection is False and cfg.database.multi_az is False
    assert any("migration" in n for n in result.notes)
    # The bridge's secret goes with it: no advice to set it again on the clone.
    assert f"{NS}dmsSourcePassword" not in raw
    (note,) = [n for n in result.notes if "dmsSourcePassword" in n]
    assert "only the NAS bridge uses it" in note and "config set" not in note


def test_clone_of_production_turns_protection_off_and_plans(stacks):
    result = clone_stack("production", "loadtest", stacks)
    cfg, raw, secrets = _config(result.path, "loadtest")
    assert cfg.protect_data is False
    assert cfg.database.multi_az is False and cfg.database.read_replicas == 0 and cfg.database.skip_final_snapshot is True
    assert all(g.replicas == 0 for g in cfg.cache.groups.values()) and set(cfg.cache.groups) == {"cache"}
    assert cfg.network.nat_strategy == "instance" and len(cfg.network.azs) == 3
    assert cfg.network.flow_logs_destination == "s3" and cfg.network.flow_logs_retention_days == 14
    assert cfg.edge.domain == "loadtest.voip.example.com" and cfg.edge.nlb_static_ips is False
    # production keeps its live ALB internet-facing until its move; a new stage has none to move.
    assert cfg.edge.alb_scheme == "internal" and "albScheme" not in json.loads(raw[f"{NS}edge"])

    plan = plan_of("loadtest", raw, secrets)
    assert len(plan.of_type("aws:autoscaling/group:Group")) == 1 and not plan.of_type("aws:ec2/natGateway:NatGateway")
    assert [r["urn"] for r in plan.resources if r["protect"]] == []
    (db,) = plan.of_type("aws:rds/instance:Instance")
    assert db["props"]["skipFinalSnapshot"] is True and db["props"]["multiAz"] is False
    assert db["props"]["deletionProtection"] is False
    vpc = plan.by_id(plan.of_type("aws:ec2/subnet:Subnet")[0]["props"]["vpcId"])
    assert vpc["props"]["cidrBlock"] == str(result.cidr)
    assert all(not lb["props"].get("enableDeletionProtection") for lb in plan.of_type("aws:lb/loadBalancer:LoadBalancer"))
    # Restricted to production's IPv4-only allow-list: CloudFront serves IPv4 only, no AAAA
    # record, so no viewer arrives over a family the WAF cannot allow (issue 15 item 8).
    (dist,) = plan.of_type("aws:cloudfront/distribution:Distribution")
    assert dist["props"]["isIpv6Enabled"] is False
    assert not [r for r in plan.of_type("aws:route53/record:Record") if r["props"]["type"] == "AAAA"]
    assert [s["props"]["ipAddressVersion"] for s in plan.of_type("aws:wafv2/ipSet:IpSet")] == ["IPV4"]
    # Flow logs to S3 like production, kept 14 days, and the bucket empties on `pulumi destroy`.
    (flow_bucket,) = [b for b in plan.of_type("aws:s3/bucket:Bucket") if b["name"] == "loadtest-vpc-flow-logs"]
    assert flow_bucket["props"]["forceDestroy"] is True
    assert address_family_violations(plan.resources) == []
    assert vpc_origin_violations(plan.resources) == [] and plan.of_type("aws:cloudfront/vpcOrigin:VpcOrigin")


def test_second_clone_gets_the_next_free_block(stacks):
    first = clone_stack("dev", "qa", stacks)
    second = clone_stack("dev", "feature-x", stacks)
    assert (first.cidr, second.cidr) == (ipaddress.ip_network("10.50.0.0/16"), ipaddress.ip_network("10.51.0.0/16"))
    assert not first.cidr.overlaps(second.cidr)
    assert {u for u, _ in used_ranges(stacks)} >= {first.cidr, second.cidr}


def test_free_cidr_steps_by_the_template_block_size():
    used = [ipaddress.ip_network("10.50.0.0/20"), ipaddress.ip_network("10.50.32.0/19")]
    assert free_cidr(20, used) == ipaddress.ip_network("10.50.16.0/20")
    assert free_cidr(16, used) == ipaddress.ip_network("10.51.0.0/16")
    assert free_cidr(16, [ipaddress.ip_network("10.50.0.0/15")], space=ipaddress.ip_network("10.50.0.0/15")) is None


def test_existing_target_exits_1_and_is_untouched(stacks, capsys):
    target = stacks / "Pulumi.qa.yaml"
    target.write_text("# someone's stage\nconfig: {}\n")
    assert main(["clone-stack", "--from", "dev", "--to", "qa", "--stacks-dir", str(stacks)]) == 1
    assert target.read_text() == "# someone's stage\nconfig: {}\n"
    assert "Pulumi.qa.yaml: already exists" in capsys.readouterr().err
    # The template itself is a target that exists, too.
    assert main(["clone-stack", "--from", "dev", "--to", "dev", "--stacks-dir", str(stacks)]) == 1


def test_no_free_cidr_exits_1_and_writes_nothing(stacks, capsys):
    clone_stack("dev", "qa", stacks, search_space=ipaddress.ip_network("10.50.0.0/15"))
    clone_stack("dev", "qa2", stacks, search_space=ipaddress.ip_network("10.50.0.0/15"))
    with pytest.raises(CloneError, match="no free /16"):
        clone_stack("dev", "qa3", stacks, search_space=ipaddress.ip_network("10.50.0.0/15"))
    assert not (stacks / "Pulumi.qa3.yaml").exists()

    # Through the command: stages covering 10.48.0.0-10.255.255.255 leave nothing at or above 10.50.
    for name, cidr in (("fill-a", "10.48.0.0/12"), ("fill-b", "10.64.0.0/10"), ("fill-c", "10.128.0.0/9")):
        (stacks / f"Pulumi.{name}.yaml").write_text(yaml.safe_dump({"config": {f"{NS}network": {"cidr": cidr}}}))
    capsys.readouterr()
    assert main(["clone-stack", "--from", "dev", "--to", "qa3", "--stacks-dir", str(stacks)]) == 1
    assert "no free /16" in capsys.readouterr().err
    assert not (stacks / "Pulumi.qa3.yaml").exists()


@pytest.mark.parametrize("ttl", ["0", "91", "seven"])
def test_bad_ttl_days_is_a_usage_error(stacks, ttl, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["clone-stack", "--from", "dev", "--to", "qa", "--ttl-days", ttl, "--stacks-dir", str(stacks)])
    assert exc.value.code == 2
    assert "--ttl-days" in capsys.readouterr().err
    assert not (stacks / "Pulumi.qa.yaml").exists()


def test_template_without_allow_list_is_refused(tmp_path, capsys):
    stacks = tmp_path / "stacks"
    shutil.copytree(STACKS, stacks)
    doc = yaml.safe_load((stacks / "Pulumi.production.yaml").read_text())
    del doc["config"]["voip-infra:edge"]["allowList"]
    (stacks / "Pulumi.production.yaml").write_text(yaml.safe_dump(doc))
    assert main(["clone-stack", "--from", "production", "--to", "loadtest", "--stacks-dir", str(stacks)]) == 1
    assert "edge.allowList" in capsys.readouterr().err
    assert not (stacks / "Pulumi.loadtest.yaml").exists()


@pytest.mark.parametrize(
    ("template", "to", "message"),
    [
        ("dev", "QA", "--to: 'QA' must be 2-20 chars"),
        ("staging", "qa", "Pulumi.staging.yaml: no such stack file"),
        ("../stacks/x", "qa", "--from"),
    ],
)
def test_bad_names_and_missing_template_exit_1(stacks, template, to, message, capsys):
    assert main(["clone-stack", "--from", template, "--to", to, "--stacks-dir", str(stacks)]) == 1
    assert message in capsys.readouterr().err
    assert sorted(p.name for p in stacks.iterdir()) == sorted(p.name for p in STACKS.iterdir())


def test_clone_that_would_not_validate_is_not_written(stacks):
    dev = stacks / "Pulumi.dev.yaml"
    dev.write_text(dev.read_text() + "  voip-infra:turnn: {nodeCount: 2}\n")  # a typo: unknown keys are errors
    with pytest.raises(CloneError) as exc:
        clone_stack("dev", "qa", stacks)
    assert any("voip-infra:turnn: unknown key" in line for line in exc.value.lines)
    assert not (stacks / "Pulumi.qa.yaml").exists()


def test_secrets_of_the_template_are_not_copied(stacks):
    dev = stacks / "Pulumi.dev.yaml"
    text = dev.read_text().replace("    restrictToAllowList: true\n", "    restrictToAllowList: true\n    loadTestBypass: true\n")
    dev.write_text("encryptionsalt: v1:abc:def\n" + text + "  voip-infra:loadTestBypassToken:\n    secure: v1:AAAA\n")
    load_stack_config("dev", load_stack_file(dev)[0])  # the template is valid

    result = clone_stack("dev", "qa", stacks)
    doc = yaml.safe_load(result.path.read_text())
    # No encryptionsalt/encryptedkey: `pulumi stack init` makes the clone's own, under the review key.
    assert set(doc) == {"config", "secretsprovider"}
    assert doc["secretsprovider"] == "awskms://alias/voip-infra-review-secrets?region=ap-northeast-2"
    assert f"{NS}loadTestBypassToken" not in doc["config"]
    cfg, _, _ = _config(result.path, "qa")
    assert cfg.edge.load_test_bypass is False
    assert any("loadTestBypassToken" in n for n in result.notes)


def test_cli_exit_codes(stacks):
    def run(*args: str) -> subprocess.CompletedProcess:
        cmd = [sys.executable, "-m", "tools", "clone-stack", *args, "--stacks-dir", str(stacks)]
        return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=60)

    ok = run("--from", "dev", "--to", "qa", "--ttl-days", "3")
    assert ok.returncode == 0, ok.stderr
    assert "10.50.0.0/16" in ok.stdout and "qa.dev.voip.example.com" in ok.stdout and "ttlDays:      3" in ok.stdout
    again = run("--from", "dev", "--to", "qa")
    assert again.returncode == 1 and "already exists" in again.stderr and "Traceback" not in again.stderr
    assert run("--from", "dev", "--to", "qa2", "--ttl-days", "0").returncode == 2
    assert run("--from", "dev").returncode == 2
    assert not (stacks / "Pulumi.qa2.yaml").exists()
