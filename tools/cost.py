"""`tools cost`: the monthly USD estimate of a plan, per resource and in total (CONTRACTS.md).

Pure functions over the plan dict (plan file version 1): `estimate(plan)` returns a CostReport
(one line per custom resource, grouped by the nearest ancestor component); `render(report)`
prints it, ending with `total_usd_month: N`. Prices come from tools/prices.py (Seoul, on-demand,
approximate). The estimate is "before traffic": fixed hourly/monthly charges at the plan's
desired sizes; usage (GB, requests, log ingestion) is listed in the notes, never silently added
or dropped. See docs/cost.md for every assumption.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from tools import prices as P

H = P.HOURS_PER_MONTH
NOT_PRICED = "not priced (usage-based or free)"
IPV4_MONTH = P.PUBLIC_IPV4_HOURLY * H

Resource = Mapping[str, Any]


@dataclass(frozen=True)
class CostLine:
    urn: str
    type: str
    name: str
    component: str  # "type name" of the nearest ancestor component, or "(no component)"
    cents: int  # USD cents per month, rounded half-up per line; the total is their exact sum
    basis: str
    priced: bool  # False: $0 because usage-based, free, or no price known (the basis says which)

    @property
    def usd(self) -> float:
        return self.cents / 100


@dataclass(frozen=True)
class CostReport:
    stack: str
    lines: tuple[CostLine, ...]
    notes: tuple[str, ...] = field(default=())

    @property
    def total_cents(self) -> int:
        return sum(line.cents for line in self.lines)

    @property
    def total_usd(self) -> float:
        return self.total_cents / 100

    def by_component(self) -> list[tuple[str, list[CostLine], int]]:
        """(component, its lines, subtotal cents), components in plan order."""
        groups: dict[str, list[CostLine]] = {}
        for line in self.lines:
            groups.setdefault(line.component, []).append(line)
        return [(comp, lines, sum(ln.cents for ln in lines)) for comp, lines in groups.items()]

    def line(self, name: str) -> CostLine:
        return next(ln for ln in self.lines if ln.name == name)


def _cents(usd: float) -> int:
    """Half-up to the cent, after cutting float noise at 1e-6 (22.264999999 -> 22.265 -> 22.27)."""
    return int(Decimal(f"{usd:.6f}").quantize(Decimal("0.01"), rounding=ROUND_HALF_UP) * 100)


# ------------------------------------------------------------------ context shared by estimators


class _Ctx:
    """Indexes of the plan the estimators need: resources by id, consumers of EIPs, notes; and the
    two ways of pricing the same plan differently: 1-year commitments on compute and database
    hours (`commit`), and hours a sleep schedule leaves awake (`scheduled`)."""

    def __init__(self, plan: Mapping[str, Any], *, commit: bool = False, scheduled: bool = False):
        self.commit = commit
        self.awake: dict[str, float] = sleeping_resources(plan) if scheduled else {}
        self.config: Mapping[str, Any] = plan.get("config") or {}
        self.resources: list[Resource] = list(plan.get("resources", []))
        self.stack = str(plan.get("stack", ""))
        self.by_id = {r["id"]: r for r in self.resources if r.get("id")}
        self.notes: dict[str, None] = {}  # ordered set
        # Pods run, serve traffic and write logs and traces only while nodes run: load-balancer
        # capacity units and the pods' log and trace volume follow the longest-awake node group
        # (1.0 unless the schedule puts every one to sleep; what is kept follows too).
        groups = [r["urn"] for r in self.resources if r["type"] == "aws:eks/nodeGroup:NodeGroup"]
        self.stage_awake: float = max((self.awake.get(u, 1.0) for u in groups), default=1.0)
        # Elastic IPs whose public IPv4 charge is carried by the line of what uses them (NAT, NLB).
        self.eip_consumer: dict[str, str] = {}
        for r in self.resources:
            props = r.get("props") or {}
            if r["type"] == "aws:ec2/natGateway:NatGateway" and props.get("allocationId"):
                self.eip_consumer[props["allocationId"]] = r["name"]
            if r["type"] == "aws:lb/loadBalancer:LoadBalancer":
                for m in props.get("subnetMappings") or []:
                    if m.get("allocationId"):
                        self.eip_consumer[m["allocationId"]] = r["name"]

    def flow_log_retention_days(self, destination_type: str, destination: str) -> int | None:
        """Days a flow log's destination keeps records: the log group's retention, or the
        bucket's expiration rule (None: kept forever)."""
        for r in self.resources:
            props = r.get("props") or {}
            if destination_type == "cloud-watch-logs" and r["type"] == "aws:cloudwatch/logGroup:LogGroup":
                if destination.endswith(f":log-group:{props.get('name')}"):
                    return props.get("retentionInDays") or None
            if destination_type == "s3" and r["type"].startswith("aws:s3/bucketLifecycleConfiguration"):
                if destination.split(":::", 1)[-1].split("/", 1)[0] == props.get("bucket"):
                    days = [(rule.get("expiration") or {}).get("days") for rule in props.get("rules") or []]
                    return next((d for d in days if d), None)
        return None

    def note(self, text: str) -> None:
        self.notes[text] = None

    def hours(self, r: Resource, commitment: str | None) -> float:
        """Billed hours a month of a resource's instance charge: 730, times the commitment
        fraction of its kind (None: no commitment offer, e.g. spot), times the awake share."""
        hours = H * self.awake.get(r["urn"], 1.0)
        if self.commit and commitment is not None:
            hours *= P.COMMITMENT_FRACTION[commitment]
        return hours

    def awake_share(self, r: Resource) -> float:
        return self.awake.get(r["urn"], 1.0)

    def launch_template(self, ref: Mapping[str, Any] | None) -> Mapping[str, Any]:
        """Props of the launch template a node group or instance refers to (by id or name)."""
        if not ref:
            return {}
        if ref.get("id") in self.by_id:
            return self.by_id[ref["id"]].get("props") or {}
        for r in self.resources:
            if r["type"] == "aws:ec2/launchTemplate:LaunchTemplate" and ref.get("name") in (r["name"], (r.get("props") or {}).get("name")):
                return r.get("props") or {}
        return {}

    def rds_source(self, ref: str) -> Mapping[str, Any]:
        """Props of the RDS instance a replica's replicateSourceDb names (identifier, name, id or ARN)."""
        for r in self.resources:
            if r["type"] != "aws:rds/instance:Instance":
                continue
            props = r.get("props") or {}
            if ref in (props.get("identifier"), r["name"], r.get("id")) or (
                props.get("identifier") and ref.endswith(f":db:{props['identifier']}")
            ):
                return props
        return {}


