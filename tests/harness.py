"""Plans of the real program under mocks, built once per test session and shared."""

from __future__ import annotations

import copy
import gc
import json
from functools import cache
from typing import Any

from components.config import load_stack_config
from tools.mocks import run_program
from tools.plan import Plan, to_plan
from tools.stackfile import load_stack_file, stack_path, with_offline_secrets

STACKS = ("dev", "nas-migration", "production")


def stack_raw(stack: str) -> tuple[dict[str, str], list[str]]:
    """A stage's raw config as the offline tools see it (unset required secrets stood in)."""
    raw, secrets, _ = with_offline_secrets(stack, *load_stack_file(stack_path(stack)))
    return raw, secrets


def with_overrides(raw: dict[str, str], overrides: dict[str, Any]) -> dict[str, str]:
    """Deep-merge `overrides` ({"voip-infra:network": {"natStrategy": "none"}}) into a raw config."""
    merged = dict(raw)
    for key, value in overrides.items():
        if isinstance(value, dict) and key in merged:
            base = json.loads(merged[key])
            merged[key] = json.dumps(_merge(base, value))
        elif isinstance(value, (dict, list)):
            merged[key] = json.dumps(value)
        elif value is None:
            merged.pop(key, None)
        else:
            merged[key] = value if isinstance(value, str) else json.dumps(value)
    return merged


def _merge(base: Any, over: Any) -> Any:
    if isinstance(base, dict) and isinstance(over, dict):
        out = copy.deepcopy(base)
        for k, v in over.items():
            out[k] = _merge(out.get(k), v) if v is not None else None
            if v is None:
                out.pop(k)
        return out
    return over


def plan_of(stack: str, raw: dict[str, str], secret_keys: list[str] | None = None) -> Plan:
    cfg = load_stack_config(stack, raw)
    plan = to_plan(cfg, run_program(stack, raw, secret_keys or []))
    # The SDK's typed classes and the cached plans live for the whole session: collect this
    # run's garbage once, then freeze the survivors so later collections skip them.
    gc.collect()
    gc.freeze()
    return plan


@cache
def stack_plan(stack: str) -> Plan:
    raw, secrets = stack_raw(stack)
    return plan_of(stack, raw, secrets)


def variant_plan(stack: str, overrides_json: str) -> Plan:
    return _variant(stack, overrides_json)


@cache
def _variant(stack: str, overrides_json: str, secret_keys: tuple[str, ...] = ()) -> Plan:
    raw, secrets = stack_raw(stack)
    return plan_of(stack, with_overrides(raw, json.loads(overrides_json)), [*secrets, *secret_keys])


def variant(stack: str, overrides: dict[str, Any], secret_keys: tuple[str, ...] = ()) -> Plan:
    """The plan of `stack` with `overrides` merged into its config (cached per argument).
    `secret_keys` names override keys to treat as secrets (`pulumi config set --secret`)."""
    return _variant(stack, json.dumps(overrides, sort_keys=True), tuple(secret_keys))


@cache
def bootstrap_plan(overrides_json: str = "{}") -> Plan:
    """The plan of bootstrap/Pulumi.main.yaml (the per-account project), with overrides."""
    from tools import bootstrap

    raw, secrets = load_stack_file(bootstrap.bootstrap_stack_path("main"))
    return bootstrap.plan_of("main", with_overrides(raw, json.loads(overrides_json)), secrets)
