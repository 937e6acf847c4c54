"""The seams between tiers, as Platform wires them: each tier receives exactly what the
other one created (followed by mocked id or ARN), per stack."""

from __future__ import annotations

import json

from components.data.keys import SNS_PUBLISHERS
from tests.harness import stack_plan
from tests.test_database import node_security_group_id


def _one(plan, typ, suffix):
    (r,) = [r for r in plan.of_type(typ) if r["name"].endswith(suffix)]
    return r


def test_cloudfront_serves_the_file_bucket_and_its_policy_admits_exactly_that_distribution(plan):
    dist = _one(plan, "aws:cloudfront/distribution:Distribution", "-cdn")
    files = _one(plan, "aws:s3/bucket:Bucket", "-files")
    origins = {o["originId"]: o for o in dist["props"]["origins"]}
    assert origins["files"]["domainName"] == f"{files['props']['bucket']}.s3.{plan['config']['aws:region']}.amazonaws.com"
    assert origins["files"].get("originAccessControlId"), "files through origin access control"
    (behaviour,) = [b for b in dist["props"]["orderedCacheBehaviors"] if b["pathPattern"] == "/files/*"]
    assert behaviour["targetOriginId"] == "files" and behaviour["viewerProtocolPolicy"] == "redirect-to-https"
    (policy,) = [p for p in plan.of_type("aws:s3/bucketPolicy:BucketPolicy") if p["props"]["bucket"] == files["id"]]
    doc = json.loads(policy["props"]["policy"])
    read = [s for s in doc["Statement"] if s["Effect"] == "Allow"]
    assert len(read) == 1
    assert read[0]["Principal"] == {"Service": "cloudfront.amazonaws.com"}
    assert read[0]["Condition"]["StringEquals"]["AWS:SourceArn"] == plan["outputs"]["distributionArn"]
    assert plan["outputs"]["distributionArn"].endswith(dist["id"])


def test_turn_nodes_are_the_targets_of_the_nlb_turns_listener(plan):
    instances = {i["id"] for i in plan.of_type("aws:ec2/instance:Instance") if "-turn-" in i["name"]}
    attachments = plan.of_type("aws:lb/targetGroupAttachment:TargetGroupAttachment")
    if plan["config"]["turn"].get("tlsEntry", "nlb") == "none":  # no TURNS listener: nothing to attach
        assert not attachments and "nlbTurnTargetGroupArn" not in plan["outputs"]
        return
    assert {a["props"]["targetId"] for a in attachments} == instances
    assert {a["props"]["targetGroupArn"] for a in attachments} == {plan["outputs"]["nlbTurnTargetGroupArn"]}
    assert {a["props"]["port"] for a in attachments} == {plan["config"]["turn"]["listeningPort"]}


def test_eks_nodes_admit_exactly_the_load_balancers_that_target_pods(plan):
    node_sg = plan.by_id(node_security_group_id(plan))
    # The ALB always (apps); the NLB only while signaling enters through it (edge.signalingEntry nlb).
    on_nlb = plan["config"]["edge"].get("signalingEntry", "nlb") == "nlb"
    lbs = sorted([plan["outputs"]["albSecurityGroupId"], *([plan["outputs"]["nlbSecurityGroupId"]] if on_nlb else [])])
    assert node_sg["props"]["ingress"], "pods are ip targets: the LBs must reach them"
    for rule in node_sg["props"]["ingress"]:
        assert sorted(rule["securityGroups"]) == lbs
        assert not rule.get("cidrBlocks")


