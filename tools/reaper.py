"""`tools reaper`: which review stacks are past their time to live.

Decision: the expiry is a **stack tag** (`voip:expires`, an ISO date), set by review-stack.yml
right after `pulumi stack init` from the clone's ttlDays. Not the stack file's date: review stacks'
files are made in the workflow and never committed, and a file date moves with every checkout.
The DIY (S3) backend keeps stack tags since Pulumi 3.211 (`<stack>.pulumi-tags` beside the
checkpoint; the workflows pin a newer CLI).

Input: the stacks with their tags (the workflow collects them with `pulumi stack ls --json` and
`pulumi stack tag ls --json`). Only stacks named like review stacks are ever reaped; long-lived
stages are refused even when tagged. No pulumi import: pure logic, unit-tested on dates.
"""

from __future__ import annotations

import datetime
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

EXPIRES_TAG = "voip:expires"
REVIEW_STACK = re.compile(r"pr-[1-9][0-9]{0,6}")
LONG_LIVED = frozenset({"dev", "nas-migration", "production"})


@dataclass(frozen=True)
class Verdict:
    stack: str
    expired: bool
    reason: str


def expires_on(created: datetime.date, ttl_days: int) -> datetime.date:
    """The tag value review-stack.yml writes: the day the clone is due (created + ttlDays)."""
    return created + datetime.timedelta(days=ttl_days)


def judge(stack: str, tags: Mapping[str, str], today: datetime.date) -> Verdict:
    if stack in LONG_LIVED or not REVIEW_STACK.fullmatch(stack):
        return Verdict(stack, False, "not a review stack (pr-<n>): never reaped")
    raw = tags.get(EXPIRES_TAG)
    if raw is None:
        return Verdict(
            stack, False, f"no {EXPIRES_TAG} tag: left alone; tag it (pulumi stack tag set {EXPIRES_TAG} YYYY-MM-DD --stack {stack})"
        )
    try:
        due = datetime.date.fromisoformat(str(raw))
    except ValueError:
        return Verdict(stack, False, f"{EXPIRES_TAG} {raw!r} is not a date YYYY-MM-DD: left alone")
    if today >= due:
        return Verdict(stack, True, f"expired on {due.isoformat()} ({(today - due).days} days ago)")
    return Verdict(stack, False, f"expires on {due.isoformat()} (in {(due - today).days} days)")


def sweep(stacks: Iterable[Mapping[str, Any]], today: datetime.date) -> list[Verdict]:
    """`stacks`: [{"name": ..., "tags": {...}}]; one verdict each, in name order."""
    return [judge(str(s["name"]), s.get("tags") or {}, today) for s in sorted(stacks, key=lambda s: str(s["name"]))]


def load(path: Path) -> list[dict[str, Any]]:
    data = json.loads(path.read_text())
    if not isinstance(data, list) or not all(isinstance(s, dict) and "name" in s for s in data):
        raise ValueError(f"{path}: expected a JSON list of {{'name': ..., 'tags': {{...}}}}")
    return data
