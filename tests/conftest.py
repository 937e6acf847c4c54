"""Shared fixtures: the real program run under Pulumi's mock runtime (tools/mocks.py)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests.harness import STACKS, stack_plan  # noqa: E402


@pytest.fixture(scope="session", params=STACKS)
def plan(request):
    """The plan of each stage (tests using it run once per stack)."""
    return stack_plan(request.param)


@pytest.fixture(scope="session")
def plans():
    return {s: stack_plan(s) for s in STACKS}