def test_signaling_binds_to_its_entry_and_gets_redis_and_turn_through_secrets(plan):
    (release,) = [r for r in plan.of_type("kubernetes:helm.sh/v3:Release") if r["name"].endswith("-signaling")]
    values = release["props"]["values"]
    bindings = {lb: b["targetGroupArn"] for lb, b in values["targetGroupBindings"].items() if b["targetGroupArn"]}
    if plan["config"]["edge"].get("signalingEntry", "nlb") == "nlb":
        assert bindings == {"nlb": plan["outputs"]["nlbSignalingTargetGroupArn"]}
    else:  # the ALB's ws.<domain> group, not an app's host group
        assert list(bindings) == ["alb"] and bindings["alb"] not in plan["outputs"]["albTargetGroupArns"].values()
    ns = plan["config"]["signaling"]["namespace"]
    secrets = {
        s["props"]["metadata"]["name"]: s
        for s in plan.of_type("kubernetes:core/v1:Secret")
        if s["props"]["metadata"]["namespace"] == ns and "voip:signaling:Signaling" in s["urn"]
    }
    assert set(secrets) == {"signaling-redis", "signaling-turn"}
    for secret in secrets.values():
        data = secret["props"]["stringData"]
        assert data == "[secret]" or all(v == "[secret]" for v in data.values())
    # The TURN URIs the pods hand out are the TURN tier's own.
    assert values["turn"]["uris"] == plan["outputs"]["turnIceServers"][0]["urls"]
    assert "[secret]" not in json.dumps(values)


# Properties that name a topic without publishing to it (AWS Chatbot subscribes to its topics).
_TOPIC_ITSELF = {
    ("aws:sns/topicPolicy:TopicPolicy", "arn"),
    ("aws:sns/topicSubscription:TopicSubscription", "topic"),
    ("aws:chatbot/slackChannelConfiguration:SlackChannelConfiguration", "snsTopicArns"),
}


def _sns_wirings(plan) -> list[tuple[dict, str, dict]]:
    """(resource, property, topic) for every top-level property that names an SNS topic of the plan."""
    topics = {t["props"]["name"]: t for t in plan["resources"] if t["type"] == "aws:sns/topic:Topic"}
    out = []
    for r in plan["resources"]:
        for prop, value in r["props"].items():
            if (r["type"], prop) in _TOPIC_ITSELF:
                continue
            for v in value if isinstance(value, list) else [value]:
                if isinstance(v, str) and v.startswith("arn:aws:sns:") and v.rsplit(":", 1)[1] in topics:
                    out.append((r, prop, topics[v.rsplit(":", 1)[1]]))
    return out


def _key_services(plan, topic) -> set[str]:
    """Service principals the topic's KMS key lets generate data keys (what SNS needs of a publisher)."""
    key_id = topic["props"]["kmsMasterKeyId"].rsplit("/", 1)[1]
    (key,) = [k for k in plan["resources"] if k["type"] == "aws:kms/key:Key" and k["id"] == key_id]
    services: set[str] = set()
    for s in json.loads(key["props"]["policy"])["Statement"]:
        if s["Effect"] == "Allow" and "kms:GenerateDataKey*" in s["Action"]:
            svc = s["Principal"].get("Service", [])
            services |= {svc} if isinstance(svc, str) else set(svc)
    return services


def sns_wiring_problems(plan) -> list[str]:
    """Every service wired to an SNS topic can publish to it: its type is in SNS_PUBLISHERS, a
    publisher that cannot use SSE topics targets an unencrypted one, and an encrypted topic's key
    admits the publishing service."""
    problems = []
    for r, prop, topic in _sns_wirings(plan):
        pub = SNS_PUBLISHERS.get(r["type"])
        where = f"{r['name']}.{prop} -> {topic['props']['name']}"
        if pub is None or prop not in pub.props:
            problems.append(f"{where}: {r['type']}.{prop} is not in components.data.keys.SNS_PUBLISHERS (can it use SSE topics?)")
        elif topic["props"].get("kmsMasterKeyId") and not pub.sse_topics:
            problems.append(f"{where}: {pub.service} cannot publish to an SSE-KMS topic")
        elif topic["props"].get("kmsMasterKeyId") and pub.service not in _key_services(plan, topic):
            problems.append(f"{where}: the topic key does not admit {pub.service}")
    return problems


