"""coturn TURN nodes: fixed instances with one Elastic IP each, spread over the stage's AZs.

Why fixed instances and not an Auto Scaling group: a TURN node must announce a stable
public address (`external-ip=PUBLIC/PRIVATE`) and clients must be able to reach it by
that address for the whole call. An EIP per node, associated by Pulumi, gives that
with nothing to race at boot; EC2 auto-recovery (status-check alarm) brings a failed
node back on the same host address and EIP. Capacity is added by raising
`turn.nodeCount`; the NetworkOut alarm (80% of the node's bandwidth) tells when.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws
import pulumi_random as random

from components.cloudwatch import log_group, metric_alarm
from components.config import TurnConfig
from components.context import StageContext
from components.data.secrets import stage_secret
from components.iam import allow, key_via_service, policy_document, service_trust
from components.turn.turn_config import (
    SECRET_PLACEHOLDER,
    NodeBoot,
    TurnServerConf,
    denied_peer_ranges,
    render_user_data,
)

AL2023_ARM64_AMI_PARAMETER = "/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-arm64"
SSM_CORE_POLICY_ARN = "arn:aws:iam::aws:policy/AmazonSSMManagedInstanceCore"


@dataclass
class TurnArgs:
    ctx: StageContext
    vpc_id: pulumi.Input[str]
    vpc_cidr: str
    # Public subnets, in the same order as `azs`.
    subnet_ids: Sequence[pulumi.Input[str]]
    azs: Sequence[str]
    config: TurnConfig
    realm: str
    # The NLB that terminates TURNS (tls port) and forwards to the nodes' TCP listening port.
    nlb_security_group_id: pulumi.Input[str] | None = None
    nlb_target_group_arn: pulumi.Input[str] | None = None
    # Route 53 zone for `turn.<domain>` (multivalue A records, one per healthy node).
    zone_id: pulumi.Input[str] | None = None
    domain: str = ""
    # The name clients use for TURNS; it must resolve to the NLB (the edge publishes it).
    tls_host: str | None = None


class Turn(pulumi.ComponentResource):
    """TURN nodes, their shared secret, security group, alarms and DNS."""

    shared_secret: pulumi.Output[str]
    secret_arn: pulumi.Output[str]
    security_group_id: pulumi.Output[str]

    def __init__(self, name: str, args: TurnArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("voip:turn:Turn", name, None, opts)
        if len(args.subnet_ids) != len(args.azs) or not args.azs:
            raise ValueError("TurnArgs: subnet_ids and azs must be non-empty and of the same length")
        self.args = args
        cfg = args.config
        stage = args.ctx.stage
        child = pulumi.ResourceOptions(parent=self)

        # ---- the shared secret: random -> Secrets Manager; nodes read it with their role.
        # Alphanumeric: it lands in turnserver.conf and in HMAC keys of other services.
        password = random.RandomPassword(f"{stage}-turn-shared-secret", length=48, special=False, opts=child)
        self.secret = stage_secret(
            f"{stage}-turn-shared-secret",
            ctx=args.ctx,
            path="turn/shared-secret",
            description=f"coturn use-auth-secret of stage {stage}: TURN REST API credentials are HMACs of it",
            opts=child,
        )
        secret_value = aws.secretsmanager.SecretVersion(
            f"{stage}-turn-shared-secret-value",
            secret_id=self.secret.id,
            secret_string=password.result,
            opts=pulumi.ResourceOptions(parent=self.secret),
        )
        self.shared_secret = pulumi.Output.secret(password.result)
        self.secret_arn = self.secret.arn

        # ---- logs: coturn's stdout through Docker's awslogs driver.
        self.log_group = log_group(f"{stage}-turn-logs", f"/voip/{stage}/turn", cfg.log_retention_days, args.ctx.data_key_arn, child)

        role = self._node_role(stage)
        self.security_group = self._security_group(stage)
        self.security_group_id = self.security_group.id

        # ---- launch template: AL2023 arm64, IMDSv2 only, encrypted root, no key pair.
        ami = aws.ssm.get_parameter_output(name=AL2023_ARM64_AMI_PARAMETER, opts=pulumi.InvokeOutputOptions(parent=self)).insecure_value
        conf = TurnServerConf(
            realm=args.realm,
            static_auth_secret=SECRET_PLACEHOLDER,
            listening_port=args.ctx.ports.turn_listening,
            tls_listening_port=args.ctx.ports.turn_tls,
            min_port=args.ctx.ports.turn_relay_min,
            max_port=args.ctx.ports.turn_relay_max,
            max_bits_per_second=cfg.max_bits_per_second,
            total_quota=cfg.total_quota,
            user_quota=cfg.user_quota,
            denied_peers=denied_peer_ranges(args.vpc_cidr),
            prometheus_port=args.ctx.ports.turn_metrics,
            log_file="stdout",
        )
        user_data = pulumi.Output.all(self.secret.arn, self.log_group.name).apply(
            lambda v: base64.b64encode(
                render_user_data(
                    NodeBoot(region=args.ctx.region, secret_arn=v[0], image=cfg.image.reference, log_group=v[1], conf=conf)
                ).encode()
            ).decode()
        )
        metadata = {"http_endpoint": "enabled", "http_tokens": "required", "http_put_response_hop_limit": 1}
        self.launch_template = aws.ec2.LaunchTemplate(
            f"{stage}-turn-lt",
            name=f"{stage}-turn",
            description="coturn TURN node",
            image_id=ami,
            instance_type=cfg.instance_type,
            iam_instance_profile={"arn": role["profile"].arn},
            vpc_security_group_ids=[self.security_group.id],
            metadata_options=metadata,
            # 1-minute metrics: the bandwidth alarm must not wait 5 minutes per datapoint.
            monitoring={"enabled": True},
            ebs_optimized="true",
            block_device_mappings=[
                {
                    "device_name": "/dev/xvda",
                    "ebs": {"volume_size": cfg.root_volume_gib, "volume_type": "gp3", "encrypted": "true", "delete_on_termination": "true"},
                }
            ],
            tag_specifications=[{"resource_type": "volume", "tags": {"Name": f"{stage}-turn"}}],
            user_data=user_data,
            update_default_version=True,
            opts=child,
        )

        # ---- nodes: round-robin over the AZs, one EIP each.
        self.instances: list[aws.ec2.Instance] = []
        self.eips: list[aws.ec2.Eip] = []
        bandwidth_bytes_per_minute = cfg.node_bandwidth_mbps * 1_000_000 / 8 * 60
        for i in range(cfg.node_count):
            node = f"{stage}-turn-{i + 1}"
            az_index = i % len(args.azs)
            eip = aws.ec2.Eip(
                f"{node}-eip",
                domain="vpc",
                tags={"Name": node},
                opts=pulumi.ResourceOptions(parent=self, protect=args.ctx.protect),
            )
            instance = aws.ec2.Instance(
                node,
                launch_template={"id": self.launch_template.id, "version": self.launch_template.latest_version.apply(str)},
                subnet_id=args.subnet_ids[az_index],
                # Also set here (overrides the template): what policies read on the instance.
                metadata_options=metadata,
                maintenance_options={"auto_recovery": "default"},
                tags={"Name": node},
                opts=pulumi.ResourceOptions(
                    parent=self,
                    # The boot script reads the secret's value (set -e: no value, no coturn) with
                    # the role's policy; the template only references the secret and the role.
                    depends_on=[role["ssm"], role["policy"], secret_value],
                    # A new AMI or template version must not replace a node carrying calls:
                    # new nodes get the latest template; roll old ones with `pulumi up --replace`.
                    ignore_changes=["ami", "launchTemplate", "userData", "userDataBase64"],
                ),
            )
            aws.ec2.EipAssociation(
                f"{node}-eip-assoc",
                allocation_id=eip.allocation_id,
                instance_id=instance.id,
                opts=pulumi.ResourceOptions(parent=instance),
            )
            self._alarms(node, instance, args, bandwidth_bytes_per_minute)
            if args.nlb_target_group_arn is not None:
                aws.lb.TargetGroupAttachment(
                    f"{node}-nlb",
                    target_group_arn=args.nlb_target_group_arn,
                    target_id=instance.id,
                    port=args.ctx.ports.turn_listening,
                    opts=pulumi.ResourceOptions(parent=instance),
                )
            if args.zone_id is not None:
                self._dns(node, eip, args)
            self.instances.append(instance)
            self.eips.append(eip)

        self.public_ips = [e.public_ip for e in self.eips]
        self.instance_ids = [n.id for n in self.instances]
        self.turn_uris = self._uris(args)
        self.ice_servers = self.turn_uris.apply(lambda uris: [{"urls": uris}])
        self.register_outputs(
            {
                "publicIps": self.public_ips,
                "instanceIds": self.instance_ids,
                "turnUris": self.turn_uris,
                "iceServers": self.ice_servers,
                "secretArn": self.secret_arn,
                "securityGroupId": self.security_group_id,
            }
        )

    # ------------------------------------------------------------------ pieces

    def _node_role(self, stage: str) -> dict[str, pulumi.Resource]:
        role = aws.iam.Role(
            f"{stage}-turn-node",
            name=f"{stage}-turn-node",
            description="coturn TURN nodes: SSM Session Manager, their one secret, their log group",
            assume_role_policy=service_trust("ec2.amazonaws.com"),
            opts=pulumi.ResourceOptions(parent=self),
        )
        in_role = pulumi.ResourceOptions(parent=role)
        # Shell access through Session Manager: no SSH, no key pair, no port 22.
        ssm = aws.iam.RolePolicyAttachment(f"{stage}-turn-node-ssm", role=role.name, policy_arn=SSM_CORE_POLICY_ARN, opts=in_role)
        policy = aws.iam.RolePolicy(
            f"{stage}-turn-node-access",
            role=role.id,
            policy=pulumi.Output.all(self.secret.arn, self.log_group.arn, self.args.ctx.data_key_arn, self.args.ctx.region).apply(
                lambda v: policy_document(
                    [
                        allow("ReadTheTurnSecret", "secretsmanager:GetSecretValue", v[0]),
                        # The secret is under the data key: decrypt through Secrets Manager only.
                        key_via_service("DecryptTheTurnSecret", "kms:Decrypt", v[2], "secretsmanager", v[3]),
                        allow(
                            "ShipCoturnLogs",
                            ["logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams"],
                            [v[1], f"{v[1]}:log-stream:*"],
                        ),
                    ]
                )
            ),
            opts=in_role,
        )
        profile = aws.iam.InstanceProfile(f"{stage}-turn-node", name=f"{stage}-turn-node", role=role.name, opts=in_role)
        return {"role": role, "ssm": ssm, "policy": policy, "profile": profile}

    def _security_group(self, stage: str) -> aws.ec2.SecurityGroup:
        args = self.args
        ports = args.ctx.ports
        port = ports.turn_listening
        ingress = [
            # This is what TURN is: clients anywhere, on UDP and TCP.
            {"protocol": "udp", "from_port": port, "to_port": port, "cidr_blocks": ["0.0.0.0/0"], "description": "TURN/STUN over UDP"},
            {"protocol": "tcp", "from_port": port, "to_port": port, "cidr_blocks": ["0.0.0.0/0"], "description": "TURN/STUN over TCP"},
            {
                "protocol": "udp",
                "from_port": ports.turn_relay_min,
                "to_port": ports.turn_relay_max,
                "cidr_blocks": ["0.0.0.0/0"],
                "description": "TURN relay range (UDP only)",
            },
            {
                "protocol": "tcp",
                "from_port": ports.turn_metrics,
                "to_port": ports.turn_metrics,
                "cidr_blocks": [args.vpc_cidr],
                "description": "coturn Prometheus metrics, from the VPC only",
            },
        ]
        if args.nlb_security_group_id is not None:
            ingress.append(
                {
                    "protocol": "tcp",
                    "from_port": port,
                    "to_port": port,
                    "security_groups": [args.nlb_security_group_id],
                    "description": "TURNS terminated on the NLB, forwarded to TCP listening port",
                }
            )
        egress = [
            # Relaying: to any peer port (coturn itself refuses the VPC and special ranges).
            {"protocol": "udp", "from_port": 0, "to_port": 65535, "cidr_blocks": ["0.0.0.0/0"], "description": "relayed media to peers"},
            # AWS APIs (Secrets Manager, SSM, CloudWatch Logs), the OS repos and the image registry.
            {
                "protocol": "tcp",
                "from_port": 443,
                "to_port": 443,
                "cidr_blocks": ["0.0.0.0/0"],
                "description": "HTTPS to AWS APIs and registries",
            },
        ]
        return aws.ec2.SecurityGroup(
            f"{stage}-turn-sg",
            name=f"{stage}-turn",
            vpc_id=args.vpc_id,
            description="coturn TURN nodes",
            ingress=ingress,
            egress=egress,
            tags={"Name": f"{stage}-turn"},
            opts=pulumi.ResourceOptions(parent=self),
        )

    def _alarms(self, node: str, instance: aws.ec2.Instance, args: TurnArgs, bytes_per_minute: float) -> None:
        cfg, topic = args.config, args.ctx.alarm_topic_arn
        opts = pulumi.ResourceOptions(parent=instance)
        ec2 = {"namespace": "AWS/EC2", "dimensions": {"InstanceId": instance.id}, "period": 60}
        pct = cfg.bandwidth_alarm_percent
        # Seed 000, incident 2: bandwidth over 80% of a node -> add capacity (raise nodeCount).
        metric_alarm(
            f"{node}-network-out",
            f"{node} sends more than {pct}% of {cfg.node_bandwidth_mbps} Mbps: raise voip-infra:turn.nodeCount and `pulumi up`",
            topic,
            opts,
            name=f"{node}-network-out-{pct}pct",
            metric_name="NetworkOut",
            statistic="Sum",
            evaluation_periods=5,
            datapoints_to_alarm=3,
            threshold=round(bytes_per_minute * pct / 100),
            comparison_operator="GreaterThanThreshold",
            treat_missing_data="notBreaching",
            **ec2,
        )
        # Status checks: EC2 repairs the node itself and tells the topic. A host failure
        # (system check) recovers the node onto new hardware, same EIP and private IP; a
        # hung OS (instance check) reboots it.
        for check, metric, action, periods in (
            ("system", "StatusCheckFailed_System", "recover", 2),
            ("instance", "StatusCheckFailed_Instance", "reboot", 3),
        ):
            metric_alarm(
                f"{node}-{check}-check",
                f"{node} failed the {check} status check: EC2 {action}s it",
                topic,
                opts,
                name=f"{node}-{check}-check-{action}",
                actions=[f"arn:aws:automate:{args.ctx.region}:ec2:{action}"],
                metric_name=metric,
                statistic="Maximum",
                evaluation_periods=periods,
                threshold=1,
                comparison_operator="GreaterThanOrEqualToThreshold",
                **ec2,
            )

    def _dns(self, node: str, eip: aws.ec2.Eip, args: TurnArgs) -> None:
        """turn.<domain>: a multivalue answer per node, withdrawn when its TCP listener stops answering."""
        port = args.ctx.ports.turn_listening
        check = aws.route53.HealthCheck(
            f"{node}-health",
            type="TCP",
            ip_address=eip.public_ip,
            port=port,
            request_interval=30,
            failure_threshold=3,
            tags={"Name": f"{node}-turn-{port}"},
            # Not protected like the EIP it hangs under: DNS and checks are cheap to replace.
            opts=pulumi.ResourceOptions(parent=eip, protect=False),
        )
        aws.route53.Record(
            f"{node}-dns",
            zone_id=args.zone_id,
            name=f"turn.{args.domain}",
            type="A",
            ttl=60,
            records=[eip.public_ip],
            set_identifier=node,
            multivalue_answer_routing_policy=True,
            health_check_id=check.id,
            opts=pulumi.ResourceOptions(parent=eip, protect=False),
        )

    def _uris(self, args: TurnArgs) -> pulumi.Output[list[str]]:
        """ICE server URLs. Credentials are minted per user by the signaling server."""
        port = args.ctx.ports.turn_listening
        tls = []
        if args.nlb_target_group_arn is not None and args.domain:
            # TURNS exists only through the NLB, under a name that resolves to it.
            tls = [f"turns:{args.tls_host or 'turns.' + args.domain}:{args.ctx.ports.turn_tls}?transport=tcp"]
        if args.zone_id is not None and args.domain:
            host = f"turn.{args.domain}"
            return pulumi.Output.from_input([f"turn:{host}:{port}?transport=udp", f"turn:{host}:{port}?transport=tcp", *tls])
        # No DNS managed here: the nodes by address.
        return pulumi.Output.all(*[e.public_ip for e in self.eips]).apply(
            lambda ips: [u for ip in ips for u in (f"turn:{ip}:{port}?transport=udp", f"turn:{ip}:{port}?transport=tcp")] + tls
        )
