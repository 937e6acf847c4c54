"""voip-bootstrap: once per AWS account, before any voip-infra stage. Thin: validate the
config, then the state backend, the CI identities, the DNS apex and the security baseline."""

import sys
from pathlib import Path

# The bootstrap reuses the main program's schema helpers and policy statements (components/).
sys.path.insert(1, str(Path(__file__).resolve().parent.parent))

import pulumi  # noqa: E402
import pulumi_aws as aws  # noqa: E402
from account.baseline import BaselineArgs, SecurityBaseline  # noqa: E402
from account.config import PROJECT, ConfigError, load_bootstrap_config  # noqa: E402
from account.github import GithubCi, GithubCiArgs  # noqa: E402
from account.people import PeopleRoles  # noqa: E402
from account.state import PulumiState, PulumiStateArgs, secrets_provider_url  # noqa: E402

from components.config_loader import raw_stack_config  # noqa: E402

try:
    cfg = load_bootstrap_config(pulumi.get_stack(), raw_stack_config(PROJECT))
except ConfigError as exc:
    for line in exc.lines:
        pulumi.log.error(line)
    raise pulumi.RunError("invalid stack config:\n" + "\n".join(exc.lines)) from None

provider = aws.Provider(
    "aws",
    region=cfg.region,
    # The same tag keys as the stages' (the policy pack checks them); `stage` names the account stack.
    default_tags=aws.ProviderDefaultTagsArgs(
        tags={
            "project": "voip-infra",
            "stage": f"account-{cfg.stack}",
            "managed-by": "pulumi:voip-bootstrap",
            "owner": cfg.owner,
            "cost-center": cfg.cost_center,
        }
    ),
)
opts = pulumi.ResourceOptions(providers=[provider])
account_id = aws.get_caller_identity(opts=pulumi.InvokeOptions(provider=provider)).account_id

state = PulumiState(
    "state",
    PulumiStateArgs(
        account_id=account_id,
        region=cfg.region,
        stages=cfg.stages,
        noncurrent_version_expiration_days=cfg.state.noncurrent_version_expiration_days,
        abort_incomplete_multipart_days=cfg.state.abort_incomplete_multipart_days,
    ),
    opts,
)
baseline = SecurityBaseline("baseline", BaselineArgs(account_id=account_id, region=cfg.region, config=cfg.baseline), opts)
ci = GithubCi(
    "github",
    GithubCiArgs(
        account_id=account_id,
        region=cfg.region,
        repository=cfg.github.repository,
        stages=cfg.stages,
        create_oidc_provider=cfg.github.create_oidc_provider,
        codebuild_connection=cfg.github.codebuild_connection,
        state_bucket_arn=state.bucket_arn,
        state_key_arn=state.state_key.arn,
        secrets_key_arns={s: k.arn for s, k in state.secrets_keys.items()},
        guarded_key_arns=[state.state_key.arn, *(k.arn for k in state.secrets_keys.values())]
        + ([baseline.audit_key.arn] if baseline.audit_bucket is not None else []),
    ),
    opts,
)
people = PeopleRoles("people", account_id, opts)
if cfg.dns.apex_domain:
    # The apex zone exists before any stage: production serves it, the other stages delegate
    # their subdomains into it (edge.delegateFrom). Its name servers go to the registrar once.
    apex = aws.route53.Zone(
        "apex-zone",
        name=cfg.dns.apex_domain,
        comment="voip-infra apex zone (voip-bootstrap); stages delegate their subdomains here",
        force_destroy=False,
        opts=pulumi.ResourceOptions(provider=provider, protect=True),
    )
    pulumi.export("apexZoneId", apex.zone_id)
    pulumi.export("apexNameServers", apex.name_servers)

pulumi.export("backendUrl", state.bucket.bucket.apply(lambda b: f"s3://{b}"))
pulumi.export("secretsProviders", {s: secrets_provider_url(s, cfg.region) for s in cfg.stages})
pulumi.export("previewRoleArns", {s: r.arn for s, r in ci.preview_roles.items()})
pulumi.export("peopleRoleArns", {n: r.arn for n, r in people.roles.items()})
pulumi.export("deployRoleArns", {s: r.arn for s, r in ci.deploy_roles.items()})
if ci.connection is not None:
    pulumi.export("codebuildConnectionArn", ci.connection.arn)