Estimate = tuple[float, str] | tuple[float, str, bool]
Estimator = Callable[[Resource, _Ctx], Estimate]


def _per_h(hourly: float) -> str:
    return f"${hourly:g}/h"


def _ebs(size: float, vtype: str) -> tuple[float, str]:
    rate = P.EBS_GB_MONTH.get(vtype, P.EBS_GB_MONTH["gp3"])
    return size * rate, f"{size:g} GiB {vtype}"


def _root_volume(props: Mapping[str, Any], lt: Mapping[str, Any], default_gib: float) -> tuple[float, str]:
    """(GiB, type) of the root disk: the resource's own setting, then the launch template's first EBS mapping."""
    root = props.get("rootBlockDevice") or {}
    if root.get("volumeSize"):
        return float(root["volumeSize"]), root.get("volumeType") or "gp3"
    for bdm in lt.get("blockDeviceMappings") or []:
        ebs = bdm.get("ebs") or {}
        if ebs.get("volumeSize"):
            return float(ebs["volumeSize"]), ebs.get("volumeType") or "gp3"
    return default_gib, "gp3"


class _Unpriced(Exception):
    """A priced type whose SKU has no list price in tools/prices.py."""


def _hourly(table: Mapping[str, float], sku: str | None, what: str) -> float:
    if not sku or sku not in table:
        raise _Unpriced(f"no Seoul list price for {what} {sku!r} in tools/prices.py")
    return table[sku]


# ------------------------------------------------------------------ estimators per type


def _eks_cluster(r: Resource, ctx: _Ctx) -> Estimate:
    support = ((r["props"].get("upgradePolicy") or {}).get("supportType") or "STANDARD").upper()
    if support == "EXTENDED":
        ctx.note(
            f"EKS {r['name']}: extended support costs {_per_h(P.EKS_EXTENDED_SUPPORT_HOURLY)} once its version leaves standard support"
        )
    return P.EKS_CONTROL_PLANE_HOURLY * H, f"control plane {_per_h(P.EKS_CONTROL_PLANE_HOURLY)} (standard support)"


def _node_group(r: Resource, ctx: _Ctx) -> Estimate:
    props = r["props"]
    lt = ctx.launch_template(props.get("launchTemplate"))
    types = props.get("instanceTypes") or ([lt["instanceType"]] if lt.get("instanceType") else [])
    itype = types[0] if types else None
    n = int((props.get("scalingConfig") or {}).get("desiredSize") or 0)
    hourly = _hourly(P.EC2_HOURLY, itype, "instance type")
    spot = (props.get("capacityType") or "ON_DEMAND").upper() == "SPOT"
    if spot:
        hourly *= P.SPOT_FRACTION
    gib, vtype = _root_volume({}, lt, float(props.get("diskSize") or P.DEFAULT_NODE_DISK_GIB))
    disk, disk_basis = _ebs(gib, vtype)
    market = f"spot (~{P.SPOT_FRACTION:.0%} of on-demand)" if spot else "on-demand"
    first = " (first of instanceTypes)" if len(types) > 1 else ""
    # Nodes asleep are terminated: their disks go with them.
    usd = n * (hourly * ctx.hours(r, None if spot else "compute") + disk * ctx.awake_share(r))
    return usd, f"{n} × {itype}{first} {market} + {n} × {disk_basis}" + _sleep_basis(r, ctx)


def _ec2_instance(r: Resource, ctx: _Ctx) -> Estimate:
    props = r["props"]
    lt = ctx.launch_template(props.get("launchTemplate"))
    itype = props.get("instanceType") or lt.get("instanceType")
    hourly = _hourly(P.EC2_HOURLY, itype, "instance type")
    spot = ((props.get("instanceMarketOptions") or lt.get("instanceMarketOptions") or {}).get("marketType") or "").lower() == "spot"
    if spot:
        hourly *= P.SPOT_FRACTION
    gib, vtype = _root_volume(props, lt, P.DEFAULT_ROOT_VOLUME_GIB)
    disk, disk_basis = _ebs(gib, vtype)
    # A stopped instance keeps its volume (and EIP); instance hours and metrics stop.
    usd, basis = hourly * ctx.hours(r, None if spot else "compute") + disk, f"1 × {itype} {'spot' if spot else 'on-demand'} + {disk_basis}"
    if props.get("monitoring") is True or (lt.get("monitoring") or {}).get("enabled") is True:
        usd += P.EC2_DETAILED_MONITORING_MONTH * ctx.awake_share(r)
        basis += " + detailed monitoring"
    basis += _sleep_basis(r, ctx)
    if props.get("associatePublicIpAddress"):
        usd += IPV4_MONTH
        basis += " + 1 public IPv4"
    ctx.note(f"EC2 internet egress: ${P.DATA_TRANSFER_OUT_PER_GB}/GB out of Seoul (TURN relays are the big one)")
    return usd, basis


def _ebs_volume(r: Resource, ctx: _Ctx) -> Estimate:
    usd, basis = _ebs(float(r["props"].get("size") or 0), r["props"].get("type") or "gp3")
    return usd, basis


def _eip(r: Resource, ctx: _Ctx) -> Estimate:
    consumer = ctx.eip_consumer.get(r.get("id") or "")
    if consumer:
        return 0.0, f"public IPv4 counted on {consumer}"
    return IPV4_MONTH, f"1 public IPv4 × {_per_h(P.PUBLIC_IPV4_HOURLY)}"


def _nat_gateway(r: Resource, ctx: _Ctx) -> Estimate:
    ctx.note(f"NAT gateway data processing: ${P.NAT_GATEWAY_PER_GB}/GB (S3 goes through the free gateway endpoint)")
    if (r["props"].get("connectivityType") or "public") == "private":
        return P.NAT_GATEWAY_HOURLY * H, f"{_per_h(P.NAT_GATEWAY_HOURLY)} (private NAT, no public IPv4)"
    return P.NAT_GATEWAY_HOURLY * H + IPV4_MONTH, f"{_per_h(P.NAT_GATEWAY_HOURLY)} + 1 public IPv4"


