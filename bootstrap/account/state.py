"""Where Pulumi keeps state and encrypts secrets: the state bucket (versioned, SSE-KMS under its
own key, TLS-only, public access blocked, old versions expired) and one `awskms://` secrets key
per stage, so a stage's CI roles can decrypt only that stage's secrets."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from account.buckets import account_bucket
from components.buckets import deny_everyone, deny_insecure_transport, version_expiry_rules
from components.data.keys import account_administers_statement
from components.iam import policy_document

STATE_PREFIX = ".pulumi"


def state_bucket_policy(bucket_arn: str) -> str:
    """TLS (>= 1.2) only, for everyone."""
    return policy_document(
        [
            deny_insecure_transport(bucket_arn),
            deny_everyone("DenyOldTls", bucket_arn, {"NumericLessThan": {"s3:TlsVersion": "1.2"}}),
        ]
    )


def key_policy(account_id: str) -> str:
    # Use is granted by IAM policies (the CI roles' inline policies, admins): no principal here but the account.
    return policy_document([account_administers_statement(account_id)])


def secrets_alias(stage: str) -> str:
    return f"alias/voip-infra-{stage}-secrets"


def secrets_provider_url(stage: str, region: str) -> str:
    """What a stack file's `secretsprovider` names (and `pulumi stack init --secrets-provider` takes)."""
    return f"awskms://{secrets_alias(stage)}?region={region}"


@dataclass
class PulumiStateArgs:
    account_id: str
    region: str
    stages: list[str]
    noncurrent_version_expiration_days: int
    abort_incomplete_multipart_days: int


class PulumiState(pulumi.ComponentResource):
    """Attributes: `bucket`, `bucket_name`, `bucket_arn`, `state_key` (the bucket's key) and
    `secrets_keys` (stage -> its `awskms://` key)."""

    def __init__(self, name: str, args: PulumiStateArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("voip:bootstrap:PulumiState", name, None, opts)
        # Everything here holds or guards every stage's state: protected, always.
        guarded = pulumi.ResourceOptions(parent=self, protect=True)
        policy = key_policy(args.account_id)
        self.state_key = aws.kms.Key(
            "pulumi-state-key",
            description="voip-infra: Pulumi state bucket (SSE-KMS)",
            enable_key_rotation=True,
            deletion_window_in_days=30,
            policy=policy,
            opts=guarded,
        )
        aws.kms.Alias("pulumi-state-key-alias", name="alias/voip-infra-state", target_key_id=self.state_key.key_id, opts=guarded)
        self.secrets_keys: dict[str, aws.kms.Key] = {}
        for stage in args.stages:
            key = aws.kms.Key(
                f"{stage}-secrets-key",
                description=f"voip-infra {stage}: Pulumi secrets provider ({secrets_provider_url(stage, args.region)})",
                enable_key_rotation=True,
                deletion_window_in_days=30,
                policy=policy,
                opts=guarded,
            )
            aws.kms.Alias(f"{stage}-secrets-key-alias", name=secrets_alias(stage), target_key_id=key.key_id, opts=guarded)
            self.secrets_keys[stage] = key

        # Global namespace: account and region keep the name ours and predictable.
        self.bucket_name = f"voip-infra-state-{args.account_id}-{args.region}"
        state = account_bucket("pulumi-state", self.bucket_name, self.state_key.arn, self)
        self.bucket, versioning = state.bucket, state.versioning
        aws.s3.BucketLifecycleConfiguration(
            "pulumi-state-lifecycle",
            bucket=self.bucket.id,
            rules=version_expiry_rules(args.noncurrent_version_expiration_days, args.abort_incomplete_multipart_days),
            opts=pulumi.ResourceOptions(parent=self.bucket, depends_on=[versioning]),
        )
        aws.s3.BucketPolicy(
            "pulumi-state-policy",
            bucket=self.bucket.id,
            policy=self.bucket.arn.apply(state_bucket_policy),
            opts=pulumi.ResourceOptions(
                parent=self.bucket, protect=True, depends_on=[state.baseline.public_access_block, state.baseline.ownership]
            ),
        )
        self.bucket_arn = self.bucket.arn
        self.register_outputs(
            {
                "bucketName": self.bucket.bucket,
                "stateKeyArn": self.state_key.arn,
                "secretsKeyArns": {s: k.arn for s, k in self.secrets_keys.items()},
            }
        )
