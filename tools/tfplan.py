"""`tools tfplan`: a plan file (v1) as the Terraform plan JSON peer scanners read (checkov
`--framework terraform_plan`).

A translation, never an edit: every AWS resource of the plan appears once, with the values the
program gave it, under the names Terraform (and therefore the Pulumi AWS bridge underneath)
uses for the same resource:
- `address` `<terraform type>.<resource name>`, `type` from TYPES (the bridge's resource map for
  every type this program creates; a type not in it is an error, so a new one cannot slip by);
- attributes snake_case; the fields the bridge pluralises (Terraform's repeated blocks, e.g.
  `default_action`, `ordered_cache_behavior`, `rule`) get their Terraform names back (RENAMES);
- nested objects become one-element lists (Terraform nested blocks), except map attributes
  (tags, dimensions, labels, ...: MAPS);
- `configuration.root_module.resources[].expressions.<attr>.references` where a value names
  another resource (its id, its bucket name, or an ARN ending in its id), so graph checks link a
  bucket to its public access block, an instance to its launch template, a distribution to its
  web ACL, a VPC to its flow log.
Kubernetes, Helm and random resources are not Terraform AWS resources and are left out (the
rendered charts are scanned by checkov's kubernetes framework, tests/test_chart.py).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

FORMAT_VERSION = "1.2"
TERRAFORM_VERSION = "1.9.8"
SECRET = "[secret]"
UNKNOWN = "[unknown]"

# Pulumi type token -> Terraform resource type (pulumi-aws bridge: provider/resources.go).
TYPES = {
    "aws:acm/certificate:Certificate": "aws_acm_certificate",
    "aws:acm/certificateValidation:CertificateValidation": "aws_acm_certificate_validation",
    "aws:cloudfront/distribution:Distribution": "aws_cloudfront_distribution",
    "aws:cloudfront/originAccessControl:OriginAccessControl": "aws_cloudfront_origin_access_control",
    "aws:cloudfront/responseHeadersPolicy:ResponseHeadersPolicy": "aws_cloudfront_response_headers_policy",
    "aws:cloudfront/vpcOrigin:VpcOrigin": "aws_cloudfront_vpc_origin",
    "aws:cloudwatch/logGroup:LogGroup": "aws_cloudwatch_log_group",
    "aws:cloudwatch/logResourcePolicy:LogResourcePolicy": "aws_cloudwatch_log_resource_policy",
    "aws:cloudwatch/metricAlarm:MetricAlarm": "aws_cloudwatch_metric_alarm",
    "aws:dms/endpoint:Endpoint": "aws_dms_endpoint",
    "aws:dms/eventSubscription:EventSubscription": "aws_dms_event_subscription",
    "aws:dms/replicationInstance:ReplicationInstance": "aws_dms_replication_instance",
    "aws:dms/replicationSubnetGroup:ReplicationSubnetGroup": "aws_dms_replication_subnet_group",
    "aws:dms/replicationTask:ReplicationTask": "aws_dms_replication_task",
    "aws:ec2/customerGateway:CustomerGateway": "aws_customer_gateway",
    "aws:ec2/defaultSecurityGroup:DefaultSecurityGroup": "aws_default_security_group",
    "aws:ec2/eip:Eip": "aws_eip",
    "aws:ec2/eipAssociation:EipAssociation": "aws_eip_association",
    "aws:ec2/flowLog:FlowLog": "aws_flow_log",
    "aws:ec2/instance:Instance": "aws_instance",
    "aws:ec2/internetGateway:InternetGateway": "aws_internet_gateway",
    "aws:ec2/launchTemplate:LaunchTemplate": "aws_launch_template",
    "aws:ec2/natGateway:NatGateway": "aws_nat_gateway",
    "aws:ec2/route:Route": "aws_route",
    "aws:ec2/routeTable:RouteTable": "aws_route_table",
    "aws:ec2/routeTableAssociation:RouteTableAssociation": "aws_route_table_association",
    "aws:ec2/securityGroup:SecurityGroup": "aws_security_group",
    "aws:ec2/subnet:Subnet": "aws_subnet",
    "aws:ec2/vpc:Vpc": "aws_vpc",
    "aws:ec2/vpcEndpoint:VpcEndpoint": "aws_vpc_endpoint",
    "aws:ec2/vpnConnection:VpnConnection": "aws_vpn_connection",
    "aws:ec2/vpnConnectionRoute:VpnConnectionRoute": "aws_vpn_connection_route",
    "aws:ec2/vpnGateway:VpnGateway": "aws_vpn_gateway",
    "aws:ec2/vpnGatewayRoutePropagation:VpnGatewayRoutePropagation": "aws_vpn_gateway_route_propagation",
    "aws:ecr/pullThroughCacheRule:PullThroughCacheRule": "aws_ecr_pull_through_cache_rule",
    "aws:eks/accessEntry:AccessEntry": "aws_eks_access_entry",
    "aws:eks/accessPolicyAssociation:AccessPolicyAssociation": "aws_eks_access_policy_association",
    "aws:eks/addon:Addon": "aws_eks_addon",
    "aws:eks/cluster:Cluster": "aws_eks_cluster",
    "aws:eks/nodeGroup:NodeGroup": "aws_eks_node_group",
    "aws:eks/podIdentityAssociation:PodIdentityAssociation": "aws_eks_pod_identity_association",
    "aws:elasticache/parameterGroup:ParameterGroup": "aws_elasticache_parameter_group",
    "aws:elasticache/replicationGroup:ReplicationGroup": "aws_elasticache_replication_group",
    "aws:elasticache/subnetGroup:SubnetGroup": "aws_elasticache_subnet_group",
    "aws:iam/accessKey:AccessKey": "aws_iam_access_key",
    "aws:iam/instanceProfile:InstanceProfile": "aws_iam_instance_profile",
    "aws:iam/policy:Policy": "aws_iam_policy",
    "aws:iam/role:Role": "aws_iam_role",
    "aws:iam/rolePolicy:RolePolicy": "aws_iam_role_policy",
    "aws:iam/rolePolicyAttachment:RolePolicyAttachment": "aws_iam_role_policy_attachment",
    "aws:iam/user:User": "aws_iam_user",
    "aws:iam/userPolicy:UserPolicy": "aws_iam_user_policy",
    "aws:kms/alias:Alias": "aws_kms_alias",
    "aws:kms/key:Key": "aws_kms_key",
    "aws:lb/listener:Listener": "aws_lb_listener",
    "aws:lb/listenerRule:ListenerRule": "aws_lb_listener_rule",
    "aws:lb/loadBalancer:LoadBalancer": "aws_lb",
    "aws:lb/targetGroup:TargetGroup": "aws_lb_target_group",
    "aws:lb/targetGroupAttachment:TargetGroupAttachment": "aws_lb_target_group_attachment",
    "aws:rds/eventSubscription:EventSubscription": "aws_db_event_subscription",
    "aws:rds/instance:Instance": "aws_db_instance",
    "aws:rds/parameterGroup:ParameterGroup": "aws_db_parameter_group",
    "aws:rds/subnetGroup:SubnetGroup": "aws_db_subnet_group",
    "aws:route53/healthCheck:HealthCheck": "aws_route53_health_check",
    "aws:route53/queryLog:QueryLog": "aws_route53_query_log",
    "aws:route53/record:Record": "aws_route53_record",
    "aws:route53/zone:Zone": "aws_route53_zone",
    "aws:s3/bucket:Bucket": "aws_s3_bucket",
    "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration": "aws_s3_bucket_lifecycle_configuration",
    "aws:s3/bucketLogging:BucketLogging": "aws_s3_bucket_logging",
    "aws:s3/bucketOwnershipControls:BucketOwnershipControls": "aws_s3_bucket_ownership_controls",
    "aws:s3/bucketPolicy:BucketPolicy": "aws_s3_bucket_policy",
    "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock": "aws_s3_bucket_public_access_block",
    "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration": (
        "aws_s3_bucket_server_side_encryption_configuration"
    ),
    "aws:s3/bucketVersioning:BucketVersioning": "aws_s3_bucket_versioning",
    "aws:secretsmanager/secret:Secret": "aws_secretsmanager_secret",
    "aws:secretsmanager/secretRotation:SecretRotation": "aws_secretsmanager_secret_rotation",
    "aws:secretsmanager/secretVersion:SecretVersion": "aws_secretsmanager_secret_version",
    "aws:serverlessrepository/cloudFormationStack:CloudFormationStack": "aws_serverlessapplicationrepository_cloudformation_stack",
    "aws:sns/topic:Topic": "aws_sns_topic",
    "aws:sns/topicPolicy:TopicPolicy": "aws_sns_topic_policy",
    "aws:sns/topicSubscription:TopicSubscription": "aws_sns_topic_subscription",
    "aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule": "aws_vpc_security_group_egress_rule",
    "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule": "aws_vpc_security_group_ingress_rule",
    "aws:wafv2/ipSet:IpSet": "aws_wafv2_ip_set",
    "aws:wafv2/webAcl:WebAcl": "aws_wafv2_web_acl",
    "aws:wafv2/webAclLoggingConfiguration:WebAclLoggingConfiguration": "aws_wafv2_web_acl_logging_configuration",
    "aws:wafv2/webAclAssociation:WebAclAssociation": "aws_wafv2_web_acl_association",
    "aws:autoscaling/group:Group": "aws_autoscaling_group",
    "aws:backup/plan:Plan": "aws_backup_plan",
    "aws:backup/selection:Selection": "aws_backup_selection",
    "aws:backup/vault:Vault": "aws_backup_vault",
    "aws:backup/vaultLockConfiguration:VaultLockConfiguration": "aws_backup_vault_lock_configuration",
    "aws:backup/vaultNotifications:VaultNotifications": "aws_backup_vault_notifications",
    "aws:backup/vaultPolicy:VaultPolicy": "aws_backup_vault_policy",
    "aws:backup/regionSettings:RegionSettings": "aws_backup_region_settings",
    "aws:scheduler/schedule:Schedule": "aws_scheduler_schedule",
    "aws:scheduler/scheduleGroup:ScheduleGroup": "aws_scheduler_schedule_group",
    "aws:chatbot/slackChannelConfiguration:SlackChannelConfiguration": "aws_chatbot_slack_channel_configuration",
    "aws:cloudwatch/eventRule:EventRule": "aws_cloudwatch_event_rule",
    "aws:cloudwatch/eventTarget:EventTarget": "aws_cloudwatch_event_target",
    "aws:cloudwatch/compositeAlarm:CompositeAlarm": "aws_cloudwatch_composite_alarm",
    "aws:cloudwatch/dashboard:Dashboard": "aws_cloudwatch_dashboard",
    "aws:cloudwatch/logSubscriptionFilter:LogSubscriptionFilter": "aws_cloudwatch_log_subscription_filter",
    "aws:cloudwatch/logMetricFilter:LogMetricFilter": "aws_cloudwatch_log_metric_filter",
    "aws:lambda/function:Function": "aws_lambda_function",
    "aws:lambda/functionEventInvokeConfig:FunctionEventInvokeConfig": "aws_lambda_function_event_invoke_config",
    "aws:lambda/permission:Permission": "aws_lambda_permission",
    "aws:ecr/repositoryCreationTemplate:RepositoryCreationTemplate": "aws_ecr_repository_creation_template",
    "aws:ecr/repository:Repository": "aws_ecr_repository",
    "aws:codebuild/project:Project": "aws_codebuild_project",
    "aws:codebuild/webhook:Webhook": "aws_codebuild_webhook",
    "aws:ssm/parameter:Parameter": "aws_ssm_parameter",
    "aws:synthetics/canary:Canary": "aws_synthetics_canary",
    "aws:iam/openIdConnectProvider:OpenIdConnectProvider": "aws_iam_openid_connect_provider",
    "aws:sqs/queue:Queue": "aws_sqs_queue",
}
NOT_TERRAFORM_AWS = ("kubernetes:", "random:", "pulumi:", "tls:", "command:")

# Fields the bridge pluralises (Terraform repeated blocks keep the singular name), by the
# snake_case Pulumi name; `*` applies to every type. Terraform names that are plural already
# (block_device_mappings, tag_specifications, redacted_fields, access_logs) are absent.
RENAMES: dict[str, dict[str, str]] = {
    "*": {"tags": "tags"},
    "aws_cloudfront_distribution": {
        "ordered_cache_behaviors": "ordered_cache_behavior",
        "origins": "origin",
        "custom_headers": "custom_header",
        "origin_groups": "origin_group",
        "custom_error_responses": "custom_error_response",
        "lambda_function_associations": "lambda_function_association",
        "function_associations": "function_association",
    },
    "aws_instance": {"ebs_block_devices": "ebs_block_device", "ephemeral_block_devices": "ephemeral_block_device"},
    "aws_lb_listener": {"default_actions": "default_action"},
    "aws_lb_listener_rule": {"actions": "action", "conditions": "condition"},
    "aws_lb": {"subnet_mappings": "subnet_mapping"},
    "aws_wafv2_web_acl": {"rules": "rule", "rule_action_overrides": "rule_action_override", "excluded_rules": "excluded_rule"},
    "aws_wafv2_web_acl_logging_configuration": {"filters": "filter", "conditions": "condition"},
    "aws_s3_bucket_lifecycle_configuration": {"rules": "rule"},
    "aws_s3_bucket_server_side_encryption_configuration": {"rules": "rule"},
    "aws_elasticache_replication_group": {"log_delivery_configurations": "log_delivery_configuration"},
    "aws_elasticache_parameter_group": {"parameters": "parameter"},
    "aws_db_parameter_group": {"parameters": "parameter"},
    "aws_route53_record": {"aliases": "alias", "weighted_routing_policies": "weighted_routing_policy"},
    "aws_eks_addon": {"pod_identity_associations": "pod_identity_association"},
    "aws_eks_node_group": {"taints": "taint"},
    "aws_autoscaling_group": {"tags": "tag"},
    "aws_backup_plan": {"rules": "rule", "copy_actions": "copy_action", "advanced_backup_settings": "advanced_backup_setting"},
    "aws_backup_selection": {"selection_tags": "selection_tag"},
    "aws_codebuild_project": {"environment_variables": "environment_variable", "secondary_sources": "secondary_sources"},
    "aws_codebuild_webhook": {"filter_groups": "filter_group", "filters": "filter"},
    "aws_cloudwatch_metric_alarm": {"metric_queries": "metric_query"},
}
# Object-valued attributes that are Terraform maps, not blocks.
MAPS: dict[str, set[str]] = {
    "*": {"tags", "tags_all"},
    "aws_cloudwatch_metric_alarm": {"dimensions"},
    "aws_eks_node_group": {"labels"},
    "aws_serverlessapplicationrepository_cloudformation_stack": {"parameters", "outputs"},
    "aws_lambda_function": {"variables"},
    "aws_cloudwatch_event_target": {"input_paths"},
    "aws_backup_plan": {"backup_options"},
    "aws_route53_record": set(),
}
# When a value is a computed attribute of another resource (a zone's zone_id, an alias target's
# DNS name), the plan has no such value to match, but the dependency the reference created says
# which resource it came from: `<stem>_id`/`<stem>_arn` attributes link to the dependency whose
# Terraform type ends with the stem (or is STEM_TYPES[stem]); an alias block's `name` links to the
# dependency it aliases.
# Types whose `name` is what other resources refer to them by (parameter_group_name = "x").
NAME_KEYED = (
    "aws_db_parameter_group",
    "aws_db_subnet_group",
    "aws_elasticache_parameter_group",
    "aws_elasticache_subnet_group",
    "aws_iam_role",
    "aws_iam_instance_profile",
    "aws_dms_replication_subnet_group",
)
# Terraform's `ingress`/`egress` of aws_security_group are attributes-as-blocks: every field is
# always present in a plan (unset ones empty); the bridge sends only what the program set.
_SG_RULE_DEFAULTS = {
    "cidr_blocks": [],
    "ipv6_cidr_blocks": [],
    "prefix_list_ids": [],
    "security_groups": [],
    "self": False,
    "description": "",
}
# Read only (merged into a fresh dict per block), so both directions share one table.
BLOCK_DEFAULTS = {("aws_security_group", "ingress"): _SG_RULE_DEFAULTS, ("aws_security_group", "egress"): _SG_RULE_DEFAULTS}
STEM_TYPES = {"load_balancer": "aws_lb", "hosted_zone": "aws_route53_zone", "kms_key": "aws_kms_key", "key": "aws_kms_key"}
ALIAS_TARGETS = ("aws_cloudfront_distribution", "aws_lb")


def snake(name: str) -> str:
    s = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", name)
    s = re.sub(r"([A-Z]+)([A-Z][a-z])", r"\1_\2", s)
    return s.lower()


def _tf_name(tf_type: str, key: str) -> str:
    k = snake(key)
    return RENAMES.get(tf_type, {}).get(k) or RENAMES["*"].get(k) or k


def _is_map(tf_type: str, key: str) -> bool:
    return key in MAPS["*"] or key in MAPS.get(tf_type, set())


def _value(tf_type: str, key: str, value: Any) -> Any:
    """A property value in Terraform's shape (nested objects as blocks unless a map)."""
    if isinstance(value, dict):
        if _is_map(tf_type, key):
            return dict(value)
        return [_block(tf_type, value)]
    if isinstance(value, list):
        defaults = BLOCK_DEFAULTS.get((tf_type, key), {})
        return [{**defaults, **_block(tf_type, v)} if isinstance(v, dict) else v for v in value]
    return value


