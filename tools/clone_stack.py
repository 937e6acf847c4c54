"""`clone-stack`: a new, ephemeral stage from a template stage's stack file.

`clone_stack("dev", "qa", stacks_dir)` reads `stacks/Pulumi.dev.yaml`, gives the clone
the lowest free VPC block at or above 10.50.0.0/16 (free = overlapping no stack's
`network.cidr`, no `migration.nasLanCidr` and no reserved range), its own subdomain
`qa.<template domain>`, and the ephemeral defaults (nothing protected, one NAT gateway,
single-AZ database without replicas, no deletion protection, edge open only to the
template's allow-list, `ttlDays`). The result is validated with `load_stack_config`
before a single byte is written; nothing is written on any error.

No pulumi import here: the command stays fast and works without the Pulumi CLI.
"""

from __future__ import annotations

import datetime
import ipaddress
import json
import re
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from components.config import PROJECT, RESERVED_RANGES, nlb_listeners
from components.config_loader import STAGE_NAME, ConfigError, load_stack_config
from tools.stackfile import StackFileError, has_secure, load_stack_file

DEFAULT_TTL_DAYS = 7
SNAPSHOT = re.compile(r"latest|(rds:)?[a-zA-Z][a-zA-Z0-9-]{0,254}")
MIN_TTL_DAYS, MAX_TTL_DAYS = 1, 90  # the range `ttlDays` accepts in components/config.py
# Clones take blocks from here upwards; the hand-made stages live below (10.20, 10.30, 10.40).
SEARCH_START = ipaddress.IPv4Network("10.50.0.0/16")
SEARCH_SPACE = ipaddress.IPv4Network("10.0.0.0/8")

NS = PROJECT + ":"
# The clone's CI roles and secrets key: voip-bootstrap's `review` stage (GitHub environment `review`).
REVIEW_ROLES = "review"


def clone_secrets_provider(region: str) -> str:
    return f"awskms://alias/voip-infra-{REVIEW_ROLES}-secrets?region={region}"


# Secrets only the NAS bridge reads (the clone drops the `migration` section).
BRIDGE_ONLY_SECRETS = frozenset({NS + "dmsSourcePassword", NS + "nasRedisPassword", NS + "nasAppDbPassword"})


class CloneError(Exception):
    """The clone cannot be made; `lines` are ready to print (`error: ...`), nothing was written."""

    def __init__(self, lines: list[str]):
        super().__init__("\n".join(lines))
        self.lines = lines


@dataclass(frozen=True)
class CloneResult:
    path: Path
    template: str
    stage: str
    cidr: ipaddress.IPv4Network
    domain: str
    parent_domain: str
    ttl_days: int
    created: datetime.date
    notes: list[str] = field(default_factory=list)

    @property
    def expires(self) -> datetime.date:
        return self.created + datetime.timedelta(days=self.ttl_days)


# --------------------------------------------------------------------------- CIDRs


def _section(config: dict[str, Any], name: str) -> dict[str, Any]:
    """A `voip-infra:<name>` object of a parsed stack file (a YAML mapping or a JSON string)."""
    value = config.get(NS + name)
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return {}
    return value if isinstance(value, dict) else {}


def _read_doc(path: Path) -> dict[str, Any]:
    try:
        doc = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise CloneError([f"error: {path}: no such stack file"]) from None
    except yaml.YAMLError as exc:
        raise CloneError([f"error: {path}: not valid YAML ({exc})".replace("\n", " ")]) from None
    if not isinstance(doc, dict) or not isinstance(doc.get("config"), dict):
        raise CloneError([f"error: {path}: expected a mapping with a 'config' mapping"])
    return doc