def _load_balancer(r: Resource, ctx: _Ctx) -> Estimate:
    props = r["props"]
    kind = props.get("loadBalancerType") or "application"
    azs = len(props.get("subnetMappings") or props.get("subnets") or []) or 1
    if kind == "application":
        hourly, unit, what = P.ALB_HOURLY + P.ALB_LCU_HOURLY, "LCU", "ALB"
        ctx.note("ALB/NLB capacity units above the 1 LCU/NLCU baseline are usage-based")
    elif kind == "network":
        hourly, unit, what = P.NLB_HOURLY + P.NLB_NLCU_HOURLY, "NLCU", "NLB"
        ctx.note("ALB/NLB capacity units above the 1 LCU/NLCU baseline are usage-based")
    else:
        raise _Unpriced(f"no estimator for {kind} load balancers")
    lcu = P.ALB_LCU_HOURLY if kind == "application" else P.NLB_NLCU_HOURLY
    # The capacity unit is traffic: none while the stage sleeps (no pods behind the listeners).
    usd, basis = (hourly - lcu) * H + lcu * H * ctx.stage_awake, f"{what} {_per_h(hourly - lcu)} + 1 {unit}"
    if ctx.stage_awake < 1:
        basis += f" ({ctx.stage_awake:.1%} of hours: none while asleep)"
    if not props.get("internal"):
        # Internet-facing load balancers hold one public IPv4 per AZ (NLB: the EIPs mapped to it).
        usd += azs * IPV4_MONTH
        basis += f" + {azs} public IPv4 ({azs} AZ)"
    return usd, basis


def _rds_instance(r: Resource, ctx: _Ctx) -> Estimate:
    props = r["props"]
    cls = props.get("instanceClass")
    hourly = _hourly(P.RDS_POSTGRES_HOURLY, cls, "RDS instance class")
    multi = bool(props.get("multiAz"))
    copies = 2 if multi else 1
    replica_of = props.get("replicateSourceDb")
    storage_props = ctx.rds_source(replica_of) if replica_of and not props.get("allocatedStorage") else props
    gib = float(storage_props.get("allocatedStorage") or 0)
    stype = props.get("storageType") or storage_props.get("storageType") or "gp2"
    rate = P.RDS_STORAGE_GB_MONTH.get(stype, P.RDS_STORAGE_GB_MONTH["gp3"])
    # A stopped instance keeps paying for its storage.
    usd = copies * (hourly * ctx.hours(r, "rds") + gib * rate)
    az = "Multi-AZ" if multi else "Single-AZ"
    role = f" read replica of {replica_of}" if replica_of else ""
    basis = f"{copies} × {cls} {az}{role} + {copies} × {gib:g} GiB {stype}" + _sleep_basis(r, ctx)
    if (props.get("engine") or "postgres") != "postgres" and not replica_of:
        basis += " (priced as PostgreSQL)"
    retention = props.get("performanceInsightsRetentionPeriod")
    if props.get("performanceInsightsEnabled") and retention and int(retention) > P.RDS_PI_FREE_RETENTION_DAYS:
        ctx.note(f"RDS {r['name']}: Performance Insights retention {retention} days is billed per vCPU-month (not priced)")
    ctx.note("RDS backups beyond 100% of provisioned storage, Enhanced Monitoring logs and I/O are usage-based")
    return usd, basis


def _cache_table(props: Mapping[str, Any]) -> tuple[Mapping[str, float], str]:
    engine = (props.get("engine") or "redis").lower()
    return (P.ELASTICACHE_VALKEY_HOURLY, "Valkey") if engine == "valkey" else (P.ELASTICACHE_HOURLY, "Redis OSS")


def _elasticache_group(r: Resource, ctx: _Ctx) -> Estimate:
    props = r["props"]
    node = props.get("nodeType")
    table, engine = _cache_table(props)
    hourly = _hourly(table, node, f"ElastiCache {engine} node type")
    if props.get("numCacheClusters"):
        n = int(props["numCacheClusters"])
    else:
        n = int(props.get("numNodeGroups") or 1) * (1 + int(props.get("replicasPerNodeGroup") or 0))
    return n * hourly * ctx.hours(r, "elasticache"), f"{n} × {node} {engine} {_per_h(hourly)}"


def _elasticache_cluster(r: Resource, ctx: _Ctx) -> Estimate:
    props = r["props"]
    if props.get("replicationGroupId") and not props.get("nodeType"):
        return 0.0, "member of a replication group (priced there)"
    node = props.get("nodeType")
    n = int(props.get("numCacheNodes") or 1)
    table, engine = _cache_table(props)
    return n * _hourly(table, node, f"ElastiCache {engine} node type") * ctx.hours(r, "elasticache"), f"{n} × {node} {engine}"


def _web_acl(r: Resource, ctx: _Ctx) -> Estimate:
    rules = r["props"].get("rules") or []
    if not rules and r["props"].get("ruleJson"):
        rules = json.loads(r["props"]["ruleJson"])
    managed = sum(1 for rule in rules if "managedRuleGroupStatement" in (rule.get("statement") or {}))
    ctx.note(f"WAF requests: ${P.WAF_PER_MILLION_REQUESTS} per million (Bot Control / Fraud Control groups add their own fees)")
    return (
        P.WAF_WEB_ACL_MONTH + len(rules) * P.WAF_RULE_MONTH,
        f"web ACL ${P.WAF_WEB_ACL_MONTH:.2f} + {len(rules)} rules × ${P.WAF_RULE_MONTH:.2f} ({managed} managed groups)",
    )


def _health_check(r: Resource, ctx: _Ctx) -> Estimate:
    props = r["props"]
    options = []
    kind = (props.get("type") or "").upper()
    if kind.startswith("HTTPS"):
        options.append("HTTPS")
    if kind.endswith("STR_MATCH"):
        options.append("string matching")
    if int(props.get("requestInterval") or 30) == 10:
        options.append("fast interval")
    if props.get("measureLatency"):
        options.append("latency")
    usd = P.ROUTE53_HEALTH_CHECK_MONTH + len(options) * P.ROUTE53_HEALTH_CHECK_OPTION_MONTH
    return usd, f"health check ${P.ROUTE53_HEALTH_CHECK_MONTH:.2f}" + "".join(f" + {o} $1" for o in options)


