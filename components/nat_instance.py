"""NAT instance (`network.natStrategy: instance`): one small Graviton instance in an Auto Scaling
group of 1 over every public subnet, instead of a NAT gateway (~$8-20/month against ~$47).

Self-healing, and how the route follows a replacement: Pulumi owns no 0.0.0.0/0 route in this
mode (it cannot know the next instance's id). At boot the instance turns its source/dest check
off, takes the stage's NAT Elastic IP (`associate-address --allow-reassociation`, so partners keep
one egress address) and points the default route of every private route table at itself; a
systemd timer re-asserts the routes every minute (`replace-route`, or `create-route` where the
route is missing). When EC2 health checks fail, the ASG launches a new instance (in any public
subnet: an AZ loss is survived too), whose boot takes the address and the routes over. The
instance role may do exactly that: ReplaceRoute/CreateRoute on these route tables, AssociateAddress
on this EIP, ModifyInstanceAttribute and AssociateAddress on instances tagged as this stage's NAT.
"""

from __future__ import annotations

import base64
import shlex
from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from components.config import NetworkConfig
from components.context import StageContext
from components.iam import allow, policy_document, service_trust

AL2023_ARM64_AMI = "resolve:ssm:/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-arm64"
SSM_CORE_POLICY_ARN = "arn:aws:iam::aws:policy/AmazonSSMManagedInstanceCore"
NAT_TAG = "voip-nat"  # instance tag the role's instance statements are conditioned on
ROUTE_SCRIPT_PATH = "/usr/local/sbin/voip-nat-routes"
ROOT_VOLUME_GIB = 8
# (protocol, from, to) the NAT forwards from the VPC: every TCP/UDP port but 22 and 3389, and ICMP.
FORWARDED = tuple((p, lo, hi) for p in ("tcp", "udp") for lo, hi in ((1, 21), (23, 3388), (3390, 65535))) + (("icmp", -1, -1),)


@dataclass
class NatInstanceArgs:
    ctx: StageContext
    # network: the VPC CIDR and `natInstanceType`.
    config: NetworkConfig
    vpc_id: pulumi.Input[str]
    public_subnet_ids: Sequence[pulumi.Input[str]]
    private_route_table_ids: Sequence[pulumi.Input[str]]
    # Earlier URNs of the egress EIP (the single NAT gateway's): switching strategy keeps the address.
    eip_aliases: Sequence[pulumi.Alias] = ()


def route_script(region: str, route_table_ids: Sequence[str]) -> str:
    """The route re-pointer: every private default route -> this instance. Idempotent; run at boot and every minute."""
    tables = " ".join(shlex.quote(t) for t in route_table_ids)
    return f"""#!/bin/bash
# Points 0.0.0.0/0 of every private route table at this instance (replace, else create).
set -uo pipefail
REGION={shlex.quote(region)}
TOKEN=$(curl -sf -X PUT http://169.254.169.254/latest/api/token -H 'X-aws-ec2-metadata-token-ttl-seconds: 300')
INSTANCE_ID=$(curl -sf -H "X-aws-ec2-metadata-token: $TOKEN" http://169.254.169.254/latest/meta-data/instance-id)
[ -n "$INSTANCE_ID" ] || {{ echo 'voip-nat: no instance id from IMDS' >&2; exit 1; }}
status=0
for rt in {tables}; do
  aws ec2 replace-route --region "$REGION" --route-table-id "$rt" --destination-cidr-block 0.0.0.0/0 --instance-id "$INSTANCE_ID" 2>/dev/null \\
    || aws ec2 create-route --region "$REGION" --route-table-id "$rt" --destination-cidr-block 0.0.0.0/0 --instance-id "$INSTANCE_ID" \\
    || {{ echo "voip-nat: cannot route $rt" >&2; status=1; }}
done
exit $status
"""


