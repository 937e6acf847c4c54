"""The stage's Secrets Manager secrets: one name scheme, the data key, one recovery rule."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pulumi
import pulumi_aws as aws

if TYPE_CHECKING:
    from components.context import StageContext


def stage_secret(
    logical: str, *, ctx: StageContext, path: str, description: str, opts: pulumi.ResourceOptions
) -> aws.secretsmanager.Secret:
    """The secret `voip/<stage>/<path>` under the stage's data key (not the AWS-managed
    secretsmanager key)."""
    # Stages with data keep a 30-day recovery window; the others delete at once, so a dev or a
    # clone re-created under the same name finds the name free.
    recovery_days = 30 if ctx.protect else 0
    return aws.secretsmanager.Secret(
        logical,
        name=f"voip/{ctx.stage}/{path}",
        description=description,
        kms_key_id=ctx.data_key_arn,
        recovery_window_in_days=recovery_days,
        opts=opts,
    )
