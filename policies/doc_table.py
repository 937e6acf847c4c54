"""The rule table of docs/policies.md, rendered from the pack (names, levels per stage) and the
one-line "protects against / how to fix" of each rule below. `python -m policies.doc_table`
prints it; tests/test_policies.py checks the doc holds exactly this table."""

from __future__ import annotations

try:
    from policies.rules import ALL_POLICIES, level_for
except ImportError:  # pragma: no cover - run from policies/
    from rules import ALL_POLICIES, level_for  # type: ignore[no-redef]

# rule -> (what it protects against, how to fix)
ABOUT: dict[str, tuple[str, str]] = {
    "rds-storage-encrypted": ("a snapshot or disk read outside the database", "`storage_encrypted=True`, `kms_key_id` = data key"),
    "rds-not-publicly-accessible": ("the database answering the internet", "`publicly_accessible=False`; clients come through the VPC"),
    "rds-master-password-out-of-state": (
        "the master password in Pulumi state",
        "`password_wo` from a RandomPassword + `password_wo_version`, or `manage_master_user_password`",
    ),
    "rds-backup-retention": (
        "losing data with no point-in-time restore",
        "`backup_retention_period` >= 7 where data lives (>= 1 elsewhere)",
    ),
    "rds-deletion-protection": ("a console/API delete of a protected database", "`deletion_protection=True`"),
    "elasticache-encryption": (
        "Redis traffic or snapshots in clear",
        "`transit_encryption_enabled` (mode required), `at_rest_encryption_enabled` + data key",
    ),
    "elasticache-auth-token": ("anyone in the VPC using Redis", "`auth_token` from a RandomPassword (secret)"),
    "elasticache-multi-az-failover": ("a replica that is never promoted", "`automatic_failover_enabled` and `multi_az_enabled`"),
    "s3-public-access-block": ("a bucket made public by a policy or ACL", "a BucketPublicAccessBlock with the four flags True"),
    "s3-default-encryption": (
        "objects stored unencrypted",
        "a BucketServerSideEncryptionConfiguration (aws:kms + data key, or AES256 where the writer needs it)",
    ),
    "sg-no-admin-ports": ("SSH/RDP exposed", "remove the rule; SSM Session Manager"),
    "sg-no-all-traffic-from-internet": ("every port open to the internet", "open only the service's ports"),
    "sg-public-ingress-allow-list": (
        "a port opened to the internet by mistake",
        "a CIDR allow-list or a security-group source; or change the design's allow-list",
    ),
    "ec2-imdsv2-required": ("SSRF stealing instance credentials (IMDSv1)", "`metadata_options.http_tokens=required`"),
    "ec2-volumes-encrypted": ("unencrypted EBS volumes and snapshots", "`encrypted` on every EBS mapping (or EBS encryption by default)"),
    "ec2-no-key-pair": ("long-lived SSH keys", "drop `key_name`; SSM Session Manager"),
    "eks-secrets-encryption": ("Kubernetes Secrets readable from etcd backups", "`encryption_config` resources=[secrets] with a KMS key"),
    "eks-control-plane-logs": ("no trail of API calls and logins", "`enabled_cluster_log_types` with api, audit, authenticator"),
    "eks-public-endpoint-restricted": (
        "the Kubernetes API open to the internet",
        "`public_access_cidrs` (office, CI) or a private endpoint",
    ),
    "cloudfront-https-only": ("sessions over plain HTTP", "`viewer_protocol_policy=redirect-to-https`"),
    "cloudfront-min-tls": ("TLS 1.0/1.1 downgrade", "ACM certificate, `minimum_protocol_version=TLSv1.2_2021`"),
    "cloudfront-waf": ("the edge without managed rules and rate limits", "`web_acl_id` = the CLOUDFRONT web ACL"),
    "alb-drop-invalid-headers": ("HTTP request smuggling", "`drop_invalid_header_fields=True`"),
    "lb-http-listener-redirects": ("plain-HTTP traffic served", "default action: redirect to HTTPS (301)"),
    "kms-key-rotation": ("a key in use for years", "`enable_key_rotation=True`"),
    "log-group-retention": ("logs kept (and billed) forever", "`retention_in_days` from the stage config"),
    "stateful-resources-protected": ("`pulumi destroy`/a rename deleting data", "`protect=cfg.protect_data` (aliases on renames)"),
    "backup-covers-stateful": (
        "data with no restore point outside its own service (and none in a second region)",
        "add the resource's ARN to the stage's AWS Backup selection (components/data/backup.py); classify new types in policies/backup_coverage.py",
    ),
    "aws-explicit-provider-tags": ("untagged, unattributable cost", "create under the stage's provider (default tags)"),
    "vpc-flow-logs": ("no record of network flows in an incident", "an `aws.ec2.FlowLog` (ALL) per VPC"),
    "internet-entry-behind-waf": (
        "an HTTP(S)/WebSocket entry without IP reputation, managed rules and rate limits",
        "CloudFront + web ACL (ALB admitting only CloudFront) or a regional web ACL; else a `policy.wafExceptions` entry with the reason",
    ),
    "s3-access-logging": ("no record of who read or changed which object", "an `aws.s3.BucketLogging` into the stage's log bucket"),
    "s3-noncurrent-expiry": (
        "old versions piling up forever (cost, deleted data kept)",
        "a lifecycle rule with `noncurrent_version_expiration`",
    ),
    "s3-log-buckets-versioned": ("overwritten or deleted log evidence", "`aws.s3.BucketVersioning` Enabled (and noncurrent expiry)"),
    "route53-query-logging": (
        "no record of who resolved which name",
        "`aws.route53.QueryLog` into a us-east-1 log group + resource policy",
    ),
    "waf-logging": ("blocked attacks leaving no trace", "`aws.wafv2.WebAclLoggingConfiguration` (redact authorization, cookies)"),
    "rds-master-secret-rotation": (
        "a master password that never changes",
        "`aws.secretsmanager.SecretRotation` with AWS's single-user rotation app (<= 90 days)",
    ),
    "log-group-cmk": ("logs readable without a key the account controls", "`kms_key_id` = a customer key of the group's region"),
    "secret-cmk": ("secrets under the shared AWS-managed key", "`kms_key_id` = data key; readers get kms:Decrypt via Secrets Manager"),
    "sns-topic-encrypted": (
        "alarm payloads unencrypted at rest",
        "`kms_master_key_id` with a key whose policy admits the publishers (a topic ElastiCache notifies is exempt: ElastiCache cannot publish to SSE-KMS topics)",
    ),
    "security-log-retention": (
        "audit trails gone before an investigation (real users' stages)",
        "retention 365 for EKS, WAF, VPC flow, VPN, DNS query logs",
    ),
    "cloudfront-access-logging": ("no record of edge requests", "`logging_config` to the CloudFront log bucket"),
    "lb-access-logs": ("no record of load-balancer requests", "`access_logs` (bucket, prefix, enabled)"),
    "iam-no-admin-wildcard": ("an admin-equivalent grant", "name actions and ARNs"),
    "iam-scoped-resource-actions": (
        "a grant on every cluster/secret/topic/object of the account",
        "the ARN (e.g. `nodegroup/<cluster>/*/*`) instead of `*`",
    ),
    "no-secrets-in-user-data": (
        "credentials readable by anyone who can describe the instance",
        "fetch at boot through the instance role (Secrets Manager/SSM)",
    ),
    "no-secrets-in-workload-env": (
        "credentials in manifests, `kubectl describe`, task definitions",
        "`valueFrom.secretKeyRef` / ECS `secrets`",
    ),
    "no-secrets-in-helm-values": (
        "credentials in Helm release history and Pulumi state",
        "a Kubernetes Secret + existingSecret/secretKeyRef",
    ),
    "kms-no-network-origin-condition": (
        "a key policy that breaks (or leaks) through service calls",
        "conditions on principals/ViaService/encryption context, not aws:SourceIp",
    ),
}


def render() -> str:
    rows = []
    for p in ALL_POLICIES:
        if p.name not in ABOUT:
            raise KeyError(f"{p.name}: add what it protects against and how to fix it to policies/doc_table.py ABOUT")
        protects, fix = ABOUT[p.name]
        kind = " (stack)" if type(p).__name__ == "StackValidationPolicy" else ""
        rows.append(f"| `{p.name}`{kind} | {level_for(p, False).value} | {level_for(p, True).value} | {protects} | {fix} |")
    head = "| rule | dev, clones | nas-migration, production | protects against | how to fix |\n|---|---|---|---|---|\n"
    return head + "\n".join(rows)


if __name__ == "__main__":
    print(render())
