"""`tools plan`: the offline plan of a stack (CONTRACTS.md, plan file version 1)."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

from components.config import StackConfig
from components.config_loader import ConfigError, load_stack_config
from tools.mocks import SECRET, ProgramRun, run_program
from tools.stackfile import load_stack_file, set_secret_command, stack_path, with_offline_secrets

PLAN_VERSION = 1


class PlanFileError(Exception):
    """An unreadable plan file or not one of version 1; the message is ready to print."""


class Plan(dict):
    """A plan file (a dict in the v1 format) with the accessors the tools use."""

    # urn -> the resource's ignoreChanges option; an attribute, not a key: the v1 file has
    # no such field (and a plan read back from JSON has none).
    ignore_changes: dict[str, list[str]] = {}

    @property
    def resources(self) -> list[dict[str, Any]]:
        return self["resources"]

    def children(self, urn: str) -> list[dict[str, Any]]:
        return [r for r in self["resources"] if r["parent"] == urn]

    @classmethod
    def load(cls, path: Path) -> Plan:
        """Read a plan file (`tools plan --json`); raise PlanFileError saying what is wrong."""
        try:
            data = json.loads(Path(path).read_text())
        except OSError as exc:
            raise PlanFileError(f"error: {path}: cannot read the plan file ({exc.strerror or exc})") from None
        except (ValueError, UnicodeDecodeError) as exc:
            raise PlanFileError(f"error: {path}: not JSON ({exc})") from None
        if not isinstance(data, dict) or not isinstance(data.get("resources"), list):
            raise PlanFileError(f"error: {path}: not a plan file (version 1: an object with a `resources` list)")
        if data.get("version") != PLAN_VERSION:
            raise PlanFileError(f"error: {path}: plan file version {data.get('version')!r}, expected {PLAN_VERSION}")
        return cls(data)


def load_config(stack: str, config_file: Path | None = None) -> tuple[StackConfig, dict[str, str], list[str]]:
    """Read and validate a stack file; raises StackFileError or ConfigError. A required secret
    that is not set yet is stood in offline (see `offline_notes`)."""
    raw, secret_keys = load_stack_file(config_file or stack_path(stack))
    raw, secret_keys, _ = with_offline_secrets(stack, raw, secret_keys)
    return load_stack_config(stack, raw), raw, secret_keys


def offline_notes(stack: str, config_file: Path | None = None) -> list[str]:
    """What the offline plan stood in for, with the command that sets it for real."""
    raw, secret_keys = load_stack_file(config_file or stack_path(stack))
    _, _, unset = with_offline_secrets(stack, raw, secret_keys)
    return [
        f"note: {key} is not set: planned offline with a placeholder; pulumi preview/up stop until `{set_secret_command(stack, key)}`"
        for key in unset
    ]


def build_plan(stack: str, config_file: Path | None = None) -> Plan:
    """Validate the config (nothing is registered when it is invalid), then run the
    real program under mocks and return the plan."""
    cfg, raw, secret_keys = load_config(stack, config_file)
    run = run_program(stack, raw, secret_keys)
    return to_plan(cfg, run)


def _stable_order(registrations: list) -> list:
    """Parents before children, siblings by URN: the engine registers resources in no
    guaranteed order, and a plan file should diff cleanly between runs."""
    children: dict[str | None, list] = {}
    urns = {r.urn for r in registrations}
    for r in registrations:
        children.setdefault(r.parent if r.parent in urns else None, []).append(r)
    ordered: list = []
    stack = sorted(children.get(None, []), key=lambda r: r.urn, reverse=True)
    while stack:
        r = stack.pop()
        ordered.append(r)
        stack.extend(sorted(children.get(r.urn, []), key=lambda c: c.urn, reverse=True))
    return ordered


def to_plan(cfg: StackConfig, run: ProgramRun) -> Plan:
    resources = []
    for r in _stable_order(run.registrations):
        resources.append(
            {
                "urn": r.urn,
                "type": r.type,
                "name": r.name,
                "custom": r.custom,
                "id": r.id if r.custom else None,
                "parent": r.parent,
                "provider": r.provider,
                "protect": r.protect,
                "retainOnDelete": r.retain_on_delete,
                "aliases": r.aliases,
                "dependsOn": r.depends_on,
                "props": r.props,
            }
        )
    outputs = {k: (SECRET if k in run.secret_outputs else v) for k, v in run.outputs.items()}
    plan = Plan(
        {
            "version": PLAN_VERSION,
            "project": run.project,
            "stack": run.stack,
            "config": cfg.redacted(),
            "resources": resources,
            "outputs": json.loads(json.dumps(outputs, default=str)),
        }
    )
    plan.ignore_changes = {r.urn: r.ignore_changes for r in run.registrations if r.ignore_changes}
    return plan


# ------------------------------------------------------------------ rendering


def _counts(plan: Plan, urn: str) -> tuple[Counter, list[dict[str, Any]]]:
    """Custom resources under `urn` by type, stopping at child components (listed apart)."""
    counts: Counter = Counter()
    components = []
    frontier = [urn]
    while frontier:
        parent = frontier.pop()
        for r in plan.children(parent):
            if r["custom"] and not r["type"].startswith("pulumi:providers:"):
                counts[r["type"]] += 1
                frontier.append(r["urn"])
            elif r["custom"]:
                counts[r["type"]] += 1
            else:
                components.append(r)
    return counts, components


def render_tree(plan: Plan) -> str:
    custom = [r for r in plan.resources if r["custom"]]
    lines = [
        f"{plan['project']} / {plan['stack']}: {len(plan.resources)} resources "
        f"({len(custom)} custom, {len(plan.resources) - len(custom)} components)"
    ]

    def walk(r: dict[str, Any], indent: str, last: bool) -> None:
        counts, components = _counts(plan, r["urn"])
        branch = "└─ " if last else "├─ "
        total = sum(counts.values())
        lines.append(f"{indent}{branch}{r['type']} {r['name']} ({total} resources)")
        inner = indent + ("   " if last else "│  ")
        items: list[Any] = sorted(counts.items()) + components
        for i, item in enumerate(items):
            is_last = i == len(items) - 1
            if isinstance(item, tuple):
                typ, n = item
                lines.append(f"{inner}{'└─ ' if is_last else '├─ '}{typ} × {n}")
            else:
                walk(item, inner, is_last)

    roots = [r for r in plan.resources if r["parent"] is None or not any(x["urn"] == r["parent"] for x in plan.resources)]
    top_components = [r for r in roots if not r["custom"]]
    for i, r in enumerate(top_components):
        walk(r, "", i == len(top_components) - 1)
    return "\n".join(lines)


def render_outputs(plan: Plan) -> str:
    lines = ["outputs:"]
    for k, v in plan["outputs"].items():
        lines.append(f"  {k}: {json.dumps(v)}")
    return "\n".join(lines)


def render_checks(plan: Plan) -> list[str]:
    """The policy summary (and each violation), the monthly cost estimate, then the AWS quotas the
    stage needs above the defaults (tools/quotas.py)."""
    from tools import cost, policy, quotas

    mandatory, advisory, violations = policy.summarize(plan)
    lines = [policy.summary_line_from(mandatory, advisory), *(f"  {v}" for v in violations)]
    lines.append(cost.summary_line(cost.estimate(plan)))
    lines += quotas.render_lines(plan)
    # The time of a first `pulumi up` and the chain that makes it (CONTRACTS.md).
    from tools import critical_path

    lines += critical_path.render(critical_path.critical_path(plan))
    return lines


def render_markdown(plan: Plan) -> str:
    """A summary for PR comments: counts per component and type, protected resources, outputs."""
    lines = [f"### `{plan['project']}` / `{plan['stack']}`", ""]
    custom = [r for r in plan.resources if r["custom"]]
    lines.append(f"**{len(custom)}** resources in **{len(plan.resources) - len(custom)}** components.")
    lines += ["", "| component | type | count |", "|---|---|---:|"]
    for comp in [r for r in plan.resources if not r["custom"]]:
        counts, _ = _counts(plan, comp["urn"])
        for typ, n in sorted(counts.items()):
            lines.append(f"| `{comp['name']}` | `{typ}` | {n} |")
    protected = [r for r in plan.resources if r["protect"]]
    lines += ["", f"**Protected** (`protect: true`): {len(protected)}"]
    for r in protected:
        lines.append(f"- `{r['type']}` `{r['name']}`")
    lines += ["", *(f"- {line.strip()}" for line in render_checks(plan))]
    lines += ["", "<details><summary>outputs</summary>", "", "```", render_outputs(plan), "```", "</details>", ""]
    return "\n".join(lines)


def write_json(plan: Plan, path: Path) -> None:
    path.write_text(json.dumps(plan, indent=2, sort_keys=False) + "\n")


__all__ = ["Plan", "build_plan", "load_config", "render_tree", "render_markdown", "write_json", "ConfigError"]
