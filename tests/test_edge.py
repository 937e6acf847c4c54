"""Edge tier under mocks: DNS/ACM, ALB, NLB, CloudFront, WAF (issue 4)."""

from __future__ import annotations

import copy
import json
import re

import pytest

from components.config import SIGNALING_RULE_PRIORITY
from components.config_loader import ConfigError, load_stack_config
from components.edge.waf import rate_window
from tests.harness import STACKS, config_errors, stack_plan, stack_raw, variant, with_overrides
from tests.resource_types import ALB, LISTENER, RULE, SG, TG

DIST = "aws:cloudfront/distribution:Distribution"
ACL = "aws:wafv2/webAcl:WebAcl"
CERT = "aws:acm/certificate:Certificate"
CERT_VALIDATION = "aws:acm/certificateValidation:CertificateValidation"
PROVIDER = "pulumi:providers:aws"
CACHING_DISABLED = "4135ea2d-6df8-44a3-9df3-4b5a84be39ad"
CLOUDFRONT_PREFIX_LIST = "pl-22a6434b"  # what the mocks answer for the origin-facing list


def cutover_names(plan) -> list[str]:
    """The NAS bridge's cutover name, served like the apex while the bridge is enabled."""
    mig = plan["config"].get("migration")
    return [f"{mig['cutoverHost']}.{plan['config']['edge']['domain']}"] if mig and mig["enabled"] else []


def stage(plan) -> str:
    return plan["stack"]


def edge_cfg(plan) -> dict:
    return plan["config"]["edge"]


def east_provider(plan) -> dict:
    (p,) = [r for r in plan.of_type(PROVIDER) if r["props"].get("region") == "us-east-1"]
    return p


def on_provider(plan, provider_urn: str) -> list[dict]:
    return [r for r in plan.resources if r["custom"] and r["provider"] == provider_urn]


def load_balancers(plan, kind: str) -> list[dict]:
    return [r for r in plan.of_type(ALB) if r["props"]["loadBalancerType"] == kind]


def the_alb(plan) -> dict:
    (alb,) = load_balancers(plan, "application")
    return alb


def the_nlb(plan) -> dict:
    (nlb,) = load_balancers(plan, "network")
    return nlb


def signaling_on_nlb(plan) -> bool:
    """edge.signalingEntry (omitted from the plan's config at its default, nlb)."""
    return edge_cfg(plan).get("signalingEntry", "nlb") == "nlb"


def turns_on_nlb(plan) -> bool:
    return plan["config"]["turn"].get("tlsEntry", "nlb") == "nlb"


def nlb_ports(plan) -> set[int]:
    """The NLB's listener ports: 443 (signaling) and 5349 (TURNS), each where it enters there."""
    return {port for port, on in ((443, signaling_on_nlb(plan)), (5349, turns_on_nlb(plan))) if on}


def listeners_of(plan, lb: dict) -> list[dict]:
    arn = f"loadbalancer/{'net' if lb['props']['loadBalancerType'] == 'network' else 'app'}/{lb['id']}/"
    return [r for r in plan.of_type(LISTENER) if arn in r["props"]["loadBalancerArn"]]


def tg_by_arn(plan, arn: str) -> dict:
    # The mocks build a target group's ARN from its name (the physical id when autonamed).
    return next(r for r in plan.of_type(TG) if f"targetgroup/{r['props'].get('name', r['id'])}/" in arn)


def the_acl(plan) -> dict:
    (acl,) = plan.of_type(ACL)
    return acl


def rules_by_name(plan) -> dict[str, dict]:
    return {r["name"]: r for r in the_acl(plan)["props"]["rules"]}


# ------------------------------------------------------------- providers and certificates


def test_us_east_1_provider_serves_only_the_cloudfront_certificate_and_the_waf(plan):
    east = east_provider(plan)
    # The edge alarms' us-east-1 topic, key and alarms: tests/test_edge_alarms.py.
    alarms = {r["urn"] for c in plan.of_type("voip:edge:EdgeAlarms") for r in plan.descendants(c["urn"])}
    users = [r for r in on_provider(plan, east["urn"]) if r["urn"] not in alarms]
    allowed = {
        CERT,
        CERT_VALIDATION,
        ACL,
        "aws:wafv2/ipSet:IpSet",
        "aws:wafv2/webAclLoggingConfiguration:WebAclLoggingConfiguration",
        "aws:cloudwatch/logGroup:LogGroup",
        # E-mail subscribers of the edge alarms' us-east-1 topic (components/alerting/notifications.py).
        "aws:sns/topicSubscription:TopicSubscription",
        # The us-east-1 key of those log groups, and Route 53 query logging (its group must be there).
        "aws:kms/key:Key",
        "aws:kms/alias:Alias",
        "aws:cloudwatch/logResourcePolicy:LogResourcePolicy",
        "aws:route53/queryLog:QueryLog",
    }
    assert {r["type"] for r in users} <= allowed
    # The ones that must be there: one certificate (+ its validation) and the web ACL.
    assert [r["type"] for r in users].count(CERT) == 1
    assert [r["type"] for r in users].count(ACL) == 1
    # The log groups in us-east-1: WAF's (WAF demands the prefix) and the zone's query logs.
    groups = sorted(r["props"]["name"] for r in users if r["type"] == "aws:cloudwatch/logGroup:LogGroup")
    assert len(groups) == 2 and groups[0] == f"/aws/route53/{plan['config']['edge']['domain']}" and groups[1].startswith("aws-waf-logs-")
    # The distribution uses the certificate validated through us-east-1, not the regional one.
    (east_validation,) = [r for r in users if r["type"] == CERT_VALIDATION]
    (dist,) = plan.of_type(DIST)
    assert dist["props"]["viewerCertificate"]["acmCertificateArn"] == east_validation["props"]["certificateArn"]
    east_cert = next(r for r in users if r["type"] == CERT)
    assert east_validation["props"]["certificateArn"].endswith(east_cert["id"])


