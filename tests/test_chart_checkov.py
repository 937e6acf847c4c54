"""checkov over our three charts' rendered manifests (signaling and co-talk as production renders
them, valkey as dev does), in ONE checkov run and one test: the scanner's start-up (~3 s) is most of a scan. Each chart
must pass every check except the skips its README argues, and each scan must have really
covered the workload (>= 50 passed checks per chart)."""

from __future__ import annotations

from pathlib import Path

import yaml

from tests.harness import stack_plan
from tests.helm_charts import by_kind, checkov_kubernetes, the, write_rendered
from tests.test_cache_placement import CHART as VALKEY_CHART
from tests.test_cache_placement import CHART_PATH as VALKEY_PATH
from tests.test_cache_placement import release
from tests.test_chart import CHART as SIGNALING_CHART
from tests.test_chart import TG_ARN
from tests.test_chart import readme_skips as signaling_skips
from tests.test_chart import release_values as signaling_values
from tests.test_co_talk_chart import CHART as CO_TALK_CHART
from tests.test_co_talk_chart import readme_skips as co_talk_skips
from tests.test_co_talk_chart import release_values as co_talk_values
from tests.test_co_talk_chart import render as co_talk_render


def _signaling(out: Path) -> None:
    values = signaling_values("production")
    # With the bindings too, so every object kind is scanned.
    values["targetGroupBindings"] = {
        "alb": {"targetGroupArn": TG_ARN.format("prod-ws-alb")},
        "nlb": {"targetGroupArn": TG_ARN.format("prod-ws-nlb")},
    }
    write_rendered(SIGNALING_CHART, values, "signaling", out)


def _co_talk(out: Path) -> None:
    values = co_talk_values("production")
    write_rendered(CO_TALK_CHART, values, "co-talk-api", out)
    # checkov scans Deployments, not Rollouts: the same pod template as a Deployment is scanned too.
    rollout = the(by_kind(co_talk_render(values)), "Rollout")
    dep = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {**rollout["metadata"], "name": "co-talk-api-as-deployment"},
        "spec": {"selector": rollout["spec"]["selector"], "template": rollout["spec"]["template"]},
    }
    (out / "rollout-as-deployment.yaml").write_text(yaml.safe_dump(dep))


def _valkey(out: Path) -> None:
    write_rendered(VALKEY_CHART, release(stack_plan("dev"), VALKEY_PATH)["props"]["values"], "valkey", out)


RENDERS = {"signaling": _signaling, "co-talk": _co_talk, "valkey": _valkey}


def scan(root: Path) -> dict[str, dict[str, list[dict]]]:
    """chart -> {"passed"|"failed"|"skipped": checks}, split by the rendered file's directory."""
    for chart, write in RENDERS.items():
        (root / chart).mkdir()
        write(root / chart)
    results = checkov_kubernetes(root)["results"]
    split: dict[str, dict[str, list[dict]]] = {chart: {"passed": [], "failed": [], "skipped": []} for chart in RENDERS}
    for outcome in ("passed", "failed", "skipped"):
        for check in results[f"{outcome}_checks"]:
            split[check["file_path"].strip("/").split("/")[0]][outcome].append(check)
    return split


def problems(report: dict[str, list[dict]], documented: set[str]) -> list[str]:
    found = [f"failed {c['check_id']} on {c['resource']}" for c in report["failed"]]
    if len(report["passed"]) < 50:  # the scan really ran over the workload
        found.append(f"only {len(report['passed'])} checks passed")
    skipped = {c["check_id"] for c in report["skipped"]}
    if skipped != documented:
        found.append(f"skipped {sorted(skipped)}, the README argues {sorted(documented)}")
    return found


def test_our_charts_pass_checkov_but_the_skips_their_readmes_argue(tmp_path):
    reports = scan(tmp_path)
    signaling, co_talk = signaling_skips(), co_talk_skips()
    valkey = {"CKV_K8S_35", "CKV_K8S_40", "CKV_K8S_43"}
    found = {
        "signaling": problems(reports["signaling"], set(signaling)),
        "co-talk": problems(reports["co-talk"], set(co_talk)),
        "valkey": problems(reports["valkey"], valkey),
    }
    assert {chart: p for chart, p in found.items() if p} == {}
    assert all(len(reason) > 20 for reason in [*signaling.values(), *co_talk.values()])
    readme = (VALKEY_CHART / "README.md").read_text()
    assert all(f"`{s}`" in readme for s in valkey)
