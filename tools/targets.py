"""The seed-001 target settings of a stack (`tools/targets/<stack>.yaml`): overrides merged into
the stack file (objects deep-merged, other values replaced), planned under mocks like the stack
itself, so `tools cost` prints what the stage costs at the target scale beside today's figure.
The overrides are exactly the configuration changes of docs/cost.md's "users -> settings" table.
"""

from __future__ import annotations

import copy
import json
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from tools.stackfile import load_stack_file, stack_path

TARGETS = Path(__file__).resolve().parent / "targets"


def target_path(stack: str) -> Path:
    return TARGETS / f"{stack}.yaml"


def _merge(base: Any, over: Any) -> Any:
    if isinstance(base, dict) and isinstance(over, dict):
        out = copy.deepcopy(base)
        for k, v in over.items():
            out[k] = _merge(out.get(k), v)
        return out
    return copy.deepcopy(over)


def target_raw(stack: str) -> tuple[dict[str, str], list[str]] | None:
    """The stack's raw config with its target overrides, or None (no target file or stack file)."""
    path, stack_file = target_path(stack), stack_path(stack)
    if not path.exists() or not stack_file.exists():
        return None
    raw, secrets = load_stack_file(stack_file)
    overrides = (yaml.safe_load(path.read_text()) or {}).get("config") or {}
    merged = dict(raw)
    for key, value in overrides.items():
        base = json.loads(merged[key]) if key in merged and isinstance(value, dict) else None
        value = _merge(base, value) if base is not None else value
        merged[key] = value if isinstance(value, str) else json.dumps(value)
    return merged, secrets


@cache
def target_plan(stack: str) -> Any | None:
    """The plan of `stack` at its target settings (the real program under mocks), or None.
    Cached: one planning per process (read it, do not change it)."""
    found = target_raw(stack)
    if found is None:
        return None
    from components.config_loader import load_stack_config
    from tools.mocks import run_program
    from tools.plan import to_plan

    raw, secrets = found
    return to_plan(load_stack_config(stack, raw), run_program(stack, raw, secrets))
