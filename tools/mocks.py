"""Run the real program under Pulumi's mock runtime and record every registration.

`run_program` executes `__main__.py` exactly as `pulumi up` would, but against an
in-process engine: `Mocks` answers resource registrations and invokes with
realistic values, and `RecordingMonitor` keeps what the program asked for (inputs,
parent, provider, protect, aliases, dependencies) straight from the registration
requests, so the plan shows the program's real resource options.
"""

from __future__ import annotations

import copy
import hashlib
import os
import runpy
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pulumi
from google.protobuf import json_format
from pulumi.runtime import mocks as pulumi_mocks
from pulumi.runtime import resource as pulumi_resource
from pulumi.runtime import settings as pulumi_settings
from pulumi.runtime.config import set_all_config
from pulumi.runtime.settings import get_project, get_stack
from pulumi.runtime.sync_await import _sync_await

ROOT = Path(__file__).resolve().parent.parent
PROJECT = "voip-infra"
ACCOUNT_ID = "123456789012"
SECRET = "[secret]"
UNKNOWN = "[unknown]"

# Wire-format signatures (pulumi/sdk/go/common/resource/sig).
_SIG_KEY = "4dabf18193072939515e22adb298388d"
_SIG_SECRET = "1b47061264138c4ac30d75fd1eb44270"
_SIG_RESOURCE = "5cf8f73096256a8f31e491e813e4eb8e"
_SIG_OUTPUT = "d0e6a833031e9bbcd3f4e8bde6ca49a8"
_SIG_ASSET = "c44067f5952c0a294b673a41bacd8c17"
_SIG_ARCHIVE = "0def7320c3a5731c473e5ecbe6d01bc7"
_UNKNOWN_VALUE = "04da6b54-80e4-46f7-96ec-b56ff0331ba9"


def _plain(value: Any) -> Any:
    """Turn a wire-format property value into plain data; secrets become "[secret]"."""
    if isinstance(value, dict):
        sig = value.get(_SIG_KEY)
        if sig == _SIG_SECRET:
            return SECRET
        if sig == _SIG_RESOURCE:
            return value.get("id") or value.get("urn")
        if sig == _SIG_OUTPUT:
            if value.get("secret"):
                return SECRET
            return _plain(value.get("value")) if "value" in value else UNKNOWN
        if sig in (_SIG_ASSET, _SIG_ARCHIVE):
            return value.get("path") or value.get("uri") or ("[text asset]" if "text" in value else "[asset]")
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if value == _UNKNOWN_VALUE:
        return UNKNOWN
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


@dataclass
class Registration:
    urn: str
    type: str
    name: str
    custom: bool
    id: str | None
    parent: str | None
    provider: str | None
    protect: bool
    retain_on_delete: bool
    aliases: list[str]
    depends_on: list[str]
    props: dict[str, Any]
    # Recorded for tests; not part of the plan file (CONTRACTS v1 fixes its keys).
    ignore_changes: list[str] = field(default_factory=list)


def _short(typ: str) -> str:
    # "aws:ec2/subnet:Subnet" -> "subnet"
    return typ.rsplit(":", 1)[-1].lower()


