"""Block storage for pods: the EBS CSI driver add-on (pod identity, least privilege)
and an encrypted gp3 StorageClass.

EKS installs no CSI driver and, since 1.30, no default StorageClass: without these a
PersistentVolumeClaim (Prometheus' TSDB) stays Pending forever.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import pulumi
import pulumi_aws as aws
from pulumi_kubernetes.storage import v1 as storage

from components.cluster.pod_identity import ClusterAccess
from components.config import MonitoringConfig
from components.context import StageContext
from components.iam import pod_identity_trust_output

EBS_CSI_ADDON = "aws-ebs-csi-driver"
EBS_CSI_NAMESPACE = "kube-system"
# The controller's service account (the add-on creates it under this name).
EBS_CSI_SERVICE_ACCOUNT = "ebs-csi-controller-sa"
EBS_CSI_PROVISIONER = "ebs.csi.aws.com"
# AWS's managed policy for the driver: create/attach/detach/delete volumes and snapshots,
# scoped by the tags the driver puts on what it creates.
EBS_CSI_POLICY_ARN = "arn:aws:iam::aws:policy/service-role/AmazonEBSCSIDriverPolicy"
GP3_STORAGE_CLASS = "gp3"


@dataclass
class EbsCsiArgs:
    ctx: StageContext
    # ebsCsiDriverAddonVersion: the driver add-on belongs to the monitoring tier's storage.
    config: MonitoringConfig
    # The trust names the cluster by ARN (components/iam.py).
    cluster: ClusterAccess
    # Where the controller runs (the system node group); the node DaemonSet runs everywhere.
    controller_node_selector: Mapping[str, str] = field(default_factory=dict)
    # The node groups (the controller needs nodes, or the add-on stays DEGRADED) and the
    # pod identity agent add-on (the controller's credentials).
    depends_on: Sequence[pulumi.Resource] = ()


class EbsCsi(pulumi.ComponentResource):
    """EBS CSI driver add-on + its pod-identity role + the gp3 StorageClass.

    Exposes `.addon`, `.role`, `.storage_class` and `.storage_class_name` (what PVCs name).
    """

    def __init__(self, name: str, args: EbsCsiArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("voip:storage:EbsCsi", name, None, opts)
        stage = args.ctx.stage

        self.role = aws.iam.Role(
            f"{stage}-ebs-csi-role",
            description=f"{stage}: EBS CSI driver controller (pod identity)",
            assume_role_policy=pod_identity_trust_output(args.ctx.account_id, args.cluster.arn, EBS_CSI_NAMESPACE, EBS_CSI_SERVICE_ACCOUNT),
            opts=pulumi.ResourceOptions(parent=self),
        )
        policy = aws.iam.RolePolicyAttachment(
            f"{stage}-ebs-csi-policy",
            role=self.role.name,
            policy_arn=EBS_CSI_POLICY_ARN,
            opts=pulumi.ResourceOptions(parent=self.role),
        )
        self.addon = aws.eks.Addon(
            f"{stage}-eks-{EBS_CSI_ADDON}",
            cluster_name=args.cluster.name,
            addon_name=EBS_CSI_ADDON,
            addon_version=args.config.ebs_csi_driver_addon_version,
            configuration_values=json.dumps({"controller": {"nodeSelector": dict(args.controller_node_selector)}})
            if args.controller_node_selector
            else None,
            # The add-on creates the association for its own service account.
            pod_identity_associations=[
                aws.eks.AddonPodIdentityAssociationArgs(role_arn=self.role.arn, service_account=EBS_CSI_SERVICE_ACCOUNT)
            ],
            resolve_conflicts_on_create="OVERWRITE",
            resolve_conflicts_on_update="OVERWRITE",
            opts=pulumi.ResourceOptions(parent=self, depends_on=[policy, *args.depends_on]),
        )

        self.storage_class = storage.StorageClass(
            f"{stage}-gp3-storage-class",
            metadata={"name": GP3_STORAGE_CLASS},
            provisioner=EBS_CSI_PROVISIONER,
            parameters={
                "type": "gp3",
                # The account's aws/ebs key: no key policy or grants for the driver to manage.
                "encrypted": "true",
                "csi.storage.k8s.io/fstype": "ext4",
            },
            # Create the volume in the AZ where the pod is scheduled (EBS is zonal).
            volume_binding_mode="WaitForFirstConsumer",
            allow_volume_expansion=True,
            reclaim_policy="Retain" if args.ctx.protect else "Delete",
            opts=pulumi.ResourceOptions(parent=self, provider=args.cluster.k8s_provider, depends_on=[self.addon]),
        )
        self.storage_class_name = GP3_STORAGE_CLASS

        self.register_outputs({"storageClassName": self.storage_class_name, "roleArn": self.role.arn})
