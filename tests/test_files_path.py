"""Files reach users only if three things agree (issue 15 item 7): where writers put an object in
the file bucket, the CloudFront behaviour that serves `/files/*`, and the key CloudFront then asks
S3 for. Checked per stage, and on the bridge stage against the runbook's `mc mirror` command and
the mirror user's grant. Files mirrored into the bucket root were served as `files/...` (403)."""

from __future__ import annotations

import copy
import fnmatch
import json
import re
from typing import Any

from components.data.storage import FILES_KEY_PREFIX
from tests.conftest import ROOT
from tests.harness import stack_plan

SAMPLE_KEYS = ("avatars/u1.png", "chat/2026/11/voice note.m4a", "a")


def cloudfront_request(plan: dict[str, Any], url_path: str) -> tuple[str, str]:
    """(origin domain, S3 key) CloudFront asks for `url_path`: the first ordered behaviour whose
    pattern matches (case-sensitive; `*` any characters, `?` one), else the default; the key is the
    origin path plus the URL path, without its leading slash (S3 REST origins, no rewrite)."""
    (dist,) = [r for r in plan["resources"] if r["type"] == "aws:cloudfront/distribution:Distribution"]
    props = dist["props"]
    behaviour = next(
        (b for b in props.get("orderedCacheBehaviors", []) if fnmatch.fnmatchcase(url_path, b["pathPattern"])),
        props["defaultCacheBehavior"],
    )
    assert not behaviour.get("functionAssociations") and not behaviour.get("lambdaFunctionAssociations"), "a rewrite would change the key"
    origin = next(o for o in props["origins"] if o["originId"] == behaviour["targetOriginId"])
    return origin["domainName"], (origin.get("originPath", "") + url_path).lstrip("/")


def files_bucket(plan: dict[str, Any]) -> dict[str, Any]:
    (bucket,) = [r for r in plan["resources"] if r["type"] == "aws:s3/bucket:Bucket" and r["name"].endswith("-files")]
    return bucket


def url_of(key: str) -> str:
    """The public path of a key (the contract the apps and docs/data.md state): `/` + key."""
    return "/" + key


def serving_problems(plan: dict[str, Any], written_keys: list[str]) -> list[str]:
    """Keys a writer produced that CloudFront would not serve from the file bucket under their URL."""
    bucket = files_bucket(plan)
    origin = f"{bucket['props']['bucket']}.s3.{plan['config']['aws:region']}.amazonaws.com"
    problems = []
    for key in written_keys:
        domain, asked = cloudfront_request(plan, url_of(key))
        if (domain, asked) != (origin, key):
            problems.append(f"{key!r} is served at {url_of(key)!r} as {asked!r} from {domain} (want {key!r} from {origin})")
    return problems


def test_every_key_under_the_prefix_is_served_at_its_path(plan):
    keys = [FILES_KEY_PREFIX + k for k in SAMPLE_KEYS]
    assert serving_problems(plan, keys) == []
    # ... and nothing outside the prefix is reachable through the files origin
    domain, _ = cloudfront_request(plan, url_of("avatars/u1.png"))
    assert not domain.startswith(files_bucket(plan)["props"]["bucket"])


# ------------------------------------------------------------------ the migration's mc mirror


def runbook_mirror_target(text: str) -> str:
    """The TARGET of the runbook's `mc mirror ... minio/<bucket> TARGET` (alias/bucket[/prefix])."""
    (target,) = re.findall(r"^mc mirror .* minio/.* (aws/\S+)$", text, re.MULTILINE)
    return target


def mirrored_keys(target: str, source_keys: tuple[str, ...]) -> list[str]:
    """Keys `mc mirror SOURCE alias/bucket/prefix` writes: the prefix, then each source key."""
    _alias, _bucket, *prefix = target.rstrip("/").split("/")
    return ["/".join([*prefix, k]) for k in source_keys]


def mirror_problems(plan: dict[str, Any], runbook: str) -> list[str]:
    keys = mirrored_keys(runbook_mirror_target(runbook), SAMPLE_KEYS)
    problems = serving_problems(plan, keys)
    (user_policy,) = [r for r in plan["resources"] if r["type"] == "aws:iam/userPolicy:UserPolicy"]
    puts = [s["Resource"] for s in json.loads(user_policy["props"]["policy"])["Statement"] if s["Action"] == "s3:PutObject"]
    bucket_arn = plan["outputs"]["filesBucketArn"]
    for key in keys:
        if not any(fnmatch.fnmatchcase(f"{bucket_arn}/{key}", p) for p in puts):
            problems.append(f"the mirror user may not put {key!r}")
    return problems


def test_the_runbook_mirrors_where_cloudfront_serves_and_the_user_may_write():
    plan = stack_plan("nas-migration")
    runbook = (ROOT / "docs" / "migration.md").read_text()
    assert runbook_mirror_target(runbook) == "aws/<filesBucketName>/files"
    assert mirror_problems(plan, runbook) == []
    # The grant is the prefix only: a mirror into the root fails loudly instead of serving 403s.
    assert mirror_problems(plan, runbook.replace("aws/<filesBucketName>/files", "aws/<filesBucketName>"))[-1] == (
        "the mirror user may not put 'a'"
    )


def test_the_path_invariant_catches_planted_defects():
    plan = stack_plan("nas-migration")
    # The original defect: files mirrored to the bucket root are asked for as files/<key>.
    (problem, *_) = serving_problems(plan, mirrored_keys("aws/<filesBucketName>", SAMPLE_KEYS))
    assert problem.startswith("'avatars/u1.png' is served at '/avatars/u1.png' as 'avatars/u1.png' from ")
    # An origin path on the files origin shifts every key.
    shifted = copy.deepcopy(plan)
    (dist,) = shifted.of_type("aws:cloudfront/distribution:Distribution")
    next(o for o in dist["props"]["origins"] if o["originId"] == "files")["originPath"] = "/files"
    assert serving_problems(shifted, [FILES_KEY_PREFIX + "a"]) == [
        f"'files/a' is served at '/files/a' as 'files/files/a' from {files_bucket(plan)['props']['bucket']}.s3.ap-northeast-2.amazonaws.com"
        f" (want 'files/a' from {files_bucket(plan)['props']['bucket']}.s3.ap-northeast-2.amazonaws.com)"
    ]
