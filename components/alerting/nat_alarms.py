"""CloudWatch alarms on every NAT gateway of the stage (AWS/NATGateway, per NatGatewayId):

- ErrorPortAllocation > 0: the gateway ran out of source ports to one destination (55,000
  concurrent connections per destination IP/port); new connections from the nodes fail.
- PacketsDropCount above 0.01 % of the packets the gateway received (AWS's recommended alarm:
  drops as a share of PacketsInFromSource + PacketsInFromDestination), a metric-math alarm.

Both to the stage's warning topic (egress degraded, not down)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from components.cloudwatch import metric_alarm
from components.context import StageContext

DROP_PERCENT_THRESHOLD = 0.01


@dataclass
class NatAlarmsArgs:
    ctx: StageContext
    # (name suffix, NAT gateway id) per gateway, e.g. ("a", "nat-0123...").
    gateways: Sequence[tuple[str, pulumi.Input[str]]]


def _metric(id_: str, name: str, gateway_id: pulumi.Input[str]) -> dict:
    return {
        "id": id_,
        "return_data": False,
        "metric": {
            "namespace": "AWS/NATGateway",
            "metric_name": name,
            "dimensions": {"NatGatewayId": gateway_id},
            "period": 60,
            "stat": "Sum",
        },
    }


class NatAlarms(pulumi.ComponentResource):
    """Two alarms per NAT gateway. Exposes `.alarms` (gateway suffix -> [port, drops])."""

    def __init__(self, name: str, args: NatAlarmsArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("voip:network:NatAlarms", name, None, opts)
        self.alarms: dict[str, list[aws.cloudwatch.MetricAlarm]] = {}
        topic = args.ctx.alarm_topic_arn
        for suffix, gateway_id in args.gateways:
            nat = f"{args.ctx.stage}-nat-{suffix}"
            child = pulumi.ResourceOptions(parent=self)
            ports = metric_alarm(
                f"{nat}-port-allocation",
                f"{nat} could not allocate a source port: connections from the private subnets fail",
                topic,
                child,
                name=f"{nat}-error-port-allocation",
                namespace="AWS/NATGateway",
                metric_name="ErrorPortAllocation",
                dimensions={"NatGatewayId": gateway_id},
                statistic="Sum",
                period=60,
                evaluation_periods=5,
                datapoints_to_alarm=2,
                threshold=0,
                comparison_operator="GreaterThanThreshold",
                treat_missing_data="notBreaching",
            )
            drops = metric_alarm(
                f"{nat}-packets-dropped",
                f"{nat} drops more than {DROP_PERCENT_THRESHOLD}% of its packets",
                topic,
                child,
                metric_queries=[
                    _metric("drops", "PacketsDropCount", gateway_id),
                    _metric("from_src", "PacketsInFromSource", gateway_id),
                    _metric("from_dst", "PacketsInFromDestination", gateway_id),
                    {
                        "id": "drop_pct",
                        "expression": "100 * drops / (from_src + from_dst)",
                        "label": "dropped packets, percent",
                        "return_data": True,
                    },
                ],
                evaluation_periods=5,
                datapoints_to_alarm=3,
                threshold=DROP_PERCENT_THRESHOLD,
                comparison_operator="GreaterThanThreshold",
                treat_missing_data="notBreaching",
            )
            self.alarms[suffix] = [ports, drops]
        self.register_outputs({"alarmCount": sum(len(a) for a in self.alarms.values())})