class Mocks(pulumi_mocks.Mocks):
    """Answers the engine's questions with realistic, deterministic values."""

    def __init__(self, stack: str, region: str):
        self.stack = stack
        self.region = region
        self._ids: set[str] = set()
        # Explicit providers' regions by provider id: resources of the us-east-1 provider get
        # us-east-1 ARNs (a topic's ARN names the region an alarm must be in to use it).
        self._provider_regions: dict[str, str] = {}

    # ids are unique per resource and stable across runs: derived from type and name.
    def _new_id(self, typ: str, name: str) -> str:
        digest = hashlib.sha1(f"{typ}::{name}".encode()).hexdigest()
        base = f"{_ID_PREFIX.get(typ, _short(typ))}-{digest[:17]}"
        candidate, n = base, 1
        while candidate in self._ids:
            n += 1
            candidate = f"{base}-{n}"
        self._ids.add(candidate)
        return candidate

    def new_resource(self, args: pulumi_mocks.MockResourceArgs):
        if not args.custom and not args.typ.startswith("pulumi:providers:"):
            return "", {}
        rid = args.resource_id or self._new_id(args.typ, args.name)
        state = dict(args.inputs)
        if args.typ == "pulumi:providers:aws" and args.inputs.get("region"):
            self._provider_regions[rid] = args.inputs["region"]
        m = self._in_region(args.provider)
        outputs = _COMPUTED.get(args.typ)
        if outputs is not None:
            state.update(outputs(m, args.name, rid, args.inputs))
        if args.typ.startswith("aws:") and "arn" not in state:
            state["arn"] = m.arn(args.typ, rid)
        return rid, state

    def _in_region(self, provider: str | None) -> Mocks:
        """These mocks as seen by a resource of `provider` ("<urn>::<id>"): its region."""
        region = self._provider_regions.get((provider or "").rsplit("::", 1)[-1], self.region)
        if region == self.region:
            return self
        view = copy.copy(self)  # shares the id registry
        view.region = region
        return view

    def arn(self, typ: str, rid: str) -> str:
        service = typ.split(":")[1].split("/")[0]
        return f"arn:aws:{service}:{self.region}:{ACCOUNT_ID}:{_short(typ)}/{rid}"

    def call(self, args: pulumi_mocks.MockCallArgs):
        handler = _INVOKES.get(args.token)
        if handler is None:
            raise NotImplementedError(f"the offline mocks do not answer the invoke {args.token}; add it to tools/mocks.py _INVOKES")
        return handler(self, args.args)


# Type-specific computed attributes the program reads back from resources.
_ID_PREFIX = {
    "aws:ec2/vpc:Vpc": "vpc",
    "aws:ec2/subnet:Subnet": "subnet",
    "aws:ec2/securityGroup:SecurityGroup": "sg",
    "aws:ec2/routeTable:RouteTable": "rtb",
    "aws:ec2/internetGateway:InternetGateway": "igw",
    "aws:ec2/natGateway:NatGateway": "nat",
    "aws:ec2/eip:Eip": "eipalloc",
    "aws:ec2/vpcEndpoint:VpcEndpoint": "vpce",
    "aws:ec2/instance:Instance": "i",
    "aws:ec2/launchTemplate:LaunchTemplate": "lt",
    "aws:kms/key:Key": "key",
    "aws:ec2/vpnGateway:VpnGateway": "vgw",
    "aws:ec2/customerGateway:CustomerGateway": "cgw",
    "aws:ec2/vpnConnection:VpnConnection": "vpn",
    "aws:iam/accessKey:AccessKey": "AKIA",
    "aws:cloudfront/vpcOrigin:VpcOrigin": "vo",  # CloudFront's VPC origin ids start vo_
}


def _ip_from(rid: str, first: int) -> str:
    h = hashlib.sha1(rid.encode()).digest()
    return f"{first}.{h[0]}.{h[1]}.{max(h[2], 1)}"


def _iam_named(kind: str) -> Callable[..., dict[str, Any]]:
    """An IAM role, user or instance profile: its name (else the id) and its ARN under its path."""
    return lambda m, name, rid, inputs: {
        "arn": f"arn:aws:iam::{ACCOUNT_ID}:{kind}{inputs.get('path', '/')}{inputs.get('name', rid)}",
        "name": inputs.get("name", rid),
    }


def _wafv2_global(kind: str) -> Callable[..., dict[str, Any]]:
    """A CLOUDFRONT-scope WAF web ACL or IP set (they live in us-east-1)."""
    return lambda m, name, rid, inputs: {"arn": f"arn:aws:wafv2:us-east-1:{ACCOUNT_ID}:global/{kind}/{inputs.get('name', rid)}/{rid}"}


def _dms(attribute: str, kind: str) -> Callable[..., dict[str, Any]]:
    """A DMS resource: its ARN (DMS names it by an upper-case id) under `attribute`."""
    return lambda m, name, rid, inputs: {attribute: f"arn:aws:dms:{m.region}:{ACCOUNT_ID}:{kind}:{rid.upper()}"}


def _managed_policy(fallback: str, ids: dict[str, str]) -> Callable[..., dict[str, Any]]:
    """A lookup of an AWS-managed CloudFront policy by name: its real id, else `fallback`."""
    return lambda m, a: {"id": ids.get(a.get("name"), fallback), "name": a.get("name")}


