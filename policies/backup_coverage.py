"""Backup coverage: in a stage that holds data, every stateful resource is selected by an AWS
Backup plan (issue 13). A selection "selects" a resource when it depends on it: the selection
names the resource's ARN, an output of that resource, so the engine records the dependency (known
at preview, when the ARN itself is not).

`STATEFUL_TYPES` classifies every resource type of the data services: `BACKUP` (must be
selected), an exemption with its reason, or `CONFIG` (holds no data). tests/test_backup.py fails
when a plan holds a type of these services that is not classified here, so a new stateful type
cannot slip in without a backup decision.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from pulumi_policy import ReportViolation, StackValidationArgs

BACKUP = "backup"
CONFIG = "config"

# Services whose resources may hold data: every type of theirs that a plan declares must be classified.
DATA_SERVICES = ("rds", "s3", "elasticache", "ebs", "efs", "dynamodb", "docdb", "memorydb", "opensearch", "fsx", "dms", "backup", "neptune")

STATEFUL_TYPES: Mapping[str, str] = {
    # must be selected (the predicate below narrows some types)
    "aws:rds/instance:Instance": BACKUP,  # primaries; read replicas are rebuilt from the primary
    "aws:rds/cluster:Cluster": BACKUP,
    "aws:s3/bucket:Bucket": BACKUP,  # the file bucket; others carry their exemption below
    "aws:s3/bucketV2:BucketV2": BACKUP,
    "aws:ebs/volume:Volume": BACKUP,
    "aws:efs/fileSystem:FileSystem": BACKUP,
    "aws:dynamodb/table:Table": BACKUP,
    # exempt, with the reason
    "aws:elasticache/replicationGroup:ReplicationGroup": "exempt: AWS Backup does not back up ElastiCache; the groups keep their own daily snapshots (cache.snapshotRetentionDays)",
    "aws:dms/replicationInstance:ReplicationInstance": "exempt: replication state only; the task restarts from the source",
    "aws:backup/vault:Vault": "exempt: the vault is the backup",
    # configuration, no data
    **dict.fromkeys(
        (
            "aws:rds/parameterGroup:ParameterGroup",
            "aws:rds/subnetGroup:SubnetGroup",
            "aws:rds/eventSubscription:EventSubscription",
            "aws:elasticache/parameterGroup:ParameterGroup",
            "aws:elasticache/subnetGroup:SubnetGroup",
            "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration",
            "aws:s3/bucketOwnershipControls:BucketOwnershipControls",
            "aws:s3/bucketPolicy:BucketPolicy",
            "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock",
            "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration",
            "aws:s3/bucketVersioning:BucketVersioning",
            "aws:s3/bucketNotification:BucketNotification",
            "aws:s3/bucketLogging:BucketLogging",
            "aws:dms/endpoint:Endpoint",
            "aws:dms/replicationSubnetGroup:ReplicationSubnetGroup",
            "aws:dms/replicationTask:ReplicationTask",
            "aws:dms/eventSubscription:EventSubscription",
            "aws:backup/plan:Plan",
            "aws:backup/selection:Selection",
            "aws:backup/vaultLockConfiguration:VaultLockConfiguration",
            "aws:backup/vaultPolicy:VaultPolicy",
            "aws:backup/vaultNotifications:VaultNotifications",
        ),
        CONFIG,
    ),
}

# Buckets whose contents are rebuilt or disposable (by name suffix), with the reason.
BUCKET_EXEMPTIONS = {
    "-web": "the web app's build output, published again by CI",
    "-cdn-logs": "access logs (kept by lifecycle, not restored)",
    "-lb-logs": "access logs (kept by lifecycle, not restored)",
    "-vpc-flow-logs": "VPC flow logs (kept by lifecycle, not restored)",
}

SELECTION = "aws:backup/selection:Selection"


def service_of(resource_type: str) -> str:
    """`aws:rds/instance:Instance` -> `rds`."""
    return resource_type.split(":")[1].split("/")[0] if resource_type.count(":") >= 2 else ""


def _replica(props: Mapping[str, Any]) -> bool:
    try:
        return bool(props.get("replicateSourceDb"))
    except Exception:  # unknown at preview: only replicas name a source
        return True


def needs_backup(resource_type: str, name: str, props: Mapping[str, Any]) -> bool:
    """Whether this resource must be selected by a backup plan where the stage holds data."""
    if STATEFUL_TYPES.get(resource_type) != BACKUP:
        return False
    if resource_type == "aws:rds/instance:Instance" and _replica(props):
        return False
    if resource_type in ("aws:s3/bucket:Bucket", "aws:s3/bucketV2:BucketV2") and any(name.endswith(s) for s in BUCKET_EXEMPTIONS):
        return False
    return True


def unselected(resources: Iterable[Any]) -> list[Any]:
    """Policy resources (type, name, props, dependencies) that need a backup and no selection depends on."""
    resources = list(resources)
    selected = {d.urn for r in resources if r.resource_type == SELECTION for d in r.dependencies}
    return [r for r in resources if needs_backup(r.resource_type, r.name, r.props) and r.urn not in selected]


def check(args: StackValidationArgs, report: ReportViolation, protect_data: bool | None) -> None:
    if protect_data is None:
        args.not_applicable("protectData unknown: pass it as policy config")
    if not protect_data:
        return
    for r in unselected(args.resources):
        report(
            f"the stage holds data (protectData) but no AWS Backup selection covers this {r.resource_type.rsplit(':', 1)[-1]}: "
            "add its ARN to the stage's backup selection (components/data/backup.py)",
            r.urn,
        )
