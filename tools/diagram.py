"""`tools diagram`: a Mermaid picture of a stack, derived from a plan file (CONTRACTS.md).

Everything is derived from the plan's resources and the references between their props
(ids, ARNs, DNS names): one subgraph per tier component, the traffic paths (viewers -> CloudFront
-> origins, load balancers -> target groups -> targets), the security-group edges that are not
already implied by a traffic path (who may reach the data stores), and per-AZ counts instead of
every subnet and route table. Protected stateful resources carry a lock.
"""

from __future__ import annotations

import ipaddress
import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from tools.plan import Plan

LOCK = "🔒 protected"
INTERNET = "internet"
ID_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")
# Words the Mermaid flowchart grammar reserves; an id equal to one of them breaks the parse.
_RESERVED = {"end", "subgraph", "graph", "flowchart", "style", "classdef", "class", "click", "linkstyle", "default", "direction"}
_OPEN = {"0.0.0.0/0", "::/0"}

T_DIST = "aws:cloudfront/distribution:Distribution"
T_WAF = "aws:wafv2/webAcl:WebAcl"
T_BUCKET = "aws:s3/bucket:Bucket"
T_LB = "aws:lb/loadBalancer:LoadBalancer"
T_LISTENER = "aws:lb/listener:Listener"
T_RULE = "aws:lb/listenerRule:ListenerRule"
T_TG = "aws:lb/targetGroup:TargetGroup"
T_TGA = "aws:lb/targetGroupAttachment:TargetGroupAttachment"
T_SG = "aws:ec2/securityGroup:SecurityGroup"
T_EC2 = "aws:ec2/instance:Instance"
T_LT = "aws:ec2/launchTemplate:LaunchTemplate"
T_RDS = "aws:rds/instance:Instance"
T_REDIS = "aws:elasticache/replicationGroup:ReplicationGroup"
T_EKS = "aws:eks/cluster:Cluster"
T_NG = "aws:eks/nodeGroup:NodeGroup"
T_HELM = "kubernetes:helm.sh/v3:Release"
T_KMS = "aws:kms/key:Key"
T_VPC = "aws:ec2/vpc:Vpc"
T_SUBNET = "aws:ec2/subnet:Subnet"
T_IGW = "aws:ec2/internetGateway:InternetGateway"
T_NAT = "aws:ec2/natGateway:NatGateway"
T_ASG = "aws:autoscaling/group:Group"
T_ENDPOINT = "aws:ec2/vpcEndpoint:VpcEndpoint"
T_ROUTE = "aws:ec2/route:Route"
T_RTA = "aws:ec2/routeTableAssociation:RouteTableAssociation"
T_ZONE = "aws:route53/zone:Zone"
T_RECORD = "aws:route53/record:Record"
T_VPN = "aws:ec2/vpnConnection:VpnConnection"
T_CGW = "aws:ec2/customerGateway:CustomerGateway"
T_DMS = "aws:dms/replicationInstance:ReplicationInstance"
T_DMS_ENDPOINT = "aws:dms/endpoint:Endpoint"
T_IAM_USER = "aws:iam/user:User"


@dataclass
class Node:
    id: str
    label: str
    shape: str = "rect"  # rect | db | circle | hex
    group: str | None = None  # component URN (subgraph) or None (top level)
    protected: bool = False


@dataclass
class Edge:
    src: str
    dst: str
    labels: list[str] = field(default_factory=list)
    dotted: bool = False
    traffic: bool = True  # a traffic path (used to decide which SG edges are implied)


@dataclass
class Diagram:
    stack: str
    groups: dict[str, str]  # component URN -> subgraph title, in plan order
    nodes: dict[str, Node]
    edges: list[Edge]
    node_of: dict[str, str]  # resource URN -> node id


# ------------------------------------------------------------------ references


def _walk_strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for v in value.values():
            yield from _walk_strings(v)
    elif isinstance(value, list):
        for v in value:
            yield from _walk_strings(v)


def _find_key(value: Any, key: str) -> Iterator[Any]:
    """Every value stored under `key` anywhere in a nested props/values structure."""
    if isinstance(value, dict):
        for k, v in value.items():
            if k == key:
                yield v
            yield from _find_key(v, key)
    elif isinstance(value, list):
        for v in value:
            yield from _find_key(v, key)


