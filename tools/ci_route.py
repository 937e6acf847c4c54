"""`tools ci-route`: where each stage's CI job runs, and whether it runs at all.

- A stage whose required secret is unset (`tools required-secrets`) is skipped with the command
  that sets it, instead of failing the matrix.
- A stage whose CodeBuild runner exists runs on it (`codebuild-<project>-<run id>-<attempt>`, the
  label CodeBuild-hosted runners answer): inside the VPC, where the private cluster API is. A stage
  without one (never deployed: no cluster either) runs on a GitHub-hosted runner.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

from components.cluster.ci_runner import runner_project_name
from tools.stackfile import STACKS, load_stack_file, set_secret_command, unset_required_secrets

HOSTED = "ubuntu-24.04"


def runner_label(project: str, run_id: str, attempt: str) -> str:
    return f"codebuild-{project}-{run_id}-{attempt}"


def route(stacks: Iterable[str], existing_projects: Iterable[str], run_id: str, attempt: str, stacks_dir: Path = STACKS) -> dict:
    existing = set(existing_projects)
    out = {}
    for stack in stacks:
        raw, _ = load_stack_file(stacks_dir / f"Pulumi.{stack}.yaml")
        unset = unset_required_secrets(stack, raw)
        project = runner_project_name(stack)
        entry = {"runs-on": runner_label(project, run_id, attempt) if project in existing else HOSTED, "skip": "false", "why": ""}
        if unset:
            entry.update(
                skip="true", why="; ".join(f"required secret {k} is not set: run once `{set_secret_command(stack, k)}`" for k in unset)
            )
        out[stack] = entry
    return out


def render(routes: dict) -> str:
    """A line for $GITHUB_OUTPUT."""
    return "route=" + json.dumps(routes, separators=(",", ":"), sort_keys=True)