_COMPUTED: dict[str, Any] = {
    # The Serverless Application Repository stack's outputs (the rotation apps export the function ARN).
    "aws:serverlessrepository/cloudFormationStack:CloudFormationStack": lambda m, name, rid, inputs: {
        "outputs": {
            "RotationLambdaARN": f"arn:aws:lambda:{m.region}:{ACCOUNT_ID}:function:{(inputs.get('parameters') or {}).get('functionName', name)}"
        },
    },
    "aws:ec2/vpc:Vpc": lambda m, name, rid, inputs: {
        "defaultSecurityGroupId": f"sg-default-{rid[4:12]}",
        "mainRouteTableId": f"rtb-main-{rid[4:12]}",
    },
    "aws:ec2/eip:Eip": lambda m, name, rid, inputs: {
        "publicIp": _ip_from(rid, 3),
        "allocationId": rid,
    },
    "aws:ec2/instance:Instance": lambda m, name, rid, inputs: {
        "privateIp": _ip_from(rid, 10),
        "publicIp": "",
    },
    "aws:ec2/launchTemplate:LaunchTemplate": lambda m, name, rid, inputs: {
        "latestVersion": 1,
        "defaultVersion": 1,
        "arn": f"arn:aws:ec2:{m.region}:{ACCOUNT_ID}:launch-template/{rid}",
    },
    "aws:iam/instanceProfile:InstanceProfile": _iam_named("instance-profile"),
    "aws:route53/healthCheck:HealthCheck": lambda m, name, rid, inputs: {
        "arn": f"arn:aws:route53:::healthcheck/{rid}",
    },
    "aws:cloudwatch/logGroup:LogGroup": lambda m, name, rid, inputs: {
        "arn": f"arn:aws:logs:{m.region}:{ACCOUNT_ID}:log-group:{inputs.get('name', rid)}",
    },
    "aws:iam/role:Role": _iam_named("role"),
    "aws:kms/key:Key": lambda m, name, rid, inputs: {
        "arn": f"arn:aws:kms:{m.region}:{ACCOUNT_ID}:key/{rid}",
        "keyId": rid,
    },
    "aws:rds/instance:Instance": lambda m, name, rid, inputs: {
        "address": f"{inputs.get('identifier', rid)}.abcdefghijkl.{m.region}.rds.amazonaws.com",
        "endpoint": f"{inputs.get('identifier', rid)}.abcdefghijkl.{m.region}.rds.amazonaws.com:5432",
        "port": 5432,
        "arn": f"arn:aws:rds:{m.region}:{ACCOUNT_ID}:db:{inputs.get('identifier', rid)}",
        "masterUserSecrets": [
            {
                "secretArn": f"arn:aws:secretsmanager:{m.region}:{ACCOUNT_ID}:secret:rds!db-{rid}",
                "secretStatus": "active",
                "kmsKeyId": inputs.get("masterUserSecretKmsKeyId", ""),
            }
        ]
        if inputs.get("manageMasterUserPassword")
        else [],
    },
    "aws:elasticache/replicationGroup:ReplicationGroup": lambda m, name, rid, inputs: {
        "primaryEndpointAddress": f"master.{inputs.get('replicationGroupId', rid)}.abc123.apn2.cache.amazonaws.com",
        "readerEndpointAddress": f"replica.{inputs.get('replicationGroupId', rid)}.abc123.apn2.cache.amazonaws.com",
        "port": inputs.get("port", 6379),
        "arn": f"arn:aws:elasticache:{m.region}:{ACCOUNT_ID}:replicationgroup:{inputs.get('replicationGroupId', rid)}",
    },
    "aws:s3/bucket:Bucket": lambda m, name, rid, inputs: {
        "bucket": inputs.get("bucket", rid),
        "arn": f"arn:aws:s3:::{inputs.get('bucket', rid)}",
        "bucketDomainName": f"{inputs.get('bucket', rid)}.s3.amazonaws.com",
        "bucketRegionalDomainName": f"{inputs.get('bucket', rid)}.s3.{m.region}.amazonaws.com",
    },
    "aws:lb/loadBalancer:LoadBalancer": lambda m, name, rid, inputs: (
        lambda kind: {
            # NLB names read <name>-<hash>.elb.<region>.amazonaws.com, ALB <name>-<n>.<region>.elb.amazonaws.com
            "dnsName": f"{inputs.get('name', rid)}-1234567890."
            + (f"elb.{m.region}" if kind == "net" else f"{m.region}.elb")
            + ".amazonaws.com",
            # ELB hosted zones of ap-northeast-2: ALB ZWKZPGTI48KDX, NLB ZIBE1TIR4HY56
            "zoneId": "ZIBE1TIR4HY56" if kind == "net" else "ZWKZPGTI48KDX",
            "arnSuffix": f"{kind}/{inputs.get('name', rid)}/50dc6c495c0c9188",
            "arn": f"arn:aws:elasticloadbalancing:{m.region}:{ACCOUNT_ID}:loadbalancer/{kind}/{inputs.get('name', rid)}/50dc6c495c0c9188",
        }
    )("net" if inputs.get("loadBalancerType") == "network" else "app"),
    "aws:lb/targetGroup:TargetGroup": lambda m, name, rid, inputs: {
        "arnSuffix": f"targetgroup/{inputs.get('name', rid)}/73e2d6bc24d8a067",
        "arn": f"arn:aws:elasticloadbalancing:{m.region}:{ACCOUNT_ID}:targetgroup/{inputs.get('name', rid)}/73e2d6bc24d8a067",
    },
    "aws:cloudfront/distribution:Distribution": lambda m, name, rid, inputs: {
        "domainName": f"d{rid[-12:]}.cloudfront.net",
        "hostedZoneId": "Z2FDTNDATAQYW2",  # CloudFront's fixed alias zone
        "arn": f"arn:aws:cloudfront::{ACCOUNT_ID}:distribution/{rid}",
    },
    # Global, like distributions: arn:aws:cloudfront::<account>:vpcorigin/<id>.
    "aws:cloudfront/vpcOrigin:VpcOrigin": lambda m, name, rid, inputs: {"arn": f"arn:aws:cloudfront::{ACCOUNT_ID}:vpcorigin/{rid}"},
    "aws:wafv2/webAcl:WebAcl": _wafv2_global("webacl"),
    "aws:wafv2/ipSet:IpSet": _wafv2_global("ipset"),
    "aws:acm/certificate:Certificate": lambda m, name, rid, inputs: {
        "domainValidationOptions": [
            {
                "domainName": d,
                "resourceRecordName": f"_x{i}.{d.lstrip('*.')}.",
                "resourceRecordType": "CNAME",
                "resourceRecordValue": f"_y{i}.acm-validations.aws.",
            }
            for i, d in enumerate([inputs.get("domainName", ""), *inputs.get("subjectAlternativeNames", [])])
        ],
    },
    "aws:route53/zone:Zone": lambda m, name, rid, inputs: {
        "zoneId": f"Z{hashlib.sha1(rid.encode()).hexdigest()[:12].upper()}",
        "nameServers": ["ns-1.awsdns-01.org", "ns-2.awsdns-02.co.uk", "ns-3.awsdns-03.com", "ns-4.awsdns-04.net"],
    },
    "aws:eks/cluster:Cluster": lambda m, name, rid, inputs: {
        "endpoint": f"https://{rid[-12:].upper()}.gr7.{m.region}.eks.amazonaws.com",
        "certificateAuthority": {"data": "LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0tCg=="},
        "identities": [{"oidcs": [{"issuer": f"https://oidc.eks.{m.region}.amazonaws.com/id/{rid[-12:].upper()}"}]}],
        "vpcConfig": {**inputs.get("vpcConfig", {}), "clusterSecurityGroupId": f"sg-eks-{rid[-8:]}"},
        "arn": f"arn:aws:eks:{m.region}:{ACCOUNT_ID}:cluster/{inputs.get('name', rid)}",
    },
    "aws:eks/nodeGroup:NodeGroup": lambda m, name, rid, inputs: {
        "arn": f"arn:aws:eks:{m.region}:{ACCOUNT_ID}:nodegroup/{inputs.get('clusterName', 'cluster')}/{inputs.get('nodeGroupName', rid)}/{rid[-8:]}",
        "status": "ACTIVE",
    },
    "aws:secretsmanager/secret:Secret": lambda m, name, rid, inputs: {
        "arn": f"arn:aws:secretsmanager:{m.region}:{ACCOUNT_ID}:secret:{inputs.get('name', rid)}-AbCdEf",
    },
    "aws:sns/topic:Topic": lambda m, name, rid, inputs: {
        "arn": f"arn:aws:sns:{m.region}:{ACCOUNT_ID}:{inputs.get('name', rid)}",
    },
    # The NAS bridge (components/migration.py).
    "aws:ec2/vpnConnection:VpnConnection": lambda m, name, rid, inputs: {
        "tunnel1Address": _ip_from(rid + "t1", 52),
        "tunnel2Address": _ip_from(rid + "t2", 52),
        "tunnel1PresharedKey": "mockpsk1" + hashlib.sha256((rid + "1").encode()).hexdigest()[:24],
        "tunnel2PresharedKey": "mockpsk2" + hashlib.sha256((rid + "2").encode()).hexdigest()[:24],
        "customerGatewayConfiguration": f'<vpn_connection id="{rid}">mock device configuration</vpn_connection>',
        "arn": f"arn:aws:ec2:{m.region}:{ACCOUNT_ID}:vpn-connection/{rid}",
    },
    "aws:dms/replicationInstance:ReplicationInstance": _dms("replicationInstanceArn", "rep"),
    "aws:dms/endpoint:Endpoint": _dms("endpointArn", "endpoint"),
    "aws:dms/replicationTask:ReplicationTask": _dms("replicationTaskArn", "task"),
    "aws:iam/user:User": _iam_named("user"),
    "aws:iam/accessKey:AccessKey": lambda m, name, rid, inputs: {
        "secret": "mock-secret-" + hashlib.sha256(rid.encode()).hexdigest()[:28],
    },
    "random:index/randomPassword:RandomPassword": lambda m, name, rid, inputs: {
        # Deterministic, never a real secret; the program must treat it as secret anyway.
        "result": ("mock" + hashlib.sha256(name.encode()).hexdigest())[: int(inputs.get("length", 32))],
    },
    "random:index/randomId:RandomId": lambda m, name, rid, inputs: {
        "hex": hashlib.sha256(name.encode()).hexdigest()[: 2 * int(inputs.get("byteLength", 4))],
        "b64Url": hashlib.sha256(name.encode()).hexdigest()[: int(inputs.get("byteLength", 4))],
    },
}


