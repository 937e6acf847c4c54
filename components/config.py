"""The stack configuration schema: every key typed, validated and defaulted.

A stack file (`stacks/Pulumi.<stack>.yaml`) holds `aws:region` plus keys in the
project namespace (`voip-infra:<key>`); `StackConfig` is the whole of it. Loading the
raw key/value map and formatting the errors live in components/config_loader.py.
"""

from __future__ import annotations

import ipaddress
import re
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    SecretStr,
    ValidationInfo,
    model_validator,
)
from pydantic.alias_generators import to_camel

from components.db_capacity import ADMIN_RESERVE, DMS_RESERVE, USABLE_FRACTION, max_connections, usable
from components.support_calendars import dms_engine_problem, eks_version_problem

PROJECT = "voip-infra"
REGION_KEY = "aws:region"

# Ranges a VPC must never overlap: the usual home/office LAN range (the NAS LAN
# lives there today) and the carrier-grade NAT range.
RESERVED_RANGES = (
    ipaddress.ip_network("192.168.0.0/16"),
    ipaddress.ip_network("100.64.0.0/10"),
)


# --------------------------------------------------------------------------- types


def _network(value: Any, parse: Any, families: str, examples: str, example: str) -> Any:
    """`value` parsed by `parse` as a CIDR of `families` (a network address, no host bits)."""
    if not isinstance(value, str):
        raise ValueError(f"must be an {families} CIDR string such as {examples}")
    try:
        return parse(value, strict=True)
    except ValueError as exc:
        raise ValueError(f"{value!r} is not a valid {families} CIDR ({exc}); write the network address, e.g. {example}") from None


def _cidr(value: Any) -> ipaddress.IPv4Network:
    if isinstance(value, ipaddress.IPv4Network):
        return value
    return _network(value, ipaddress.IPv4Network, "IPv4", "10.20.0.0/16", "10.20.0.0/16")


def _ipv4(value: Any) -> ipaddress.IPv4Address:
    if isinstance(value, ipaddress.IPv4Address):
        return value
    try:
        return ipaddress.IPv4Address(str(value))
    except ValueError:
        raise ValueError(f"{value!r} is not an IPv4 address such as 203.0.113.10") from None


def _any_cidr(value: Any) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    if isinstance(value, (ipaddress.IPv4Network, ipaddress.IPv6Network)):
        return value
    return _network(value, ipaddress.ip_network, "IPv4 or IPv6", "203.0.113.0/24 or 2001:db8:1234::/48", "2001:db8:1234::/48")


Cidr = Annotated[ipaddress.IPv4Network, BeforeValidator(_cidr), PlainSerializer(str, return_type=str)]
# Either address family (viewer allow-lists: CloudFront serves IPv4 and IPv6 clients).
AnyCidr = Annotated[ipaddress.IPv4Network | ipaddress.IPv6Network, BeforeValidator(_any_cidr), PlainSerializer(str, return_type=str)]
IPv4 = Annotated[ipaddress.IPv4Address, BeforeValidator(_ipv4), PlainSerializer(str, return_type=str)]


def _pattern(regex: str, what: str):
    compiled = re.compile(regex)

    def check(value: str) -> str:
        if not compiled.fullmatch(value):
            raise ValueError(f"{value!r} is not {what}")
        return value

    return AfterValidator(check)


