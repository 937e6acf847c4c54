"""Pod density: every node group holds the pods that land on it (tools/node_fit.py), per stage.

The cost model prices each group at desiredSize; a group whose pods need more nodes than that
is priced short and, on a quiet day, runs Pending pods until the autoscaler adds one.
"""

from __future__ import annotations

import copy
import re

import pytest
import yaml

from tools.node_fit import INSTANCES, ROOT, fit, node
from tools.plan import Plan

RELEASE = "kubernetes:helm.sh/v3:Release"
NODE_GROUP = "aws:eks/nodeGroup:NodeGroup"
SIGNALING_CHART = "./charts/signaling"


def _problems(plan) -> list[str]:
    fits, homeless = fit(plan)
    return homeless + [p for f in fits for p in f.problems()]


def _by_group(plan) -> dict[str, object]:
    return {f.group.name: f for f in fit(plan)[0]}


def test_every_node_group_holds_its_pods(plan):
    assert _problems(plan) == []
    fits = _by_group(plan)
    stage = plan["stack"]
    # Every group the stage runs is checked, and every pod template of the plan lands somewhere.
    assert set(fits) == {ng["props"]["nodeGroupName"] for ng in plan.of_type(NODE_GROUP)}
    assert f"{stage}-system" in fits and f"{stage}-signaling" in fits
    system = fits[f"{stage}-system"]
    assert {"coredns x2", "prometheus x1", "kube-proxy (DaemonSet)"} <= set(system.placed)


def test_node_capacity_follows_the_eks_formulas():
    # ENIs x (IPv4 per ENI - 1) + 2 pods; kube-reserved 255 Mi + 11 Mi a pod, 100 Mi eviction;
    # CPU 6 % of the first core, 1 % of the second, 0.5 % of the next two, 0.25 % above.
    assert node("t4g.medium") == node("t4g.medium").__class__(cpu_m=1930, mem_mi=4096 - 442 - 100, pods=17)
    assert node("c7g.large").pods == 29 and node("c7g.large").cpu_m == 1930
    assert node("m7g.large").mem_mi == 8192 - (255 + 11 * 29) - 100
    assert node("t4g.large").pods == 35
    assert node("c7g.xlarge").cpu_m == 4000 - 60 - 10 - 10
    assert node("c7g.4xlarge").pods == 234 and node("c7g.4xlarge").cpu_m == 16000 - 60 - 10 - 10 - 30
    with pytest.raises(ValueError, match="x9g.large: not in tools/node_fit.py INSTANCES"):
        node("x9g.large")


def test_every_instance_type_the_stacks_use_is_known(plans):
    for plan in plans.values():
        for ng in plan.of_type(NODE_GROUP):
            for t in ng["props"]["instanceTypes"]:
                assert t in INSTANCES, (ng["name"], t)


def _planted(plan, change) -> Plan:
    out = Plan(copy.deepcopy(dict(plan)))
    change(out)
    return out


def _group(plan, suffix: str) -> dict:
    return next(ng["props"] for ng in plan["resources"] if ng["type"] == NODE_GROUP and ng["props"]["nodeGroupName"].endswith(suffix))


def _release(plan, chart: str) -> dict:
    return next(r["props"]["values"] for r in plan["resources"] if r["type"] == RELEASE and r["props"]["chart"] == chart)


def test_dev_one_system_node_is_refused(plans):
    # The defect this rule exists for: dev priced 1 system node whose 24 pods need 2.
    bad = _planted(plans["dev"], lambda p: _group(p, "-system")["scalingConfig"].update(desiredSize=1))
    assert _problems(bad) == ["dev-system (1 x t4g.medium): 24 pods > 17 (17 a node)"]


def test_dev_signaling_node_holds_the_apps_and_signaling(plans):
    dev = plans["dev"]
    fits = _by_group(dev)
    assert "dev-api" not in fits  # apiNodes: null
    sig = fits["dev-signaling"]
    assert sig.group.nodes == 1 and sig.group.instance_type == "t4g.medium"
    assert {"co-talk x2", "signaling x2"} <= set(sig.placed)
    cap = sig.capacity
    assert (sig.pods, sig.cpu_m, sig.mem_mi) == (10, 1705, 2696) and (cap.pods, cap.cpu_m, cap.mem_mi) == (17, 1930, 3554)
    # A third signaling pod at rest (the old min 3) no longer fits the one node: CPU.
    bad = _planted(dev, lambda p: _release(p, SIGNALING_CHART)["autoscaling"].update(minReplicas=3))
    assert _problems(bad) == ["dev-signaling (1 x t4g.medium): CPU requests 2205m > allocatable 1930m"]
    # A smaller instance first in the list (t4g.small: 2 GiB) fails on memory.
    small = _planted(dev, lambda p: _group(p, "-signaling").update(instanceTypes=["t4g.small"]))
    assert _problems(small) == ["dev-signaling (1 x t4g.small): memory requests 2696Mi > allocatable 1572Mi"]


def test_a_pod_no_group_admits_is_reported(plans):
    # The apps kept on the API pool's selector in a stage without that pool would stay Pending.
    def to_api_pool(p):
        _release(p, "./charts/co-talk")["nodeSelector"] = {"voip.example.com/pool": "api"}

    assert fit(_planted(plans["dev"], to_api_pool))[1] == [
        "co-talk: no node group matches its node selector {'voip.example.com/pool': 'api'} and tolerations"
    ]


def test_an_unknown_chart_is_refused(plans):
    def add(p):
        p["resources"].append({"type": RELEASE, "name": "dev-x", "props": {"chart": "redis-ha", "values": {}}})

    with pytest.raises(ValueError, match="dev-x: chart redis-ha is not in tools/node_fit.py CHARTS"):
        fit(_planted(plans["dev"], add))


def test_signaling_pdb_lets_a_node_drain(plan):
    # The PDB evicts one pod at a time; with minReplicas pods at rest one always keeps serving.
    chart = yaml.safe_load((ROOT / "charts/signaling/values.yaml").read_text())["podDisruptionBudget"]
    values = _release(plan, SIGNALING_CHART)
    pdb = {**chart, **values.get("podDisruptionBudget", {})}
    assert pdb["enabled"] and pdb["maxUnavailable"] == 1 < values["autoscaling"]["minReplicas"]


def test_docs_fit_table_is_todays(plans):
    # docs/cluster.md "Node fit" quotes every group's numbers: they must be the plan's.
    row = re.compile(r"^\| (\S+) (system|signaling|api) (\d+) x (\S+)[^|]*\| (\d+) / (\d+) \| (\d+) / (\d+)m \| (\d+) / (\d+) Mi \|$", re.M)
    quoted = {(m[1], m[2]): tuple(m.groups()[2:]) for m in row.finditer((ROOT / "docs/cluster.md").read_text())}
    actual = {}
    for stage, plan in plans.items():
        for f in fit(plan)[0]:
            cap = f.capacity
            kind = f.group.name.removeprefix(f"{stage}-")
            actual[(stage, kind)] = tuple(
                str(v) for v in (f.group.nodes, f.group.instance_type, f.pods, cap.pods, f.cpu_m, cap.cpu_m, f.mem_mi, cap.mem_mi)
            )
    assert quoted == actual
