"""The voip-infra CrossGuard rules, as importable code (no side effects: `__main__.py` builds the pack).

Each policy sees what `pulumi preview --policy-pack policies` hands it: engine (camelCase) input
names, values wrapped so that reading an unknown (computed during preview) raises
`UnknownValueError`. `python -m tools policy --plan PLAN.json` builds the same argument objects from
a plan file (tools/policy.py), so the rules run unchanged in CI and offline.

Config the rules read (policy config, `--policy-pack-config`, or given by `tools policy` from the plan):
- `protectData` (bool): the stage holds data (the stack's `voip-infra:protectData`). Under the CLI,
  when no policy config is given, the stack config handed to the analyzer is read instead.
- `secretsRedacted` (bool): values were redacted to "[secret]" where they are secrets (plan files),
  so a plain value in a secret field means the program forgot to mark it secret.
- `publicIngressAllowList` (list of {protocol, fromPort, toPort}): the ports this design opens to
  the internet on purpose (default: TURN's listening port and relay range, the NLB's 443 and 5349).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

try:  # imported as the `policies` package; the CLI runs the pack from this directory
    from policies.secret_scan import decode_user_data, scan_text, scan_value
except ImportError:  # pragma: no cover
    from secret_scan import decode_user_data, scan_text, scan_value  # type: ignore[no-redef]

from pulumi_policy import (
    EnforcementLevel,
    PolicyConfigSchema,
    PolicyResource,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
    StackValidationPolicy,
)

MANDATORY = EnforcementLevel.MANDATORY
ADVISORY = EnforcementLevel.ADVISORY
PACK_ENFORCEMENT_LEVEL = MANDATORY  # the pack default; every policy below also states its own level
PROJECT = "voip-infra"
SECRET_MARKER = "[secret]"

# The only internet-facing ingress this design opens on purpose (protocol, fromPort, toPort).
# The pack's fallback when run without config; `tools policy` passes the stage's own list, built
# from the plan's config by components/ports.py (tests/test_wiring.py keeps the two equal).
DEFAULT_PUBLIC_INGRESS = (
    {"protocol": "udp", "fromPort": 3478, "toPort": 3478},  # TURN/STUN listening port
    {"protocol": "tcp", "fromPort": 3478, "toPort": 3478},  # TURN over TCP
    {"protocol": "udp", "fromPort": 49152, "toPort": 65535},  # TURN relay range
    {"protocol": "tcp", "fromPort": 443, "toPort": 443},  # NLB: WebSocket signaling over TLS
    {"protocol": "tcp", "fromPort": 5349, "toPort": 5349},  # NLB: TURNS
)
ADMIN_PORTS = {22: "SSH", 3389: "RDP"}
REQUIRED_EKS_LOGS = ("api", "audit", "authenticator")
CLOUDFRONT_MIN_TLS = ("TLSv1.2_2021", "TLSv1.2_2025", "TLSv1.3_2025")
REQUIRED_TAGS = ("stage", "project", "owner", "cost-center")
BACKUP_DAYS_DATA_STAGE = 7  # point-in-time recovery window where the stage holds data
BACKUP_DAYS_SCRATCH_STAGE = 1  # stages declared data-free (protectData false): backups stay on

CONFIG_SCHEMA = PolicyConfigSchema(
    properties={
        "protectData": {"type": "boolean"},
        "enforcementLevels": {"type": "object"},
        "wafExceptions": {"type": "array", "items": {"type": "object"}},
        "exceptions": {"type": "array", "items": {"type": "object"}},
        "resourceIds": {"type": "object"},
        "secretsRedacted": {"type": "boolean"},
        "publicIngressAllowList": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {"protocol": {"type": "string"}, "fromPort": {"type": "integer"}, "toPort": {"type": "integer"}},
            },
        },
    }
)

RDS_INSTANCE = ("aws:rds/instance:Instance",)
REDIS_GROUP = ("aws:elasticache/replicationGroup:ReplicationGroup",)
BUCKETS = ("aws:s3/bucket:Bucket", "aws:s3/bucketV2:BucketV2")
PUBLIC_ACCESS_BLOCK = ("aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock",)
BUCKET_SSE = (
    "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration",
    "aws:s3/bucketServerSideEncryptionConfigurationV2:BucketServerSideEncryptionConfigurationV2",
)
SECURITY_GROUPS = ("aws:ec2/securityGroup:SecurityGroup", "aws:ec2/defaultSecurityGroup:DefaultSecurityGroup")
SG_RULE = "aws:ec2/securityGroupRule:SecurityGroupRule"
SG_INGRESS_RULE = "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule"
INSTANCE = "aws:ec2/instance:Instance"
LAUNCH_TEMPLATE = "aws:ec2/launchTemplate:LaunchTemplate"
EBS_DEFAULT_ENCRYPTION = "aws:ebs/encryptionByDefault:EncryptionByDefault"
EKS_CLUSTER = ("aws:eks/cluster:Cluster",)
DISTRIBUTION = ("aws:cloudfront/distribution:Distribution",)
VPC_ORIGIN = ("aws:cloudfront/vpcOrigin:VpcOrigin",)
LOAD_BALANCER = ("aws:lb/loadBalancer:LoadBalancer", "aws:alb/loadBalancer:LoadBalancer")
LISTENER = ("aws:lb/listener:Listener", "aws:alb/listener:Listener")
KMS_KEY = ("aws:kms/key:Key",)
LOG_GROUP = ("aws:cloudwatch/logGroup:LogGroup",)
EIP = "aws:ec2/eip:Eip"
NAT_GATEWAY = "aws:ec2/natGateway:NatGateway"
ZONE = "aws:route53/zone:Zone"
AWS_PROVIDER = "pulumi:providers:aws"


# ------------------------------------------------------------------ helpers


def _has(props: Mapping[str, Any], key: str) -> bool:
    """Whether `key` is set, without reading its value (reading an unknown raises during preview)."""
    return any(k == key for k in props)


def _known(props: Mapping[str, Any], key: str) -> Any:
    """`props[key]`, or None when unset or unknown during preview (cross references fall back to dependencies)."""
    try:
        return props.get(key)
    except Exception:  # UnknownValueError
        return None


def _true(value: Any) -> bool:
    """Booleans arrive as bools, or as strings in a few nested provider types (`encrypted: "true"`)."""
    return value is True or (isinstance(value, str) and value.lower() == "true")


def _seq(value: Any) -> list[Any]:
    return list(value) if isinstance(value, Sequence) and not isinstance(value, str) else []


def _map(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _config(args: ResourceValidationArgs | StackValidationArgs) -> Mapping[str, Any]:
    return args.get_config() or {}


def _protect_data(args: ResourceValidationArgs | StackValidationArgs) -> bool | None:
    """The stage's protectData: policy config first, else the stack config the CLI hands the pack."""
    cfg = _config(args)
    if "protectData" in cfg:
        return bool(cfg["protectData"])
    try:
        import pulumi

        return pulumi.Config(PROJECT).get_bool("protectData")
    except Exception:  # no stack config available (not under the CLI): unknown
        return None


def _is_replica(props: Mapping[str, Any]) -> bool:
    return _has(props, "replicateSourceDb") and bool(props.get("replicateSourceDb"))


def _policy_list(args: ResourceValidationArgs | StackValidationArgs, key: str) -> list[Mapping[str, Any]]:
    """The stage's list `key` of argued exceptions: policy config first, else the stack config the
    CLI hands the pack (`voip-infra:policy.<key>`)."""
    cfg = _config(args)
    if key in cfg:
        return list(cfg[key] or [])
    try:
        import pulumi

        return list((pulumi.Config(PROJECT).get_object("policy") or {}).get(key) or [])
    except Exception:  # no stack config available
        return []


def _exceptions(args: ResourceValidationArgs | StackValidationArgs) -> list[Mapping[str, Any]]:
    """The stage's argued per-resource exceptions (`policy.exceptions`)."""
    return _policy_list(args, "exceptions")


def _excepted(rule: str, resource_name: str, exceptions: Iterable[Mapping[str, Any]]) -> bool:
    return any(
        e.get("rule") == rule and (resource_name == e.get("name") or resource_name.endswith(f"-{e.get('name')}")) for e in exceptions
    )


def _resource_policy(
    name: str, description: str, types: Sequence[str], level: EnforcementLevel, check: Callable
) -> ResourceValidationPolicy:
    """A ResourceValidationPolicy running `check(args, report)` on resources of `types` only
    (and not on a resource the stage lists in `policy.exceptions` for this rule)."""

    def validate(args: ResourceValidationArgs, report: ReportViolation) -> None:
        if args.resource_type in types and not _excepted(name, args.name, _exceptions(args)):
            check(args, report)

    return ResourceValidationPolicy(
        name=name, description=description, validate=validate, enforcement_level=level, config_schema=CONFIG_SCHEMA
    )


def _stack_policy(name: str, description: str, level: EnforcementLevel, check: Callable) -> StackValidationPolicy:
    """A StackValidationPolicy whose reports on resources the stage lists in `policy.exceptions`
    for this rule are dropped."""

    def validate(args: StackValidationArgs, report: ReportViolation) -> None:
        exceptions = [e for e in _exceptions(args) if e.get("rule") == name]

        def filtered(message: str, urn: str | None = None) -> None:
            if urn is None or not _excepted(name, urn.rsplit("::", 1)[-1], exceptions):
                report(message, urn)

        check(args, filtered if exceptions else report)

    return StackValidationPolicy(
        name=name, description=description, validate=validate, enforcement_level=level, config_schema=CONFIG_SCHEMA
    )


