"""AWS Backup for the stage (`backup`): a vault encrypted with the stage's data key, a daily plan
whose selection names every stateful resource the stage declares (the database primary, the
file bucket), retention from config; optionally a copy of every recovery point to a vault in a
second region (its own KMS key, through a second regional provider) and vault locks in
governance mode.

Why governance, not compliance: a compliance lock becomes immutable after its grace period (not
even the root user can shorten retention or delete the vault); a stage that is torn down or
re-sized would then keep paying for recovery points for up to `lockMaxRetentionDays`. Governance
mode refuses deletions before `lockMinRetentionDays` to everyone without
`backup:DeleteBackupVaultLockConfiguration`, which no role of this program holds.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from components.config import BackupConfig
from components.context import StageContext
from components.data.keys import account_administers_statement
from components.iam import policy_document, service_trust

# AWS-managed policies of the AWS Backup service role (docs: "AWS managed policies for AWS Backup").
BACKUP_MANAGED_POLICIES = {
    "backup": "arn:aws:iam::aws:policy/service-role/AWSBackupServiceRolePolicyForBackup",
    "restores": "arn:aws:iam::aws:policy/service-role/AWSBackupServiceRolePolicyForRestores",
    "s3-backup": "arn:aws:iam::aws:policy/AWSBackupServiceRolePolicyForS3Backup",
    "s3-restore": "arn:aws:iam::aws:policy/AWSBackupServiceRolePolicyForS3Restore",
}


@dataclass
class BackupArgs:
    ctx: StageContext
    config: BackupConfig
    # What the plan selects: a short name -> ARN (e.g. {"database": db.arn, "files": bucket.arn}).
    resources: Mapping[str, pulumi.Input[str]]
    # A provider in `config.copy_region` (required when it is set).
    copy_provider: aws.Provider | None = None


def cron_at(hh_mm: str) -> str:
    h, m = map(int, hh_mm.split(":"))
    return f"cron({m} {h} * * ? *)"


class Backup(pulumi.ComponentResource):
    """`vault`, `plan`, `selection`, `role`; `copy_vault` and `copy_key` in the second region."""

    def __init__(self, name: str, args: BackupArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("voip:data:Backup", name, None, opts)
        ctx, cfg = args.ctx, args.config
        stage = ctx.stage
        if cfg.copy_region and args.copy_provider is None:
            raise ValueError("BackupArgs: copy_region is set but no copy_provider was given")
        # Vaults hold the recovery points: protected like the data they copy.
        keep = pulumi.ResourceOptions(parent=self, protect=ctx.protect)
        child = pulumi.ResourceOptions(parent=self)

        self.vault = aws.backup.Vault(f"{stage}-backup", name=f"{stage}-voip", kms_key_arn=ctx.data_key_arn, opts=keep)
        self._lock(f"{stage}-backup-lock", self.vault, cfg, child)

        self.copy_vault: aws.backup.Vault | None = None
        self.copy_key: aws.kms.Key | None = None
        if cfg.copy_region and args.copy_provider is not None:
            remote = pulumi.ResourceOptions(parent=self, provider=args.copy_provider, protect=ctx.protect)
            self.copy_key = aws.kms.Key(
                f"{stage}-backup-copy-key",
                description=f"{stage}: AWS Backup copies in {cfg.copy_region}",
                enable_key_rotation=True,
                deletion_window_in_days=30,
                policy=pulumi.Output.from_input(ctx.account_id).apply(lambda acct: policy_document([account_administers_statement(acct)])),
                opts=remote,
            )
            aws.kms.Alias(
                f"{stage}-backup-copy-key-alias",
                name=f"alias/{stage}-backup-copy",
                target_key_id=self.copy_key.key_id,
                # Configuration, not data: not protected like the key it names.
                opts=pulumi.ResourceOptions(parent=self.copy_key, provider=args.copy_provider, protect=False),
            )
            self.copy_vault = aws.backup.Vault(
                f"{stage}-backup-copy", name=f"{stage}-voip-copy", kms_key_arn=self.copy_key.arn, opts=remote
            )
            self._lock(f"{stage}-backup-copy-lock", self.copy_vault, cfg, pulumi.ResourceOptions(parent=self, provider=args.copy_provider))

        self.role = aws.iam.Role(
            f"{stage}-backup",
            description=f"AWS Backup: back up and restore {stage}'s database and file bucket",
            assume_role_policy=service_trust("backup.amazonaws.com", ctx.account_id),
            opts=child,
        )
        attachments = [
            aws.iam.RolePolicyAttachment(
                f"{stage}-backup-{key}", role=self.role.name, policy_arn=arn, opts=pulumi.ResourceOptions(parent=self.role)
            )
            for key, arn in BACKUP_MANAGED_POLICIES.items()
        ]

        copy_actions = None
        if self.copy_vault is not None:
            copy_actions = [{"destination_vault_arn": self.copy_vault.arn, "lifecycle": {"delete_after": cfg.copy_retention_days}}]
        self.plan = aws.backup.Plan(
            f"{stage}-backup-plan",
            name=f"{stage}-voip-daily",
            rules=[
                {
                    "rule_name": "daily",
                    "target_vault_name": self.vault.name,
                    "schedule": cron_at(cfg.daily_at),
                    "schedule_expression_timezone": cfg.timezone,
                    "start_window": 60,
                    "completion_window": 360,
                    "lifecycle": {"delete_after": cfg.retention_days},
                    "copy_actions": copy_actions,
                    "recovery_point_tags": {"stage": stage},
                }
            ],
            opts=child,
        )
        self.selection = aws.backup.Selection(
            f"{stage}-backup-selection",
            name=f"{stage}-stateful",
            plan_id=self.plan.id,
            iam_role_arn=self.role.arn,
            resources=list(args.resources.values()),
            opts=pulumi.ResourceOptions(parent=self.plan, depends_on=attachments),
        )
        self.register_outputs(
            {
                "vaultName": self.vault.name,
                "planId": self.plan.id,
                "copyVaultArn": self.copy_vault.arn if self.copy_vault is not None else None,
            }
        )

    def _lock(self, name: str, vault: aws.backup.Vault, cfg: BackupConfig, opts: pulumi.ResourceOptions) -> None:
        if cfg.vault_lock:
            # No changeable_for_days: governance mode (see the module docstring).
            aws.backup.VaultLockConfiguration(
                name,
                backup_vault_name=vault.name,
                min_retention_days=cfg.lock_min_retention_days,
                max_retention_days=cfg.lock_max_retention_days,
                # The lock is configuration of the (protected) vault: not protected itself.
                opts=pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(parent=vault, protect=False)),
            )
