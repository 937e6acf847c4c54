"""The stage's DNS: its Route53 zone (created, or an existing one by id) and the ACM
certificates the edge terminates TLS with, validated through DNS records in that zone.

Two certificates for the same names (`domain` and `*.domain`): one in the stage region
for the ALB and the NLB, one in us-east-1 because CloudFront only takes certificates from
there. The us-east-1 provider is an explicit argument and only that certificate (and its
validation) uses it.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from components.cloudwatch import log_group
from components.config import EdgeConfig
from components.context import StageContext
from components.iam import policy_document


@dataclass
class DnsArgs:
    ctx: StageContext
    # domain, and hostedZoneId: an existing public zone, or None to create one (owned by the stage).
    config: EdgeConfig
    # The us-east-1 edge-logs key: Route 53 query logging of the public zone into a us-east-1
    # log group encrypted with it. None: no query logs.
    query_log_kms_key_arn: pulumi.Input[str] | None = None


class Dns(pulumi.ComponentResource):
    """Zone + DNS-validated certificates.

    Attributes: `zone_id`, `domain`, `name_servers` (empty when the zone is not ours),
    `regional_certificate_arn` and `cloudfront_certificate_arn` (both resolve only after
    validation, so listeners and the distribution wait for an issued certificate).
    """

    def __init__(self, name: str, args: DnsArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("voip:edge:Dns", name, None, opts)
        stage = args.ctx.stage
        self.domain = args.config.domain
        child = pulumi.ResourceOptions(parent=self)

        if args.config.hosted_zone_id is None and not args.config.existing_zone:
            self.zone: aws.route53.Zone | None = aws.route53.Zone(
                f"{stage}-zone",
                name=args.config.domain,
                comment=f"voip-infra {stage}: public zone (delegate its name servers from the parent domain)",
                # Records other tools add must not be wiped by a destroy.
                force_destroy=False,
                opts=pulumi.ResourceOptions(parent=self, protect=args.ctx.protect),
            )
            self.zone_id: pulumi.Output[str] = self.zone.zone_id
            self.name_servers: pulumi.Output[list[str]] = self.zone.name_servers
        elif args.config.existing_zone:
            # voip-bootstrap's apex zone: it exists before any stage (production serves it).
            self.zone = None
            found = aws.route53.get_zone_output(name=args.config.domain, private_zone=False, opts=pulumi.InvokeOutputOptions(parent=self))
            self.zone_id = found.zone_id
            self.name_servers = found.name_servers
        else:
            self.zone = None
            self.zone_id = pulumi.Output.from_input(args.config.hosted_zone_id)
            self.name_servers = pulumi.Output.from_input([])

        # The stage delegates its own zone: no hand-made NS record, no order between stages
        # (the parent exists before any stage: voip-bootstrap's apex zone, or the template's zone).
        self.delegation: aws.route53.Record | None = None
        if args.config.delegate_from is not None and self.zone is not None:
            parent = aws.route53.get_zone_output(
                name=args.config.delegate_from, private_zone=False, opts=pulumi.InvokeOutputOptions(parent=self)
            )
            self.delegation = aws.route53.Record(
                f"{stage}-delegation",
                zone_id=parent.zone_id,
                name=args.config.domain,
                type="NS",
                ttl=3600,
                records=self.zone.name_servers,
                opts=pulumi.ResourceOptions(parent=self.zone, protect=False),
            )

        self.query_log_group: aws.cloudwatch.LogGroup | None = None
        if args.query_log_kms_key_arn is not None:
            self._query_logging(stage, args)

        names = [args.config.domain, f"*.{args.config.domain}"]
        # The regional one (ALB, NLB) and CloudFront's, which takes certificates from us-east-1 only.
        regional, cloudfront = (
            aws.acm.Certificate(
                f"{stage}-{label}",
                domain_name=names[0],
                subject_alternative_names=names[1:],
                validation_method="DNS",
                key_algorithm="RSA_2048",  # what every client (old Android WebViews too) accepts
                opts=opts,
            )
            for label, opts in (("wildcard", child), ("cloudfront", pulumi.ResourceOptions(parent=self, provider=args.ctx.us_east_1)))
        )
        # ACM derives the validation CNAME from the base name and the account: `domain` and
        # `*.domain` share it, and so do the two certificates (any region). So ONE record,
        # owned by one resource, validates both now and keeps renewing both later.
        dvo = regional.domain_validation_options.apply(lambda opts_: next(o for o in opts_ if o.domain_name == names[0]))
        self.validation_record = aws.route53.Record(
            f"{stage}-acm-validation",
            zone_id=self.zone_id,
            name=dvo.resource_record_name,
            type=dvo.resource_record_type,
            records=[dvo.resource_record_value],
            ttl=300,
            # Adopt the record if an earlier certificate of this account already created it.
            allow_overwrite=True,
            opts=child,
        )
        fqdns = [self.validation_record.fqdn]
        # ACM can only see the validation record once the zone is delegated.
        delegated = [self.delegation] if self.delegation is not None else []
        # The validations resolve once ACM has issued: listeners and the distribution wait for them.
        self.regional_certificate_arn = aws.acm.CertificateValidation(
            f"{stage}-wildcard-validated",
            certificate_arn=regional.arn,
            validation_record_fqdns=fqdns,
            opts=pulumi.ResourceOptions(parent=regional, depends_on=delegated),
        ).certificate_arn
        self.cloudfront_certificate_arn = aws.acm.CertificateValidation(
            f"{stage}-cloudfront-validated",
            certificate_arn=cloudfront.arn,
            validation_record_fqdns=fqdns,
            opts=pulumi.ResourceOptions(parent=cloudfront, provider=args.ctx.us_east_1, depends_on=delegated),
        ).certificate_arn

        self.register_outputs(
            {
                "queryLogGroup": self.query_log_group.name if self.query_log_group is not None else None,
                "zoneId": self.zone_id,
                "domain": self.domain,
                "nameServers": self.name_servers,
                "regionalCertificateArn": self.regional_certificate_arn,
                "cloudfrontCertificateArn": self.cloudfront_certificate_arn,
            }
        )

    def _query_logging(self, stage: str, args: DnsArgs) -> None:
        """Who asked for which name (resolver edge, type, response code): Route 53 publishes public
        zone query logs only to a us-east-1 log group, through a CloudWatch Logs resource policy
        there that admits route53.amazonaws.com (an account has at most 10 such policies per region:
        one per stage, scoped to this stage's group)."""
        east = pulumi.ResourceOptions(parent=self, provider=args.ctx.us_east_1)
        name = f"/aws/route53/{args.config.domain}"
        self.query_log_group = log_group(f"{stage}-dns-query-logs", name, args.config.log_retention_days, args.query_log_kms_key_arn, east)
        policy = aws.cloudwatch.LogResourcePolicy(
            f"{stage}-dns-query-logs-policy",
            policy_name=f"{stage}-route53-query-logs",
            policy_document=pulumi.Output.all(self.query_log_group.arn, args.ctx.account_id).apply(
                lambda v: policy_document(
                    [
                        {
                            "Sid": "Route53QueryLogs",
                            "Effect": "Allow",
                            "Principal": {"Service": "route53.amazonaws.com"},
                            "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
                            "Resource": f"{v[0]}:*",
                            "Condition": {"StringEquals": {"aws:SourceAccount": v[1]}},
                        }
                    ]
                )
            ),
            opts=east,
        )
        aws.route53.QueryLog(
            f"{stage}-dns-query-log",
            zone_id=self.zone_id,
            cloudwatch_log_group_arn=self.query_log_group.arn,
            # Route 53 checks it may write when the config is created.
            opts=pulumi.ResourceOptions(parent=self, provider=args.ctx.us_east_1, depends_on=[policy]),
        )
