"""`tools runner-targets`: the URNs a first run creates before CI can reach a private cluster.

The CI runner (components/cluster/ci_runner.py) depends on the network only. On a stage's very first run,
a GitHub-hosted job creates it alone with `pulumi up --target ...` (these URNs: the runner, every
resource it needs, transitively, and their parent components); every later job runs on it.
The same set, destroyed last, lets a clone's tear-down run the Kubernetes half on its runner first.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tools.critical_path import dependencies

RUNNER_TYPE = "voip:ci:CiRunner"
# The runner's jobs need the VPC's egress (NAT, routes) at run time, which no input of the runner
# names: the whole network component comes along.
RUN_TIME_NEEDS = ("voip:network:Network",)


def runner_targets(plan: Mapping[str, Any]) -> list[str]:
    """Every URN `pulumi up --target` needs to create the stage's CI runner (plan order)."""
    resources = plan["resources"]
    by_urn = {r["urn"]: r for r in resources}
    runners = [r["urn"] for r in resources if r["type"] == RUNNER_TYPE]
    if not runners:
        return []
    graph = dependencies(plan)
    wanted: set[str] = set()
    roots = runners + [r["urn"] for r in resources if r["type"] in RUN_TIME_NEEDS]
    frontier = [u for u in by_urn if any(u == r or _under(by_urn, u, r) for r in roots)]
    while frontier:
        urn = frontier.pop()
        if urn in wanted:
            continue
        wanted.add(urn)
        frontier.extend(graph.get(urn, ()))
        parent = by_urn[urn].get("parent")
        if parent in by_urn:
            frontier.append(parent)
    return [r["urn"] for r in resources if r["urn"] in wanted]


def _under(by_urn: Mapping[str, Any], urn: str, ancestor: str) -> bool:
    parent = by_urn[urn].get("parent")
    while parent:
        if parent == ancestor:
            return True
        parent = by_urn.get(parent, {}).get("parent")
    return False


def render(urns: list[str]) -> str:
    """One `--target` argument per line, shell-quoted (URNs carry `$`)."""
    return "\n".join(f"--target '{u}'" for u in urns)


def kubernetes_targets(plan: Mapping[str, Any]) -> list[str]:
    """The Kubernetes half of a stage (its provider and every object/release): what a tear-down
    destroys first, from the runner inside the VPC, so volumes and target registrations made by
    controllers are cleaned up by them; `pulumi destroy` of the rest then needs no cluster API."""
    return [r["urn"] for r in plan["resources"] if r["type"].startswith(("kubernetes:", "pulumi:providers:kubernetes"))]