def _alarm(r: Resource, ctx: _Ctx) -> Estimate:
    props = r["props"]
    queries = props.get("metricQueries") or []
    metrics = sum(1 for q in queries if q.get("metric")) or 1
    high_res = int(props.get("period") or 60) < 60
    rate = P.CLOUDWATCH_ALARM_HIGH_RES_MONTH if high_res else P.CLOUDWATCH_ALARM_METRIC_MONTH
    return metrics * rate, f"{metrics} metric{'s' if metrics > 1 else ''} × ${rate:.2f} ({'high' if high_res else 'standard'} resolution)"


def _vpc_endpoint(r: Resource, ctx: _Ctx) -> Estimate:
    props = r["props"]
    kind = props.get("vpcEndpointType") or "Gateway"
    if kind == "Gateway":
        return 0.0, f"{NOT_PRICED}: gateway endpoint (free)", False
    if kind != "Interface":
        raise _Unpriced(f"no estimator for {kind} endpoints")
    azs = len(props.get("subnetIds") or []) or 1
    ctx.note(f"Interface endpoints: ${P.INTERFACE_ENDPOINT_PER_GB}/GB processed")
    return azs * P.INTERFACE_ENDPOINT_HOURLY_PER_AZ * H, f"interface endpoint {_per_h(P.INTERFACE_ENDPOINT_HOURLY_PER_AZ)} × {azs} AZ"


def _dms_instance(r: Resource, ctx: _Ctx) -> Estimate:
    props = r["props"]
    sku = props.get("replicationInstanceClass")
    hourly = _hourly(P.DMS_HOURLY, sku, "DMS replication instance")
    multi = 2 if props.get("multiAz") else 1
    family = str(sku).split(".")[1] if sku and sku.count(".") == 2 else ""
    extra = max(0, int(props.get("allocatedStorage") or 50) - P.DMS_INCLUDED_STORAGE_GIB.get(family, 50))
    usd = hourly * H * multi + extra * P.DMS_STORAGE_GB_MONTH * multi
    basis = f"{sku} {_per_h(hourly)}" + (" × 2 (Multi-AZ)" if multi == 2 else "")
    if extra:
        basis += f" + {extra} GiB storage above the included"
    return usd, basis


def _flow_log(r: Resource, ctx: _Ctx) -> Estimate:
    """Delivery + steady-state storage of the stage's ASSUMED flow volume (tools/prices.py)."""
    props = r["props"]
    kind = props.get("logDestinationType") or "cloud-watch-logs"
    interval = int(props.get("maxAggregationInterval") or 600)
    traffic = props.get("trafficType") or "ALL"
    gb = P.flow_log_gb_per_month(ctx.stack, interval, traffic)
    days = ctx.flow_log_retention_days(kind, props.get("logDestination") or "")
    months = (days or 365) / (365 / 12)  # kept forever: count a year
    if kind == "s3":
        per_gb, where, store = P.FLOW_LOGS_S3_PER_GB, "S3", P.S3_STANDARD_GB_MONTH
    else:
        per_gb, where, store = P.FLOW_LOGS_CWL_PER_GB, "CloudWatch Logs", P.CLOUDWATCH_LOGS_STORED_GB_MONTH
    stored = gb * P.FLOW_LOG_COMPRESSION * months * store
    assumed = "" if ctx.stack in P.FLOW_LOG_VOLUME else " (clone: dev-sized assumption)"
    ctx.note("VPC flow logs: priced on an assumed flow volume per stage (tools/prices.py FLOW_LOG_VOLUME), not measured traffic")
    return (
        gb * per_gb + stored,
        f"~{gb:.1f} GB/month assumed{assumed} ({traffic}, {interval} s) to {where} × ${per_gb}/GB"
        f" + {days or 'no'} days kept ~${stored:.2f}",
    )


def _autoscaling_group(r: Resource, ctx: _Ctx) -> Estimate:
    """An EC2 Auto Scaling group (the NAT instance): desiredCapacity × its template's type and root disk."""
    props = r["props"]
    lt = ctx.launch_template(props.get("launchTemplate"))
    itype = lt.get("instanceType")
    hourly = _hourly(P.EC2_HOURLY, itype, "instance type")
    n = int(props.get("desiredCapacity") or props.get("minSize") or 0)
    gib, vtype = _root_volume({}, lt, P.DEFAULT_ROOT_VOLUME_GIB)
    disk, disk_basis = _ebs(gib, vtype)
    usd = n * (hourly * ctx.hours(r, "compute") + disk * ctx.awake_share(r))
    return usd, f"{n} × {itype} on-demand + {n} × {disk_basis}" + _sleep_basis(r, ctx)


def _pods_basis(ctx: _Ctx) -> str:
    return f" (asleep: {ctx.stage_awake:.1%} of the days' volume)" if ctx.stage_awake < 1 else ""


def _sleep_basis(r: Resource, ctx: _Ctx) -> str:
    share = ctx.awake.get(r["urn"])
    return f" (asleep: {share:.1%} of hours awake)" if share is not None else ""


_SLEEP_ACTIONS = {  # universal target action -> (input key, how the plan names the resource)
    "eks:updateNodegroupConfig": ("NodegroupName", "aws:eks/nodeGroup:NodeGroup", "nodeGroupName"),
    "ec2:stopInstances": ("InstanceIds", "aws:ec2/instance:Instance", None),
    "rds:stopDBInstance": ("DbInstanceIdentifier", "aws:rds/instance:Instance", "identifier"),
    "autoscaling:updateAutoScalingGroup": ("AutoScalingGroupName", "aws:autoscaling/group:Group", "name"),
}


def awake_share(plan: Mapping[str, Any]) -> float | None:
    """The share of a week's hours a sleeping stage is awake (config `schedule`), or None."""
    sched = (plan.get("config") or {}).get("schedule") or {}
    if not sched.get("enabled"):
        return None
    (wh, wm), (sh, sm) = (map(int, str(sched[k]).split(":")) for k in ("wakeAt", "sleepAt"))
    return len(sched.get("days") or []) * ((sh * 60 + sm) - (wh * 60 + wm)) / 60 / (7 * 24)


