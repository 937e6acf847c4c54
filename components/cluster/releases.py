"""The stage's Kubernetes namespaces, and one way to install a Helm chart: every release of the stage is atomic (a failed upgrade
rolls back instead of leaving half a release), cleans up what a failed install created, and
keeps a short history."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pulumi
from pulumi_kubernetes.core import v1 as core
from pulumi_kubernetes.helm import v3 as helm


def part_of_labels(stage: str) -> dict[str, str]:
    """The labels every Kubernetes object this program creates carries."""
    return {"app.kubernetes.io/part-of": "voip", "stage": stage}


def stage_namespace(
    resource_name: str, *, name: str, stage: str, labels: dict[str, str], parent: pulumi.Resource, provider: pulumi.ProviderResource
) -> core.Namespace:
    """A namespace with the stage's labels plus `labels` (its Pod Security level, ...)."""
    return core.Namespace(
        resource_name,
        metadata={"name": name, "labels": {**part_of_labels(stage), **labels}},
        opts=pulumi.ResourceOptions(parent=parent, provider=provider),
    )


def helm_release(
    resource_name: str,
    *,
    chart: str,
    namespace: pulumi.Input[str],
    parent: pulumi.Resource,
    provider: pulumi.ProviderResource,
    name: str | None = None,
    version: str | None = None,
    repo: str | None = None,
    values: pulumi.Input[dict[str, Any]] | None = None,
    timeout: int = 300,
    max_history: int = 5,
    skip_crds: bool | None = None,
    create_namespace: bool | None = None,
    depends_on: Sequence[pulumi.Resource] = (),
) -> helm.Release:
    """`chart` from `repo` (a chart repository URL), or a local path without one. The release
    is named `name` (default: the chart's name)."""
    return helm.Release(
        resource_name,
        name=name or chart,
        chart=chart,
        version=version,
        repository_opts=helm.RepositoryOptsArgs(repo=repo) if repo else None,
        namespace=namespace,
        create_namespace=create_namespace,
        skip_crds=skip_crds,
        values=values,
        atomic=True,
        cleanup_on_fail=True,
        timeout=timeout,
        max_history=max_history,
        opts=pulumi.ResourceOptions(parent=parent, provider=provider, depends_on=list(depends_on)),
    )