class _Refs:
    """Resolves a reference found in props (an id, an ARN, a DNS name) to the resource it names.

    A reference names a resource when it equals its id, or contains its id or one of its physical
    names (`name`, `bucket`, `identifier`, ...) as a whole word: ARNs end in `/<id-or-name>`, S3
    origin domains start with `<bucket>.`, load balancer DNS names with `<name>-<digits>.`.
    The expected types disambiguate (an SG and an RDS instance may share a name); the longest
    matching word wins."""

    _NAME_PROPS = ("name", "bucket", "identifier", "replicationGroupId", "nodeGroupName")

    def __init__(self, plan: Plan) -> None:
        self.by_id = {r["id"]: r for r in plan.resources if r["custom"] and r.get("id")}
        self.by_type: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for r in plan.resources:
            if r["custom"]:
                self.by_type[r["type"]].append(r)
        self._cache: dict[tuple[str, tuple[str, ...]], dict[str, Any] | None] = {}

    @classmethod
    def _keys(cls, r: dict[str, Any]) -> list[str]:
        keys = [r["id"]] if r.get("id") else []
        keys += [r["props"][p] for p in cls._NAME_PROPS if isinstance(r["props"].get(p), str) and len(r["props"][p]) >= 3]
        return keys

    def resolve(self, ref: Any, *types: str) -> dict[str, Any] | None:
        if not isinstance(ref, str) or not ref:
            return None
        key = (ref, types)
        if key in self._cache:
            return self._cache[key]
        found = self.by_id.get(ref)
        if found is None or found["type"] not in types:
            found, best = None, 0
            for typ in types:
                for r in self.by_type.get(typ, []):
                    for k in self._keys(r):
                        if len(k) > best and re.search(rf"(?<![A-Za-z0-9]){re.escape(k)}(?![A-Za-z0-9])", ref):
                            found, best = r, len(k)
        self._cache[key] = found
        return found


# ------------------------------------------------------------------ building


def sanitize(text: str) -> str:
    """A valid Mermaid node id from any text."""
    ident = re.sub(r"[^A-Za-z0-9_]+", "_", text).strip("_") or "node"
    if not ident[0].isalpha():
        ident = f"n_{ident}"
    if ident.lower() in _RESERVED:
        ident = f"{ident}_"
    return ident


def _ports(rule: dict[str, Any]) -> str:
    proto = {"-1": "all", -1: "all"}.get(rule.get("protocol"), str(rule.get("protocol", "")))
    lo, hi = rule.get("fromPort"), rule.get("toPort")
    if proto == "all":
        return "all traffic"
    return f"{proto} {lo}" if lo == hi else f"{proto} {lo}-{hi}"


def _short_list(items: Iterable[str], limit: int = 3) -> str:
    items = list(dict.fromkeys(items))
    return ", ".join(items[:limit]) + (f" +{len(items) - limit}" if len(items) > limit else "")


