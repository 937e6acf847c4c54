"""The seams between tiers, as Platform wires them: each tier receives exactly what the
other one created (followed by mocked id or ARN), per stack."""

from __future__ import annotations

import json

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


# Who publishes to the stage's alarm topic, by the resource that makes it publish.
_PUBLISHERS = {
    "aws:cloudwatch/metricAlarm:MetricAlarm": ("alarmActions", "cloudwatch.amazonaws.com"),
    "aws:rds/eventSubscription:EventSubscription": ("snsTopic", "events.rds.amazonaws.com"),
    "aws:elasticache/replicationGroup:ReplicationGroup": ("notificationTopicArn", "elasticache.amazonaws.com"),
    "aws:dms/eventSubscription:EventSubscription": ("snsTopicArn", "dms.amazonaws.com"),
}


def test_every_service_publishing_to_the_encrypted_alarm_topic_may_use_its_key(plan):
    """SNS drops a publish whose service cannot generate the topic key's data key: each
    publisher of the regional alarm topic must be a principal of the data key's policy."""
    topic_arn = plan["outputs"]["alarmTopicArn"]
    (topic,) = [t for t in plan.of_type("aws:sns/topic:Topic") if t["name"].endswith("-alarms")]
    (key,) = [k for k in plan.of_type("aws:kms/key:Key") if topic["props"]["kmsMasterKeyId"].endswith("/" + k["id"])]
    statements = json.loads(key["props"]["policy"])["Statement"]
    allowed = {
        svc
        for s in statements
        if s["Effect"] == "Allow" and "kms:GenerateDataKey*" in s["Action"]
        for svc in (
            [s["Principal"].get("Service")] if isinstance(s["Principal"].get("Service"), str) else s["Principal"].get("Service", [])
        )
    }
    publishers = set()
    for typ, (prop, service) in _PUBLISHERS.items():
        for r in plan.of_type(typ):
            target = r["props"].get(prop)
            if target == topic_arn or (isinstance(target, list) and topic_arn in target):
                publishers.add(service)
    assert {"cloudwatch.amazonaws.com", "events.rds.amazonaws.com", "elasticache.amazonaws.com"} <= publishers
    assert publishers <= allowed, sorted(publishers - allowed)
