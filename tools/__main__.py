"""`python -m tools <command>`: see CONTRACTS.md. Exit codes: 0 ok, 1 invalid input, 2 usage."""

from __future__ import annotations

import gc

if __name__ == "__main__":
    # A command is one short process that builds ~200 MB of objects that live until it exits
    # (the SDK's typed classes, the mock runtime's outputs). The cyclic collector would rescan
    # them again and again: 1.5-2 s of a production plan. Reference counting still frees what
    # is dropped; the rest goes at exit (peak RSS measured unchanged, ~220 MB).
    gc.disable()

import argparse
import sys
from pathlib import Path

from components.config_loader import ConfigError
from tools.stackfile import STACKS, StackFileError


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # usage errors exit 2, as argparse does, without a traceback
        self.print_usage(sys.stderr)
        print(f"error: {message}", file=sys.stderr)
        sys.exit(2)


def _invalid(exc: ConfigError | StackFileError) -> int:
    """Print an invalid stack file's problems, one line each (no traceback); exit code 1."""
    for line in exc.lines if isinstance(exc, ConfigError) else [str(exc)]:
        print(line, file=sys.stderr)
    return 1


def _plan(args: argparse.Namespace) -> int:
    from tools import plan as plan_mod

    try:
        config_file = Path(args.config) if args.config else None
        plan = plan_mod.build_plan(args.stack, config_file)
    except (ConfigError, StackFileError) as exc:
        return _invalid(exc)
    for note in plan_mod.offline_notes(args.stack, config_file):
        print(note, file=sys.stderr)
    print(plan_mod.render_tree(plan))
    print()
    print(plan_mod.render_outputs(plan))
    print()
    # The policy summary and the monthly cost (CONTRACTS.md), with the violations if any.
    for line in plan_mod.render_checks(plan):
        print(line)
    if args.json:
        plan_mod.write_json(plan, Path(args.json))
    if args.markdown:
        Path(args.markdown).write_text(plan_mod.render_markdown(plan))
    return 0


def _bootstrap_plan(args: argparse.Namespace) -> int:
    from tools import bootstrap, cost
    from tools import plan as plan_mod

    try:
        plan = bootstrap.build_plan(args.stack, Path(args.config) if args.config else None)
    except (ConfigError, StackFileError) as exc:
        return _invalid(exc)
    print(plan_mod.render_tree(plan))
    print()
    print(plan_mod.render_outputs(plan))
    print()
    print(cost.render(cost.estimate(plan)))
    if args.json:
        plan_mod.write_json(plan, Path(args.json))
    return 0


def _required_secrets(args: argparse.Namespace) -> int:
    """Exit 3 (with the commands) when the stage's required secrets are not set: CI skips it."""
    from tools.stackfile import load_stack_file, set_secret_command, stack_path, unset_required_secrets

    try:
        raw, _ = load_stack_file(Path(args.config) if args.config else stack_path(args.stack))
        unset = unset_required_secrets(args.stack, raw)
        if not unset:
            from components.config_loader import load_stack_config

            load_stack_config(args.stack, raw)
    except (ConfigError, StackFileError) as exc:
        return _invalid(exc)
    for key in unset:
        print(f"{args.stack}: required secret {key} is not set; run once: {set_secret_command(args.stack, key)}")
    return 3 if unset else 0


def _runner_targets(args: argparse.Namespace) -> int:
    from tools import plan as plan_mod
    from tools import runner_targets

    try:
        plan = plan_mod.build_plan(args.stack, Path(args.config) if args.config else None)
    except (ConfigError, StackFileError) as exc:
        return _invalid(exc)
    if args.kubernetes:
        print(runner_targets.render(runner_targets.kubernetes_targets(plan)))
        return 0
    urns = runner_targets.runner_targets(plan)
    if not urns:
        print(f"error: {args.stack}: cluster.ciRunner.enabled is false; there is no runner to create", file=sys.stderr)
        return 1
    print(runner_targets.render(urns))
    return 0


