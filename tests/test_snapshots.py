"""URN snapshots: a changed URN is a delete + create; a stateful one must go behind an alias."""

from __future__ import annotations

import copy

import pytest

from tests.harness import STACKS, Plan, stack_plan
from tools import snapshots


@pytest.mark.parametrize("stack", STACKS)
def test_urns_match_the_snapshot(stack):
    current = set(snapshots.urns_of(stack_plan(stack)))
    recorded = set(snapshots.read_snapshot(stack))
    added, removed = sorted(current - recorded), sorted(recorded - current)
    assert not added and not removed, (
        f"URNs of {stack} changed: removed {removed}, added {added}. "
        "A removed URN is a delete in `pulumi up`: add an alias, or run `make snapshots` if the change is deliberate."
    )


def _renamed(plan: Plan, typ: str, alias: bool) -> tuple[Plan, str]:
    renamed = copy.deepcopy(plan)
    target = next(r for r in renamed.resources if r["type"] == typ)
    old = target["urn"]
    target["urn"] = old.rsplit("::", 1)[0] + "::" + target["name"] + "-renamed"
    target["aliases"] = [old] if alias else []
    return Plan(renamed), old


def test_renaming_a_stateful_resource_without_alias_is_caught():
    plan = stack_plan("production")
    old_urns = snapshots.urns_of(plan)
    renamed, old = _renamed(plan, "aws:ec2/eip:Eip", alias=False)
    assert snapshots.lost_stateful(old_urns, renamed) == [old]
    with_alias, _ = _renamed(plan, "aws:ec2/eip:Eip", alias=True)
    assert snapshots.lost_stateful(old_urns, with_alias) == []


def test_make_snapshots_refuses_to_drop_a_stateful_urn(tmp_path, monkeypatch):
    monkeypatch.setattr(snapshots, "SNAPSHOTS", tmp_path)
    plan = stack_plan("dev")
    assert snapshots.write_snapshot("dev", plan, set()) == []
    renamed, old = _renamed(plan, "aws:ec2/vpc:Vpc", alias=False)
    before = (tmp_path / "dev.urns").read_text()
    assert snapshots.write_snapshot("dev", renamed, set()) == [old]
    assert (tmp_path / "dev.urns").read_text() == before  # nothing written
    assert snapshots.write_snapshot("dev", renamed, {old}) == []  # a deliberate removal


def test_renaming_a_stateless_resource_is_only_a_snapshot_change():
    plan = stack_plan("dev")
    renamed, _ = _renamed(plan, "aws:ec2/routeTableAssociation:RouteTableAssociation", alias=False)
    assert snapshots.lost_stateful(snapshots.urns_of(plan), renamed) == []
