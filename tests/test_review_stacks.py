"""Review stacks and clones with data: clone-stack --snapshot (restored database, refused without
the source's consent), the clone's own delegation and CI roles, zero recovery windows on every
unprotected secret, and the reaper's judgement on dates."""

from __future__ import annotations

import datetime
import json
import shutil
from pathlib import Path

import pytest

from components.config_loader import ConfigError, load_stack_config
from tests.harness import plan_of, stack_plan, with_overrides
from tools import reaper
from tools.clone_stack import CloneError, clone_stack
from tools.stackfile import load_stack_file

ROOT = Path(__file__).resolve().parent.parent
SECRET = "aws:secretsmanager/secret:Secret"


@pytest.fixture(scope="module")
def load_test(tmp_path_factory):
    stacks = tmp_path_factory.mktemp("stacks")
    shutil.copytree(ROOT / "stacks", stacks, dirs_exist_ok=True)
    result = clone_stack("production", "load-test", stacks, snapshot="latest", today=datetime.date(2026, 11, 29))
    raw, secrets = load_stack_file(result.path)
    return result, raw, plan_of("load-test", raw, secrets)


def test_clone_with_snapshot_restores_the_database(load_test):
    result, raw, plan = load_test
    (db,) = plan.of_type("aws:rds/instance:Instance")
    props = db["props"]
    # The newest snapshot of production's instance, with the key it is encrypted with (RDS keeps it).
    assert props["snapshotIdentifier"] == "arn:aws:rds:ap-northeast-2:123456789012:snapshot:rds:production-postgres-2026-11-28-17-05"
    assert props["kmsKeyId"] == "arn:aws:kms:ap-northeast-2:123456789012:key/source-production-postgres"
    # Name and master user come from the snapshot; the password is re-set, write-only, to the clone's own.
    assert "dbName" not in props and "username" not in props
    assert props["passwordWo"] == "[secret]" and props["engineVersion"] == "16"
    assert props["allocatedStorage"] == 100 and props["skipFinalSnapshot"] is True and not db["protect"]
    cfg = json.loads(raw["voip-infra:database"])
    assert cfg["restoreFrom"] == {"stage": "production", "snapshot": "latest", "engineVersion": "16"}
    assert "snapshotsForClones" not in cfg  # a copy never seeds further clones
    notes = " ".join(result.notes)
    assert "not copied: Redis" in notes and "file bucket" in notes and "re-set (write-only)" in notes


def test_clone_is_a_review_stack_that_delegates_its_own_zone(load_test):
    result, raw, plan = load_test
    text = result.path.read_text()
    assert "secretsprovider: awskms://alias/voip-infra-review-secrets?region=ap-northeast-2" in text
    access = json.loads(raw["voip-infra:cluster"])["access"]
    assert access["ciRoles"] == "review" and access["creator"] == "ci"
    (ns,) = [r for r in plan.of_type("aws:route53/record:Record") if r["props"]["type"] == "NS"]
    assert ns["props"]["name"] == "load-test.voip.example.com" and not ns["protect"]
    # Into the parent's zone (looked up by name), with the name servers of the clone's own zone.
    assert ns["props"]["zoneId"] != plan.of_type("aws:route53/zone:Zone")[0]["id"]
    assert ns["props"]["records"] == ["ns-1.awsdns-01.org", "ns-2.awsdns-02.co.uk", "ns-3.awsdns-03.com", "ns-4.awsdns-04.net"]
    for validation in plan.of_type("aws:acm/certificateValidation:CertificateValidation"):
        assert ns["urn"] in validation["dependsOn"]  # ACM sees the record only once delegated


def test_snapshot_refused_without_the_sources_consent_and_bad_ids(tmp_path, capsys):
    shutil.copytree(ROOT / "stacks", tmp_path, dirs_exist_ok=True)
    with pytest.raises(CloneError) as info:
        clone_stack("dev", "qa", tmp_path, snapshot="latest")
    assert info.value.lines[0].startswith("error: --snapshot: dev does not share its snapshots with clones")
    assert "snapshotsForClones" in info.value.lines[0]
    with pytest.raises(CloneError, match="not 'latest' nor an RDS snapshot identifier"):
        clone_stack("production", "qa", tmp_path, snapshot="2026/11/28")
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(p.name for p in (ROOT / "stacks").iterdir())  # nothing written
    from tools.__main__ import main

    assert main(["clone-stack", "--from", "dev", "--to", "qa", "--snapshot", "latest", "--stacks-dir", str(tmp_path)]) == 1
    assert "does not share its snapshots" in capsys.readouterr().err