def test_regional_wildcard_certificate_on_the_load_balancers(plan):
    domain = edge_cfg(plan)["domain"]
    east = east_provider(plan)["urn"]
    (regional,) = [r for r in plan.of_type(CERT) if r["provider"] != east]
    assert regional["props"]["domainName"] == domain
    assert regional["props"]["subjectAlternativeNames"] == [f"*.{domain}"]
    assert regional["props"]["validationMethod"] == "DNS"
    validation = next(r for r in plan.of_type(CERT_VALIDATION) if r["provider"] != east)
    tls = [r for r in plan.of_type(LISTENER) if r["props"]["protocol"] in ("HTTPS", "TLS")]
    assert len(tls) == 1 + len(nlb_ports(plan))  # ALB 443, NLB 443 and 5349 where they are on it
    assert {r["props"]["certificateArn"] for r in tls} == {validation["props"]["certificateArn"]}
    # One validation record (apex and wildcard, and both regions, share it) validates both.
    (record,) = [r for r in plan.of_type("aws:route53/record:Record") if r["name"].endswith("-acm-validation")]
    for v in plan.of_type(CERT_VALIDATION):
        assert len(v["props"]["validationRecordFqdns"]) == 1
    assert record["props"]["type"] == "CNAME"


# ------------------------------------------------------------------------------- ALB


def test_exactly_one_alb_and_an_nlb_where_a_listener_needs_it(plan):
    assert len(load_balancers(plan, "application")) == 1
    assert len(load_balancers(plan, "network")) == (1 if nlb_ports(plan) else 0)


ELB_NAME = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,30}[A-Za-z0-9])?")


def test_load_balancer_and_target_group_names_fit_elb_limits(plan):
    # Autonamed ELB resources get `<logical name>-<7 random>`, and Pulumi fails the preview when
    # that passes 32 characters (nas-migration-signaling-tg did); explicit names must fit too.
    for r in plan.of_type(ALB) + plan.of_type(TG):
        name = r["props"].get("name") or f"{r['name']}-abcdef0"
        assert ELB_NAME.fullmatch(name), (r["name"], name)
    tgs = plan.of_type(TG)
    assert all("name" in tg["props"] for tg in tgs), "target groups carry an explicit name that fits"
    assert len({tg["props"]["name"] for tg in tgs}) == len(tgs)
    assert all(tg["props"]["name"].startswith(f"{stage(plan)}-"[:24]) for tg in tgs)


def test_target_group_names_fit_the_longest_stage_and_change_on_replacement():
    from components.edge.edge import elb_name

    stage_, host = "a" * 19 + "z", "h" * 32  # the longest stage (20) and ALB host label (32)
    name = elb_name(stage_, host, "vpc-1", "ip", "HTTP", "HTTP1", 8080)
    assert ELB_NAME.fullmatch(name) and len(name) == 32
    # Deterministic (no diff on the next `pulumi up`), and a new name when the group must be
    # replaced, so the replacement can be created before the old one (in use) is deleted.
    assert name == elb_name(stage_, host, "vpc-1", "ip", "HTTP", "HTTP1", 8080)
    assert name != elb_name(stage_, host, "vpc-1", "ip", "HTTP", "HTTP1", 8081)
    assert name != elb_name(stage_, host, "vpc-2", "ip", "HTTP", "HTTP1", 8080)
    assert elb_name("dev", "api", "vpc-1").startswith("dev-api-")


def test_alb_security_group_admits_only_the_cloudfront_prefix_list(plan):
    alb = the_alb(plan)
    (sg_id,) = alb["props"]["securityGroups"]
    sg = plan.by_id(sg_id)
    assert sg["type"] == SG
    assert sg["props"]["ingress"], "the ALB must admit CloudFront"
    for rule in sg["props"]["ingress"]:
        assert rule["prefixListIds"] == [CLOUDFRONT_PREFIX_LIST]
        assert not rule.get("cidrBlocks") and not rule.get("ipv6CidrBlocks") and not rule.get("securityGroups")
        assert not rule.get("self")
        assert 80 <= rule["fromPort"] <= rule["toPort"] <= 443
    # Egress only into the VPC, only to target ports.
    vpc_cidr = plan["config"]["network"]["cidr"]
    ports = {h["port"] for h in edge_cfg(plan)["albHosts"]} | {
        h["healthCheckPort"] for h in edge_cfg(plan)["albHosts"] if h["healthCheckPort"]
    }
    ports |= set() if signaling_on_nlb(plan) else {8080, 9090}  # the signaling pods and their /ready
    assert {(e["fromPort"], e["toPort"]) for e in sg["props"]["egress"]} == {(p, p) for p in ports}
    assert all(e["cidrBlocks"] == [vpc_cidr] for e in sg["props"]["egress"])


