"""voip-infra: the Pulumi program. Thin on purpose: validate the stack config, build
the Platform, export its outputs. Everything else lives in components/."""

import pulumi

from components.config_loader import ConfigError, load_stack_config, raw_stack_config
from components.platform import Platform

try:
    config = load_stack_config(pulumi.get_stack(), raw_stack_config())
except ConfigError as exc:
    # RunError: the engine prints the message without a Python traceback, and
    # nothing has been registered yet.
    for line in exc.lines:
        pulumi.log.error(line)
    raise pulumi.RunError("invalid stack config:\n" + "\n".join(exc.lines)) from None

platform = Platform(config)
for name, value in platform.outputs.items():
    pulumi.export(name, value)
