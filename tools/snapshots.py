"""URN snapshots: `tests/snapshots/<stack>.urns` lists every URN of a stack.

A changed URN means Pulumi would delete the old resource and create a new one. For
stateful resources that loses data, so a URN of a stateful type may disappear only
when a current resource carries it as an alias (the rename is then a no-op), or when
the removal is deliberate (`--allow-delete URN`).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from tools.plan import Plan, build_plan

ROOT = Path(__file__).resolve().parent.parent
SNAPSHOTS = ROOT / "tests" / "snapshots"

# Types whose replacement loses data or an address someone depends on.
STATEFUL_TYPES = frozenset(
    {
        "aws:rds/instance:Instance",
        "aws:rds/cluster:Cluster",
        "aws:elasticache/replicationGroup:ReplicationGroup",
        "aws:s3/bucket:Bucket",
        "aws:s3/bucketV2:BucketV2",
        "aws:kms/key:Key",
        "aws:ec2/eip:Eip",
        "aws:secretsmanager/secret:Secret",
        "aws:route53/zone:Zone",
        "aws:eks/cluster:Cluster",
        "aws:cloudwatch/logGroup:LogGroup",
        "aws:ec2/vpc:Vpc",
        "random:index/randomPassword:RandomPassword",
        "aws:dms/replicationInstance:ReplicationInstance",
    }
)


def snapshot_path(stack: str) -> Path:
    return SNAPSHOTS / f"{stack}.urns"


def urns_of(plan: Plan) -> list[str]:
    return sorted(r["urn"] for r in plan.resources)


def read_snapshot(stack: str) -> list[str]:
    path = snapshot_path(stack)
    return [line for line in path.read_text().splitlines() if line and not line.startswith("#")] if path.exists() else []


def lost_stateful(old_urns: list[str], plan: Plan) -> list[str]:
    """Stateful URNs of the snapshot that the plan neither keeps nor aliases."""
    current = {r["urn"] for r in plan.resources}
    aliased = {a for r in plan.resources for a in r["aliases"]}
    lost = []
    for urn in old_urns:
        typ = urn.split("::")[2].split("$")[-1]
        if typ in STATEFUL_TYPES and urn not in current and urn not in aliased:
            lost.append(urn)
    return lost


def write_snapshot(stack: str, plan: Plan, allow_delete: set[str]) -> list[str]:
    """Write the snapshot; return the stateful URNs that block it (nothing written then)."""
    blocked = [u for u in lost_stateful(read_snapshot(stack), plan) if u not in allow_delete]
    if blocked:
        return blocked
    header = "# URNs of this stack; rewrite with `make snapshots`. A stateful URN may only go away behind an alias.\n"
    snapshot_path(stack).write_text(header + "\n".join(urns_of(plan)) + "\n")
    return []


BOOTSTRAP_PREFIX = "bootstrap."


def plan_for(stack: str) -> Plan:
    """`dev` -> the stage's plan; `bootstrap.main` -> bootstrap/'s stack `main` (its snapshot
    guards the state bucket and the keys every stage depends on)."""
    if stack.startswith(BOOTSTRAP_PREFIX):
        from tools import bootstrap

        return bootstrap.build_plan(stack.removeprefix(BOOTSTRAP_PREFIX))
    return build_plan(stack)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.snapshots")
    parser.add_argument("stacks", nargs="+")
    parser.add_argument("--write", action="store_true", help="rewrite the snapshot files")
    parser.add_argument("--allow-delete", action="append", default=[], metavar="URN", help="a stateful URN that may really go")
    args = parser.parse_args(argv)
    status = 0
    for stack in args.stacks:
        plan = plan_for(stack)
        if args.write:
            blocked = write_snapshot(stack, plan, set(args.allow_delete))
            for urn in blocked:
                print(f"refused: {stack}: stateful {urn} would be deleted; add an alias, or pass --allow-delete {urn}")
                status = 1
            if not blocked:
                print(f"wrote {snapshot_path(stack).relative_to(ROOT)} ({len(plan.resources)} URNs)")
        else:
            old, new = set(read_snapshot(stack)), set(urns_of(plan))
            for u in sorted(old - new):
                print(f"- {u}")
            for u in sorted(new - old):
                print(f"+ {u}")
    return status


if __name__ == "__main__":
    from tools.mocks import exit_process

    exit_process(main())