def test_alb_hardening_and_access_logs(plan):
    alb = the_alb(plan)["props"]
    # Per stage: dev (the default) internal behind its VPC origin, the live stages internet-facing
    # until their planned move (tests/test_vpc_origin.py has the rest).
    assert alb["internal"] is {"dev": True, "nas-migration": False, "production": False}[stage(plan)]
    assert edge_cfg(plan)["albScheme"] == ("internal" if alb["internal"] else "internet-facing")
    assert alb["dropInvalidHeaderFields"] is True
    assert alb["enableDeletionProtection"] is edge_cfg(plan)["albDeletionProtection"]
    assert alb["accessLogs"]["enabled"] is True
    bucket = next(r for r in plan.of_type("aws:s3/bucket:Bucket") if r["props"]["bucket"] == alb["accessLogs"]["bucket"])
    policy = next(r for r in plan.of_type("aws:s3/bucketPolicy:BucketPolicy") if r["parent"] == bucket["urn"])
    statements = json.loads(policy["props"]["policy"])["Statement"]
    writer = next(s for s in statements if s.get("Sid") == "AlbAccessLogs")
    # ap-northeast-2 predates the log-delivery principal: the regional ELB account writes.
    assert writer["Principal"] == {"AWS": "arn:aws:iam::600734575887:root"}
    assert writer["Resource"].endswith("/alb/AWSLogs/123456789012/*")
    assert any(s["Effect"] == "Deny" and s["Condition"] == {"Bool": {"aws:SecureTransport": "false"}} for s in statements)


def test_http_listener_only_redirects_to_https(plan):
    alb = the_alb(plan)
    (http,) = [r for r in listeners_of(plan, alb) if r["props"]["port"] == 80]
    assert http["props"]["protocol"] == "HTTP"
    (action,) = http["props"]["defaultActions"]
    assert action["type"] == "redirect"
    assert action["redirect"]["protocol"] == "HTTPS" and action["redirect"]["port"] == "443"
    assert action["redirect"]["statusCode"] == "HTTP_301"
    assert not [r for r in plan.of_type(RULE) if r["props"]["listenerArn"].endswith(http["id"])]


def test_no_listener_forwards_plain_http_to_targets(plan):
    listeners = {r["id"]: r for r in plan.of_type(LISTENER)}
    for listener in listeners.values():
        if any(a["type"] == "forward" for a in listener["props"]["defaultActions"]):
            assert listener["props"]["protocol"] in ("HTTPS", "TLS"), listener["name"]
            assert listener["props"]["sslPolicy"].startswith("ELBSecurityPolicy-TLS13-")
    for rule in plan.of_type(RULE):
        listener = next(v for k, v in listeners.items() if rule["props"]["listenerArn"].endswith(k))
        assert listener["props"]["protocol"] == "HTTPS", rule["name"]


def test_alb_forwards_only_host_rules_that_carry_the_origin_secret(plan):
    cfg = edge_cfg(plan)
    alb = the_alb(plan)
    (https,) = [r for r in listeners_of(plan, alb) if r["props"]["port"] == 443]
    (default,) = https["props"]["defaultActions"]
    assert default["type"] == "fixed-response" and default["fixedResponse"]["statusCode"] == "403"
    rules = {r["props"]["priority"]: r for r in plan.of_type(RULE)}
    # ws.<domain> has a rule of its own (test_signaling_entry) where signaling enters through CloudFront.
    assert set(rules) == {h["priority"] for h in cfg["albHosts"]} | (set() if signaling_on_nlb(plan) else {SIGNALING_RULE_PRIORITY})
    for host in cfg["albHosts"]:
        rule = rules[host["priority"]]["props"]
        conditions = {k: v for c in rule["conditions"] for k, v in c.items()}
        expected_hosts = [f"{host['name']}.{cfg['domain']}"] + ([cfg["domain"], *cutover_names(plan)] if host["apex"] else [])
        assert conditions["hostHeader"]["values"] == expected_hosts
        assert conditions["pathPattern"]["values"] == host["paths"]
        assert conditions["httpHeader"] == {"httpHeaderName": "X-Origin-Verify", "values": ["[secret]"]}
        (action,) = rule["actions"]
        tg = tg_by_arn(plan, action["targetGroupArn"])
        assert tg["props"]["targetType"] == "ip" and tg["props"]["port"] == host["port"]
        assert tg["props"]["deregistrationDelay"] == 30
        assert tg["props"]["healthCheck"]["path"] == host["healthCheckPath"]
    # The exported map binds exactly these target groups, by host name.
    assert set(plan["outputs"]["albTargetGroupArns"]) == {h["name"] for h in cfg["albHosts"]}


# ------------------------------------------------------------------------------- NLB


# From the stack files' config (cheap at collection), not from the plans.
NLB_STACKS = [s for s in STACKS if load_stack_config(s, stack_raw(s)[0]).nlb_listeners]


@pytest.fixture(params=NLB_STACKS)
def nlb_plan(request):
    """The plans of the stages with an NLB (dev has none: tests/test_signaling_entry.py)."""
    plan = stack_plan(request.param)
    assert nlb_ports(plan), f"{request.param}: the stack file asks for an NLB, the plan has none"
    return plan