def user_data(region: str, vpc_cidr: str, allocation_id: str, route_table_ids: Sequence[str]) -> str:
    """Boot script: forwarding + masquerade, source/dest check off, the EIP, the routes, the timer."""
    routes = route_script(region, route_table_ids)
    return f"""#!/bin/bash
set -euo pipefail
REGION={shlex.quote(region)}
dnf install -y iptables-services
echo 'net.ipv4.ip_forward = 1' > /etc/sysctl.d/90-voip-nat.conf
sysctl -p /etc/sysctl.d/90-voip-nat.conf
IFACE=$(ip route show default | awk '{{print $5; exit}}')
iptables -t nat -A POSTROUTING -o "$IFACE" -s {shlex.quote(vpc_cidr)} -j MASQUERADE
iptables -P FORWARD ACCEPT
service iptables save
systemctl enable --now iptables
TOKEN=$(curl -sf -X PUT http://169.254.169.254/latest/api/token -H 'X-aws-ec2-metadata-token-ttl-seconds: 300')
INSTANCE_ID=$(curl -sf -H "X-aws-ec2-metadata-token: $TOKEN" http://169.254.169.254/latest/meta-data/instance-id)
aws ec2 modify-instance-attribute --region "$REGION" --instance-id "$INSTANCE_ID" --no-source-dest-check
# Retried: after a strategy switch the NAT gateway holds the address until Pulumi deletes it.
for attempt in $(seq 1 30); do
  aws ec2 associate-address --region "$REGION" --allocation-id {shlex.quote(allocation_id)} --instance-id "$INSTANCE_ID" --allow-reassociation && break
  sleep 20
done
cat > {ROUTE_SCRIPT_PATH} <<'ROUTES'
{routes}ROUTES
chmod 0755 {ROUTE_SCRIPT_PATH}
cat > /etc/systemd/system/voip-nat-routes.service <<'UNIT'
[Unit]
Description=Point the private default routes at this NAT instance
After=network-online.target
[Service]
Type=oneshot
ExecStart={ROUTE_SCRIPT_PATH}
UNIT
cat > /etc/systemd/system/voip-nat-routes.timer <<'UNIT'
[Unit]
Description=Re-assert the NAT routes every minute
[Timer]
OnBootSec=0
OnUnitActiveSec=60
[Install]
WantedBy=timers.target
UNIT
systemctl daemon-reload
systemctl enable --now voip-nat-routes.timer
"""


def role_policy(region: str, account_id: str, stage: str, allocation_id: str, route_table_ids: Sequence[str]) -> str:
    """Exactly what the boot script and the timer call, on exactly these resources."""
    arn = f"arn:aws:ec2:{region}:{account_id}"
    return policy_document(
        [
            allow("PrivateDefaultRoutes", ["ec2:ReplaceRoute", "ec2:CreateRoute"], [f"{arn}:route-table/{rt}" for rt in route_table_ids]),
            allow("EgressAddress", "ec2:AssociateAddress", f"{arn}:elastic-ip/{allocation_id}"),
            allow(
                "ThisStagesNatInstance",
                ["ec2:AssociateAddress", "ec2:ModifyInstanceAttribute"],
                f"{arn}:instance/*",
                StringEquals={f"aws:ResourceTag/{NAT_TAG}": stage},
            ),
            # AssociateAddress also authorizes the instance's primary network interface.
            allow("ItsInterface", "ec2:AssociateAddress", f"{arn}:network-interface/*"),
        ]
    )


