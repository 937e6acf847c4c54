"""`tools policy`: run the CrossGuard pack (policies/rules.py) over a plan file, offline.

The policies get the same argument objects `pulumi preview --policy-pack policies` builds
(ResourceValidationArgs per resource, StackValidationArgs over all of them, props behind the
unknown-checking proxy, provider and options from the plan), plus a policy config derived from
the plan: the stage's `protectData`, `secretsRedacted` (plan files show secrets as "[secret]"),
the public-ingress allow-list from the stage's ports (components/ports.py), and the mocked ids (`resourceIds`) so
references by id can be followed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pulumi_policy import (
    EnforcementLevel,
    PolicyCustomTimeouts,
    PolicyProviderResource,
    PolicyResource,
    PolicyResourceOptions,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
    StackValidationPolicy,
)
from pulumi_policy.proxy import UnknownValueError, unknown_checking_proxy

from components.ports import Ports
from policies.rules import ALL_POLICIES, level_for


@dataclass(frozen=True)
class Violation:
    level: str  # mandatory | advisory
    policy: str
    urn: str
    message: str

    def line(self) -> str:
        return f"{self.level} {self.policy} {self.urn}: {self.message}"


def policy_config(plan: dict[str, Any]) -> dict[str, Any]:
    cfg = plan.get("config") or {}
    policy_cfg = cfg.get("policy") or {}
    return {
        "enforcementLevels": dict(policy_cfg.get("levels") or {}),
        "wafExceptions": [dict(e) for e in policy_cfg.get("wafExceptions") or []],
        "exceptions": [dict(e) for e in policy_cfg.get("exceptions") or []],
        "protectData": bool(cfg.get("protectData", False)),
        "secretsRedacted": True,
        # The stage's own ports (components/ports.py), read from the plan's config.
        "publicIngressAllowList": Ports.from_plan_config(cfg).public_ingress(),
        "resourceIds": {r["urn"]: r["id"] for r in plan["resources"] if r.get("id")},
    }


def _opts(r: dict[str, Any]) -> PolicyResourceOptions:
    return PolicyResourceOptions(
        protect=bool(r.get("protect")),
        ignore_changes=[],
        delete_before_replace=None,
        aliases=list(r.get("aliases") or []),
        custom_timeouts=PolicyCustomTimeouts(0, 0, 0),
        additional_secret_outputs=[],
        parent=r.get("parent") or None,
    )


def _providers(plan: dict[str, Any]) -> dict[str, PolicyProviderResource]:
    return {
        r["urn"]: PolicyProviderResource(r["type"], unknown_checking_proxy(r.get("props") or {}), r["urn"], r["name"])
        for r in plan["resources"]
        if r["type"].startswith("pulumi:providers:")
    }


def _seen_as(r: dict[str, Any], providers: dict[str, PolicyProviderResource]) -> tuple:
    """What a policy sees of resource `r` (type, props, urn, name, options, provider), as the
    engine builds it."""
    props = unknown_checking_proxy(r.get("props") or {})
    return r["type"], props, r["urn"], r["name"], _opts(r), providers.get(r.get("provider") or "")


def run(plan: dict[str, Any]) -> list[Violation]:
    """Every violation of every enabled policy, in pack order then resource order."""
    config = policy_config(plan)
    providers = _providers(plan)
    custom = [r for r in plan["resources"] if r.get("custom", True) and not r["type"].startswith("pulumi:providers:")]
    # What each resource looks like to a policy, built once (the proxies are read-only, so every
    # policy may share them; building them per policy was most of the run's time).
    seen = {r["urn"]: _seen_as(r, providers) for r in custom}
    # Stack view: like the engine, parent and dependencies are resolved to the resource objects.
    stack = {r["urn"]: PolicyResource(*seen[r["urn"]], None, [], {}) for r in custom}
    for r in custom:
        pr = stack[r["urn"]]
        pr.parent = stack.get(r.get("parent") or "")
        pr.dependencies = [stack[d] for d in r.get("dependsOn") or [] if d in stack]
    out: list[Violation] = []
    for policy in ALL_POLICIES:
        level = level_for(policy, config["protectData"], config["enforcementLevels"])
        if level == EnforcementLevel.DISABLED:
            continue
        name = level.value if level != EnforcementLevel.REMEDIATE else "mandatory"

        if isinstance(policy, ResourceValidationPolicy):
            for r in custom:
                args = ResourceValidationArgs(*seen[r["urn"]], config)
                _call(policy, args, lambda m, u=None, _u=r["urn"], _p=policy, _n=name: out.append(Violation(_n, _p.name, _u, m)))
        elif isinstance(policy, StackValidationPolicy):
            stack_urn = (
                f"urn:pulumi:{plan.get('stack')}::{plan.get('project')}::pulumi:pulumi:Stack::{plan.get('project')}-{plan.get('stack')}"
            )
            _call(
                policy,
                StackValidationArgs(list(stack.values()), dict(config)),
                lambda m, u=None, _p=policy, _n=name, _s=stack_urn: out.append(Violation(_n, _p.name, u or _s, m)),
            )
    return out


def _call(policy: Any, args: Any, report: Any) -> None:
    from pulumi_policy.policy import _NotApplicableError  # raised by args.not_applicable()

    try:
        policy.validate(args, report)
    except _NotApplicableError:
        pass
    except UnknownValueError:  # the CLI reports these as advisory "can't run during preview"; plans have none
        pass


def summarize(plan: dict[str, Any]) -> tuple[int, int, list[str]]:
    """(mandatory count, advisory count, violation lines) for `tools plan`'s one-line summary."""
    violations = run(plan)
    mandatory = sum(v.level == "mandatory" for v in violations)
    return mandatory, len(violations) - mandatory, [v.line() for v in violations]


def summary_line(plan: dict[str, Any]) -> str:
    mandatory, advisory, _ = summarize(plan)
    return summary_line_from(mandatory, advisory)


def summary_line_from(mandatory: int, advisory: int) -> str:
    return f"policy: {len(ALL_POLICIES)} policies, {mandatory} mandatory and {advisory} advisory violations"


__all__ = ["Violation", "run", "summarize", "summary_line", "summary_line_from", "policy_config"]