def test_nlb_signaling_and_turns_listeners(nlb_plan):
    plan = nlb_plan
    nlb = the_nlb(plan)
    assert nlb["props"]["enableCrossZoneLoadBalancing"] is True
    assert nlb["props"]["securityGroups"], "the NLB has a security group the tiers admit"
    by_port = {r["props"]["port"]: r for r in listeners_of(plan, nlb)}
    assert set(by_port) == {443, 5349}
    assert {r["props"]["protocol"] for r in by_port.values()} == {"TLS"}
    signaling = tg_by_arn(plan, by_port[443]["props"]["defaultActions"][0]["targetGroupArn"])["props"]
    assert (signaling["targetType"], signaling["protocol"], signaling["port"]) == ("ip", "TCP", 8080)
    hc = signaling["healthCheck"]
    assert (hc["protocol"], hc["path"], hc["port"]) == ("HTTP", "/ready", "9090")
    turn = tg_by_arn(plan, by_port[5349]["props"]["defaultActions"][0]["targetGroupArn"])["props"]
    assert (turn["targetType"], turn["protocol"], turn["port"]) == ("instance", "TCP", 3478)
    assert tg_by_arn(plan, plan["outputs"]["nlbSignalingTargetGroupArn"])["props"] == signaling


def test_nlb_security_group_admits_clients_per_stage(nlb_plan):
    plan = nlb_plan
    cfg = edge_cfg(plan)
    sg = plan.by_id(the_nlb(plan)["props"]["securityGroups"][0])
    ingress = sg["props"]["ingress"]
    assert {(r["fromPort"], r["toPort"]) for r in ingress} == {(443, 443), (5349, 5349)}
    # The NLB is IPv4-only: the IPv4 ranges of the allow-list.
    expected = [c for c in cfg["allowList"] if ":" not in c] if cfg["restrictToAllowList"] else ["0.0.0.0/0"]
    assert all(r["cidrBlocks"] == expected for r in ingress)
    vpc_cidr = plan["config"]["network"]["cidr"]
    assert {e["fromPort"] for e in sg["props"]["egress"]} == {8080, 9090, 3478}
    assert all(e["cidrBlocks"] == [vpc_cidr] for e in sg["props"]["egress"])


def test_nlb_static_ips_per_az_where_asked(nlb_plan):
    plan = nlb_plan
    nlb = the_nlb(plan)["props"]
    azs = plan["config"]["network"]["azs"]
    if edge_cfg(plan)["nlbStaticIps"]:
        assert "subnets" not in nlb
        mappings = nlb["subnetMappings"]
        assert len(mappings) == len(azs)
        eips = [plan.by_id(m["allocationId"]) for m in mappings]
        assert all(e["type"] == "aws:ec2/eip:Eip" and e["protect"] is plan["config"]["protectData"] for e in eips)
        assert len({plan.by_id(m["subnetId"])["props"]["availabilityZone"] for m in mappings}) == len(azs)
        assert len(plan["outputs"]["nlbStaticIps"]) == len(azs)
    else:
        assert "subnetMappings" not in nlb and len(nlb["subnets"]) == len(azs)


# ------------------------------------------------------------------------ CloudFront


def test_cloudfront_redirects_to_https_everywhere_and_disables_cache_for_the_alb(plan):
    (dist,) = plan.of_type(DIST)
    props = dist["props"]
    behaviors = [props["defaultCacheBehavior"], *props["orderedCacheBehaviors"]]
    assert all(b["viewerProtocolPolicy"] == "redirect-to-https" for b in behaviors)
    alb_paths = {b["pathPattern"] for b in props["orderedCacheBehaviors"] if b["targetOriginId"] == "alb"}
    assert alb_paths == {"/api/*", "/ws*"}
    for b in props["orderedCacheBehaviors"]:
        if b["targetOriginId"] == "alb":
            assert b["cachePolicyId"] == CACHING_DISABLED
            assert "POST" in b["allowedMethods"]
    assert props["viewerCertificate"]["minimumProtocolVersion"] == "TLSv1.2_2021"
    assert props["viewerCertificate"]["sslSupportMethod"] == "sni-only"
    assert props["httpVersion"] == "http2and3"
    assert props["priceClass"] in ("PriceClass_200", "PriceClass_All")
    assert props["loggingConfig"]["bucket"].endswith(".s3.amazonaws.com")
    # The ALB origin speaks HTTPS only and carries the origin secret.
    alb_origin = next(o for o in props["origins"] if o["originId"] == "alb")
    # An internal ALB: HTTPS only on its VPC origin (tests/test_vpc_origin.py).
    if edge_cfg(plan)["albScheme"] == "internet-facing":
        assert alb_origin["customOriginConfig"]["originProtocolPolicy"] == "https-only"
        assert alb_origin["customOriginConfig"]["originSslProtocols"] == ["TLSv1.2"]
    assert alb_origin["customHeaders"] == [{"name": "X-Origin-Verify", "value": "[secret]"}]
    # The static web origin is S3 through origin access control, not a public website endpoint.
    web = next(o for o in props["origins"] if o["originId"] == "web")
    assert web["originAccessControlId"] and ".s3." in web["domainName"] and "website" not in web["domainName"]


def test_distribution_is_protected_by_the_cloudfront_web_acl(plan):
    (dist,) = plan.of_type(DIST)
    acl = the_acl(plan)
    assert acl["props"]["scope"] == "CLOUDFRONT"
    assert acl["provider"] == east_provider(plan)["urn"]
    assert dist["props"]["webAclId"].endswith(f"/webacl/{acl['props']['name']}/{acl['id']}")


