"""`make bench`: median wall time and peak memory of `tools plan` per stack.

Each run is a fresh process (`python -m tools plan --stack S`), as a user runs it;
peak memory is the child's max RSS from getrusage.
"""

from __future__ import annotations

import os
import statistics
import sys
import time

RUNS = 5


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


def main(stacks: list[str]) -> int:
    print(f"{'stack':<16} {'median wall s':>13} {'peak RSS MiB':>13}  ({RUNS} runs each, {os.cpu_count()} cores)")
    for stack in stacks:
        wall, peak = measure(stack)
        print(f"{stack:<16} {wall:>13.2f} {peak:>13.0f}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:] or ["dev", "nas-migration", "production"]))
