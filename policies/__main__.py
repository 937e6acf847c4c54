"""The CrossGuard policy pack: `pulumi preview --policy-pack policies` runs this file.

Constructing PolicyPack starts the analyzer's gRPC server and blocks, so it happens here only;
the rules live in rules.py (importable, no side effects) and `python -m tools policy` runs them
over a plan file offline.
"""

from pulumi_policy import PolicyPack

try:  # run by the Pulumi CLI as a script from this directory
    from rules import ALL_POLICIES, PACK_ENFORCEMENT_LEVEL, PROJECT, level_for
except ImportError:  # imported as the `policies` package from the repo root
    from policies.rules import ALL_POLICIES, PACK_ENFORCEMENT_LEVEL, PROJECT, level_for


def _apply_stage_levels() -> None:
    """Levels per stage (rules.level_for): the stack config the CLI hands the pack says whether
    the stage holds data and which rules it overrides (`voip-infra:policy.levels`). Without a
    stack config every rule keeps its own level (the data-stage level: the strict one)."""
    try:
        import pulumi

        cfg = pulumi.Config(PROJECT)
        protect = bool(cfg.get_bool("protectData"))
        overrides = (cfg.get_object("policy") or {}).get("levels") or {}
    except Exception:  # no stack config available
        return
    for policy in ALL_POLICIES:
        policy.enforcement_level = level_for(policy, protect, overrides)


_apply_stage_levels()

PolicyPack(
    name="voip-infra-policies",
    description="voip-infra baseline: encryption, no public data stores, least exposure, data protection, cost tags.",
    enforcement_level=PACK_ENFORCEMENT_LEVEL,
    policies=ALL_POLICIES,
)