def test_security_headers_policy_on_every_behaviour(plan):
    (policy,) = plan.of_type("aws:cloudfront/responseHeadersPolicy:ResponseHeadersPolicy")
    headers = policy["props"]["securityHeadersConfig"]
    hsts = headers["strictTransportSecurity"]
    assert hsts["accessControlMaxAgeSec"] >= 31_536_000 and hsts["includeSubdomains"] is True
    assert headers["frameOptions"]["frameOption"] == "DENY"
    assert headers["contentTypeOptions"]["override"] is True
    assert "frame-ancestors 'none'" in headers["contentSecurityPolicy"]["contentSecurityPolicy"]
    assert headers["referrerPolicy"]["referrerPolicy"] == "strict-origin-when-cross-origin"
    (dist,) = plan.of_type(DIST)
    behaviors = [dist["props"]["defaultCacheBehavior"], *dist["props"]["orderedCacheBehaviors"]]
    assert {b["responseHeadersPolicyId"] for b in behaviors} == {policy["id"]}


def test_static_web_bucket_is_private_and_readable_only_by_this_distribution(plan):
    (dist,) = plan.of_type(DIST)
    web = next(o for o in dist["props"]["origins"] if o["originId"] == "web")
    bucket = next(r for r in plan.of_type("aws:s3/bucket:Bucket") if web["domainName"].startswith(r["props"]["bucket"] + "."))
    children = {r["type"]: r for r in plan.children(bucket["urn"])}
    pab = children["aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock"]["props"]
    assert all(pab[k] is True for k in ("blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls", "restrictPublicBuckets"))
    statements = json.loads(children["aws:s3/bucketPolicy:BucketPolicy"]["props"]["policy"])["Statement"]
    allows = [s for s in statements if s["Effect"] == "Allow"]
    assert allows and all(s["Principal"] == {"Service": "cloudfront.amazonaws.com"} for s in allows)
    assert all(
        s["Condition"]["StringEquals"]["AWS:SourceArn"] == f"arn:aws:cloudfront::123456789012:distribution/{dist['id']}" for s in allows
    )


def test_public_names_are_aliases_of_the_distribution_and_the_nlb(plan):
    cfg = edge_cfg(plan)
    (dist,) = plan.of_type(DIST)
    hosts = [cfg["domain"], *[f"{h['name']}.{cfg['domain']}" for h in cfg["albHosts"]]]
    hosts += [] if signaling_on_nlb(plan) else [f"ws.{cfg['domain']}"]
    # the migration's cutover name is an alias too; its (weighted) records are the migration's
    assert dist["props"]["aliases"] == hosts + cutover_names(plan)
    records = [r["props"] for r in plan.of_type("aws:route53/record:Record") if r["props"].get("aliases")]
    for host in hosts:
        for rtype in ("A", "AAAA"):
            (rec,) = [r for r in records if r["name"] == host and r["type"] == rtype]
            assert rec["aliases"][0]["zoneId"] == "Z2FDTNDATAQYW2"  # CloudFront
    nlb_names = {r["name"] for r in records if r["aliases"][0]["zoneId"] == "ZIBE1TIR4HY56"}
    assert nlb_names == {f"{label}.{cfg['domain']}" for label, on in (("ws", signaling_on_nlb(plan)), ("turns", turns_on_nlb(plan))) if on}
    urls = plan["outputs"]["publicUrls"]
    # Behind CloudFront the WebSocket path must match the /ws* behaviour.
    ws = f"wss://ws.{cfg['domain']}" + ("" if signaling_on_nlb(plan) else "/ws")
    assert urls["apex"] == f"https://{cfg['domain']}" and urls["signaling"] == ws


# ------------------------------------------------------------------------------- WAF


CONTENT_GROUPS = ("AWSManagedRulesCommonRuleSet", "AWSManagedRulesKnownBadInputsRuleSet", "AWSManagedRulesSQLiRuleSet")
REPUTATION = "AWSManagedRulesAmazonIpReputationList"
RATE_RULES = ("rate-auth", "rate-websocket", "rate-general")


def public_edge_violations(plan) -> list[str]:
    """Every web ACL that lets the internet in (default allow) keeps the IP reputation group and
    seed 001's three per-IP rate rules: only an allow-listed edge may go without them."""
    found = []
    for acl in plan.of_type("aws:wafv2/webAcl:WebAcl"):
        if acl["props"]["defaultAction"] != {"allow": {}}:
            continue
        names = {r["name"] for r in acl["props"]["rules"]}
        found += [f"{acl['name']}: no {rule}" for rule in (REPUTATION, *RATE_RULES) if rule not in names]
    return found


def test_an_edge_open_to_everyone_keeps_reputation_and_rate_limits(plan):
    assert public_edge_violations(plan) == []


def test_the_public_edge_invariant_catches_a_missing_rate_rule(plans):
    planted = copy.deepcopy(plans["production"])
    (acl,) = planted.of_type("aws:wafv2/webAcl:WebAcl")
    acl["props"]["rules"] = [r for r in acl["props"]["rules"] if r["name"] not in ("rate-auth", REPUTATION)]
    assert public_edge_violations(planted) == [f"{acl['name']}: no {REPUTATION}", f"{acl['name']}: no rate-auth"]


def test_managed_rule_groups(plan):
    rules = rules_by_name(plan)
    cfg = edge_cfg(plan)
    # Behind an allow-list (and no bypass) the reputation group could only block the listed sources.
    only_listed = cfg["restrictToAllowList"] and not cfg["loadTestBypass"]
    assert (REPUTATION in rules) is not only_listed
    for group in CONTENT_GROUPS + (() if only_listed else (REPUTATION,)):
        statement = rules[group]["statement"]["managedRuleGroupStatement"]
        assert statement["vendorName"] == "AWS" and statement["name"] == group
        assert rules[group]["overrideAction"] == {"none": {}}  # enforcing, not count-only
    visibility = [r["visibilityConfig"] for r in rules.values()] + [the_acl(plan)["props"]["visibilityConfig"]]
    assert all(v["cloudwatchMetricsEnabled"] and v["sampledRequestsEnabled"] for v in visibility)