def _reaper(args: argparse.Namespace) -> int:
    """Expired review stacks on stdout (one name per line, for the workflow); every verdict on stderr."""
    import datetime

    from tools import reaper

    try:
        stacks = reaper.load(Path(args.stacks))
        today = datetime.date.fromisoformat(args.today) if args.today else datetime.datetime.now(datetime.UTC).date()
    except (OSError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    for v in reaper.sweep(stacks, today):
        print(f"{'REAP' if v.expired else 'keep'} {v.stack}: {v.reason}", file=sys.stderr)
        if v.expired:
            print(v.stack)
    return 0


def _ci_route(args: argparse.Namespace) -> int:
    import json

    from tools import ci_route

    try:
        existing = json.loads(args.existing_runners or "[]")
        routes = ci_route.route(args.stacks, existing, args.run_id, args.run_attempt)
    except (ValueError, StackFileError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    for stack, r in routes.items():
        print(f"{stack}: {'SKIP, ' + r['why'] if r['skip'] == 'true' else 'runs on ' + r['runs-on']}", file=sys.stderr)
    print(ci_route.render(routes))
    return 0


def _plan_file(path: str):
    """The plan file at `path`, or None once the reason it cannot be read is printed."""
    from tools.plan import Plan, PlanFileError

    try:
        return Plan.load(Path(path))
    except PlanFileError as exc:
        print(exc, file=sys.stderr)
        return None


def _policy(args: argparse.Namespace) -> int:
    from tools import policy as policy_mod

    plan = _plan_file(args.plan)
    if plan is None:
        return 1
    violations = policy_mod.run(plan)
    for v in violations:
        print(v.line())
    mandatory = sum(v.level == "mandatory" for v in violations)
    print(f"{mandatory} mandatory, {len(violations) - mandatory} advisory violations", file=sys.stderr)
    return 1 if mandatory else 0


def _cost(args: argparse.Namespace) -> int:
    from tools import cost as cost_mod

    plan = _plan_file(args.plan)
    if plan is None:
        return 1
    from tools.targets import target_path, target_plan

    stack = str(plan.get("stack", ""))
    target = target_plan(stack) if not args.no_target else None
    source = str(target_path(stack).relative_to(Path(__file__).resolve().parent.parent)) if target is not None else ""
    figs = cost_mod.figures(plan, target, source)
    print(cost_mod.render(figs.today, figs))
    return 0


def _ttl_days(value: str) -> int:
    from tools.clone_stack import MAX_TTL_DAYS, MIN_TTL_DAYS

    try:
        days = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a whole number of days") from None
    if not MIN_TTL_DAYS <= days <= MAX_TTL_DAYS:
        raise argparse.ArgumentTypeError(f"{days} is outside {MIN_TTL_DAYS}..{MAX_TTL_DAYS}")
    return days


def _clone_stack(args: argparse.Namespace) -> int:
    from tools import clone_stack as clone_mod

    try:
        result = clone_mod.clone_stack(args.from_stack, args.to_stack, Path(args.stacks_dir), args.ttl_days, snapshot=args.snapshot)
    except clone_mod.CloneError as exc:
        for line in exc.lines:
            print(line, file=sys.stderr)
        return 1
    print(clone_mod.render(result))
    return 0


def _diagram(args: argparse.Namespace) -> int:
    from tools import diagram as diagram_mod

    plan = _plan_file(args.plan)
    if plan is None:
        return 1
    print(diagram_mod.render_mermaid(diagram_mod.build(plan)), end="")
    return 0


def _tfplan(args: argparse.Namespace) -> int:
    from tools import tfplan as tfplan_mod

    try:
        text = tfplan_mod.write(Path(args.plan), Path(args.out) if args.out else None)
    except (OSError, ValueError, KeyError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    if not args.out:
        print(text)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = _Parser(prog="python -m tools", description="voip-infra operator commands (offline)")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    p = sub.add_parser("plan", help="offline plan of a stack under Pulumi's mock runtime")
    p.add_argument("--stack", required=True, help="stack name (stacks/Pulumi.<stack>.yaml)")
    p.add_argument("--config", help="a stack file to use instead of stacks/Pulumi.<stack>.yaml")
    p.add_argument("--json", metavar="OUT", help="write the plan file (version 1)")
    p.add_argument("--markdown", metavar="OUT", help="write a Markdown summary (PR comments)")
    p.set_defaults(func=_plan)

    p = sub.add_parser("bootstrap-plan", help="offline plan and cost of a bootstrap/ stack (one per AWS account)")
    p.add_argument("--stack", required=True, help="bootstrap stack (bootstrap/Pulumi.<stack>.yaml)")
    p.add_argument("--config", help="a stack file to use instead")
    p.add_argument("--json", metavar="OUT", help="write the plan file (version 1, project voip-bootstrap)")
    p.set_defaults(func=_bootstrap_plan)

    p = sub.add_parser("required-secrets", help="exit 3 and print the commands when a stage's required secrets are unset")
    p.add_argument("--stack", required=True, help="stack name (stacks/Pulumi.<stack>.yaml)")
    p.add_argument("--config", help="a stack file to use instead")
    p.set_defaults(func=_required_secrets)

    p = sub.add_parser("runner-targets", help="the --target URNs that create a stage's CI runner alone (first run)")
    p.add_argument("--stack", required=True, help="stack name (stacks/Pulumi.<stack>.yaml)")
    p.add_argument("--config", help="a stack file to use instead")
    p.add_argument(
        "--kubernetes", action="store_true", help="instead: the Kubernetes half (what a tear-down destroys first, on the runner)"
    )
    p.set_defaults(func=_runner_targets)

    p = sub.add_parser("reaper", help="print the review stacks whose voip:expires tag has passed")
    p.add_argument(
        "--stacks", required=True, metavar="STACKS.json", help='[{"name": "pr-12", "tags": {"voip:expires": "2026-12-06"}}, ...]'
    )
    p.add_argument("--today", metavar="YYYY-MM-DD", help="the date to judge by (default: today, UTC)")
    p.set_defaults(func=_reaper)

    p = sub.add_parser("ci-route", help="where each stage's CI job runs (in-VPC runner or GitHub-hosted) and which to skip")
    p.add_argument("stacks", nargs="+", metavar="STACK")
    p.add_argument("--existing-runners", metavar="JSON", help='the CodeBuild projects that exist, e.g. ["dev-voip-ci-runner"]')
    p.add_argument("--run-id", required=True)
    p.add_argument("--run-attempt", required=True)
    p.set_defaults(func=_ci_route)

    p = sub.add_parser("policy", help="run the CrossGuard policy pack (policies/) over a plan file")
    p.add_argument("--plan", required=True, metavar="PLAN.json", help="a plan file written by `plan --json`")
    p.set_defaults(func=_policy)

    p = sub.add_parser("cost", help="monthly USD estimate of a plan file, per resource and in total")
    p.add_argument("--plan", required=True, metavar="PLAN.json", help="a plan file written by `plan --json`")
    p.add_argument("--no-target", action="store_true", help="skip the seed-001 target figure (it plans the stack again, ~1 s)")
    p.set_defaults(func=_cost)

    p = sub.add_parser("clone-stack", help="write stacks/Pulumi.<to>.yaml: an ephemeral stage cloned from a template stage")
    p.add_argument("--from", dest="from_stack", required=True, metavar="NAME", help="template stage (stacks/Pulumi.<NAME>.yaml)")
    p.add_argument("--to", dest="to_stack", required=True, metavar="NAME", help="new stage name (2-20 chars of a-z, 0-9, '-')")
    p.add_argument("--ttl-days", type=_ttl_days, default=7, metavar="N", help="days until tear-down, 1..90 (default 7; tagged ttl-days)")
    p.add_argument("--stacks-dir", default=str(STACKS), metavar="DIR", help="where the stack files live (default: the repo's stacks/)")
    p.add_argument(
        "--snapshot",
        metavar="latest|ID",
        help="restore the database from the template's snapshot (the template must set database.snapshotsForClones: true)",
    )
    p.set_defaults(func=_clone_stack)

    p = sub.add_parser("diagram", help="a diagram of the stack from a plan file (Mermaid)")
    p.add_argument("--plan", required=True, metavar="PLAN.json", help="a plan file written by `plan --json`")
    p.add_argument("--format", choices=["mermaid"], default="mermaid", help="output format (default mermaid)")
    p.set_defaults(func=_diagram)

    p = sub.add_parser("tfplan", help="a Terraform-plan JSON translation of a plan file (checkov --framework terraform_plan)")
    p.add_argument("--plan", required=True, metavar="PLAN.json", help="a plan file written by `plan --json`")
    p.add_argument("--out", metavar="FILE", help="write here instead of stdout")
    p.set_defaults(func=_tfplan)

    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    from tools.mocks import exit_process

    try:
        code = main()
    except BrokenPipeError:  # the reader left early (`... | head`)
        code = 0
    exit_process(code)
