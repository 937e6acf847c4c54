"""CloudFront: the only public HTTP(S) entrance (seed 002: "every public address through
CloudFront, WAF attached").

One distribution answers the apex domain and every ALB host (`api.`, `admin.`, ...):
  /files/*   -> the file bucket (origin access control), when the storage tier gives it
  /api/*     -> the ALB, no caching, viewer headers (and Host) forwarded
  /ws*       -> the ALB, same (WebSocket upgrades pass through CloudFront)
  default    -> the static web bucket (origin access control, no public bucket)
Every behaviour redirects HTTP to HTTPS and adds the security headers of seed 001's nginx.

The ALB routes by host, so CloudFront forwards the viewer's Host header (managed
AllViewer origin request policy): with AllViewerExceptHostHeader every request would
reach the ALB as one origin host and its host rules could not tell api from admin. The
ALB's wildcard certificate matches every forwarded host, which is what CloudFront checks.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from components.buckets import cloudfront_may
from components.config import CDN_ALB_PATHS, EdgeConfig
from components.context import StageContext
from components.data.keys import cdn_log_bucket_name
from components.data.storage import FILES_KEY_PREFIX
from components.edge.edge import LOG_NONCURRENT_DAYS
from components.edge.edge_buckets import EdgeBucket, EdgeBucketArgs, log_bucket_args

# AWS managed policies, by their documented fixed ids (no lookup invoke needed).
CACHING_OPTIMIZED = "658327ea-f89d-4fab-a63d-7e88639e58f6"
CACHING_DISABLED = "4135ea2d-6df8-44a3-9df3-4b5a84be39ad"
ALL_VIEWER = "216adef6-5c7f-47e4-b989-5492eafa07d3"
CORS_S3_ORIGIN = "88a5eaf4-2fd4-4709-b370-b4c650ea3fcf"
HSTS_MAX_AGE = 31_536_000  # one year
ALL_METHODS = ["GET", "HEAD", "OPTIONS", "PUT", "POST", "PATCH", "DELETE"]


def _nlb_urn(cdn_urn: str, stage: str) -> str:
    """The URN the stage's NLB had (a sibling of this component, components/edge/edge.py):
    the parent of its ws.<domain> record before signaling moved to CloudFront."""
    head, types, _name = cdn_urn.rsplit("::", 2)
    edge_types = types.removesuffix("voip:edge:Cdn") + "voip:edge:Edge$aws:lb/loadBalancer:LoadBalancer"
    return f"{head}::{edge_types}::{stage}-nlb"


@dataclass
class CdnArgs:
    """CloudFront in front of the ALB (reached with the origin secret) and the web bucket, under
    the us-east-1 certificate and WAF."""

    ctx: StageContext
    config: EdgeConfig
    zone_id: pulumi.Input[str]
    # us-east-1 certificate for `domain` and `*.domain` (validated).
    certificate_arn: pulumi.Input[str]
    # WAFv2 web ACL (scope CLOUDFRONT): CloudFront takes its ARN as `web_acl_id`.
    web_acl_arn: pulumi.Input[str]
    alb_dns_name: pulumi.Input[str]
    origin_header_name: str
    origin_secret_value: pulumi.Input[str]
    # S3 server access logs of the web bucket: (target bucket, prefix); None: off.
    access_log_target: tuple[pulumi.Input[str], str] | None = None
    # The storage tier's file bucket, served at /files/*; None: no such behaviour.
    files_bucket_regional_domain_name: pulumi.Input[str] | None = None
    # More names the distribution answers whose DNS records another component owns (the
    # migration's weighted cutover name): aliases here, no A/AAAA records from this component.
    extra_aliases: Sequence[str] = ()
    # The CloudFront VPC origin of an internal ALB (Edge.alb_vpc_origin_id); None: the ALB is
    # internet-facing and reached as a custom origin.
    alb_vpc_origin_id: pulumi.Input[str] | None = None


class Cdn(pulumi.ComponentResource):
    """Attributes: `distribution_arn`, `distribution_id`, `distribution_domain_name`, `distribution_hosted_zone_id`,
    `web_bucket_name`, `public_urls` (host -> https URL), `response_headers_policy_id`."""

    def __init__(self, name: str, args: CdnArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("voip:edge:Cdn", name, None, opts)
        stage = args.ctx.stage
        child = pulumi.ResourceOptions(parent=self)
        account = pulumi.Output.from_input(args.ctx.account_id)

        # CloudFront standard logging (legacy S3 delivery): the bucket must accept ACLs, as
        # CloudFront grants its awslogsdelivery account write access through the bucket ACL
        # when the distribution is created. Region-local bucket, SSE-KMS with the data key (whose
        # policy lets the log-delivery service generate data keys for this bucket), versioned,
        # expiring.
        self.log_bucket = EdgeBucket(
            f"{stage}-cdn-logs",
            log_bucket_args(
                account.apply(lambda a: cdn_log_bucket_name(stage, a)),
                args.config.log_retention_days,
                LOG_NONCURRENT_DAYS,
                args.ctx.protect,
                object_ownership="BucketOwnerPreferred",
                # The data key: its policy lets the log-delivery service generate data keys here.
                kms_key_arn=args.ctx.data_key_arn,
            ),
            parent=self,
        )

        # Static web: private, versioned (a bad deploy can be rolled back), read by CloudFront
        # only, through origin access control scoped to this distribution.
        self.web_bucket = EdgeBucket(
            f"{stage}-web",
            EdgeBucketArgs(
                bucket_name=account.apply(lambda a: f"{stage}-voip-web-{a}"),
                # The data key: its policy lets CloudFront (origin access control) decrypt.
                kms_key_arn=args.ctx.data_key_arn,
                versioned=True,
                noncurrent_days=30,
                access_log_target=(
                    (args.access_log_target[0], f"{args.access_log_target[1]}web/") if args.access_log_target is not None else None
                ),
                force_destroy=not args.ctx.protect,
                statements=lambda arn, dist_arn: [
                    cloudfront_may("CloudFrontReadsThroughOac", "s3:GetObject", f"{arn}/*", dist_arn),
                    # With ListBucket a missing object is a 404, not a 403.
                    cloudfront_may("CloudFrontListsThroughOac", "s3:ListBucket", arn, dist_arn),
                ],
            ),
            parent=self,
            defer_policy=True,
        )
        self.oac = aws.cloudfront.OriginAccessControl(
            f"{stage}-web-oac",
            name=f"{stage}-voip-s3",
            description=f"{stage}: CloudFront reads the private S3 origins (SigV4)",
            origin_access_control_origin_type="s3",
            signing_behavior="always",
            signing_protocol="sigv4",
            opts=child,
        )

        self.headers_policy = aws.cloudfront.ResponseHeadersPolicy(
            f"{stage}-security-headers",
            name=f"{stage}-voip-security-headers",
            comment="seed 001 nginx security headers",
            security_headers_config={
                "strict_transport_security": {
                    "access_control_max_age_sec": HSTS_MAX_AGE,
                    "include_subdomains": True,
                    "preload": False,  # preload is hard to undo: an explicit decision, not a default
                    "override": True,
                },
                "content_security_policy": {"content_security_policy": args.config.content_security_policy, "override": True},
                "frame_options": {"frame_option": "DENY", "override": True},
                "content_type_options": {"override": True},
                "referrer_policy": {"referrer_policy": "strict-origin-when-cross-origin", "override": True},
                "xss_protection": {"protection": True, "mode_block": True, "override": True},
            },
            opts=child,
        )

        web_origin, alb_origin, files_origin = "web", "alb", "files"
        timeouts = {"origin_read_timeout": 60, "origin_keepalive_timeout": 60}
        # An internal ALB through its VPC origin (protocol, ports and TLS live on the VPC origin);
        # an internet-facing one as a custom origin. The secret header either way: inside the
        # VPC anything could otherwise reach the listener.
        reach = (
            {"vpc_origin_config": {"vpc_origin_id": args.alb_vpc_origin_id, **timeouts}}
            if args.alb_vpc_origin_id is not None
            else {
                "custom_origin_config": {
                    "http_port": 80,
                    "https_port": 443,
                    "origin_protocol_policy": "https-only",
                    "origin_ssl_protocols": ["TLSv1.2"],
                    **timeouts,
                }
            }
        )
        origins = [
            {
                "origin_id": web_origin,
                "domain_name": self.web_bucket.bucket.bucket_regional_domain_name,
                "origin_access_control_id": self.oac.id,
            },
            {
                "origin_id": alb_origin,
                "domain_name": args.alb_dns_name,
                **reach,
                "custom_headers": [{"name": args.origin_header_name, "value": args.origin_secret_value}],
            },
        ]

        def alb_behavior(path: str) -> dict:
            return {
                "path_pattern": path,
                "target_origin_id": alb_origin,
                "viewer_protocol_policy": "redirect-to-https",
                "allowed_methods": ALL_METHODS,
                "cached_methods": ["GET", "HEAD"],
                "cache_policy_id": CACHING_DISABLED,
                "origin_request_policy_id": ALL_VIEWER,
                "response_headers_policy_id": self.headers_policy.id,
                "compress": True,
            }

        behaviors = []
        if args.files_bucket_regional_domain_name is not None:
            origins.append(
                {
                    "origin_id": files_origin,
                    "domain_name": args.files_bucket_regional_domain_name,
                    "origin_access_control_id": self.oac.id,
                }
            )
            behaviors.append(
                {
                    "path_pattern": f"/{FILES_KEY_PREFIX}*",  # the URL path is the key
                    "target_origin_id": files_origin,
                    "viewer_protocol_policy": "redirect-to-https",
                    "allowed_methods": ["GET", "HEAD", "OPTIONS"],
                    "cached_methods": ["GET", "HEAD"],
                    "cache_policy_id": CACHING_OPTIMIZED,
                    "origin_request_policy_id": CORS_S3_ORIGIN,
                    "response_headers_policy_id": self.headers_policy.id,
                    "compress": True,
                }
            )
        behaviors += [alb_behavior(p) for p in CDN_ALB_PATHS]

        # Each ALB host `<label>.<domain>` is an alias of the distribution; so is ws.<domain>
        # when signaling enters here (its /ws* reaches the ALB's ws rule, not the NLB).
        self.aliases = [args.config.domain, *[f"{h.name}.{args.config.domain}" for h in args.config.alb_hosts]]
        ws_alias = [f"ws.{args.config.domain}"] if args.config.signaling_entry == "cdn" else []
        self.distribution = aws.cloudfront.Distribution(
            f"{stage}-cdn",
            enabled=True,
            comment=f"{stage}: voip edge",
            aliases=[*self.aliases, *ws_alias, *args.extra_aliases],
            # Off where a restricted allow-list has no IPv6 range (EdgeConfig.cdn_ipv6).
            is_ipv6_enabled=args.config.cdn_ipv6,
            http_version="http2and3",
            price_class=args.config.price_class,  # 200 or All: PriceClass_100 does not serve Korea from Asian edges
            web_acl_id=args.web_acl_arn,
            default_root_object="index.html",
            origins=origins,
            default_cache_behavior={
                "target_origin_id": web_origin,
                "viewer_protocol_policy": "redirect-to-https",
                "allowed_methods": ["GET", "HEAD", "OPTIONS"],
                "cached_methods": ["GET", "HEAD"],
                "cache_policy_id": CACHING_OPTIMIZED,
                "response_headers_policy_id": self.headers_policy.id,
                "compress": True,
            },
            ordered_cache_behaviors=behaviors,
            viewer_certificate={
                "acm_certificate_arn": args.certificate_arn,
                "ssl_support_method": "sni-only",
                "minimum_protocol_version": "TLSv1.2_2021",
            },
            restrictions={"geo_restriction": {"restriction_type": "none"}},
            logging_config={
                "bucket": self.log_bucket.bucket.bucket_domain_name,
                "prefix": "cloudfront/",
                "include_cookies": False,
            },
            tags={"Name": f"{stage}-cdn"},
            # CloudFront writes the log-delivery grant into the bucket ACL: ACLs must be on first.
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self.log_bucket.ownership]),
        )
        self.web_bucket.attach_policy(self.distribution.arn)

        # Public names: A (and AAAA where IPv6 is on) aliases to the distribution.
        for host in [*self.aliases, *ws_alias]:
            label = "apex" if host == args.config.domain else host.split(".", 1)[0]
            for rtype in ("A", "AAAA") if args.config.cdn_ipv6 else ("A",):
                # ws.<domain>'s A record was the NLB's child: same record, updated in place.
                moved = [pulumi.Alias(parent=self.urn.apply(lambda u: _nlb_urn(u, stage)))] if host in ws_alias and rtype == "A" else []
                aws.route53.Record(
                    f"{stage}-{label}-{rtype.lower()}",
                    zone_id=args.zone_id,
                    name=host,
                    type=rtype,
                    aliases=[
                        {
                            "name": self.distribution.domain_name,
                            "zone_id": self.distribution.hosted_zone_id,
                            "evaluate_target_health": False,
                        }
                    ],
                    opts=pulumi.ResourceOptions(parent=self.distribution, aliases=moved),
                )

        self.distribution_arn = self.distribution.arn
        self.distribution_id = self.distribution.id
        self.distribution_domain_name = self.distribution.domain_name
        self.distribution_hosted_zone_id = self.distribution.hosted_zone_id
        self.web_bucket_name = self.web_bucket.bucket.bucket
        self.response_headers_policy_id = self.headers_policy.id
        self.public_urls = {("apex" if h == args.config.domain else h.split(".", 1)[0]): f"https://{h}" for h in self.aliases}
        self.register_outputs(
            {
                "distributionArn": self.distribution.arn,
                "distributionDomainName": self.distribution.domain_name,
                "webBucketName": self.web_bucket_name,
                "publicUrls": self.public_urls,
            }
        )
