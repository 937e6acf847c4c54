"""The stage's load balancers: ONE ALB (host rules, CloudFront only: internal behind a CloudFront
VPC origin, or internet-facing behind a custom origin, `edge.albScheme`) and,
where a listener needs it, an NLB for long-lived WebSocket signaling and TURN over TLS, with
their security groups, target groups (bound to pods/instances by the cluster and TURN tiers)
and access logs.

Traffic paths:
  viewer -> CloudFront (+WAF) -> ALB :443 (origin-facing prefix list + secret header)
            internal: through the VPC origin's ENIs in the isolated subnets; else over the internet
         -> ip target group per host (EKS pods through TargetGroupBinding)
  client -> NLB :443 TLS (wildcard cert)  -> signaling pods :8080 (ip targets)    [signalingEntry nlb]
  client -> CloudFront /ws* -> ALB rule ws.<domain> -> signaling pods :8080       [signalingEntry cdn]
  client -> NLB :5349 TLS (wildcard cert) -> TURN nodes :3478 TCP (instance targets) [turn.tlsEntry nlb]
With neither listener on it (dev) there is no NLB, no NLB security group, no Elastic IPs.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws
import pulumi_random as random

from components.config import CDN_ALB_PATHS, SIGNALING_RULE_PRIORITY, EdgeConfig
from components.context import StageContext
from components.data.secrets import stage_secret
from components.edge.edge_buckets import EdgeBucket, EdgeBucketArgs

CLOUDFRONT_ORIGIN_FACING = "com.amazonaws.global.cloudfront.origin-facing"
ORIGIN_HEADER = "X-Origin-Verify"
# TLS 1.3 + TLS 1.2 with forward-secret AEAD ciphers only (ELB's "restricted" modern policy).
TLS_POLICY = "ELBSecurityPolicy-TLS13-1-2-Res-2021-06"
# Seed 001: 30 s graceful shutdown; targets drain for as long as pods take to stop.
DEREGISTRATION_DELAY = 30
# Regions launched before August 2022 deliver ALB access logs from a per-region ELB account;
# newer ones from the log-delivery service principal.
ELB_LOG_ACCOUNTS = {
    "us-east-1": "127311923021",
    "us-east-2": "033677994240",
    "us-west-1": "027434742980",
    "us-west-2": "797873946194",
    "af-south-1": "098369216593",
    "ap-east-1": "754344448648",
    "ap-southeast-3": "589379963580",
    "ap-south-1": "718504428378",
    "ap-northeast-3": "383597477331",
    "ap-northeast-2": "600734575887",
    "ap-southeast-1": "114774131450",
    "ap-southeast-2": "783225319266",
    "ap-northeast-1": "582318560864",
    "ca-central-1": "985666609251",
    "eu-central-1": "054676820928",
    "eu-west-1": "156460612806",
    "eu-west-2": "652711504416",
    "eu-south-1": "635631232127",
    "eu-west-3": "009996457667",
    "eu-north-1": "897822967062",
    "me-south-1": "076674570225",
    "sa-east-1": "507241528517",
}


@dataclass
class EdgeArgs:
    ctx: StageContext
    config: EdgeConfig
    zone_id: pulumi.Input[str]
    vpc_id: pulumi.Input[str]
    vpc_cidr: str
    azs: Sequence[str]
    # One public subnet per AZ, in the order of `azs`.
    public_subnet_ids: Sequence[pulumi.Input[str]]
    # One isolated subnet per AZ (no route off the VPC): an internal ALB's. Not the nodes'
    # private subnets: the pods' NetworkPolicy admits the ALB's subnets on the app ports, and
    # there that would admit every pod; the isolated tier holds only endpoints that never call a pod.
    internal_subnet_ids: Sequence[pulumi.Input[str]]
    # The regional wildcard certificate (validated) for the ALB and NLB listeners.
    certificate_arn: pulumi.Input[str]
    # More full names the apex host's rule answers (the migration's cutover name, served like the apex).
    apex_aliases: Sequence[str] = ()
    signaling_health_path: str = "/ready"
    # The NLB's listeners (StackConfig.nlb_listeners: "signaling", "turns"); empty: no NLB.
    nlb_listeners: Sequence[str] = ("signaling", "turns")

    @property
    def nlb_ingress_cidrs(self) -> list[str]:
        """Who may open connections to the NLB (signaling and TURNS): stages behind an
        allow-list keep the NLB to the same ranges (its IPv4 ones: the NLB is IPv4-only). The
        ALB is CloudFront-only."""
        return self.config.allow_list_v4 if self.config.restrict_to_allow_list else ["0.0.0.0/0"]


# Old versions of log objects (overwritten or expired) are kept this long, then removed.
LOG_NONCURRENT_DAYS = 30
# S3 server access logs of the stage's other buckets land in the load-balancer log bucket
# under this prefix (server access logging only delivers to SSE-S3 buckets of the region).
ACCESS_LOG_PREFIX = "s3-access/"


# ELB names (load balancers, target groups) take at most 32 characters.
ELB_NAME_MAX = 32


def target_group_name(stage: str, label: str, vpc_id: pulumi.Input[str], *replace_keys: object) -> pulumi.Output[str]:
    """An explicit target group name that always fits ELB's 32 characters.

    Pulumi's autoname (`<logical name>-<7 random>`, max 32) fails the whole preview once the
    logical name passes 24 characters: `nas-migration-signaling-tg`, or any 20-character stage
    name. The stem is cut to fit; the suffix hashes what forces a replacement (the VPC, port,
    protocol, target type), so a replacement gets a new name and can still be created before
    the old group, in use by a listener, is deleted (what the random autoname suffix gave).
    """
    return pulumi.Output.from_input(vpc_id).apply(lambda vpc: elb_name(stage, label, vpc, *replace_keys))


def alb_group_keys(config: EdgeConfig) -> tuple[str, ...]:
    """The ALB target groups' extra replace keys. A target group serves one load balancer: a
    scheme change (a new ALB, created before the old one is deleted) needs new groups, so the
    scheme joins their names. Internet-facing adds nothing: today's names (and groups) stay."""
    return ("internal",) if config.alb_internal else ()


