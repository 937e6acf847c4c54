"""The external WebSocket check: a Lambda (outside the VPC, so it takes the public path users
take) run by an EventBridge schedule, with canary/ws_check.py as its code and the pinned
`websockets` package bundled beside it; an alarm to the critical topic when it fails.

Why not a CloudWatch Synthetics canary: a canary run costs ~$0.0012 (+ Lambda and S3
artifacts); every minute that is ~$53/month per stage, for a check whose only artifacts
(screenshots, HAR files) do not exist for a WebSocket. The same check as a plain Lambda costs
cents (docs/monitoring.md), reports the same metrics and is the same script.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pulumi
import pulumi_aws as aws
import websockets

from canary.ws_check import METRIC_NAMESPACE
from components.cloudwatch import log_group, metric_alarm
from components.config import CanaryConfig
from components.context import StageContext
from components.iam import allow, log_streams_write, policy_document, service_trust

SCRIPT = Path(__file__).resolve().parents[2] / "canary" / "ws_check.py"
HANDLER = "ws_check.handler"
RUNTIME = "python3.13"  # supported until 2029-06-30 (Lambda runtimes page)


@dataclass
class WsCanaryArgs:
    ctx: StageContext
    config: CanaryConfig
    url: str  # wss://ws.<domain>
    critical_topic_arn: pulumi.Input[str]


def code_archive() -> pulumi.AssetArchive:
    """The script at the root and the `websockets` package's Python sources (the C speedups
    are optional; they are built for this machine, not for the Lambda)."""
    package = Path(websockets.__file__).resolve().parent
    assets: dict[str, pulumi.Asset | pulumi.Archive] = {"ws_check.py": pulumi.FileAsset(str(SCRIPT))}
    for path in sorted(package.rglob("*.py")):
        assets[f"websockets/{path.relative_to(package).as_posix()}"] = pulumi.FileAsset(str(path))
    return pulumi.AssetArchive(assets)


def schedule_expression(minutes: int) -> str:
    return f"rate({minutes} minute{'s' if minutes > 1 else ''})"


def function_policy(log_group_arn: str) -> str:
    return policy_document(
        [
            log_streams_write(log_group_arn),
            # PutMetricData takes no resource; the namespace condition keeps it to ours.
            allow("CheckMetrics", "cloudwatch:PutMetricData", "*", StringEquals={"cloudwatch:namespace": METRIC_NAMESPACE}),
        ]
    )


class WsCanary(pulumi.ComponentResource):
    """Exposes `.function`, `.alarm`, `.url`."""

    def __init__(self, name: str, args: WsCanaryArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("voip:monitoring:WsCanary", name, None, opts)
        stage, cfg = args.ctx.stage, args.config
        fn_name = f"{stage}-ws-check"
        child = pulumi.ResourceOptions(parent=self)
        self.url = args.url
        logs = log_group(f"{stage}-ws-check-logs", f"/aws/lambda/{fn_name}", cfg.log_retention_days, args.ctx.data_key_arn, child)
        role = aws.iam.Role(
            f"{stage}-ws-check",
            name=f"{stage}-ws-check",
            description=f"{stage}: the external WebSocket check writes its log and its two metrics",
            assume_role_policy=service_trust("lambda.amazonaws.com"),
            opts=child,
        )
        policy = aws.iam.RolePolicy(
            f"{stage}-ws-check-access", role=role.id, policy=logs.arn.apply(function_policy), opts=pulumi.ResourceOptions(parent=role)
        )
        self.function = aws.lambda_.Function(
            fn_name,
            name=fn_name,
            description=f"{stage}: WebSocket upgrade + ping/pong on {args.url} from outside the VPC",
            runtime=RUNTIME,
            architectures=["arm64"],
            handler=HANDLER,
            code=code_archive(),
            role=role.arn,
            memory_size=128,
            # One check at a time: a hung run never piles up behind the schedule.
            reserved_concurrent_executions=1,
            # The check bounds itself; the margin covers start-up and the metric call.
            timeout=cfg.timeout_seconds + 10,
            environment={
                "variables": {"TARGET_URL": args.url, "TIMEOUT_SECONDS": str(cfg.timeout_seconds), "METRIC_NAMESPACE": METRIC_NAMESPACE}
            },
            logging_config={"log_format": "Text", "log_group": logs.name},
            opts=pulumi.ResourceOptions(parent=self, depends_on=[policy, logs]),
        )
        fn_opts = pulumi.ResourceOptions(parent=self.function)
        # A failed check is a metric, not an error; never retry a run (the next one comes anyway).
        aws.lambda_.FunctionEventInvokeConfig(
            f"{fn_name}-invoke", function_name=self.function.name, maximum_retry_attempts=0, maximum_event_age_in_seconds=60, opts=fn_opts
        )
        rule = aws.cloudwatch.EventRule(
            f"{fn_name}-schedule",
            name=f"{fn_name}-schedule",
            description=f"Run {fn_name} every {cfg.interval_minutes} min",
            schedule_expression=schedule_expression(cfg.interval_minutes),
            opts=fn_opts,
        )
        permission = aws.lambda_.Permission(
            f"{fn_name}-from-schedule",
            action="lambda:InvokeFunction",
            function=self.function.name,
            principal="events.amazonaws.com",
            source_arn=rule.arn,
            opts=fn_opts,
        )
        aws.cloudwatch.EventTarget(
            f"{fn_name}-target", rule=rule.name, arn=self.function.arn, opts=pulumi.ResourceOptions(parent=rule, depends_on=[permission])
        )
        self.alarm = metric_alarm(
            f"{fn_name}-failing",
            (
                f"{args.url}: the WebSocket upgrade or ping failed {cfg.failures_to_alarm} times in a row "
                "(or the check did not run): users cannot connect to signaling"
            ),
            args.critical_topic_arn,
            child,
            namespace=METRIC_NAMESPACE,
            metric_name="Success",
            dimensions={"Target": args.url},
            statistic="Minimum",
            period=60 * cfg.interval_minutes,
            evaluation_periods=cfg.failures_to_alarm,
            datapoints_to_alarm=cfg.failures_to_alarm,
            threshold=1,
            comparison_operator="LessThanThreshold",
            # No datapoint means the check itself is broken: as bad as a failed check.
            treat_missing_data="breaching",
        )
        self.register_outputs({"functionName": self.function.name, "alarmName": self.alarm.name, "url": args.url})
