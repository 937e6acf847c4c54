"""GitHub workflows: schema-valid, actions pinned by commit, the preview's failure propagates
(proved by running the step's own script against a failing pulumi), KMS secrets everywhere, the
stage order, in-VPC runners and review stacks wired to what the program and bootstrap create."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from components.cluster.ci_runner import runner_project_name
from tools import ci_route

ROOT = Path(__file__).resolve().parent.parent
WF = ROOT / ".github" / "workflows"
WORKFLOWS = sorted(WF.glob("*.yml"))
STACK_FILES = sorted(p.name.removeprefix("Pulumi.").removesuffix(".yaml") for p in (ROOT / "stacks").glob("Pulumi.*.yaml"))
LONG_LIVED = ["dev", "nas-migration", "production"]
# What GitHub runs for `shell: bash` (docs: "Defaults and shells"); unnamed it is `bash -e {0}`.
GITHUB_BASH = ["bash", "--noprofile", "--norc", "-eo", "pipefail"]
GITHUB_DEFAULT_BASH = ["bash", "-e"]


def load(name: str) -> dict:
    return yaml.safe_load((WF / name).read_text())


def steps(doc: dict, job: str) -> list[dict]:
    return doc["jobs"][job]["steps"]


def test_workflows_are_valid_against_the_github_schema():
    assert {p.name for p in WORKFLOWS} >= {
        "ci.yml",
        "preview.yml",
        "up.yml",
        "deploy-stage.yml",
        "review-stack.yml",
        "review-teardown.yml",
        "review-reaper.yml",
    }
    check = Path(sys.executable).with_name("check-jsonschema")
    proc = subprocess.run(
        [str(check), "--builtin-schema", "vendor.github-workflows", *map(str, WORKFLOWS)], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def uses_of(doc: dict) -> list[str]:
    out = []
    for job in doc["jobs"].values():
        if "uses" in job:
            out.append(job["uses"])
        out += [s["uses"] for s in job.get("steps", []) if "uses" in s]
    return out


def test_every_action_is_pinned_by_commit():
    pinned = re.compile(r"[\w.-]+/[\w.-]+@[0-9a-f]{40}")
    for path in WORKFLOWS:
        for ref in uses_of(yaml.safe_load(path.read_text())):
            assert ref.startswith("./.github/workflows/") or pinned.fullmatch(ref), f"{path.name}: {ref} is not pinned by a commit SHA"
        # ... with the tag it stands for, for the next upgrade.
        for line in path.read_text().splitlines():
            if re.search(r"uses: [\w.-]+/[\w.-]+@[0-9a-f]{40}", line):
                assert re.search(r"#\s*v\d", line), f"{path.name}: {line.strip()} names no version"


def _preview_script() -> str:
    (step,) = [s for s in steps(load("preview.yml"), "preview") if s.get("id") == "preview"]
    return step["run"]


def _run(script: str, tmp_path: Path, pulumi_exit: int, shell: list[str]) -> tuple[subprocess.CompletedProcess, str]:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    fake = bin_dir / "pulumi"
    fake.write_text(
        "#!/bin/sh\n"
        'echo "Previewing update ($STACK)"\n'
        'echo "Policy Violations:" >&2\n'
        'echo "    [mandatory]  voip-infra-policies v0.0.1  rds-encrypted (aws:rds/instance:Instance: dev-postgres)" >&2\n'
        f"exit {pulumi_exit}\n"
    )
    fake.chmod(0o755)
    (tmp_path / ".venv" / "bin").mkdir(parents=True, exist_ok=True)
    (tmp_path / ".venv" / "bin" / "activate").write_text("")
    out = tmp_path / "github_output"
    out.write_text("")
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", "STACK": "dev", "GITHUB_OUTPUT": str(out)}
    proc = subprocess.run([*shell, "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=30)
    return proc, out.read_text()


@pytest.mark.parametrize("pulumi_exit", [255, 1, 0])
def test_preview_step_fails_exactly_when_pulumi_fails(tmp_path, pulumi_exit):
    doc = load("preview.yml")
    assert doc["defaults"]["run"]["shell"] == "bash"  # => GitHub runs GITHUB_BASH, with pipefail
    proc, output = _run(_preview_script(), tmp_path, pulumi_exit, GITHUB_BASH)
    assert proc.returncode == pulumi_exit, proc.stdout + proc.stderr
    assert f"status={pulumi_exit}" in output
    # The output still reaches the log and the PR comment (preview.txt), violations included.
    assert "[mandatory]" in proc.stdout and "[mandatory]" in (tmp_path / "preview.txt").read_text()


def test_the_old_piped_step_would_have_passed_a_failed_preview(tmp_path):
    """Mutation: the former `pulumi preview ... | tee preview.txt` under GitHub's default shell."""
    old = "source .venv/bin/activate\npulumi preview --stack $STACK --policy-pack policies 2>&1 | tee preview.txt\n"
    proc, _ = _run(old, tmp_path, 255, GITHUB_DEFAULT_BASH)
    assert proc.returncode == 0  # masked: this is what the test above guards against


