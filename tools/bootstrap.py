"""The bootstrap project (bootstrap/) offline: its plan under the same mock runtime as the main
program, in the same plan-file format (project `voip-bootstrap`), so `tools cost` prices it."""

from __future__ import annotations

import sys
from pathlib import Path

from tools.mocks import ROOT, run_program
from tools.plan import Plan, to_plan
from tools.stackfile import load_stack_file

BOOTSTRAP = ROOT / "bootstrap"
PROGRAM = BOOTSTRAP / "__main__.py"


def _config_module():
    # bootstrap/ is its own project: its package `account` is importable from its directory.
    if str(BOOTSTRAP) not in sys.path:
        sys.path.insert(0, str(BOOTSTRAP))
    from account import config

    return config


def bootstrap_stack_path(stack: str) -> Path:
    return BOOTSTRAP / f"Pulumi.{stack}.yaml"


def plan_of(stack: str, raw: dict[str, str], secret_keys: list[str] | None = None) -> Plan:
    """Validate (raises ConfigError, nothing registered), then run bootstrap/ under mocks."""
    config = _config_module()
    cfg = config.load_bootstrap_config(stack, raw)
    return to_plan(cfg, run_program(stack, raw, secret_keys or [], program_file=PROGRAM, project=config.PROJECT))  # type: ignore[arg-type]


def build_plan(stack: str, config_file: Path | None = None) -> Plan:
    raw, secret_keys = load_stack_file(config_file or bootstrap_stack_path(stack))
    return plan_of(stack, raw, secret_keys)
