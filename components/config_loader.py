"""Loading a stack's config: the raw key/value map Pulumi hands the program becomes a
frozen `StackConfig` (components/config.py), or `ConfigError` listing every problem at once,
one line each, in the format of CONTRACTS.md ("error: <key path>: <what is wrong and what is
allowed>")."""

from __future__ import annotations

import json
import re
from typing import Annotated, Any, Union, get_args, get_origin

from pulumi.runtime import config as runtime_config
from pydantic import BaseModel, ValidationError

from components.config import PROJECT, REGION_KEY, StackConfig, _MultiProblem


class ConfigError(Exception):
    """Invalid stack config. `lines` are ready to print, one problem each."""

    def __init__(self, lines: list[str]):
        super().__init__("\n".join(lines))
        self.lines = lines


# ---------------------------------------------------------------------- loading


def raw_stack_config(project: str = PROJECT) -> dict[str, Any]:
    """Every key of the project namespace (voip-infra, or bootstrap's voip-bootstrap) plus
    `aws:region`, as the engine passes them to the program (values are strings; objects arrive
    JSON-encoded)."""
    merged: dict[str, Any] = dict(runtime_config.get_config_env())
    merged.update(runtime_config.CONFIG.get())
    return {k: v for k, v in merged.items() if k.startswith(project + ":") or k == REGION_KEY}


SECRET_KEYS = {"loadTestBypassToken", "dmsSourcePassword", "nasRedisPassword", "nasAppDbPassword", "ghcrToken"}
STAGE_NAME = re.compile(r"[a-z][a-z0-9-]{0,18}[a-z0-9]")


def _decode(value: Any) -> Any:
    """Pulumi hands config values to programs as strings; objects arrive JSON-encoded."""
    if not isinstance(value, str):
        return value
    try:
        return json.loads(value)
    except ValueError:
        return value


def read_namespace(
    raw: dict[str, Any], project: str, allowed: list[str], undecoded: frozenset[str] | set[str] = frozenset()
) -> tuple[dict[str, Any], list[str]]:
    """The `<project>:<key>` values (decoded, but the `undecoded` ones) and `aws:region` of a raw
    config, and an `unknown key` line per key not in `allowed`. Other namespaces (aws:*,
    pulumi:*) belong to providers and the engine."""
    data: dict[str, Any] = {}
    lines: list[str] = []
    prefix = project + ":"
    for key, value in raw.items():
        if key == REGION_KEY:
            data[REGION_KEY] = value
        elif key.startswith(prefix):
            name = key[len(prefix) :]
            if name not in allowed:
                lines.append(f"error: {key}: unknown key; allowed keys: {', '.join(allowed)}")
                continue
            data[name] = value if name in undecoded else _decode(value)
    return data, lines


def load_stack_config(stack: str, raw: dict[str, Any]) -> StackConfig:
    """Validate the raw `key -> value` config of `stack`; raise ConfigError listing every problem."""
    lines: list[str] = []
    if not STAGE_NAME.fullmatch(stack):
        lines.append(f"error: stack: {stack!r} must be 2-20 chars of a-z, 0-9 and '-', starting with a letter (it prefixes resource names)")
    values, unknown = read_namespace(raw, PROJECT, sorted(_top_level_keys()), SECRET_KEYS)
    data: dict[str, Any] = {"stage": stack, **values}
    lines += unknown
    if lines:
        raise ConfigError(lines)
    try:
        # Sections validate against the stage's region and data protection, so
        # cross-key problems are reported in the same pass as everything else.
        context = {"region": data.get(REGION_KEY), "protect_data": str(data.get("protectData", "")).lower() == "true"}
        return StackConfig.model_validate(data, context=context)
    except ValidationError as exc:
        raise ConfigError(_format_errors(exc)) from None


def _top_level_keys() -> set[str]:
    return {f.alias or name for name, f in StackConfig.model_fields.items() if name not in ("stage", "region")}


def _key_path(loc: tuple[Any, ...]) -> str:
    if not loc:
        return PROJECT
    head, *rest = (part for part in loc if part != "[key]")  # pydantic marks dict-key errors with "[key]"
    key = REGION_KEY if head == REGION_KEY else f"{PROJECT}:{head}"
    return ".".join([key, *map(str, rest)])


def _format_errors(exc: ValidationError) -> list[str]:
    lines: list[str] = []
    for err in exc.errors(include_url=False):
        loc = tuple(err["loc"])
        ctx_error = (err.get("ctx") or {}).get("error")
        if isinstance(ctx_error, _MultiProblem):
            for problem in ctx_error.problems:
                path, _, msg = problem.partition(": ")
                lines.append(f"error: {_key_path(loc + tuple(path.split('.')))}: {msg}")
            continue
        if err["type"] == "extra_forbidden":
            allowed = _allowed_keys(loc[:-1])
            hint = f"; allowed keys: {', '.join(allowed)}" if allowed else ""
            lines.append(f"error: {_key_path(loc)}: unknown key{hint}")
            continue
        if err["type"] == "missing":
            lines.append(f"error: {_key_path(loc)}: required key is missing")
            continue
        msg = err["msg"]
        if err["type"] == "value_error":
            msg = msg.removeprefix("Value error, ")
            # A model validator names the offending field first ("cidr: ..."): fold it into the path.
            field, sep, rest = msg.partition(": ")
            if sep and re.fullmatch(r"[A-Za-z0-9_.]+(, [A-Za-z0-9_.]+)*", field) and " " not in field.replace(", ", ""):
                if "," not in field:
                    loc = loc + tuple(field.split("."))
                    msg = rest
        lines.append(f"error: {_key_path(loc)}: {msg}")
    return lines


def _allowed_keys(loc: tuple[Any, ...]) -> list[str]:
    """The keys the model at `loc` accepts (for 'unknown key' messages)."""
    model: Any = StackConfig
    for part in loc:
        model = _unwrap(model)
        if isinstance(model, type) and issubclass(model, BaseModel):
            field = next((f for n, f in model.model_fields.items() if (f.alias or n) == part), None)
            if field is None:
                return []
            model = field.annotation
        elif get_origin(model) in (list, dict):
            model = get_args(model)[-1]
        else:
            return []
    model = _unwrap(model)
    if get_origin(model) in (list, dict):
        model = _unwrap(get_args(model)[-1])
    if isinstance(model, type) and issubclass(model, BaseModel):
        return sorted(f.alias or n for n, f in model.model_fields.items() if n not in ("stage", "region"))
    return []


def _unwrap(tp: Any) -> Any:
    while True:
        origin = get_origin(tp)
        if origin is Annotated:
            tp = get_args(tp)[0]
        elif origin is Union or str(origin) == "types.UnionType":
            args = [a for a in get_args(tp) if a is not type(None)]
            tp = args[0] if len(args) == 1 else tp
            if len(args) != 1:
                return tp
        else:
            return tp