def test_rate_rules_only_where_enabled(plan):
    cfg = edge_cfg(plan)
    rate = [n for n, r in rules_by_name(plan).items() if "rateBasedStatement" in r["statement"]]
    if cfg["rateLimits"]["enabled"]:
        assert sorted(rate) == sorted(RATE_RULES)
    else:
        assert cfg["restrictToAllowList"] and rate == []
        assert "rate limits" not in the_acl(plan)["props"]["description"]


def test_dev_edge_skips_per_ip_limits_and_the_reputation_group(plans):
    """dev's sources are the office/VPN egress addresses: per-IP limits would throttle the team
    as one client; the content groups still inspect every request (false positives show here)."""
    rules = rules_by_name(plans["dev"])
    assert not [n for n in rules if n.startswith("rate-") or n == REPUTATION]
    assert set(CONTENT_GROUPS) <= set(rules) and "allow-list" in rules
    assert set(RATE_RULES) | {REPUTATION} <= set(rules_by_name(plans["nas-migration"]))


@pytest.mark.parametrize(
    ("edge", "needle"),
    [
        ({"restrictToAllowList": False, "allowList": [], "rateLimits": {"enabled": False}}, "rateLimits.enabled"),
        ({"rateLimits": {"enabled": "sometimes"}}, "rateLimits.enabled"),
    ],
)
def test_rate_limits_off_only_behind_an_allow_list(edge, needle):
    lines = config_errors({"voip-infra:edge": edge}, "nas-migration" if edge.get("restrictToAllowList") is False else "dev")
    assert any(needle in line for line in lines), lines


def test_rate_rules_reproduce_the_seed_nginx_limits(plans):
    rules = rules_by_name(plans["production"])
    rate = {n: r for n, r in rules.items() if "rateBasedStatement" in r["statement"]}
    assert len(rate) >= 3
    expected = {"rate-auth": (10, 120), "rate-websocket": (600, 60), "rate-general": (1800, 60)}
    for name, (limit, window) in expected.items():
        statement = rate[name]["statement"]["rateBasedStatement"]
        assert (statement["limit"], statement["evaluationWindowSec"]) == (limit, window), name
        assert statement["aggregateKeyType"] == "IP"
        assert rate[name]["action"]["block"]["customResponse"]["responseCode"] == 429

    def matches(name: str, path: str) -> bool:
        scope = rate[name]["statement"]["rateBasedStatement"]["scopeDownStatement"]
        negate = "notStatement" in scope
        regex = (scope["notStatement"]["statement"] if negate else scope)["regexMatchStatement"]
        assert regex["fieldToMatch"] == {"uriPath": {}}
        hit = re.search(regex["regexString"], path.lower()) is not None
        return hit != negate

    assert matches("rate-auth", "/api/auth/login") and matches("rate-auth", "/AUTH/token")
    assert not matches("rate-auth", "/api/users")
    assert matches("rate-websocket", "/ws") and matches("rate-websocket", "/ws/room/1")
    assert not matches("rate-websocket", "/api/ws")
    assert matches("rate-general", "/api/users") and matches("rate-general", "/")
    assert not matches("rate-general", "/api/auth/login") and not matches("rate-general", "/ws")


def _ip_set_arns(statement: dict) -> list[str]:
    """The IP sets an allow rule's statement references (directly or under an or_statement)."""
    if "ipSetReferenceStatement" in statement:
        return [statement["ipSetReferenceStatement"]["arn"]]
    return [arn for sub in (statement.get("orStatement") or {}).get("statements", []) for arn in _ip_set_arns(sub)]


def address_family_violations(resources: list[dict]) -> list[str]:
    """Issue 15 item 8: where the edge is restricted (web ACL default block), every address
    family CloudFront serves (IPv4 always, IPv6 when isIpv6Enabled) is covered by an IP set an
    allow rule references; and a name has an AAAA record only where its distribution serves IPv6."""
    acls = {r["id"]: r for r in resources if r["type"] == "aws:wafv2/webAcl:WebAcl"}
    ip_sets = {r["id"]: r for r in resources if r["type"] == "aws:wafv2/ipSet:IpSet"}
    out = []
    for dist in (r for r in resources if r["type"] == DIST):
        props = dist["props"]
        served = {"IPV4", "IPV6"} if props.get("isIpv6Enabled") else {"IPV4"}
        acl = acls[props["webAclId"].rsplit("/", 1)[-1]]["props"]
        if acl["defaultAction"] == {"block": {}}:
            arns = [arn for rule in acl["rules"] if rule.get("action") == {"allow": {}} for arn in _ip_set_arns(rule["statement"])]
            covered = {ip_sets[arn.rsplit("/", 1)[-1]]["props"]["ipAddressVersion"] for arn in arns}
            out += [
                f"{dist['name']} serves {family} viewers but no allow-list IP set covers {family}" for family in sorted(served - covered)
            ]
        if "IPV6" not in served:
            aliases = set(props["aliases"])
            out += [
                f"AAAA record {r['props']['name']} points at {dist['name']}, which has IPv6 off"
                for r in resources
                if r["type"] == "aws:route53/record:Record" and r["props"].get("type") == "AAAA" and r["props"]["name"] in aliases
            ]
    return out


