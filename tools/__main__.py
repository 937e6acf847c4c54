"""`python -m tools <command>`: see CONTRACTS.md. Exit codes: 0 ok, 1 invalid input, 2 usage."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from components.config import ConfigError
from tools.stackfile import StackFileError


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # usage errors exit 2, as argparse does, without a traceback
        self.print_usage(sys.stderr)
        print(f"error: {message}", file=sys.stderr)
        sys.exit(2)


def _plan(args: argparse.Namespace) -> int:
    from tools import plan as plan_mod

    try:
        plan = plan_mod.build_plan(args.stack, Path(args.config) if args.config else None)
    except (ConfigError, StackFileError) as exc:
        lines = exc.lines if isinstance(exc, ConfigError) else [str(exc)]
        for line in lines:
            print(line, file=sys.stderr)
        return 1
    print(plan_mod.render_tree(plan))
    print()
    print(plan_mod.render_outputs(plan))
    if args.json:
        plan_mod.write_json(plan, Path(args.json))
    if args.markdown:
        Path(args.markdown).write_text(plan_mod.render_markdown(plan))
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

    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    from tools.mocks import exit_process

    try:
        code = main()
    except BrokenPipeError:  # the reader left early (`... | head`)
        code = 0
    exit_process(code)