def _block(tf_type: str, props: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in props.items():
        name = _tf_name(tf_type, k)
        out[name] = _value(tf_type, name, v)
    return out


def _marks(values: Any, marker: str) -> Any:
    """Terraform's shadow structure of `values`: True where the value is `marker`, nested like
    the values (`sensitive_values` for secrets, `after_unknown` for computed values)."""
    if isinstance(values, dict):
        out = {k: m for k, v in values.items() if (m := _marks(v, marker)) not in (False, {}, [])}
        return out
    if isinstance(values, list):
        marks = [_marks(v, marker) for v in values]
        return marks if any(m not in (False, {}, []) for m in marks) else []
    return values == marker


def _address(tf_type: str, name: str) -> str:
    return f"{tf_type}.{re.sub(r'[^A-Za-z0-9_-]', '_', name)}"


def _index(resources: list[dict[str, Any]]) -> dict[str, tuple[str, str]]:
    """Value -> (address, attribute): what a reference to each resource looks like in props."""
    out: dict[str, tuple[str, str]] = {}
    for r in resources:
        addr = r["address"]
        if r["_id"]:
            out[r["_id"]] = (addr, "id")
        if r["type"] == "aws_s3_bucket" and r["values"].get("bucket"):
            out[str(r["values"]["bucket"])] = (addr, "bucket")
        if r["type"] in NAME_KEYED and r["values"].get("name"):
            out[str(r["values"]["name"])] = (addr, "name")
    return out


def _references(value: Any, index: dict[str, tuple[str, str]], ids: dict[str, tuple[str, str]]) -> list[str]:
    if isinstance(value, str):
        hit = index.get(value)
        if hit is None and value.startswith("arn:"):
            tail = re.split(r"[/:]", value)[-1]
            hit = ids.get(tail)
            if hit is not None:
                hit = (hit[0], "arn")
        if hit is None and ".s3." in value:  # a bucket's domain name (CloudFront logging)
            hit = index.get(value.split(".s3.", 1)[0])
        return [f"{hit[0]}.{hit[1]}", hit[0]] if hit else []
    if isinstance(value, list):
        return [ref for v in value for ref in _references(v, index, ids)]
    return []


def _by_dependency(key: str, block: str, deps: list[tuple[str, str]]) -> list[str]:
    """References a computed value implies: the one dependency of the type its attribute names."""
    if block == "alias" and key == "name":
        hits = [addr for addr, typ in deps if typ in ALIAS_TARGETS]
        return [f"{hits[0]}.domain_name", hits[0]] if len(hits) == 1 else []
    if key == "records":  # an A record of an Elastic IP's address
        hits = [addr for addr, typ in deps if typ == "aws_eip"]
        return [f"{hits[0]}.public_ip", hits[0]] if len(hits) == 1 else []
    m = re.fullmatch(r"(.+)_(id|arn)", key)
    if not m:
        return []
    stem = m.group(1)
    want = STEM_TYPES.get(stem)
    hits = [addr for addr, typ in deps if typ == want or (want is None and typ.endswith(f"_{stem}"))]
    return [f"{hits[0]}.{m.group(2)}", hits[0]] if len(hits) == 1 else []


def _expressions(
    values: dict[str, Any],
    index: dict[str, tuple[str, str]],
    ids: dict[str, tuple[str, str]],
    deps: list[tuple[str, str]],
    block: str = "",
) -> dict[str, Any]:
    """Terraform configuration expressions: `{attr: {references: [...]}}`, nested blocks as lists."""
    out: dict[str, Any] = {}
    for k, v in values.items():
        if isinstance(v, list) and v and all(isinstance(b, dict) for b in v):
            blocks = [_expressions(b, index, ids, deps, k) for b in v]
            if any(blocks):
                out[k] = blocks
            continue
        refs = _references(v, index, ids)
        if not refs and v not in ("", [], None):
            refs = _by_dependency(k, block, deps)
        if refs:
            out[k] = {"references": refs}
    return out


def translate(plan: dict[str, Any]) -> dict[str, Any]:
    resources: list[dict[str, Any]] = []
    for r in plan["resources"]:
        if not r.get("custom", True) or r["type"].startswith(NOT_TERRAFORM_AWS):
            continue
        tf_type = TYPES.get(r["type"])
        if tf_type is None:
            raise KeyError(f"{r['type']}: no Terraform type known; add it to tools/tfplan.py TYPES (pulumi-aws bridge resource map)")
        values = _block(tf_type, r.get("props") or {})
        resources.append(
            {
                "address": _address(tf_type, r["name"]),
                "mode": "managed",
                "type": tf_type,
                "name": re.sub(r"[^A-Za-z0-9_-]", "_", r["name"]),
                "provider_name": "registry.terraform.io/hashicorp/aws",
                "schema_version": 0,
                "values": values,
                # Secrets stay redacted as the plan file has them; Terraform marks them sensitive.
                "sensitive_values": _marks(values, SECRET),
                "_id": r.get("id"),
                "_urn": r["urn"],
                "_deps": list(r.get("dependsOn") or []),
            }
        )
    index = _index(resources)
    ids = {r["_id"]: (r["address"], "id") for r in resources if r["_id"]}
    by_urn = {r["_urn"]: (r["address"], r["type"]) for r in resources}
    config_resources = []
    for r in resources:
        deps = [by_urn[u] for u in r["_deps"] if u in by_urn]
        config_resources.append(
            {
                "address": r["address"],
                "mode": "managed",
                "type": r["type"],
                "name": r["name"],
                "provider_config_key": "aws",
                "expressions": _expressions(r["values"], {k: v for k, v in index.items() if v[0] != r["address"]}, ids, deps),
                "schema_version": 0,
            }
        )
    planned = [{k: v for k, v in r.items() if not k.startswith("_")} for r in resources]
    return {
        "format_version": FORMAT_VERSION,
        "terraform_version": TERRAFORM_VERSION,
        "planned_values": {"root_module": {"resources": planned}},
        "resource_changes": [
            {
                "address": r["address"],
                "mode": "managed",
                "type": r["type"],
                "name": r["name"],
                "provider_name": r["provider_name"],
                "change": {
                    "actions": ["create"],
                    "before": None,
                    "after": r["values"],
                    "after_unknown": _marks(r["values"], UNKNOWN),
                    "after_sensitive": r["sensitive_values"],
                },
            }
            for r in planned
        ],
        "configuration": {
            "provider_config": {"aws": {"name": "aws", "full_name": "registry.terraform.io/hashicorp/aws"}},
            "root_module": {"resources": config_resources},
        },
        # Where each address came from (not part of Terraform's format; scanners ignore it).
        "pulumi_urns": {r["address"]: r["_urn"] for r in resources},
    }


def load_skips(path: Path) -> list[dict[str, Any]]:
    """policies/checkov-skips.yaml: [{check, reason, resources?}]."""
    import yaml

    return list((yaml.safe_load(Path(path).read_text()) or {}).get("skips") or [])


def uncovered(failed: list[dict[str, Any]], skips: list[dict[str, Any]], stage: str) -> tuple[list[str], set[int]]:
    """Failed checks (checkov JSON `failed_checks` entries) no skip covers, as `CHECK address`
    lines, and the indexes of the skips that covered something."""
    out, used = [], set()
    for f in failed:
        name = f["resource"].split(".", 1)[1]
        hit = next(
            (
                i
                for i, s in enumerate(skips)
                if s["check"] == f["check_id"] and (not s.get("resources") or name in {f"{stage}-{r}" for r in s["resources"]})
            ),
            None,
        )
        if hit is None:
            out.append(f"{f['check_id']} {f['resource']}: {f['check_name']}")
        else:
            used.add(hit)
    return out, used


def write(plan_path: Path, out: Path | None) -> str:
    plan = json.loads(Path(plan_path).read_text())
    text = json.dumps(translate(plan), indent=1, sort_keys=False)
    if out is not None:
        Path(out).write_text(text)
    return text


__all__ = ["TYPES", "translate", "write", "snake", "load_skips", "uncovered"]
