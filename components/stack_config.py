"""Reading the raw stack config the Pulumi engine hands the program."""

from __future__ import annotations

from typing import Any

from pulumi.runtime import config as runtime_config

from components.config import PROJECT, REGION_KEY


def raw_stack_config(project: str = PROJECT) -> dict[str, Any]:
    """Every key of the project namespace plus `aws:region`, as the engine passes them
    (values are strings; objects arrive JSON-encoded)."""
    merged: dict[str, Any] = dict(runtime_config.get_config_env())
    merged.update(runtime_config.CONFIG.get())
    return {k: v for k, v in merged.items() if k.startswith(project + ":") or k == REGION_KEY}
