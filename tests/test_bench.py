"""`make bench`'s breakdown: the phases of `tools plan` timed in a fresh process (no time is asserted)."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.conftest import ROOT
from tests.harness import stack_plan
from tools import bench


def test_sdk_modules_loaded_skips_untouched_lazy_modules(monkeypatch):
    class _LazyModule:  # the name pulumi's lazy loader gives a module not loaded yet
        pass

    loaded, lazy = type(sys)("pulumi_aws.ec2"), _LazyModule()
    monkeypatch.setitem(sys.modules, "pulumi_aws.ec2", loaded)
    monkeypatch.setitem(sys.modules, "pulumi_aws.gamelift", lazy)
    found = bench._sdk_modules_loaded()
    assert "pulumi_aws.ec2" in found
    assert "pulumi_aws.gamelift" not in found
    assert all(n.startswith(bench.SDK_PACKAGES) for n in found)


def test_phases_child_times_each_phase_of_a_plan():
    out = subprocess.run(
        [sys.executable, "-m", "tools.bench", "--phases", "dev"],
        input="pulumi_random\npulumi_aws.ec2\n",
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    phases = json.loads(out.stdout.splitlines()[-1])
    assert list(phases) == [
        "interpreter + our imports (pulumi core, pydantic, config models)",
        "SDK modules the program loads (2 modules)",
        f"the program under the mock runtime ({len(stack_plan('dev').resources)} resources)",
        "tree, policy pack and cost",
    ]
    assert all(seconds > 0 for seconds in phases.values())