class _Builder:
    def __init__(self, plan: Plan) -> None:
        self.plan = plan
        self.refs = _Refs(plan)
        self.nodes: dict[str, Node] = {}
        self.edges: dict[tuple[str, str, bool], Edge] = {}
        self.node_of: dict[str, str] = {}
        self.groups = self._groups()
        self.sg_holders: dict[str, list[str]] = defaultdict(list)  # SG id -> node ids carrying it

    # --- plumbing

    def _groups(self) -> dict[str, str]:
        comps = {r["urn"]: r for r in self.plan.resources if not r["custom"]}
        self.root_components = {u for u, r in comps.items() if r["parent"] not in comps}
        return {u: f"{r['type'].split(':')[-1]} · {r['name']}" for u, r in comps.items() if u not in self.root_components}

    def group_of(self, r: dict[str, Any]) -> str | None:
        urn = r["parent"]
        while urn:
            if urn in self.groups:
                return urn
            urn = self._parent.get(urn)
        return None

    @property
    def _parent(self) -> dict[str, str | None]:
        if not hasattr(self, "_parents"):
            self._parents = {r["urn"]: r["parent"] for r in self.plan.resources}
        return self._parents

    def add_node(self, key: str, label: str, members: list[dict[str, Any]], shape: str = "rect", group: str | None = None) -> str:
        nid = base = sanitize(key)
        n = 2
        while nid in self.nodes or nid == INTERNET or nid in self._group_ids():
            nid, n = f"{base}_{n}", n + 1
        protected = any(m.get("protect") for m in members)
        if group is None and members:
            group = self.group_of(members[0])
        self.nodes[nid] = Node(nid, label + (f"<br/>{LOCK}" if protected else ""), shape, group, protected)
        for m in members:
            self.node_of[m["urn"]] = nid
        return nid

    def _group_ids(self) -> set[str]:
        return {f"tier_{sanitize(u.split('::')[-1])}" for u in self.groups}

    def node(self, r: dict[str, Any] | None) -> str | None:
        return self.node_of.get(r["urn"]) if r else None

    def add_edge(self, src: str | None, dst: str | None, label: str = "", dotted: bool = False, traffic: bool = True) -> None:
        if not src or not dst or src == dst:
            return
        e = self.edges.setdefault((src, dst, dotted), Edge(src, dst, [], dotted, traffic))
        if label and label not in e.labels:
            e.labels.append(label)

    def of(self, typ: str) -> list[dict[str, Any]]:
        return self.refs.by_type.get(typ, [])

    def hold(self, sg_ids: Iterable[Any], nid: str | None) -> None:
        for sg in sg_ids or []:
            r = self.refs.resolve(sg, T_SG)
            if r and nid and nid not in self.sg_holders[r["id"]]:
                self.sg_holders[r["id"]].append(nid)

    # --- nodes

    def build(self) -> Diagram:
        self.nodes[INTERNET] = Node(INTERNET, "Internet<br/>viewers, apps, TURN clients", "circle", None)
        self.network()
        self.edge_tier()
        self.compute()
        self.data()
        self.bridge()
        self.dns()
        self.traffic()
        self.security_groups()
        return Diagram(self.plan.get("stack", "?"), self.groups, self.nodes, list(self.edges.values()), self.node_of)

    def network(self) -> None:
        for vpc in self.of(T_VPC):
            subnets = [s for s in self.of(T_SUBNET) if s["props"].get("vpcId") == vpc["id"]]
            tiers = Counter(s["props"].get("tags", {}).get("tier", "other") for s in subnets)
            azs = sorted({s["props"].get("availabilityZone") for s in subnets if s["props"].get("availabilityZone")})
            label = f"VPC {vpc['props'].get('cidrBlock', '')} · {len(azs)} AZs"
            if tiers:
                # A fixed order: registrations arrive in no guaranteed order.
                order = {"public": 0, "private": 1, "isolated": 2}
                label += "<br/>subnets: " + " / ".join(f"{tiers[t]} {t}" for t in sorted(tiers, key=lambda t: (order.get(t, 3), t)))
            self.add_node(vpc["name"], label, [vpc, *subnets])
        for igw in self.of(T_IGW):
            self.add_node(igw["name"], "Internet gateway", [igw])
            self.add_edge(self.node(igw), INTERNET, "egress", dotted=True)
        nats = self.of(T_NAT)
        if nats:
            nid = self.add_node(f"{nats[0]['name']}_nats", f"{len(nats)} × NAT gateway", nats)
            # NATs sit in public subnets whose route table leads to the internet gateway.
            for igw in self.of(T_IGW):
                self.add_edge(nid, self.node(igw), "egress", dotted=True)
        # natStrategy instance: the Auto Scaling group of the NAT instance.
        for asg in self.of(T_ASG):
            nid = self.add_node(asg["name"], "NAT instance (ASG of 1)", [asg])
            for igw in self.of(T_IGW):
                self.add_edge(nid, self.node(igw), "egress", dotted=True)
        for ep in self.of(T_ENDPOINT):
            svc = str(ep["props"].get("serviceName", "")).split(".")[-1]
            self.add_node(ep["name"], f"{ep['props'].get('vpcEndpointType', '')} endpoint: {svc}", [ep])

    def edge_tier(self) -> None:
        # Log destinations are plumbing, not part of the picture.
        log_refs = [
            v.get("bucket")
            for r in self.of(T_LB) + self.of(T_DIST)
            for k in ("accessLogs", "loggingConfig")
            for v in _find_key(r["props"], k)
            if isinstance(v, dict)
        ]
        # VPC flow logs delivered to S3 (logDestination is the bucket ARN).
        log_refs += [f["props"].get("logDestination") for f in self.of("aws:ec2/flowLog:FlowLog")]
        skip = {b["urn"] for b in (self.refs.resolve(ref, T_BUCKET) for ref in log_refs if ref) if b}
        for d in self.of(T_DIST):
            aliases = d["props"].get("aliases") or []
            label = "CloudFront" + (f"<br/>{_short_list(aliases)}" if aliases else "")
            self.add_node(d["name"], label, [d], "hex")
        for w in self.of(T_WAF):
            rules = w["props"].get("rules")
            n = len(rules) if isinstance(rules, list) else None
            label = f"WAF web ACL {w['props'].get('name', w['name'])}" + (f"<br/>{n} rules" if n is not None else "")
            self.add_node(w["name"], label, [w])
        for b in self.of(T_BUCKET):
            if b["urn"] not in skip:
                self.add_node(b["name"], f"S3 {b['props'].get('bucket', b['name'])}", [b], "db")
        for lb in self.of(T_LB):
            kind = {"application": "ALB", "network": "NLB"}.get(lb["props"].get("loadBalancerType", "application"), "LB")
            azs = len(lb["props"].get("subnets") or lb["props"].get("subnetMappings") or [])
            scope = "internal" if lb["props"].get("internal") else "internet-facing"
            eips = sum(1 for m in lb["props"].get("subnetMappings") or [] if m.get("allocationId"))
            label = f"{kind} {lb['name']}<br/>{scope}, {azs} AZs" + (f", {eips} EIPs" if eips else "")
            self.add_node(lb["name"], label, [lb], "hex")
            self.hold(lb["props"].get("securityGroups"), self.node(lb))
        for tg in self.of(T_TG):
            p = tg["props"]
            self.add_node(
                tg["name"],
                f"target group {p.get('tags', {}).get('Name', tg['name'])}<br/>{p.get('protocol', '')}:{p.get('port', '')} ({p.get('targetType', 'instance')})",
                [tg],
            )

    def _lt(self, props: dict[str, Any]) -> dict[str, Any] | None:
        lt = props.get("launchTemplate") or {}
        return self.refs.resolve(lt.get("id") or lt.get("name"), T_LT)

    def compute(self) -> None:
        for c in self.of(T_EKS):
            p = c["props"]
            self.add_node(c["name"], f"EKS {p.get('name', c['name'])} {p.get('version', '')}<br/>control plane", [c])
            self.hold((p.get("vpcConfig") or {}).get("securityGroupIds"), self.node(c))
        # Worker node groups that share security groups are one box: the SG is what the data tier admits.
        workers: dict[tuple[str, ...], list[dict[str, Any]]] = defaultdict(list)
        for ng in self.of(T_NG):
            lt = self._lt(ng["props"])
            sgs = [s for s in (lt["props"].get("vpcSecurityGroupIds") if lt else []) or [] if self.refs.resolve(s, T_SG)]
            workers[tuple(sorted(self.refs.resolve(s, T_SG)["id"] for s in sgs))].append(ng)
        for sg_ids, ngs in workers.items():
            sgs = [self.refs.by_id[s] for s in sg_ids]
            lines = []
            for ng in ngs:
                p = ng["props"]
                sc = p.get("scalingConfig") or {}
                pool = (p.get("labels") or {}).get("voip.example.com/pool") or p.get("nodeGroupName", ng["name"])
                lines.append(
                    f"{pool}: {sc.get('desiredSize', '?')} × {_short_list(p.get('instanceTypes') or ['?'], 2)} ({sc.get('minSize', '?')}-{sc.get('maxSize', '?')})"
                )
            title = "EKS worker nodes" + (
                f" · SG {_short_list(s['props'].get('tags', {}).get('Name', s['name']) for s in sgs)}" if sgs else ""
            )
            nid = self.add_node(
                sgs[0]["name"] if sgs else f"{ngs[0]['name']}_workers", "<br/>".join([title, *lines]), ngs, group=self.group_of(ngs[0])
            )
            for s in sgs:
                self.node_of.setdefault(s["urn"], nid)
            self.hold(sg_ids, nid)
            for ng in ngs:
                self.add_edge(nid, self.node(self.refs.resolve(ng["props"].get("clusterName"), T_EKS)), "joins", dotted=True, traffic=False)
        for rel in self.of(T_HELM):
            p = rel["props"]
            self.add_node(
                rel["name"], f"helm {p.get('name', rel['name'])}<br/>chart {p.get('chart', '?')}, ns {p.get('namespace', 'default')}", [rel]
            )
            selector = next(iter(_find_key(p.get("values") or {}, "nodeSelector")), None)
            if isinstance(selector, dict) and selector:
                for ng in self.of(T_NG):
                    if all((ng["props"].get("labels") or {}).get(k) == v for k, v in selector.items()):
                        # Traffic to the release's pods lands on these nodes.
                        self.add_edge(self.node(rel), self.node(ng), "runs on", dotted=True)
        for inst in self.of(T_EC2):
            p = inst["props"]
            lt = self._lt(p)
            itype = p.get("instanceType") or (lt["props"].get("instanceType") if lt else None) or "?"
            subnet = self.refs.resolve(p.get("subnetId"), T_SUBNET)
            az = subnet["props"].get("availabilityZone") if subnet else None
            self.add_node(inst["name"], f"EC2 {inst['name']}<br/>{itype}" + (f", {az}" if az else ""), [inst])
            self.hold(
                [*(p.get("vpcSecurityGroupIds") or []), *((lt["props"].get("vpcSecurityGroupIds") or []) if lt else [])], self.node(inst)
            )

    def data(self) -> None:
        rds = self.of(T_RDS)
        primaries = [r for r in rds if not r["props"].get("replicateSourceDb")]
        for db in primaries:
            p = db["props"]
            ha = "Multi-AZ" if p.get("multiAz") else "single-AZ"
            label = f"RDS {p.get('engine', '')} {p.get('engineVersion', '')} {p.get('identifier', db['name'])}<br/>{p.get('instanceClass', '')}, {ha}"
            self.add_node(db["name"], label, [db], "db")
            self.hold(p.get("vpcSecurityGroupIds"), self.node(db))
            replicas = [r for r in rds if self.refs.resolve(r["props"].get("replicateSourceDb"), T_RDS) is db]
            if replicas:
                classes = _short_list(r["props"].get("instanceClass", "?") for r in replicas)
                nid = self.add_node(f"{db['name']}_replicas", f"{len(replicas)} × read replica<br/>{classes}", replicas, "db")
                self.add_edge(self.node(db), nid, "replication", dotted=True, traffic=False)
                for r in replicas:
                    self.hold(r["props"].get("vpcSecurityGroupIds"), nid)
        for rg in self.of(T_REDIS):
            p = rg["props"]
            ha = ", Multi-AZ" if p.get("multiAzEnabled") else ""
            n = p.get("numCacheClusters") or p.get("numNodeGroups") or 1
            self.add_node(
                rg["name"],
                f"ElastiCache {p.get('engine', '')} {p.get('engineVersion', '')} {p.get('replicationGroupId', rg['name'])}<br/>{n} × {p.get('nodeType', '?')}{ha}",
                [rg],
                "db",
            )
            self.hold(p.get("securityGroupIds"), self.node(rg))
        for key in self.of(T_KMS):
            users = [
                r["name"]
                for r in self.plan.resources
                if r["custom"]
                and r["urn"] in self.node_of
                and r is not key
                and any(
                    self.refs.resolve(s, T_KMS) is key for k in ("kmsKeyId", "keyArn", "kmsMasterKeyId") for s in _find_key(r["props"], k)
                )
            ]
            label = f"KMS key {key['name']}" + (f"<br/>encrypts {_short_list(users)}" if users else "")
            self.add_node(key["name"], label, [key])

    def bridge(self) -> None:
        """The NAS bridge (nas-migration): the NAS site, the VPN, DMS into RDS, the MinIO mirror."""
        for vpn in self.of(T_VPN):
            cgw = self.refs.resolve(vpn["props"].get("customerGatewayId"), T_CGW)
            nas = self.add_node(
                f"{vpn['name']}_site",
                f"NAS site {cgw['props'].get('ipAddress', '') if cgw else ''}",
                [cgw] if cgw else [],
                "circle",
                group=None,
            )
            routing = "static" if vpn["props"].get("staticRoutesOnly") else "BGP"
            nid = self.add_node(vpn["name"], f"Site-to-Site VPN, 2 IPsec tunnels ({routing})", [vpn])
            self.add_edge(nas, nid, "IPsec", traffic=False)
            for dms in self.of(T_DMS):
                p = dms["props"]
                ha = "Multi-AZ" if p.get("multiAz") else "single-AZ"
                did = self.add_node(dms["name"], f"DMS {p.get('replicationInstanceClass', '')}<br/>{ha}, full load + CDC", [dms])
                self.hold(p.get("vpcSecurityGroupIds"), did)
                self.add_edge(did, nid, "NAS PostgreSQL 5432", traffic=False)
                for db in self.of(T_RDS):
                    if not db["props"].get("replicateSourceDb"):
                        self.add_edge(did, self.node(db), "replication", dotted=True, traffic=False)
            for user in self.of(T_IAM_USER):
                for bucket in self.of(T_BUCKET):
                    if bucket["name"].endswith("-files") and self.node(bucket):
                        self.add_edge(
                            nas, self.node(bucket), f"mc mirror ({user['props'].get('name', user['name'])})", dotted=True, traffic=False
                        )

    def dns(self) -> None:
        zones = [(zone, str(zone["props"].get("name", zone["name"])), zone["name"], [zone]) for zone in self.of(T_ZONE)]
        if not zones:
            # The stage uses a zone it does not own (voip-bootstrap's apex zone, looked up by name):
            # drawn in the Dns tier, anchored on the records the tier writes there.
            mine = [r for r in self.of(T_RECORD) if "voip:edge:Dns" in r["urn"].split("::")[2]]
            domain = str(self.plan.get("config", {}).get("edge", {}).get("domain", ""))
            if mine and domain:
                zones = [(None, domain, f"zone {domain}", mine[:1])]
        for zone, zone_name, key, members in zones:
            records = [
                r for r in self.of(T_RECORD) if r["props"].get("zoneId") and self.refs.resolve(r["props"]["zoneId"], T_ZONE) in (zone, None)
            ]
            label = f"Route 53 zone {zone_name}" + ("" if zone else " (existing)")
            nid = self.add_node(key, f"{label}<br/>{len(records)} records", members)
            suffix = "." + zone_name.strip(".")
            for rec in records:
                name = str(rec["props"].get("name", "")).rstrip(".")
                short = name[: -len(suffix)] if name.endswith(suffix) else "apex" if name == suffix[1:] else name
                for alias in rec["props"].get("aliases") or []:
                    target = self.refs.resolve(alias.get("name"), T_LB, T_DIST)
                    if target is None and str(alias.get("name", "")).endswith(".cloudfront.net"):
                        # CloudFront domains are random: the distribution is the one serving this name.
                        target = next((d for d in self.of(T_DIST) if name in (d["props"].get("aliases") or [])), None)
                    self.add_edge(nid, self.node(target), short, dotted=True, traffic=False)

    # --- edges

    def traffic(self) -> None:
        for d in self.of(T_DIST):
            nid = self.node(d)
            self.add_edge(INTERNET, nid, "HTTPS")
            waf = self.refs.resolve(d["props"].get("webAclId"), T_WAF)
            self.add_edge(self.node(waf), nid, "attached", dotted=True, traffic=False)
            behaviors = [d["props"].get("defaultCacheBehavior") or {}] + list(d["props"].get("orderedCacheBehaviors") or [])
            paths: dict[str, list[str]] = defaultdict(list)
            for b in behaviors:
                paths[b.get("targetOriginId")].append(b.get("pathPattern", "/* default"))
            for origin in d["props"].get("origins") or []:
                target = self.refs.resolve(origin.get("domainName"), T_BUCKET, T_LB)
                label = _short_list(paths.get(origin.get("originId"), [origin.get("originId", "")]))
                # An internal ALB: CloudFront's ENIs in its subnets, not the internet.
                self.add_edge(nid, self.node(target), label + (" via VPC origin" if origin.get("vpcOriginConfig") else ""))
        listeners = {li["urn"]: li for li in self.of(T_LISTENER)}
        for li in listeners.values():
            lb = self.refs.resolve(li["props"].get("loadBalancerArn"), T_LB)
            for action in li["props"].get("defaultActions") or []:
                for tg in self._forwards(action):
                    self.add_edge(self.node(lb), self.node(tg), f"{li['props'].get('protocol', '')} {li['props'].get('port', '')}")
        for rule in self.of(T_RULE):
            li = self.refs.resolve(rule["props"].get("listenerArn"), T_LISTENER)
            lb = self.refs.resolve(li["props"].get("loadBalancerArn"), T_LB) if li else None
            hosts = [h for c in rule["props"].get("conditions") or [] for h in (c.get("hostHeader") or {}).get("values", [])]
            label = f"{li['props'].get('protocol', '')} {li['props'].get('port', '')}" if li else "rule"
            for action in rule["props"].get("actions") or []:
                for tg in self._forwards(action):
                    self.add_edge(self.node(lb), self.node(tg), label + (f" {_short_list(hosts, 2)}" if hosts else ""))
        bound: set[str] = set()
        for att in self.of(T_TGA):
            tg = self.refs.resolve(att["props"].get("targetGroupArn"), T_TG)
            target = self.refs.resolve(att["props"].get("targetId"), T_EC2, T_LB)
            self.add_edge(self.node(tg), self.node(target), f"port {att['props'].get('port', '')}".strip())
            if tg:
                bound.add(tg["urn"])
        for rel in self.of(T_HELM):
            # TargetGroupBindings in the release's values: the LB controller registers its pods.
            for arn in _find_key(rel["props"].get("values") or {}, "targetGroupArn"):
                tg = self.refs.resolve(arn, T_TG)
                if tg:
                    self.add_edge(self.node(tg), self.node(rel), "pods (TargetGroupBinding)")
                    bound.add(tg["urn"])
        for tg in self.of(T_TG):
            if tg["urn"] in bound or tg["props"].get("targetType") != "ip":
                continue
            # IP targets registered outside the program: they live behind whichever SG admits the
            # target port from the load balancer's SG.
            lbs = [self.refs.resolve(li["props"].get("loadBalancerArn"), T_LB) for li in listeners.values() if self._li_forwards_to(li, tg)]
            lb_sgs = {
                self.refs.resolve(s, T_SG)["id"]
                for lb in lbs
                if lb
                for s in lb["props"].get("securityGroups") or []
                if self.refs.resolve(s, T_SG)
            }
            port = tg["props"].get("port")
            for sg in self.of(T_SG):
                for rule in sg["props"].get("ingress") or []:
                    srcs = {self.refs.resolve(s, T_SG)["id"] for s in rule.get("securityGroups") or [] if self.refs.resolve(s, T_SG)}
                    if srcs & lb_sgs and isinstance(port, int) and rule.get("fromPort", 0) <= port <= rule.get("toPort", 65535):
                        for holder in self.sg_holders.get(sg["id"], []):
                            self.add_edge(self.node(tg), holder, f"ip targets :{port}")
        # Private subnets reach the internet through the NATs their route tables point at.
        nat_rtbs = {r["props"].get("routeTableId") for r in self.of(T_ROUTE) if r["props"].get("natGatewayId")}
        nat_subnets = {a["props"].get("subnetId") for a in self.of(T_RTA) if a["props"].get("routeTableId") in nat_rtbs}
        nats = self.of(T_NAT)
        if nats and nat_subnets:
            for ng in self.of(T_NG):
                if set(ng["props"].get("subnetIds") or []) & nat_subnets:
                    self.add_edge(self.node(ng), self.node(nats[0]), "egress", dotted=True, traffic=False)

    def _forwards(self, action: dict[str, Any]) -> list[dict[str, Any]]:
        if action.get("type") != "forward":
            return []
        arns = [action.get("targetGroupArn")] + [t.get("arn") for t in (action.get("forward") or {}).get("targetGroups") or []]
        return [tg for tg in (self.refs.resolve(a, T_TG) for a in arns) if tg]

    def _li_forwards_to(self, li: dict[str, Any], tg: dict[str, Any]) -> bool:
        actions = list(li["props"].get("defaultActions") or [])
        actions += [
            a
            for r in self.of(T_RULE)
            if self.refs.resolve(r["props"].get("listenerArn"), T_LISTENER) is li
            for a in r["props"].get("actions") or []
        ]
        return any(t is tg for a in actions for t in self._forwards(a))

    def _reachable(self, src: str) -> set[str]:
        adj: dict[str, set[str]] = defaultdict(set)
        for e in self.edges.values():
            if e.traffic:
                adj[e.src].add(e.dst)
        seen, todo = set(), [src]
        while todo:
            for nxt in adj[todo.pop()] - seen:
                seen.add(nxt)
                todo.append(nxt)
        return seen

    def security_groups(self) -> None:
        """SG ingress as edges: from the internet (0.0.0.0/0) and from other SGs' holders, unless
        a traffic path (LB -> target group -> targets) already shows it."""
        pending: list[tuple[str, str, str, str]] = []  # src, dst, ports, source ranges
        for sg in self.of(T_SG):
            holders = self.sg_holders.get(sg["id"], [])
            vpc = self.refs.resolve(sg["props"].get("vpcId"), T_VPC)
            inside = _network(vpc["props"].get("cidrBlock")) if vpc else None
            for rule in sg["props"].get("ingress") or []:
                cidrs = [*(rule.get("cidrBlocks") or []), *(rule.get("ipv6CidrBlocks") or [])]
                outside = [c for c in cidrs if not _within(c, inside)]
                if outside:  # from beyond the VPC: the whole internet, or only the listed ranges
                    src = "" if _OPEN & set(outside) else f" from {_short_list(outside, 2)}"
                    for h in holders:
                        pending.append((INTERNET, h, _ports(rule), src))
                for src_sg in rule.get("securityGroups") or []:
                    src = self.refs.resolve(src_sg, T_SG)
                    for s in self.sg_holders.get(src["id"], []) if src else []:
                        for h in holders:
                            pending.append((s, h, _ports(rule), ""))
        reach = {s: self._reachable(s) for s in {p[0] for p in pending}}
        merged: dict[tuple[str, str], dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))
        for src, dst, ports, ranges in pending:
            if dst not in reach[src] or (src, dst, False) in self.edges:
                merged[(src, dst)][ranges].append(ports)
        for (src, dst), by_range in merged.items():
            for ranges, ports in by_range.items():
                self.add_edge(src, dst, _short_list(ports, 4) + ranges)


