"""The shape issue 10 gave the program, kept: ports from one source, one Args rule, a
Platform that reads as its tiers."""

from __future__ import annotations

import ast
import dataclasses
import importlib
import inspect
import io
import pkgutil
import tokenize
from pathlib import Path

import components
from components.context import StageContext
from components.platform import Platform

ROOT = Path(__file__).resolve().parent.parent
# The cross-tier ports' default values: TURN listening, TLS, relay start and metrics,
# signaling WebSocket, Redis and PostgreSQL.
CROSS_TIER_PORTS = {3478, 5349, 49152, 9641, 8080, 6379, 5432}
# Where a port value may be written: the config schema (TURN defaults, ALB host defaults)
# and the one source every consumer reads.
PORT_SOURCES = {"components/config.py", "components/ports.py"}
# Args of helpers inside a tier, not of a tier's component.
HELPER_ARGS = {"EdgeBucketArgs", "MigrationTargetArgs", "DataKeyArgs"}


def port_literals(source: str) -> list[int]:
    """Integer literals in code (not comments, not strings) that are a cross-tier port."""
    found = []
    for tok in tokenize.generate_tokens(io.StringIO(source).readline):
        if tok.type == tokenize.NUMBER and tok.string.isdigit() and int(tok.string) in CROSS_TIER_PORTS:
            found.append(int(tok.string))
    return found


def test_cross_tier_ports_are_written_in_one_place():
    offenders = {}
    for path in sorted((ROOT / "components").rglob("*.py")):
        rel = path.relative_to(ROOT).as_posix()
        if rel not in PORT_SOURCES and (found := port_literals(path.read_text())):
            offenders[rel] = found
    assert offenders == {}, "read them from ctx.ports (components/ports.py)"
    # The scan sees a planted default (and ignores prose).
    assert port_literals('x = 1\n# 3478 in a comment\ns = "5349"\nredis_port: int = 6379\n') == [6379]


def _component_args() -> list[type]:
    found = []
    for mod in pkgutil.walk_packages(components.__path__, "components."):
        module = importlib.import_module(mod.name)
        for name, obj in vars(module).items():
            if name.endswith("Args") and dataclasses.is_dataclass(obj) and obj.__module__ == module.__name__:
                found.append(obj)
    return found


def test_every_component_args_is_ctx_plus_its_config_and_other_tiers_outputs():
    args = [a for a in _component_args() if a.__name__ not in HELPER_ARGS]
    assert len(args) >= 15, [a.__name__ for a in args]
    for cls in args:
        fields = {f.name: f for f in dataclasses.fields(cls)}
        assert list(fields)[0] == "ctx" and fields["ctx"].type in ("StageContext", StageContext), cls.__name__
        # What the context carries is never copied beside it.
        copied = {"stage", "region", "account_id", "protect", "protect_data", "kms_key_arn", "alarm_topic_arn", "us_east_1_provider"}
        assert not copied & set(fields), (cls.__name__, copied & set(fields))
        assert not {f for f in fields if f.endswith("_port") or f.endswith("_ports")}, cls.__name__


def test_platform_init_reads_as_the_list_of_its_tiers():
    source = inspect.getsource(Platform.__init__)
    assert len(source.splitlines()) <= 150
    tree = ast.parse("class P:\n" + source)
    init = tree.body[0].body[0]
    # Each statement builds a tier (or wires two); no component is built inline.
    built = [n.func.id for n in ast.walk(init) if isinstance(n, ast.Call) and isinstance(n.func, ast.Name)]
    assert set(built) <= {"super", "build_foundation", "Network", "NetworkArgs", "FileStorage", "FileStorageArgs"}, built


def test_every_source_path_the_docs_name_exists():
    """After the move into subpackages, docs still named `components/keys.py`: a newcomer
    following README or docs/ must land on a file that is there."""
    import re

    root = Path(__file__).resolve().parent.parent
    pattern = re.compile(r"\b(?:components|tools|policies|tests|canary|bootstrap)/[\w/]+\.py\b")
    texts = {p: p.read_text() for p in [root / "README.md", *sorted((root / "docs").glob("*.md"))]}
    missing = sorted({(p.name, m) for p, text in texts.items() for m in pattern.findall(text) if not (root / m).is_file()})
    assert missing == []
    # The check sees a stale path (planted).
    assert pattern.findall("see `components/keys.py`") == ["components/keys.py"] and not (root / "components/keys.py").is_file()