class NatInstance(pulumi.ComponentResource):
    """`eip`, `asg`, `security_group`; the route tables' default routes are the instance's own job."""

    def __init__(self, name: str, args: NatInstanceArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("voip:network:NatInstance", name, None, opts)
        ctx = args.ctx
        stage, region, vpc_cidr = ctx.stage, ctx.region, str(args.config.cidr)
        child = pulumi.ResourceOptions(parent=self)
        self.eip = aws.ec2.Eip(
            f"{stage}-nat-eip",
            domain="vpc",
            tags={"Name": f"{stage}-nat"},
            # Pulumi `protect` where the stage holds data: partners allow-list the egress address.
            opts=pulumi.ResourceOptions(parent=self, protect=ctx.protect, aliases=list(args.eip_aliases)),
        )
        self.security_group = aws.ec2.SecurityGroup(
            f"{stage}-nat-instance-sg",
            vpc_id=args.vpc_id,
            description="NAT instance: forwards traffic from the VPC to the internet",
            # Everything the VPC sends out, but SSH/RDP (nobody logs into it: SSM Session Manager).
            ingress=[
                aws.ec2.SecurityGroupIngressArgs(
                    protocol=proto,
                    from_port=lo,
                    to_port=hi,
                    cidr_blocks=[vpc_cidr],
                    description=f"{proto.upper()} to NAT from the VPC",
                )
                for proto, lo, hi in FORWARDED
            ],
            egress=[
                aws.ec2.SecurityGroupEgressArgs(
                    protocol="-1", from_port=0, to_port=0, cidr_blocks=["0.0.0.0/0"], description="Forwarded traffic to the internet"
                )
            ],
            tags={"Name": f"{stage}-nat-instance"},
            opts=child,
        )
        role = aws.iam.Role(
            f"{stage}-nat-instance",
            description="NAT instance: take the egress EIP and the private default routes",
            assume_role_policy=service_trust("ec2.amazonaws.com"),
            opts=child,
        )
        in_role = pulumi.ResourceOptions(parent=role)
        self.policy = aws.iam.RolePolicy(
            f"{stage}-nat-instance-routes",
            role=role.id,
            policy=pulumi.Output.all(ctx.account_id, self.eip.allocation_id, *args.private_route_table_ids).apply(
                lambda v: role_policy(region, v[0], stage, v[1], v[2:])
            ),
            opts=in_role,
        )
        ssm = aws.iam.RolePolicyAttachment(f"{stage}-nat-instance-ssm", role=role.name, policy_arn=SSM_CORE_POLICY_ARN, opts=in_role)
        profile = aws.iam.InstanceProfile(f"{stage}-nat-instance", role=role.name, opts=in_role)
        script = pulumi.Output.all(self.eip.allocation_id, *args.private_route_table_ids).apply(
            lambda v: base64.b64encode(user_data(region, vpc_cidr, v[0], v[1:]).encode()).decode()
        )
        tags = {"Name": f"{stage}-nat", NAT_TAG: stage}
        self.launch_template = aws.ec2.LaunchTemplate(
            f"{stage}-nat-lt",
            name=f"{stage}-nat",
            description="NAT instance (natStrategy instance)",
            image_id=AL2023_ARM64_AMI,
            instance_type=args.config.nat_instance_type,
            iam_instance_profile={"arn": profile.arn},
            # A public address until the boot script moves the EIP onto the instance (it needs the
            # EC2 API first); associating the EIP releases it, so only the EIP is paid.
            network_interfaces=[
                {"associate_public_ip_address": "true", "security_groups": [self.security_group.id], "delete_on_termination": "true"}
            ],
            metadata_options={"http_endpoint": "enabled", "http_tokens": "required", "http_put_response_hop_limit": 1},
            block_device_mappings=[
                {
                    "device_name": "/dev/xvda",
                    "ebs": {"volume_size": ROOT_VOLUME_GIB, "volume_type": "gp3", "encrypted": "true", "delete_on_termination": "true"},
                }
            ],
            tag_specifications=[{"resource_type": rt, "tags": tags} for rt in ("instance", "volume")],
            user_data=script,
            update_default_version=True,
            opts=child,
        )
        self.asg = aws.autoscaling.Group(
            f"{stage}-nat",
            name=f"{stage}-nat",
            min_size=1,
            max_size=1,
            desired_capacity=1,
            vpc_zone_identifiers=list(args.public_subnet_ids),
            launch_template={"id": self.launch_template.id, "version": self.launch_template.latest_version.apply(str)},
            health_check_type="EC2",
            health_check_grace_period=120,
            # A new template version (AMI, type) rolls the instance; egress pauses ~2 minutes.
            instance_refresh={"strategy": "Rolling", "preferences": {"min_healthy_percentage": 0}},
            tags=[{"key": "Name", "value": f"{stage}-nat", "propagate_at_launch": True}],
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self.policy, ssm]),
        )
        self.register_outputs({"eipAllocationId": self.eip.allocation_id, "asgName": self.asg.name, "publicIp": self.eip.public_ip})