def test_restore_keeps_the_major_and_only_on_disposable_stages(load_test):
    _, raw, _ = load_test
    bad = with_overrides(raw, {"voip-infra:database": {"engineVersion": "17"}})
    with pytest.raises(ConfigError) as info:
        load_stack_config("load-test", bad)
    assert info.value.lines == [
        "error: voip-infra:database.engineVersion: a restore keeps the snapshot's PostgreSQL major (16); set engineVersion: '16' and upgrade after the restore"
    ]
    with pytest.raises(ConfigError) as info:
        load_stack_config(
            "load-test", with_overrides(raw, {"voip-infra:protectData": True, "voip-infra:database": {"skipFinalSnapshot": False}})
        )
    assert any("restoreFrom: only a disposable clone" in line for line in info.value.lines)


def unprotected_secret_windows(plan) -> list[str]:
    """Secrets of an unprotected stage that keep their name taken after a destroy."""
    if plan["config"]["protectData"]:
        return [s["name"] for s in plan.of_type(SECRET) if s["props"].get("recoveryWindowInDays") != 30]
    return [s["name"] for s in plan.of_type(SECRET) if s["props"].get("recoveryWindowInDays") != 0]


def test_secrets_recovery_window_zero_unless_protected(plans, load_test):
    for plan in [*plans.values(), load_test[2]]:
        assert plan.of_type(SECRET)
        assert unprotected_secret_windows(plan) == [], plan["stack"]
    # Mutation: the origin secret's former 7 days is caught.
    planted = json.loads(json.dumps(stack_plan("dev")))
    planted = type(stack_plan("dev"))(planted)
    next(s for s in planted.of_type(SECRET) if s["name"] == "dev-origin-secret")["props"]["recoveryWindowInDays"] = 7
    assert unprotected_secret_windows(planted) == ["dev-origin-secret"]


# ------------------------------------------------------------------ reaper

D = datetime.date


@pytest.mark.parametrize(
    "stack, tags, today, expired, reason",
    [
        ("pr-12", {"voip:expires": "2026-12-06"}, D(2026, 12, 5), False, "expires on 2026-12-06 (in 1 days)"),
        ("pr-12", {"voip:expires": "2026-12-06"}, D(2026, 12, 6), True, "expired on 2026-12-06 (0 days ago)"),
        ("pr-12", {"voip:expires": "2026-12-06"}, D(2027, 1, 1), True, "expired on 2026-12-06 (26 days ago)"),
        ("pr-7", {"voip:expires": "2024-02-29"}, D(2024, 3, 1), True, "expired on 2024-02-29 (1 days ago)"),
        ("pr-12", {}, D(2030, 1, 1), False, "no voip:expires tag: left alone"),
        ("pr-12", {"voip:expires": "06/12/2026"}, D(2030, 1, 1), False, "'06/12/2026' is not a date"),
        ("production", {"voip:expires": "2000-01-01"}, D(2030, 1, 1), False, "not a review stack"),
        ("dev", {"voip:expires": "2000-01-01"}, D(2030, 1, 1), False, "not a review stack"),
        ("load-test", {"voip:expires": "2000-01-01"}, D(2030, 1, 1), False, "not a review stack"),
        ("pr-0", {"voip:expires": "2000-01-01"}, D(2030, 1, 1), False, "not a review stack"),
    ],
)
def test_reaper_judges_on_dates(stack, tags, today, expired, reason):
    verdict = reaper.judge(stack, tags, today)
    assert verdict.expired is expired and reason in verdict.reason


def test_reaper_expiry_is_created_plus_ttl_and_the_cli_lists_only_expired(tmp_path, capsys):
    assert reaper.expires_on(D(2026, 11, 29), 7) == D(2026, 12, 6)
    assert reaper.expires_on(D(2026, 12, 30), 3) == D(2027, 1, 2)
    stacks = [
        {"name": "pr-3", "tags": {"voip:expires": "2026-11-20"}},
        {"name": "pr-4", "tags": {"voip:expires": "2026-12-20"}},
        {"name": "dev", "tags": {"voip:expires": "2020-01-01"}},
        {"name": "pr-9"},
    ]
    path = tmp_path / "stacks.json"
    path.write_text(json.dumps(stacks))
    from tools.__main__ import main

    assert main(["reaper", "--stacks", str(path), "--today", "2026-11-29"]) == 0
    out = capsys.readouterr()
    assert out.out == "pr-3\n"
    assert "keep pr-9: no voip:expires tag" in out.err and "keep dev: not a review stack" in out.err


def test_clone_ttl_header_and_reaper_tag_agree(load_test):
    result, _, _ = load_test
    assert result.expires == reaper.expires_on(result.created, result.ttl_days) == D(2026, 12, 6)
    assert "due for tear-down on 2026-12-06" in result.path.read_text()