def test_no_pulumi_command_is_piped_anywhere():
    for path in WORKFLOWS:
        for line in path.read_text().splitlines():
            if re.search(r"\bpulumi (preview|up|destroy)\b", line) and not line.strip().startswith("#"):
                assert "|" not in line.split("#")[0], f"{path.name}: {line.strip()}"


def test_policy_pack_requirements_installed_explicitly():
    for name, job in (("preview.yml", "preview"), ("deploy-stage.yml", "up"), ("review-stack.yml", "up")):
        text = json.dumps(steps(load(name), job))
        assert "policies/venv/bin/pip install" in text and "-r policies/requirements.txt" in text, name
        assert "--policy-pack policies" in text, name
    assert "virtualenv: venv" in (ROOT / "policies" / "PulumiPolicy.yaml").read_text()


def test_kms_secrets_everywhere_and_no_passphrase():
    for path in WORKFLOWS:
        text = path.read_text()
        assert "PULUMI_CONFIG_PASSPHRASE" not in text and "PULUMI_ACCESS_TOKEN" not in text, path.name
    region = "ap-northeast-2"
    for stack in STACK_FILES:
        doc = yaml.safe_load((ROOT / "stacks" / f"Pulumi.{stack}.yaml").read_text())
        assert doc["secretsprovider"] == f"awskms://alias/voip-infra-{stack}-secrets?region={region}", stack
        assert "placeholder" not in json.dumps(doc), stack  # no undecryptable stand-in ciphertext


def test_preview_matrix_routes_and_roles():
    doc = load("preview.yml")
    assert doc["jobs"]["preview"]["strategy"]["matrix"]["stack"] == LONG_LIVED
    assert doc["jobs"]["preview"]["runs-on"] == "${{ fromJSON(needs.route.outputs.route)[matrix.stack]['runs-on'] }}"
    text = json.dumps(doc)
    assert "role/voip-ci/voip-infra-${{ matrix.stack }}-preview" in text
    # The route job asks about the same stages as the matrix.
    assert f"stacks=({' '.join(LONG_LIVED)})" in (WF / "preview.yml").read_text()


def test_up_runs_stage_by_stage_on_the_stages_runner():
    up = load("up.yml")
    assert [j for j in up["jobs"] if j != "test"] == LONG_LIVED
    assert up["jobs"]["dev"]["needs"] == "test"
    assert up["jobs"]["nas-migration"]["needs"] == "dev" and up["jobs"]["production"]["needs"] == "nas-migration"
    for stage in LONG_LIVED:
        job = up["jobs"][stage]
        assert job["uses"] == "./.github/workflows/deploy-stage.yml" and job["with"]["stage"] == stage
    # A skipped (secret unset) stage does not stop the next; a failed one does.
    assert up["jobs"]["production"]["if"] == "${{ !failure() && !cancelled() }}"
    stage = load("deploy-stage.yml")
    assert stage["jobs"]["up"]["environment"] == stage["jobs"]["runner"]["environment"] == "${{ inputs.stage }}"
    assert stage["jobs"]["up"]["runs-on"] == "codebuild-${{ inputs.stage }}-voip-ci-runner-${{ github.run_id }}-${{ github.run_attempt }}"
    assert runner_project_name("dev") == "dev-voip-ci-runner"
    assert "role/voip-ci/voip-infra-${{ inputs.stage }}-deploy" in json.dumps(stage)
    assert "tools required-secrets" in json.dumps(steps(stage, "check"))
    assert "tools runner-targets" in json.dumps(steps(stage, "runner"))