def _of(resources: Iterable[PolicyResource], types: Sequence[str] | str) -> list[PolicyResource]:
    types = (types,) if isinstance(types, str) else types
    return [r for r in resources if r.resource_type in types]


# ------------------------------------------------------------------ 1. RDS


def _rds_storage_encrypted(args: ResourceValidationArgs, report: ReportViolation) -> None:
    props = args.props
    if _is_replica(props) and not _has(props, "storageEncrypted"):
        return  # a replica inherits its source's encryption
    if not _true(props.get("storageEncrypted")):
        report("storage is not encrypted: set storage_encrypted=True with kms_key_id of the data key")


def _rds_not_public(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if _true(args.props.get("publiclyAccessible")):
        report("the instance is publicly accessible: set publicly_accessible=False (clients reach it through the VPC only)")


def _rds_master_password_out_of_state(args: ResourceValidationArgs, report: ReportViolation) -> None:
    """RDS-managed (Secrets Manager) or write-only from a secret: never a `password` kept in state.
    (RDS cannot create read replicas of an instance whose password it manages, hence `passwordWo`.)"""
    props = args.props
    if _has(props, "password"):
        report(
            "a master `password` is set (kept in the provider's state): use password_wo (write-only) or manage_master_user_password=True"
        )
    if _is_replica(props):
        return
    managed = _true(props.get("manageMasterUserPassword"))
    if not managed and not _has(props, "passwordWo"):
        report("no master password source: set manage_master_user_password=True, or password_wo from a random.RandomPassword (secret)")
    elif not managed:
        if _config(args).get("secretsRedacted") and props.get("passwordWo") != SECRET_MARKER:
            report("password_wo is a plain (non-secret) value: pass a secret Output (random.RandomPassword.result)")
        if not props.get("passwordWoVersion"):
            report("password_wo without password_wo_version: RDS never receives a changed password; set a version")


def _rds_backup_retention(args: ResourceValidationArgs, report: ReportViolation) -> None:
    props = args.props
    if _is_replica(props):
        return
    holds_data = bool(_protect_data(args)) or args.opts.protect
    minimum = BACKUP_DAYS_DATA_STAGE if holds_data else BACKUP_DAYS_SCRATCH_STAGE
    days = _int(props.get("backupRetentionPeriod"))
    if days is None or days < minimum:
        why = "the stage holds data" if holds_data else "automated backups must stay on"
        report(f"backup_retention_period is {days if days is not None else 'unset'}: keep at least {minimum} days ({why})")


def _rds_deletion_protection(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if args.opts.protect and not _true(args.props.get("deletionProtection")):
        report(
            "the instance is Pulumi-protected but deletion_protection is off: set deletion_protection=True so the console/API cannot drop it either"
        )


# ------------------------------------------------------------------ 2. ElastiCache


def _redis_encryption(args: ResourceValidationArgs, report: ReportViolation) -> None:
    props = args.props
    if not _true(props.get("transitEncryptionEnabled")):
        report("in-transit encryption is off: set transit_encryption_enabled=True (TLS)")
    elif _has(props, "transitEncryptionMode") and props.get("transitEncryptionMode") == "preferred":
        report("transit_encryption_mode is 'preferred' (plaintext still accepted): set it to 'required'")
    if not _true(props.get("atRestEncryptionEnabled")):
        report("at-rest encryption is off: set at_rest_encryption_enabled=True with kms_key_id of the data key")


def _redis_auth_token(args: ResourceValidationArgs, report: ReportViolation) -> None:
    props = args.props
    if not _has(props, "authToken"):
        report("no auth_token: set auth_token from a random.RandomPassword (secret) so clients must authenticate")
        return
    token = props.get("authToken")
    if not token:
        report("auth_token is empty: set it from a random.RandomPassword (secret)")
    elif _config(args).get("secretsRedacted") and token != SECRET_MARKER:
        report("auth_token is a plain (non-secret) value: pass a secret Output (random.RandomPassword.result or pulumi.Output.secret)")


def _redis_multi_az(args: ResourceValidationArgs, report: ReportViolation) -> None:
    props = args.props
    nodes = _int(props.get("numCacheClusters")) or 0
    replicas = _int(props.get("replicasPerNodeGroup")) or 0
    if nodes > 1 or replicas > 0:
        if not _true(props.get("automaticFailoverEnabled")):
            report("the group has replicas but automatic_failover_enabled is off: set it True so a replica is promoted on failure")
        if not _true(props.get("multiAzEnabled")):
            report("the group has replicas but multi_az_enabled is off: set it True (replicas in other AZs)")


# ------------------------------------------------------------------ 3. S3 (stack: follow `bucket` references)


def _bucket_refs(bucket: PolicyResource, ids: Mapping[str, str]) -> set[str]:
    refs = {bucket.urn}
    if ids.get(bucket.urn):
        refs.add(ids[bucket.urn])
    if _known(bucket.props, "bucket"):
        refs.add(str(_known(bucket.props, "bucket")))
    return refs


def _attached(bucket: PolicyResource, candidates: list[PolicyResource], ids: Mapping[str, str]) -> list[PolicyResource]:
    """Resources whose `bucket` names this bucket by id or name; during a preview where the name is
    unknown yet, the resource's dependency on the bucket says the same."""
    refs = _bucket_refs(bucket, ids)
    out = []
    for c in candidates:
        target = _known(c.props, "bucket")
        if target is None and any(d.urn == bucket.urn for d in c.dependencies):
            out.append(c)
        elif target is not None and str(target) in refs:
            out.append(c)
    return out


def _ids(args: StackValidationArgs) -> Mapping[str, str]:
    """Physical ids by URN when the caller knows them (`tools policy` passes the plan's mocked ids)."""
    return _config(args).get("resourceIds") or {}


def _s3_public_access_block(args: StackValidationArgs, report: ReportViolation) -> None:
    blocks = _of(args.resources, PUBLIC_ACCESS_BLOCK)
    flags = ("blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls", "restrictPublicBuckets")
    for bucket in _of(args.resources, BUCKETS):
        attached = _attached(bucket, blocks, _ids(args))
        if not attached:
            report(
                "no BucketPublicAccessBlock: add one with block_public_acls, block_public_policy, ignore_public_acls and restrict_public_buckets True",
                bucket.urn,
            )
            continue
        for block in attached:
            off = [f for f in flags if not _true(block.props.get(f))]
            if off:
                report(f"the public access block leaves {', '.join(off)} off: set all four flags True", bucket.urn)


def _s3_encryption(args: StackValidationArgs, report: ReportViolation) -> None:
    configs = _of(args.resources, BUCKET_SSE)
    for bucket in _of(args.resources, BUCKETS):
        rules = [rule for c in _attached(bucket, configs, _ids(args)) for rule in _seq(c.props.get("rules"))]
        if _has(bucket.props, "serverSideEncryptionConfiguration"):
            rules += [_map(_map(bucket.props.get("serverSideEncryptionConfiguration")).get("rule"))]
        ok = any(_map(_map(r).get("applyServerSideEncryptionByDefault")).get("sseAlgorithm") for r in rules)
        if not ok:
            report(
                "no default server-side encryption: add a BucketServerSideEncryptionConfiguration (aws:kms with the data key, or AES256)",
                bucket.urn,
            )


# ------------------------------------------------------------------ 4. Security groups


@dataclass(frozen=True)
class _Ingress:
    protocol: str  # tcp, udp, icmp, all, or a number
    from_port: int
    to_port: int
    cidrs: tuple[str, ...]  # IPv4 and IPv6
    prefix_lists: bool
    description: str

    @property
    def ip_sourced(self) -> bool:
        return bool(self.cidrs) or self.prefix_lists

    @property
    def from_internet(self) -> bool:
        return any(c.endswith("/0") for c in self.cidrs)

    def covers(self, port: int) -> bool:
        return self.protocol == "all" or (self.protocol in ("tcp", "udp") and self.from_port <= port <= self.to_port)


_PROTOCOLS = {"-1": "all", "all": "all", "6": "tcp", "17": "udp", "1": "icmp", "58": "icmpv6"}


def _ingress(protocol: Any, from_port: Any, to_port: Any, cidrs: Iterable[Any], prefix_lists: bool, description: Any) -> _Ingress:
    proto = _PROTOCOLS.get(str(protocol).lower(), str(protocol).lower())
    lo, hi = _int(from_port), _int(to_port)
    if proto == "all" or lo is None or hi is None:
        lo, hi = 0, 65535
    return _Ingress(proto, lo, hi, tuple(str(c) for c in cidrs if c), prefix_lists, str(description or ""))


def _ingress_rules(resource_type: str, props: Mapping[str, Any]) -> list[_Ingress]:
    if resource_type in SECURITY_GROUPS:
        return [
            _ingress(
                r.get("protocol"),
                r.get("fromPort"),
                r.get("toPort"),
                [*_seq(r.get("cidrBlocks")), *_seq(r.get("ipv6CidrBlocks"))],
                bool(_seq(r.get("prefixListIds"))),
                r.get("description"),
            )
            for r in (_map(x) for x in _seq(props.get("ingress")))
        ]
    if resource_type == SG_RULE and props.get("type") == "ingress":
        cidrs = [*_seq(props.get("cidrBlocks")), *_seq(props.get("ipv6CidrBlocks"))]
        return [
            _ingress(
                props.get("protocol"),
                props.get("fromPort"),
                props.get("toPort"),
                cidrs,
                bool(_seq(props.get("prefixListIds"))),
                props.get("description"),
            )
        ]
    if resource_type == SG_INGRESS_RULE:
        cidrs = [props.get("cidrIpv4"), props.get("cidrIpv6")] if (_has(props, "cidrIpv4") or _has(props, "cidrIpv6")) else []
        return [
            _ingress(
                props.get("ipProtocol"),
                props.get("fromPort"),
                props.get("toPort"),
                cidrs,
                _has(props, "prefixListId"),
                props.get("description"),
            )
        ]
    return []


_SG_TYPES = (*SECURITY_GROUPS, SG_RULE, SG_INGRESS_RULE)


def _admin_port(rule: _Ingress) -> int | None:
    """22/3389 reachable from an address range (all-protocol rules from the internet are owned by
    sg-no-all-traffic-from-internet, so each problem is reported once)."""
    if rule.protocol == "all" and rule.from_internet:
        return None
    return next((p for p in ADMIN_PORTS if rule.ip_sourced and rule.covers(p)), None)


def _describe(rule: _Ingress) -> str:
    ports = "all ports" if rule.protocol == "all" else f"{rule.protocol} {rule.from_port}-{rule.to_port}"
    return f"{ports} from {', '.join(rule.cidrs) or 'a prefix list'}" + (f" ({rule.description})" if rule.description else "")


def _sg_no_admin_ports(args: ResourceValidationArgs, report: ReportViolation) -> None:
    for rule in _ingress_rules(args.resource_type, args.props):
        port = _admin_port(rule)
        if port is not None:
            report(f"ingress {_describe(rule)} opens {ADMIN_PORTS[port]} ({port}): remove it; reach hosts with SSM Session Manager")


def _sg_no_all_traffic_from_internet(args: ResourceValidationArgs, report: ReportViolation) -> None:
    for rule in _ingress_rules(args.resource_type, args.props):
        if rule.protocol == "all" and rule.from_internet:
            report(f"ingress {_describe(rule)} admits every protocol from the internet: open only the ports the service needs")


def _allowed(rule: _Ingress, allow: Iterable[Mapping[str, Any]]) -> bool:
    return any(
        rule.protocol == str(a.get("protocol")) and _int(a.get("fromPort")) <= rule.from_port and rule.to_port <= _int(a.get("toPort"))  # type: ignore[operator]
        for a in allow
    )


def _sg_public_ingress_allow_list(args: ResourceValidationArgs, report: ReportViolation) -> None:
    allow = _config(args).get("publicIngressAllowList") or DEFAULT_PUBLIC_INGRESS
    for rule in _ingress_rules(args.resource_type, args.props):
        if not rule.from_internet or rule.protocol == "all" or _admin_port(rule) is not None:
            continue  # owned by the two policies above
        if not _allowed(rule, allow):
            opened = ", ".join(f"{a['protocol']} {a['fromPort']}-{a['toPort']}" for a in allow)
            report(
                f"ingress {_describe(rule)} is open to the internet: only {opened} may be; use a CIDR allow-list or a security-group source"
            )


# ------------------------------------------------------------------ 5. EC2 instances and launch templates (stack: follow the launch template)


def _launch_template_of(instance: PolicyResource, templates: list[PolicyResource], ids: Mapping[str, str]) -> PolicyResource | None:
    ref = _map(_known(instance.props, "launchTemplate"))
    if not _has(instance.props, "launchTemplate"):
        return None
    wanted = {str(_known(ref, k)) for k in ("id", "name") if _known(ref, k)}
    for t in templates:
        if ids.get(t.urn) in wanted or str(_known(t.props, "name")) in wanted:
            return t
    deps = [t for t in templates if any(d.urn == t.urn for d in instance.dependencies)]
    return deps[0] if len(deps) == 1 else None


def _ec2_imdsv2(args: StackValidationArgs, report: ReportViolation) -> None:
    templates = _of(args.resources, LAUNCH_TEMPLATE)
    for t in templates:
        if _map(t.props.get("metadataOptions")).get("httpTokens") != "required":
            report("the launch template does not require IMDSv2: set metadata_options http_tokens='required' (hop limit 1)", t.urn)
    for i in _of(args.resources, INSTANCE):
        tokens = _map(i.props.get("metadataOptions")).get("httpTokens")
        if tokens is None:
            t = _launch_template_of(i, templates, _ids(args))
            tokens = _map(t.props.get("metadataOptions")).get("httpTokens") if t is not None else None
        if tokens != "required":
            report(
                "the instance does not require IMDSv2: set metadata_options http_tokens='required' (here or in its launch template)", i.urn
            )


def _mappings_encrypted(mappings: list[Any]) -> bool:
    ebs = [_map(_map(m).get("ebs")) for m in mappings if _has(_map(m), "ebs")]
    return bool(ebs) and all(_true(e.get("encrypted")) for e in ebs)


def _ec2_root_encrypted(args: StackValidationArgs, report: ReportViolation) -> None:
    by_default = any(_true(r.props.get("enabled", True)) for r in _of(args.resources, EBS_DEFAULT_ENCRYPTION))
    if by_default:
        return  # the account encrypts every new volume
    templates = _of(args.resources, LAUNCH_TEMPLATE)
    ok_template = {t.urn: _mappings_encrypted(_seq(t.props.get("blockDeviceMappings"))) for t in templates}
    for t in templates:
        if not ok_template[t.urn]:
            report("the launch template's volumes are not all encrypted: give block_device_mappings an ebs with encrypted='true'", t.urn)
    for i in _of(args.resources, INSTANCE):
        props = i.props
        if _has(props, "rootBlockDevice"):
            ok = _true(_map(props.get("rootBlockDevice")).get("encrypted"))
        else:
            t = _launch_template_of(i, templates, _ids(args))
            ok = t is not None and ok_template[t.urn]
        extra = [_map(b) for b in _seq(props.get("ebsBlockDevices"))]
        if not ok or not all(_true(b.get("encrypted")) for b in extra):
            report(
                "the instance's volumes are not encrypted: set root_block_device encrypted=True (or use an encrypting launch template)",
                i.urn,
            )


def _ec2_no_key_pair(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if _has(args.props, "keyName") and args.props.get("keyName"):
        report("an SSH key pair is attached: drop key_name; use SSM Session Manager (no port 22, no long-lived keys)")


# ------------------------------------------------------------------ 6. EKS


def _eks_secrets_encryption(args: ResourceValidationArgs, report: ReportViolation) -> None:
    enc = _map(args.props.get("encryptionConfig"))
    if "secrets" not in _seq(enc.get("resources")) or not _map(enc.get("provider")).get("keyArn"):
        report("Kubernetes Secrets are not envelope-encrypted: set encryption_config resources=['secrets'] with a KMS key_arn")


def _eks_logs(args: ResourceValidationArgs, report: ReportViolation) -> None:
    enabled = set(_seq(args.props.get("enabledClusterLogTypes")))
    missing = [t for t in REQUIRED_EKS_LOGS if t not in enabled]
    if missing:
        report(f"control-plane logs miss {', '.join(missing)}: set enabled_cluster_log_types to include {', '.join(REQUIRED_EKS_LOGS)}")


def _eks_public_endpoint(args: ResourceValidationArgs, report: ReportViolation) -> None:
    vpc = _map(args.props.get("vpcConfig"))
    public = vpc.get("endpointPublicAccess", True)  # AWS default: public
    if not _true(public) and public is not None:
        return
    cidrs = [str(c) for c in _seq(vpc.get("publicAccessCidrs"))]
    if not cidrs or any(c.endswith("/0") for c in cidrs):
        report(
            "the API endpoint is public to the whole internet: set vpc_config public_access_cidrs to the office/CI ranges, or endpoint_public_access=False"
        )


# ------------------------------------------------------------------ 7. CloudFront


def _cloudfront_https(args: ResourceValidationArgs, report: ReportViolation) -> None:
    behaviours = [("default", _map(args.props.get("defaultCacheBehavior")))]
    behaviours += [(str(_map(b).get("pathPattern")), _map(b)) for b in _seq(args.props.get("orderedCacheBehaviors"))]
    for path, b in behaviours:
        policy = b.get("viewerProtocolPolicy")
        if policy not in ("redirect-to-https", "https-only"):
            report(f"cache behaviour {path} has viewer_protocol_policy {policy!r}: use 'redirect-to-https' or 'https-only'")


def _cloudfront_tls(args: ResourceValidationArgs, report: ReportViolation) -> None:
    cert = _map(args.props.get("viewerCertificate"))
    if _true(cert.get("cloudfrontDefaultCertificate")):
        report("the default *.cloudfront.net certificate allows TLSv1: use an ACM certificate with minimum_protocol_version 'TLSv1.2_2021'")
    elif cert.get("minimumProtocolVersion") not in CLOUDFRONT_MIN_TLS:
        report(f"minimum_protocol_version is {cert.get('minimumProtocolVersion')!r}: set 'TLSv1.2_2021' (or newer)")


def _cloudfront_waf(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if not (_has(args.props, "webAclId") and args.props.get("webAclId")):
        report("no WAF: set web_acl_id to the CLOUDFRONT-scope WAFv2 web ACL (managed rules and rate limits)")


# ------------------------------------------------------------------ 8. Load balancers


def _alb_drop_invalid_headers(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if args.props.get("loadBalancerType", "application") == "application" and not _true(args.props.get("dropInvalidHeaderFields")):
        report("the ALB forwards invalid header fields (request smuggling): set drop_invalid_header_fields=True")


def _listener_http_redirects(args: ResourceValidationArgs, report: ReportViolation) -> None:
    props = args.props
    protocol = props.get("protocol")
    if protocol != "HTTP" and not (protocol is None and _int(props.get("port")) == 80):
        return
    actions = [_map(a) for a in _seq(props.get("defaultActions"))]
    redirects = all(a.get("type") == "redirect" and _map(a.get("redirect")).get("protocol") == "HTTPS" for a in actions)
    if not actions or not redirects:
        report(
            "a plain-HTTP listener serves traffic: its default action must only redirect to HTTPS (type 'redirect', protocol 'HTTPS', HTTP_301)"
        )


# ------------------------------------------------------------------ 9-10. KMS, logs


def _kms_rotation(args: ResourceValidationArgs, report: ReportViolation) -> None:
    spec = args.props.get("customerMasterKeySpec", "SYMMETRIC_DEFAULT")
    if spec == "SYMMETRIC_DEFAULT" and not _true(args.props.get("enableKeyRotation")):
        report("automatic key rotation is off: set enable_key_rotation=True")


def _log_retention(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if not _int(args.props.get("retentionInDays")):
        report("logs are kept forever (and billed forever): set retention_in_days from the stage config")


# KMS grants conditioned on the caller's network origin. A service that uses a key on a principal's
# behalf (S3 SSE-KMS, EBS, Secrets Manager) calls KMS from the service's own addresses and network,
# so aws:SourceIp / aws:SourceVpc / aws:SourceVpce never match such a call (KMS developer guide,
# "Using the IP address condition in policies with AWS KMS permissions"). Scope those by
# kms:ViaService (+ encryption context); keep source-IP conditions for statements declared
# direct-call-only with Bool aws:ViaAWSService "false".
NETWORK_ORIGIN_KEYS = ("aws:sourceip", "aws:sourcevpc", "aws:sourcevpce", "aws:vpcsourceip")
POLICY_DOCUMENTS = {
    # resource type -> the properties holding a policy document (JSON text or object)
    "aws:iam/policy:Policy": ("policy",),
    "aws:iam/rolePolicy:RolePolicy": ("policy",),
    "aws:iam/userPolicy:UserPolicy": ("policy",),
    "aws:iam/groupPolicy:GroupPolicy": ("policy",),
    "aws:kms/key:Key": ("policy",),
    "aws:kms/keyPolicy:KeyPolicy": ("policy",),
}


def _documents(resource_type: str, props: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    texts = [_known(props, k) for k in POLICY_DOCUMENTS.get(resource_type, ())]
    if resource_type == "aws:iam/role:Role":
        texts += [_map(p).get("policy") for p in _seq(_known(props, "inlinePolicies"))]
    docs = []
    for text in texts:
        try:
            doc = json.loads(text) if isinstance(text, str) else text
        except ValueError:
            continue
        if isinstance(doc, Mapping):
            docs.append(doc)
    return docs


def _condition_keys(condition: Mapping[str, Any]) -> dict[str, Any]:
    """Condition key (lower case) -> value, over every operator."""
    return {k.lower(): v for op in _map(condition).values() for k, v in _map(op).items()}


def _kms_network_origin(args: ResourceValidationArgs, report: ReportViolation) -> None:
    for doc in _documents(args.resource_type, args.props):
        statements = doc.get("Statement")
        for st in [statements] if isinstance(statements, Mapping) else _seq(statements):
            st = _map(st)
            actions = [str(a).lower() for a in ([st.get("Action")] if isinstance(st.get("Action"), str) else _seq(st.get("Action")))]
            if not any(a == "*" or a.startswith("kms:") for a in actions):
                continue
            keys = _condition_keys(_map(st.get("Condition")))
            origin = sorted(k for k in keys if k in NETWORK_ORIGIN_KEYS)
            direct_only = str(keys.get("aws:viaawsservice", "")).lower() == "false"
            if not origin or direct_only:
                continue
            sid = f"statement {st.get('Sid')!r}" if st.get("Sid") else "a statement"
            why = (
                "kms:ViaService and a network-origin key together never match (a call via the service comes from its addresses)"
                if "kms:viaservice" in keys
                else "KMS calls services make on the principal's behalf come from the service's network and are refused"
            )
            report(
                f"{sid} grants KMS actions on {', '.join(origin)}: {why}; scope it with kms:ViaService and the encryption "
                'context instead, or mark it direct-call-only with Bool aws:ViaAWSService "false"'
            )


# ------------------------------------------------------------------ 11. protect where the stage holds data


def _stateful(args: StackValidationArgs) -> list[tuple[PolicyResource, str]]:
    """The resources that hold data or a published identity, with what losing them costs."""
    nat_eips = {str(_known(n.props, "allocationId")) for n in _of(args.resources, NAT_GATEWAY)}
    nat_eip_urns = {d.urn for n in _of(args.resources, NAT_GATEWAY) for d in n.dependencies if d.resource_type == EIP}
    ids = _ids(args)
    out: list[tuple[PolicyResource, str]] = []
    for r in args.resources:
        t, props = r.resource_type, r.props
        if t in RDS_INSTANCE and not _is_replica(props):
            out.append((r, "the database"))
        elif t in REDIS_GROUP:
            out.append((r, "Redis data and its snapshots"))
        elif t in BUCKETS and (r.name.endswith("-files") or str(_known(props, "bucket") or "").rsplit("-", 1)[0].endswith("-files")):
            out.append((r, "the users' files"))
        elif t in KMS_KEY:
            out.append((r, "every byte encrypted with it"))
        elif t == EIP and ids.get(r.urn) not in nat_eips and r.urn not in nat_eip_urns:
            out.append((r, "a public address clients and firewalls know"))  # NAT egress addresses are not published
        elif t == ZONE:
            out.append((r, "the zone and its delegated name servers"))
        elif t in EKS_CLUSTER:
            out.append((r, "the cluster and every workload on it"))
    return out


def _stateful_protected(args: StackValidationArgs, report: ReportViolation) -> None:
    protect_data = _protect_data(args)
    if protect_data is None:
        args.not_applicable("protectData unknown: pass it as policy config")
    if not protect_data:
        return
    for r, loss in _stateful(args):
        if not r.opts.protect:
            report(
                f"the stage holds data (protectData) but this resource is not protected: pass protect=cfg.protect_data (deleting it loses {loss})",
                r.urn,
            )


# ------------------------------------------------------------------ 12. explicit provider with cost tags


def _default_tags(provider_props: Mapping[str, Any]) -> Mapping[str, Any]:
    tags = provider_props.get("defaultTags") if _has(provider_props, "defaultTags") else None
    if isinstance(tags, str):  # provider inputs reach the engine JSON-encoded
        try:
            tags = json.loads(tags)
        except ValueError:
            tags = None
    return _map(_map(tags).get("tags"))


def _aws_explicit_provider(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if not args.resource_type.startswith("aws:"):
        return
    provider = args.provider
    if provider is None or provider.resource_type != AWS_PROVIDER or provider.name.startswith("default"):
        report(
            "the resource uses the default AWS provider: create it under the component (providers={'aws': platform.aws}) so the stage's default tags apply"
        )
        return
    tags = _default_tags(provider.props)
    missing = [t for t in REQUIRED_TAGS if not tags.get(t)]
    if missing:
        report(
            f"its provider {provider.name} has no default tag {', '.join(missing)}: set default_tags on the provider (cost allocation, ownership)"
        )


# ------------------------------------------------------------------ 13. whole-stack coverage (issue 14)

VPC = "aws:ec2/vpc:Vpc"
FLOW_LOG = "aws:ec2/flowLog:FlowLog"
VERSIONING = "aws:s3/bucketVersioning:BucketVersioning"
LIFECYCLE = "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration"
BUCKET_LOGGING = ("aws:s3/bucketLogging:BucketLogging", "aws:s3/bucketLoggingV2:BucketLoggingV2")
QUERY_LOG = "aws:route53/queryLog:QueryLog"
WEB_ACL = "aws:wafv2/webAcl:WebAcl"
WEB_ACL_LOGGING = "aws:wafv2/webAclLoggingConfiguration:WebAclLoggingConfiguration"
WEB_ACL_ASSOCIATION = "aws:wafv2/webAclAssociation:WebAclAssociation"
SECRET = "aws:secretsmanager/secret:Secret"
SECRET_ROTATION = "aws:secretsmanager/secretRotation:SecretRotation"
SNS_TOPIC = "aws:sns/topic:Topic"
IAM_POLICY_TYPES = (
    "aws:iam/policy:Policy",
    "aws:iam/rolePolicy:RolePolicy",
    "aws:iam/userPolicy:UserPolicy",
    "aws:iam/groupPolicy:GroupPolicy",
)
HELM_RELEASE = ("kubernetes:helm.sh/v3:Release", "kubernetes:helm.sh/v4:Chart", "kubernetes:helm.sh/v3:Chart")
WORKLOADS = (
    "kubernetes:apps/v1:Deployment",
    "kubernetes:apps/v1:StatefulSet",
    "kubernetes:apps/v1:DaemonSet",
    "kubernetes:core/v1:Pod",
    "kubernetes:batch/v1:Job",
    "kubernetes:batch/v1:CronJob",
    "kubernetes:core/v1:ConfigMap",
    "aws:ecs/taskDefinition:TaskDefinition",
)
# Log groups that record who did what (EKS audit, WAF, VPC flows, VPN tunnels, DNS queries).
SECURITY_LOG_PREFIXES = ("/aws/eks/", "aws-waf-logs-", "/aws/vpn/", "/aws/route53/", "/aws/vpc/", "/aws/cloudtrail")
SECURITY_LOG_DAYS = 365
# Ports an HTTP(S)/WebSocket client would use; TURN's TLS port is not one (no WAF speaks TURN).
HTTP_PORTS = (80, 443, 8080, 8443)
# Actions that take a resource ARN: a `*` grant is never needed for them.
SCOPABLE_ACTIONS = (
    "eks:describenodegroup",
    "eks:describecluster",
    "secretsmanager:getsecretvalue",
    "secretsmanager:putsecretvalue",
    "sns:publish",
    "s3:getobject",
    "s3:putobject",
    "s3:deleteobject",
    "logs:putlogevents",
    "ssm:getparameter",
    "ssm:getparameters",
)


def _ref_targets(r: PolicyResource, ids: Mapping[str, str]) -> set[str]:
    refs = {r.urn}
    if ids.get(r.urn):
        refs.add(ids[r.urn])
    for k in ("arn", "name", "bucket"):
        v = _known(r.props, k)
        if v:
            refs.add(str(v))
    return refs


def _linked(target: PolicyResource, candidates: list[PolicyResource], key: str, ids: Mapping[str, str]) -> list[PolicyResource]:
    """Candidates whose `key` names `target` (by id, name or ARN), or, while unknown in a
    preview, depend on it."""
    refs = _ref_targets(target, ids)
    out = []
    for c in candidates:
        value = _known(c.props, key)
        # A computed attribute (a zone's zoneId, an ACL's ARN) is not among the target's inputs:
        # the dependency the reference created says the same.
        if (value is not None and str(value) in refs) or any(d.urn == target.urn for d in c.dependencies):
            out.append(c)
    return out


def _vpc_flow_logs(args: StackValidationArgs, report: ReportViolation) -> None:
    flows = _of(args.resources, FLOW_LOG)
    for vpc in _of(args.resources, VPC):
        if not _linked(vpc, flows, "vpcId", _ids(args)):
            report("the VPC has no flow log: add an aws.ec2.FlowLog (traffic_type ALL) to CloudWatch Logs or S3", vpc.urn)


def _waf_exceptions(args: StackValidationArgs) -> list[Mapping[str, Any]]:
    """The stage's argued WAF exceptions (`policy.wafExceptions`)."""
    return _policy_list(args, "wafExceptions")


def _waf_exception(name: str, exceptions: Iterable[Mapping[str, Any]]) -> bool:
    return any(name == e.get("name") or name.endswith(f"-{e.get('name')}") for e in exceptions)


def _internet_entry_behind_waf(args: StackValidationArgs, report: ReportViolation) -> None:
    """Internet-facing HTTP(S)/WebSocket listeners: an ALB with a regional web ACL, or one that
    admits only CloudFront (origin-facing prefix list: CloudFront's WAF applies), or the listener is
    in the argued exception list `wafExceptions` (config `policy.wafExceptions`)."""
    ids = _ids(args)
    exceptions = _waf_exceptions(args)
    internet_facing = {lb.urn for lb in _of(args.resources, LOAD_BALANCER) if not _true(lb.props.get("internal"))}
    by_ref = {u: lb for lb in _of(args.resources, LOAD_BALANCER) for u in _ref_targets(lb, ids)}
    associated = {str(_known(a.props, "resourceArn")) for a in _of(args.resources, WEB_ACL_ASSOCIATION)}
    groups = {u: g for g in _of(args.resources, SECURITY_GROUPS) for u in _ref_targets(g, ids)}
    distributions = [d for d in _of(args.resources, DISTRIBUTION) if _known(d.props, "webAclId")]
    for listener in _of(args.resources, LISTENER):
        lb_ref = str(_known(listener.props, "loadBalancerArn"))
        lb = by_ref.get(lb_ref) or next((d for d in listener.dependencies if d.resource_type in LOAD_BALANCER), None)
        if lb is None or lb.urn not in internet_facing:
            continue
        port, protocol = _int(listener.props.get("port")), str(listener.props.get("protocol") or "")
        if port not in HTTP_PORTS and protocol not in ("HTTP", "HTTPS"):
            continue
        if _ref_targets(lb, ids) & associated:
            continue
        sgs = [groups.get(str(g)) for g in _seq(lb.props.get("securityGroups"))]
        rules = [rule for g in sgs if g is not None for rule in _ingress_rules(g.resource_type, g.props)]
        fronted = any(lb.urn in {d.urn for d in dist.dependencies} for dist in distributions)
        if fronted and rules and all(not rule.cidrs and rule.prefix_lists for rule in rules):
            continue  # a CloudFront origin admitting only prefix lists: the distribution's web ACL applies
        if _waf_exception(listener.name, exceptions):
            continue
        report(
            f"internet-facing {protocol or 'TCP'}:{port} entry without a WAF: put it behind CloudFront (+web ACL) or a regional web ACL, "
            "or list it in policy.wafExceptions with the reason and what protects it instead",
            listener.urn,
        )


def _internal_alb_behind_vpc_origin(args: StackValidationArgs, report: ReportViolation) -> None:
    """An internal ALB has no public address: only a CloudFront VPC origin pointing at it, used
    by a distribution, brings viewers (through that distribution's web ACL) to it."""
    ids = _ids(args)
    origins = _of(args.resources, VPC_ORIGIN)
    distributions = _of(args.resources, DISTRIBUTION)
    for lb in _of(args.resources, LOAD_BALANCER):
        if not _true(lb.props.get("internal")) or (lb.props.get("loadBalancerType") or "application") != "application":
            continue
        refs = _ref_targets(lb, ids)
        mine = [
            o
            for o in origins
            if str(_map(_known(o.props, "vpcOriginEndpointConfig")).get("arn")) in refs or any(d.urn == lb.urn for d in o.dependencies)
        ]
        if not mine:
            report(
                "an internal ALB that no CloudFront VPC origin points at: nothing outside the VPC can reach it; add an "
                "aws.cloudfront.VpcOrigin with its ARN (edge.albScheme internal) or make it internet-facing",
                lb.urn,
            )
            continue
        origin_refs = {ref for o in mine for ref in _ref_targets(o, ids)}
        used = any(
            str(_map(_map(origin).get("vpcOriginConfig")).get("vpcOriginId")) in origin_refs
            or any(d.urn in {o.urn for o in mine} for d in dist.dependencies)
            for dist in distributions
            for origin in _seq(_known(dist.props, "origins"))
        )
        if not used:
            report(
                "the internal ALB's VPC origin is no distribution's origin: viewers cannot reach it; point the distribution's "
                "ALB origin at it (`vpc_origin_config.vpc_origin_id`)",
                lb.urn,
            )


def _log_destinations(args: StackValidationArgs) -> set[str]:
    """Names of the buckets that receive logs: S3 server access logs, ELB access logs,
    CloudFront standard logs, VPC flow logs to S3."""
    out: set[str] = {str(_known(lg.props, "targetBucket")) for lg in _of(args.resources, BUCKET_LOGGING)}
    out |= {str(_map(_known(lb.props, "accessLogs")).get("bucket")) for lb in _of(args.resources, LOAD_BALANCER)}
    for dist in _of(args.resources, DISTRIBUTION):
        out.add(str(_map(_known(dist.props, "loggingConfig")).get("bucket") or "").split(".s3.", 1)[0])
    for flow in _of(args.resources, FLOW_LOG):
        dest = str(_known(flow.props, "logDestination") or "")
        if dest.startswith("arn:aws:s3:::"):
            out.add(dest.removeprefix("arn:aws:s3:::").split("/", 1)[0])
    return out - {"", "None"}


def _s3_access_logging(args: StackValidationArgs, report: ReportViolation) -> None:
    """Buckets people read and write (files, web) keep S3 server access logs; log buckets are exempt
    (they are the destinations: logging them would log the logging)."""
    ids, targets = _ids(args), _log_destinations(args)
    loggings = _of(args.resources, BUCKET_LOGGING)
    for bucket in _of(args.resources, BUCKETS):
        if _bucket_refs(bucket, ids) & targets:
            continue
        if not _attached(bucket, loggings, ids) and not _has(bucket.props, "loggings"):
            report("no S3 server access logging: add an aws.s3.BucketLogging into the stage's log bucket", bucket.urn)


def _s3_noncurrent_expiry(args: StackValidationArgs, report: ReportViolation) -> None:
    ids = _ids(args)
    versionings, lifecycles = _of(args.resources, VERSIONING), _of(args.resources, LIFECYCLE)
    for bucket in _of(args.resources, BUCKETS):
        enabled = any(_map(v.props.get("versioningConfiguration")).get("status") == "Enabled" for v in _attached(bucket, versionings, ids))
        if not enabled:
            continue
        rules = [_map(r) for lc in _attached(bucket, lifecycles, ids) for r in _seq(lc.props.get("rules"))]
        if not any(r.get("status") == "Enabled" and _map(r.get("noncurrentVersionExpiration")).get("noncurrentDays") for r in rules):
            report("versioned, but old versions are kept forever: add a lifecycle rule with noncurrent_version_expiration", bucket.urn)


def _s3_log_buckets_versioned(args: StackValidationArgs, report: ReportViolation) -> None:
    """Log buckets (S3 access-log, ELB, CloudFront and VPC flow-log destinations) are versioned:
    an overwritten or deleted log object stays recoverable (the evidence of an incident)."""
    ids, targets = _ids(args), _log_destinations(args)
    versionings = _of(args.resources, VERSIONING)
    for bucket in _of(args.resources, BUCKETS):
        if not _bucket_refs(bucket, ids) & targets:
            continue
        if not any(_map(v.props.get("versioningConfiguration")).get("status") == "Enabled" for v in _attached(bucket, versionings, ids)):
            report("a log bucket without versioning: add an aws.s3.BucketVersioning (Enabled) and expire noncurrent versions", bucket.urn)


def _route53_query_logging(args: StackValidationArgs, report: ReportViolation) -> None:
    logs = _of(args.resources, QUERY_LOG)
    for zone in _of(args.resources, (ZONE,)):
        if _seq(zone.props.get("vpcs")):
            continue  # private zones have Resolver query logging instead
        if not _linked(zone, logs, "zoneId", _ids(args)):
            report("the public zone has no query logging: add an aws.route53.QueryLog into a us-east-1 log group", zone.urn)


def _waf_logging(args: StackValidationArgs, report: ReportViolation) -> None:
    logging = _of(args.resources, WEB_ACL_LOGGING)
    for acl in _of(args.resources, WEB_ACL):
        if not _linked(acl, logging, "resourceArn", _ids(args)):
            report("the web ACL does not log: add an aws.wafv2.WebAclLoggingConfiguration (redact authorization and cookies)", acl.urn)


def _rds_master_secret_rotation(args: StackValidationArgs, report: ReportViolation) -> None:
    """A master password the program writes (password_wo) lives in a Secrets Manager secret the
    clients read: that secret rotates on a schedule (RDS-managed passwords rotate by themselves)."""
    rotations = _of(args.resources, SECRET_ROTATION)
    ids = _ids(args)
    secrets = [s for s in _of(args.resources, SECRET) if "/rds/" in str(_known(s.props, "name") or s.name)]
    primaries = [
        r for r in _of(args.resources, RDS_INSTANCE) if not _is_replica(r.props) and not _true(r.props.get("manageMasterUserPassword"))
    ]
    if primaries and not secrets:
        for r in primaries:
            report("the master password is in no Secrets Manager secret (…/rds/…): store it there and rotate it", r.urn)
    for secret in secrets:
        rot = _linked(secret, rotations, "secretId", ids)
        days = [_int(_map(r.props.get("rotationRules")).get("automaticallyAfterDays")) for r in rot]
        if not rot or not all(d and d <= 90 for d in days):
            report(
                "the database secret does not rotate (at least every 90 days): add an aws.secretsmanager.SecretRotation with AWS's "
                "single-user rotation function",
                secret.urn,
            )


# ------------------------------------------------------------------ 14. encryption and least privilege (resources)


def _log_group_cmk(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if not (_has(args.props, "kmsKeyId") and args.props.get("kmsKeyId")):
        report(
            "the log group is encrypted with an AWS-owned key only: set kms_key_id to a customer key of its region whose policy admits logs"
        )


def _secret_cmk(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if not (_has(args.props, "kmsKeyId") and args.props.get("kmsKeyId")):
        report(
            "the secret uses the default aws/secretsmanager key: set kms_key_id to the stage's data key (its readers need kms:Decrypt via Secrets Manager)"
        )


ELASTICACHE_NOTIFIERS = ("aws:elasticache/replicationGroup:ReplicationGroup", "aws:elasticache/cluster:Cluster")


def _sns_encrypted(args: StackValidationArgs, report: ReportViolation) -> None:
    """Topics are SSE-KMS, except a topic ElastiCache notifies: ElastiCache cannot publish to an
    encrypted topic (its event messages carry event names and node ids only)."""
    ids = _ids(args)
    notified = {str(_known(g.props, "notificationTopicArn")) for g in _of(args.resources, ELASTICACHE_NOTIFIERS)}
    notifier_urns = {g.urn for g in _of(args.resources, ELASTICACHE_NOTIFIERS)}
    for topic in _of(args.resources, (SNS_TOPIC,)):
        if _has(topic.props, "kmsMasterKeyId") and topic.props.get("kmsMasterKeyId"):
            continue
        name = str(_known(topic.props, "name") or "")
        by_arn = any(n.endswith(f":{name}") or n in _ref_targets(topic, ids) for n in notified if name)
        by_dependency = any(
            topic.urn in {d.urn for d in g.dependencies}
            for g in args.resources
            if g.urn in notifier_urns and _known(g.props, "notificationTopicArn") is None
        )
        if by_arn or by_dependency:
            continue
        report("the topic is not encrypted: set kms_master_key_id to a customer key whose policy admits the publishers", topic.urn)


def _security_log_retention(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if not _protect_data(args):
        return
    name = str(args.props.get("name") or "")
    if not (name.startswith(SECURITY_LOG_PREFIXES) or args.name.endswith("vpc-flow-logs")):
        return
    days = _int(args.props.get("retentionInDays"))
    if days is None or days < SECURITY_LOG_DAYS:
        report(f"the stage holds real users' data: keep this security log {SECURITY_LOG_DAYS} days (is {days}), like production")


def _cloudfront_logging(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if not _map(args.props.get("loggingConfig")).get("bucket"):
        report("no access logs: set logging_config to the stage's CloudFront log bucket")


def _lb_access_logs(args: ResourceValidationArgs, report: ReportViolation) -> None:
    logs = _map(args.props.get("accessLogs"))
    if not (_true(logs.get("enabled")) and logs.get("bucket")):
        report("no access logs: set access_logs (bucket, prefix, enabled=True) to the stage's load-balancer log bucket")


def _policy_statements(args: ResourceValidationArgs) -> list[Mapping[str, Any]]:
    doc = args.props.get("policy")
    if isinstance(doc, str):
        try:
            doc = json.loads(doc)
        except ValueError:
            return []
    stmts = _map(doc).get("Statement")
    return [_map(s) for s in (stmts if isinstance(stmts, list) else [stmts])]


def _lower(value: Any) -> list[str]:
    return [str(v).lower() for v in (value if isinstance(value, list) else [value]) if v is not None]


def _iam_no_admin_wildcard(args: ResourceValidationArgs, report: ReportViolation) -> None:
    for s in _policy_statements(args):
        if s.get("Effect") != "Allow":
            continue
        actions, resources = _lower(s.get("Action")), _lower(s.get("Resource"))
        if (
            "*" in actions or any(a.endswith(":*") and a.split(":")[0] in ("iam", "kms", "sts", "s3", "secretsmanager") for a in actions)
        ) and "*" in resources:
            report(f"statement {s.get('Sid', '?')} allows {', '.join(actions)} on every resource: name the actions and the ARNs")


def _iam_scoped_actions(args: ResourceValidationArgs, report: ReportViolation) -> None:
    for s in _policy_statements(args):
        if s.get("Effect") != "Allow" or "*" not in _lower(s.get("Resource")) or _map(s.get("Condition")):
            continue
        wide = [a for a in _lower(s.get("Action")) if a in SCOPABLE_ACTIONS]
        if wide:
            report(
                f"statement {s.get('Sid', '?')} grants {', '.join(wide)} on `*`: these take resource ARNs; scope them to this stage's resources"
            )


# ------------------------------------------------------------------ 15. literal secrets (issue 14)


def _user_data_secrets(args: ResourceValidationArgs, report: ReportViolation) -> None:
    from_b64 = args.props.get("userDataBase64") if _has(args.props, "userDataBase64") else None
    raw = args.props.get("userData") if _has(args.props, "userData") else from_b64
    if not isinstance(raw, str) or not raw:
        return
    findings = scan_text(decode_user_data(raw))
    if findings:
        report(
            f"user data holds a literal credential ({'; '.join(findings)}): fetch it at boot through the instance role "
            "(Secrets Manager / SSM), never write it into user data"
        )


def _workload_env_secrets(args: ResourceValidationArgs, report: ReportViolation) -> None:
    props = args.props
    if args.resource_type == "aws:ecs/taskDefinition:TaskDefinition":
        raw = props.get("containerDefinitions")
        try:
            value: Any = json.loads(raw) if isinstance(raw, str) else raw
        except ValueError:
            value = raw
        envs = [e for c in _seq(value) for e in _seq(_map(c).get("environment"))]
    elif args.resource_type == "kubernetes:core/v1:ConfigMap":
        envs = [{"name": k, "value": v} for k, v in _map(props.get("data")).items()]
    else:
        envs = []

        def walk(node: Any) -> None:
            if isinstance(node, Mapping):
                envs.extend(_seq(node.get("env")))
                for v in node.values():
                    walk(v)
            elif isinstance(node, Sequence) and not isinstance(node, str):
                for v in node:
                    walk(v)

        walk(props.get("spec"))
    findings = scan_value(
        [{"name": _map(e).get("name"), "value": _map(e).get("value")} for e in envs if isinstance(_map(e).get("value"), str)]
    )
    if findings:
        report(
            f"container environment holds a literal credential ({'; '.join(findings)}): use valueFrom.secretKeyRef "
            "(Kubernetes Secret) or the ECS `secrets` field (Secrets Manager / SSM)"
        )


def _helm_values_secrets(args: ResourceValidationArgs, report: ReportViolation) -> None:
    values = args.props.get("values")
    findings = scan_value(values)

    def has_marker(node: Any) -> bool:
        if isinstance(node, Mapping):
            return any(has_marker(v) for v in node.values())
        if isinstance(node, Sequence) and not isinstance(node, str):
            return any(has_marker(v) for v in node)
        return node == SECRET_MARKER

    if has_marker(values):
        findings.append("a Pulumi secret passed as a value (stored in the release's history)")
    if findings:
        report(
            f"Helm values hold a credential ({'; '.join(findings)}): create a Kubernetes Secret and pass its name "
            "(existingSecret / secretKeyRef) instead"
        )


# ------------------------------------------------------------------ levels per stage

# Stages declared data-free (dev, clones: protectData false) run these as advisory: a finding
# there is worth a look, not a failed preview. Everything else keeps its level on every stage
# (secrets, exposure, IAM, encryption at rest of data stores). Stack config `policy.levels`
# overrides any rule for one stage.
SCRATCH_ADVISORY = frozenset(
    {
        "vpc-flow-logs",
        "s3-access-logging",
        "s3-noncurrent-expiry",
        "s3-log-buckets-versioned",
        "route53-query-logging",
        "waf-logging",
        "rds-master-secret-rotation",
        "log-group-cmk",
        "secret-cmk",
        "sns-topic-encrypted",
        "cloudfront-access-logging",
        "lb-access-logs",
    }
)
LEVEL_NAMES = {"advisory": ADVISORY, "mandatory": MANDATORY, "disabled": EnforcementLevel.DISABLED}


def level_for(
    policy: ResourceValidationPolicy | StackValidationPolicy, protect_data: bool, overrides: Mapping[str, str] | None = None
) -> EnforcementLevel:
    """The level `policy` runs at on a stage: the stage's override, else advisory on data-free
    stages for the rules in SCRATCH_ADVISORY, else the rule's own level."""
    if overrides and policy.name in overrides:
        return LEVEL_NAMES[overrides[policy.name]]
    if not protect_data and policy.name in SCRATCH_ADVISORY:
        return ADVISORY
    return policy.enforcement_level or PACK_ENFORCEMENT_LEVEL


# ------------------------------------------------------------------ 14. backup coverage (policies/backup_coverage.py)

try:  # run by the Pulumi CLI as a script from this directory
    import backup_coverage
except ImportError:  # imported as the `policies` package from the repo root
    from policies import backup_coverage


def _backup_covers_stateful(args: StackValidationArgs, report: ReportViolation) -> None:
    backup_coverage.check(args, report, _protect_data(args))


# ------------------------------------------------------------------ the pack


# The scope of a policy that sees the whole stack at once (its check takes StackValidationArgs),
# and of one that sees every resource itself, without the stage's per-resource exceptions.
STACK = "stack"
EVERY_RESOURCE = "every resource"


@dataclass(frozen=True)
class Rule:
    """One policy of the pack and its row in docs/policies.md (policies/doc_table.py)."""

    name: str
    description: str
    scope: Sequence[str] | str  # the resource type(s) `check` runs on, STACK or EVERY_RESOURCE
    check: Callable
    protects: str  # what it protects against
    fix: str  # how to fix a violation
    level: EnforcementLevel = MANDATORY

    def policy(self) -> ResourceValidationPolicy | StackValidationPolicy:
        if self.scope == STACK:
            return _stack_policy(self.name, self.description, self.level, self.check)
        if self.scope == EVERY_RESOURCE:
            return ResourceValidationPolicy(name=self.name, description=self.description, validate=self.check, enforcement_level=self.level)
        types = (self.scope,) if isinstance(self.scope, str) else tuple(self.scope)
        return _resource_policy(self.name, self.description, types, self.level, self.check)


# In the pack's order (the order `tools policy` reports in).
RULES = [
    # 1. RDS
    Rule(
        "rds-storage-encrypted",
        "RDS storage is encrypted with KMS.",
        RDS_INSTANCE,
        _rds_storage_encrypted,
        protects="a snapshot or disk read outside the database",
        fix="`storage_encrypted=True`, `kms_key_id` = data key",
    ),
    Rule(
        "rds-not-publicly-accessible",
        "RDS instances are never publicly accessible.",
        RDS_INSTANCE,
        _rds_not_public,
        protects="the database answering the internet",
        fix="`publicly_accessible=False`; clients come through the VPC",
    ),
    Rule(
        "rds-master-password-out-of-state",
        "The RDS master password is managed by RDS or written write-only from a Pulumi secret, never kept in state.",
        RDS_INSTANCE,
        _rds_master_password_out_of_state,
        protects="the master password in Pulumi state",
        fix="`password_wo` from a RandomPassword + `password_wo_version`, or `manage_master_user_password`",
    ),
    Rule(
        "rds-backup-retention",
        "Primaries keep >= 7 days of backups where the stage holds data (>= 1 elsewhere).",
        RDS_INSTANCE,
        _rds_backup_retention,
        protects="losing data with no point-in-time restore",
        fix="`backup_retention_period` >= 7 where data lives (>= 1 elsewhere)",
    ),
    Rule(
        "rds-deletion-protection",
        "Protected RDS instances also have deletion protection.",
        RDS_INSTANCE,
        _rds_deletion_protection,
        protects="a console/API delete of a protected database",
        fix="`deletion_protection=True`",
    ),
    # 2. ElastiCache
    Rule(
        "elasticache-encryption",
        "Redis encrypts in transit (required) and at rest.",
        REDIS_GROUP,
        _redis_encryption,
        protects="Redis traffic or snapshots in clear",
        fix="`transit_encryption_enabled` (mode required), `at_rest_encryption_enabled` + data key",
    ),
    Rule(
        "elasticache-auth-token",
        "Redis requires an AUTH token held as a secret.",
        REDIS_GROUP,
        _redis_auth_token,
        protects="anyone in the VPC using Redis",
        fix="`auth_token` from a RandomPassword (secret)",
    ),
    Rule(
        "elasticache-multi-az-failover",
        "Redis groups with replicas fail over automatically across AZs.",
        REDIS_GROUP,
        _redis_multi_az,
        protects="a replica that is never promoted",
        fix="`automatic_failover_enabled` and `multi_az_enabled`",
    ),
    # 3. S3
    Rule(
        "s3-public-access-block",
        "Every bucket has a public access block with all four flags.",
        STACK,
        _s3_public_access_block,
        protects="a bucket made public by a policy or ACL",
        fix="a BucketPublicAccessBlock with the four flags True",
    ),
    Rule(
        "s3-default-encryption",
        "Every bucket has default server-side encryption.",
        STACK,
        _s3_encryption,
        protects="objects stored unencrypted",
        fix="a BucketServerSideEncryptionConfiguration (aws:kms + data key, or AES256 where the writer needs it)",
    ),
    # 4. Security groups
    Rule(
        "sg-no-admin-ports",
        "No SSH (22) or RDP (3389) ingress from any address range.",
        _SG_TYPES,
        _sg_no_admin_ports,
        protects="SSH/RDP exposed",
        fix="remove the rule; SSM Session Manager",
    ),
    Rule(
        "sg-no-all-traffic-from-internet",
        "No all-protocol (-1) ingress from 0.0.0.0/0 or ::/0.",
        _SG_TYPES,
        _sg_no_all_traffic_from_internet,
        protects="every port open to the internet",
        fix="open only the service's ports",
    ),
    Rule(
        "sg-public-ingress-allow-list",
        "Internet ingress only on the ports the design opens (TURN, NLB 443/5349).",
        _SG_TYPES,
        _sg_public_ingress_allow_list,
        protects="a port opened to the internet by mistake",
        fix="a CIDR allow-list or a security-group source; or change the design's allow-list",
    ),
    # 5. EC2
    Rule(
        "ec2-imdsv2-required",
        "Instances and launch templates require IMDSv2.",
        STACK,
        _ec2_imdsv2,
        protects="SSRF stealing instance credentials (IMDSv1)",
        fix="`metadata_options.http_tokens=required`",
    ),
    Rule(
        "ec2-volumes-encrypted",
        "Instance and launch-template EBS volumes are encrypted.",
        STACK,
        _ec2_root_encrypted,
        protects="unencrypted EBS volumes and snapshots",
        fix="`encrypted` on every EBS mapping (or EBS encryption by default)",
    ),
    Rule(
        "ec2-no-key-pair",
        "No SSH key pairs on instances or launch templates.",
        (INSTANCE, LAUNCH_TEMPLATE),
        _ec2_no_key_pair,
        protects="long-lived SSH keys",
        fix="drop `key_name`; SSM Session Manager",
        level=ADVISORY,
    ),
    # 6. EKS
    Rule(
        "eks-secrets-encryption",
        "EKS envelope-encrypts Kubernetes Secrets with KMS.",
        EKS_CLUSTER,
        _eks_secrets_encryption,
        protects="Kubernetes Secrets readable from etcd backups",
        fix="`encryption_config` resources=[secrets] with a KMS key",
    ),
    Rule(
        "eks-control-plane-logs",
        "EKS logs api, audit and authenticator.",
        EKS_CLUSTER,
        _eks_logs,
        protects="no trail of API calls and logins",
        fix="`enabled_cluster_log_types` with api, audit, authenticator",
    ),
    Rule(
        "eks-public-endpoint-restricted",
        "The EKS public endpoint is never open to 0.0.0.0/0.",
        EKS_CLUSTER,
        _eks_public_endpoint,
        protects="the Kubernetes API open to the internet",
        fix="`public_access_cidrs` (office, CI) or a private endpoint",
    ),
    # 7. CloudFront
    Rule(
        "cloudfront-https-only",
        "Every CloudFront behaviour redirects to or requires HTTPS.",
        DISTRIBUTION,
        _cloudfront_https,
        protects="sessions over plain HTTP",
        fix="`viewer_protocol_policy=redirect-to-https`",
    ),
    Rule(
        "cloudfront-min-tls",
        "CloudFront viewers need TLSv1.2_2021 or newer.",
        DISTRIBUTION,
        _cloudfront_tls,
        protects="TLS 1.0/1.1 downgrade",
        fix="ACM certificate, `minimum_protocol_version=TLSv1.2_2021`",
    ),
    Rule(
        "cloudfront-waf",
        "CloudFront distributions sit behind a WAFv2 web ACL.",
        DISTRIBUTION,
        _cloudfront_waf,
        protects="the edge without managed rules and rate limits",
        fix="`web_acl_id` = the CLOUDFRONT web ACL",
    ),
    # 8. Load balancers
    Rule(
        "alb-drop-invalid-headers",
        "ALBs drop invalid header fields.",
        LOAD_BALANCER,
        _alb_drop_invalid_headers,
        protects="HTTP request smuggling",
        fix="`drop_invalid_header_fields=True`",
    ),
    Rule(
        "lb-http-listener-redirects",
        "Plain-HTTP listeners only redirect to HTTPS.",
        LISTENER,
        _listener_http_redirects,
        protects="plain-HTTP traffic served",
        fix="default action: redirect to HTTPS (301)",
    ),
    # 9-10. KMS, logs
    Rule(
        "kms-key-rotation",
        "Symmetric KMS keys rotate automatically.",
        KMS_KEY,
        _kms_rotation,
        protects="a key in use for years",
        fix="`enable_key_rotation=True`",
    ),
    Rule(
        "log-group-retention",
        "CloudWatch log groups have a retention.",
        LOG_GROUP,
        _log_retention,
        protects="logs kept (and billed) forever",
        fix="`retention_in_days` from the stage config",
        level=ADVISORY,
    ),
    Rule(
        "kms-no-network-origin-condition",
        "KMS grants are scoped by kms:ViaService, never by aws:SourceIp / aws:SourceVpc(e) (services call KMS from their own network).",
        (*POLICY_DOCUMENTS, "aws:iam/role:Role"),
        _kms_network_origin,
        protects="a key policy that breaks (or leaks) through service calls",
        fix="conditions on principals/ViaService/encryption context, not aws:SourceIp",
    ),
    # 11. data protection
    Rule(
        "stateful-resources-protected",
        "Where the stage holds data, stateful resources are Pulumi-protected.",
        STACK,
        _stateful_protected,
        protects="`pulumi destroy`/a rename deleting data",
        fix="`protect=cfg.protect_data` (aliases on renames)",
    ),
    # 13. backups
    Rule(
        "backup-covers-stateful",
        "Where the stage holds data, every stateful resource is selected by an AWS Backup plan.",
        STACK,
        _backup_covers_stateful,
        protects="data with no restore point outside its own service (and none in a second region)",
        fix="add the resource's ARN to the stage's AWS Backup selection (components/data/backup.py); classify new types in policies/backup_coverage.py",
    ),
    # 12. tags
    Rule(
        "aws-explicit-provider-tags",
        "AWS resources go through an explicit provider whose default tags carry stage, project, owner and cost-center.",
        EVERY_RESOURCE,
        _aws_explicit_provider,
        protects="untagged, unattributable cost",
        fix="create under the stage's provider (default tags)",
        level=ADVISORY,
    ),
    # 13. whole-stack coverage
    Rule(
        "vpc-flow-logs",
        "Every VPC has a flow log.",
        STACK,
        _vpc_flow_logs,
        protects="no record of network flows in an incident",
        fix="an `aws.ec2.FlowLog` (ALL) per VPC",
    ),
    Rule(
        "internet-entry-behind-waf",
        "Internet-facing HTTP(S)/WebSocket listeners are behind a WAF (CloudFront-only ALB or regional web ACL) or an argued exception.",
        STACK,
        _internet_entry_behind_waf,
        protects="an HTTP(S)/WebSocket entry without IP reputation, managed rules and rate limits",
        fix="CloudFront + web ACL (ALB admitting only CloudFront) or a regional web ACL; else a `policy.wafExceptions` entry with the reason",
    ),
    Rule(
        "internal-alb-behind-vpc-origin",
        "An internal ALB is reached through a CloudFront VPC origin that a distribution uses.",
        STACK,
        _internal_alb_behind_vpc_origin,
        protects="an internal ALB nothing can reach (a dead edge after a scheme change)",
        fix="an `aws.cloudfront.VpcOrigin` with the ALB's ARN, used as the distribution's ALB origin (`vpc_origin_config`)",
    ),
    Rule(
        "s3-access-logging",
        "Buckets other than log destinations keep S3 server access logs.",
        STACK,
        _s3_access_logging,
        protects="no record of who read or changed which object",
        fix="an `aws.s3.BucketLogging` into the stage's log bucket",
    ),
    Rule(
        "s3-noncurrent-expiry",
        "Versioned buckets expire noncurrent versions.",
        STACK,
        _s3_noncurrent_expiry,
        protects="old versions piling up forever (cost, deleted data kept)",
        fix="a lifecycle rule with `noncurrent_version_expiration`",
    ),
    Rule(
        "s3-log-buckets-versioned",
        "Log destination buckets are versioned.",
        STACK,
        _s3_log_buckets_versioned,
        protects="overwritten or deleted log evidence",
        fix="`aws.s3.BucketVersioning` Enabled (and noncurrent expiry)",
    ),
    Rule(
        "route53-query-logging",
        "Public hosted zones log DNS queries.",
        STACK,
        _route53_query_logging,
        protects="no record of who resolved which name",
        fix="`aws.route53.QueryLog` into a us-east-1 log group + resource policy",
    ),
    Rule(
        "waf-logging",
        "Every web ACL logs what it blocks or counts.",
        STACK,
        _waf_logging,
        protects="blocked attacks leaving no trace",
        fix="`aws.wafv2.WebAclLoggingConfiguration` (redact authorization, cookies)",
    ),
    Rule(
        "rds-master-secret-rotation",
        "Database credentials live in Secrets Manager and rotate at least every 90 days.",
        STACK,
        _rds_master_secret_rotation,
        protects="a master password that never changes",
        fix="`aws.secretsmanager.SecretRotation` with AWS's single-user rotation app (<= 90 days)",
    ),
    # 14. encryption, logs, least privilege
    Rule(
        "log-group-cmk",
        "CloudWatch log groups are encrypted with a customer-managed key.",
        LOG_GROUP,
        _log_group_cmk,
        protects="logs readable without a key the account controls",
        fix="`kms_key_id` = a customer key of the group's region",
    ),
    Rule(
        "secret-cmk",
        "Secrets Manager secrets are encrypted with the stage's customer-managed key.",
        SECRET,
        _secret_cmk,
        protects="secrets under the shared AWS-managed key",
        fix="`kms_key_id` = data key; readers get kms:Decrypt via Secrets Manager",
    ),
    Rule(
        "sns-topic-encrypted",
        "SNS topics are encrypted with a customer-managed key (ElastiCache-notified topics excepted: AWS cannot).",
        STACK,
        _sns_encrypted,
        protects="alarm payloads unencrypted at rest",
        fix="`kms_master_key_id` with a key whose policy admits the publishers (a topic ElastiCache notifies is exempt: ElastiCache cannot publish to SSE-KMS topics)",
    ),
    Rule(
        "security-log-retention",
        "Where the stage holds data, security logs are kept 365 days.",
        LOG_GROUP,
        _security_log_retention,
        protects="audit trails gone before an investigation (real users' stages)",
        fix="retention 365 for EKS, WAF, VPC flow, VPN, DNS query logs",
    ),
    Rule(
        "cloudfront-access-logging",
        "CloudFront distributions write access logs.",
        DISTRIBUTION,
        _cloudfront_logging,
        protects="no record of edge requests",
        fix="`logging_config` to the CloudFront log bucket",
    ),
    Rule(
        "lb-access-logs",
        "Load balancers write access logs.",
        LOAD_BALANCER,
        _lb_access_logs,
        protects="no record of load-balancer requests",
        fix="`access_logs` (bucket, prefix, enabled)",
    ),
    Rule(
        "iam-no-admin-wildcard",
        "No IAM statement allows `*` (or iam/kms/sts/s3/secretsmanager:*) on every resource.",
        IAM_POLICY_TYPES,
        _iam_no_admin_wildcard,
        protects="an admin-equivalent grant",
        fix="name actions and ARNs",
    ),
    Rule(
        "iam-scoped-resource-actions",
        "Actions that take resource ARNs are never granted on `*` without a condition.",
        IAM_POLICY_TYPES,
        _iam_scoped_actions,
        protects="a grant on every cluster/secret/topic/object of the account",
        fix="the ARN (e.g. `nodegroup/<cluster>/*/*`) instead of `*`",
    ),
    # 15. literal secrets
    Rule(
        "no-secrets-in-user-data",
        "No literal credential in instance or launch-template user data.",
        (INSTANCE, LAUNCH_TEMPLATE),
        _user_data_secrets,
        protects="credentials readable by anyone who can describe the instance",
        fix="fetch at boot through the instance role (Secrets Manager/SSM)",
    ),
    Rule(
        "no-secrets-in-workload-env",
        "No literal credential in Kubernetes or ECS container environment.",
        WORKLOADS,
        _workload_env_secrets,
        protects="credentials in manifests, `kubectl describe`, task definitions",
        fix="`valueFrom.secretKeyRef` / ECS `secrets`",
    ),
    Rule(
        "no-secrets-in-helm-values",
        "No credential (literal or Pulumi secret) in Helm release values.",
        HELM_RELEASE,
        _helm_values_secrets,
        protects="credentials in Helm release history and Pulumi state",
        fix="a Kubernetes Secret + existingSecret/secretKeyRef",
    ),
]
ALL_POLICIES: list[ResourceValidationPolicy | StackValidationPolicy] = [rule.policy() for rule in RULES]

__all__ = ["ALL_POLICIES", "RULES", "PACK_ENFORCEMENT_LEVEL", "DEFAULT_PUBLIC_INGRESS", "SCRATCH_ADVISORY", "level_for"]
