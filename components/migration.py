"""The NAS-to-AWS bridge of the nas-migration stage: everything needed to move today's
Synology NAS (seed 001) onto the stage, and nothing that outlives the move.

  NAS LAN <-> site-to-site VPN (two IPsec tunnels) <-> VGW <-> private + isolated route tables
  NAS PostgreSQL --(VPN, TLS)--> DMS replication instance --(TLS)--> RDS   (full load + CDC)
  NAS MinIO --(`mc mirror`, HTTPS, IAM user pinned to the NAS IP)--> the file bucket
  app.<domain>: weighted records, "nas" (A, the NAS's public IP, health-checked) and
                "aws" (alias to CloudFront), moved step by step like seed 001's canary

Built in two steps because the database and the bridge name each other: `Migration(...)`
creates the VPN, the DMS security group (the database admits it on 5432), the copy path
and the DNS; `replicate_into(...)` adds DMS once the database exists.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import quote

import pulumi
import pulumi_aws as aws

from components.cloudwatch import log_group, metric_alarm
from components.config import DnsWeights, DualRunRedis, MigrationConfig
from components.context import StageContext
from components.data.secrets import stage_secret
from components.data.storage import FILES_KEY_PREFIX
from components.iam import policy_document, service_trust

# AWS requires an ASN on a customer gateway even with static routing; 65000 is the
# documented placeholder for devices that do not speak BGP.
STATIC_PLACEHOLDER_ASN = 65000
# Tunnel crypto: IKEv2 only, AES-256 (CBC or GCM), SHA-2, DH groups >= 14 (no MODP-1024, no SHA-1).
IKE_VERSIONS = ["ikev2"]
ENCRYPTION = ["AES256", "AES256-GCM-16"]
INTEGRITY = ["SHA2-256", "SHA2-384", "SHA2-512"]
DH_GROUPS = [14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24]
# DMS needs these role names exactly (account-wide).
DMS_VPC_ROLE = "dms-vpc-role"
DMS_LOGS_ROLE = "dms-cloudwatch-logs-role"


def nas_redis_url(redis: DualRunRedis, password: str) -> str:
    """REDIS_URL of the NAS Redis for the dual run (redis:// over the VPN, rediss:// if it serves TLS)."""
    scheme = "rediss" if redis.tls else "redis"
    return f"{scheme}://:{quote(password, safe='')}@{redis.host}:{redis.port}/{redis.database}"


def table_mappings(schema: str = "public") -> str:
    """Every table of `schema`, names unchanged."""
    return json.dumps(
        {
            "rules": [
                {
                    "rule-type": "selection",
                    "rule-id": "1",
                    "rule-name": f"include-{schema}",
                    "object-locator": {"schema-name": schema, "table-name": "%"},
                    "rule-action": "include",
                }
            ]
        }
    )


def task_settings() -> str:
    """Full load into a schema created beforehand (pg_dump --schema-only: DMS copies no indexes,
    sequences or constraints), then CDC; every row validated; logs to CloudWatch."""
    components = ["SOURCE_UNLOAD", "SOURCE_CAPTURE", "TARGET_LOAD", "TARGET_APPLY", "TASK_MANAGER", "VALIDATOR_EXT"]
    return json.dumps(
        {
            "TargetMetadata": {"SupportLobs": True, "FullLobMode": False, "LimitedSizeLobMode": True, "LobMaxSize": 32},
            "FullLoadSettings": {"TargetTablePrepMode": "DO_NOTHING", "MaxFullLoadSubTasks": 8, "CommitRate": 10000},
            "Logging": {
                "EnableLogging": True,
                "LogComponents": [{"Id": c, "Severity": "LOGGER_SEVERITY_DEFAULT"} for c in components],
            },
            "ValidationSettings": {"EnableValidation": True, "ValidationMode": "ROW_LEVEL", "ThreadCount": 5, "FailureMaxCount": 10000},
        },
        sort_keys=True,
    )


@dataclass
class MigrationArgs:
    """The bridge lands in the network's private tier, writes into the file bucket and splits
    the cutover name between the NAS and the CDN."""

    ctx: StageContext
    config: MigrationConfig
    # The NAS PostgreSQL password of `config.dms.source_username` (a Pulumi secret).
    source_password: pulumi.Input[str]
    vpc_id: pulumi.Input[str]
    vpc_cidr: str
    # DMS runs here (and the Secrets Manager endpoint it needs, when the network has none).
    private_subnet_ids: Sequence[pulumi.Input[str]]
    # The NAS LAN is routed to the VGW in these (private: DMS; isolated: RDS answers).
    private_route_table_ids: Sequence[pulumi.Input[str]]
    isolated_route_table_ids: Sequence[pulumi.Input[str]]
    # The file bucket `mc mirror` writes into.
    files_bucket_arn: pulumi.Input[str]
    zone_id: pulumi.Input[str]
    # <cutoverHost>.<edge.domain>; the CDN lists it as an alias (Platform passes it there too).
    cutover_name: str
    distribution_domain_name: pulumi.Input[str]
    distribution_hosted_zone_id: pulumi.Input[str]
    # The network's interface-endpoint SG when it already has a secretsmanager endpoint;
    # None: the bridge creates its own endpoint (DMS in private subnets needs one).
    secrets_endpoint_security_group_id: pulumi.Input[str] | None = None


@dataclass
class MigrationTargetArgs:
    """The RDS side, known once the database exists."""

    security_group_id: pulumi.Input[str]
    # Secrets Manager secret {engine, host, port, dbname, username, password} under the data key.
    master_secret_arn: pulumi.Input[str]
    database_name: str


class Migration(pulumi.ComponentResource):
    """Attributes: `vpn_connection_id`, `vpn_tunnel_ips`, `vpn_customer_gateway_configuration`
    (secret), `dms_security_group_id`, `minio_mirror_secret_arn`, `cutover_name`,
    `dns_weights`; after `replicate_into`: `dms_replication_task_arn`,
    `dms_replication_instance_arn`, `source_secret_arn`."""

    def __init__(self, name: str, args: MigrationArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("voip:migration:Migration", name, None, opts)
        self.args = args
        self._vpn(args)
        self._dms_network(args)
        self._copy_path(args)
        self._dns(args)
        self.dms_replication_task_arn: pulumi.Output[str] | None = None

    # -------------------------------------------------------------------------- VPN

    def _vpn(self, args: MigrationArgs) -> None:
        stage, cfg = args.ctx.stage, args.config
        child = pulumi.ResourceOptions(parent=self)
        static = cfg.nas_bgp_asn is None
        lan = str(cfg.nas_lan_cidr)

        self.vpn_gateway = aws.ec2.VpnGateway(f"{stage}-vgw", vpc_id=args.vpc_id, tags={"Name": f"{stage}-vgw"}, opts=child)
        self.customer_gateway = aws.ec2.CustomerGateway(
            f"{stage}-nas-cgw",
            type="ipsec.1",
            ip_address=str(cfg.nas_public_ip),
            bgp_asn=str(cfg.nas_bgp_asn or STATIC_PLACEHOLDER_ASN),
            device_name=f"{stage}-nas",
            tags={"Name": f"{stage}-nas"},
            opts=child,
        )
        self.vpn_log_group = log_group(f"{stage}-vpn-logs", f"/aws/vpn/{stage}-nas", cfg.log_retention_days, args.ctx.data_key_arn, child)
        tunnel: dict = {}
        for t in ("tunnel1", "tunnel2"):
            tunnel.update(
                {
                    f"{t}_ike_versions": IKE_VERSIONS,
                    f"{t}_phase1_encryption_algorithms": ENCRYPTION,
                    f"{t}_phase2_encryption_algorithms": ENCRYPTION,
                    f"{t}_phase1_integrity_algorithms": INTEGRITY,
                    f"{t}_phase2_integrity_algorithms": INTEGRITY,
                    f"{t}_phase1_dh_group_numbers": DH_GROUPS,
                    f"{t}_phase2_dh_group_numbers": DH_GROUPS,
                    # AWS re-initiates after a dead-peer timeout instead of waiting for the NAS.
                    f"{t}_dpd_timeout_action": "restart",
                    f"{t}_log_options": {
                        "cloudwatch_log_options": {
                            "log_enabled": True,
                            "log_group_arn": self.vpn_log_group.arn,
                            "log_output_format": "json",
                        }
                    },
                }
            )
        self.vpn_connection = aws.ec2.VpnConnection(
            f"{stage}-nas-vpn",
            type="ipsec.1",
            customer_gateway_id=self.customer_gateway.id,
            vpn_gateway_id=self.vpn_gateway.id,
            static_routes_only=static,
            # Narrow traffic selectors: the NAS LAN on its side, the VPC on ours.
            local_ipv4_network_cidr=lan,
            remote_ipv4_network_cidr=args.vpc_cidr,
            tags={"Name": f"{stage}-nas"},
            **tunnel,
            # AWS generates the pre-shared keys; they and the device configuration stay secret.
            opts=pulumi.ResourceOptions(
                parent=self,
                additional_secret_outputs=["tunnel1PresharedKey", "tunnel2PresharedKey", "customerGatewayConfiguration"],
            ),
        )
        if static:
            aws.ec2.VpnConnectionRoute(
                f"{stage}-nas-lan",
                vpn_connection_id=self.vpn_connection.id,
                destination_cidr_block=lan,
                opts=pulumi.ResourceOptions(parent=self.vpn_connection),
            )
        # Static routes, not route propagation: with BGP the NAS side could advertise anything
        # (a default route would give the isolated tier a way out). Only the LAN goes to the VGW.
        tables = [("private", i, t) for i, t in enumerate(args.private_route_table_ids)]
        tables += [("isolated", i, t) for i, t in enumerate(args.isolated_route_table_ids)]
        for tier, i, table_id in tables:
            aws.ec2.Route(
                f"{stage}-{tier}-{i}-to-nas",
                route_table_id=table_id,
                destination_cidr_block=lan,
                gateway_id=self.vpn_gateway.id,
                opts=pulumi.ResourceOptions(parent=self.vpn_gateway),
            )
        for n, address in ((1, self.vpn_connection.tunnel1_address), (2, self.vpn_connection.tunnel2_address)):
            metric_alarm(
                f"{stage}-vpn-tunnel{n}-down",
                f"{stage}: VPN tunnel {n} to the NAS is down (5 minutes)",
                args.ctx.alarm_topic_arn,
                pulumi.ResourceOptions(parent=self.vpn_connection),
                namespace="AWS/VPN",
                metric_name="TunnelState",
                dimensions={"VpnId": self.vpn_connection.id, "TunnelIpAddress": address},
                statistic="Maximum",
                period=300,
                evaluation_periods=1,
                threshold=1,
                comparison_operator="LessThanThreshold",
                treat_missing_data="breaching",
            )
        self.vpn_connection_id = self.vpn_connection.id
        self.vpn_tunnel_ips = pulumi.Output.all(self.vpn_connection.tunnel1_address, self.vpn_connection.tunnel2_address)
        self.vpn_customer_gateway_configuration = pulumi.Output.secret(self.vpn_connection.customer_gateway_configuration)

    # ------------------------------------------------------------------ DMS network

    def _dms_network(self, args: MigrationArgs) -> None:
        """The replication instance's security group: no ingress; egress 5432 to the NAS host,
        5432 to RDS (added by `replicate_into`) and 443 to the Secrets Manager endpoint. Its rules
        are separate resources: the database's group names this one, this one names the
        database's, and neither may wait for the other."""
        stage, cfg = args.ctx.stage, args.config
        child = pulumi.ResourceOptions(parent=self)
        self.dms_security_group = aws.ec2.SecurityGroup(
            f"{stage}-dms-sg",
            name=f"{stage}-dms",
            description=f"{stage} DMS replication instance: no ingress; PostgreSQL to the NAS and RDS only",
            vpc_id=args.vpc_id,
            tags={"Name": f"{stage}-dms"},
            opts=child,
        )
        self._dms_egress(f"{stage}-dms-to-nas", cfg.dms.source_port, "PostgreSQL on the NAS, over the VPN", cidr_ipv4=f"{cfg.nas_host}/32")
        endpoint_sg = args.secrets_endpoint_security_group_id
        if endpoint_sg is None:
            # DMS >= 3.4.7 in a private subnet reaches Secrets Manager only through an endpoint.
            # Private DNS answers for the whole VPC: every Secrets Manager client (the TURN nodes'
            # boot script, pods) now resolves to this endpoint, so it admits the VPC, not DMS alone.
            own = aws.ec2.SecurityGroup(
                f"{stage}-dms-secrets-endpoint-sg",
                name=f"{stage}-dms-secrets-endpoint",
                description=f"{stage} Secrets Manager endpoint: HTTPS from inside the VPC",
                vpc_id=args.vpc_id,
                ingress=[
                    aws.ec2.SecurityGroupIngressArgs(
                        protocol="tcp",
                        from_port=443,
                        to_port=443,
                        cidr_blocks=[args.vpc_cidr],
                        description="HTTPS from the VPC: private DNS sends every client here",
                    )
                ],
                egress=[],
                tags={"Name": f"{stage}-dms-secrets-endpoint"},
                opts=child,
            )
            aws.ec2.VpcEndpoint(
                f"{stage}-dms-secretsmanager-endpoint",
                vpc_id=args.vpc_id,
                service_name=f"com.amazonaws.{args.ctx.region}.secretsmanager",
                vpc_endpoint_type="Interface",
                private_dns_enabled=True,
                subnet_ids=list(args.private_subnet_ids),
                security_group_ids=[own.id],
                tags={"Name": f"{stage}-dms-secretsmanager"},
                opts=child,
            )
            endpoint_sg = own.id
        self._dms_egress(
            f"{stage}-dms-to-secretsmanager",
            443,
            "Secrets Manager endpoint (endpoint credentials)",
            referenced_security_group_id=endpoint_sg,
        )
        self.dms_security_group_id = self.dms_security_group.id

    def _dms_egress(self, logical: str, port: int, description: str, **destination: pulumi.Input[str]) -> None:
        """TCP to `port` of `destination` (`cidr_ipv4=` or `referenced_security_group_id=`)."""
        aws.vpc.SecurityGroupEgressRule(
            logical,
            security_group_id=self.dms_security_group.id,
            ip_protocol="tcp",
            from_port=port,
            to_port=port,
            description=description,
            opts=pulumi.ResourceOptions(parent=self.dms_security_group),
            **destination,
        )

    # ------------------------------------------------------------------ MinIO -> S3

    def _copy_path(self, args: MigrationArgs) -> None:
        """`mc mirror` on the NAS writes into the file bucket as an IAM user that can list the
        bucket and put objects, from the NAS's public address only."""
        stage, cfg = args.ctx.stage, args.config
        source_ip = {"IpAddress": {"aws:SourceIp": [f"{cfg.nas_public_ip}/32"]}}
        self.minio_user = aws.iam.User(
            f"{stage}-minio-mirror",
            name=f"{stage}-minio-mirror",
            path="/migration/",
            opts=pulumi.ResourceOptions(parent=self),
        )
        policy = pulumi.Output.all(args.files_bucket_arn, args.ctx.data_key_arn).apply(
            lambda a: policy_document(
                [
                    {"Sid": "ListTheBucket", "Effect": "Allow", "Action": "s3:ListBucket", "Resource": a[0], "Condition": source_ip},
                    # Under the prefix CloudFront serves (`mc mirror ... aws/<bucket>/files`, docs/migration.md).
                    {
                        "Sid": "PutObjectsUnderFiles",
                        "Effect": "Allow",
                        "Action": "s3:PutObject",
                        "Resource": f"{a[0]}/{FILES_KEY_PREFIX}*",
                        "Condition": source_ip,
                    },
                    {
                        # SSE-KMS uploads; Decrypt completes multipart uploads (large files). S3 calls
                        # KMS from its own addresses on the user's behalf: no aws:SourceIp here (it
                        # would never match), only "through S3, for this bucket" (Bucket Key: the
                        # context is the bucket ARN; without it, the object ARN).
                        "Sid": "EncryptWithTheDataKeyThroughS3",
                        "Effect": "Allow",
                        "Action": ["kms:GenerateDataKey", "kms:Decrypt"],
                        "Resource": a[1],
                        "Condition": {
                            "StringEquals": {"kms:ViaService": f"s3.{args.ctx.region}.amazonaws.com"},
                            "StringLike": {"kms:EncryptionContext:aws:s3:arn": [a[0], f"{a[0]}/*"]},
                        },
                    },
                ]
            )
        )
        aws.iam.UserPolicy(
            f"{stage}-minio-mirror-policy",
            name="mirror-into-files-bucket",
            user=self.minio_user.name,
            policy=policy,
            opts=pulumi.ResourceOptions(parent=self.minio_user),
        )
        key = aws.iam.AccessKey(
            f"{stage}-minio-mirror-key",
            user=self.minio_user.name,
            opts=pulumi.ResourceOptions(parent=self.minio_user, additional_secret_outputs=["secret"]),
        )
        self.minio_secret = self._secret(
            f"{stage}-minio-mirror-secret",
            "minio-mirror",
            f"{stage}: access key of {stage}-minio-mirror (mc mirror on the NAS into the file bucket)",
        )
        aws.secretsmanager.SecretVersion(
            f"{stage}-minio-mirror-secret-value",
            secret_id=self.minio_secret.id,
            secret_string=pulumi.Output.secret(
                pulumi.Output.all(key.id, key.secret).apply(
                    lambda k: json.dumps(
                        {"accessKeyId": k[0], "secretAccessKey": k[1], "endpoint": f"https://s3.{args.ctx.region}.amazonaws.com"}
                    )
                )
            ),
            # On the component, not the (protected) secret: a value may be replaced, the secret not.
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.minio_mirror_secret_arn = self.minio_secret.arn

    # -------------------------------------------------------------------- weighted DNS

    def _dns(self, args: MigrationArgs) -> None:
        stage, cfg = args.ctx.stage, args.config
        weights: DnsWeights = cfg.dns_weights
        child = pulumi.ResourceOptions(parent=self)
        self.nas_health_check = aws.route53.HealthCheck(
            f"{stage}-nas-health",
            type="HTTPS",
            ip_address=str(cfg.nas_public_ip),
            port=443,
            fqdn=args.cutover_name,  # Host header and SNI: the NAS's nginx serves this name
            enable_sni=True,
            resource_path=cfg.nas_health_check_path,
            request_interval=30,
            failure_threshold=3,
            tags={"Name": f"{stage}-nas"},
            opts=child,
        )
        # A records only: a weighted AAAA set with AWS alone would send every IPv6 client to AWS
        # whatever the weights say (the NAS has no IPv6).
        weighted = {"zone_id": args.zone_id, "name": args.cutover_name, "type": "A", "opts": child}
        self.nas_record = aws.route53.Record(
            f"{stage}-cutover-nas",
            ttl=60,  # a weight change takes effect within a minute
            records=[str(cfg.nas_public_ip)],
            set_identifier="nas",
            weighted_routing_policies=[{"weight": weights.nas}],
            # An unhealthy NAS drops out of the answers: everyone goes to AWS.
            health_check_id=self.nas_health_check.id,
            **weighted,
        )
        self.aws_record = aws.route53.Record(
            f"{stage}-cutover-aws",
            aliases=[{"name": args.distribution_domain_name, "zone_id": args.distribution_hosted_zone_id, "evaluate_target_health": False}],
            set_identifier="aws",
            weighted_routing_policies=[{"weight": weights.aws}],
            **weighted,
        )
        self.cutover_name = args.cutover_name
        self.dns_weights = {"nas": weights.nas, "aws": weights.aws}

    # ------------------------------------------------------------------------ DMS

    def _secret(self, logical: str, name: str, description: str) -> aws.secretsmanager.Secret:
        """`voip/<stage>/migration/<name>` under the data key; protected (with a recovery
        window) where the stage holds data."""
        ctx = self.args.ctx
        return stage_secret(
            logical,
            ctx=ctx,
            path=f"migration/{name}",
            description=description,
            opts=pulumi.ResourceOptions(parent=self, protect=ctx.protect),
        )

    def _endpoint(
        self, side: str, endpoint_type: str, database: str, secret_arn: pulumi.Input[str], settings: dict, opts: pulumi.ResourceOptions
    ) -> aws.dms.Endpoint:
        """The PostgreSQL endpoint on `side` (nas, rds): TLS (RDS forces it), credentials read
        from `secret_arn` with the access role."""
        stage = self.args.ctx.stage
        return aws.dms.Endpoint(
            f"{stage}-dms-{side}-{endpoint_type}",
            endpoint_id=f"{stage}-{side}-postgres",
            endpoint_type=endpoint_type,
            engine_name="postgres",
            database_name=database,
            ssl_mode="require",
            kms_key_arn=self.args.ctx.data_key_arn,
            secrets_manager_arn=secret_arn,
            secrets_manager_access_role_arn=self.access_role.arn,
            postgres_settings=settings,
            opts=opts,
        )

    def replicate_into(self, target: MigrationTargetArgs) -> None:
        """DMS from the NAS PostgreSQL into the stage's RDS (call once the database exists)."""
        args = self.args
        stage, cfg = args.ctx.stage, args.config
        dms = cfg.dms
        child = pulumi.ResourceOptions(parent=self)

        self._dms_egress(
            f"{stage}-dms-to-rds",
            args.ctx.ports.postgres,
            "PostgreSQL on the RDS instance of the stage",
            referenced_security_group_id=target.security_group_id,
        )

        service_deps: list[pulumi.Resource] = []
        if dms.create_service_roles:
            for role_name, policy in (
                (DMS_VPC_ROLE, "AmazonDMSVPCManagementRole"),
                (DMS_LOGS_ROLE, "AmazonDMSCloudWatchLogsRole"),
            ):
                role = aws.iam.Role(
                    f"{stage}-{role_name}",
                    name=role_name,
                    description="Account-wide role AWS DMS requires by this exact name",
                    assume_role_policy=service_trust("dms.amazonaws.com"),
                    opts=child,
                )
                service_deps.append(
                    aws.iam.RolePolicyAttachment(
                        f"{stage}-{role_name}-policy",
                        role=role.name,
                        policy_arn=f"arn:aws:iam::aws:policy/service-role/{policy}",
                        opts=pulumi.ResourceOptions(parent=role),
                    )
                )

        # The NAS read user's credentials, in the JSON shape DMS reads from an endpoint secret.
        self.source_secret = self._secret(
            f"{stage}-dms-source-secret",
            "nas-postgres",
            f"{stage}: NAS PostgreSQL credentials of {dms.source_username} (DMS source endpoint)",
        )
        self.source_secret_arn = self.source_secret.arn
        source_json = pulumi.Output.secret(args.source_password).apply(
            lambda pw: json.dumps(
                {
                    "username": dms.source_username,
                    "password": pw,
                    "host": str(cfg.nas_host),
                    "port": dms.source_port,
                    "dbname": dms.source_database,
                }
            )
        )
        aws.secretsmanager.SecretVersion(
            f"{stage}-dms-source-secret-value",
            secret_id=self.source_secret.id,
            # Write-only: the provider never reads it back into state (the input stays a Pulumi secret).
            secret_string_wo=pulumi.Output.secret(source_json),
            secret_string_wo_version=dms.source_secret_version,
            opts=pulumi.ResourceOptions(parent=self),
        )

        self.access_role = aws.iam.Role(
            f"{stage}-dms-secrets-access",
            name=f"{stage}-dms-secrets-access",
            description="DMS reads the two endpoint secrets (NAS source, RDS target)",
            # Secrets access roles must trust the regional DMS principal.
            assume_role_policy=service_trust(f"dms.{args.ctx.region}.amazonaws.com", args.ctx.account_id),
            opts=child,
        )
        access_policy = aws.iam.RolePolicy(
            f"{stage}-dms-secrets-access-policy",
            name="read-endpoint-secrets",
            role=self.access_role.name,
            policy=pulumi.Output.all(self.source_secret.arn, target.master_secret_arn, args.ctx.data_key_arn).apply(
                lambda a: policy_document(
                    [
                        {
                            "Sid": "ReadEndpointSecrets",
                            "Effect": "Allow",
                            "Action": "secretsmanager:GetSecretValue",
                            "Resource": [a[0], a[1]],
                        },
                        {
                            "Sid": "DecryptThem",
                            "Effect": "Allow",
                            "Action": "kms:Decrypt",
                            "Resource": a[2],
                            "Condition": {"StringEquals": {"kms:ViaService": f"secretsmanager.{args.ctx.region}.amazonaws.com"}},
                        },
                    ]
                )
            ),
            opts=pulumi.ResourceOptions(parent=self.access_role),
        )

        self.subnet_group = aws.dms.ReplicationSubnetGroup(
            f"{stage}-dms-subnets",
            replication_subnet_group_id=f"{stage}-dms",
            replication_subnet_group_description=f"{stage} DMS: private subnets (NAS over the VPN, RDS)",
            subnet_ids=list(args.private_subnet_ids),
            opts=pulumi.ResourceOptions(parent=self, depends_on=service_deps),
        )
        instance_id = f"{stage}-dms"
        # DMS writes task logs to this group; made first, with our retention and key.
        task_logs = log_group(f"{stage}-dms-task-logs", f"dms-tasks-{instance_id}", cfg.log_retention_days, args.ctx.data_key_arn, child)
        self.replication_instance = aws.dms.ReplicationInstance(
            instance_id,
            replication_instance_id=instance_id,
            # The version DMS creates today (config checks it against the DMS calendar). With
            # automatic upgrades on, DMS moves deprecated engines itself in the maintenance
            # window (it does not tell minor from major then): engineVersion drift after such
            # an upgrade is ignored below, never "fixed" back (DMS cannot downgrade).
            engine_version=dms.engine_version,
            auto_minor_version_upgrade=True,
            allow_major_version_upgrade=True,
            replication_instance_class=dms.instance_class,
            allocated_storage=dms.allocated_storage_gib,
            # Default: Multi-AZ where the stage holds data; `dms.multiAz: false` saves the standby
            # (ModifyReplicationInstance changes it in place).
            multi_az=args.ctx.protect if dms.multi_az is None else dms.multi_az,
            publicly_accessible=False,
            kms_key_arn=args.ctx.data_key_arn,
            replication_subnet_group_id=self.subnet_group.replication_subnet_group_id,
            vpc_security_group_ids=[self.dms_security_group.id],
            tags={"Name": instance_id},
            # Not data (it only carries changes): no protect, replaceable.
            opts=pulumi.ResourceOptions(parent=self, depends_on=[*service_deps, task_logs], ignore_changes=["engineVersion"]),
        )
        self.dms_replication_instance_arn = self.replication_instance.replication_instance_arn

        readable = pulumi.ResourceOptions(parent=self, depends_on=[access_policy])
        self.source_endpoint = self._endpoint(
            "nas",
            "source",
            dms.source_database,
            self.source_secret.arn,
            # A read user cannot create DMS's DDL-capture artifacts on the NAS: schema changes
            # during the migration are applied to RDS by hand (docs/migration.md).
            {"capture_ddls": False},
            readable,
        )
        self.target_endpoint = self._endpoint(
            "rds",
            "target",
            target.database_name,
            target.master_secret_arn,
            # DMS loads tables in parallel and applies changes out of FK order: its own session
            # skips triggers and FK checks, so the schema can be created complete beforehand.
            {"after_connect_script": "SET session_replication_role = replica"},
            readable,
        )
        self.replication_task = aws.dms.ReplicationTask(
            f"{stage}-dms-task",
            replication_task_id=f"{stage}-nas-to-rds",
            migration_type="full-load-and-cdc",
            replication_instance_arn=self.replication_instance.replication_instance_arn,
            source_endpoint_arn=self.source_endpoint.endpoint_arn,
            target_endpoint_arn=self.target_endpoint.endpoint_arn,
            table_mappings=table_mappings(),
            replication_task_settings=task_settings(),
            # The operator starts it once the NAS side is ready (docs/migration.md).
            start_replication_task=False,
            opts=child,
        )
        self.dms_replication_task_arn = self.replication_task.replication_task_arn
        for source_type, ids, categories in (
            ("replication-instance", [self.replication_instance.replication_instance_id], ["failure", "failover", "low storage"]),
            ("replication-task", [self.replication_task.replication_task_id], ["failure", "state change"]),
        ):
            aws.dms.EventSubscription(
                f"{stage}-dms-{source_type}-events",
                name=f"{stage}-dms-{source_type}",
                sns_topic_arn=args.ctx.alarm_topic_arn,
                source_type=source_type,
                source_ids=ids,
                event_categories=categories,
                enabled=True,
                opts=child,
            )

        self.register_outputs(
            {
                "vpnConnectionId": self.vpn_connection_id,
                "vpnTunnelIps": self.vpn_tunnel_ips,
                "dmsSecurityGroupId": self.dms_security_group_id,
                "dmsReplicationTaskArn": self.dms_replication_task_arn,
                "minioMirrorSecretArn": self.minio_mirror_secret_arn,
                "cutoverName": self.cutover_name,
                "dnsWeights": self.dns_weights,
            }
        )
