"""Plans of the real program under mocks, built once per test session and shared."""

from __future__ import annotations

import copy
import gc
import json
from collections.abc import Callable
from functools import cache
from typing import Any

import pulumi

from components.config_loader import load_stack_config
from tests.resource_types import RELEASE
from tools import plan as plan_mod
from tools.mocks import run_mocked, run_program
from tools.plan import to_plan
from tools.stackfile import load_stack_file, stack_path, with_offline_secrets

STACKS = ("dev", "nas-migration", "production")


class Plan(plan_mod.Plan):
    """A plan with the queries only tests make."""

    def by_urn(self, urn: str) -> dict[str, Any]:
        return next(r for r in self["resources"] if r["urn"] == urn)

    def by_id(self, rid: str) -> dict[str, Any]:
        return next(r for r in self["resources"] if r.get("id") == rid)

    def of_type(self, typ: str) -> list[dict[str, Any]]:
        return [r for r in self["resources"] if r["type"] == typ]

    def descendants(self, urn: str) -> list[dict[str, Any]]:
        out, frontier = [], [urn]
        while frontier:
            parent = frontier.pop()
            for r in self["resources"]:
                if r["parent"] == parent:
                    out.append(r)
                    frontier.append(r["urn"])
        return out


def release(plan: Plan, chart: str, name: str | None = None) -> dict[str, Any]:
    """The plan's one Helm release of `chart` (and release `name`, where a chart has several)."""
    (rel,) = [r for r in plan.of_type(RELEASE) if r["props"]["chart"] == chart and (name is None or r["props"]["name"] == name)]
    return rel


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
    built = to_plan(cfg, run_program(stack, raw, secret_keys or []))
    plan = Plan(built)
    plan.ignore_changes = built.ignore_changes
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
    return Plan(bootstrap.plan_of("main", with_overrides(raw, json.loads(overrides_json)), secrets))


def config_errors(overrides: dict[str, Any], stack: str = "dev") -> list[str]:
    """The error lines of `stack`'s config with `overrides` (raw keys), which must not load."""
    import pytest

    from components.config_loader import ConfigError

    raw, _ = stack_raw(stack)
    with pytest.raises(ConfigError) as info:
        load_stack_config(stack, with_overrides(raw, overrides))
    return info.value.lines


# ------------------------------------------------------------------ one component alone

UNIT_ACCOUNT = "123456789012"
UNIT_KEY_ARN = f"arn:aws:kms:ap-northeast-2:{UNIT_ACCOUNT}:key/unit"
UNIT_TOPIC_ARN = f"arn:aws:sns:ap-northeast-2:{UNIT_ACCOUNT}:unit-alarms"


def unit_placement(availability_zones: tuple[str, ...] = ()):
    """Where a data store built alone sits: two isolated subnets of a unit VPC."""
    from components.data.data_access import DataPlacement

    return DataPlacement(vpc_id="vpc-unit", subnet_ids=["subnet-a", "subnet-b"], availability_zones=availability_zones)


def unit_ctx(stage: str = "unit", protect: bool = True, **fields: Any):
    """A StageContext of plain values for a component built alone (call it inside `build`:
    it creates the us-east-1 provider). `fields` override any field (e.g. ports=Ports(...))."""
    import pulumi_aws as aws

    from components.context import StageContext
    from components.ports import Ports

    values: dict[str, Any] = {
        "stage": stage,
        "region": "ap-northeast-2",
        "account_id": UNIT_ACCOUNT,
        "protect": protect,
        "ports": Ports(),
        "regional": pulumi.ResourceOptions(),
        "data_key_arn": UNIT_KEY_ARN,
        "alarm_topic_arn": UNIT_TOPIC_ARN,
    }
    values.update(fields)
    if "us_east_1" not in values:
        values["us_east_1"] = aws.Provider(f"{stage}-aws-us-east-1", region="us-east-1")
    return StageContext(**values)


def component_plan(build: Callable[[], Any], stack: str = "unit") -> tuple[Plan, dict[str, Any]]:
    """Run `build()` alone under the program's mocks (tools.mocks.run_mocked, the runner of
    the whole program too); return its registrations as a Plan and the resolved values (with
    `secret` flags) of the Outputs `build` returns in a dict."""
    regs, values = run_mocked(stack, "ap-northeast-2", build)
    resources = [
        {
            "urn": r.urn,
            "type": r.type,
            "name": r.name,
            "custom": r.custom,
            "id": r.id,
            "parent": r.parent,
            "protect": r.protect,
            "dependsOn": r.depends_on,
            "props": r.props,
        }
        for r in regs
    ]
    return Plan({"resources": resources}), values


def one(plan: dict[str, Any], typ: str, pred: Any = lambda r: True) -> dict[str, Any]:
    """The single resource of `typ` matching `pred` (fails when there are none or several)."""
    (r,) = [r for r in plan["resources"] if r["type"] == typ and pred(r)]
    return r
