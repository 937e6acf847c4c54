"""Reading `stacks/Pulumi.<stack>.yaml` the way the Pulumi engine hands it to a program."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
STACKS = ROOT / "stacks"


class StackFileError(Exception):
    pass


def stack_path(stack: str) -> Path:
    return STACKS / f"Pulumi.{stack}.yaml"


def _engine_value(value: Any) -> str:
    # The engine passes scalars as strings and objects/arrays JSON-encoded.
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dict, list)):
        return json.dumps(value)
    if value is None:
        return ""
    return str(value)


def has_secure(value: Any) -> bool:
    if isinstance(value, dict):
        return set(value) == {"secure"} or any(has_secure(v) for v in value.values())
    if isinstance(value, list):
        return any(has_secure(v) for v in value)
    return False


def _stub_secure(value: Any, key: str) -> Any:
    """Encrypted values cannot be read offline: stand in a placeholder (kept secret)."""
    if isinstance(value, dict):
        if set(value) == {"secure"}:
            return f"offline-placeholder-for-{key}"
        return {k: _stub_secure(v, key) for k, v in value.items()}
    if isinstance(value, list):
        return [_stub_secure(v, key) for v in value]
    return value


def load_stack_file(path: Path) -> tuple[dict[str, str], list[str]]:
    """Return (raw config in engine format, secret keys) of a stack file."""
    try:
        doc = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise StackFileError(f"error: {path}: no such stack file") from None
    except yaml.YAMLError as exc:
        raise StackFileError(f"error: {path}: not valid YAML ({exc})".replace("\n", " ")) from None
    doc = doc or {}
    if not isinstance(doc, dict) or not isinstance(doc.get("config", {}), dict):
        raise StackFileError(f"error: {path}: expected a mapping with a 'config' mapping")
    raw: dict[str, str] = {}
    secret_keys: list[str] = []
    for key, value in (doc.get("config") or {}).items():
        if has_secure(value):
            secret_keys.append(key)
            value = _stub_secure(value, key)
        raw[str(key)] = _engine_value(value)
    return raw, secret_keys


def unset_required_secrets(stack: str, raw: dict[str, str]) -> list[str]:
    """The secret keys (`voip-infra:<key>`) the stage requires but its file does not set: the
    ones whose absence alone makes the config invalid. Empty when nothing is missing."""
    from components.config import PROJECT
    from components.config_loader import SECRET_KEYS, ConfigError, load_stack_config

    try:
        load_stack_config(stack, raw)
        return []
    except ConfigError as exc:
        lines = exc.lines
    unset = sorted(f"{PROJECT}:{k}" for k in SECRET_KEYS if f"{PROJECT}:{k}" not in raw)
    return [key for key in unset if any(line.startswith(f"error: {key}:") for line in lines)]


def set_secret_command(stack: str, key: str) -> str:
    return f"pulumi config set --secret {key} --stack {stack}"


def with_offline_secrets(stack: str, raw: dict[str, str], secret_keys: list[str]) -> tuple[dict[str, str], list[str], list[str]]:
    """For offline plans only: stand a placeholder in for each required secret the file does not
    set yet (kept secret), so the program can still be planned. Returns (raw, secret keys, the
    stood-in keys). `pulumi preview/up` get no such help: they stop with the config error."""
    unset = unset_required_secrets(stack, raw)
    if not unset:
        return raw, secret_keys, []
    filled = dict(raw)
    for key in unset:
        filled[key] = f"offline-placeholder-for-{key}"
    return filled, [*secret_keys, *unset], unset