def used_ranges(stacks_dir: Path) -> list[tuple[ipaddress.IPv4Network, str]]:
    """Every range a new VPC must not overlap, with where it comes from.

    A stack file whose ranges cannot be read stops the clone: a CIDR cannot be called
    free while one stage's range is unknown.
    """
    used: list[tuple[ipaddress.IPv4Network, str]] = [(r, "reserved for LANs reached over VPN") for r in RESERVED_RANGES]
    files = sorted({*stacks_dir.glob("Pulumi.*.yaml"), *stacks_dir.glob("Pulumi.*.yml")})
    for path in files:
        config = _read_doc(path)["config"]
        for section, key in (("network", "cidr"), ("migration", "nasLanCidr")):
            value = _section(config, section).get(key)
            if value is None:
                continue
            try:
                net = ipaddress.IPv4Network(str(value), strict=False)
            except ValueError:
                raise CloneError([f"error: {path}: {NS}{section}.{key}: {value!r} is not an IPv4 CIDR; fix it before cloning"]) from None
            used.append((net, f"{path.name} {section}.{key}"))
    return used


def free_cidr(
    prefixlen: int,
    used: Iterable[ipaddress.IPv4Network],
    start: ipaddress.IPv4Network = SEARCH_START,
    space: ipaddress.IPv4Network = SEARCH_SPACE,
) -> ipaddress.IPv4Network | None:
    """The lowest block of `prefixlen` in `space`, at or above `start`, overlapping nothing in `used`."""
    used = list(used)
    if prefixlen < space.prefixlen:
        return None
    for candidate in space.subnets(new_prefix=prefixlen):
        if candidate.network_address < start.network_address:
            continue
        if not any(candidate.overlaps(u) for u in used):
            return candidate
    return None


# --------------------------------------------------------------------------- clone


def _check_name(what: str, name: str) -> None:
    # The rule of load_stack_config: the name prefixes every resource name (and a file path here).
    if not STAGE_NAME.fullmatch(name):
        raise CloneError(
            [f"error: {what}: {name!r} must be 2-20 chars of a-z, 0-9 and '-', starting with a letter (it prefixes resource names)"]
        )


