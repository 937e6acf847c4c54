"""The rule table of docs/policies.md, rendered from the pack: names, levels per stage, and the
one-line "protects against / how to fix" each rule carries (policies/rules.py RULES).
`python -m policies.doc_table` prints it; tests/test_policies.py checks the doc holds exactly this table."""

from __future__ import annotations

try:
    from policies.rules import ALL_POLICIES, RULES, level_for
except ImportError:  # pragma: no cover - run from policies/
    from rules import ALL_POLICIES, RULES, level_for  # type: ignore[no-redef]


def render() -> str:
    rows = []
    for rule, p in zip(RULES, ALL_POLICIES, strict=True):
        kind = " (stack)" if type(p).__name__ == "StackValidationPolicy" else ""
        rows.append(f"| `{p.name}`{kind} | {level_for(p, False).value} | {level_for(p, True).value} | {rule.protects} | {rule.fix} |")
    head = "| rule | dev, clones | nas-migration, production | protects against | how to fix |\n|---|---|---|---|---|\n"
    return head + "\n".join(rows)


if __name__ == "__main__":
    print(render())