def _network(cidr: Any) -> ipaddress.IPv4Network | ipaddress.IPv6Network | None:
    try:
        return ipaddress.ip_network(cidr, strict=False)
    except (TypeError, ValueError):
        return None


def _within(cidr: str, inside: ipaddress.IPv4Network | ipaddress.IPv6Network | None) -> bool:
    net = _network(cidr)
    return bool(net and inside and net.version == inside.version and net.subnet_of(inside))


def build(plan: Plan) -> Diagram:
    return _Builder(plan).build()


# ------------------------------------------------------------------ rendering


def escape(text: str) -> str:
    """Label text safe inside Mermaid double quotes (our own `<br/>` line breaks are kept)."""
    parts = str(text).split("<br/>")
    out = []
    for part in parts:
        part = part.replace("#", "#35;").replace('"', "#quot;").replace("<", "#lt;").replace(">", "#gt;")
        out.append(part)
    return "<br/>".join(out)


_SHAPES = {"rect": ('["', '"]'), "db": ('[("', '")]'), "circle": ('(("', '"))'), "hex": ('{{"', '"}}')}


def render_mermaid(d: Diagram) -> str:
    lines = ["flowchart LR", f"  %% voip-infra / {d.stack}: derived from the plan file (tools diagram)"]

    def node_line(n: Node, indent: str) -> str:
        a, b = _SHAPES[n.shape]
        return f"{indent}{n.id}{a}{escape(n.label)}{b}"

    for n in d.nodes.values():
        if n.group is None:
            lines.append(node_line(n, "  "))
    for urn, title in d.groups.items():
        members = [n for n in d.nodes.values() if n.group == urn]
        if not members:
            continue
        lines.append(f'  subgraph tier_{sanitize(urn.split("::")[-1])}["{escape(title)}"]')
        lines.extend(node_line(n, "    ") for n in members)
        lines.append("  end")
    for e in d.edges:
        arrow = "-.->" if e.dotted else "-->"
        label = f'|"{escape(_short_list(e.labels, 4))}"|' if e.labels else ""
        lines.append(f"  {e.src} {arrow}{label} {e.dst}")
    protected = [n.id for n in d.nodes.values() if n.protected]
    lines.append("  classDef protected stroke:#b00,stroke-width:3px")
    if protected:
        lines.append(f"  class {','.join(protected)} protected")
    return "\n".join(lines) + "\n"