def sleeping_resources(plan: Mapping[str, Any]) -> dict[str, float]:
    """URN -> awake share of every resource a sleep schedule of the plan puts to sleep (read
    from the schedules' targets, so only what the program really schedules is discounted)."""
    share = awake_share(plan)
    if share is None:
        return {}
    resources = list(plan.get("resources", []))
    out: dict[str, float] = {}
    for sched in resources:
        if sched["type"] != "aws:scheduler/schedule:Schedule" or "-sleep-" not in str((sched.get("props") or {}).get("name")):
            continue
        target = (sched.get("props") or {}).get("target") or {}
        action = str(target.get("arn", "")).rpartition("aws-sdk:")[2]
        if action not in _SLEEP_ACTIONS:
            continue
        key, typ, prop = _SLEEP_ACTIONS[action]
        wanted = json.loads(target.get("input") or "{}").get(key)
        names = set(wanted) if isinstance(wanted, list) else {wanted}
        for r in resources:
            ident = r.get("id") if prop is None else (r.get("props") or {}).get(prop)
            if r["type"] == typ and ident in names:
                out[r["urn"]] = share
    return out


def _fixed(usd: float, basis: str) -> Estimator:
    return lambda r, ctx: (usd, basis)


def _usage(reason: str, note: str | None = None) -> Estimator:
    def est(r: Resource, ctx: _Ctx) -> Estimate:
        if note:
            ctx.note(note)
        return 0.0, f"{NOT_PRICED}: {reason}", False

    return est


def _helm_release(r: Resource, ctx: _Ctx) -> Estimate:
    """Pods are priced on the node groups. A release whose values claim a volume (Prometheus'
    TSDB in kube-prometheus-stack) is charged that EBS volume: the PVC makes it at run time,
    so it is in no plan as an AWS resource."""
    values = r["props"].get("values") or {}
    spec = (values.get("prometheus") or {}).get("prometheusSpec") or {}
    claim = ((spec.get("storageSpec") or {}).get("volumeClaimTemplate") or {}).get("spec") or {}
    size = str(((claim.get("resources") or {}).get("requests") or {}).get("storage") or "")
    if not size.endswith("Gi") or not size[:-2].isdigit():
        return 0.0, f"{NOT_PRICED}: pods run on the node groups (priced there)", False
    vtype = "gp3"
    for sc in ctx.resources:
        props = sc.get("props") or {}
        if sc["type"] == "kubernetes:storage.k8s.io/v1:StorageClass" and (props.get("metadata") or {}).get("name") == claim.get(
            "storageClassName"
        ):
            vtype = (props.get("parameters") or {}).get("type") or vtype
    ctx.note("EBS volumes made by PersistentVolumeClaims are priced on the Helm release that claims them (not AWS resources in the plan)")
    usd, basis = _ebs(float(size[:-2]), vtype)
    return usd, f"Prometheus volume claim: {basis} (pods priced on the node groups)"


def _log_group(r: Resource, ctx: _Ctx) -> Estimate:
    """The pods' log group is priced from `monitoring.logs.estimatedGibPerDay`; other groups are usage."""
    ctx.note("CloudWatch Logs: ~$0.76/GB ingested (Infrequent Access $0.38), ~$0.03/GB-month stored")
    logs = (ctx.config.get("monitoring") or {}).get("logs") or {}
    props = r["props"]
    if not logs.get("enabled") or not str(props.get("name") or "").endswith("/pods"):
        return 0.0, f"{NOT_PRICED}: log ingestion and storage", False
    daily = float(logs.get("estimatedGibPerDay") or 0) * ctx.stage_awake
    ia = props.get("logGroupClass") == "INFREQUENT_ACCESS"
    ingest = P.CLOUDWATCH_LOGS_INGEST_IA_PER_GB if ia else P.CLOUDWATCH_LOGS_INGEST_PER_GB
    retention = int(props.get("retentionInDays") or 30)
    usd = daily * P.DAYS_PER_MONTH * ingest + daily * retention * P.CLOUDWATCH_LOGS_STORED_GB_MONTH
    basis = f"{daily:g} GiB/day (monitoring.logs.estimatedGibPerDay) × ${ingest}/GB ingested + {retention} days stored"
    return usd, basis + _pods_basis(ctx)


def _bucket(r: Resource, ctx: _Ctx) -> Estimate:
    """The traces bucket is priced from `monitoring.traces.estimatedGibPerDay` × retention; others are usage."""
    ctx.note("S3: storage, requests and replication are usage-based")
    traces = (ctx.config.get("monitoring") or {}).get("traces") or {}
    if not traces.get("enabled") or "-voip-traces-" not in str(r["props"].get("bucket") or ""):
        return 0.0, f"{NOT_PRICED}: storage and requests", False
    daily, days = float(traces.get("estimatedGibPerDay") or 0) * ctx.stage_awake, int(traces.get("retentionDays") or 7)
    return (
        daily * days * P.S3_STANDARD_GB_MONTH,
        f"{daily:g} GiB/day × {days} days kept × ${P.S3_STANDARD_GB_MONTH}/GB-month" + _pods_basis(ctx),
    )


def _lambda_function(r: Resource, ctx: _Ctx) -> Estimate:
    """The WebSocket check: one run per interval (about 1 s at its memory) + its two custom metrics."""
    canary = (ctx.config.get("monitoring") or {}).get("canary") or {}
    runs = P.HOURS_PER_MONTH * 60 / int(canary.get("intervalMinutes") or 1)
    gb_s = runs * 1.0 * int(r["props"].get("memorySize") or 128) / 1024
    usd = gb_s * P.LAMBDA_ARM_GB_SECOND + runs / 1e6 * P.LAMBDA_PER_MILLION_REQUESTS + 2 * P.CLOUDWATCH_CUSTOM_METRIC_MONTH
    return usd, f"{runs:,.0f} runs × ~1 s + 2 custom metrics × ${P.CLOUDWATCH_CUSTOM_METRIC_MONTH:.2f}"


