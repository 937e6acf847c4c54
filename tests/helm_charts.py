"""What the chart tests share: rendering a chart with real Helm (helm-python-sdk, in-process),
grouping the objects by kind, its lint verdict, and a checkov scan of a rendered directory."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

h = pytest.importorskip("helm_python")


def render_chart(chart: Path, values: dict, name: str, namespace: str) -> list[dict]:
    manifests = h.Chart.load(str(chart)).render(values=values, name=name, namespace=namespace)
    return [doc for text in manifests.values() for doc in yaml.safe_load_all(text) if doc]


def write_rendered(chart: Path, values: dict, name: str, out: Path) -> None:
    """The manifests of `chart`, one file each, into `out` (for checkov)."""
    for path, text in h.Chart.load(str(chart)).render(values=values, name=name, namespace="voip").items():
        (out / path.replace("/", "_")).write_text(text)


def by_kind(objs: list[dict]) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = {}
    for o in objs:
        out.setdefault(o["kind"], []).append(o)
    return out


def the(kinds: dict[str, list[dict]], kind: str) -> dict:
    (obj,) = kinds[kind]
    return obj


def assert_lint_clean(chart: Path, values: dict) -> None:
    """`helm lint --strict`: no error, no warning (the missing chart icon aside)."""
    report = h.lint(str(chart), values, strict=True)
    assert not report["errors"], report
    assert not [m for m in report["messages"] if m["severity"] >= 2 and "icon" not in m["error"]], report


def checkov_kubernetes(directory: Path) -> dict:
    """checkov's JSON report over the manifests in `directory` (the venv's checkov, offline)."""
    checkov = Path(sys.executable).with_name("checkov")
    proc = subprocess.run(
        [str(checkov), "-d", str(directory), "--framework", "kubernetes", "-o", "json", "--skip-download"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    return json.loads(proc.stdout)
