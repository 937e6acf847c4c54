"""`make bench`: median wall time and peak memory of `tools plan` per stack, then where
the time of the largest stack goes.

Each run is a fresh process (`python -m tools plan --stack S`), as a user runs it;
peak memory is the child's max RSS from getrusage. The breakdown runs the same phases in
a fresh process with a timer between them: interpreter and our imports, the SDK modules
the program loads (found by a first run), the program under the mock runtime, and the
policy pack + cost. It shows which part is ours and which is the Pulumi SDK's.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time

RUNS = 5
SDK_PACKAGES = ("pulumi_aws", "pulumi_kubernetes", "pulumi_random")


def measure(stack: str) -> tuple[float, float]:
    walls, peaks = [], []
    for _ in range(RUNS):
        start = time.perf_counter()
        pid = os.fork()
        if pid == 0:  # child: become the plan command
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, 1)
            os.execv(sys.executable, [sys.executable, "-m", "tools", "plan", "--stack", stack])
        _, status, usage = os.wait4(pid, 0)
        walls.append(time.perf_counter() - start)
        peaks.append(usage.ru_maxrss / 1024)  # KiB -> MiB on Linux
        if os.waitstatus_to_exitcode(status) != 0:
            raise SystemExit(f"tools plan --stack {stack} failed")
    return statistics.median(walls), max(peaks)


def _child(args: list[str], stdin: str = "") -> dict:
    out = subprocess.run([sys.executable, "-m", "tools.bench", *args], input=stdin, capture_output=True, text=True)
    if out.returncode != 0:
        raise SystemExit(f"tools.bench {' '.join(args)} failed:\n{out.stderr}")
    return json.loads(out.stdout.splitlines()[-1])


def _sdk_modules_loaded() -> list[str]:
    """SDK modules whose code ran (pulumi's lazy modules that were never touched do not count)."""
    return sorted(n for n, m in sys.modules.items() if n.startswith(SDK_PACKAGES) and type(m).__name__ != "_LazyModule")


def _discover(stack: str) -> dict:
    from tools import plan as plan_mod

    plan_mod.build_plan(stack)
    return {"modules": _sdk_modules_loaded()}


def _phases(stack: str, modules: list[str], start: float) -> dict:
    """The `tools plan` phases, timed (gc off as in the CLI)."""
    import gc
    import importlib

    gc.disable()
    from tools import plan as plan_mod

    t_tools = time.perf_counter()
    for name in modules:
        getattr(importlib.import_module(name), "__all__", None)  # any plain attribute makes a lazy module load
    t_sdk = time.perf_counter()
    plan = plan_mod.build_plan(stack)
    t_run = time.perf_counter()
    plan_mod.render_tree(plan)
    list(plan_mod.render_checks(plan))
    t_checks = time.perf_counter()
    return {
        "interpreter + our imports (pulumi core, pydantic, config models)": t_tools - start,
        f"SDK modules the program loads ({len(modules)} modules)": t_sdk - t_tools,
        f"the program under the mock runtime ({len(plan.resources)} resources)": t_run - t_sdk,
        "tree, policy pack and cost": t_checks - t_run,
    }


def breakdown(stack: str, runs: int = 3) -> list[tuple[str, float]]:
    modules = _child(["--discover", stack])["modules"]
    samples = [_child(["--phases", stack], stdin="\n".join(modules)) for _ in range(runs)]
    return [(phase, statistics.median(s[phase] for s in samples)) for phase in samples[0]]


def main(stacks: list[str]) -> int:
    print(f"{'stack':<16} {'median wall s':>13} {'peak RSS MiB':>13}  ({RUNS} runs each, {os.cpu_count()} cores)")
    for stack in stacks:
        wall, peak = measure(stack)
        print(f"{stack:<16} {wall:>13.2f} {peak:>13.0f}")
    largest = "production" if "production" in stacks else stacks[-1]
    print(f"\nwhere the time of `tools plan --stack {largest}` goes (median of 3 fresh processes):")
    for phase, seconds in breakdown(largest):
        print(f"  {seconds:>6.2f} s  {phase}")
    return 0


if __name__ == "__main__":
    started = time.perf_counter()
    argv = sys.argv[1:]
    if argv[:1] == ["--discover"]:
        print(json.dumps(_discover(argv[1])))
        os._exit(0)  # the mock runtime's worker loops race at shutdown (see tools.mocks.exit_process)
    if argv[:1] == ["--phases"]:
        print(json.dumps(_phases(argv[1], sys.stdin.read().split(), started)))
        os._exit(0)
    sys.exit(main(argv or ["dev", "nas-migration", "production"]))