def _cloudfront(r: Resource, ctx: _Ctx) -> Estimate:
    ctx.note(f"CloudFront: ~${P.CLOUDFRONT_PER_GB_KOREA}/GB to viewers in Korea + HTTPS requests; no fixed charge")
    return 0.0, f"{NOT_PRICED}: traffic and requests only", False


def _volume(what: str) -> float:
    return P.BASELINE_VOLUMES[what]


def _guardduty_feature(r: Resource, ctx: _Ctx) -> Estimate:
    props = r["props"]
    if props.get("status") != "ENABLED":
        return 0.0, "disabled", False
    ctx.note("GuardDuty, Security Hub, AWS Config: priced at a small account's volumes (tools/prices.py BASELINE_VOLUMES)")
    per = {
        "S3_DATA_EVENTS": ("S3 data events (millions)", P.GUARDDUTY_S3_EVENTS_PER_MILLION),
        "EKS_AUDIT_LOGS": ("EKS audit events (millions)", P.GUARDDUTY_EKS_AUDIT_PER_MILLION),
        "RUNTIME_MONITORING": ("EKS node vCPUs monitored", P.GUARDDUTY_RUNTIME_VCPU_MONTH),
    }.get(str(props.get("name")))
    if per is None:
        raise _Unpriced(f"GuardDuty feature {props.get('name')} has no price")
    what, price = per
    return _volume(what) * price, f"{_volume(what):g} {what} × ${price:g}"


def _guardduty_detector(r: Resource, ctx: _Ctx) -> Estimate:
    events, logs = _volume("management events (millions)"), _volume("VPC flow + DNS logs analysed (GB)")
    usd = events * P.GUARDDUTY_MGMT_EVENTS_PER_MILLION + logs * P.GUARDDUTY_FLOW_DNS_PER_GB
    return (
        usd,
        f"{events:g}M management events × ${P.GUARDDUTY_MGMT_EVENTS_PER_MILLION:g} + {logs:g} GB flow/DNS logs × ${P.GUARDDUTY_FLOW_DNS_PER_GB:g}",
    )


ESTIMATORS: dict[str, Estimator] = {
    "aws:guardduty/detector:Detector": _guardduty_detector,
    "aws:guardduty/detectorFeature:DetectorFeature": _guardduty_feature,
    "aws:securityhub/standardsSubscription:StandardsSubscription": lambda r, ctx: (
        _volume("Security Hub checks") * P.SECURITY_HUB_PER_CHECK,
        f"{_volume('Security Hub checks'):g} checks × ${P.SECURITY_HUB_PER_CHECK:g}",
    ),
    "aws:cfg/recorder:Recorder": lambda r, ctx: (
        _volume("AWS Config items") * P.CONFIG_PER_ITEM,
        f"{_volume('AWS Config items'):g} configuration items × ${P.CONFIG_PER_ITEM:g}",
    ),
    "aws:codebuild/project:Project": _usage(
        "build minutes of CI jobs", "CodeBuild runner: ~$0.01 per build-minute (general1.medium), only while a CI job runs"
    ),
    "aws:cloudtrail/trail:Trail": _fixed(0.0, "first copy of management events free (log storage is S3 usage)"),
    "aws:accessanalyzer/analyzer:Analyzer": _fixed(0.0, "external-access analyzer free"),
    "aws:eks/cluster:Cluster": _eks_cluster,
    "aws:eks/nodeGroup:NodeGroup": _node_group,
    "aws:ec2/instance:Instance": _ec2_instance,
    "aws:ebs/volume:Volume": _ebs_volume,
    "aws:ec2/eip:Eip": _eip,
    "aws:ec2/natGateway:NatGateway": _nat_gateway,
    "aws:lb/loadBalancer:LoadBalancer": _load_balancer,
    "aws:alb/loadBalancer:LoadBalancer": _load_balancer,
    "aws:rds/instance:Instance": _rds_instance,
    "aws:elasticache/replicationGroup:ReplicationGroup": _elasticache_group,
    "aws:elasticache/cluster:Cluster": _elasticache_cluster,
    "aws:wafv2/webAcl:WebAcl": _web_acl,
    "aws:route53/zone:Zone": _fixed(P.ROUTE53_ZONE_MONTH, f"hosted zone ${P.ROUTE53_ZONE_MONTH:.2f}"),
    "aws:route53/healthCheck:HealthCheck": _health_check,
    "aws:secretsmanager/secret:Secret": _fixed(P.SECRETS_MANAGER_SECRET_MONTH, f"secret ${P.SECRETS_MANAGER_SECRET_MONTH:.2f}"),
    "aws:kms/key:Key": _fixed(P.KMS_KEY_MONTH, f"customer managed key ${P.KMS_KEY_MONTH:.2f}"),
    "aws:cloudwatch/metricAlarm:MetricAlarm": _alarm,
    "aws:ec2/vpcEndpoint:VpcEndpoint": _vpc_endpoint,
    "aws:ec2/vpnConnection:VpnConnection": _fixed(
        P.VPN_CONNECTION_HOURLY * H, f"VPN connection {_per_h(P.VPN_CONNECTION_HOURLY)} (+ data transfer out)"
    ),
    "aws:dms/replicationInstance:ReplicationInstance": _dms_instance,
    "aws:autoscaling/group:Group": _autoscaling_group,
    "aws:backup/vault:Vault": _usage(
        "recovery point storage",
        f"AWS Backup: ~${P.BACKUP_WARM_GB_MONTH}/GB-month of recovery points, ${P.BACKUP_CROSS_REGION_PER_GB}/GB per cross-region copy",
    ),
    "aws:cloudfront/distribution:Distribution": _cloudfront,
    "aws:s3/bucket:Bucket": _bucket,
    "aws:s3/bucketV2:BucketV2": _usage("storage and requests", "S3: storage, requests and replication are usage-based"),
    "aws:cloudwatch/logGroup:LogGroup": _log_group,
    "aws:lambda/function:Function": _lambda_function,
    "aws:ec2/flowLog:FlowLog": _flow_log,
    "aws:wafv2/webAclLoggingConfiguration:WebAclLoggingConfiguration": _usage("log ingestion"),
    "aws:sns/topic:Topic": _usage("publishes and deliveries"),
    "aws:route53/record:Record": _usage("DNS queries (alias queries to AWS resources free)"),
    "aws:route53/queryLog:QueryLog": _usage("log ingestion (priced on its log group)"),
    # The rotation Lambda: a few invocations a month (free tier scale).
    "aws:serverlessrepository/cloudFormationStack:CloudFormationStack": _usage("Lambda invocations (a few per rotation)"),
    "aws:ecr/pullThroughCacheRule:PullThroughCacheRule": _usage(
        "ECR storage of cached images", "ECR pull-through cache: ~$0.10/GB-month of cached images; in-region pulls free"
    ),
    "kubernetes:helm.sh/v3:Release": _helm_release,
}