def clone_config(
    template: str,
    config: dict[str, Any],
    stage: str,
    cidr: ipaddress.IPv4Network,
    ttl_days: int,
    template_path: Path,
    snapshot: str | None = None,
) -> tuple[dict[str, Any], str, str, list[str]]:
    """The clone's `config` mapping, its domain, the parent domain and notes for the user."""
    notes: list[str] = []
    out_other: dict[str, Any] = {}
    out_ns: dict[str, Any] = {}
    for key, value in config.items():
        key = str(key)
        if has_secure(value):
            # Secrets are encrypted with the template stack's key: the clone cannot decrypt them.
            if key in BRIDGE_ONLY_SECRETS:
                notes.append(f"dropped secret {key} (only the NAS bridge uses it, and a clone has none)")
            else:
                notes.append(
                    f"dropped secret {key} (encrypted for stack {template}); set it again with `pulumi config set --secret {key} ... --stack {stage}`"
                )
            continue
        if key.startswith(NS):
            out_ns[key[len(NS) :]] = value
        else:
            out_other[key] = value  # aws:region, pulumi:disable-default-providers, other providers' keys

    sections = {
        name: dict(_section(config, name)) for name in ("network", "edge", "cluster", "database", "cache", "storage", "turn", "monitoring")
    }

    network = sections["network"]
    network["cidr"] = str(cidr)
    # The cheapest egress (a NAT instance, ~$8 against $47 a month); the sleep schedule, if the
    # template has one, is inherited as is.
    network["natStrategy"] = "instance"
    # Ephemeral: two weeks of flow logs at most (whatever the destination).
    network["flowLogsRetentionDays"] = min(int(network.get("flowLogsRetentionDays", 30)), 14)

    edge = sections["edge"]
    template_domain = edge.get("domain")
    if not template_domain:
        raise CloneError([f"error: {template_path}: {NS}edge.domain: the template has no domain to derive the clone's from"])
    domain = f"{stage}.{template_domain}"
    edge["domain"] = domain
    # The clone creates its own zone for its subdomain and delegates it from the template's zone
    # itself (edge.delegateFrom): nothing to do by hand, and the NS record goes with `destroy`.
    edge.pop("hostedZoneId", None)
    edge.pop("existingZone", None)
    edge["delegateFrom"] = template_domain
    if not edge.get("allowList"):
        raise CloneError(
            [
                f"error: {template_path}: {NS}edge.allowList: the template has no allow-list; a clone is open only to it "
                "(restrictToAllowList: true). Add your office/VPN ranges to the template's edge.allowList "
                "(it changes nothing there while its restrictToAllowList is false) and clone again"
            ]
        )
    edge["restrictToAllowList"] = True
    edge["albDeletionProtection"] = False
    # A new stage has no live ALB to move: the secure default (internal, behind a VPC origin),
    # whatever scheme the template's live ALB keeps until its planned move.
    edge.pop("albScheme", None)
    if not nlb_listeners(edge.get("signalingEntry", "nlb"), sections["turn"].get("tlsEntry", "nlb")):
        # No NLB in the template: its keys would be refused (StackConfig._nlb_problems).
        edge.pop("nlbDeletionProtection", None)
        edge.pop("nlbStaticIps", None)
    else:
        edge["nlbDeletionProtection"] = False
        edge["nlbStaticIps"] = False
    if edge.get("loadTestBypass") and "loadTestBypassToken" not in out_ns:
        edge["loadTestBypass"] = False
        notes.append(
            f"edge.loadTestBypass turned off (its token is a secret of {template}); to load-test through the WAF: "
            f"`pulumi config set --secret {NS}loadTestBypassToken ... --stack {stage}` and set edge.loadTestBypass: true"
        )

    # CI reaches it as a review stack: the `review` roles of voip-bootstrap, which also create it.
    cluster = sections["cluster"]
    cluster["access"] = {**dict(cluster.get("access") or {}), "ciRoles": REVIEW_ROLES, "creator": "ci"}

    database = sections["database"]
    if snapshot is not None:
        if not database.get("snapshotsForClones"):
            raise CloneError(
                [
                    f"error: --snapshot: {template} does not share its snapshots with clones "
                    f"({template_path.name}: {NS}database.snapshotsForClones is not true). Real data leaving a stage is a decision "
                    f"for that stage: set snapshotsForClones: true there (and merge it) first, or clone without --snapshot"
                ]
            )
        database["restoreFrom"] = {"stage": template, "snapshot": snapshot, "engineVersion": str(database.get("engineVersion", "16"))}
        notes.extend(
            [
                f"database: restored from {template}'s snapshot ({snapshot}) with its data, master user and KMS key "
                f"({template}'s data key, which RDS keeps on a restore); the master password is re-set (write-only) to the clone's own",
                "not copied: Redis (the cache groups start empty: sessions, pub/sub and streams state), the file bucket's objects, "
                "secrets, TURN credentials, Prometheus history",
            ]
        )
    database.pop("snapshotsForClones", None)  # a clone's data is a copy: it never seeds further clones
    database["multiAz"] = False
    database["readReplicas"] = 0
    database.pop("replicaInstanceClass", None)
    database["skipFinalSnapshot"] = True
    database["backupRetentionDays"] = 1

    cache = sections["cache"]
    groups = cache.get("groups")
    if isinstance(groups, dict):
        cache["groups"] = {name: {**(group or {}), "replicas": 0} for name, group in groups.items()}

    sections["storage"]["forceDestroy"] = True

    turn = sections["turn"]
    turn["nodeCount"] = 1
    if "realm" in turn:
        # A fixed realm names the template's TURN host; the default turn.<clone domain> fits the clone.
        realm = turn.pop("realm")
        notes.append(f"dropped turn.realm {realm!r}: the clone uses turn.{domain}")

    # The external WebSocket check runs from AWS's addresses, which the clone's allow-list blocks.
    sections["monitoring"]["canary"] = {**dict(sections["monitoring"].get("canary") or {}), "enabled": False}
    # Nobody is paged for a clone: its critical alarms go to the warning recipients' topic only.
    notifications = dict(_section(config, "notifications"))
    if notifications.get("criticalEmails") or notifications.get("slack"):
        notifications.pop("criticalEmails", None)
        notifications.pop("slack", None)
        notes.append("dropped notifications.criticalEmails and .slack: a clone pages nobody (warningEmails kept)")
    if notifications:
        sections["notifications"] = notifications
    else:
        out_ns.pop("notifications", None)

    if "migration" in out_ns:
        notes.append("dropped migration: a clone never bridges the NAS")
    out_ns.pop("migration", None)
    out_ns.pop("ttlDays", None)
    out_ns.pop("protectData", None)
    for name, section in sections.items():
        out_ns[name] = section

    # Same order as the hand-written files: providers, who pays, protection, then the sections.
    ordered: dict[str, Any] = dict(out_other)
    for key in ("owner", "costCenter"):
        if key in out_ns:
            ordered[NS + key] = out_ns.pop(key)
    ordered[NS + "protectData"] = False
    ordered[NS + "ttlDays"] = ttl_days
    template_order = [str(k)[len(NS) :] for k in config if str(k).startswith(NS)]
    for key in sorted(out_ns, key=lambda k: template_order.index(k) if k in template_order else len(template_order)):
        ordered[NS + key] = out_ns[key]
    return ordered, domain, template_domain, notes


