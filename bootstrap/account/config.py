"""The bootstrap stack's configuration (`voip-bootstrap:<key>`): typed, validated, defaulted,
unknown keys rejected, every problem reported at once as `error: voip-bootstrap:<key path>: ...`.

The same conventions as the main program's schema (components/config.py), whose error
formatting it reuses."""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, Field, ValidationError

from components.config import DomainName, Model, _pattern
from components.config_loader import ConfigError, read_namespace

PROJECT = "voip-bootstrap"
REGION_KEY = "aws:region"
# The stages of voip-infra (STAGE_NAME) plus `review`, the GitHub environment of review stacks.
StageName = Annotated[str, _pattern(r"[a-z][a-z0-9-]{0,18}[a-z0-9]", "a stage name (2-20 chars of a-z, 0-9, '-')")]
# owner/name as GitHub spells it (the OIDC `sub` claim is case-sensitive to IAM's StringEquals).
Repository = Annotated[
    str, _pattern(r"[A-Za-z0-9][A-Za-z0-9-]{0,38}/[A-Za-z0-9._-]{1,100}", "a GitHub repository owner/name, e.g. example-org/voip-infra")
]


def _unique(stages: list[str]) -> list[str]:
    if len(set(stages)) != len(stages):
        raise ValueError("each stage may appear once")
    return stages


class GithubConfig(Model):
    repository: Repository
    # false: the account already has token.actions.githubusercontent.com (one per account allowed).
    create_oidc_provider: bool = True
    # The CodeBuild-hosted runners of the stages (voip-infra cluster.ciRunner) reach GitHub
    # through this CodeConnections connection; it is created PENDING and approved once in the console.
    codebuild_connection: bool = True


class StateConfig(Model):
    # Old versions of state files (every `up` writes one) and of backups go after this many days.
    noncurrent_version_expiration_days: int = Field(default=90, ge=1, le=3650)
    abort_incomplete_multipart_days: int = Field(default=7, ge=1, le=365)


class DnsConfig(Model):
    # The public zone every stage's domain hangs under (voip.example.com): owned here, so it exists
    # before the first stage runs; each stage delegates its own subdomain into it (edge.delegateFrom).
    apex_domain: DomainName | None = None


class CloudTrailConfig(Model):
    enabled: bool = True
    # Object lock default retention of the log bucket; also when its objects expire.
    retention_days: int = Field(default=365, ge=1, le=3650)
    # GOVERNANCE: a user with s3:BypassGovernanceRetention can still delete (lets you fix mistakes);
    # COMPLIANCE: nobody can, not even root, until retention ends.
    object_lock_mode: Literal["GOVERNANCE", "COMPLIANCE"] = "GOVERNANCE"


class GuardDutyConfig(Model):
    enabled: bool = True
    # EKS audit-log analysis and runtime monitoring (the agent as an EKS add-on, managed by GuardDuty).
    eks_protection: bool = True
    # S3 data events (object-level API calls) on every bucket.
    s3_protection: bool = True
    finding_publishing_frequency: Literal["FIFTEEN_MINUTES", "ONE_HOUR", "SIX_HOURS"] = "FIFTEEN_MINUTES"


class Switch(Model):
    enabled: bool = True


class BaselineConfig(Model):
    cloud_trail: CloudTrailConfig = CloudTrailConfig()
    guard_duty: GuardDutyConfig = GuardDutyConfig()
    access_analyzer: Switch = Switch()
    # Security Hub CSPM with AWS Foundational Security Best Practices v1.0.0; its controls are AWS
    # Config rules, so this switch also records the account's resources with AWS Config.
    security_hub: Switch = Switch()


class BootstrapConfig(Model):
    stack: StageName
    region: Annotated[str, _pattern(r"[a-z]{2}(-gov)?-[a-z]+-[0-9]", "an AWS region such as ap-northeast-2")] = Field(alias=REGION_KEY)
    owner: Annotated[str, Field(min_length=1, max_length=64)]
    cost_center: Annotated[str, Field(min_length=1, max_length=64)] = "voip-platform"
    github: GithubConfig
    # Per stage: a preview role (pull requests) and a deploy role (the stage's GitHub environment).
    stages: Annotated[list[StageName], AfterValidator(_unique)] = Field(min_length=1, max_length=20)
    state: StateConfig = StateConfig()
    dns: DnsConfig = DnsConfig()
    baseline: BaselineConfig = BaselineConfig()

    def redacted(self) -> dict[str, Any]:
        return self.model_dump(mode="json", by_alias=True, exclude={"stack"})


def load_bootstrap_config(stack: str, raw: dict[str, Any]) -> BootstrapConfig:
    """Validate the raw config of a bootstrap stack; raise ConfigError with every problem."""
    allowed = sorted(f.alias or n for n, f in BootstrapConfig.model_fields.items() if n not in ("stack", "region"))
    values, lines = read_namespace(raw, PROJECT, allowed)
    data: dict[str, Any] = {"stack": stack, **values}
    if lines:
        raise ConfigError(lines)
    try:
        return BootstrapConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_format(exc)) from None


def _format(exc: ValidationError) -> list[str]:
    lines = []
    for err in exc.errors(include_url=False):
        loc = [str(p) for p in err["loc"] if p != "[key]"]
        head = REGION_KEY if loc and loc[0] == REGION_KEY else f"{PROJECT}:{loc[0]}" if loc else PROJECT
        msg = err["msg"].removeprefix("Value error, ")
        field, sep, rest = msg.partition(": ")
        if sep and re.fullmatch(r"[A-Za-z0-9_.]+", field):
            loc, msg = [*loc, *field.split(".")], rest
        if err["type"] == "extra_forbidden":
            msg = "unknown key"
        elif err["type"] == "missing":
            msg = "required key is missing"
        lines.append(f"error: {'.'.join([head, *loc[1:]])}: {msg}")
    return lines
