"""The time of a first `pulumi up` (tools/critical_path.py): the critical path through each
stage's dependency graph, pinned per stage (README "The stages"), and proven to follow the graph."""

from __future__ import annotations

import copy

import pytest

from tests.harness import stack_plan
from tools import critical_path as cp
from tools.plan import render_checks

# Pinned: README "The stages" (first `pulumi up`) shows the same figures.
# production: co-talk-api waits for the database endpoint it is configured with (Multi-AZ RDS).
FIRST_UP = {"dev": 26, "nas-migration": 26, "production": 30}
LAST_STEP = {
    "dev": "dev-prometheus-adapter",
    "nas-migration": "nas-migration-prometheus-adapter",
    "production": "production-co-talk-api",
}


@pytest.mark.parametrize("stack", FIRST_UP)
def test_first_up_minutes_per_stage(stack):
    plan = stack_plan(stack)
    path = cp.critical_path(plan)
    assert path.minutes == FIRST_UP[stack]
    assert path.steps[-1].name == LAST_STEP[stack]
    # Each step depends on the one before: a real chain of the graph, not a sum of the slowest types.
    graph = cp.dependencies(plan)
    for before, after in zip(path.steps, path.steps[1:]):
        assert before.urn in graph[after.urn]
    assert all(s.source for s in path.steps)
    lines = render_checks(plan)
    assert f"first_up_minutes: {FIRST_UP[stack]}" in lines
    assert any(line.startswith("first_up_chain (") for line in lines)


def test_readme_shows_the_pinned_figures():
    from pathlib import Path

    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    row = next(line for line in readme.splitlines() if line.startswith("| **first `pulumi up`**"))
    cells = [c.strip() for c in row.strip("|").split("|")][1:]
    assert [int(c.split("**")[1].split()[0]) for c in cells] == [FIRST_UP[s] for s in ("dev", "nas-migration", "production")]


def test_the_eks_chain_and_the_production_database_chain():
    dev = [s.type for s in cp.critical_path(stack_plan("dev")).steps]
    assert dev.index("aws:eks/cluster:Cluster") < dev.index("aws:eks/nodeGroup:NodeGroup") < dev.index("kubernetes:helm.sh/v3:Release")
    prod = cp.critical_path(stack_plan("production")).steps
    multi_az, replica = [s for s in prod if s.type == "aws:rds/instance:Instance"]
    assert (multi_az.minutes, replica.minutes) == (15.0, 12.0)


def test_an_unneeded_dependency_lengthens_the_path_and_is_gone():
    """Signaling no longer waits for prometheus-adapter; planting that edge back shows what it cost."""
    plan = copy.deepcopy(stack_plan("dev"))
    releases = {r["props"]["chart"]: r for r in plan["resources"] if r["type"] == "kubernetes:helm.sh/v3:Release"}
    signaling, adapter = releases["./charts/signaling"], releases["prometheus-adapter"]
    assert adapter["urn"] not in signaling["dependsOn"]
    signaling["dependsOn"] = [*signaling["dependsOn"], adapter["urn"]]
    planted = cp.critical_path(plan)
    assert planted.minutes == FIRST_UP["dev"] + 2 and planted.steps[-1].name == "dev-signaling"


def test_dependencies_expand_components_and_include_providers():
    plan = stack_plan("dev")
    graph = cp.dependencies(plan)
    custom = {r["urn"] for r in plan.resources if r["custom"]}
    assert set(graph) == custom and all(deps <= custom for deps in graph.values())
    cluster = next(r for r in plan.resources if r["type"] == "aws:eks/cluster:Cluster")
    assert cluster["provider"] in graph[cluster["urn"]]
    # A planted cycle is an error, not a silent number.
    looped = copy.deepcopy(graph)
    vpc = next(r["urn"] for r in plan.resources if r["type"] == "aws:ec2/vpc:Vpc")
    looped[vpc].add(cluster["urn"])
    with pytest.raises(ValueError, match="cycle"):
        cp.critical_path(plan, looped)