class _Block(dict):
    """A section mapping: always block style, like the hand-written files (leaves stay flow style)."""


class _Dumper(yaml.SafeDumper):
    pass


_Dumper.add_representer(_Block, lambda dumper, data: dumper.represent_mapping("tag:yaml.org,2002:map", data.items(), flow_style=False))


def _dump(doc: dict[str, Any]) -> str:
    return yaml.dump(doc, Dumper=_Dumper, sort_keys=False, default_flow_style=None, width=120, allow_unicode=True)


def _header(template: str, stage: str, ttl_days: int, today: datetime.date, cidr: ipaddress.IPv4Network, domain: str, parent: str) -> str:
    expires = today + datetime.timedelta(days=ttl_days)
    return "\n".join(
        [
            f"# {stage}: cloned from {template} by `python -m tools clone-stack --from {template} --to {stage}` on {today.isoformat()}.",
            f"# Ephemeral: ttlDays {ttl_days} (tag ttl-days on every resource; due for tear-down on {expires.isoformat()}),",
            "# nothing protected, one NAT gateway, single-AZ database without replicas, edge open to the allow-list only.",
            f"# network.cidr {cidr}: the lowest block from {SEARCH_START} free of every stack, NAS LAN and reserved range.",
            f"# edge.domain {domain}: a zone of its own, delegated from {parent}'s zone by the stack itself (edge.delegateFrom).",
            "# Bring up (secrets under voip-bootstrap's review key; CI: review-stack.yml does all of this):",
            f'#   pulumi stack init {stage} --secrets-provider "{clone_secrets_provider("ap-northeast-2")}"',
            f"#   pulumi up --stack {stage}",
            "# Tear down:",
            f"#   pulumi destroy --stack {stage}",
            f"#   pulumi stack rm {stage}   # then delete this file (stacks/Pulumi.{stage}.yaml)",
            "",
        ]
    )