_INVOKES: dict[str, Any] = {
    "aws:index/getCallerIdentity:getCallerIdentity": lambda m, a: {
        "accountId": ACCOUNT_ID,
        "arn": f"arn:aws:iam::{ACCOUNT_ID}:user/offline-plan",
        "userId": "AIDAOFFLINEPLAN",
        "id": ACCOUNT_ID,
    },
    "aws:index/getPartition:getPartition": lambda m, a: {
        "partition": "aws",
        "dnsSuffix": "amazonaws.com",
        "reverseDnsPrefix": "com.amazonaws",
        "id": "aws",
    },
    "aws:index/getRegion:getRegion": lambda m, a: {"name": m.region, "region": m.region, "id": m.region},
    "aws:ec2/getManagedPrefixList:getManagedPrefixList": lambda m, a: {
        "id": "pl-22a6434b",  # com.amazonaws.global.cloudfront.origin-facing in ap-northeast-2
        "name": a.get("name", "com.amazonaws.global.cloudfront.origin-facing"),
        "arn": f"arn:aws:ec2:{m.region}:aws:prefix-list/pl-22a6434b",
        "addressFamily": "IPv4",
        "maxEntries": 55,
        "entries": [],
        "ownerId": "AWS",
    },
    "aws:ssm/getParameter:getParameter": lambda m, a: {
        "name": a["name"],
        "type": "String",
        "value": "ami-0a1b2c3d4e5f60718" if "ami" in a["name"] else "mock-parameter",
        "insecureValue": "ami-0a1b2c3d4e5f60718" if "ami" in a["name"] else "mock-parameter",
        "arn": f"arn:aws:ssm:{m.region}:aws:parameter{a['name']}",
        "version": 1,
        "id": a["name"],
    },
    "aws:ec2/getAmi:getAmi": lambda m, a: {
        "id": "ami-0a1b2c3d4e5f60718",
        "imageId": "ami-0a1b2c3d4e5f60718",
        "architecture": "arm64",
        "name": "al2023-ami-2023.9-arm64",
    },
    "aws:cloudfront/getCachePolicy:getCachePolicy": _managed_policy(
        "mock-cache-policy",
        {
            "Managed-CachingDisabled": "4135ea2d-6df8-44a3-9df3-4b5a84be39ad",
            "Managed-CachingOptimized": "658327ea-f89d-4fab-a63d-7e88639e58f6",
        },
    ),
    "aws:cloudfront/getOriginRequestPolicy:getOriginRequestPolicy": _managed_policy(
        "mock-origin-request-policy",
        {
            "Managed-AllViewerExceptHostHeader": "b689b0a8-53d0-40ab-baf2-68738e2966ac",
            "Managed-CORS-S3Origin": "88a5eaf4-2fd4-4709-b370-b4c650ea3fcf",
        },
    ),
    "aws:rds/getSnapshot:getSnapshot": lambda m, a: {
        "dbSnapshotArn": f"arn:aws:rds:{m.region}:{ACCOUNT_ID}:snapshot:"
        + (a.get("dbSnapshotIdentifier") or f"rds:{a.get('dbInstanceIdentifier')}-2026-11-28-17-05"),
        "id": a.get("dbSnapshotIdentifier") or f"rds:{a.get('dbInstanceIdentifier')}-2026-11-28-17-05",
        "allocatedStorage": 100,
        "engine": "postgres",
        "engineVersion": "16.8",
        "encrypted": True,
        # The source stage's data key: the one the snapshot is encrypted with.
        "kmsKeyId": f"arn:aws:kms:{m.region}:{ACCOUNT_ID}:key/source-{str(a.get('dbInstanceIdentifier') or a.get('dbSnapshotIdentifier'))[:24]}",
        "status": "available",
    },
    "aws:route53/getZone:getZone": lambda m, a: {
        "zoneId": f"Z{hashlib.sha1(str(a.get('name')).encode()).hexdigest()[:12].upper()}",
        "name": a.get("name"),
        "nameServers": ["ns-11.awsdns-11.org", "ns-12.awsdns-12.co.uk", "ns-13.awsdns-13.com", "ns-14.awsdns-14.net"],
        "privateZone": False,
        "arn": f"arn:aws:route53:::hostedzone/Z{hashlib.sha1(str(a.get('name')).encode()).hexdigest()[:12].upper()}",
        "id": a.get("name"),
    },
    "aws:eks/getAddonVersion:getAddonVersion": lambda m, a: {
        "version": "v1.0.0-eksbuild.1",
        "addonName": a.get("addonName"),
        "kubernetesVersion": a.get("kubernetesVersion"),
        "id": a.get("addonName"),
    },
}


