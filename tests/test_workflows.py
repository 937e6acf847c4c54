"""GitHub workflows: schema-valid, and covering every stack."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
WORKFLOWS = sorted((ROOT / ".github" / "workflows").glob("*.yml"))
STACK_FILES = sorted(p.name.removeprefix("Pulumi.").removesuffix(".yaml") for p in (ROOT / "stacks").glob("Pulumi.*.yaml"))


def test_workflows_are_valid_against_the_github_schema():
    assert WORKFLOWS
    check = Path(sys.executable).with_name("check-jsonschema")
    proc = subprocess.run(
        [str(check), "--builtin-schema", "vendor.github-workflows", *map(str, WORKFLOWS)], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def _matrix_stacks(name: str, job: str) -> list[str]:
    doc = yaml.safe_load((ROOT / ".github" / "workflows" / name).read_text())
    return doc["jobs"][job]["strategy"]["matrix"]["stack"]


def test_pull_requests_plan_and_preview_every_long_lived_stack():
    long_lived = ["dev", "nas-migration", "production"]
    assert set(long_lived) <= set(STACK_FILES)
    assert _matrix_stacks("ci.yml", "plan") == long_lived
    assert _matrix_stacks("preview.yml", "preview") == long_lived
    # Production is deployed last, one stage at a time, behind its environment.
    assert _matrix_stacks("up.yml", "up")[-1] == "production"
    up = yaml.safe_load((ROOT / ".github" / "workflows" / "up.yml").read_text())
    assert up["jobs"]["up"]["strategy"]["max-parallel"] == 1


def test_ci_runs_the_readme_test_command():
    ci = (ROOT / ".ci" / "run").read_text()
    assert "make test" in ci
    assert "make test" in (ROOT / ".github" / "workflows" / "ci.yml").read_text()
    readme = (ROOT / "README.md").read_text()
    assert "make test" in readme and "make plan STACK=dev" in readme


def test_preview_and_up_enforce_the_policy_pack():
    for name in ("preview.yml", "up.yml"):
        text = (ROOT / ".github" / "workflows" / name).read_text()
        assert "--policy-pack policies" in text, name
    assert (ROOT / "policies" / "PulumiPolicy.yaml").exists()
