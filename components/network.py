"""The stage's VPC: three subnet tiers per AZ, NAT strategy, routes, endpoints, flow logs."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from components.cloudwatch import log_group
from components.config import NatStrategy, NetworkConfig
from components.context import StageContext
from components.edge.edge_buckets import EdgeBucket, log_bucket_args
from components.iam import policy_document, service_trust
from components.nat_instance import NatInstance, NatInstanceArgs

MAX_AZS = 4


@dataclass(frozen=True)
class SubnetPlan:
    """Deterministic carving of the VPC CIDR, by AZ index.

    The low half of the VPC holds the private subnets (EKS nodes and pods take one
    VPC address each, so they get the big blocks); the high half holds the small
    public (LBs, NAT, TURN) and isolated (RDS, ElastiCache, an internal ALB) subnets. For a /16:
    private /19 each, public and isolated /22 each; the rest is left free.
    """

    vpc: ipaddress.IPv4Network
    public: tuple[ipaddress.IPv4Network, ...]
    private: tuple[ipaddress.IPv4Network, ...]
    isolated: tuple[ipaddress.IPv4Network, ...]

    @classmethod
    def carve(cls, vpc: ipaddress.IPv4Network, az_count: int) -> SubnetPlan:
        if not 1 <= az_count <= MAX_AZS:
            raise ValueError(f"az_count must be 1..{MAX_AZS}")
        p = vpc.prefixlen
        low, high = vpc.subnets(new_prefix=p + 1)
        private = list(low.subnets(new_prefix=p + 3))[:az_count]
        small = list(high.subnets(new_prefix=p + 6))
        public = small[0:az_count]
        isolated = small[MAX_AZS : MAX_AZS + az_count]
        return cls(vpc, tuple(public), tuple(private), tuple(isolated))


@dataclass
class NetworkArgs:
    # ctx.data_key_arn encrypts the flow logs either way: its policy admits CloudWatch Logs for
    # this account's groups, and log delivery where the destination is S3.
    ctx: StageContext
    config: NetworkConfig


def _associate(subnet: aws.ec2.Subnet, table: aws.ec2.RouteTable) -> aws.ec2.RouteTableAssociation:
    """`<subnet's logical name>-rta`, a child of the subnet."""
    return aws.ec2.RouteTableAssociation(
        f"{subnet.pulumi_resource_name}-rta", subnet_id=subnet.id, route_table_id=table.id, opts=pulumi.ResourceOptions(parent=subnet)
    )


class Network(pulumi.ComponentResource):
    """VPC with public / private / isolated subnets per AZ.

    Isolated subnets have a route table with the local route only (plus the S3
    gateway endpoint): no internet gateway, no NAT.
    """

    vpc_id: pulumi.Output[str]

    def __init__(self, name: str, args: NetworkArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("voip:network:Network", name, None, opts)
        self.args = args
        stage = args.ctx.stage
        child = pulumi.ResourceOptions(parent=self)
        plan = SubnetPlan.carve(args.config.cidr, len(args.config.azs))
        self.plan = plan
        self.azs = list(args.config.azs)

        self.vpc = aws.ec2.Vpc(
            f"{stage}-vpc",
            cidr_block=str(args.config.cidr),
            enable_dns_hostnames=True,
            enable_dns_support=True,
            tags={"Name": f"{stage}-vpc"},
            opts=child,
        )
        vpc_opts = pulumi.ResourceOptions(parent=self.vpc)

        # The default SG allows all traffic between its members; strip it so nothing
        # can rely on it by accident (CIS 5.4).
        aws.ec2.DefaultSecurityGroup(
            f"{stage}-default-sg",
            vpc_id=self.vpc.id,
            ingress=[],
            egress=[],
            tags={"Name": f"{stage}-default-sg-unused"},
            opts=vpc_opts,
        )

        self.igw = aws.ec2.InternetGateway(f"{stage}-igw", vpc_id=self.vpc.id, tags={"Name": f"{stage}-igw"}, opts=vpc_opts)

        # Per tier: its subnets and the tags the LB controller discovers them by.
        tiers = {
            "public": ({"kubernetes.io/role/elb": "1"}, plan.public),
            "private": ({"kubernetes.io/role/internal-elb": "1"}, plan.private),
            "isolated": ({}, plan.isolated),
        }
        subnets: dict[str, list[aws.ec2.Subnet]] = {tier: [] for tier in tiers}
        for i, az in enumerate(args.config.azs):
            for tier, (lb_role, cidrs) in tiers.items():
                name = f"{stage}-{tier}-{az[-1]}"
                subnets[tier].append(
                    aws.ec2.Subnet(
                        name,
                        vpc_id=self.vpc.id,
                        cidr_block=str(cidrs[i]),
                        availability_zone=az,
                        # Nothing gets a public IP by accident; NAT, LBs and TURN nodes get EIPs.
                        map_public_ip_on_launch=False if tier == "public" else None,
                        tags={"Name": name, "tier": tier, **lb_role},
                        opts=vpc_opts,
                    )
                )
        self.public_subnets, self.private_subnets, self.isolated_subnets = subnets["public"], subnets["private"], subnets["isolated"]

        # Public: one route table, default route to the internet gateway.
        self.public_route_table = aws.ec2.RouteTable(
            f"{stage}-public-rt", vpc_id=self.vpc.id, tags={"Name": f"{stage}-public-rt"}, opts=vpc_opts
        )
        aws.ec2.Route(
            f"{stage}-public-default",
            route_table_id=self.public_route_table.id,
            destination_cidr_block="0.0.0.0/0",
            gateway_id=self.igw.id,
            opts=pulumi.ResourceOptions(parent=self.public_route_table),
        )
        for subnet in self.public_subnets:
            _associate(subnet, self.public_route_table)

        # NAT gateways per strategy, each with its EIP, in the public subnets.
        self.nat_gateways: list[aws.ec2.NatGateway] = []
        self.nat_gateway_suffixes: list[str] = []  # the AZ letter of each, in the same order
        nat_azs = {
            NatStrategy.PER_AZ: list(range(len(args.config.azs))),
            NatStrategy.SINGLE: [0],
            NatStrategy.NONE: [],
            NatStrategy.INSTANCE: [],
        }[args.config.nat_strategy]
        for i in nat_azs:
            suffix = args.config.azs[i][-1]
            self.nat_gateway_suffixes.append(suffix)
            eip = aws.ec2.Eip(
                f"{stage}-nat-{suffix}-eip",
                domain="vpc",
                tags={"Name": f"{stage}-nat-{suffix}"},
                opts=vpc_opts,
            )
            self.nat_gateways.append(
                aws.ec2.NatGateway(
                    f"{stage}-nat-{suffix}",
                    allocation_id=eip.id,
                    subnet_id=self.public_subnets[i].id,
                    connectivity_type="public",
                    tags={"Name": f"{stage}-nat-{suffix}"},
                    opts=pulumi.ResourceOptions(parent=self.public_subnets[i], depends_on=[self.igw]),
                )
            )

        # Private: a route table per AZ, default route to that AZ's NAT (or the single one).
        self.private_route_tables: list[aws.ec2.RouteTable] = []
        for i, (subnet, az) in enumerate(zip(self.private_subnets, args.config.azs)):
            suffix = az[-1]
            rt = aws.ec2.RouteTable(
                f"{stage}-private-{suffix}-rt", vpc_id=self.vpc.id, tags={"Name": f"{stage}-private-{suffix}-rt"}, opts=vpc_opts
            )
            self.private_route_tables.append(rt)
            if self.nat_gateways:
                nat = self.nat_gateways[i] if args.config.nat_strategy == NatStrategy.PER_AZ else self.nat_gateways[0]
                aws.ec2.Route(
                    f"{stage}-private-{suffix}-default",
                    route_table_id=rt.id,
                    destination_cidr_block="0.0.0.0/0",
                    nat_gateway_id=nat.id,
                    opts=pulumi.ResourceOptions(parent=rt),
                )
            _associate(subnet, rt)

        # natStrategy instance: the instance routes the private tables to itself (nat_instance.py).
        self.nat_instance: NatInstance | None = None
        if args.config.nat_strategy == NatStrategy.INSTANCE:
            self.nat_instance = NatInstance(
                f"{stage}-nat-instance",
                NatInstanceArgs(
                    ctx=args.ctx,
                    config=args.config,
                    vpc_id=self.vpc.id,
                    public_subnet_ids=[s.id for s in self.public_subnets],
                    private_route_table_ids=[rt.id for rt in self.private_route_tables],
                    # The single NAT gateway's address becomes the instance's (same EIP, same URN history).
                    eip_aliases=[pulumi.Alias(name=f"{stage}-nat-{args.config.azs[0][-1]}-eip", parent=self.vpc)],
                ),
                opts=pulumi.ResourceOptions(parent=self, depends_on=[self.igw]),
            )

        # Isolated: local route only. Data stores live here.
        self.isolated_route_table = aws.ec2.RouteTable(
            f"{stage}-isolated-rt", vpc_id=self.vpc.id, tags={"Name": f"{stage}-isolated-rt"}, opts=vpc_opts
        )
        for subnet in self.isolated_subnets:
            _associate(subnet, self.isolated_route_table)

        region = args.ctx.region
        # S3 gateway endpoint: free, and keeps S3 bytes (images, files, logs) off the NAT.
        all_route_tables = [self.public_route_table, *self.private_route_tables, self.isolated_route_table]
        self.s3_endpoint = aws.ec2.VpcEndpoint(
            f"{stage}-s3-endpoint",
            vpc_id=self.vpc.id,
            service_name=f"com.amazonaws.{region}.s3",
            vpc_endpoint_type="Gateway",
            route_table_ids=[rt.id for rt in all_route_tables],
            tags={"Name": f"{stage}-s3"},
            opts=vpc_opts,
        )

        self.endpoint_security_group: aws.ec2.SecurityGroup | None = None
        if args.config.interface_endpoints:
            self.endpoint_security_group = aws.ec2.SecurityGroup(
                f"{stage}-endpoints-sg",
                vpc_id=self.vpc.id,
                description="Interface VPC endpoints: HTTPS from inside the VPC only",
                ingress=[
                    aws.ec2.SecurityGroupIngressArgs(
                        protocol="tcp", from_port=443, to_port=443, cidr_blocks=[str(args.config.cidr)], description="HTTPS from the VPC"
                    )
                ],
                tags={"Name": f"{stage}-endpoints-sg"},
                opts=vpc_opts,
            )
            for service in args.config.interface_endpoints:
                aws.ec2.VpcEndpoint(
                    f"{stage}-{service.replace('.', '-')}-endpoint",
                    vpc_id=self.vpc.id,
                    service_name=f"com.amazonaws.{region}.{service}",
                    vpc_endpoint_type="Interface",
                    private_dns_enabled=True,
                    subnet_ids=[s.id for s in self.private_subnets],
                    security_group_ids=[self.endpoint_security_group.id],
                    tags={"Name": f"{stage}-{service}"},
                    opts=vpc_opts,
                )

        self._flow_logs(stage, args)

        self.vpc_id = self.vpc.id
        self.public_subnet_ids = pulumi.Output.all(*[s.id for s in self.public_subnets])
        self.private_subnet_ids = pulumi.Output.all(*[s.id for s in self.private_subnets])
        self.isolated_subnet_ids = pulumi.Output.all(*[s.id for s in self.isolated_subnets])
        self.register_outputs(
            {
                "vpcId": self.vpc.id,
                "vpcCidr": str(args.config.cidr),
                "azs": self.azs,
                "publicSubnetIds": self.public_subnet_ids,
                "privateSubnetIds": self.private_subnet_ids,
                "isolatedSubnetIds": self.isolated_subnet_ids,
                "natGatewayIds": [n.id for n in self.nat_gateways],
                "natInstanceAsg": self.nat_instance.asg.name if self.nat_instance else None,
            }
        )

    def _flow_logs(self, stage: str, args: NetworkArgs) -> None:
        """VPC flow logs to CloudWatch Logs or S3, encrypted with the data key either way."""
        cfg = args.config
        if cfg.flow_logs_destination == "s3":
            destination, role_arn, deps = self._flow_log_bucket(stage, args), None, []
        else:
            destination, write = self._flow_log_group(stage, args)
            role_arn, deps = self.flow_log_role.arn, [write]
        self.flow_log = aws.ec2.FlowLog(
            f"{stage}-vpc-flow-log",
            vpc_id=self.vpc.id,
            traffic_type=cfg.flow_logs_traffic_type,
            log_destination_type=cfg.flow_logs_destination,
            log_destination=destination,
            iam_role_arn=role_arn,
            max_aggregation_interval=cfg.flow_logs_aggregation_seconds,
            tags={"Name": f"{stage}-vpc-flow-log"},
            # The destination must accept writes before the first delivery (nothing else orders them).
            opts=pulumi.ResourceOptions(parent=self.vpc, depends_on=deps),
        )

    def _flow_log_bucket(self, stage: str, args: NetworkArgs) -> pulumi.Output[str]:
        """SSE-KMS bucket with the log-delivery policy of the VPC user guide (flow logs to S3)."""
        ctx = args.ctx
        self.flow_log_bucket = EdgeBucket(
            f"{stage}-vpc-flow-logs",
            # Logs, not user data: a stage that holds no data can be destroyed with them.
            log_bucket_args(
                pulumi.Output.from_input(ctx.account_id).apply(lambda a: f"{stage}-voip-flow-logs-{a}"),
                args.config.flow_logs_retention_days,
                # A delete or overwrite stays recoverable a week; expired records leave noncurrent
                # versions that go 7 days later.
                7,
                ctx.protect,
                kms_key_arn=ctx.data_key_arn,
                statements=lambda arn, account: _flow_log_delivery_statements(arn, account, ctx.region),
                statement_inputs=[ctx.account_id],
            ),
            parent=self.vpc,
        )
        self.flow_log_destination_arn = self.flow_log_bucket.arn
        return self.flow_log_bucket.arn

    def _flow_log_group(self, stage: str, args: NetworkArgs) -> tuple[pulumi.Output[str], aws.iam.RolePolicy]:
        opts = pulumi.ResourceOptions(parent=self.vpc)
        self.flow_log_group = log_group(
            f"{stage}-vpc-flow-logs",
            f"/voip/{stage}/vpc-flow-logs",
            args.config.flow_logs_retention_days,
            args.ctx.data_key_arn,
            pulumi.ResourceOptions(parent=self.vpc, protect=args.ctx.protect),
        )
        self.flow_log_destination_arn = self.flow_log_group.arn
        role = aws.iam.Role(
            f"{stage}-vpc-flow-logs-role",
            description="VPC flow logs delivery to CloudWatch Logs",
            # Confused-deputy guard: only flow logs of this account.
            assume_role_policy=service_trust("vpc-flow-logs.amazonaws.com", args.ctx.account_id),
            opts=opts,
        )
        write = aws.iam.RolePolicy(
            f"{stage}-vpc-flow-logs-write",
            role=role.id,
            policy=self.flow_log_group.arn.apply(
                lambda arn: policy_document(
                    [
                        {
                            "Effect": "Allow",
                            "Action": [
                                "logs:CreateLogStream",
                                "logs:PutLogEvents",
                                "logs:DescribeLogGroups",
                                "logs:DescribeLogStreams",
                            ],
                            "Resource": [arn, f"{arn}:*"],
                        }
                    ]
                )
            ),
            opts=pulumi.ResourceOptions(parent=role),
        )
        self.flow_log_role = role
        return self.flow_log_group.arn, write


def _flow_log_delivery_statements(bucket_arn: str, account_id: str, region: str) -> list[dict]:
    """Bucket policy for flow-log delivery (VPC user guide, "Amazon S3 bucket permissions for
    flow logs"): log delivery of this account writes under AWSLogs/<account>/ and checks the ACL."""
    source = {"StringEquals": {"aws:SourceAccount": account_id}, "ArnLike": {"aws:SourceArn": f"arn:aws:logs:{region}:{account_id}:*"}}
    return [
        {
            "Sid": "AWSLogDeliveryWrite",
            "Effect": "Allow",
            "Principal": {"Service": "delivery.logs.amazonaws.com"},
            "Action": "s3:PutObject",
            "Resource": f"{bucket_arn}/AWSLogs/{account_id}/*",
            "Condition": {**source, "StringEquals": {**source["StringEquals"], "s3:x-amz-acl": "bucket-owner-full-control"}},
        },
        {
            "Sid": "AWSLogDeliveryAclCheck",
            "Effect": "Allow",
            "Principal": {"Service": "delivery.logs.amazonaws.com"},
            "Action": ["s3:GetBucketAcl", "s3:ListBucket"],
            "Resource": bucket_arn,
            "Condition": source,
        },
    ]
