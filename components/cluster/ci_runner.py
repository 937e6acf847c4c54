"""CI inside the stage's VPC: an AWS CodeBuild project that serves as a GitHub Actions runner
(webhook on WORKFLOW_JOB_QUEUED). The preview/up jobs of this stage run there, so they reach
the cluster's private API endpoint without it being open to the internet.

The runner has no AWS permission of its own beyond its logs and VPC interfaces: the jobs assume
the stage's preview/deploy role through GitHub OIDC, exactly as on GitHub-hosted runners. The
CodeBuild-GitHub connection is account-wide and made once by voip-bootstrap (the one manual
step: approve it in the console)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from components.cloudwatch import log_group
from components.config import CiRunnerConfig
from components.context import StageContext
from components.iam import allow, log_streams_write, policy_document


def runner_project_name(stage: str) -> str:
    """The CodeBuild project; workflows run on `codebuild-<this>-<run_id>-<run_attempt>`."""
    return f"{stage}-voip-ci-runner"


@dataclass
class CiRunnerArgs:
    ctx: StageContext
    config: CiRunnerConfig
    vpc_id: pulumi.Input[str]
    private_subnet_ids: Sequence[pulumi.Input[str]]


class CiRunner(pulumi.ComponentResource):
    """Attributes: `project` (aws.codebuild.Project), `security_group_id` (admit it where the jobs go)."""

    def __init__(self, name: str, args: CiRunnerArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("voip:ci:CiRunner", name, None, opts)
        stage, cfg, region, account_id = args.ctx.stage, args.config, args.ctx.region, args.ctx.account_id
        child = pulumi.ResourceOptions(parent=self)
        project_name = runner_project_name(stage)

        self.security_group = aws.ec2.SecurityGroup(
            f"{stage}-ci-runner",
            vpc_id=args.vpc_id,
            description=f"{project_name}: GitHub Actions jobs (no inbound; out to GitHub, AWS APIs, the cluster API)",
            egress=[
                aws.ec2.SecurityGroupEgressArgs(
                    protocol="tcp", from_port=443, to_port=443, cidr_blocks=["0.0.0.0/0"], description="HTTPS out"
                )
            ],
            tags={"Name": f"{stage}-ci-runner"},
            opts=child,
        )
        self.security_group_id = self.security_group.id
        # Under the stage's key (its policy admits this account's log groups).
        self.log_group = log_group(
            f"{stage}-ci-runner-logs", f"/aws/codebuild/{project_name}", cfg.log_retention_days, args.ctx.data_key_arn, child
        )
        self.role = aws.iam.Role(
            f"{stage}-ci-runner",
            description=f"{project_name}: logs and VPC interfaces only (jobs assume their own roles through OIDC)",
            assume_role_policy=pulumi.Output.from_input(account_id).apply(
                lambda acct: policy_document(
                    [
                        {
                            "Effect": "Allow",
                            "Principal": {"Service": "codebuild.amazonaws.com"},
                            "Action": "sts:AssumeRole",
                            "Condition": {
                                "StringEquals": {
                                    "aws:SourceAccount": acct,
                                    "aws:SourceArn": f"arn:aws:codebuild:{region}:{acct}:project/{project_name}",
                                }
                            },
                        }
                    ]
                )
            ),
            opts=child,
        )
        policy = aws.iam.RolePolicy(
            f"{stage}-ci-runner",
            role=self.role.id,
            policy=pulumi.Output.all(account_id, self.log_group.arn, args.vpc_id, self.security_group.id, *args.private_subnet_ids).apply(
                lambda a: _runner_policy(a[0], region, a[1], a[2], a[3], list(a[4:]))
            ),
            opts=pulumi.ResourceOptions(parent=self.role),
        )
        self.project = aws.codebuild.Project(
            f"{stage}-ci-runner",
            name=project_name,
            description=f"GitHub Actions runner of voip-infra {stage} inside its VPC",
            service_role=self.role.arn,
            build_timeout=cfg.timeout_minutes,
            source=aws.codebuild.ProjectSourceArgs(type="GITHUB", location=f"https://github.com/{cfg.repository}.git"),
            artifacts=aws.codebuild.ProjectArtifactsArgs(type="NO_ARTIFACTS"),
            environment=aws.codebuild.ProjectEnvironmentArgs(
                type="LINUX_CONTAINER", image=cfg.image, compute_type=cfg.compute_type, image_pull_credentials_type="CODEBUILD"
            ),
            vpc_config=aws.codebuild.ProjectVpcConfigArgs(
                vpc_id=args.vpc_id, subnets=list(args.private_subnet_ids), security_group_ids=[self.security_group.id]
            ),
            logs_config=aws.codebuild.ProjectLogsConfigArgs(
                cloudwatch_logs=aws.codebuild.ProjectLogsConfigCloudwatchLogsArgs(status="ENABLED", group_name=self.log_group.name)
            ),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[policy]),
        )
        # One build per queued workflow job that asks for this project's label.
        aws.codebuild.Webhook(
            f"{stage}-ci-runner",
            project_name=self.project.name,
            build_type="BUILD",
            filter_groups=[
                aws.codebuild.WebhookFilterGroupArgs(
                    filters=[aws.codebuild.WebhookFilterGroupFilterArgs(type="EVENT", pattern="WORKFLOW_JOB_QUEUED")]
                )
            ],
            opts=pulumi.ResourceOptions(parent=self.project),
        )
        self.register_outputs({"projectName": self.project.name, "securityGroupId": self.security_group.id})


def _runner_policy(account_id: str, region: str, log_group_arn: str, vpc_id: str, security_group_id: str, subnet_ids: list[str]) -> str:
    ec2 = f"arn:aws:ec2:{region}:{account_id}"
    subnets = [f"{ec2}:subnet/{s}" for s in subnet_ids]
    security_group_arn = f"{ec2}:security-group/{security_group_id}"
    interfaces = f"{ec2}:network-interface/*"
    return policy_document(
        [
            log_streams_write(log_group_arn),
            # What CodeBuild needs to place the build in the VPC (AWS CodeBuild user guide, VPC):
            # reads anywhere (they take no resource), writes only in the stage's VPC.
            allow(
                "VpcDescribe",
                [
                    "ec2:DescribeDhcpOptions",
                    "ec2:DescribeNetworkInterfaces",
                    "ec2:DescribeSubnets",
                    "ec2:DescribeSecurityGroups",
                    "ec2:DescribeVpcs",
                ],
                "*",
            ),
            allow("VpcInterfacesCreate", "ec2:CreateNetworkInterface", [interfaces, *subnets, security_group_arn]),
            allow("VpcInterfacesDelete", "ec2:DeleteNetworkInterface", interfaces, ArnEquals={"ec2:Vpc": f"{ec2}:vpc/{vpc_id}"}),
            allow(
                "VpcInterfacesInTheStageSubnets",
                "ec2:CreateNetworkInterfacePermission",
                interfaces,
                StringEquals={"ec2:AuthorizedService": "codebuild.amazonaws.com"},
                ArnEquals={"ec2:Subnet": subnets},
            ),
        ]
    )
