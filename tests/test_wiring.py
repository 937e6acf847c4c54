"""The seams between tiers, as Platform wires them: each tier receives exactly what the
other one created (followed by mocked id or ARN), per stack."""

from __future__ import annotations

import json

from components.keys import SNS_PUBLISHERS
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
    assert {a["props"]["targetId"] for a in attachments} == instances
    assert {a["props"]["targetGroupArn"] for a in attachments} == {plan["outputs"]["nlbTurnTargetGroupArn"]}
    assert {a["props"]["port"] for a in attachments} == {plan["config"]["turn"]["listeningPort"]}


def test_eks_nodes_admit_exactly_the_two_load_balancers(plan):
    node_sg = plan.by_id(node_security_group_id(plan))
    lbs = sorted([plan["outputs"]["albSecurityGroupId"], plan["outputs"]["nlbSecurityGroupId"]])
    assert node_sg["props"]["ingress"], "pods are ip targets: the LBs must reach them"
    for rule in node_sg["props"]["ingress"]:
        assert sorted(rule["securityGroups"]) == lbs
        assert not rule.get("cidrBlocks")


def test_signaling_binds_to_the_nlb_and_gets_redis_and_turn_through_secrets(plan):
    (release,) = [r for r in plan.of_type("kubernetes:helm.sh/v3:Release") if r["name"].endswith("-signaling")]
    values = release["props"]["values"]
    assert values["targetGroupBindings"]["nlb"]["targetGroupArn"] == plan["outputs"]["nlbSignalingTargetGroupArn"]
    ns = plan["config"]["signaling"]["namespace"]
    secrets = {
        s["props"]["metadata"]["name"]: s for s in plan.of_type("kubernetes:core/v1:Secret") if s["props"]["metadata"]["namespace"] == ns
    }
    assert set(secrets) == {"signaling-redis", "signaling-turn"}
    for secret in secrets.values():
        data = secret["props"]["stringData"]
        assert data == "[secret]" or all(v == "[secret]" for v in data.values())
    # The TURN URIs the pods hand out are the TURN tier's own.
    assert values["turn"]["uris"] == plan["outputs"]["turnIceServers"][0]["urls"]
    assert "[secret]" not in json.dumps(values)


# Properties that name a topic without publishing to it.
_TOPIC_ITSELF = {("aws:sns/topicPolicy:TopicPolicy", "arn"), ("aws:sns/topicSubscription:TopicSubscription", "topic")}


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
            problems.append(f"{where}: {r['type']}.{prop} is not in components.keys.SNS_PUBLISHERS (can it use SSE topics?)")
        elif topic["props"].get("kmsMasterKeyId") and not pub.sse_topics:
            problems.append(f"{where}: {pub.service} cannot publish to an SSE-KMS topic")
        elif topic["props"].get("kmsMasterKeyId") and pub.service not in _key_services(plan, topic):
            problems.append(f"{where}: the topic key does not admit {pub.service}")
    return problems


def test_every_sns_publisher_can_publish_to_its_topic(plan):
    wired = {(r["type"], p) for r, p, _ in _sns_wirings(plan)}
    # The scan sees the wirings that matter on every stage (alarms, RDS and ElastiCache events).
    assert {
        ("aws:cloudwatch/metricAlarm:MetricAlarm", "alarmActions"),
        ("aws:rds/eventSubscription:EventSubscription", "snsTopic"),
        ("aws:elasticache/replicationGroup:ReplicationGroup", "notificationTopicArn"),
    } <= wired
    assert sns_wiring_problems(plan) == []
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
    assert any(p.startswith("unknown-publisher.topicArn") and "not in components.keys.SNS_PUBLISHERS" in p for p in problems)
    assert any(p.startswith(f"{alarm['name']}.") and "does not admit cloudwatch.amazonaws.com" in p for p in problems)