_SIZE = r"(nano|micro|small|medium|large|metal|[0-9]{0,2}xlarge)"
# family.size, e.g. t4g.small, c7gn.large, m7g.2xlarge
InstanceType = Annotated[str, _pattern(r"[a-z][a-z0-9]*(-flex)?\." + _SIZE, "an EC2 instance type of the form family.size, e.g. m7g.large")]
# Graviton (arm64) families carry a "g" right after the generation digit: t4g, m7g, c7gn, r8g.
GravitonInstanceType = Annotated[
    str,
    _pattern(
        r"[a-z]+[0-9]+g[a-z]*\." + _SIZE,
        "a Graviton (arm64) instance type of the form family.size, e.g. m7g.large or c7gn.medium",
    ),
]
DbInstanceClass = Annotated[str, _pattern(r"db\.[a-z][a-z0-9]*\." + _SIZE, "an RDS instance class such as db.t4g.micro or db.r7g.large")]
CacheNodeType = Annotated[str, _pattern(r"cache\.[a-z][a-z0-9]*\." + _SIZE, "an ElastiCache node type such as cache.t4g.micro")]
DnsLabel = Annotated[str, _pattern(r"[a-z0-9]([a-z0-9-]{0,30}[a-z0-9])?", "a lowercase DNS label (a-z, 0-9, '-', at most 32 chars)")]
DomainName = Annotated[
    str,
    _pattern(r"([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}", "a lowercase domain name such as voip.example.com"),
]
UtcWindow = Annotated[str, _pattern(r"([01][0-9]|2[0-3]):[0-5][0-9]-([01][0-9]|2[0-3]):[0-5][0-9]", "a UTC window hh:mm-hh:mm")]
WeeklyWindow = Annotated[
    str,
    _pattern(
        r"(mon|tue|wed|thu|fri|sat|sun):([01][0-9]|2[0-3]):[0-5][0-9]-(mon|tue|wed|thu|fri|sat|sun):([01][0-9]|2[0-3]):[0-5][0-9]",
        "a weekly UTC window ddd:hh:mm-ddd:hh:mm (e.g. sun:18:00-sun:19:00)",
    ),
]
ImageTag = Annotated[str, _pattern(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}", "a container image tag")]
ImageDigest = Annotated[str, _pattern(r"sha256:[a-f0-9]{64}", "an image digest sha256:<64 hex>")]
AddonVersion = Annotated[str, _pattern(r"v[0-9]+\.[0-9]+\.[0-9]+-eksbuild\.[0-9]+", "an EKS add-on version such as v1.19.2-eksbuild.1")]
ChartVersion = Annotated[str, _pattern(r"[0-9]+\.[0-9]+\.[0-9]+", "a chart version such as 1.13.0")]
TcpPort = Annotated[int, Field(ge=1, le=65535)]
# Ports a non-root process listens on (coturn runs unprivileged).
UnprivilegedPort = Annotated[int, Field(ge=1024, le=65535)]
AzName = Annotated[str, _pattern(r"[a-z]{2}(-gov)?-[a-z]+-[0-9][a-z]", "an availability zone name such as ap-northeast-2a")]

# CloudWatch Logs accepts only these retention periods.
LOG_RETENTION_DAYS = (1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653)


def _retention(value: int) -> int:
    if value not in LOG_RETENTION_DAYS:
        raise ValueError(f"{value} is not a CloudWatch Logs retention; allowed: {', '.join(map(str, LOG_RETENTION_DAYS))}")
    return value


LogRetentionDays = Annotated[int, AfterValidator(_retention)]


class Model(BaseModel):
    """Base of every config section: camelCase keys, unknown keys rejected, immutable."""

    model_config = ConfigDict(
        extra="forbid",
        alias_generator=to_camel,
        populate_by_name=False,
        frozen=True,
        validate_default=True,
        hide_input_in_errors=True,
    )


class Range(Model):
    """A `min`/`max` pair (subclasses type and bound both); min <= max."""

    min: int
    max: int

    @model_validator(mode="after")
    def _check_order(self) -> Range:
        if self.min > self.max:
            raise ValueError(f"min: {self.min} is above max {self.max}; need min <= max")
        return self


# ------------------------------------------------------------------------ sections


class NatStrategy(StrEnum):
    """Where private subnets get their egress (AWSX-style strategy)."""

    PER_AZ = "per_az"  # one NAT gateway per AZ: no cross-AZ dependency (production)
    SINGLE = "single"  # one NAT gateway for the VPC: cheapest with egress (dev)
    NONE = "none"  # no NAT: private subnets reach AWS only through VPC endpoints
    # One NAT instance (small Graviton, source/dest check off) in an Auto Scaling group of 1 over the
    # public subnets; at boot it takes the stage's NAT Elastic IP and points every private default
    # route at itself (and re-asserts them every minute). ~$9/month against ~$47 for a gateway (dev).
    INSTANCE = "instance"


INTERFACE_ENDPOINT_SERVICES = (
    "ecr.api",
    "ecr.dkr",
    "sts",
    "ssm",
    "ssmmessages",
    "ec2messages",
    "logs",
    "secretsmanager",
    "kms",
    "elasticloadbalancing",
    "eks-auth",
)


class NetworkConfig(Model):
    cidr: Cidr
    azs: list[AzName] = Field(min_length=2, max_length=4)
    nat_strategy: NatStrategy = NatStrategy.SINGLE
    # VPC flow logs (issue 15 item 9), encrypted with the stage's data key either way. Days
    # kept: the log group's retention, or the bucket's expiration rule.
    flow_logs_retention_days: LogRetentionDays = 30
    # natStrategy instance: the instance type (Graviton; t4g.nano forwards ~0.5 Gbps burst, plenty for dev).
    nat_instance_type: GravitonInstanceType = "t4g.nano"
    flow_logs_traffic_type: Literal["ALL", "ACCEPT", "REJECT"] = "ALL"
    # s3: half the delivery price of CloudWatch Logs and cheaper storage (query with Athena);
    # cloud-watch-logs: Logs Insights at hand, for stages debugged interactively.
    flow_logs_destination: Literal["cloud-watch-logs", "s3"] = "s3"
    # Seconds a flow is aggregated into one record: 600 writes up to 10x fewer records for the
    # long-lived UDP flows of TURN relays and WebSockets than 60 (tools/prices.py has the figures).
    flow_logs_aggregation_seconds: Literal[60, 600] = 600
    # Interface endpoints cost ~$7/month per AZ each; off unless asked (needed with nat none).
    interface_endpoints: list[Literal[INTERFACE_ENDPOINT_SERVICES]] = []  # type: ignore[valid-type]

    @model_validator(mode="after")
    def _check(self, info: ValidationInfo) -> NetworkConfig:
        region = (info.context or {}).get("region")
        for i, az in enumerate(self.azs):
            if region and not az.startswith(region):
                raise ValueError(f"azs.{i}: {az!r} is not an availability zone of {region} (e.g. {region}a)")
        if not 16 <= self.cidr.prefixlen <= 20:
            raise ValueError(f"cidr: {self.cidr} must be a /16 to /20 (subnets are carved from it per AZ)")
        if not self.cidr.is_private:
            raise ValueError(f"cidr: {self.cidr} must be a private (RFC 1918) range")
        for reserved in RESERVED_RANGES:
            if self.cidr.overlaps(reserved):
                raise ValueError(f"cidr: {self.cidr} overlaps {reserved}, kept free for LANs reached over VPN")
        if len(set(self.azs)) != len(self.azs):
            raise ValueError("azs: each availability zone may appear once")
        return self


# Hosts the NLB answers itself (outside CloudFront): they cannot be ALB hosts too.
NLB_HOSTS = ("ws", "turns")
# With edge.signalingEntry cdn, ws.<domain> is an ALB host rule of its own at this priority.
SIGNALING_RULE_PRIORITY = 50000  # the last: its host header is unique, so order does not matter


def nlb_listeners(signaling_entry: str = "nlb", tls_entry: str = "nlb") -> tuple[str, ...]:
    """The NLB's listeners from `edge.signalingEntry` and `turn.tlsEntry` (defaults: both on
    it); empty: the stage has no NLB. Raw stack files (clone-stack) ask it too."""
    return tuple(name for name, entry in (("signaling", signaling_entry), ("turns", tls_entry)) if entry == "nlb")


# Viewer paths CloudFront sends to the ALB (everything else is static web or /files/*).
CDN_ALB_PATHS = ("/api/*", "/ws*")
# An ALB listener rule takes at most 5 condition values in total.
ALB_RULE_MAX_CONDITION_VALUES = 5

UrlPath = Annotated[str, _pattern(r"/[A-Za-z0-9._~/*?-]*", "a URL path pattern starting with / (e.g. /api/*)")]
# A literal path prefix (the WAF matches it case-insensitively at the start of the path).
PathPrefix = Annotated[str, _pattern(r"/[A-Za-z0-9._~/-]*", "a literal path prefix starting with / (e.g. /api/auth), no wildcards")]


class AlbHostRule(Model):
    """One host on the single ALB: <name>.<domain>, forwarded to an `ip` target group."""

    name: DnsLabel
    paths: list[UrlPath] = Field(default_factory=lambda: ["/*"], min_length=1, max_length=3)
    port: TcpPort = 8080
    # The Spring apps' readiness group on their management port (charts/co-talk); the config
    # refuses a host whose health check differs from what its app's chart serves.
    health_check_path: UrlPath = "/actuator/health/readiness"
    # None: the traffic port. Pods that serve health on a separate port name it here.
    health_check_port: TcpPort | None = 8081
    priority: int = Field(ge=1, le=50000)
    # This host also answers the apex domain's ALB paths (/api/*, /ws* of the web app).
    apex: bool = False


class RateLimits(Model):
    """Seed 001's nginx limits, per client IP."""

    # Off only behind an allow-list (EdgeConfig refuses it elsewhere): there every source is an
    # office or VPN egress address the whole team shares, so a per-IP limit throttles everyone
    # at once (seed 001's auth zone: 5 logins a minute for the whole office), and the list
    # already bounds who can send at all.
    enabled: bool = True
    auth_per_minute: int = Field(default=5, ge=1, le=10000)
    websocket_per_second: int = Field(default=10, ge=1, le=10000)
    general_per_second: int = Field(default=30, ge=1, le=10000)
    # Path prefixes the auth limit applies to (case-insensitive prefix match).
    auth_paths: list[PathPrefix] = Field(default_factory=lambda: ["/api/auth", "/auth"], min_length=1, max_length=5)
    websocket_paths: list[PathPrefix] = Field(default_factory=lambda: ["/ws"], min_length=1, max_length=5)


DEFAULT_CSP = (
    "default-src 'self'; img-src 'self' data: blob:; media-src 'self' blob:; connect-src 'self' https: wss:; "
    "frame-ancestors 'none'; base-uri 'self'; object-src 'none'; form-action 'self'"
)


class EdgeAlarmsConfig(Model):
    """Thresholds of the edge's CloudWatch alarms (ALB, NLB, CloudFront, WAF)."""

    enabled: bool = True
    # 5xx the ALB itself returns (no healthy target, timeouts), summed over 5 minutes.
    alb_5xx_per_5_min: int = Field(default=50, ge=1, le=1_000_000, alias="alb5xxPer5Min")
    # 5xx the targets (pods) return through the ALB, summed over 5 minutes.
    target_5xx_per_5_min: int = Field(default=50, ge=1, le=1_000_000, alias="target5xxPer5Min")
    # p99 of TargetResponseTime; at most the ALB's idle timeout (600 s).
    target_p99_seconds: float = Field(default=2.0, gt=0, le=600)
    # CloudFront 5xxErrorRate (percent of all viewer requests), 5-minute average.
    cloudfront_5xx_percent: float = Field(default=5, gt=0, le=100, alias="cloudfront5xxPercent")
    # Requests the web ACL blocked in 5 minutes (all rules and the default action).
    waf_blocked_per_5_min: int = Field(default=5000, ge=1, le=100_000_000)


class EdgeConfig(Model):
    domain: DomainName
    # An existing public zone for `domain`; none: the stage creates (and owns) the zone.
    hosted_zone_id: Annotated[str, _pattern(r"Z[A-Z0-9]{1,31}", "a Route53 zone id such as Z0123456789ABC")] | None = None
    # The zone for `domain` already exists in the account (voip-bootstrap's apex zone, for the
    # stage that serves the apex): looked up by name instead of created.
    existing_zone: bool = False
    # The stage creates its zone and writes the NS delegation into this parent domain's zone
    # (looked up by name in the account), so no stage waits for another (README "First run").
    delegate_from: DomainName | None = None
    alb_hosts: list[AlbHostRule] = Field(
        default_factory=lambda: [AlbHostRule.model_validate({"name": "api", "paths": ["/*"], "priority": 100, "apex": True})],
        min_length=1,
        max_length=20,
    )
    # Dev and clones: only these source ranges get through the WAF (default action block).
    # IPv4 and IPv6 ranges: one WAF IP set per family (CloudFront serves both). At most 25:
    # with restrictToAllowList the NLB's security group holds 2 rules per IPv4 range (443 and
    # 5349; the NLB is IPv4-only), within the default quota of 60 inbound rules per group.
    allow_list: list[AnyCidr] = Field(default=[], max_length=25)
    restrict_to_allow_list: bool = False
    load_test_bypass: bool = False
    rate_limits: RateLimits = RateLimits()
    price_class: Literal["PriceClass_200", "PriceClass_All"] = "PriceClass_200"
    alb_deletion_protection: bool = False
    nlb_deletion_protection: bool = False
    # Production: one Elastic IP per AZ on the NLB, so partners can allow-list them.
    nlb_static_ips: bool = False
    # Where wss://ws.<domain> enters: `nlb` (TLS 443 on the NLB, no WAF: policy.wafExceptions
    # argues it) or `cdn` (CloudFront + WAF -> the ALB host rule ws.<domain> /ws* -> the
    # signaling pods; clients use wss://ws.<domain>/ws). docs/edge.md "WebSocket entry".
    signaling_entry: Literal["nlb", "cdn"] = "nlb"
    # Where the ALB lives (docs/edge.md "The ALB behind a VPC origin"): `internal` (the private
    # subnets, no public address; CloudFront reaches it through a VPC origin, the only way in)
    # or `internet-facing` (the public subnets, a CloudFront custom origin). Internal by default:
    # secure for new stages and clones. Moving a live ALB replaces it: a stage moves on purpose.
    alb_scheme: Literal["internal", "internet-facing"] = "internal"
    content_security_policy: Annotated[str, Field(min_length=1, max_length=1783)] = DEFAULT_CSP
    log_retention_days: LogRetentionDays = 90
    alarms: EdgeAlarmsConfig = EdgeAlarmsConfig()

    @property
    def allow_list_v4(self) -> list[str]:
        return [str(c) for c in self.allow_list if c.version == 4]

    @property
    def allow_list_v6(self) -> list[str]:
        return [str(c) for c in self.allow_list if c.version == 6]

    @property
    def alb_internal(self) -> bool:
        return self.alb_scheme == "internal"

    @property
    def cdn_ipv6(self) -> bool:
        """CloudFront answers IPv6 (AAAA records) unless the edge is restricted to an allow-list
        without IPv6 ranges: those viewers would be blocked; off, they fall back to IPv4."""
        return not self.restrict_to_allow_list or bool(self.allow_list_v6)

    @model_validator(mode="after")
    def _check(self) -> EdgeConfig:
        if self.existing_zone and self.hosted_zone_id:
            raise ValueError("existingZone: set either hostedZoneId or existingZone, not both")
        if self.delegate_from is not None:
            if self.existing_zone or self.hosted_zone_id:
                raise ValueError("delegateFrom: only a stage that creates its own zone delegates it (drop hostedZoneId / existingZone)")
            if not self.domain.endswith("." + self.delegate_from):
                raise ValueError(f"delegateFrom: {self.delegate_from!r} is not a parent of domain {self.domain!r}")
        if self.restrict_to_allow_list and not self.allow_list:
            raise ValueError("allowList: must name at least one CIDR when restrictToAllowList is true")
        for i, cidr in enumerate(self.allow_list):
            if cidr.prefixlen == 0:
                raise ValueError(f"allowList.{i}: {cidr} allows everyone; name your office/VPN ranges")
        if self.restrict_to_allow_list and not self.allow_list_v4:
            raise ValueError("allowList: name at least one IPv4 range (every viewer can reach CloudFront over IPv4)")
        if not self.rate_limits.enabled and not self.restrict_to_allow_list:
            raise ValueError(
                "rateLimits.enabled: false is allowed only with restrictToAllowList: true "
                "(an edge open to everyone keeps seed 001's per-IP limits)"
            )
        names = [h.name for h in self.alb_hosts]
        if len(set(names)) != len(names):
            raise ValueError("albHosts: host names must be unique")
        for i, host in enumerate(self.alb_hosts):
            if host.name in NLB_HOSTS:
                raise ValueError(f"albHosts.{i}.name: {host.name!r} is taken by the NLB ({', '.join(NLB_HOSTS)})")
            # host header (1, or 2 with the apex) + paths + the origin-secret header
            used = 1 + int(host.apex) + len(host.paths) + 1
            if used > ALB_RULE_MAX_CONDITION_VALUES:
                raise ValueError(
                    f"albHosts.{i}.paths: a listener rule takes at most {ALB_RULE_MAX_CONDITION_VALUES} condition values; "
                    f"this host needs {used} (host names, paths and the origin header): use fewer paths"
                )
        prios = [h.priority for h in self.alb_hosts]
        if len(set(prios)) != len(prios):
            raise ValueError("albHosts: priorities must be unique")
        if self.signaling_entry == "cdn" and SIGNALING_RULE_PRIORITY in prios:
            i = prios.index(SIGNALING_RULE_PRIORITY)
            raise ValueError(
                f"albHosts.{i}.priority: {SIGNALING_RULE_PRIORITY} is the ws.<domain> rule's (signalingEntry: cdn); pick another"
            )
        if sum(h.apex for h in self.alb_hosts) > 1:
            raise ValueError("albHosts: at most one host may set apex: true")
        return self


class NodeGroupConfig(Model):
    instance_types: list[GravitonInstanceType] = Field(min_length=1, max_length=8)
    capacity_type: Literal["ON_DEMAND", "SPOT"] = "ON_DEMAND"
    min_size: int = Field(default=1, ge=0, le=100)
    desired_size: int = Field(default=2, ge=0, le=100)
    max_size: int = Field(default=3, ge=1, le=100)
    disk_size_gib: int = Field(default=40, ge=20, le=1000)

    @model_validator(mode="after")
    def _check(self) -> NodeGroupConfig:
        if not self.min_size <= self.desired_size <= self.max_size:
            raise ValueError(
                f"desiredSize: need minSize <= desiredSize <= maxSize, got {self.min_size} <= {self.desired_size} <= {self.max_size}"
            )
        return self


class AddonVersions(Model):
    """EKS add-on builds for the cluster's Kubernetes minor (issue 15 item 3: 1.36). Builds EKS
    resolved on a 1.36 cluster in September 2026 (a public EKS template's compatibility matrix,
    `aws eks describe-addon-versions --kubernetes-version 1.36`); kube-proxy's minor must be the
    cluster's (checked below)."""

    vpc_cni: AddonVersion = "v1.22.4-eksbuild.3"
    coredns: AddonVersion = "v1.14.3-eksbuild.16"
    kube_proxy: AddonVersion = "v1.36.0-eksbuild.21"
    eks_pod_identity_agent: AddonVersion = "v1.3.10-eksbuild.3"


# Cluster Autoscaler chart (https://kubernetes.github.io/autoscaler) -> the autoscaler's
# minor version it runs (the chart's appVersion), from the history of
# cluster-autoscaler/charts/cluster-autoscaler/Chart.yaml in kubernetes/autoscaler (charts/
# before October 2025). The autoscaler supports only the Kubernetes minor it was built for.
CLUSTER_AUTOSCALER_CHART_MINORS = {
    **dict.fromkeys(("9.46.0", "9.46.1", "9.46.2", "9.46.3", "9.46.4", "9.46.5", "9.46.6"), "1.32"),
    **dict.fromkeys(("9.47.0", "9.48.0", "9.49.0", "9.50.0", "9.50.1", "9.51.0"), "1.33"),
    **dict.fromkeys(("9.52.0", "9.52.1", "9.53.0"), "1.34"),
    **dict.fromkeys(("9.54.0", "9.54.1", "9.55.0", "9.55.1", "9.56.0", "9.57.0", "9.58.0", "9.59.0"), "1.35"),
}


def _minor(version: str) -> str:
    """'v1.36.1' / '1.36.0' / 'v1.36.0-eksbuild.21' -> '1.36'."""
    return ".".join(version.lstrip("v").split(".")[:2])


class AutoscalerConfig(Model):
    """Node autoscaling: the Kubernetes Cluster Autoscaler moves each managed node group's
    desired size between its minSize and maxSize (the node groups' config stays the ceiling)."""

    enabled: bool = True
    # cluster-autoscaler chart. 9.59.0 (2026-07) is the newest published chart; it ships app
    # 1.35.0, so imageTag runs the 1.36 release on it (RBAC and flags unchanged from 1.35).
    chart_version: ChartVersion = "9.59.0"
    # registry.k8s.io/autoscaling/cluster-autoscaler tag (release cluster-autoscaler-1.36.1);
    # None: the chart's appVersion. Its minor must be the cluster's.
    image_tag: Annotated[str, _pattern(r"v[0-9]+\.[0-9]+\.[0-9]+", "a Cluster Autoscaler release tag such as v1.36.1")] | None = "v1.36.1"
    # How long a node must be unneeded before it is removed (--scale-down-unneeded-time).
    scale_down_unneeded_minutes: int = Field(default=10, ge=1, le=120)
    # Off: scale up only (e.g. while load testing, to keep the capacity that was reached).
    scale_down_enabled: bool = True

    @property
    def app_minor(self) -> str | None:
        """The Kubernetes minor the autoscaler that runs was built for (None: unknown chart)."""
        if self.image_tag:
            return _minor(self.image_tag)
        return CLUSTER_AUTOSCALER_CHART_MINORS.get(self.chart_version)


# A role of the stage's account by name (with its path, e.g. aws-reserved/sso.amazonaws.com/
# ap-northeast-2/AWSReservedSSO_Admin_0123abcd) or by full ARN; the program pins the exact ARN.
IamRoleRef = Annotated[
    str,
    _pattern(
        r"(arn:aws:iam::[0-9]{12}:role/)?[A-Za-z0-9+=,.@_-]+(/[A-Za-z0-9+=,.@_-]+)*",
        "an IAM role ARN (arn:aws:iam::123456789012:role/NAME) or a role name (with its path) in the stage's account",
    ),
]


class ClusterAccessConfig(Model):
    """Who may use the Kubernetes API (EKS access entries; authenticationMode API, no aws-auth)."""

    # People: cluster admin (AmazonEKSClusterAdminPolicy) / read-only without Secrets (AmazonEKSViewPolicy).
    admins: list[IamRoleRef] = Field(default=[], max_length=20)
    viewers: list[IamRoleRef] = Field(default=[], max_length=20)
    # The CI roles of voip-bootstrap (voip-ci/voip-infra-<stage>-deploy and -preview) get entries:
    # deploy = cluster admin, preview = view. `ciRoles` names whose (default: this stage's own;
    # clones use `review`, the GitHub environment of review stacks).
    ci_access: bool = True
    ci_roles: DnsLabel | None = None
    # The principal that creates the cluster (its first `pulumi up`): EKS already made it cluster
    # admin (bootstrapClusterCreatorAdminPermissions), and refuses a second entry for it. `ci`:
    # the CI deploy role (the workflows bring every stage up). Set once, before the first up.
    creator: Literal["ci"] | IamRoleRef = "ci"

    @model_validator(mode="after")
    def _check(self, info: ValidationInfo) -> ClusterAccessConfig:
        for what, refs in (("admins", self.admins), ("viewers", self.viewers)):
            if len(set(refs)) != len(refs):
                raise ValueError(f"{what}: each role may appear once")
        both = set(self.admins) & set(self.viewers)
        if both:
            raise ValueError(f"viewers: {sorted(both)[0]!r} is also an admin; an IAM principal has one access entry")
        if self.creator != "ci" and self.creator in self.admins:
            raise ValueError(
                f"admins: {self.creator!r} is the creator, already cluster admin through EKS's own entry "
                "(a second entry fails with ResourceInUseException); drop it from admins"
            )
        if (info.context or {}).get("protect_data") and not self.admins:
            raise ValueError(
                "admins: a stage that holds data (protectData: true) needs at least one person as cluster admin besides "
                "the creator (break-glass when CI is down); name a role, e.g. admins: [platform-admin]"
            )
        return self


class CiRunnerConfig(Model):
    """A CodeBuild-hosted GitHub Actions runner in the stage's private subnets (components/cluster/ci_runner.py)."""

    enabled: bool = True
    # owner/name of this repository on GitHub (the runner's webhook and checkouts).
    repository: Annotated[
        str, _pattern(r"[A-Za-z0-9][A-Za-z0-9-]{0,38}/[A-Za-z0-9._-]{1,100}", "a GitHub repository owner/name, e.g. example-org/voip-infra")
    ] = "example-org/voip-infra"
    # CodeBuild's Ubuntu image (Python 3.11, what actions/setup-python expects) and size.
    image: Annotated[
        str, _pattern(r"aws/codebuild/standard:[0-9]+\.[0-9]+", "a CodeBuild standard image such as aws/codebuild/standard:7.0")
    ] = "aws/codebuild/standard:7.0"
    compute_type: Literal["BUILD_GENERAL1_SMALL", "BUILD_GENERAL1_MEDIUM", "BUILD_GENERAL1_LARGE"] = "BUILD_GENERAL1_MEDIUM"
    # A first `pulumi up` of production takes ~45 min (tools plan: first_up_minutes); CodeBuild allows 5-2160.
    timeout_minutes: int = Field(default=120, ge=5, le=2160)
    log_retention_days: LogRetentionDays = 30


class ClusterConfig(Model):
    # In EKS standard support on components/support_calendars.CALENDARS_CHECKED (1.36: until 2027-08-02).
    version: Annotated[str, _pattern(r"1\.(2[89]|3[0-9])", "a Kubernetes minor version such as 1.36")] = "1.36"
    # Empty list: private endpoint only.
    public_access_cidrs: list[Cidr] = []
    access: ClusterAccessConfig = ClusterAccessConfig()
    ci_runner: CiRunnerConfig = CiRunnerConfig()
    system_nodes: NodeGroupConfig = NodeGroupConfig.model_validate(
        {"instanceTypes": ["t4g.medium"], "minSize": 1, "desiredSize": 2, "maxSize": 3}
    )
    signaling_nodes: NodeGroupConfig = NodeGroupConfig.model_validate(
        {"instanceTypes": ["c7g.large"], "minSize": 1, "desiredSize": 2, "maxSize": 6}
    )
    # The Spring apps' pool (apps.*), tainted for them. Stateless pods: SPOT where data is not protected.
    # null: no API pool; the apps run on the signaling nodes (their selector and toleration), which
    # must then be sized for both (tools/node_fit.py proves it per stage). Only where protectData is false.
    api_nodes: NodeGroupConfig | None = NodeGroupConfig.model_validate(
        {"instanceTypes": ["c7g.large"], "minSize": 1, "desiredSize": 2, "maxSize": 4}
    )
    addons: AddonVersions = AddonVersions()
    # aws-load-balancer-controller chart from https://aws.github.io/eks-charts.
    lb_controller_chart_version: ChartVersion = "1.14.0"
    lb_controller_replicas: int = Field(default=2, ge=1, le=3)
    # prometheus-operator-crds chart (ServiceMonitor / PrometheusRule CRDs the signaling chart uses).
    prometheus_crds_chart_version: ChartVersion = "32.0.0"
    # metrics-server chart from https://kubernetes-sigs.github.io/metrics-server/ (the HPA's CPU metric).
    metrics_server_chart_version: ChartVersion = "3.12.2"
    log_retention_days: LogRetentionDays = 90
    autoscaler: AutoscalerConfig = AutoscalerConfig()

    @model_validator(mode="after")
    def _check(self, info: ValidationInfo) -> ClusterConfig:
        if problem := eks_version_problem(self.version):
            raise ValueError(f"version: {problem}")
        auto = self.autoscaler
        minor = auto.app_minor
        if auto.enabled and minor is not None and minor != self.version:
            where = "imageTag" if auto.image_tag else "chartVersion"
            what = f"image {auto.image_tag}" if auto.image_tag else f"chart {auto.chart_version}"
            fits = sorted(v for v, m in CLUSTER_AUTOSCALER_CHART_MINORS.items() if m == self.version)
            hint = f"e.g. chart {fits[-1]}" if fits else f"or imageTag v{self.version}.x on the newest chart"
            raise ValueError(
                f"autoscaler.{where}: {what} runs Cluster Autoscaler {minor}, the cluster runs {self.version}; "
                f"the autoscaler must match the cluster's minor ({hint})"
            )
        if _minor(self.addons.kube_proxy) != self.version:
            raise ValueError(
                f"addons.kubeProxy: {self.addons.kube_proxy} is kube-proxy {_minor(self.addons.kube_proxy)}, the cluster runs "
                f"{self.version}; EKS offers kube-proxy builds of the cluster's own minor (v{self.version}.x-eksbuild.N)"
            )
        for i, cidr in enumerate(self.public_access_cidrs):
            if cidr.prefixlen == 0:
                raise ValueError(f"publicAccessCidrs.{i}: 0.0.0.0/0 opens the API server to the internet; name your office/VPN ranges")
        if self.signaling_nodes.capacity_type == "SPOT" and (info.context or {}).get("protect_data"):
            raise ValueError(
                "signalingNodes.capacityType: SPOT is not allowed while protectData is true: a spot reclaim drops live calls; use ON_DEMAND"
            )
        if self.system_nodes.capacity_type == "SPOT" and (info.context or {}).get("protect_data"):
            raise ValueError(
                "systemNodes.capacityType: SPOT is not allowed while protectData is true: the system pool holds the Prometheus "
                "volume, CoreDNS and the controllers; a reclaim of two nodes at once takes them down; use ON_DEMAND"
            )
        if self.api_nodes is None and (info.context or {}).get("protect_data"):
            raise ValueError(
                "apiNodes: null is not allowed while protectData is true: a stage holding data keeps the API on its own "
                "nodes, so an API burst (JVM start-up, a deploy's surge) cannot take CPU from live calls' signaling pods "
                "and one node's drain or reclaim does not hit both; give apiNodes an instance type and sizes"
            )
        if self.api_nodes is not None and self.api_nodes.capacity_type == "SPOT" and (info.context or {}).get("protect_data"):
            raise ValueError(
                "apiNodes.capacityType: SPOT is not allowed while protectData is true (a reclaim of several nodes at once "
                "can take the API below its PodDisruptionBudget); use ON_DEMAND"
            )
        return self


class RestoreFrom(Model):
    """A clone's database starts from a snapshot of another stage's (`clone-stack --snapshot`)."""

    stage: DnsLabel
    # `latest`: the newest snapshot (automated or manual) of <stage>-postgres when `up` runs; or a
    # snapshot identifier (rds:<db>-<date> for automated ones, or a manual snapshot's name).
    snapshot: Annotated[
        str,
        _pattern(
            r"latest|(rds:)?[a-zA-Z][a-zA-Z0-9-]{0,254}",
            "'latest' or an RDS snapshot identifier such as rds:production-postgres-2026-11-28-17-05",
        ),
    ] = "latest"
    # The source's PostgreSQL major, recorded by clone-stack: a restore keeps the snapshot's major.
    engine_version: Annotated[str, _pattern(r"1[6-8]", "a PostgreSQL major version such as 16")]


class DatabaseConfig(Model):
    # The MAJOR version only: AWS applies minor versions itself (autoMinorVersionUpgrade), and a
    # prefix never drifts from the running minor. A major upgrade is an explicit config change.
    engine_version: Annotated[
        str,
        _pattern(r"1[6-8]", "a PostgreSQL major version such as 16 (minors are applied by AWS; write 16, not 16.6)"),
    ] = "16"
    instance_class: DbInstanceClass = "db.t4g.micro"
    allocated_storage_gib: int = Field(default=20, ge=20, le=65536)
    max_allocated_storage_gib: int = Field(default=100, ge=20, le=65536)
    multi_az: bool = False
    read_replicas: int = Field(default=0, ge=0, le=5)
    replica_instance_class: DbInstanceClass | None = None
    backup_retention_days: int = Field(default=7, ge=1, le=35)
    backup_window: UtcWindow = "17:00-18:00"  # 02:00 KST
    maintenance_window: WeeklyWindow = "sun:18:30-sun:19:30"  # Monday 03:30 KST
    performance_insights_retention_days: int = 7
    monitoring_interval_seconds: Literal[0, 1, 5, 10, 15, 30, 60] = 60
    database_name: Annotated[str, _pattern(r"[a-z][a-z0-9_]{0,62}", "a lowercase identifier")] = "voip"
    master_username: Annotated[str, _pattern(r"[a-z][a-z0-9_]{0,15}", "a lowercase identifier of at most 16 chars")] = "voip_admin"
    # Raise to reset the master password now (a new random password, written to RDS and its secret).
    master_password_version: int = Field(default=1, ge=1)
    # Secrets Manager rotates the master password (AWS's single-user PostgreSQL rotation Lambda)
    # every this many days.
    master_password_rotation_days: int = Field(default=30, ge=1, le=365)
    skip_final_snapshot: bool = False
    # Off: modifications wait for the maintenance window instead of restarting the database now.
    apply_immediately: bool = False
    # This stage's snapshots may seed clones (`clone-stack --snapshot`): real data leaves the stage
    # for a disposable one, so it is a decision per source stage (off unless set).
    snapshots_for_clones: bool = False
    restore_from: RestoreFrom | None = None
    # A burstable writer (db.t*) where the stage holds data runs out of CPU credits under load; allowed
    # only with this explicit acknowledgement (the CPUCreditBalance alarm then watches it).
    allow_burstable_writer: bool = False
    # An explicit max_connections in the parameter group (static: applied at the next reboot).
    # None: RDS's default LEAST(DBInstanceClassMemory/9531392, 5000), which the capacity check computes.
    max_connections: int | None = Field(default=None, ge=20, le=262143)
    # Statements slower than this are logged (log_min_duration_statement).
    slow_query_ms: int = Field(default=1000, ge=50, le=600_000)
    log_retention_days: LogRetentionDays = 30

    @model_validator(mode="after")
    def _check(self, info: ValidationInfo) -> DatabaseConfig:
        protect = (info.context or {}).get("protect_data")
        if self.skip_final_snapshot and protect:
            raise ValueError("skipFinalSnapshot: not allowed while protectData is true (the stage holds real data)")
        if self.max_allocated_storage_gib < self.allocated_storage_gib:
            raise ValueError("maxAllocatedStorageGib: must be >= allocatedStorageGib")
        pi = self.performance_insights_retention_days
        if pi != 7 and not (pi % 31 == 0 and 31 <= pi <= 713) and pi != 731:
            raise ValueError("performanceInsightsRetentionDays: allowed: 7, a multiple of 31 up to 713, or 731")
        if self.restore_from is not None:
            if self.restore_from.engine_version != self.engine_version:
                raise ValueError(
                    f"engineVersion: a restore keeps the snapshot's PostgreSQL major ({self.restore_from.engine_version}); "
                    f"set engineVersion: '{self.restore_from.engine_version}' and upgrade after the restore"
                )
            if protect:
                raise ValueError("restoreFrom: only a disposable clone (protectData: false) restores another stage's snapshot")
        if self.replica_instance_class is not None and self.read_replicas == 0:
            raise ValueError("replicaInstanceClass: set readReplicas above 0, or drop this key")
        if self.instance_class.startswith("db.t") and protect and not self.allow_burstable_writer:
            raise ValueError(
                f"instanceClass: {self.instance_class} is burstable (CPU credits) and the stage holds data; use a db.m7g/db.r7g class, "
                "or set allowBurstableWriter: true to accept it (the CPUCreditBalance alarm watches it)"
            )
        if self.monitoring_interval_seconds == 0 and protect:
            raise ValueError("monitoringIntervalSeconds: enhanced monitoring may not be off while protectData is true (1-60)")
        return self


# Engine -> the ElastiCache versions it accepts and their parameter-group family.
CACHE_FAMILIES = {
    ("redis", "7"): "redis7",
    ("valkey", "7"): "valkey7",
    ("valkey", "8"): "valkey8",
}
# The versions ElastiCache offers per engine (docs: "Supported engines and versions", read 2026-11-29;
# Valkey 9.x exists too but its parameter family is not used here yet).
CACHE_VERSIONS = {"redis": ("7.0", "7.1"), "valkey": ("7.2", "8.0", "8.1", "8.2")}

MaxmemoryPolicy = Literal[
    "volatile-lru", "allkeys-lru", "volatile-lfu", "allkeys-lfu", "volatile-random", "allkeys-random", "volatile-ttl", "noeviction"
]


class CacheGroupConfig(Model):
    node_type: CacheNodeType = "cache.t4g.micro"
    # Replicas besides the primary. >= 1 turns on automatic failover and Multi-AZ.
    replicas: int = Field(default=0, ge=0, le=5)
    # What Redis does when memory is full: a cache may evict (allkeys-lru); pub/sub and
    # streams must not silently lose data (noeviction: writes fail and the alarm fires).
    maxmemory_policy: MaxmemoryPolicy = "volatile-lru"
    # placement cluster only: the pod's maxmemory (its memory limit adds headroom above it).
    # ElastiCache sizes memory by nodeType; in the cluster there is no node type. Left out of
    # the plan's config while unset (ElastiCache stages).
    memory_mib: int | None = Field(default=None, ge=32, le=1024, exclude_if=lambda v: v is None)

    @property
    def maxmemory_mib(self) -> int:
        return self.memory_mib if self.memory_mib is not None else CLUSTER_CACHE_DEFAULT_MIB


# Group names go into replication group ids ("<stage>-<group>", at most 40 chars).
CacheGroupName = Annotated[
    str, _pattern(r"[a-z]([a-z0-9-]{0,14}[a-z0-9])?", "a lowercase name of at most 16 chars (a-z, 0-9, '-'), e.g. pubsub")
]


# maxmemory of an in-cluster group without memoryMib: ample for a development stage's cache
# and pub/sub (a cache.t4g.micro offers ~0.4 GiB), small enough to fit a t4g.medium system node.
CLUSTER_CACHE_DEFAULT_MIB = 128


class CachePlacement(StrEnum):
    # ElastiCache replication groups: TLS, AUTH, Multi-AZ with replicas, snapshots, alarms.
    ELASTICACHE = "elasticache"
    # One Valkey pod per group in the cluster (charts/valkey): sleeps with the nodes, no TLS,
    # no replica, no snapshot. Only where protectData is false (docs/data.md "In-cluster cache").
    CLUSTER = "cluster"


class CacheConfig(Model):
    placement: CachePlacement = CachePlacement.ELASTICACHE
    # Valkey: Redis-7.2-compatible, node price 20 % below Redis OSS. redis -> valkey is an online
    # in-place upgrade (pulumi-aws updates the group); valkey -> redis forces a replacement.
    engine: Literal["redis", "valkey"] = "valkey"
    engine_version: Annotated[str, _pattern(r"[78]\.[0-9]+", "an engine version major.minor such as 7.1 or 8.2")] = "8.2"
    groups: dict[CacheGroupName, CacheGroupConfig] = Field(
        default_factory=lambda: {"cache": CacheGroupConfig(), "pubsub": CacheGroupConfig()}, min_length=1, max_length=6
    )
    snapshot_retention_days: int = Field(default=1, ge=0, le=35)
    snapshot_window: UtcWindow = "16:00-17:00"
    maintenance_window: WeeklyWindow = "sun:19:30-sun:20:30"
    log_retention_days: LogRetentionDays = 30
    # Modifications wait for the maintenance window unless this is on.
    apply_immediately: bool = False

    @model_validator(mode="after")
    def _check(self, info: ValidationInfo) -> CacheConfig:
        if self.engine_version not in CACHE_VERSIONS[self.engine]:
            raise ValueError(
                f"engineVersion: {self.engine} {self.engine_version} is not offered by ElastiCache; "
                f"allowed for {self.engine}: {', '.join(CACHE_VERSIONS[self.engine])}"
            )
        problems = self._placement_problems(bool((info.context or {}).get("protect_data")))
        if problems:
            raise _MultiProblem(problems)
        return self

    def _placement_problems(self, protect: bool) -> list[str]:
        if self.placement == CachePlacement.ELASTICACHE:
            return [
                f"groups.{g}.memoryMib: only for placement cluster (ElastiCache sizes memory by nodeType); drop the key"
                for g, gcfg in self.groups.items()
                if gcfg.memory_mib is not None
            ]
        problems = []
        if protect:
            problems.append(
                "placement: cluster is not allowed while protectData is true (a stage holding data keeps a managed, "
                "Multi-AZ, backed-up cache); allowed: elasticache"
            )
        if self.engine != "valkey":
            problems.append(f"placement: cluster runs the official Valkey image; set engine: valkey (not {self.engine})")
        for g, gcfg in self.groups.items():
            if gcfg.replicas:
                problems.append(
                    f"groups.{g}.replicas: placement cluster runs one pod per group with no replica and no failover; "
                    f"set replicas: 0 or placement: elasticache"
                )
            if "node_type" in gcfg.model_fields_set:
                problems.append(f"groups.{g}.nodeType: means nothing in placement cluster; size the pod with memoryMib (32-1024)")
        return problems

    @property
    def in_cluster(self) -> bool:
        return self.placement == CachePlacement.CLUSTER

    @property
    def parameter_family(self) -> str:
        return CACHE_FAMILIES[(self.engine, self.engine_version.split(".")[0])]


class StorageConfig(Model):
    """The file bucket replacing MinIO."""

    noncurrent_version_expiration_days: int = Field(default=90, ge=1, le=3650)
    abort_incomplete_multipart_days: int = Field(default=7, ge=1, le=365)
    force_destroy: bool = False

    @model_validator(mode="after")
    def _check(self, info: ValidationInfo) -> StorageConfig:
        if self.force_destroy and (info.context or {}).get("protect_data"):
            raise ValueError("forceDestroy: not allowed while protectData is true (the stage holds real data)")
        return self


class PortRange(Range):
    min: UnprivilegedPort
    max: UnprivilegedPort


class TurnImageConfig(Model):
    """The coturn container image (coturn is not packaged for Amazon Linux 2023)."""

    repository: Annotated[
        str, _pattern(r"[a-z0-9.-]+(:[0-9]+)?(/[a-z0-9._-]+)+", "an image repository such as docker.io/coturn/coturn")
    ] = "docker.io/coturn/coturn"
    tag: ImageTag = "4.6.3"
    # Set it to pin the exact image (recommended where the stage holds real users).
    digest: ImageDigest | None = None

    @property
    def reference(self) -> str:
        return f"{self.repository}:{self.tag}" + (f"@{self.digest}" if self.digest else "")


class TurnConfig(Model):
    # Fixed nodes, one Elastic IP each, spread round-robin over the stage's AZs. Capacity
    # is added by raising nodeCount (the NetworkOut alarm says when).
    node_count: int = Field(default=1, ge=1, le=20)
    instance_type: GravitonInstanceType = "c7gn.medium"
    # Bandwidth of one node, used for the 80% alarm (seed 000 incident scenario 2).
    node_bandwidth_mbps: int = Field(default=1000, ge=10, le=200000)
    bandwidth_alarm_percent: int = Field(default=80, ge=10, le=100)
    realm: DomainName | None = None  # default turn.<edge.domain>
    listening_port: UnprivilegedPort = 3478
    tls_port: UnprivilegedPort = 5349
    relay_ports: PortRange = PortRange.model_validate({"min": 49152, "max": 65535})
    metrics_port: UnprivilegedPort = 9641
    # Bandwidth one TURN session may use, per direction, in BITS per second (seed 000:
    # 1 Mbps per user). Rendered as coturn's max-bps, which counts BYTES per second.
    max_bits_per_second: int = Field(default=1_000_000, ge=64_000, le=1_000_000_000)
    total_quota: int = Field(default=1000, ge=1)
    user_quota: int = Field(default=10, ge=1)
    log_retention_days: LogRetentionDays = 30
    root_volume_gib: int = Field(default=16, ge=8, le=200)
    image: TurnImageConfig = TurnImageConfig()
    # TURN over TLS (turns:, tlsPort) ends on the NLB; `none`: no TURNS at all, clients use
    # turn: on listeningPort (UDP and TCP) at the nodes' addresses (turn.<domain>).
    tls_entry: Literal["nlb", "none"] = "nlb"

    @model_validator(mode="after")
    def _check(self) -> TurnConfig:
        if self.max_bits_per_second % 8:
            raise ValueError(
                f"maxBitsPerSecond: {self.max_bits_per_second} is not a whole number of bytes per second "
                "(coturn's max-bps counts bytes); give a multiple of 8, e.g. 1000000 for 1 Mbps"
            )
        fixed = {self.listening_port, self.tls_port, self.metrics_port}
        if len(fixed) != 3:
            raise ValueError("listeningPort, tlsPort and metricsPort must differ")
        for port in sorted(fixed):
            if self.relay_ports.min <= port <= self.relay_ports.max:
                raise ValueError(f"relayPorts: range {self.relay_ports.min}-{self.relay_ports.max} contains port {port}")
        return self


class ImageConfig(Model):
    repository: Annotated[str, _pattern(r"[a-z0-9.-]+(:[0-9]+)?(/[a-z0-9._-]+)+", "an image repository such as ghcr.io/org/signaling")]
    tag: ImageTag = "1.0.0"
    digest: ImageDigest | None = None

    def check_pinned(self, info: ValidationInfo) -> None:
        """Stages holding real data (validated with context protect_data) run an immutable image."""
        if self.digest is None and (info.context or {}).get("protect_data"):
            raise ValueError("image.digest: required while protectData is true (stages holding real data run an immutable image)")


class ReplicaBounds(Range):
    min: int = Field(default=3, ge=1, le=100)
    max: int = Field(default=20, ge=1, le=500)


class SignalingConfig(Model):
    image: ImageConfig = ImageConfig.model_validate({"repository": "ghcr.io/voip-infra/signaling-server"})
    namespace: DnsLabel = "voip"
    replicas: ReplicaBounds = ReplicaBounds()
    target_cpu_percent: int = Field(default=70, ge=10, le=100)
    connections_per_pod: int = Field(default=1000, ge=1)
    # Scale on `websocket_connections` per pod too (seed 000). Needs prometheus-adapter
    # serving that metric: while it is unavailable the HPA scales up on CPU but never down.
    connections_metric: bool = True
    termination_grace_seconds: int = Field(default=30, ge=5, le=3600)
    # preStop pause while the load balancers deregister a stopping pod (part of the grace period).
    pre_stop_sleep_seconds: int = Field(default=10, ge=0, le=3599)
    release_timeout_seconds: int = Field(default=600, ge=60, le=3600)
    # ServiceMonitor, PrometheusRule and the Grafana dashboard ConfigMap.
    monitoring: bool = True
    # The cache group (cache.groups) whose URL the pods get as REDIS_URL (pub/sub between pods).
    redis_group: DnsLabel = "pubsub"

    @model_validator(mode="after")
    def _check(self, info: ValidationInfo) -> SignalingConfig:
        if self.pre_stop_sleep_seconds >= self.termination_grace_seconds:
            raise ValueError(
                f"preStopSleepSeconds: {self.pre_stop_sleep_seconds} must be below terminationGraceSeconds "
                f"{self.termination_grace_seconds} (the server drains its WebSockets in the rest)"
            )
        self.image.check_pinned(info)
        return self


# The Spring apps' chart (charts/co-talk): ports and the readiness path it serves. The ALB
# host of each app must health-check exactly this (edge.albHosts[].healthCheckPath/Port).
APP_HTTP_PORT = 8080
APP_MANAGEMENT_PORT = 8081
APP_READINESS_PATH = "/actuator/health/readiness"


class AppPools(Model):
    """HikariCP pools of one pod (seed 001: up to 50 connections per instance)."""

    writer_pool_size: int = Field(default=50, ge=1, le=500)
    # Reads routed to the replicas; on a stage without replicas this pool opens on the writer too.
    reader_pool_size: int = Field(default=50, ge=0, le=500)


class CanaryConfig(Model):
    """Argo Rollouts canary of the app: the weights it steps through, each held `pauseSeconds`
    and then judged by the 5xx ratio of the canary pods; above `maxErrorPercent` it aborts."""

    enabled: bool = True
    steps: list[Annotated[int, Field(ge=1, le=99)]] = Field(default_factory=lambda: [5, 25, 50], min_length=1, max_length=10)
    pause_seconds: int = Field(default=60, ge=30, le=3600)
    max_error_percent: float = Field(default=5, gt=0, lt=100)

    @model_validator(mode="after")
    def _check(self) -> CanaryConfig:
        if self.steps != sorted(set(self.steps)):
            raise ValueError(f"steps: {self.steps} must rise strictly (e.g. [5, 25, 50]); 100 is implied at the end")
        return self


class AppResources(Model):
    cpu_request_millicores: int = Field(default=500, ge=100, le=16000)
    cpu_limit_millicores: int = Field(default=2000, ge=100, le=16000)
    # Request = limit: the JVM heap is a fixed share of it, and memory is never overcommitted.
    memory_mib: int = Field(default=1024, ge=512, le=65536)
    # -XX:MaxRAMPercentage: the heap's share of the container limit (the rest: metaspace, threads, buffers).
    heap_percent: int = Field(default=75, ge=25, le=85)

    @model_validator(mode="after")
    def _check(self) -> AppResources:
        if self.cpu_limit_millicores < self.cpu_request_millicores:
            raise ValueError("cpuLimitMillicores: must be >= cpuRequestMillicores")
        return self


class AppConfig(Model):
    """One release of charts/co-talk (`co-talk-<name>`), bound to the ALB host `host`."""

    host: DnsLabel
    image: ImageConfig = ImageConfig.model_validate({"repository": "ghcr.io/voip-infra/co-talk"})
    replicas: ReplicaBounds = ReplicaBounds()
    target_cpu_percent: int = Field(default=70, ge=10, le=100)
    resources: AppResources = AppResources()
    database: AppPools = AppPools()
    canary: CanaryConfig = CanaryConfig()
    # Seed 001: 30 s graceful shutdown, after the preStop pause while the ALB deregisters the pod.
    termination_grace_seconds: int = Field(default=45, ge=15, le=600)
    pre_stop_sleep_seconds: int = Field(default=10, ge=0, le=120)
    release_timeout_seconds: int = Field(default=900, ge=120, le=3600)

    @model_validator(mode="after")
    def _check(self, info: ValidationInfo) -> AppConfig:
        if self.termination_grace_seconds - self.pre_stop_sleep_seconds < 10:
            raise ValueError(
                f"terminationGraceSeconds: {self.termination_grace_seconds} leaves under 10 s after the "
                f"{self.pre_stop_sleep_seconds} s preStop pause for Spring's graceful shutdown"
            )
        self.image.check_pinned(info)
        return self


AppName = Annotated[str, _pattern(r"[a-z]([a-z0-9-]{0,14}[a-z0-9])?", "a lowercase name of at most 16 chars (a-z, 0-9, '-'), e.g. api")]
GhcrUser = Annotated[str, _pattern(r"[A-Za-z0-9](-?[A-Za-z0-9]){0,38}", "a GitHub user name")]


class DeliveryConfig(Model):
    """How images and releases reach the cluster."""

    # argo-rollouts chart (https://argoproj.github.io/argo-helm): 2.41.0 ships Argo Rollouts v1.9.0.
    argo_rollouts_chart_version: ChartVersion = "2.41.0"
    # Pull ghcr.io images through an ECR pull-through cache of this stage (in-region, survives
    # GHCR outages and rate limits for what has been pulled once).
    ghcr_cache: bool = True
    # The GitHub user of the read:packages token in voip-infra:ghcrToken.
    ghcr_username: GhcrUser = "voip-infra-bot"


# Prometheus' retention: a number and a unit (its own duration syntax), e.g. 15d, 12h, 4w.
PrometheusDuration = Annotated[str, _pattern(r"[1-9][0-9]{0,4}(h|d|w)", "a Prometheus duration such as 15d, 36h or 4w")]


class CanaryConfig(Model):
    """The external WebSocket check (a scheduled Lambda outside the VPC): upgrade + ping on
    wss://<signaling host>, success and latency as CloudWatch metrics, an alarm to the critical topic."""

    enabled: bool = True
    interval_minutes: int = Field(default=1, ge=1, le=60)
    timeout_seconds: int = Field(default=10, ge=2, le=50)
    # Consecutive failed checks before the alarm (1 check per interval).
    failures_to_alarm: int = Field(default=3, ge=1, le=10)
    log_retention_days: LogRetentionDays = 14


class LogsConfig(Model):
    """Pod stdout -> Fluent Bit (DaemonSet) -> CloudWatch Logs, one log group per stage."""

    enabled: bool = True
    retention_days: LogRetentionDays = 30
    # INFREQUENT_ACCESS halves the ingestion price; Logs Insights still works, live tail and
    # metric filters do not. Fixed at creation (a change replaces the log group).
    log_class: Literal["STANDARD", "INFREQUENT_ACCESS"] = "STANDARD"
    # For `tools cost` only: what the stage's pods write per day.
    estimated_gib_per_day: float = Field(default=1.0, ge=0, le=10000)
    # aws-for-fluent-bit from https://aws.github.io/eks-charts (aws/eks-charts 5239609242f3: 0.2.0, Fluent Bit 3.2.1).
    fluent_bit_chart_version: ChartVersion = "0.2.0"


class TracesConfig(Model):
    """Zipkin spans (Brave) -> OpenTelemetry collector (sampling) -> Tempo -> S3."""

    enabled: bool = True
    # Probabilistic head sampling in the collector, percent of traces kept.
    sampling_percent: float = Field(default=10.0, gt=0, le=100)
    retention_days: int = Field(default=7, ge=1, le=365)
    # For `tools cost` only: span bytes stored per day after sampling.
    estimated_gib_per_day: float = Field(default=0.2, ge=0, le=10000)
    # opentelemetry-collector 0.182.0 = collector 0.165.0 (the chart repo's index, 2026-11-21).
    collector_chart_version: ChartVersion = "0.182.0"
    collector_image_tag: ImageTag = "0.165.0"
    # tempo from https://grafana-community.github.io/helm-charts (moved from grafana/helm-charts in 2026-02): 2.2.4 = Tempo 2.10.8.
    tempo_chart_version: ChartVersion = "2.2.4"


class MonitoringConfig(Model):
    """The in-cluster monitoring stack: kube-prometheus-stack (Prometheus, Alertmanager,
    Grafana, node-exporter, kube-state-metrics) and prometheus-adapter, which serves the
    signaling HPA's `websocket_connections` through the custom metrics API."""

    enabled: bool = True
    prometheus_retention: PrometheusDuration = "15d"
    # The gp3 volume (PVC) of Prometheus' TSDB; Prometheus also trims by size at 85% of it.
    prometheus_storage_gib: int = Field(default=20, ge=5, le=1000)
    # Prometheus' memory request; its limit is twice that. Dev's t4g.medium system node
    # has ~3.3 GiB allocatable, shared with the cluster add-ons.
    prometheus_memory_mib: int = Field(default=512, ge=256, le=65536)
    # prometheus-adapter replicas: while none answers, the HPA cannot read the connections
    # metric and never scales down. Two (with a PDB) where calls matter.
    adapter_replicas: int = Field(default=1, ge=1, le=3)
    # Alertmanager sends every alert (but the always-firing Watchdog/InfoInhibitor) to the
    # stage's SNS alarm topic, through EKS Pod Identity. false: the chart's null receiver
    # (alerts only in Alertmanager's UI and Grafana), and no IAM role.
    alerts_to_sns: bool = True
    # kube-prometheus-stack from https://prometheus-community.github.io/helm-charts. 91.x runs
    # prometheus-operator v0.94, the CRDs that cluster.prometheusCrdsChartVersion 32.x installs.
    kube_prometheus_stack_chart_version: ChartVersion = "91.5.1"
    # prometheus-adapter from the same repository.
    prometheus_adapter_chart_version: ChartVersion = "5.3.0"
    # The EBS CSI driver add-on: EKS installs none, and without it no PVC binds.
    ebs_csi_driver_addon_version: AddonVersion = "v1.54.0-eksbuild.1"
    # Where logs and traces live, and the external WebSocket check.
    logs: LogsConfig = LogsConfig()
    traces: TracesConfig = TracesConfig()
    canary: CanaryConfig = CanaryConfig()


Email = Annotated[str, _pattern(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,63}", "an e-mail address such as oncall@example.com")]


class SlackChannel(Model):
    """A Slack channel reached through AWS Chatbot (the workspace is authorised once in the
    Chatbot console; its ID is on the console's workspace page)."""

    workspace_id: Annotated[str, _pattern(r"T[A-Z0-9]{8,11}", "a Slack workspace (team) ID such as T07EA123LEP")]
    channel_id: Annotated[str, _pattern(r"[CG][A-Z0-9]{8,11}", "a Slack channel ID such as C07EZ1ABC23")]


class NotificationsConfig(Model):
    """Who hears the alarms. Critical (pages): the critical topic; warning (chat): the alarm topic."""

    critical_emails: list[Email] = Field(default_factory=list, max_length=20)
    warning_emails: list[Email] = Field(default_factory=list, max_length=20)
    # Both topics post to this channel.
    slack: SlackChannel | None = None

    @model_validator(mode="after")
    def _check(self, info: ValidationInfo) -> NotificationsConfig:
        for key in ("critical_emails", "warning_emails"):
            emails = getattr(self, key)
            if len(set(emails)) != len(emails):
                raise ValueError(f"{to_camel(key)}: duplicate addresses")
        if (info.context or {}).get("protect_data") and not self.critical_emails and self.slack is None:
            raise ValueError("criticalEmails: a stage with protectData needs someone paged (criticalEmails or slack)")
        return self

    ebs_csi_driver_addon_version: AddonVersion = "v1.63.1-eksbuild.1"


HhMm = Annotated[str, _pattern(r"([01][0-9]|2[0-3]):[0-5][0-9]", "a time of day hh:mm (24 h)")]
Weekday = Literal["MON", "TUE", "WED", "THU", "FRI", "SAT", "SUN"]


def _timezone(value: str) -> str:
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"{value!r} is not an IANA time zone such as Asia/Seoul") from None
    return value


class SleepScheduleConfig(Model):
    """Dev and clones sleep outside working hours: EventBridge Scheduler stops the database and
    the TURN nodes, scales every node group (and the NAT instance) to zero, and wakes them in
    order (database and NAT first, nodes `nodesAfterMinutes` later)."""

    enabled: bool = False
    timezone: Annotated[str, AfterValidator(_timezone)] = "Asia/Seoul"
    wake_at: HhMm = "08:00"
    sleep_at: HhMm = "20:00"
    days: list[Weekday] = Field(default_factory=lambda: ["MON", "TUE", "WED", "THU", "FRI"], min_length=1, max_length=7)
    # The database takes ~5-10 minutes to start; nodes whose pods need it come after.
    nodes_after_minutes: int = Field(default=15, ge=5, le=60)

    @model_validator(mode="after")
    def _check(self) -> SleepScheduleConfig:
        if self.wake_at >= self.sleep_at:
            raise ValueError(f"sleepAt: {self.sleep_at} must be after wakeAt {self.wake_at} (same day)")
        if self.sleep_at > "23:49":
            raise ValueError(
                f"sleepAt: {self.sleep_at} is too late: the database stops 10 minutes after the nodes, before midnight (at most 23:49)"
            )
        wake_h, wake_m = map(int, self.wake_at.split(":"))
        nodes_at = wake_h * 60 + wake_m + self.nodes_after_minutes
        if f"{nodes_at // 60:02d}:{nodes_at % 60:02d}" >= self.sleep_at:
            raise ValueError(f"nodesAfterMinutes: the nodes would wake at or after sleepAt {self.sleep_at}")
        if len(set(self.days)) != len(self.days):
            raise ValueError("days: each day may appear once")
        return self

    def awake_hours_per_week(self) -> float:
        """Hours a week the stage is up (the nodes' hours: they wake `nodesAfterMinutes` later)."""
        wake_h, wake_m = map(int, self.wake_at.split(":"))
        sleep_h, sleep_m = map(int, self.sleep_at.split(":"))
        return len(self.days) * ((sleep_h * 60 + sleep_m) - (wake_h * 60 + wake_m)) / 60


AwsRegion = Annotated[str, _pattern(r"[a-z]{2}(-gov)?-[a-z]+-[0-9]", "an AWS region such as ap-northeast-3")]


class BackupConfig(Model):
    """AWS Backup: a vault per stage (the stage's KMS key), a daily plan over the database, the
    file bucket and any EBS volume the stage declares; optionally a copy to a second region and a
    vault lock. Default: on where the stage holds data (protectData)."""

    enabled: bool | None = None
    # Local time of the daily job (in `timezone`): after RDS's backup window (02:00-03:00 KST) and
    # its Sunday maintenance window (03:30-04:30 KST), so a snapshot never waits on either.
    daily_at: HhMm = "05:00"
    timezone: Annotated[str, AfterValidator(_timezone)] = "Asia/Seoul"
    retention_days: int = Field(default=35, ge=1, le=36500)
    # A second region (its own vault and KMS key) every recovery point is copied to.
    copy_region: AwsRegion | None = None
    copy_retention_days: int = Field(default=35, ge=1, le=36500)
    # Vault lock in governance mode (admins with backup:DeleteBackupVaultLockConfiguration may still
    # lift it); `compliance` would make it immutable after the grace period: not used (see docs).
    vault_lock: bool = False
    lock_min_retention_days: int = Field(default=7, ge=1, le=36500)
    lock_max_retention_days: int = Field(default=365, ge=1, le=36500)

    @model_validator(mode="after")
    def _check(self) -> BackupConfig:
        if self.vault_lock:
            for key, days in (("retentionDays", self.retention_days), ("copyRetentionDays", self.copy_retention_days)):
                if not self.lock_min_retention_days <= days <= self.lock_max_retention_days:
                    raise ValueError(
                        f"{key}: {days} days is outside the vault lock's {self.lock_min_retention_days}..{self.lock_max_retention_days}; "
                        "the locked vault would reject the recovery points"
                    )
        return self


class DmsConfig(Model):
    instance_class: Annotated[str, _pattern(r"dms\.[a-z0-9]+\." + _SIZE, "a DMS instance class such as dms.t3.medium")] = "dms.t3.medium"
    # Pinned to a version DMS still creates (components/support_calendars.py: 3.6.1 until
    # 2027-04-30); automatic version upgrades move it in the maintenance window before its end of
    # life, and the program ignores that drift instead of trying to downgrade.
    engine_version: Annotated[str, _pattern(r"3\.[0-9]+\.[0-9]+", "a DMS engine version such as 3.6.1")] = "3.6.1"

    allocated_storage_gib: int = Field(default=50, ge=5, le=6144)
    # None: Multi-AZ where the stage holds data. The instance carries changes, not data: after
    # an AZ loss the task resumes from its checkpoint on a new instance (the NAS stays the source).
    multi_az: bool | None = None
    source_port: TcpPort = 5432
    source_database: Annotated[str, _pattern(r"[a-z][a-z0-9_]{0,62}", "a lowercase identifier")] = "voip"
    source_username: Annotated[str, _pattern(r"[a-z][a-z0-9_]{0,62}", "a lowercase identifier")] = "dms_reader"
    # The account-wide roles DMS requires by exact name (dms-vpc-role, dms-cloudwatch-logs-role).
    # false: they already exist in the account (made by the console or another stack).
    create_service_roles: bool = True
    # The NAS password goes into Secrets Manager write-only (never in Pulumi state), so Pulumi
    # cannot see it change: raise this after `pulumi config set --secret voip-infra:dmsSourcePassword`.
    source_secret_version: int = Field(default=1, ge=1)

    @model_validator(mode="after")
    def _check(self) -> DmsConfig:
        if problem := dms_engine_problem(self.engine_version):
            raise ValueError(f"engineVersion: {problem}")
        return self


class DnsWeights(Model):
    """Weighted records moving traffic from the NAS to AWS step by step."""

    nas: int = Field(default=100, ge=0, le=255)
    aws: int = Field(default=0, ge=0, le=255)

    @model_validator(mode="after")
    def _check(self) -> DnsWeights:
        if self.nas + self.aws == 0:
            raise ValueError("nas, aws: at least one weight must be above 0")
        return self


class DualRunRedis(Model):
    """The NAS's Redis, used by the AWS pods while both sides take traffic (docs/migration.md,
    step 5): pub/sub must be one bus, or users on the two sides never see each other's messages."""

    host: IPv4 | None = None  # on the NAS LAN; default: migration.nasHost
    port: TcpPort = 6379
    tls: bool = False  # the VPN already encrypts the path; true if the NAS Redis serves TLS
    database: int = Field(default=0, ge=0, le=15)


class DualRunDatabase(Model):
    """The NAS PostgreSQL the apps (apps.*) use while both sides take traffic (docs/migration.md,
    step 5): RDS is DMS's replication target until the cutover and must take no other writes."""

    host: IPv4 | None = None  # on the NAS LAN; default: migration.nasHost
    port: TcpPort = 5432
    database: Annotated[str, _pattern(r"[a-z][a-z0-9_]{0,62}", "a lowercase identifier")] = "voip"
    # The apps' own NAS login (not DMS's reader); its password is the secret nasAppDbPassword.
    username: Annotated[str, _pattern(r"[a-z][a-z0-9_]{0,62}", "a lowercase identifier")]


class MigrationConfig(Model):
    enabled: bool = True
    nas_lan_cidr: Cidr
    nas_public_ip: IPv4
    nas_host: IPv4  # the NAS's LAN address (PostgreSQL, MinIO)
    nas_bgp_asn: int | None = Field(default=None, ge=64512, le=65534)
    dms: DmsConfig = DmsConfig()
    dns_weights: DnsWeights = DnsWeights()
    # <cutoverHost>.<edge.domain>: the name whose weighted records move users from the NAS to AWS.
    cutover_host: DnsLabel = "app"
    # What Route53 asks the NAS (HTTPS, SNI = the cutover name) to decide it is healthy.
    nas_health_check_path: UrlPath = "/actuator/health"
    # VPN tunnel logs and DMS task logs.
    log_retention_days: LogRetentionDays = 90
    # Set during the dual run only: the signaling pods use the NAS Redis over the VPN instead of
    # ElastiCache (REDIS_URL and the NetworkPolicy follow). Remove it at the data cutover.
    dual_run_redis: DualRunRedis | None = None
    # Set during the dual run only: the apps read and write the NAS PostgreSQL over the VPN, and
    # their Redis uses follow dualRunRedis. Remove both at the data cutover.
    dual_run_database: DualRunDatabase | None = None

    @model_validator(mode="after")
    def _check(self) -> MigrationConfig:
        if self.nas_host not in self.nas_lan_cidr:
            raise ValueError(f"nasHost: {self.nas_host} is outside nasLanCidr {self.nas_lan_cidr}")
        if self.dual_run_redis is not None and self.dual_run_redis.host is not None:
            if self.dual_run_redis.host not in self.nas_lan_cidr:
                raise ValueError(f"dualRunRedis.host: {self.dual_run_redis.host} is outside nasLanCidr {self.nas_lan_cidr}")
        if self.dual_run_database is not None and self.dual_run_database.host is not None:
            if self.dual_run_database.host not in self.nas_lan_cidr:
                raise ValueError(f"dualRunDatabase.host: {self.dual_run_database.host} is outside nasLanCidr {self.nas_lan_cidr}")
        if self.dual_run_database is not None and self.dual_run_redis is None:
            raise ValueError(
                "dualRunDatabase: set dualRunRedis too: apps on the NAS database with AWS's Redis would miss the "
                "NAS side's pub/sub and cache invalidations"
            )
        if not self.nas_public_ip.is_global:
            raise ValueError(f"nasPublicIp: {self.nas_public_ip} is not a public address")
        if self.cutover_host in NLB_HOSTS:
            raise ValueError(f"cutoverHost: {self.cutover_host!r} is taken by the NLB ({', '.join(NLB_HOSTS)})")
        return self


class WafException(Model):
    """An internet-facing HTTP(S)/WebSocket listener kept outside any WAF, on purpose."""

    # The listener's resource name without the stage prefix, e.g. `nlb-signaling`.
    name: DnsLabel
    # Why no WAF, and what protects the entry instead (read by reviewers: say it fully).
    reason: Annotated[str, Field(min_length=40, max_length=600)]


class RuleException(Model):
    """One resource a rule does not apply to on this stage, argued (a reviewer signs it off)."""

    rule: str
    # The resource's name without the stage prefix, e.g. `ci-runner-logs`.
    name: Annotated[str, _pattern(r"[a-z0-9][a-z0-9-]{0,62}", "a resource name without the stage prefix (a-z, 0-9, '-')")]
    reason: Annotated[str, Field(min_length=40, max_length=600)]


PolicyLevel = Literal["advisory", "mandatory", "disabled"]


class PolicyConfig(Model):
    """The CrossGuard pack's per-stage settings (policies/rules.py; docs/policies.md)."""

    # Per-rule enforcement override for this stage (beats the rule's stage-kind default).
    levels: dict[str, PolicyLevel] = {}
    waf_exceptions: list[WafException] = []
    # Per-resource exceptions to any rule (the WAF rule's own list above stays the place for it).
    exceptions: list[RuleException] = []

    @model_validator(mode="after")
    def _check(self) -> PolicyConfig:
        from policies.rules import ALL_POLICIES  # the rule names (policies imports nothing from here)

        names = sorted(p.name for p in ALL_POLICIES)
        unknown = [k for k in self.levels if k not in names]
        if unknown:
            raise ValueError(f"levels.{unknown[0]}: not a rule of the pack; allowed: {', '.join(names)}")
        for i, e in enumerate(self.exceptions):
            if e.rule not in names:
                raise ValueError(f"exceptions.{i}.rule: {e.rule!r} is not a rule of the pack; allowed: {', '.join(names)}")
        seen = [e.name for e in self.waf_exceptions]
        if len(set(seen)) != len(seen):
            raise ValueError("wafExceptions: each listener may be listed once")
        pairs = [(e.rule, e.name) for e in self.exceptions]
        if len(set(pairs)) != len(pairs):
            raise ValueError("exceptions: each (rule, name) may be listed once")
        return self


# ---------------------------------------------------------------------- the stack


class StackConfig(Model):
    """The whole stage. Top-level fields are the `voip-infra:<key>` config keys."""

    stage: DnsLabel
    region: Annotated[str, _pattern(r"[a-z]{2}(-gov)?-[a-z]+-[0-9]", "an AWS region such as ap-northeast-2")] = Field(alias=REGION_KEY)
    owner: Annotated[str, Field(min_length=1, max_length=64)]
    cost_center: Annotated[str, Field(min_length=1, max_length=64)]
    # The stage holds real data: stateful resources get Pulumi `protect`,
    # deletion protection and final snapshots.
    protect_data: bool = False
    ttl_days: int | None = Field(default=None, ge=1, le=90)
    network: NetworkConfig
    edge: EdgeConfig
    cluster: ClusterConfig = ClusterConfig()
    database: DatabaseConfig = DatabaseConfig()
    cache: CacheConfig = CacheConfig()
    storage: StorageConfig = StorageConfig()
    turn: TurnConfig = TurnConfig()
    signaling: SignalingConfig = SignalingConfig()
    monitoring: MonitoringConfig = MonitoringConfig()
    notifications: NotificationsConfig = NotificationsConfig()
    schedule: SleepScheduleConfig = SleepScheduleConfig()
    backup: BackupConfig = BackupConfig()
    migration: MigrationConfig | None = None
    policy: PolicyConfig = PolicyConfig()
    # The Spring Boot apps (charts/co-talk), one release each: `co-talk-<name>`.
    apps: dict[AppName, AppConfig] = Field(default_factory=lambda: {"api": AppConfig.model_validate({"host": "api"})}, max_length=5)
    delivery: DeliveryConfig = DeliveryConfig()
    # Secret keys (`pulumi config set --secret`).
    load_test_bypass_token: SecretStr | None = None
    # The NAS PostgreSQL password of migration.dms.sourceUsername (DMS reads the NAS with it).
    dms_source_password: SecretStr | None = None
    # The NAS Redis's requirepass, while migration.dualRunRedis is set.
    nas_redis_password: SecretStr | None = None
    # The NAS PostgreSQL password of migration.dualRunDatabase.username, while that is set.
    nas_app_db_password: SecretStr | None = None
    # A GitHub token (read:packages) for the ECR pull-through cache of ghcr.io. Unset: the
    # stage's `ecr-pullthroughcache/` secret is created empty and filled once with the AWS CLI.
    ghcr_token: SecretStr | None = None

    @model_validator(mode="after")
    def _check(self) -> StackConfig:
        problems: list[str] = []
        if self.edge.load_test_bypass and self.load_test_bypass_token is None:
            problems.append(
                "edge.loadTestBypass: needs the secret voip-infra:loadTestBypassToken (pulumi config set --secret voip-infra:loadTestBypassToken ...)"
            )
        if self.signaling.redis_group not in self.cache.groups:
            problems.append(
                f"signaling.redisGroup: {self.signaling.redis_group!r} is not a cache group; allowed: {', '.join(sorted(self.cache.groups))}"
            )
        if self.monitoring.canary.enabled and self.edge.restrict_to_allow_list:
            problems.append(
                "monitoring.canary.enabled: the check runs from AWS's public addresses, which edge.allowList blocks; "
                "set monitoring.canary.enabled: false on allow-listed stages"
            )
        if self.signaling.connections_metric and not self.monitoring.enabled:
            problems.append(
                "signaling.connectionsMetric: needs monitoring.enabled: true (prometheus-adapter serves websocket_connections; "
                "without it the HPA never scales down); set connectionsMetric: false or enable monitoring"
            )
        if self.cluster.ci_runner.enabled and self.network.nat_strategy == NatStrategy.NONE:
            problems.append(
                "cluster.ciRunner.enabled: the runner in the private subnets needs egress to GitHub; "
                "with network.natStrategy none turn it off (ciRunner.enabled: false) or pick single/per_az"
            )
        problems += self._cost_problems()
        if self.network.nat_strategy == NatStrategy.NONE and "secretsmanager" not in self.network.interface_endpoints:
            problems.append(
                "network.interfaceEndpoints: natStrategy none needs 'secretsmanager' here "
                "(the database master secret's rotation Lambda runs in the private subnets and calls Secrets Manager)"
            )
        if self.migration is not None and self.migration.nas_lan_cidr.overlaps(self.network.cidr):
            problems.append(f"migration.nasLanCidr: {self.migration.nas_lan_cidr} overlaps network.cidr {self.network.cidr}")
        if self.migration is not None and self.migration.enabled:
            problems += self._migration_problems(self.migration)
        elif self.migration is not None and self.migration.dual_run_redis is not None:
            problems.append("migration.dualRunRedis: needs migration.enabled: true (the NAS Redis is reached over the bridge's VPN)")
        elif self.migration is not None and self.migration.dual_run_database is not None:
            problems.append("migration.dualRunDatabase: needs migration.enabled: true (the NAS is reached over the bridge's VPN)")
        problems += self._app_problems()
        problems += self._capacity_problems()
        problems += self._nlb_problems()
        if problems:
            raise _MultiProblem(problems)
        return self

    @property
    def nlb_listeners(self) -> tuple[str, ...]:
        """The NLB's listeners (`signaling`, `turns`); none: the stage has no NLB."""
        return nlb_listeners(self.edge.signaling_entry, self.turn.tls_entry)

    def _nlb_problems(self) -> list[str]:
        """NLB settings and WAF exceptions must name an NLB listener the stage has."""
        problems: list[str] = []
        listeners = self.nlb_listeners
        if not listeners:
            for key in ("nlb_deletion_protection", "nlb_static_ips"):
                if key in self.edge.model_fields_set:
                    problems.append(
                        f"edge.{to_camel(key)}: this stage has no NLB (edge.signalingEntry cdn, turn.tlsEntry none); drop the key"
                    )
        for i, e in enumerate(self.policy.waf_exceptions):
            if e.name in ("nlb-signaling", "nlb-turns") and e.name.removeprefix("nlb-") not in listeners:
                where = "edge.signalingEntry is cdn" if e.name == "nlb-signaling" else "turn.tlsEntry is none"
                problems.append(
                    f"policy.wafExceptions.{i}.name: {e.name!r} excuses an NLB listener this stage does not have ({where}); drop the entry"
                )
        return problems

    def _cost_problems(self) -> list[str]:
        """Savings that would cost data or availability."""
        problems: list[str] = []
        if self.schedule.enabled and self.protect_data:
            problems.append(
                "schedule.enabled: a sleep schedule stops the database and scales the nodes to zero; not allowed while "
                "protectData is true (the stage holds real data and users)"
            )
        if self.schedule.enabled and self.database.read_replicas:
            problems.append("schedule.enabled: RDS cannot stop an instance that has read replicas; set database.readReplicas: 0")
        if self.backup.copy_region is not None and self.backup.copy_region == self.region:
            problems.append(f"backup.copyRegion: {self.backup.copy_region} is the stage's own region; name a second region")
        if self.protect_data and self.backup.enabled is False:
            problems.append("backup.enabled: false is not allowed while protectData is true (the stage holds real data)")
        return problems

    @property
    def backup_enabled(self) -> bool:
        return self.backup.enabled if self.backup.enabled is not None else self.protect_data

    def _migration_problems(self, migration: MigrationConfig) -> list[str]:
        problems: list[str] = []
        if self.dms_source_password is None:
            problems.append(
                "dmsSourcePassword: required while migration.enabled is true (the NAS PostgreSQL password of "
                f"{migration.dms.source_username}); set it once: pulumi config set --secret voip-infra:dmsSourcePassword --stack {self.stage}"
            )
        if migration.dual_run_database is not None and self.nas_app_db_password is None:
            problems.append(
                f"nasAppDbPassword: required while migration.dualRunDatabase is set (the NAS PostgreSQL password of "
                f"{migration.dual_run_database.username}): pulumi config set --secret voip-infra:nasAppDbPassword ..."
            )
        if migration.dual_run_redis is not None and self.nas_redis_password is None:
            problems.append(
                "nasRedisPassword: required while migration.dualRunRedis is set (the requirepass of the NAS Redis, "
                "which the VPC now reaches): pulumi config set --secret voip-infra:nasRedisPassword ..."
            )
        host = migration.cutover_host
        if host in {h.name for h in self.edge.alb_hosts}:
            problems.append(f"migration.cutoverHost: {host!r} is an ALB host (edge.albHosts); the cutover name needs its own label")
        # The cutover name is served like the apex: the apex host's listener rule lists it too.
        for i, h in enumerate(self.edge.alb_hosts):
            used = 1 + int(h.apex) + int(h.apex) + len(h.paths) + 1
            if h.apex and used > ALB_RULE_MAX_CONDITION_VALUES:
                problems.append(
                    f"edge.albHosts.{i}.paths: with migration.cutoverHost the apex rule needs {used} condition values "
                    f"(max {ALB_RULE_MAX_CONDITION_VALUES}): use fewer paths"
                )
        return problems

    def _app_problems(self) -> list[str]:
        """Each ALB host is served by exactly one app whose chart answers its health check.
        CloudFront sends only /api/* and /ws* of every host to the ALB: a host without an app
        behind it would be an empty target group (503) beside a web app on its other paths."""
        problems: list[str] = []
        hosts = {h.name: (i, h) for i, h in enumerate(self.edge.alb_hosts)}
        served: dict[str, str] = {}
        for name, app in self.apps.items():
            if app.host not in hosts:
                problems.append(f"apps.{name}.host: {app.host!r} is not an ALB host; allowed: {', '.join(hosts)} (edge.albHosts)")
            elif app.host in served:
                problems.append(f"apps.{name}.host: {app.host!r} is already served by apps.{served[app.host]}; one app per host")
            else:
                served[app.host] = name
            if app.canary.enabled and not self.monitoring.enabled:
                problems.append(
                    f"apps.{name}.canary.enabled: the canary analysis queries Prometheus; needs monitoring.enabled: true "
                    "(or set canary.enabled: false for plain rolling updates)"
                )
        for host, (i, rule) in hosts.items():
            if host not in served:
                problems.append(
                    f"edge.albHosts.{i}.name: {host!r} has no app behind it (apps: {', '.join(self.apps) or 'none'}); "
                    f"CloudFront would serve the web app on {host}.{self.edge.domain} and the ALB answer 503: "
                    f"drop the host or add apps.<name> with host: {host}"
                )
                continue
            expected = (APP_HTTP_PORT, APP_READINESS_PATH, APP_MANAGEMENT_PORT)
            if (rule.port, rule.health_check_path, rule.health_check_port) != expected:
                problems.append(
                    f"edge.albHosts.{i}.healthCheckPath: apps.{served[host]} (charts/co-talk) serves traffic on {APP_HTTP_PORT} and "
                    f"readiness on {APP_READINESS_PATH} port {APP_MANAGEMENT_PORT}; the host has port {rule.port}, "
                    f"{rule.health_check_path} port {rule.health_check_port}"
                )
        return problems

    def connection_demand(self) -> tuple[int, int, list[str]]:
        """(writer, worst-case replica) connections of every pool at full scale, and the terms."""
        replicas = self.database.read_replicas
        writer, reader, terms = ADMIN_RESERVE, 0, [f"admin reserve {ADMIN_RESERVE}"]
        for name, app in self.apps.items():
            # maxSurge 1: a rollout runs at most one pod above the HPA's maximum.
            pods = app.replicas.max + 1
            pools = app.database.writer_pool_size + (0 if replicas else app.database.reader_pool_size)
            writer += pods * pools
            reader += pods * app.database.reader_pool_size
            where = "" if replicas else " + reader, no replicas"
            terms.append(f"apps.{name}: (replicas.max {app.replicas.max} + 1 surge) x {pools} (writerPoolSize{where})")
        if self.migration is not None and self.migration.enabled:
            writer += DMS_RESERVE
            terms.append(f"DMS {DMS_RESERVE}")
        return writer, reader, terms

    def _capacity_problems(self) -> list[str]:
        """The pools of every app at maxReplicas fit the database's max_connections with a margin."""
        if not self.apps:
            return []
        db = self.database
        biggest = max(self.apps, key=lambda n: self.apps[n].replicas.max * self.apps[n].database.writer_pool_size)
        writer_max = max_connections(db.instance_class, db.max_connections)
        if writer_max is None:
            return [
                f"database.instanceClass: the memory of {db.instance_class} is not in the capacity table "
                "(components/db_capacity.py); set database.maxConnections to the value its parameter group gives"
            ]
        writer, reader, terms = self.connection_demand()
        problems = []
        fix = (
            f"lower apps.{biggest}.replicas.max or apps.{biggest}.database.writerPoolSize/readerPoolSize, "
            "or raise database.instanceClass (or database.maxConnections)"
        )
        source = "database.maxConnections" if db.max_connections else f"{db.instance_class}: LEAST(DBInstanceClassMemory/9531392, 5000)"
        if writer > usable(writer_max):
            problems.append(
                f"apps.{biggest}.replicas.max: the writer needs {writer} connections ({' + '.join(terms)}) but max_connections is "
                f"{writer_max} ({source}), of which {int(USABLE_FRACTION * 100)}% = {usable(writer_max)} may be pooled; {fix}"
            )
        if db.read_replicas:
            replica_class = db.replica_instance_class or db.instance_class
            # A replica inherits the instance's parameter group: an explicit value applies to it too.
            replica_max = max_connections(replica_class, db.max_connections)
            if replica_max is not None and reader > usable(replica_max):
                problems.append(
                    f"apps.{biggest}.database.readerPoolSize: the reader pools open up to {reader} connections, all of which "
                    f"may land on one replica ({replica_class}: max_connections {replica_max}, {usable(replica_max)} poolable); "
                    "lower the reader pools or raise database.replicaInstanceClass"
                )
        return problems

    @property
    def cutover_name(self) -> str | None:
        """`<cutoverHost>.<edge.domain>` while the bridge is enabled, else None."""
        if self.migration is None or not self.migration.enabled:
            return None
        return f"{self.migration.cutover_host}.{self.edge.domain}"

    def _on_nas(self, endpoint: Any) -> Any:
        """A dual-run endpoint of the bridge while the bridge is enabled and it is set (its host
        defaulting to the bridge's nasHost), else None."""
        if self.migration is None or not self.migration.enabled or endpoint is None:
            return None
        return endpoint if endpoint.host is not None else endpoint.model_copy(update={"host": self.migration.nas_host})

    @property
    def dual_run_redis(self) -> DualRunRedis | None:
        """The NAS Redis the pods use instead of ElastiCache, while the bridge is enabled and set."""
        return self._on_nas(self.migration.dual_run_redis if self.migration else None)

    @property
    def dual_run_database(self) -> DualRunDatabase | None:
        """The NAS PostgreSQL the apps use instead of RDS, while the bridge is enabled and set."""
        return self._on_nas(self.migration.dual_run_database if self.migration else None)

    @property
    def turn_realm(self) -> str:
        return self.turn.realm or f"turn.{self.edge.domain}"

    def redacted(self) -> dict[str, Any]:
        """The validated, defaulted config as plain data; secrets shown as "[secret]"."""
        data = self.model_dump(mode="json", by_alias=True, exclude={"stage"})
        return _mark_secrets(data)


def _mark_secrets(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _mark_secrets(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_mark_secrets(v) for v in value]
    if value == "**********":  # pydantic's rendering of a SecretStr
        return "[secret]"
    return value


class _MultiProblem(ValueError):
    """Cross-field problems, each already carrying its own key path."""

    def __init__(self, problems: list[str]):
        super().__init__("; ".join(problems))
        self.problems = problems