def elb_name(stage: str, label: str, *replace_keys: object) -> str:
    """`<stage>-<label>` cut to 24 characters, `-`, 7 hex of a hash of everything given."""
    digest = hashlib.sha256("|".join(map(str, (stage, label, *replace_keys))).encode()).hexdigest()[:7]
    stem = f"{stage}-{label}"[: ELB_NAME_MAX - 8].rstrip("-")
    return f"{stem}-{digest}"


def _egress_to_targets(ports, vpc_cidr: str) -> list[dict]:
    """A load balancer talks only to its targets (and their health checks) inside the VPC."""
    return [
        {
            "protocol": "tcp",
            "from_port": port,
            "to_port": port,
            "cidr_blocks": [vpc_cidr],
            "description": f"targets and health checks on {port}",
        }
        for port in ports
    ]


class Edge(pulumi.ComponentResource):
    """ALB + NLB. Attributes the other tiers bind to:

    `alb_target_group_arns` (host name -> TG ARN), `alb_signaling_target_group_arn`,
    `nlb_signaling_target_group_arn`, `nlb_turn_target_group_arn`, `alb_security_group_id`,
    `nlb_security_group_id`, `alb_arn`, `alb_dns_name`, `nlb_arn`, `nlb_dns_name`, `nlb_static_ips`,
    `alb_arn_suffix`, `nlb_arn_suffix`, `alb_target_group_arn_suffixes` (host name -> suffix),
    `nlb_target_group_arn_suffixes` ("signaling"/"turn" -> suffix) for CloudWatch dimensions,
    `alb_vpc_origin_id`, `alb_vpc_origin_arn` (the CloudFront VPC origin of an internal ALB; None
    for an internet-facing one),
    `origin_header_name`, `origin_secret_value` (secret), `origin_secret_arn`,
    `signaling_url`, `turns_url`, `turns_host`. Whatever belongs to an absent NLB or listener is
    None (`nlb_static_ips` [], `nlb_target_group_arn_suffixes` {}).
    """

    def __init__(self, name: str, args: EdgeArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("voip:edge:Edge", name, None, opts)
        self.args = args
        stage = args.ctx.stage
        child = pulumi.ResourceOptions(parent=self)

        self._origin_secret(stage, args)
        self.log_bucket = self._log_bucket(stage, args)
        self.access_log_bucket_name = self.log_bucket.name
        self._alb(stage, args, child)
        self._nlb(stage, args, child)

        outputs = {
            "albArn": self.alb.arn,
            "albDnsName": self.alb.dns_name,
            "albSecurityGroupId": self.alb_security_group_id,
            "albTargetGroupArns": self.alb_target_group_arns,
            "albArnSuffix": self.alb_arn_suffix,
            "albScheme": args.config.alb_scheme,
            "vpcOriginId": self.alb_vpc_origin_id,
            "vpcOriginArn": self.alb_vpc_origin_arn,
            "albTargetGroupArnSuffixes": self.alb_target_group_arn_suffixes,
            "nlbArn": self.nlb_arn,
            "nlbArnSuffix": self.nlb_arn_suffix,
            "nlbTargetGroupArnSuffixes": self.nlb_target_group_arn_suffixes or None,
            "nlbDnsName": self.nlb_dns_name,
            "nlbSecurityGroupId": self.nlb_security_group_id,
            "nlbSignalingTargetGroupArn": self.nlb_signaling_target_group_arn,
            "nlbTurnTargetGroupArn": self.nlb_turn_target_group_arn,
            "originSecretArn": self.origin_secret_arn,
            "signalingUrl": self.signaling_url,
            "turnsUrl": self.turns_url,
        }
        self.register_outputs({k: v for k, v in outputs.items() if v is not None})

    # ------------------------------------------------------------------ origin secret

    def _origin_secret(self, stage: str, args: EdgeArgs) -> None:
        # CloudFront adds this header to every origin request; the ALB forwards only requests
        # that carry it, so the ALB cannot be used bypassing CloudFront and its WAF.
        password = random.RandomPassword(
            f"{stage}-origin-secret",
            length=48,
            special=False,  # header-safe characters
            opts=pulumi.ResourceOptions(parent=self, additional_secret_outputs=["result"]),
        )
        self.origin_header_name = ORIGIN_HEADER
        self.origin_secret_value: pulumi.Output[str] = pulumi.Output.secret(password.result)
        # Unprotected stages (dev, clones) delete it at once (stage_secret): a clone re-created
        # under the same name finds the name free.
        what = f"{stage}: value of the {ORIGIN_HEADER} header CloudFront sends to the ALB"
        secret = stage_secret(
            f"{stage}-origin-secret", ctx=args.ctx, path="edge/origin-verify", description=what, opts=pulumi.ResourceOptions(parent=self)
        )
        aws.secretsmanager.SecretVersion(
            f"{stage}-origin-secret-value",
            secret_id=secret.id,
            secret_string=self.origin_secret_value,
            opts=pulumi.ResourceOptions(parent=secret),
        )
        self.origin_secret_arn = secret.arn

    # ------------------------------------------------------------------- log bucket

    def _log_bucket(self, stage: str, args: EdgeArgs) -> EdgeBucket:
        elb_account = ELB_LOG_ACCOUNTS.get(args.ctx.region)

        def statements(arn: str, account: str) -> list[dict]:
            alb_writer = (
                {"AWS": f"arn:aws:iam::{elb_account}:root"}
                if elb_account
                else {"Service": "logdelivery.elasticloadbalancing.amazonaws.com"}
            )
            return [
                {
                    "Sid": "AlbAccessLogs",
                    "Effect": "Allow",
                    "Principal": alb_writer,
                    "Action": "s3:PutObject",
                    "Resource": f"{arn}/alb/AWSLogs/{account}/*",
                },
                # NLB (TLS listener) access logs come through the log-delivery service.
                *nlb_statements(arn, account),
                # S3 server access logs of this account's buckets (files, web).
                {
                    "Sid": "S3ServerAccessLogs",
                    "Effect": "Allow",
                    "Principal": {"Service": "logging.s3.amazonaws.com"},
                    "Action": "s3:PutObject",
                    "Resource": f"{arn}/{ACCESS_LOG_PREFIX}*",
                    "Condition": {"StringEquals": {"aws:SourceAccount": account}},
                },
            ]

        def nlb_statements(arn: str, account: str) -> list[dict]:
            if not args.nlb_listeners:
                return []
            return [
                {
                    "Sid": "NlbAccessLogsWrite",
                    "Effect": "Allow",
                    "Principal": {"Service": "delivery.logs.amazonaws.com"},
                    "Action": "s3:PutObject",
                    "Resource": f"{arn}/nlb/AWSLogs/{account}/*",
                    "Condition": {
                        "StringEquals": {"s3:x-amz-acl": "bucket-owner-full-control", "aws:SourceAccount": account},
                    },
                },
                {
                    "Sid": "NlbAccessLogsAcl",
                    "Effect": "Allow",
                    "Principal": {"Service": "delivery.logs.amazonaws.com"},
                    "Action": "s3:GetBucketAcl",
                    "Resource": arn,
                    "Condition": {"StringEquals": {"aws:SourceAccount": account}},
                },
            ]

        return EdgeBucket(
            f"{stage}-lb-logs",
            EdgeBucketArgs(
                bucket_name=pulumi.Output.from_input(args.ctx.account_id).apply(lambda a: f"{stage}-voip-lb-logs-{a}"),
                expire_days=args.config.log_retention_days,
                versioned=True,
                noncurrent_days=LOG_NONCURRENT_DAYS,
                force_destroy=not args.ctx.protect,
                protect=args.ctx.protect,
                statements=statements,
                statement_inputs=[args.ctx.account_id],
            ),
            parent=self,
        )

    # -------------------------------------------------------------------------- ALB

    def _alb(self, stage: str, args: EdgeArgs, child: pulumi.ResourceOptions) -> None:
        prefix_list = aws.ec2.get_managed_prefix_list_output(name=CLOUDFRONT_ORIGIN_FACING, opts=pulumi.InvokeOutputOptions(parent=self))
        signaling_on_alb = args.config.signaling_entry == "cdn"
        signaling_ports = {args.ctx.ports.signaling_http, args.ctx.ports.signaling_metrics} if signaling_on_alb else set()
        target_ports = sorted(
            {h.port for h in args.config.alb_hosts}
            | {h.health_check_port for h in args.config.alb_hosts if h.health_check_port}
            | signaling_ports
        )
        # The same single rule for both schemes: CloudFront's VPC origin guide lets an origin's
        # group admit the origin-facing prefix list ("Option 1", usable before the VPC origin
        # exists; the service-managed CloudFront-VPCOrigins-Service-SG only appears after it),
        # https://docs.aws.amazon.com/AmazonCloudFront/latest/DeveloperGuide/private-content-vpc-origins.html
        self.alb_security_group = aws.ec2.SecurityGroup(
            f"{stage}-alb-sg",
            vpc_id=args.vpc_id,
            description=f"{stage} ALB: CloudFront origin-facing ranges only",
            ingress=[
                {
                    # ONE rule: the prefix list weighs its max entries (55) against the 60-rule
                    # quota, so 80 and 443 share a range (only those two ports have listeners).
                    "protocol": "tcp",
                    "from_port": 80,
                    "to_port": 443,
                    "prefix_list_ids": [prefix_list.id],
                    "description": "CloudFront origin-facing (HTTP redirect, HTTPS)",
                }
            ],
            egress=_egress_to_targets(target_ports, args.vpc_cidr),
            tags={"Name": f"{stage}-alb"},
            opts=child,
        )
        self.alb_security_group_id = self.alb_security_group.id

        internal = args.config.alb_internal
        self.alb = aws.lb.LoadBalancer(
            f"{stage}-alb",
            load_balancer_type="application",
            # Internal: no public address, in the isolated subnets; CloudFront's VPC origin
            # is the only way in. Changing the scheme replaces the ALB (docs/edge.md migration).
            internal=internal,
            subnets=list(args.internal_subnet_ids if internal else args.public_subnet_ids),
            security_groups=[self.alb_security_group.id],
            drop_invalid_header_fields=True,
            enable_deletion_protection=args.config.alb_deletion_protection,
            # WebSocket (/ws*) through CloudFront: keep idle upgraded connections for 10 min.
            idle_timeout=600,
            enable_http2=True,
            access_logs={"bucket": self.log_bucket.name, "prefix": "alb", "enabled": True},
            tags={"Name": f"{stage}-alb"},
            # ELB checks that it may write the access logs when they are enabled.
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self.log_bucket.policy]),
        )
        alb_child = pulumi.ResourceOptions(parent=self.alb)

        self.alb_target_groups: dict[str, aws.lb.TargetGroup] = {}
        for host in args.config.alb_hosts:
            health_port = str(host.health_check_port) if host.health_check_port else "traffic-port"
            self.alb_target_groups[host.name] = self._ip_target_group(
                stage,
                args,
                host.name,
                "HTTP",
                host.port,
                (host.health_check_path, health_port),
                interval=15,
                unhealthy=3,
                parent=self.alb,
                replace_keys=alb_group_keys(args.config),
            )
        self.alb_target_group_arns: dict[str, pulumi.Output[str]] = {n: tg.arn for n, tg in self.alb_target_groups.items()}
        # CloudWatch dimensions (TargetGroup, LoadBalancer) take the ARN suffixes.
        self.alb_target_group_arn_suffixes: dict[str, pulumi.Output[str]] = {n: tg.arn_suffix for n, tg in self.alb_target_groups.items()}

        self.https_listener = aws.lb.Listener(
            f"{stage}-alb-https",
            load_balancer_arn=self.alb.arn,
            port=443,
            protocol="HTTPS",
            ssl_policy=TLS_POLICY,
            certificate_arn=args.certificate_arn,
            # Nothing passes without a host rule match AND the origin secret.
            default_actions=[
                {
                    "type": "fixed-response",
                    "fixed_response": {"content_type": "text/plain", "message_body": "Forbidden", "status_code": "403"},
                }
            ],
            opts=alb_child,
        )
        aws.lb.Listener(
            f"{stage}-alb-http",
            load_balancer_arn=self.alb.arn,
            port=80,
            protocol="HTTP",
            default_actions=[{"type": "redirect", "redirect": {"protocol": "HTTPS", "port": "443", "status_code": "HTTP_301"}}],
            opts=alb_child,
        )
        self.alb_rules: list[aws.lb.ListenerRule] = []
        for host in args.config.alb_hosts:
            hosts = [f"{host.name}.{args.config.domain}"] + ([args.config.domain, *args.apex_aliases] if host.apex else [])
            rule = aws.lb.ListenerRule(
                f"{stage}-{host.name}-rule",
                listener_arn=self.https_listener.arn,
                priority=host.priority,
                conditions=[
                    {"host_header": {"values": hosts}},
                    {"path_pattern": {"values": list(host.paths)}},
                    {"http_header": {"http_header_name": ORIGIN_HEADER, "values": [self.origin_secret_value]}},
                ],
                actions=[{"type": "forward", "target_group_arn": self.alb_target_groups[host.name].arn}],
                opts=pulumi.ResourceOptions(parent=self.https_listener),
            )
            self.alb_rules.append(rule)
        self.alb_signaling_target_group_arn = self._alb_signaling(stage, args) if signaling_on_alb else None
        self.alb_arn = self.alb.arn
        self.alb_arn_suffix = self.alb.arn_suffix
        self.alb_dns_name = self.alb.dns_name
        self.alb_vpc_origin = self._vpc_origin(stage) if internal else None
        self.alb_vpc_origin_id = self.alb_vpc_origin.id if self.alb_vpc_origin else None
        self.alb_vpc_origin_arn = self.alb_vpc_origin.arn if self.alb_vpc_origin else None

    def _vpc_origin(self, stage: str) -> aws.cloudfront.VpcOrigin:
        """How CloudFront reaches the internal ALB: service-managed ENIs in its subnets (the VPC
        has an internet gateway attached, as VPC origins require; no route through it is used).
        HTTPS only, TLS 1.2, like the custom origin it replaces: CloudFront checks the ALB's
        wildcard certificate against the forwarded viewer Host. Created once the listeners and
        rules exist, so CloudFront never switches to an ALB that answers nothing but 403s."""
        return aws.cloudfront.VpcOrigin(
            f"{stage}-alb-origin",
            vpc_origin_endpoint_config={
                "name": f"{stage}-alb",
                "arn": self.alb.arn,
                "http_port": 80,
                "https_port": 443,
                "origin_protocol_policy": "https-only",
                "origin_ssl_protocols": {"items": ["TLSv1.2"], "quantity": 1},
            },
            # AWS: "Deployed" takes up to 15 minutes (the provider's default wait); replacing a
            # live stage's ALB must not fail on a slow deployment.
            timeouts={"create": "30m", "update": "30m", "delete": "30m"},
            tags={"Name": f"{stage}-alb"},
            opts=pulumi.ResourceOptions(parent=self.alb, depends_on=[self.https_listener, *self.alb_rules]),
        )

    def _alb_signaling(self, stage: str, args: EdgeArgs) -> pulumi.Output[str]:
        """wss://ws.<domain>/ws through CloudFront (+WAF, /ws* behaviour, Host forwarded): the
        host rule ws.<domain> -> an ip target group the signaling release binds its pods to.
        Idle upgraded connections: ALB 600 s, CloudFront 10 min (docs/edge.md)."""
        group = self._signaling_target_group(stage, args, "ws", "HTTP", parent=self.alb, replace_keys=alb_group_keys(args.config))
        ws_paths = [p for p in CDN_ALB_PATHS if p.startswith("/ws")]
        rule = aws.lb.ListenerRule(
            f"{stage}-ws-rule",
            listener_arn=self.https_listener.arn,
            priority=SIGNALING_RULE_PRIORITY,
            conditions=[
                {"host_header": {"values": [f"ws.{args.config.domain}"]}},
                {"path_pattern": {"values": ws_paths}},
                {"http_header": {"http_header_name": ORIGIN_HEADER, "values": [self.origin_secret_value]}},
            ],
            actions=[{"type": "forward", "target_group_arn": group.arn}],
            opts=pulumi.ResourceOptions(parent=self.https_listener),
        )
        self.alb_rules.append(rule)
        # The unhealthy-targets alarm (EdgeAlarms) under the host it serves.
        self.alb_target_group_arn_suffixes["ws"] = group.arn_suffix
        return group.arn

    def _signaling_target_group(
        self, stage: str, args: EdgeArgs, label: str, protocol: str, parent: pulumi.Resource, replace_keys: Sequence[object] = ()
    ) -> aws.lb.TargetGroup:
        """The signaling pods on either load balancer: TCP behind the NLB's TLS listener,
        HTTP/1.1 (WebSocket upgrades) behind the ALB. The readiness endpoint proves the WebSocket
        path works (seed 000 postmortem), not just that the process is up."""
        health = (args.signaling_health_path, str(args.ctx.ports.signaling_metrics))
        return self._ip_target_group(
            stage,
            args,
            label,
            protocol,
            args.ctx.ports.signaling_http,
            health,
            interval=10,
            unhealthy=2,
            parent=parent,
            replace_keys=replace_keys,
        )

    def _ip_target_group(
        self,
        stage: str,
        args: EdgeArgs,
        label: str,
        protocol: str,
        port: int,
        health: tuple[str, str],
        *,
        interval: int,
        unhealthy: int,
        parent: pulumi.Resource,
        replace_keys: Sequence[object] = (),
    ) -> aws.lb.TargetGroup:
        """Pods as ip targets, bound by the load balancer controller (TargetGroupBinding);
        `health` is the HTTP check's (path, port); `replace_keys` more of what must give the
        group a new name (the ALB's scheme)."""
        http = {"protocol_version": "HTTP1"} if protocol == "HTTP" else {}
        return aws.lb.TargetGroup(
            f"{stage}-{label}-tg",
            name=target_group_name(stage, label, args.vpc_id, "ip", protocol, *http.values(), port, *replace_keys),
            target_type="ip",
            protocol=protocol,
            port=port,
            vpc_id=args.vpc_id,
            deregistration_delay=DEREGISTRATION_DELAY,
            health_check={
                "enabled": True,
                "protocol": "HTTP",
                "path": health[0],
                "port": health[1],
                "matcher": "200",
                "interval": interval,
                "timeout": 5,
                "healthy_threshold": 2,
                "unhealthy_threshold": unhealthy,
            },
            tags={"Name": f"{stage}-{label}"},
            opts=pulumi.ResourceOptions(parent=parent),
            **http,
        )

    # -------------------------------------------------------------------------- NLB

    def _nlb(self, stage: str, args: EdgeArgs, child: pulumi.ResourceOptions) -> None:
        ports, domain = args.ctx.ports, args.config.domain
        signaling, turns = "signaling" in args.nlb_listeners, "turns" in args.nlb_listeners
        self.signaling_url = f"wss://ws.{domain}" if signaling else f"wss://ws.{domain}/ws"
        # The NLB's TURNS name: TLS ends on the NLB, so TURN's `turns:` URIs must use it.
        self.turns_host = f"turns.{domain}" if turns else None
        self.turns_url = f"turns:{self.turns_host}:{ports.turn_tls}?transport=tcp" if turns else None
        self.nlb = self.nlb_security_group = self.nlb_signaling_target_group = self.nlb_turn_target_group = None
        self.nlb_security_group_id = self.nlb_signaling_target_group_arn = self.nlb_turn_target_group_arn = None
        self.nlb_arn = self.nlb_arn_suffix = self.nlb_dns_name = None
        self.nlb_eips: list[aws.ec2.Eip] = []
        self.nlb_static_ips: list[pulumi.Output[str]] = []
        self.nlb_target_group_arn_suffixes: dict[str, pulumi.Output[str]] = {}
        if not (signaling or turns):
            return  # nothing listens on an NLB: none is made (config refuses nlbStaticIps and friends)

        listeners = [(ports.signaling_public, "WebSocket signaling (TLS)")] if signaling else []
        listeners += [(ports.turn_tls, "TURN over TLS")] if turns else []
        ingress = [
            {"protocol": "tcp", "from_port": port, "to_port": port, "cidr_blocks": list(args.nlb_ingress_cidrs), "description": what}
            for port, what in listeners
        ]
        egress_ports = sorted(
            ({ports.signaling_http, ports.signaling_metrics} if signaling else set()) | ({ports.turn_listening} if turns else set())
        )
        self.nlb_security_group = aws.ec2.SecurityGroup(
            f"{stage}-nlb-sg",
            vpc_id=args.vpc_id,
            description=f"{stage} NLB: " + " and ".join(w for w, on in (("signaling WebSocket", signaling), ("TURNS", turns)) if on),
            ingress=ingress,
            egress=_egress_to_targets(egress_ports, args.vpc_cidr),
            tags={"Name": f"{stage}-nlb"},
            opts=child,
        )
        self.nlb_security_group_id = self.nlb_security_group.id

        if args.config.nlb_static_ips:
            for az in args.azs:
                self.nlb_eips.append(
                    aws.ec2.Eip(
                        f"{stage}-nlb-{az[-1]}-eip",
                        domain="vpc",
                        tags={"Name": f"{stage}-nlb-{az[-1]}"},
                        # Partners allow-list these addresses: losing one breaks them.
                        opts=pulumi.ResourceOptions(parent=self, protect=args.ctx.protect),
                    )
                )
            subnet_args: dict = {
                "subnet_mappings": [
                    {"subnet_id": subnet, "allocation_id": eip.allocation_id} for subnet, eip in zip(args.public_subnet_ids, self.nlb_eips)
                ]
            }
        else:
            subnet_args = {"subnets": list(args.public_subnet_ids)}

        self.nlb = aws.lb.LoadBalancer(
            f"{stage}-nlb",
            load_balancer_type="network",
            internal=False,
            security_groups=[self.nlb_security_group.id],  # only settable at creation
            enable_cross_zone_load_balancing=True,
            enable_deletion_protection=args.config.nlb_deletion_protection,
            access_logs={"bucket": self.log_bucket.name, "prefix": "nlb", "enabled": True},
            tags={"Name": f"{stage}-nlb"},
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self.log_bucket.policy]),
            **subnet_args,
        )
        nlb_child = pulumi.ResourceOptions(parent=self.nlb)

        routes = []
        if signaling:
            # TLS ends at the NLB; pods speak plain WebSocket on 8080.
            self.nlb_signaling_target_group = self._signaling_target_group(stage, args, "signaling", "TCP", parent=self.nlb)
            self.nlb_signaling_target_group_arn = self.nlb_signaling_target_group.arn
            self.nlb_target_group_arn_suffixes["signaling"] = self.nlb_signaling_target_group.arn_suffix
            routes.append(("signaling", ports.signaling_public, self.nlb_signaling_target_group))
        if turns:
            self.nlb_turn_target_group = aws.lb.TargetGroup(
                f"{stage}-turn-tg",
                name=target_group_name(stage, "turn", args.vpc_id, "instance", "TCP", ports.turn_listening),
                target_type="instance",  # the TURN tier attaches its nodes
                protocol="TCP",
                port=ports.turn_listening,
                vpc_id=args.vpc_id,
                deregistration_delay=DEREGISTRATION_DELAY,
                health_check={
                    "enabled": True,
                    "protocol": "TCP",
                    "port": "traffic-port",
                    "interval": 10,
                    "healthy_threshold": 2,
                    "unhealthy_threshold": 2,
                },
                tags={"Name": f"{stage}-turn"},
                opts=nlb_child,
            )
            self.nlb_turn_target_group_arn = self.nlb_turn_target_group.arn
            self.nlb_target_group_arn_suffixes["turn"] = self.nlb_turn_target_group.arn_suffix
            routes.append(("turns", ports.turn_tls, self.nlb_turn_target_group))

        # TLS listener idle timeout is fixed at 350 s (not settable, unlike TCP listeners):
        # the signaling protocol's heartbeat must stay below it.
        for label, port, target_group in routes:
            aws.lb.Listener(
                f"{stage}-nlb-{label}",
                load_balancer_arn=self.nlb.arn,
                port=port,
                protocol="TLS",
                ssl_policy=TLS_POLICY,
                certificate_arn=args.certificate_arn,
                default_actions=[{"type": "forward", "target_group_arn": target_group.arn}],
                opts=nlb_child,
            )

        # Public names of the NLB (outside CloudFront: raw TCP/TLS).
        for label, on_nlb in (("ws", signaling), ("turns", turns)):
            if on_nlb:
                aws.route53.Record(
                    f"{stage}-{label}-a",
                    zone_id=args.zone_id,
                    name=f"{label}.{domain}",
                    type="A",
                    aliases=[{"name": self.nlb.dns_name, "zone_id": self.nlb.zone_id, "evaluate_target_health": True}],
                    opts=nlb_child,
                )
        self.nlb_arn = self.nlb.arn
        self.nlb_arn_suffix = self.nlb.arn_suffix
        self.nlb_dns_name = self.nlb.dns_name
        self.nlb_static_ips = [eip.public_ip for eip in self.nlb_eips]