# Types known to have no charge of their own (configuration, IAM, wiring).
_FREE_PREFIXES = (
    "aws:iam/",
    "aws:acm/",
    "aws:ec2/route",
    "aws:ec2/securityGroup",
    "aws:ec2/defaultSecurityGroup",
    "aws:vpc/securityGroup",
    "aws:ec2/subnet:",
    "aws:ec2/vpc:",
    "aws:ec2/internetGateway",
    "aws:ec2/eipAssociation",
    "aws:ec2/launchTemplate",
    "aws:ec2/mainRouteTableAssociation",
    "aws:kms/alias",
    "aws:ecr/repositoryCreationTemplate",
    "aws:lb/listener",
    "aws:lb/targetGroup",
    "aws:eks/addon",
    "aws:eks/podIdentityAssociation",
    "aws:eks/accessEntry",
    "aws:eks/accessPolicyAssociation",
    "aws:cloudfront/originAccessControl",
    "aws:cloudfront/responseHeadersPolicy",
    "aws:cloudfront/cachePolicy",
    "aws:cloudfront/originRequestPolicy",
    # VPC origins: no additional charge (its ENIs' private IPv4 addresses free as well; AWS,
    # private-content-vpc-origins.html); the traffic is billed as the distribution's.
    "aws:cloudfront/vpcOrigin",
    "aws:wafv2/ipSet",
    "aws:rds/parameterGroup",
    "aws:rds/subnetGroup",
    "aws:rds/eventSubscription",
    "aws:elasticache/parameterGroup",
    "aws:elasticache/subnetGroup",
    "aws:secretsmanager/secretVersion",
    "aws:secretsmanager/secretRotation",
    "aws:sns/topicSubscription",
    "aws:sns/topicPolicy",
    "aws:cloudwatch/logResourcePolicy",
    "aws:ec2/vpnGateway",  # the VGW itself is free; the connection is billed
    "aws:ec2/customerGateway",
    "aws:ec2/vpnConnectionRoute",
    "aws:dms/endpoint",
    "aws:dms/replicationSubnetGroup",
    "aws:dms/replicationTask",  # runs on the (billed) replication instance
    "aws:dms/eventSubscription",
    "aws:cloudwatch/eventRule",  # scheduled rules: free
    "aws:cloudwatch/eventTarget",
    "aws:lambda/permission",
    "aws:lambda/functionEventInvokeConfig",
    "aws:chatbot/",  # AWS Chatbot: no charge (the SNS deliveries are usage)
    "aws:cfg/deliveryChannel",  # account baseline wiring (voip-bootstrap)
    "aws:cfg/recorderStatus",
    "aws:securityhub/account",  # checks are billed on the standard's subscription
    "aws:codeconnections/",
    "aws:codebuild/sourceCredential",
    "aws:codebuild/webhook",
    "aws:scheduler/",  # EventBridge Scheduler: 14 million invocations a month free; a sleeping stage uses ~500
    "aws:backup/plan",
    "aws:backup/selection",
    "aws:backup/vaultLockConfiguration",
    "aws:s3/bucket",  # configuration sub-resources (the bucket itself is matched exactly above)
    "random:",
    "kubernetes:",
    "pulumi:providers:",
)


def _free_reason(typ: str) -> str | None:
    if typ.startswith("pulumi:providers:"):
        return "Pulumi provider, not a cloud resource"
    if typ.startswith("random:"):
        return "generated by Pulumi, no cloud resource"
    if typ.startswith("kubernetes:"):
        return "Kubernetes object, runs on the node groups"
    if any(typ.startswith(p) for p in _FREE_PREFIXES):
        return "no charge of its own"
    return None


def _component_of(r: Resource, by_urn: Mapping[str, Resource]) -> str:
    parent = by_urn.get(r.get("parent") or "")
    while parent is not None:
        if not parent.get("custom"):
            return f"{parent['type']} {parent['name']}"
        parent = by_urn.get(parent.get("parent") or "")
    return "(no component)"


def estimate(plan: Mapping[str, Any], *, commit: bool = False, scheduled: bool = False) -> CostReport:
    """Monthly estimate of every custom resource of a plan (v1 dict or tools.plan.Plan): on-demand,
    or with 1-year commitments (`commit`), or with the sleep schedule's hours (`scheduled`)."""
    ctx = _Ctx(plan, commit=commit, scheduled=scheduled)
    by_urn = {r["urn"]: r for r in ctx.resources}
    lines = []
    for r in ctx.resources:
        if not r.get("custom"):
            continue
        typ = r["type"]
        r = {**r, "props": r.get("props") or {}}
        estimator = ESTIMATORS.get(typ)
        priced = True
        if estimator is not None:
            try:
                usd, basis, *flag = estimator(r, ctx)
                priced = flag[0] if flag else True
            except _Unpriced as exc:
                usd, basis, priced = 0.0, f"NOT PRICED: {exc}", False
                ctx.note(f"{typ} {r['name']}: {exc}; the total is low by its cost")
        elif (reason := _free_reason(typ)) is not None:
            usd, basis, priced = 0.0, f"{NOT_PRICED}: {reason}", False
        else:
            usd, basis, priced = 0.0, f"{NOT_PRICED}: no estimator for this type (check it)", False
            ctx.note(f"{typ}: no estimator; listed at $0 — add one to tools/cost.py if it has a fixed charge")
        lines.append(CostLine(r["urn"], typ, r["name"], _component_of(r, by_urn), _cents(usd), basis, priced))
    return CostReport(stack=str(plan.get("stack", "?")), lines=tuple(lines), notes=tuple(ctx.notes))


# ------------------------------------------------------------------ rendering