class RecordingMonitor(pulumi_mocks.MockMonitor):
    """A MockMonitor that keeps each registration request as the engine would see it."""

    def __init__(self, mocks: Mocks):
        super().__init__(mocks)
        self.registrations: dict[str, Registration] = {}
        self.order: list[str] = []

    def make_urn(self, parent: str, type_: str, name: str) -> str:
        # Like the engine (resource.NewURN): the type is the parent's whole qualified type
        # chain plus this type, and children of the root stack carry no Stack prefix.
        # (The SDK's MockMonitor keeps only the parent's last type.)
        if parent:
            parent_type = parent.split("::")[2]
            if parent_type != "pulumi:pulumi:Stack":
                type_ = parent_type + "$" + type_
        return "urn:pulumi:" + "::".join([get_stack(), get_project(), type_, name])

    def RegisterResource(self, request):
        response = super().RegisterResource(request)
        if request.type == "pulumi:pulumi:Stack":
            return response
        props = _plain(json_format.MessageToDict(request.object, preserving_proto_field_name=True))
        # A provider reference is "<provider urn>::<provider id>".
        provider_urn = request.provider.rsplit("::", 1)[0] if request.provider else None
        reg = Registration(
            urn=response.urn,
            type=request.type,
            name=request.name,
            custom=bool(request.custom) or request.type.startswith("pulumi:providers:"),
            id=response.id or None,
            parent=None if not request.parent or "::pulumi:pulumi:Stack::" in request.parent else request.parent,
            provider=provider_urn,
            protect=bool(request.protect),
            retain_on_delete=bool(request.retainOnDelete),
            aliases=[self._alias_urn(request, a) for a in request.aliases],
            depends_on=sorted(set(request.dependencies)),
            props=props,
            ignore_changes=list(request.ignoreChanges),
        )
        self.registrations[reg.urn] = reg
        self.order.append(reg.urn)
        return response

    def _alias_urn(self, request, alias) -> str:
        """The URN an alias stands for, with the spec's blanks filled from the resource."""
        if alias.urn:
            return alias.urn
        spec = alias.spec
        if spec.noParent:
            parent = ""
        elif spec.parentUrn:
            parent = spec.parentUrn
        else:
            parent = request.parent
        name = spec.name or request.name
        typ = spec.type or request.type
        return self.make_urn(parent, typ, name)


