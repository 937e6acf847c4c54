"""The CrossGuard policy pack: `pulumi preview --policy-pack policies` runs this file.

Constructing PolicyPack starts the analyzer's gRPC server and blocks, so it happens here only;
the rules live in rules.py (importable, no side effects) and `python -m tools policy` runs them
over a plan file offline.
"""

from pulumi_policy import PolicyPack

try:  # run by the Pulumi CLI as a script from this directory
    from rules import ALL_POLICIES, PACK_ENFORCEMENT_LEVEL
except ImportError:  # imported as the `policies` package from the repo root
    from policies.rules import ALL_POLICIES, PACK_ENFORCEMENT_LEVEL

PolicyPack(
    name="voip-infra-policies",
    description="voip-infra baseline: encryption, no public data stores, least exposure, data protection, cost tags.",
    enforcement_level=PACK_ENFORCEMENT_LEVEL,
    policies=ALL_POLICIES,
)
