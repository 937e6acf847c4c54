"""The one way a data store admits clients: its own security group, one port, named
source security groups only (no CIDR), and no egress (a store opens no connections)."""

from __future__ import annotations

from collections.abc import Sequence

import pulumi
import pulumi_aws as aws


def data_store_security_group(
    name: str,
    *,
    what: str,
    port: int,
    vpc_id: pulumi.Input[str],
    sources: Sequence[pulumi.Input[str]],
    opts: pulumi.ResourceOptions,
) -> aws.ec2.SecurityGroup:
    """`name` is the stage-derived resource and group name, e.g. `production-postgres`."""
    return aws.ec2.SecurityGroup(
        f"{name}-sg",
        name=name,
        description=f"{name}: {what} on {port} from named security groups only",
        vpc_id=vpc_id,
        ingress=[
            aws.ec2.SecurityGroupIngressArgs(
                protocol="tcp",
                from_port=port,
                to_port=port,
                security_groups=list(sources),
                description=f"{what} from the named sources",
            )
        ]
        if sources
        else [],
        egress=[],
        tags={"Name": name},
        opts=opts,
    )