def format_total(report: CostReport) -> str:
    """The contract's last line: always two decimals."""
    return f"total_usd_month: {report.total_cents / 100:.2f}"


def summary_line(report: CostReport) -> str:
    """One line for `tools plan`: the monthly total and how to see the breakdown."""
    priced = sum(1 for ln in report.lines if ln.cents)
    return (
        f"monthly cost (approx., Seoul on-demand, before traffic): ${report.total_usd:,.2f} "
        f"over {priced} priced resources; `python -m tools cost --plan PLAN.json` for the breakdown"
    )


def short_type(typ: str) -> str:
    """`aws:ec2/natGateway:NatGateway` -> `aws:ec2/natGateway` (the member already names the resource)."""
    head, _, last = typ.rpartition(":")
    member = head.rpartition("/")[2]
    return head if member.lower() == last.lower() else typ


@dataclass(frozen=True)
class Figures:
    """The headline figures `tools cost` prints beside the breakdown."""

    today: CostReport
    committed: CostReport
    scheduled: CostReport | None = None  # with the sleep schedule (stages that sleep)
    scheduled_committed: CostReport | None = None
    target: CostReport | None = None  # the seed-001 target settings (tools/targets/<stack>.yaml)
    target_committed: CostReport | None = None
    target_source: str = ""


def figures(plan: Mapping[str, Any], target_plan: Mapping[str, Any] | None = None, target_source: str = "") -> Figures:
    sleeps = awake_share(plan) is not None
    return Figures(
        today=estimate(plan),
        committed=estimate(plan, commit=True),
        scheduled=estimate(plan, scheduled=True) if sleeps else None,
        scheduled_committed=estimate(plan, scheduled=True, commit=True) if sleeps else None,
        target=estimate(target_plan) if target_plan is not None else None,
        target_committed=estimate(target_plan, commit=True) if target_plan is not None else None,
        target_source=target_source,
    )


def render(report: CostReport, figs: Figures | None = None) -> str:
    committed = {ln.urn: ln for ln in figs.committed.lines} if figs else {}
    rows = [
        (short_type(ln.type), ln.name, f"{ln.usd:,.2f}", f"{committed[ln.urn].usd:,.2f}" if ln.urn in committed else "", ln.basis)
        for ln in report.lines
    ]
    wt = max([len("resource type"), *(len(r[0]) for r in rows)])
    wn = max([len("name"), *(len(r[1]) for r in rows)])
    wu = max([len("USD/month"), *(len(r[2]) for r in rows), len(f"{report.total_usd:,.2f}")])
    wc = max([len("1-yr commit"), *(len(r[3]) for r in rows)]) if figs else 0

    def row(t: str, n: str, u: str, c: str, b: str) -> str:
        commit = f"  {c:>{wc}}" if figs else ""
        return f"  {t:<{wt}}  {n:<{wn}}  {u:>{wu}}{commit}  {b}".rstrip()

    out = [
        f"{report.stack}: monthly cost estimate, USD, {P.HOURS_PER_MONTH} h/month, before traffic",
        f"prices: {P.PRICES_SOURCE}, on-demand, as of {P.PRICES_AS_OF}",
        *([f"1-yr commit column: {P.COMMITMENT_TERM}"] if figs else []),
        "",
    ]
    for comp, lines, subtotal in report.by_component():
        out.append(comp)
        out.append(row("resource type", "name", "USD/month", "1-yr commit", "basis"))
        # Priced lines first (largest first), then the $0 ones in plan order.
        ordered = sorted(lines, key=lambda ln: (ln.cents == 0, -ln.cents))
        for ln in ordered:
            c = committed.get(ln.urn)
            out.append(row(short_type(ln.type), ln.name, f"{ln.usd:,.2f}", f"{c.usd:,.2f}" if c else "", ln.basis))
        out.append(row("subtotal", "", f"{subtotal / 100:,.2f}", "", ""))
        out.append("")
    out.append("subtotals by component:")
    wcomp = max(len(c) for c, _, _ in report.by_component())
    for comp, _, subtotal in sorted(report.by_component(), key=lambda g: -g[2]):
        out.append(f"  {comp:<{wcomp}}  {subtotal / 100:>{wu},.2f}")
    unpriced = sum(1 for ln in report.lines if not ln.priced)
    out.append(f"  {len(report.lines)} resources, {len(report.lines) - unpriced} priced, {unpriced} {NOT_PRICED} at $0")
    if report.notes:
        out += ["", "usage-based charges not in the total:"]
        out += [f"  - {n}" for n in report.notes]
    if figs:
        out += ["", *render_figures(figs)]
    out += ["", format_total(report)]
    return "\n".join(out)


def _pct(part: CostReport, whole: CostReport) -> str:
    return f"{(part.total_cents - whole.total_cents) / whole.total_cents:+.0%}" if whole.total_cents else ""


def render_figures(figs: Figures) -> list[str]:
    """The headline lines: today on-demand / committed / asleep, and the seed-001 target."""
    t = figs.today
    lines = [
        "figures (USD/month, before traffic):",
        f"  today, on-demand:                       {t.total_usd:>10,.2f}",
        f"  today, 1-year commitments:              {figs.committed.total_usd:>10,.2f}  ({_pct(figs.committed, t)})",
    ]
    if figs.scheduled is not None and figs.scheduled_committed is not None:
        lines += [
            f"  today, with the sleep schedule:         {figs.scheduled.total_usd:>10,.2f}  ({_pct(figs.scheduled, t)})",
            f"  sleep schedule + commitments:           {figs.scheduled_committed.total_usd:>10,.2f}  ({_pct(figs.scheduled_committed, t)})",
        ]
    if figs.target is not None and figs.target_committed is not None:
        lines += [
            f"  seed-001 target, on-demand:             {figs.target.total_usd:>10,.2f}  ({figs.target_source})",
            f"  seed-001 target, 1-year commitments:    {figs.target_committed.total_usd:>10,.2f}",
        ]
    else:
        lines.append("  seed-001 target: same settings as today (no tools/targets file for this stack)")
    return lines


__all__ = [
    "CostLine",
    "CostReport",
    "Figures",
    "figures",
    "estimate",
    "render",
    "render_figures",
    "sleeping_resources",
    "awake_share",
    "format_total",
    "summary_line",
    "NOT_PRICED",
]
