"""The WAFv2 web ACL in front of CloudFront (scope CLOUDFRONT, so it lives in us-east-1).

Rule order (lower priority number runs first; allow and block end the evaluation):
  1-4   AWS managed groups: IP reputation, common rule set, known bad inputs, SQLi (behind an
        allow-list without a load-test bypass, no IP reputation: it could only ever block
        the allow-listed office/VPN addresses, everyone else meets the default block)
  5     load-test bypass (only where the stage enables it): a request carrying the
        secret token is allowed here, i.e. after the managed groups (it still gets
        inspected) but before the rate limits and the allow-list (seed 001's "K6 bypass")
  10-12 rate limits per client IP reproducing seed 001's nginx zones: auth, WebSocket,
        general (everything else); off where an allow-listed stage says so (rateLimits.enabled)
  20    allow-list (dev and clones): source ranges that pass, one IP set per address family
        (CloudFront serves IPv4 and IPv6 viewers); default action block
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws

from components.cloudwatch import log_group
from components.config import EdgeConfig
from components.context import StageContext

# WAF accepts only these evaluation windows, and no limit below 10.
EVALUATION_WINDOWS = (60, 120, 300, 600)
MIN_RATE_LIMIT = 10
BYPASS_HEADER = "x-load-test-token"
MANAGED_GROUPS = (
    # (priority, name, rules set to count instead of block, why)
    (1, "AWSManagedRulesAmazonIpReputationList", ()),
    # Bodies over 8 KB are legitimate for the API (JSON payloads, chat attachments metadata):
    # counted, not blocked; the rest of the common set blocks.
    (2, "AWSManagedRulesCommonRuleSet", ("SizeRestrictions_BODY",)),
    (3, "AWSManagedRulesKnownBadInputsRuleSet", ()),
    (4, "AWSManagedRulesSQLiRuleSet", ()),
)
# Groups that judge the source address, not the request: redundant where only allow-listed
# sources pass (they could only block those), unless a bypass admits token holders from anywhere.
SOURCE_GROUPS = frozenset({"AWSManagedRulesAmazonIpReputationList"})


def rate_window(requests: int, per_seconds: int) -> tuple[int, int]:
    """(limit, evaluation window in s) expressing `requests` per `per_seconds` per IP.

    Exact where WAF can express it (a window from EVALUATION_WINDOWS and a limit >= 10):
    5/min -> (10, 120); 10/s -> (600, 60); 30/s -> (1800, 60). Otherwise the longest
    window with the limit rounded up (never stricter than asked).
    """
    for window in EVALUATION_WINDOWS:
        scaled = requests * window
        if scaled % per_seconds == 0 and scaled // per_seconds >= MIN_RATE_LIMIT:
            return scaled // per_seconds, window
    window = EVALUATION_WINDOWS[-1]
    return max(MIN_RATE_LIMIT, math.ceil(requests * window / per_seconds)), window


def path_regex(prefixes: Sequence[str]) -> str:
    """A regex matching URI paths that start with any of `prefixes` (lower-cased)."""
    return "^(" + "|".join(re.escape(p.lower()) for p in prefixes) + ")"


@dataclass
class WafArgs:
    ctx: StageContext
    # rateLimits, logRetentionDays, and allowList: the source CIDRs that alone pass when
    # restrictToAllowList (everyone else is blocked).
    config: EdgeConfig
    # The load-test token (a secret Output); None: no bypass rule.
    bypass_token: pulumi.Input[str] | None = None
    # The us-east-1 edge-logs key: the log group is encrypted with it (None: AWS-owned key).
    logs_kms_key_arn: pulumi.Input[str] | None = None


def _visibility(metric: str) -> dict[str, Any]:
    return {"cloudwatch_metrics_enabled": True, "sampled_requests_enabled": True, "metric_name": metric}


def _path_match(prefixes: Sequence[str]) -> dict[str, Any]:
    # A single regex leaf: TF's schema allows one level of and/or/not inside a scope-down
    # statement, so "not (auth or ws)" must not need an or_statement.
    return {
        "regex_match_statement": {
            "regex_string": path_regex(prefixes),
            "field_to_match": {"uri_path": {}},
            "text_transformations": [
                {"priority": 0, "type": "NORMALIZE_PATH"},  # //api/./auth is /api/auth
                {"priority": 1, "type": "LOWERCASE"},
            ],
        }
    }


class Waf(pulumi.ComponentResource):
    """Attributes: `web_acl_arn` (CloudFront's `web_acl_id`), `web_acl_id`, `web_acl_name`, `log_group_name`,
    `rate_limits` (name -> (limit, window))."""

    def __init__(self, name: str, args: WafArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("voip:edge:Waf", name, None, opts)
        stage = args.ctx.stage
        east = pulumi.ResourceOptions(parent=self, provider=args.ctx.us_east_1)
        prefix = f"{stage}-voip"

        rules: list[dict[str, Any]] = []
        only_listed_sources = args.config.restrict_to_allow_list and args.bypass_token is None
        for priority, group, counted in MANAGED_GROUPS:
            if only_listed_sources and group in SOURCE_GROUPS:
                continue
            rules.append(
                {
                    "name": group,
                    "priority": priority,
                    "override_action": {"none": {}},
                    "statement": {
                        "managed_rule_group_statement": {
                            "vendor_name": "AWS",
                            "name": group,
                            "rule_action_overrides": [{"name": r, "action_to_use": {"count": {}}} for r in counted],
                        }
                    },
                    "visibility_config": _visibility(f"{prefix}-{group}"),
                }
            )

        if args.bypass_token is not None:
            rules.append(
                {
                    "name": "load-test-bypass",
                    "priority": 5,
                    "action": {"allow": {}},
                    "statement": {
                        "byte_match_statement": {
                            "search_string": args.bypass_token,
                            "positional_constraint": "EXACTLY",
                            "field_to_match": {"single_header": {"name": BYPASS_HEADER}},
                            "text_transformations": [{"priority": 0, "type": "NONE"}],
                        }
                    },
                    "visibility_config": _visibility(f"{prefix}-load-test-bypass"),
                }
            )

        self.rate_limits = self._rate_rules(args.config, prefix, rules) if args.config.rate_limits.enabled else {}
        # One IP set per address family (a WAF IP set holds one family): IPv4 always, IPv6 when
        # the list names IPv6 ranges; one allow rule references both. Where it names none the
        # CDN has IPv6 off (EdgeConfig.cdn_ipv6), so no viewer arrives over an uncovered family.
        self.ip_sets: dict[str, aws.wafv2.IpSet] = {}
        if args.config.restrict_to_allow_list:
            families = {"IPV4": args.config.allow_list_v4}
            if args.config.allow_list_v6:
                families["IPV6"] = args.config.allow_list_v6
            for family, addresses in families.items():
                suffix = "" if family == "IPV4" else "-v6"  # the IPv4 set keeps its URN
                self.ip_sets[family] = aws.wafv2.IpSet(
                    f"{stage}-waf-allow-list{suffix}",
                    name=f"{prefix}-allow-list{suffix}",
                    description=f"{stage}: {family} source ranges allowed through the edge",
                    scope="CLOUDFRONT",
                    ip_address_version=family,
                    addresses=addresses,
                    opts=east,
                )
            refs = [{"ip_set_reference_statement": {"arn": ip_set.arn}} for ip_set in self.ip_sets.values()]
            rules.append(
                {
                    "name": "allow-list",
                    "priority": 20,
                    "action": {"allow": {}},
                    "statement": refs[0] if len(refs) == 1 else {"or_statement": {"statements": refs}},
                    "visibility_config": _visibility(f"{prefix}-allow-list"),
                }
            )
        self.ip_set = self.ip_sets.get("IPV4")

        self.web_acl = aws.wafv2.WebAcl(
            f"{stage}-web-acl",
            name=f"{prefix}-edge",
            # WAF descriptions take no parentheses or quotes.
            description=f"{stage}: CloudFront edge, managed groups"
            + (", seed 001 rate limits" if self.rate_limits else "")
            + (", allow-list only" if args.config.restrict_to_allow_list else ""),
            scope="CLOUDFRONT",
            default_action={"block": {}} if args.config.restrict_to_allow_list else {"allow": {}},
            rules=rules,
            visibility_config=_visibility(f"{prefix}-edge"),
            opts=east,
        )

        # CloudWatch Logs destination: the name must start with aws-waf-logs-, and it must be
        # in the web ACL's region. WAF adds the log-delivery resource policy itself.
        self.log_group = log_group(
            f"{stage}-waf-logs", f"aws-waf-logs-{prefix}-edge", args.config.log_retention_days, args.logs_kms_key_arn, east
        )
        redacted = [{"single_header": {"name": "authorization"}}, {"single_header": {"name": "cookie"}}]
        if args.bypass_token is not None:
            redacted.append({"single_header": {"name": BYPASS_HEADER}})
        aws.wafv2.WebAclLoggingConfiguration(
            f"{stage}-waf-logging",
            resource_arn=self.web_acl.arn,
            log_destination_configs=[self.log_group.arn],
            redacted_fields=redacted,
            # Keep what WAF acted on; allowed requests are in the CloudFront access logs.
            logging_filter={
                "default_behavior": "DROP",
                "filters": [
                    {
                        "behavior": "KEEP",
                        "requirement": "MEETS_ANY",
                        "conditions": [
                            {"action_condition": {"action": "BLOCK"}},
                            {"action_condition": {"action": "COUNT"}},
                            {"action_condition": {"action": "EXCLUDED_AS_COUNT"}},
                        ],
                    }
                ],
            },
            opts=pulumi.ResourceOptions(parent=self.web_acl, provider=args.ctx.us_east_1),
        )

        self.web_acl_arn = self.web_acl.arn
        self.web_acl_id = self.web_acl.id
        # CloudWatch's WebACL dimension: the ACL's name, which is also its metric name here.
        self.web_acl_name = self.web_acl.name
        self.log_group_name = self.log_group.name
        self.register_outputs({"webAclArn": self.web_acl.arn, "logGroupName": self.log_group.name})

    @staticmethod
    def _rate_rules(config: EdgeConfig, prefix: str, rules: list[dict[str, Any]]) -> dict[str, tuple[int, int]]:
        """Append seed 001's three per-IP rate rules; returns name -> (limit, window)."""
        limits = config.rate_limits
        rate_limits = {
            "auth": rate_window(limits.auth_per_minute, 60),
            "websocket": rate_window(limits.websocket_per_second, 1),
            "general": rate_window(limits.general_per_second, 1),
        }
        scope_downs = {
            "auth": _path_match(limits.auth_paths),
            "websocket": _path_match(limits.websocket_paths),
            # nginx's general zone covered every location the other two did not.
            "general": {"not_statement": {"statement": _path_match([*limits.auth_paths, *limits.websocket_paths])}},
        }
        for priority, key in ((10, "auth"), (11, "websocket"), (12, "general")):
            limit, window = rate_limits[key]
            rules.append(
                {
                    "name": f"rate-{key}",
                    "priority": priority,
                    # 429 like nginx's limit_req_status, so clients back off instead of failing.
                    "action": {"block": {"custom_response": {"response_code": 429}}},
                    "statement": {
                        "rate_based_statement": {
                            "limit": limit,
                            "evaluation_window_sec": window,
                            "aggregate_key_type": "IP",  # at the CloudFront edge the source IP is the viewer's
                            "scope_down_statement": scope_downs[key],
                        }
                    },
                    "visibility_config": _visibility(f"{prefix}-rate-{key}"),
                }
            )
        return rate_limits