def clone_stack(
    template: str,
    stage: str,
    stacks_dir: Path,
    ttl_days: int = DEFAULT_TTL_DAYS,
    *,
    snapshot: str | None = None,
    today: datetime.date | None = None,
    search_start: ipaddress.IPv4Network = SEARCH_START,
    search_space: ipaddress.IPv4Network = SEARCH_SPACE,
) -> CloneResult:
    """Write `<stacks_dir>/Pulumi.<stage>.yaml` from `Pulumi.<template>.yaml`; raise CloneError (nothing written)."""
    _check_name("--from", template)
    _check_name("--to", stage)
    if not MIN_TTL_DAYS <= ttl_days <= MAX_TTL_DAYS:
        raise CloneError([f"error: --ttl-days: {ttl_days} is outside {MIN_TTL_DAYS}..{MAX_TTL_DAYS}"])
    target = stacks_dir / f"Pulumi.{stage}.yaml"
    if target.exists():
        raise CloneError([f"error: {target}: already exists; pick another --to, or tear that stage down first"])
    template_path = stacks_dir / f"Pulumi.{template}.yaml"
    doc = _read_doc(template_path)

    prefixlen = ipaddress.IPv4Network(str(_section(doc["config"], "network").get("cidr", "10.0.0.0/16")), strict=False).prefixlen
    used = used_ranges(stacks_dir)
    cidr = free_cidr(prefixlen, (u for u, _ in used), search_start, search_space)
    if cidr is None:
        raise CloneError(
            [
                f"error: no free /{prefixlen} in {search_space} at or above {search_start}: every block overlaps a stack's "
                "network.cidr, a NAS LAN or a reserved range; tear down an old clone first"
            ]
        )

    if snapshot is not None and not SNAPSHOT.fullmatch(snapshot):
        raise CloneError(
            [
                f"error: --snapshot: {snapshot!r} is not 'latest' nor an RDS snapshot identifier (e.g. rds:{template}-postgres-2026-11-28-17-05)"
            ]
        )
    config, domain, parent, notes = clone_config(template, doc["config"], stage, cidr, ttl_days, template_path, snapshot)
    extra = sorted(str(k) for k in doc if k not in ("config", "secretsprovider"))
    if extra:
        # encryptionsalt / encryptedkey belong to the template stack; `pulumi stack init` makes the clone's.
        notes.append(f"not copied: {', '.join(extra)} (per-stack secrets settings; `pulumi stack init {stage}` creates its own)")
    today = today or datetime.date.today()
    region = str(config.get("aws:region", "ap-northeast-2"))
    body = _dump(
        {
            "secretsprovider": clone_secrets_provider(region),
            "config": {k: _Block(v) if isinstance(v, dict) else v for k, v in config.items()},
        }
    )
    text = _header(template, stage, ttl_days, today, cidr, domain, parent) + body

    # Validate the exact bytes that will be written, read back the way `tools plan` reads them.
    with tempfile.TemporaryDirectory() as tmp:
        probe = Path(tmp) / target.name
        probe.write_text(text)
        try:
            raw, _secrets = load_stack_file(probe)
            load_stack_config(stage, raw)
        except ConfigError as exc:
            raise CloneError([f"error: the clone of {template} would not validate, nothing written:", *exc.lines]) from None
        except StackFileError as exc:
            raise CloneError([str(exc)]) from None

    try:
        with target.open("x") as fh:  # "x": never overwrite a file that appeared meanwhile
            fh.write(text)
    except FileExistsError:
        raise CloneError([f"error: {target}: already exists; pick another --to, or tear that stage down first"]) from None
    return CloneResult(target, template, stage, cidr, domain, parent, ttl_days, today, notes)


def render(result: CloneResult) -> str:
    s = result.stage
    lines = [
        f"wrote {result.path} (from {result.template})",
        f"  network.cidr: {result.cidr}",
        f"  edge.domain:  {result.domain} (own zone, delegated from {result.parent_domain} by the stack)",
        f"  ttlDays:      {result.ttl_days} (tear down by {result.expires.isoformat()})",
        *(f"  note: {n}" for n in result.notes),
        f'bring up:  pulumi stack init {s} --secrets-provider "{clone_secrets_provider("ap-northeast-2")}" && pulumi up --stack {s}',
        f"tear down: pulumi destroy --stack {s} && pulumi stack rm {s} && rm {result.path}",
    ]
    return "\n".join(lines)
