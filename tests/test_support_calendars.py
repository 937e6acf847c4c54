"""Pinned vendor versions are ones AWS supports (issue 15 items 3 and 12).

The mocks accept any version string; AWS does not: an EKS version past standard support is
upgraded under a STANDARD upgrade policy, a DMS engine past its "no new instance" date cannot
be created. `components/support_calendars.py` holds the dates with their sources; these tests
check the defaults on the calendar's date and every stage's plan, and plant a stale pin to
show each check fails on one.
"""

from __future__ import annotations

import copy
from datetime import date

from components.config import CLUSTER_AUTOSCALER_CHART_MINORS, ClusterConfig, DmsConfig
from components.support_calendars import (
    CALENDARS_CHECKED,
    DMS_ENGINE_SUPPORT,
    EKS_STANDARD_SUPPORT_END,
    dms_engine_problem,
    eks_version_problem,
)
from tests.resource_types import ADDON, CLUSTER, DMS_INSTANCE, NODE_GROUP, RELEASE


def _minor(version: str) -> str:
    return ".".join(str(version).lstrip("v").split(".")[:2])


def autoscaler_minor(release_props: dict) -> str | None:
    """The Kubernetes minor the Cluster Autoscaler of a release runs: the image tag its values
    pin, else the chart's appVersion (from the chart history table)."""
    tag = ((release_props.get("values") or {}).get("image") or {}).get("tag")
    return _minor(tag) if tag else CLUSTER_AUTOSCALER_CHART_MINORS.get(release_props["version"])


def version_violations(resources: list[dict], ignore_changes: dict[str, list[str]], on: date = CALENDARS_CHECKED) -> list[str]:
    """Every versioned AWS/EKS piece of a plan against the support calendars."""
    out = []
    clusters = [r for r in resources if r["type"] == CLUSTER]
    for c in clusters:
        version = c["props"]["version"]
        if problem := eks_version_problem(version, on):
            out.append(f"{c['name']}: {problem}")
        if (c["props"].get("upgradePolicy") or {}).get("supportType") != "STANDARD":
            out.append(f"{c['name']}: upgradePolicy must be STANDARD (extended support costs 6x)")
    versions = {c["props"]["version"] for c in clusters}
    for r in resources:
        props = r.get("props") or {}
        if r["type"] == ADDON and props["addonName"] == "kube-proxy" and _minor(props["addonVersion"]) not in versions:
            out.append(f"{r['name']}: kube-proxy {props['addonVersion']} is not of the cluster's minor {sorted(versions)}")
        if r["type"] == NODE_GROUP and props.get("version") not in (None, *versions):
            out.append(f"{r['name']}: node group version {props['version']} differs from the control plane")
        if r["type"] == RELEASE and props.get("chart") == "cluster-autoscaler" and autoscaler_minor(props) not in versions:
            out.append(f"{r['name']}: Cluster Autoscaler {autoscaler_minor(props)} does not match the cluster {sorted(versions)}")
        if r["type"] == DMS_INSTANCE:
            if problem := dms_engine_problem(props["engineVersion"], on):
                out.append(f"{r['name']}: {problem}")
            if props.get("autoMinorVersionUpgrade") and "engineVersion" not in ignore_changes.get(r["urn"], []):
                out.append(f"{r['name']}: automatic upgrades move engineVersion; ignore that drift (ignore_changes)")
    return out


# ------------------------------------------------------------------ the calendars


def test_pinned_defaults_are_supported_on_the_calendars_date():
    assert CALENDARS_CHECKED == date(2026, 11, 29)
    eks = ClusterConfig.model_fields["version"].default
    assert eks == "1.36" and eks_version_problem(eks) is None
    # The longest runway among the versions in standard support that day.
    supported = [v for v, end in EKS_STANDARD_SUPPORT_END.items() if end > CALENDARS_CHECKED]
    assert max(supported, key=EKS_STANDARD_SUPPORT_END.get) == eks
    assert (EKS_STANDARD_SUPPORT_END[eks] - CALENDARS_CHECKED).days > 180
    dms = DmsConfig.model_fields["engine_version"].default
    assert dms == "3.6.1" and dms_engine_problem(dms) is None
    assert DMS_ENGINE_SUPPORT[dms][0] > CALENDARS_CHECKED


def test_the_calendar_refuses_what_aws_retired():
    # The seed's pins, the defects of issue 15.
    assert "left EKS standard support on 2026-07-29" in eks_version_problem("1.33")
    assert "1.34" not in eks_version_problem("1.33").split("Pick one")[0]
    assert "left EKS standard support on 2026-12-02" in eks_version_problem("1.34", date(2026, 12, 2))
    assert "not in the EKS support calendar" in eks_version_problem("1.37")
    assert "stopped creating 3.5.4 instances on 2026-09-15" in dms_engine_problem("3.5.4")


# ------------------------------------------------------------------ every stage's plan


def test_every_stage_pins_supported_versions(plan):
    assert version_violations(plan.resources, plan.ignore_changes) == []
    # Each stage has what the check looks at (a vacuous pass would prove nothing).
    assert plan.of_type(CLUSTER) and [a for a in plan.of_type(ADDON) if a["props"]["addonName"] == "kube-proxy"]
    if plan["stack"] == "nas-migration":
        assert plan.of_type(DMS_INSTANCE)


def test_the_invariant_catches_planted_stale_pins(plans):
    plan = plans["nas-migration"]
    planted = copy.deepcopy(plan.resources)
    by_type = {}
    for r in planted:
        by_type.setdefault(r["type"], []).append(r)
    by_type[CLUSTER][0]["props"]["version"] = "1.33"  # the seed's pin
    next(a for a in by_type[ADDON] if a["props"]["addonName"] == "kube-proxy")["props"]["addonVersion"] = "v1.35.2-eksbuild.1"
    autoscaler = next(r for r in by_type[RELEASE] if r["props"]["chart"] == "cluster-autoscaler")
    autoscaler["props"]["values"].pop("image")  # chart 9.59.0 alone runs 1.35
    dms = by_type[DMS_INSTANCE][0]
    dms["props"]["engineVersion"] = "3.5.4"
    found = version_violations(planted, {})
    assert any("left EKS standard support on 2026-07-29" in v for v in found), found
    assert any("kube-proxy v1.35.2-eksbuild.1" in v for v in found), found
    assert any("Cluster Autoscaler 1.35 does not match" in v for v in found), found
    assert any("stopped creating 3.5.4" in v for v in found), found
    assert any("ignore that drift" in v for v in found), found
