"""The AWS quotas each stage needs (tools/quotas.py, issue 15 item 2): counted from the plan,
checked against the defaults, printed by `tools plan` and listed in README's first-run steps; each
count proven on a planted overrun."""

from __future__ import annotations

import copy
import re

import pytest

from tests.conftest import ROOT
from tests.harness import STACKS, stack_plan
from tools import quotas
from tools.plan import render_checks

# What each stage must have raised before its first `pulumi up` (quota code -> needed).
EXPECTED_RAISES = {"dev": {}, "nas-migration": {}, "production": {"L-0263D0A3": 8}}


def _by_code(plan) -> dict[str, quotas.Usage]:
    return {u.quota.code or u.quota.name: u for u in quotas.usage(plan)}


def test_the_table_is_well_formed():
    codes = [q.code for q in quotas.QUOTAS if q.code]
    assert len(codes) == len(set(codes)) and all(re.fullmatch(r"L-[0-9A-F]{8}", c) for c in codes)
    assert {q.service for q in quotas.QUOTAS} == {"ec2", "vpc", "elasticloadbalancing", "wafv2", "eks", "rds"}
    # the list: EIPs, SGs per ENI, rules per SG, target groups per ALB, listener rules, WAF WCUs
    assert {"L-0263D0A3", "L-2AFB9258", "L-0EA8095F", "L-822D1B1B", "L-7EED9B64", "L-29B6F2EB"} <= set(codes)
    assert any(q.service == "wafv2" and q.default == 5000 and not q.adjustable for q in quotas.QUOTAS)


def test_each_stage_needs_only_the_raises_it_lists(plan):
    over = {u.quota.code: u.needed for u in quotas.to_raise(plan)}
    assert over == EXPECTED_RAISES[plan["stack"]]
    # nothing ever exceeds a limit that cannot be raised
    assert not [u for u in quotas.usage(plan) if u.over and not u.quota.adjustable]


def test_counts_match_the_plan():
    prod = _by_code(stack_plan("production"))
    assert (prod["L-0263D0A3"].needed, prod["L-0263D0A3"].where) == (8, "3 nat, 3 nlb, 2 turn")
    # the ALB's one rule referencing CloudFront's origin-facing prefix list weighs 55 of 60
    assert (prod["L-0EA8095F"].needed, prod["L-0EA8095F"].where) == (55, "production-alb-sg ingress ipv4")
    # managed groups 25 + 700 + 200 + 200; rate rules 2 + regex (3 + 2 transformations x 10) twice,
    # and 2 + not (1 + 23) for the general one
    assert prod["Web ACL capacity units (WCUs) per web ACL"].needed == 1125 + 25 + 25 + 26
    assert prod["L-7B6409FD"].needed == 2 and prod["L-5BC124EF"].needed == 1
    dev = _by_code(stack_plan("dev"))
    # dev: the content groups 700 + 200 + 200 (no reputation group, no rate rules behind its
    # allow-list) + the allow-list: an or_statement (1) of the IPv4 and IPv6 references (1 each)
    assert dev["Web ACL capacity units (WCUs) per web ACL"].needed == 1100 + 3
    assert dev["L-0263D0A3"].needed == 2


def test_every_counter_catches_a_planted_overrun():
    plan = copy.deepcopy(stack_plan("production"))
    res = plan["resources"]
    alb_sg = next(r for r in res if r["name"] == "production-alb-sg")
    alb_sg["props"]["ingress"].append({**alb_sg["props"]["ingress"][0], "fromPort": 8443, "toPort": 8443})  # a second prefix-list rule
    lt = next(r for r in res if r["name"] == "production-signaling-nodes-lt")
    lt["props"]["vpcSecurityGroupIds"] += ["sg-a", "sg-b", "sg-c", "sg-d"]
    acl = next(r for r in res if r["type"] == "aws:wafv2/webAcl:WebAcl")
    regex = acl["props"]["rules"][4]["statement"]["rateBasedStatement"]["scopeDownStatement"]
    acl["props"]["rules"] += [{"name": f"r{i}", "statement": regex} for i in range(170)]  # 170 x 23 WCUs
    https = next(r for r in res if r["name"] == "production-alb-https")
    rule = next(r for r in res if r["name"] == "production-api-rule")
    for i in range(100):
        res.append({**copy.deepcopy(rule), "name": f"extra-rule-{i}", "id": f"listenerrule-x{i}"})
        res[-1]["props"]["actions"] = [
            {"type": "forward", "targetGroupArn": f"arn:aws:elasticloadbalancing:ap-northeast-2:1:targetgroup/tg{i}/1"}
        ]
    assert https["props"]["loadBalancerArn"]
    # The ALB's own rules and groups (one per host) plus the 100 planted.
    hosts = len(stack_plan("production")["config"]["edge"]["albHosts"])
    over = {u.quota.code or u.quota.name: u.needed for u in quotas.to_raise(plan)}
    assert over == {
        "L-0263D0A3": 8,
        "L-0EA8095F": 110,
        "L-2AFB9258": 6,
        "Web ACL capacity units (WCUs) per web ACL": 1201 + 170 * 23,
        "L-7EED9B64": hosts + 100,
        "L-822D1B1B": hosts + 100,
    }
    lines = quotas.render_lines(plan)
    assert lines[0].startswith("quotas: 6 of 18 counted quotas need more than the AWS default")
    assert "  reduce (hard limit) Web ACL capacity units (WCUs) per web ACL (wafv2, not adjustable): needs 5111, limit 5000" in "\n".join(
        lines
    )


def test_an_unpriced_waf_statement_is_an_error_not_zero():
    with pytest.raises(ValueError, match="no WCU price for a xssMatchStatementV9"):
        quotas.statement_wcus({"xssMatchStatementV9": {}})


def test_tools_plan_prints_the_quotas_after_the_existing_lines():
    lines = render_checks(stack_plan("production"))
    assert lines[0].startswith("policy: ") and lines[1].startswith("monthly cost")  # the contract's lines, unchanged
    assert lines[2:4] == [
        "quotas: 1 of 18 counted quotas need more than the AWS default; before the first `pulumi up`:",
        "  raise EC2-VPC Elastic IPs (ec2 L-0263D0A3): needs 8, default 5 per region (3 nat, 3 nlb, 2 turn)",
    ]
    assert lines[4].startswith("first_up_minutes: ")  # then the time of a first `up` (tools/critical_path.py)
    dev = render_checks(stack_plan("dev"))
    assert dev[2] == "quotas: all 18 counted quotas fit the AWS defaults" and dev[3].startswith("first_up_minutes: ")


def test_readme_first_run_lists_every_quota_to_raise():
    readme = (ROOT / "README.md").read_text()
    first_run = readme[readme.index("## From an empty AWS account to a running dev stage") : readme.index("## CI")]
    for stack in STACKS:
        for u in quotas.to_raise(stack_plan(stack)):
            row = next((line for line in first_run.splitlines() if u.quota.code in line and stack in line), None)
            assert row is not None, f"README's first-run steps do not list {u.quota.code} for {stack}"
            assert f"{u.needed}" in row and f"default {u.quota.default}" in row, row