@dataclass
class ProgramRun:
    stack: str
    registrations: list[Registration]
    outputs: dict[str, Any] = field(default_factory=dict)
    secret_outputs: set[str] = field(default_factory=set)
    project: str = PROJECT


def _NO_STACK_TRACE():  # noqa: N802 (stands in for the SDK's private _get_stack_trace)
    return pulumi_resource.source_pb2.StackTrace()


def run_mocked(
    stack: str,
    region: str,
    build: Callable[[], dict[str, Any] | None],
    raw_config: dict[str, str] | None = None,
    secret_keys: list[str] | None = None,
    project: str = PROJECT,
) -> tuple[list[Registration], dict[str, tuple[Any, bool]]]:
    """The one mock runner: run `build()` as a Pulumi program for `stack` under the mocks
    (engine config `raw_config`: strings, objects JSON-encoded); return every registration, in
    order, and the resolved `(value, is_secret)` of each Output in the dict `build` returns."""
    mocks = Mocks(stack, region)
    monitor = RecordingMonitor(mocks)
    pulumi_settings.ROOT.set(None)  # a fresh root Stack for this run
    pulumi_mocks.set_mocks(mocks, project=project, stack=stack, preview=False, monitor=monitor)
    set_all_config(dict(raw_config or {}), list(secret_keys or []))
    returned: dict[str, Any] = {}

    def program():
        returned.update(build() or {})
        return pulumi.Output.all(*[pulumi.Output.from_input(v) for v in returned.values()])

    # No engine reads source positions here (plan files carry none): skip the SDK's walk of the
    # Python stack on every registration (~12 % of a plan). Restored after the run.
    stack_trace = pulumi_resource._get_stack_trace
    pulumi_resource._get_stack_trace = _NO_STACK_TRACE
    try:
        pulumi.runtime.test(program)()
    finally:
        pulumi_resource._get_stack_trace = stack_trace
    values = {}
    for name, value in returned.items():
        out = pulumi.Output.from_input(value)
        values[name] = (_sync_await(out.future()), _sync_await(out.is_secret()))
    return [monitor.registrations[u] for u in monitor.order], values