def test_every_sns_publisher_can_publish_to_its_topic(plan):
    wired = {(r["type"], p) for r, p, _ in _sns_wirings(plan)}
    # The scan sees the wirings that matter on every stage (alarms, RDS and ElastiCache events;
    # a stage whose cache runs in the cluster has no ElastiCache and no events topic).
    elasticache = plan["config"]["cache"]["placement"] == "elasticache"
    assert {
        ("aws:cloudwatch/metricAlarm:MetricAlarm", "alarmActions"),
        ("aws:rds/eventSubscription:EventSubscription", "snsTopic"),
        *([("aws:elasticache/replicationGroup:ReplicationGroup", "notificationTopicArn")] if elasticache else []),
    } <= wired
    assert sns_wiring_problems(plan) == []
    if not elasticache:
        assert not [t for t in plan.of_type("aws:sns/topic:Topic") if t["props"]["name"].endswith("-cache-events")]
        return
    (events,) = [t for t in plan.of_type("aws:sns/topic:Topic") if t["props"]["name"].endswith("-cache-events")]
    assert "kmsMasterKeyId" not in events["props"]
    policy = json.loads(next(p for p in plan.of_type("aws:sns/topicPolicy:TopicPolicy") if p["parent"] == events["urn"])["props"]["policy"])
    (stmt,) = policy["Statement"]
    assert stmt["Action"] == "SNS:Publish" and list(stmt["Condition"]["StringEquals"]) == ["AWS:SourceOwner"]


def test_sns_wiring_invariant_catches_planted_defects():
    plan = json.loads(json.dumps(stack_plan("production")))
    alarm_topic = plan["outputs"]["alarmTopicArn"]
    rg = next(r for r in plan["resources"] if r["type"] == "aws:elasticache/replicationGroup:ReplicationGroup")
    rg["props"]["notificationTopicArn"] = alarm_topic  # the defect: ElastiCache events into the KMS topic
    unclassified = {"type": "aws:sfn/stateMachine:StateMachine", "name": "unknown-publisher", "props": {"topicArn": alarm_topic}}
    plan["resources"].append(unclassified)  # a publisher nobody classified
    alarm = next(r for r in plan["resources"] if r["type"] == "aws:cloudwatch/metricAlarm:MetricAlarm")
    key = next(r for r in plan["resources"] if r["type"] == "aws:kms/key:Key" and r["name"].endswith("-data-key"))
    policy = json.loads(key["props"]["policy"])
    for s in policy["Statement"]:
        if isinstance(s["Principal"].get("Service"), list):
            s["Principal"]["Service"] = [x for x in s["Principal"]["Service"] if x != "cloudwatch.amazonaws.com"]
    key["props"]["policy"] = json.dumps(policy)
    problems = sns_wiring_problems(plan)
    assert any(p.startswith(f"{rg['name']}.notificationTopicArn") and "cannot publish to an SSE-KMS topic" in p for p in problems)
    assert any(p.startswith("unknown-publisher.topicArn") and "not in components.data.keys.SNS_PUBLISHERS" in p for p in problems)
    assert any(p.startswith(f"{alarm['name']}.") and "does not admit cloudwatch.amazonaws.com" in p for p in problems)


# --------------------------------------------------------------- ports: one source (components/ports.py)

# Production with both TURN ports moved: the two drift cases of issue 10 in one plan.
MOVED_PORTS = {"voip-infra:turn": {"listeningPort": 3479, "tlsPort": 5350}}


def _port_values(value, key=""):
    """Every integer under a key naming a port ("port", "fromPort", "listeningPort", ...)."""
    if isinstance(value, dict):
        for k, v in value.items():
            yield from _port_values(v, k)
    elif isinstance(value, list):
        for v in value:
            yield from _port_values(v, key)
    elif isinstance(value, (int, str)) and "port" in key.lower() and str(value).isdigit():
        yield int(value)


def _public_ingress_violations(plan, config=None):
    from tools.policy import run

    if config is not None:
        plan = {**plan, "config": config}
    return [v for v in run(plan) if v.policy == "sg-public-ingress-allow-list"]