def test_review_stacks_by_label_and_by_ttl():
    review = load("review-stack.yml")
    on = review[True] if True in review else review["on"]  # PyYAML reads `on:` as True
    assert set(on["pull_request"]["types"]) >= {"labeled", "unlabeled", "closed", "synchronize"}
    prepare = json.dumps(review["jobs"]["prepare"])
    assert "tools clone-stack --from dev --to" in prepare and "voip:expires" in prepare
    assert review["jobs"]["prepare"]["environment"] == review["jobs"]["up"]["environment"] == "review"
    assert "github.event.label.name == 'review-stack'" in review["jobs"]["down"]["if"]
    assert review["jobs"]["down"]["uses"] == "./.github/workflows/review-teardown.yml"
    up = json.dumps(review["jobs"]["up"])
    assert "publicUrls" in up and "first_up_minutes" in up and "<!-- review-stack -->" in up
    teardown = json.dumps(load("review-teardown.yml"))
    assert "runner-targets --kubernetes" in teardown and "pulumi stack rm" in teardown
    reaper = load("review-reaper.yml")
    on = reaper[True] if True in reaper else reaper["on"]
    assert on["schedule"] and "tools reaper --stacks" in json.dumps(reaper["jobs"]["sweep"])
    assert reaper["jobs"]["teardown"]["uses"] == "./.github/workflows/review-teardown.yml"


def test_ci_route_skips_unset_secrets_and_uses_existing_runners():
    routes = ci_route.route(LONG_LIVED, ["production-voip-ci-runner"], "42", "1")
    assert routes["production"] == {"runs-on": "codebuild-production-voip-ci-runner-42-1", "skip": "false", "why": ""}
    assert routes["dev"]["runs-on"] == "ubuntu-24.04" and routes["dev"]["skip"] == "false"
    assert routes["nas-migration"]["skip"] == "true"
    assert "pulumi config set --secret voip-infra:dmsSourcePassword --stack nas-migration" in routes["nas-migration"]["why"]


def test_required_secrets_command_exit_codes(tmp_path):
    def run(*args):
        return subprocess.run(
            [sys.executable, "-m", "tools", "required-secrets", *args], capture_output=True, text=True, cwd=ROOT, timeout=60
        )

    proc = run("--stack", "nas-migration")
    assert proc.returncode == 3 and "pulumi config set --secret voip-infra:dmsSourcePassword --stack nas-migration" in proc.stdout
    assert run("--stack", "dev").returncode == 0
    with_secret = tmp_path / "nas.yaml"
    with_secret.write_text(
        (ROOT / "stacks" / "Pulumi.nas-migration.yaml").read_text() + "  voip-infra:dmsSourcePassword:\n    secure: v1:AAAA\n"
    )
    assert run("--stack", "nas-migration", "--config", str(with_secret)).returncode == 0


def test_ci_runs_the_readme_test_command():
    ci = (ROOT / ".ci" / "run").read_text()
    assert "make test" in ci
    assert "make test" in (WF / "ci.yml").read_text()
    readme = (ROOT / "README.md").read_text()
    assert "make test" in readme and "make plan STACK=dev" in readme
    assert load("ci.yml")["jobs"]["plan"]["strategy"]["matrix"]["stack"] == LONG_LIVED
