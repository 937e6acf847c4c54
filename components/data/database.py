"""RDS for PostgreSQL: the primary (Multi-AZ where the stage says so) and its read
replicas, in the isolated subnets, reachable on 5432 only from named security groups.

Engine versions: `engine_version` is the MAJOR version only (e.g. "16") with
`auto_minor_version_upgrade`. AWS applies minors in the maintenance window, and because
the configured value is a prefix of the running version the provider sees no drift (no
diff, never a replacement). A major upgrade is the explicit path: raise
`database.engineVersion`; `allow_major_version_upgrade` lets RDS upgrade in place, and
the parameter group, whose family is per major, is a new resource (its name carries the
major) that the instance switches to before the old one is deleted.

The master password: RDS refuses to create a read replica of an instance whose master
password RDS manages in Secrets Manager (a documented limitation for every engine but SQL
Server), and production has replicas. So the program generates it (random, a Pulumi secret),
hands it to RDS write-only (`password_wo`: never kept in the instance's state) and keeps it in
one Secrets Manager secret per stage, encrypted with the data key, as the JSON clients and
AWS DMS read: {engine, host, port, dbname, username, password}.

Rotation: Secrets Manager rotates the secret every `masterPasswordRotationDays` with AWS's
single-user PostgreSQL rotation function (the Serverless Application Repository app
SecretsManagerRDSPostgreSQLRotationSingleUser, deployed as a CloudFormation stack): it logs
in with the current secret, ALTER USERs a new password and stages it as AWSCURRENT. That works
with a write-only master password: Pulumi never reads the password back (`password_wo` and
`secret_string_wo` are not in state), so a rotated password is no drift, and every consumer
already reads the secret (DMS, the apps). `database.masterPasswordVersion` stays the
break-glass reset: it writes a new random password to RDS and the secret in one `pulumi up`,
and rotation continues from there. The function runs in the private subnets (it must reach
the database and the Secrets Manager API: NAT, or the secretsmanager interface endpoint).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

import pulumi
import pulumi_aws as aws
import pulumi_random as random

from components.cloudwatch import log_group
from components.config import DatabaseConfig
from components.data.data_access import DataStoreArgs, DataStoreKind, Watch, data_store_network, watch_alarms
from components.data.secrets import stage_secret
from components.iam import service_trust

# The CA that new RDS certificates chain to (RSA 2048, valid to 2061).
CA_CERT = "rds-ca-rsa2048-g1"
# AWS's rotation function for a PostgreSQL secret holding the user's own credentials, from the
# Serverless Application Repository (the version aws-cdk pins for the aws partition).
ROTATION_APPLICATION_ID = "arn:aws:serverlessrepo:us-east-1:297356227824:applications/SecretsManagerRDSPostgreSQLRotationSingleUser"
ROTATION_APPLICATION_VERSION = "1.1.671"
# Characters RDS refuses in a master password ('/', '"', '@', space) and quotes/backslash the
# connection strings of clients would have to escape.
ROTATION_EXCLUDE_CHARACTERS = "/@\"' \\"
PRIMARY_LOG_EXPORTS = ("postgresql", "upgrade")
REPLICA_LOG_EXPORTS = ("postgresql",)
GIB = 1024**3


POSTGRES = DataStoreKind("postgres", "PostgreSQL", "PostgreSQL", aws.rds.SubnetGroup, "AWS/RDS", "DBInstanceIdentifier")


@dataclass(kw_only=True)
class DatabaseArgs(DataStoreArgs):
    """Admits the EKS nodes and the migration bridge on the PostgreSQL port; replicas spread
    over the AZs (the primary's standby is placed by RDS)."""

    config: DatabaseConfig
    # Where the rotation function runs: the private subnets (NAT or the Secrets Manager endpoint).
    rotation_subnet_ids: Sequence[pulumi.Input[str]] = ()


def parameters(cfg: DatabaseConfig) -> list[tuple[str, str, str]]:
    """(name, value, apply method) of the parameter group; dynamic ones 'immediate'."""
    return [
        ("rds.force_ssl", "1", "immediate"),  # TLS for every connection
        ("log_min_duration_statement", str(cfg.slow_query_ms), "immediate"),  # slow-query log
        ("log_lock_waits", "1", "immediate"),
        ("log_temp_files", "10240", "immediate"),  # temp files above 10 MiB (work_mem too small)
        ("log_autovacuum_min_duration", "10000", "immediate"),
        ("log_statement", "ddl", "immediate"),  # every schema change (CREATE/ALTER/DROP), with who ran it
        # Static: takes effect at the next reboot (the capacity check in config.py counts on it).
        *([("max_connections", str(cfg.max_connections), "pending-reboot")] if cfg.max_connections else []),
    ]


class Database(pulumi.ComponentResource):
    """Exposes `address`, `port`, `endpoint` (host:port), `reader_endpoints`,
    `master_secret_arn` (the master credentials secret) and `master_secret_document` (its JSON,
    a secret Output: engine, host, port, dbname, username, password), `security_group_id`,
    `instance` (the primary) and `replicas`."""

    def __init__(self, name: str, args: DatabaseArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("voip:data:Database", name, None, opts)
        self.args = args
        cfg = args.config
        stage = args.ctx.stage
        child = pulumi.ResourceOptions(parent=self)
        identifier = f"{stage}-postgres"

        # The rotation function logs in like any client: its group is one of the named sources.
        self.rotation_security_group = aws.ec2.SecurityGroup(
            f"{stage}-postgres-rotation-sg",
            name=f"{stage}-postgres-rotation",
            description=f"{stage}-postgres-rotation: the master secret rotation function",
            vpc_id=args.placement.vpc_id,
            egress=[
                {"protocol": "tcp", "from_port": 443, "to_port": 443, "cidr_blocks": ["0.0.0.0/0"], "description": "Secrets Manager API"},
            ],
            tags={"Name": f"{stage}-postgres-rotation"},
            opts=child,
        )
        sources = [*args.allowed_security_group_ids, self.rotation_security_group.id]
        network = data_store_network(POSTGRES, args.ctx.ports.postgres, replace(args, allowed_security_group_ids=sources), child)
        self.security_group, self.subnet_group = network.security_group, network.subnet_group
        aws.vpc.SecurityGroupEgressRule(
            f"{stage}-postgres-rotation-to-db",
            security_group_id=self.rotation_security_group.id,
            referenced_security_group_id=self.security_group.id,
            ip_protocol="tcp",
            from_port=args.ctx.ports.postgres,
            to_port=args.ctx.ports.postgres,
            description="PostgreSQL: ALTER USER with the current secret",
            opts=pulumi.ResourceOptions(parent=self.rotation_security_group),
        )
        major = cfg.engine_version
        # The resource name carries the major: an upgrade creates the new group first.
        self.parameter_group = aws.rds.ParameterGroup(
            f"{stage}-postgres{major}",
            name=f"{stage}-postgres{major}",
            family=f"postgres{major}",
            description=f"{stage} PostgreSQL {major}: force SSL, slow-query logging",
            parameters=[aws.rds.ParameterGroupParameterArgs(name=n, value=v, apply_method=m) for n, v, m in parameters(cfg)],
            opts=child,
        )
        self.monitoring_role = self._monitoring_role(stage, args) if cfg.monitoring_interval_seconds else None
        # RDS rejects a monitoring role that lacks the policy (ENHANCED_MONITORING): the
        # instances wait for the attachment, not only for the role's ARN.
        monitoring_deps = [self._monitoring_policy] if self.monitoring_role else []

        primary_logs = self._log_groups(identifier, PRIMARY_LOG_EXPORTS)
        # RDS accepts any printable ASCII but '/', '"', '@' and space; 32 chars from the rest.
        # A new `masterPasswordVersion` makes a new password (keepers) and rewrites RDS + secret.
        self.master_password = random.RandomPassword(
            f"{identifier}-master-password",
            length=32,
            special=True,
            override_special="!#$%^&*()-_=+[]{}<>:?",
            keepers={"version": str(cfg.master_password_version)},
            opts=child,
        )
        origin = self._origin(cfg, child)
        common = dict(
            instance_class=cfg.instance_class,
            storage_type="gp3",
            max_allocated_storage=cfg.max_allocated_storage_gib,  # storage autoscaling ceiling
            storage_encrypted=True,
            # A restored instance keeps its snapshot's key (RDS cannot re-key on restore).
            kms_key_id=origin.pop("kms_key_id", args.ctx.data_key_arn),
            port=self.args.ctx.ports.postgres,
            db_subnet_group_name=self.subnet_group.name,
            vpc_security_group_ids=[self.security_group.id],
            parameter_group_name=self.parameter_group.name,
            publicly_accessible=False,
            iam_database_authentication_enabled=True,
            performance_insights_enabled=True,
            performance_insights_kms_key_id=args.ctx.data_key_arn,
            performance_insights_retention_period=cfg.performance_insights_retention_days,
            monitoring_interval=cfg.monitoring_interval_seconds,
            monitoring_role_arn=self.monitoring_role.arn if self.monitoring_role else None,
            auto_minor_version_upgrade=True,
            maintenance_window=cfg.maintenance_window,
            apply_immediately=cfg.apply_immediately,
            ca_cert_identifier=CA_CERT,
            copy_tags_to_snapshot=True,
        )
        self.instance = aws.rds.Instance(
            identifier,
            identifier=identifier,
            engine="postgres",
            engine_version=major,
            allow_major_version_upgrade=True,
            **origin,
            # Write-only: sent to RDS, never stored in the instance's state (module docstring).
            # After a restore RDS applies it with a modify: the clone never uses the source's password.
            password_wo=self.master_password.result,
            password_wo_version=cfg.master_password_version,
            multi_az=cfg.multi_az,
            enabled_cloudwatch_logs_exports=list(PRIMARY_LOG_EXPORTS),
            backup_retention_period=cfg.backup_retention_days,
            backup_window=cfg.backup_window,
            # Keep automated backups after a deletion where the stage holds data.
            delete_automated_backups=not args.ctx.protect,
            deletion_protection=args.ctx.protect,
            skip_final_snapshot=cfg.skip_final_snapshot,
            # Stable, stage-derived: operators know where the last state of a deleted stage is.
            final_snapshot_identifier=None if cfg.skip_final_snapshot else f"{identifier}-final",
            tags={"Name": identifier},
            opts=pulumi.ResourceOptions(parent=self, protect=args.ctx.protect, depends_on=[*primary_logs, *monitoring_deps]),
            **common,
        )

        # Read replicas carry no data of their own (they follow the primary), so neither Pulumi
        # protect nor deletion protection: readReplicas can be lowered from config. AWS takes no
        # final snapshot of a replica.
        self.replicas: list[aws.rds.Instance] = []
        azs = list(args.placement.availability_zones)
        for i in range(cfg.read_replicas):
            rid = f"{identifier}-replica-{i + 1}"
            logs = self._log_groups(rid, REPLICA_LOG_EXPORTS)
            self.replicas.append(
                aws.rds.Instance(
                    rid,
                    identifier=rid,
                    replicate_source_db=self.instance.identifier,
                    **{**common, "instance_class": cfg.replica_instance_class or cfg.instance_class},
                    # Spread readers over the AZs, starting after the primary's.
                    availability_zone=azs[(i + 1) % len(azs)] if azs else None,
                    multi_az=False,
                    enabled_cloudwatch_logs_exports=list(REPLICA_LOG_EXPORTS),
                    skip_final_snapshot=True,
                    deletion_protection=False,
                    tags={"Name": rid},
                    # Parented to the component, not the primary: children inherit `protect`.
                    opts=pulumi.ResourceOptions(parent=self, depends_on=[self.instance, *logs, *monitoring_deps]),
                )
            )

        self._alarms(stage, cfg, args)
        self.master_secret, self.master_secret_document = self._master_secret(stage, identifier, cfg, args)
        self.rotation = self._rotation(stage, identifier, cfg, args)

        self.address = self.instance.address
        self.port = self.instance.port
        self.endpoint = self.instance.endpoint
        self.reader_endpoints = [r.endpoint for r in self.replicas]
        self.master_secret_arn = self.master_secret.arn
        self.security_group_id = self.security_group.id
        self.register_outputs(
            {
                "address": self.address,
                "port": self.port,
                "endpoint": self.endpoint,
                "readerEndpoints": self.reader_endpoints,
                "masterSecretArn": self.master_secret_arn,
                "securityGroupId": self.security_group_id,
            }
        )

    @staticmethod
    def _origin(cfg: DatabaseConfig, opts: pulumi.ResourceOptions) -> dict:
        """A new, empty database; or (restoreFrom) another stage's snapshot: then the snapshot
        brings the database name, master user, storage size floor and KMS key with it."""
        if cfg.restore_from is None:
            return {"allocated_storage": cfg.allocated_storage_gib, "db_name": cfg.database_name, "username": cfg.master_username}
        source = cfg.restore_from
        lookup = (
            {"db_instance_identifier": f"{source.stage}-postgres", "most_recent": True}
            if source.snapshot == "latest"
            else {"db_snapshot_identifier": source.snapshot}
        )
        snapshot = aws.rds.get_snapshot_output(**lookup, opts=pulumi.InvokeOutputOptions(parent=opts.parent))
        return {
            "snapshot_identifier": snapshot.db_snapshot_arn,
            # Never smaller than the snapshot (RDS refuses).
            "allocated_storage": snapshot.allocated_storage.apply(lambda gib: max(int(gib), cfg.allocated_storage_gib)),
            "kms_key_id": snapshot.kms_key_id,
        }

    def _master_secret(
        self, stage: str, identifier: str, cfg: DatabaseConfig, args: DatabaseArgs
    ) -> tuple[aws.secretsmanager.Secret, pulumi.Output[str]]:
        secret = stage_secret(
            f"{identifier}-master",
            ctx=args.ctx,
            path="rds/master",
            description=f"{stage} PostgreSQL master credentials (JSON: engine, host, port, dbname, username, password)",
            # No `protect`: the password also stays in the random resource's state.
            opts=pulumi.ResourceOptions(parent=self),
        )
        value = pulumi.Output.secret(
            pulumi.Output.json_dumps(
                {
                    "engine": "postgres",
                    "host": self.instance.address,
                    "port": self.args.ctx.ports.postgres,
                    "dbname": cfg.database_name,
                    "username": cfg.master_username,
                    "password": self.master_password.result,
                }
            )
        )
        aws.secretsmanager.SecretVersion(
            f"{identifier}-master-value",
            secret_id=secret.id,
            # Write-only like the instance's password; the version moves with the password's.
            secret_string_wo=value,
            secret_string_wo_version=cfg.master_password_version,
            # Parented to the component: a child of the (protected) secret would inherit `protect`.
            opts=pulumi.ResourceOptions(parent=self),
        )
        return secret, value

    def _rotation(self, stage: str, identifier: str, cfg: DatabaseConfig, args: DatabaseArgs) -> aws.secretsmanager.SecretRotation:
        """AWS's single-user rotation function (its own role: read/write this secret, the data
        key via Secrets Manager, VPC ENIs) and the schedule on the master secret."""
        function_name = f"{identifier}-master-rotation"
        app = aws.serverlessrepository.CloudFormationStack(
            f"{identifier}-rotation-function",
            name=function_name,
            application_id=ROTATION_APPLICATION_ID,
            semantic_version=ROTATION_APPLICATION_VERSION,
            # The template creates the function's role and its invoke permission for Secrets Manager.
            capabilities=["CAPABILITY_IAM", "CAPABILITY_RESOURCE_POLICY"],
            parameters={
                "functionName": function_name,
                "endpoint": f"https://secretsmanager.{args.ctx.region}.amazonaws.com",
                "vpcSubnetIds": pulumi.Output.all(*args.rotation_subnet_ids).apply(lambda ids: ",".join(ids)),
                "vpcSecurityGroupIds": self.rotation_security_group.id,
                "kmsKeyArn": args.ctx.data_key_arn,
                "excludeCharacters": ROTATION_EXCLUDE_CHARACTERS,
            },
            opts=pulumi.ResourceOptions(parent=self),
        )
        return aws.secretsmanager.SecretRotation(
            f"{identifier}-master-rotation",
            secret_id=self.master_secret.id,
            rotation_lambda_arn=app.outputs.apply(lambda o: o["RotationLambdaARN"]),
            rotation_rules={"automatically_after_days": cfg.master_password_rotation_days},
            # Not at creation: the first rotation follows the schedule, after the instance is up.
            rotate_immediately=False,
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self.instance]),
        )

    def _monitoring_role(self, stage: str, args: DatabaseArgs) -> aws.iam.Role:
        role = aws.iam.Role(
            f"{stage}-rds-monitoring",
            name=f"{stage}-rds-monitoring",
            description="RDS enhanced monitoring: publishes OS metrics to CloudWatch Logs",
            assume_role_policy=service_trust("monitoring.rds.amazonaws.com", args.ctx.account_id),
            opts=pulumi.ResourceOptions(parent=self),
        )
        self._monitoring_policy = aws.iam.RolePolicyAttachment(
            f"{stage}-rds-monitoring-policy",
            role=role.name,
            policy_arn="arn:aws:iam::aws:policy/service-role/AmazonRDSEnhancedMonitoringRole",
            opts=pulumi.ResourceOptions(parent=role),
        )
        return role

    def _log_groups(self, identifier: str, exports: Sequence[str]) -> list[aws.cloudwatch.LogGroup]:
        """Created before the instance, so RDS exports into groups with our retention and key
        instead of creating never-expiring, unencrypted ones."""
        cfg = self.args.config
        return [
            log_group(
                f"{identifier}-{kind}-logs",
                f"/aws/rds/instance/{identifier}/{kind}",
                cfg.log_retention_days,
                self.args.ctx.data_key_arn,
                pulumi.ResourceOptions(parent=self),
            )
            for kind in exports
        ]

    def _alarms(self, stage: str, cfg: DatabaseConfig, args: DatabaseArgs) -> None:
        topic = args.ctx.alarm_topic_arn

        # A floor below which storage autoscaling has failed or hit maxAllocatedStorageGib.
        low_storage_bytes = max(2 * GIB, cfg.allocated_storage_gib * GIB // 10)
        instances = [(self.instance, f"{stage}-postgres")] + [(r, f"{stage}-postgres-replica-{i + 1}") for i, r in enumerate(self.replicas)]
        burstable = [
            (res, ident)
            for res, ident in instances
            if (cfg.replica_instance_class if res in self.replicas and cfg.replica_instance_class else cfg.instance_class).startswith(
                "db.t"
            )
        ]
        cpu_high = Watch("cpu-high", "CPU above 80% for 15 minutes", "CPUUtilization", "Average", ">", 80)
        storage_low = Watch(
            "storage-low",
            f"less than {low_storage_bytes // GIB} GiB free storage",
            "FreeStorageSpace",
            "Minimum",
            "<",
            low_storage_bytes,
            periods=2,
        )
        # db.t* run in unlimited mode: an empty credit balance means surplus charges and a
        # sustained load the class was not sized for (allowBurstableWriter's watch).
        credits_low = Watch(
            "cpu-credits-low",
            "CPU credit balance below 20 for 15 minutes (burstable class)",
            "CPUCreditBalance",
            "Minimum",
            "<",
            20,
        )
        replica_lag = Watch(
            "replica-lag",
            "more than 60 s behind the primary for 5 minutes",
            "ReplicaLag",
            "Maximum",
            ">",
            60,
            period=60,
            periods=5,
            missing="breaching",
        )
        # In this order: the primary's and each replica's CPU and storage, credits, replica lag.
        watched = [(instance, [cpu_high, storage_low]) for instance in instances]
        watched += [(instance, [credits_low]) for instance in burstable] + [(instance, [replica_lag]) for instance in instances[1:]]
        for (res, ident), watches in watched:
            watch_alarms(POSTGRES, ident, watches, topic, pulumi.ResourceOptions(parent=self, depends_on=[res]))

        if topic is not None:
            # Failovers, failures, low storage and maintenance as events, not only as metrics.
            aws.rds.EventSubscription(
                f"{stage}-postgres-events",
                name=f"{stage}-postgres-events",
                sns_topic=args.ctx.alarm_topic_arn,
                source_type="db-instance",
                source_ids=[res.identifier for res, _ in instances],
                event_categories=["availability", "failover", "failure", "low storage", "maintenance", "recovery"],
                opts=pulumi.ResourceOptions(parent=self),
            )