def test_every_address_family_the_edge_serves_is_allow_listed(plan):
    assert address_family_violations(plan.resources) == []
    (dist,) = plan.of_type(DIST)
    cfg = edge_cfg(plan)
    # dev is restricted and dual-stack: its office has an IPv6 range; the others are open.
    assert dist["props"]["isIpv6Enabled"] is True
    assert any(":" in c for c in cfg["allowList"]) == (plan["stack"] == "dev")


def test_the_address_family_invariant_catches_an_ipv4_only_allow_list(plans):
    """The defect of the seed: dev restricted to IPv4 ranges while CloudFront serves IPv6."""
    planted = copy.deepcopy(plans["dev"].resources)
    planted = [r for r in planted if not (r["type"] == "aws:wafv2/ipSet:IpSet" and r["props"]["ipAddressVersion"] == "IPV6")]
    for acl in (r for r in planted if r["type"] == "aws:wafv2/webAcl:WebAcl"):
        for rule in acl["props"]["rules"]:
            if rule["name"] == "allow-list":
                rule["statement"] = rule["statement"]["orStatement"]["statements"][0]
    assert address_family_violations(planted) == ["dev-cdn serves IPV6 viewers but no allow-list IP set covers IPV6"]
    # The other way out: IPv6 off, but AAAA records left behind.
    for dist in (r for r in planted if r["type"] == DIST):
        dist["props"]["isIpv6Enabled"] = False
    assert sorted(v.split(" points")[0] for v in address_family_violations(planted)) == [
        "AAAA record api.dev.voip.example.com",
        "AAAA record dev.voip.example.com",
        "AAAA record ws.dev.voip.example.com",  # signaling through CloudFront (edge.signalingEntry cdn)
    ]


def test_allow_list_and_default_action_per_stage(plan):
    cfg = edge_cfg(plan)
    acl = the_acl(plan)["props"]
    rules = rules_by_name(plan)
    ip_sets = plan.of_type("aws:wafv2/ipSet:IpSet")
    if cfg["restrictToAllowList"]:
        assert acl["defaultAction"] == {"block": {}}
        by_family = {s["props"]["ipAddressVersion"]: s for s in ip_sets}
        assert set(by_family) == {"IPV4", "IPV6"} and len(ip_sets) == 2
        assert by_family["IPV4"]["props"]["addresses"] == [c for c in cfg["allowList"] if ":" not in c]
        assert by_family["IPV6"]["props"]["addresses"] == [c for c in cfg["allowList"] if ":" in c]
        for ip_set in ip_sets:
            assert ip_set["props"]["scope"] == "CLOUDFRONT" and ip_set["provider"] == east_provider(plan)["urn"]
        allow = rules["allow-list"]
        assert allow["action"] == {"allow": {}}
        assert [a.rsplit("/", 1)[-1] for a in _ip_set_arns(allow["statement"])] == [by_family[f]["id"] for f in ("IPV4", "IPV6")]
        # Last: allow-listed sources still go through the managed groups and the rate limits.
        assert allow["priority"] == max(r["priority"] for r in rules.values())
    else:
        assert acl["defaultAction"] == {"allow": {}}
        assert not ip_sets and "allow-list" not in rules


def test_dev_blocks_by_default_and_production_does_not(plans):
    assert the_acl(plans["dev"])["props"]["defaultAction"] == {"block": {}}
    assert the_acl(plans["production"])["props"]["defaultAction"] == {"allow": {}}
    assert "load-test-bypass" not in rules_by_name(plans["production"])


def test_waf_logging_redacts_credentials(plan):
    (logging,) = plan.of_type("aws:wafv2/webAclLoggingConfiguration:WebAclLoggingConfiguration")
    assert logging["provider"] == east_provider(plan)["urn"]
    assert {"singleHeader": {"name": "authorization"}} in logging["props"]["redactedFields"]
    (destination,) = logging["props"]["logDestinationConfigs"]
    assert ":log-group:aws-waf-logs-" in destination


def test_outputs_for_the_other_tiers(plan):
    outputs = plan["outputs"]
    for key in (
        "zoneId",
        "domain",
        "distributionArn",
        "distributionDomainName",
        "originSecretArn",
        "albSecurityGroupId",
        "publicUrls",
    ):
        assert outputs.get(key), key
    # The NLB's outputs exist exactly where the NLB does (absent on a stage without one).
    nlb_keys = {"nlbArn", "nlbDnsName", "nlbStaticIps", "nlbSecurityGroupId", "nlbSignalingTargetGroupArn", "nlbTurnTargetGroupArn"}
    assert (nlb_keys <= set(outputs)) if nlb_ports(plan) else not [k for k in outputs if k.startswith("nlb")]
    for key, needed in (("nlbSecurityGroupId", nlb_ports(plan)), ("nlbSignalingTargetGroupArn", signaling_on_nlb(plan))):
        assert bool(outputs.get(key)) == bool(needed), key
    if turns_on_nlb(plan):
        assert outputs["nlbTurnTargetGroupArn"]
    assert outputs["originSecretArn"].startswith("arn:aws:secretsmanager:")
    # Every secret value in state is a Pulumi secret (the origin header, the TURN secret, ...).
    versions = plan.of_type("aws:secretsmanager/secretVersion:SecretVersion")
    assert versions and all((v["props"].get("secretString") or v["props"].get("secretStringWo")) == "[secret]" for v in versions)


# ---------------------------------------------------------------- load-test bypass variant