def run_program(
    stack: str,
    raw_config: dict[str, str],
    secret_keys: list[str] | None = None,
    program_file: Path = ROOT / "__main__.py",
    project: str = PROJECT,
) -> ProgramRun:
    """Run the program (`__main__.py`) for `stack` with `raw_config` (engine format:
    strings, objects JSON-encoded) under mocks; return every registration and the
    stack outputs. Another project (bootstrap/) passes its own `program_file` and
    `project`: its directory is the working directory and on sys.path, as under Pulumi."""
    program_dir = program_file.parent

    def program() -> dict[str, Any]:
        cwd = os.getcwd()
        sys.path.insert(0, str(program_dir))
        os.chdir(program_dir)  # the program resolves paths (e.g. charts/) like under `pulumi up`
        try:
            runpy.run_path(str(program_file), run_name="__main__")
        finally:
            os.chdir(cwd)
            sys.path.remove(str(program_dir))
        return dict(getattr(pulumi_settings.get_root_resource(), "outputs", {}))

    regs, values = run_mocked(stack, raw_config.get("aws:region", "ap-northeast-2"), program, raw_config, secret_keys, project)
    outputs = {name: value for name, (value, _) in values.items()}
    secret = {name for name, (_, is_secret) in values.items() if is_secret}
    return ProgramRun(stack=stack, registrations=regs, outputs=outputs, secret_outputs=secret, project=project)


def exit_process(code: int) -> None:
    """Leave a command that ran the mock runtime. The runtime leaves an event loop in each
    worker thread it used; their finalizers race at interpreter shutdown and may print
    noise. Nothing is left to clean up, so flush and leave at once."""
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except BrokenPipeError:  # the reader left early (`... | head`): not an error of ours
        pass
    os._exit(code)