def test_a_turn_port_change_is_one_edit_and_every_consumer_follows():
    from tests.harness import variant
    from tests.test_chart import render

    plan = variant("production", MOVED_PORTS)
    assert plan["config"]["turn"]["listeningPort"] == 3479 and plan["config"]["turn"]["tlsPort"] == 5350
    # Case 1: the NLB opens 5350 and the policy pack, reading the plan's config, allows exactly it.
    nlb_sg = plan.by_id(plan["outputs"]["nlbSecurityGroupId"])
    assert {r["fromPort"] for r in nlb_sg["props"]["ingress"]} == {443, 5350}
    assert _public_ingress_violations(plan) == []
    # Planted drift: the pack configured with the default ports flags the moved ones.
    planted = {**plan["config"], "turn": {**plan["config"]["turn"], "listeningPort": 3478, "tlsPort": 5349}}
    flagged = _public_ingress_violations(plan, planted)
    assert {v.urn.rsplit("::", 1)[1] for v in flagged} >= {"production-nlb-sg", "production-turn-sg"}
    # Case 2: the signaling NetworkPolicy reaches TURN on the moved ports, TCP and UDP.
    (release,) = [r for r in plan.of_type("kubernetes:helm.sh/v3:Release") if r["props"]["chart"] == "./charts/signaling"]
    (netpol,) = [o for o in render(release["props"]["values"]) if o["kind"] == "NetworkPolicy"]
    egress = {(p["port"], p["protocol"]) for r in netpol["spec"]["egress"] for p in r["ports"]}
    assert {(3479, "TCP"), (3479, "UDP"), (5350, "TCP"), (5350, "UDP")} <= egress
    # Every consumer: no port field anywhere in the plan still carries a default TURN port,
    # while the default plan has them (the scan sees what it looks for).
    assert {3478, 5349}.isdisjoint(_port_values([r["props"] for r in plan.resources]))
    assert {3479, 5350} <= set(_port_values([r["props"] for r in plan.resources]))
    assert {3478, 5349} <= set(_port_values([r["props"] for r in stack_plan("production").resources]))
    assert any(":5350?transport=tcp" in u for u in plan["outputs"]["turnIceServers"][0]["urls"])


def test_the_policy_packs_fallback_allow_list_is_the_default_ports():
    from components.ports import Ports
    from policies.rules import DEFAULT_PUBLIC_INGRESS

    # The pack run without config (pulumi preview --policy-pack, no --policy-pack-config) uses it.
    assert [dict(a) for a in DEFAULT_PUBLIC_INGRESS] == Ports().public_ingress()


def test_the_fixed_ports_reach_the_chart_from_ports_py():
    """Signaling's own ports and Redis' are not config: a change in components/ports.py is
    the one edit, and the pods, their Service and their NetworkPolicy follow."""
    from components.cluster.signaling import SignalingArgs, release_values
    from components.config import SignalingConfig
    from components.ports import Ports
    from tests.harness import unit_ctx
    from tests.test_chart import render

    moved = Ports(signaling_http=8081, signaling_metrics=9091, redis=6380)
    args = SignalingArgs(
        ctx=unit_ctx(ports=moved, us_east_1=None),
        k8s_provider=None,
        config=SignalingConfig(),
        redis_url="rediss://x",
        turn_shared_secret="s",
        turn_uris=["turn:203.0.113.1:3478?transport=udp"],
        nlb_target_group_arn=None,
        lb_subnet_cidrs=["10.20.0.0/22"],
        vpc_cidr="10.20.0.0/16",
    )
    objs = {o["kind"]: o for o in render(release_values(args))}
    container = objs["Deployment"]["spec"]["template"]["spec"]["containers"][0]
    assert {p["name"]: p["containerPort"] for p in container["ports"]} == {"websocket": 8081, "metrics": 9091}
    assert {p["port"] for p in objs["Service"]["spec"]["ports"]} == {8081, 9091}
    egress = {(p["port"], p["protocol"]) for r in objs["NetworkPolicy"]["spec"]["egress"] for p in r["ports"]}
    assert (6380, "TCP") in egress and (6379, "TCP") not in egress