BYPASS_TOKEN_KEY = "voip-infra:loadTestBypassToken"


@pytest.fixture(scope="module")
def bypass_plan():
    # With the limits on: the bypass sits between the managed groups and them.
    edge = {"loadTestBypass": True, "rateLimits": {"enabled": True}}
    return variant("dev", {"voip-infra:edge": edge, BYPASS_TOKEN_KEY: "x"}, (BYPASS_TOKEN_KEY,))


def test_load_test_bypass_only_where_enabled(bypass_plan, plan):
    if not edge_cfg(plan)["loadTestBypass"]:
        assert "load-test-bypass" not in rules_by_name(plan)
    rules = rules_by_name(bypass_plan)
    bypass = rules["load-test-bypass"]
    match = bypass["statement"]["byteMatchStatement"]
    assert match["fieldToMatch"] == {"singleHeader": {"name": "x-load-test-token"}}
    assert match["searchString"] == "[secret]"  # the token never reaches state in plain text
    assert bypass["action"] == {"allow": {}}
    managed = [r["priority"] for n, r in rules.items() if n.startswith("AWSManagedRules")]
    rate = [r["priority"] for n, r in rules.items() if n.startswith("rate-")]
    # After the managed groups (still inspected), before the rate limits (the bypass).
    assert max(managed) < bypass["priority"] < min(rate)
    # A token admits sources off the allow-list: the reputation group screens them again.
    assert REPUTATION in rules
    (logging,) = bypass_plan.of_type("aws:wafv2/webAclLoggingConfiguration:WebAclLoggingConfiguration")
    assert {"singleHeader": {"name": "x-load-test-token"}} in logging["props"]["redactedFields"]


# ----------------------------------------------------------------------- pure functions


def test_rate_window_respects_the_waf_minimum():
    assert rate_window(5, 60) == (10, 120)
    assert rate_window(10, 1) == (600, 60)
    assert rate_window(30, 1) == (1800, 60)
    assert rate_window(1, 60) == (10, 600)  # 1/min cannot be exact: never stricter than asked
    limit, window = rate_window(1, 60)
    assert limit / window >= 1 / 60


@pytest.mark.parametrize(
    ("hosts", "message"),
    [
        ([{"name": "ws", "priority": 1}], "albHosts.0.name: 'ws' is taken by the NLB"),
        ([{"name": "api", "priority": 1, "apex": True, "paths": ["/a", "/b", "/c"]}], "albHosts.0.paths: a listener rule takes at most 5"),
        ([{"name": "a", "priority": 1, "apex": True}, {"name": "b", "priority": 2, "apex": True}], "at most one host may set apex"),
    ],
)
def test_edge_config_rejects_rules_aws_would_refuse(hosts, message):
    raw, _ = stack_raw("dev")
    with pytest.raises(ConfigError) as err:
        load_stack_config("dev", with_overrides(raw, {"voip-infra:edge": {"albHosts": hosts}}))
    assert any(message in line for line in err.value.lines), err.value.lines


# ------------------------------------------------- the file bucket behaviour, Cdn alone


def test_files_bucket_is_served_at_files_through_origin_access_control():
    """Platform passes no file bucket until the storage tier is merged: build the Cdn
    component alone, under the same mocks, with one."""
    import pulumi
    import pulumi_aws as aws

    from components.config import EdgeConfig
    from components.edge.cdn import Cdn, CdnArgs
    from tests.harness import component_plan, unit_ctx

    files_domain = "dev-voip-files.s3.ap-northeast-2.amazonaws.com"
    edge = EdgeConfig.model_validate(
        {"domain": "dev.voip.example.com", "contentSecurityPolicy": "default-src 'self'", "logRetentionDays": 14}
    )

    def build():
        provider = aws.Provider("regional", region="ap-northeast-2")
        cdn = Cdn(
            "dev-cdn",
            CdnArgs(
                ctx=unit_ctx("dev", protect=False),
                config=edge,
                zone_id="Z0123456789ABC",
                certificate_arn="arn:aws:acm:us-east-1:123456789012:certificate/x",
                web_acl_arn="arn:aws:wafv2:us-east-1:123456789012:global/webacl/x/y",
                alb_dns_name="alb-1.ap-northeast-2.elb.amazonaws.com",
                origin_header_name="X-Origin-Verify",
                origin_secret_value=pulumi.Output.secret("s"),
                files_bucket_regional_domain_name=files_domain,
            ),
            opts=pulumi.ResourceOptions(providers={"aws": provider}),
        )
        return {"arn": cdn.distribution.arn}

    plan, _ = component_plan(build, stack="dev")
    (dist,) = plan.of_type(DIST)
    origins = {o["originId"]: o for o in dist["props"]["origins"]}
    (oac,) = plan.of_type("aws:cloudfront/originAccessControl:OriginAccessControl")
    assert origins["files"]["domainName"] == files_domain
    assert origins["files"]["originAccessControlId"] == oac["id"] == origins["web"]["originAccessControlId"]
    (files,) = [b for b in dist["props"]["orderedCacheBehaviors"] if b["pathPattern"] == "/files/*"]
    assert files["targetOriginId"] == "files" and files["viewerProtocolPolicy"] == "redirect-to-https"
    assert files["allowedMethods"] == ["GET", "HEAD", "OPTIONS"]
    # First, so /files/* is never shadowed by a broader pattern.
    assert dist["props"]["orderedCacheBehaviors"][0]["pathPattern"] == "/files/*"
