"""On-demand list prices for Seoul (ap-northeast-2), USD, used by `tools cost`.

APPROXIMATE. Written down from memory of the AWS public price pages (aws.amazon.com/<service>/pricing,
region "Asia Pacific (Seoul)", Linux, on-demand, no upfront, standard support) as of 2025-2026, without
network access to check them. They are good to a few percent for planning; before a budget decision,
check the figures against the AWS Pricing Calculator or `aws pricing get-products`, and update
PRICES_AS_OF when you do. Data-transfer and request prices are listed for the notes only: the
estimate is "before traffic" (see docs/cost.md).
"""

from __future__ import annotations

PRICES_AS_OF = "2026-11-29 (approximate: from the public price pages as remembered, not fetched live; Valkey, t4g.nano, commitments and Backup added 2026-11-29)"
PRICES_SOURCE = "AWS public on-demand price pages, region Asia Pacific (Seoul) ap-northeast-2, Linux, USD"

HOURS_PER_MONTH = 730

# ------------------------------------------------------------------ compute (USD per hour)

EKS_CONTROL_PLANE_HOURLY = 0.10  # standard support
EKS_EXTENDED_SUPPORT_HOURLY = 0.60  # upgradePolicy.supportType EXTENDED, once the version leaves standard support

# Spot is priced as a fraction of on-demand: Seoul Graviton spot has hovered around 30-40 % of list.
SPOT_FRACTION = 0.35

# fmt: off
EC2_HOURLY: dict[str, float] = {
    # burstable (t4g.nano: the dev NAT instance)
    "t4g.nano": 0.0052,
    "t3.micro": 0.0130, "t3.small": 0.0260, "t3.medium": 0.0520, "t3.large": 0.1040, "t3.xlarge": 0.2080,
    "t4g.micro": 0.0104, "t4g.small": 0.0208, "t4g.medium": 0.0416, "t4g.large": 0.0832, "t4g.xlarge": 0.1664,
    # general purpose
    "m5.large": 0.1180, "m5.xlarge": 0.2360, "m5.2xlarge": 0.4720,
    "m6i.large": 0.1180, "m6i.xlarge": 0.2360, "m6i.2xlarge": 0.4720,
    "m7i.large": 0.1239, "m7i.xlarge": 0.2478,
    "m6g.medium": 0.0470, "m6g.large": 0.0940, "m6g.xlarge": 0.1880, "m6g.2xlarge": 0.3760,
    "m7g.medium": 0.0499, "m7g.large": 0.0998, "m7g.xlarge": 0.1996, "m7g.2xlarge": 0.3992,
    # compute optimised
    "c5.large": 0.0960, "c5.xlarge": 0.1920, "c5.2xlarge": 0.3840,
    "c6i.large": 0.0960, "c6i.xlarge": 0.1920, "c6i.2xlarge": 0.3840,
    "c7i.large": 0.1008, "c7i.xlarge": 0.2016,
    "c6g.medium": 0.0385, "c6g.large": 0.0770, "c6g.xlarge": 0.1540, "c6g.2xlarge": 0.3080,
    "c7g.medium": 0.0409, "c7g.large": 0.0818, "c7g.xlarge": 0.1636, "c7g.2xlarge": 0.3272,
    # network optimised (TURN relays)
    "c6gn.medium": 0.0528, "c6gn.large": 0.1056, "c6gn.xlarge": 0.2112, "c6gn.2xlarge": 0.4224,
    "c7gn.medium": 0.0792, "c7gn.large": 0.1584, "c7gn.xlarge": 0.3168, "c7gn.2xlarge": 0.6336,
    "c5n.large": 0.1280, "c5n.xlarge": 0.2560,
    # memory optimised
    "r6g.large": 0.1216, "r6g.xlarge": 0.2432, "r7g.large": 0.1292, "r7g.xlarge": 0.2584,
    "r6i.large": 0.1520, "r6i.xlarge": 0.3040,
}

# RDS for PostgreSQL, Single-AZ instance hours (Multi-AZ instance deployment = 2x).
RDS_POSTGRES_HOURLY: dict[str, float] = {
    "db.t3.micro": 0.0260, "db.t3.small": 0.0520, "db.t3.medium": 0.1040, "db.t3.large": 0.2080,
    "db.t4g.micro": 0.0250, "db.t4g.small": 0.0510, "db.t4g.medium": 0.1020, "db.t4g.large": 0.2040,
    "db.m6g.large": 0.1880, "db.m6g.xlarge": 0.3760, "db.m7g.large": 0.2010, "db.m7g.xlarge": 0.4020,
    "db.m6i.large": 0.2100, "db.m6i.xlarge": 0.4200,
    "db.r6g.large": 0.2770, "db.r6g.xlarge": 0.5540, "db.r6g.2xlarge": 1.1080,
    "db.r7g.large": 0.2960, "db.r7g.xlarge": 0.5920, "db.r7g.2xlarge": 1.1840,
    "db.r6i.large": 0.3080, "db.r6i.xlarge": 0.6160,
}

# ElastiCache for Redis OSS, node-based, per node-hour. Valkey nodes: ELASTICACHE_VALKEY_HOURLY below.
ELASTICACHE_HOURLY: dict[str, float] = {
    "cache.t3.micro": 0.0220, "cache.t3.small": 0.0440, "cache.t3.medium": 0.0880,
    "cache.t4g.micro": 0.0200, "cache.t4g.small": 0.0410, "cache.t4g.medium": 0.0820,
    "cache.m6g.large": 0.1900, "cache.m6g.xlarge": 0.3800, "cache.m7g.large": 0.1970, "cache.m7g.xlarge": 0.3940,
    "cache.r6g.large": 0.2590, "cache.r6g.xlarge": 0.5180, "cache.r7g.large": 0.2710, "cache.r7g.xlarge": 0.5420,
}

# fmt: on
# ElastiCache for Valkey, node-based: 20 % below Redis OSS for the same node type (the ElastiCache
# pricing page, "Valkey ... node-based 20% lower"; Serverless -33 %). Per node-hour, Seoul.
VALKEY_NODE_DISCOUNT = 0.20
ELASTICACHE_VALKEY_HOURLY: dict[str, float] = {k: round(v * (1 - VALKEY_NODE_DISCOUNT), 5) for k, v in ELASTICACHE_HOURLY.items()}
# fmt: off

# AWS DMS replication instances, Single-AZ per hour (Multi-AZ = 2x). Seoul figures from memory
# of aws.amazon.com/dms/pricing (Asia Pacific (Seoul)), roughly 1.2x us-east-1's; T3 classes
# include 50 GB of gp2 storage, C5/R5 100 GB.
DMS_HOURLY: dict[str, float] = {
    "dms.t3.micro": 0.022, "dms.t3.small": 0.044, "dms.t3.medium": 0.089, "dms.t3.large": 0.178,
    "dms.c5.large": 0.186, "dms.c5.xlarge": 0.372, "dms.c5.2xlarge": 0.744,
    "dms.r5.large": 0.258, "dms.r5.xlarge": 0.516, "dms.r5.2xlarge": 1.032,
}

# fmt: on
DMS_INCLUDED_STORAGE_GIB = {"t3": 50, "c5": 100, "r5": 100}
DMS_STORAGE_GB_MONTH = 0.131  # gp2 above the included storage (Seoul, like RDS gp2)

# ------------------------------------------------------------------ storage (USD per GiB-month)

# fmt: off
EBS_GB_MONTH: dict[str, float] = {"gp3": 0.0912, "gp2": 0.1140, "io1": 0.1368, "io2": 0.1368, "st1": 0.0510, "sc1": 0.0174, "standard": 0.0800}
RDS_STORAGE_GB_MONTH: dict[str, float] = {"gp3": 0.1310, "gp2": 0.1310, "io1": 0.1560, "io2": 0.1560, "standard": 0.1170}
# fmt: on
RDS_PI_FREE_RETENTION_DAYS = 7  # Performance Insights: 7 days of history are free

# ------------------------------------------------------------------ network (USD per hour unless noted)

PUBLIC_IPV4_HOURLY = 0.005  # every public IPv4 address, attached or not (since 2024-02)
NAT_GATEWAY_HOURLY = 0.059
NAT_GATEWAY_PER_GB = 0.059  # data processed: notes only
ALB_HOURLY = 0.0225
ALB_LCU_HOURLY = 0.008
NLB_HOURLY = 0.0225
NLB_NLCU_HOURLY = 0.006
INTERFACE_ENDPOINT_HOURLY_PER_AZ = 0.013
INTERFACE_ENDPOINT_PER_GB = 0.01  # notes only
VPN_CONNECTION_HOURLY = 0.05  # Site-to-Site VPN connection-hour (aws.amazon.com/vpn/pricing, same in every region)
DATA_TRANSFER_OUT_PER_GB = 0.126  # internet egress, first 10 TB: notes only
CLOUDFRONT_PER_GB_KOREA = 0.120  # notes only

# ------------------------------------------------------------------ per-month fixed fees (USD per month)

WAF_WEB_ACL_MONTH = 5.00
WAF_RULE_MONTH = 1.00  # per rule, and per managed rule group
WAF_PER_MILLION_REQUESTS = 0.60  # notes only
ROUTE53_ZONE_MONTH = 0.50  # first 25 zones
ROUTE53_HEALTH_CHECK_MONTH = 0.50  # basic check of an AWS endpoint
ROUTE53_HEALTH_CHECK_OPTION_MONTH = 1.00  # each of: HTTPS, string matching, fast (10 s) interval, latency measurement
SECRETS_MANAGER_SECRET_MONTH = 0.40
KMS_KEY_MONTH = 1.00  # customer managed key; each automatic rotation adds $1/month for the first two rotations
CLOUDWATCH_ALARM_METRIC_MONTH = 0.10  # standard resolution, per metric in the alarm
CLOUDWATCH_ALARM_HIGH_RES_MONTH = 0.30  # period < 60 s
CLOUDWATCH_CUSTOM_METRIC_MONTH = 0.30  # per custom metric (first 10,000)
CLOUDWATCH_LOGS_INGEST_PER_GB = 0.76  # Standard log class; Infrequent Access is half
CLOUDWATCH_LOGS_INGEST_IA_PER_GB = 0.38
LAMBDA_ARM_GB_SECOND = 0.0000133334
LAMBDA_PER_MILLION_REQUESTS = 0.20
DAYS_PER_MONTH = 30.4
EC2_DETAILED_MONITORING_MONTH = 2.10  # 7 metrics x $0.30 per instance with detailed (1-minute) monitoring

# Defaults where a plan does not say (documented in docs/cost.md).
DEFAULT_ROOT_VOLUME_GIB = 8  # EC2 AMI root volume when neither the instance nor its launch template sets one
DEFAULT_NODE_DISK_GIB = 20  # EKS managed node group diskSize default

# ------------------------------------------------------------------ account baseline (voip-bootstrap)
# Usage-based services, priced at the volumes of a small account (BASELINE_VOLUMES; measure yours
# in the services' usage pages and scale). List prices from aws.amazon.com/guardduty/pricing,
# /security-hub/pricing, /config/pricing and /cloudtrail/pricing (first tier, us-east-1 figures;
# Seoul is within ~10 %). IAM Access Analyzer's external-access analyzer is free; the first copy
# of management events of a CloudTrail trail is free (S3 storage of the logs is usage).
GUARDDUTY_MGMT_EVENTS_PER_MILLION = 4.00
GUARDDUTY_FLOW_DNS_PER_GB = 1.00
GUARDDUTY_S3_EVENTS_PER_MILLION = 0.80
GUARDDUTY_EKS_AUDIT_PER_MILLION = 1.60
GUARDDUTY_RUNTIME_VCPU_MONTH = 1.50  # EKS runtime monitoring, first 500 vCPUs
SECURITY_HUB_PER_CHECK = 0.0010  # first 100,000 checks a month
CONFIG_PER_ITEM = 0.003  # continuous recording, per configuration item
BASELINE_VOLUMES = {
    "management events (millions)": 2,
    "VPC flow + DNS logs analysed (GB)": 20,
    "S3 data events (millions)": 5,
    "EKS audit events (millions)": 2,
    "EKS node vCPUs monitored": 16,
    "Security Hub checks": 20_000,
    "AWS Config items": 3_000,
}

# ------------------------------------------------------------------ commitments (the savings column of `tools cost`)

# 1-year, no upfront. Fraction of the on-demand price paid under the commitment, per family of
# charge; lines without a commitment offer (NAT, load balancers, IPv4, storage, fees) stay at 1.0.
# Sources (public pages, read 2026-11-29, figures for Seoul rounded to the percent):
#   Compute Savings Plans (EC2 incl. EKS nodes, Fargate, Lambda): aws.amazon.com/savingsplans/compute-pricing
#     1 yr no upfront on Graviton c7g/m7g in Seoul ~ -28 %; seed 001 assumes "-30 %".
#   RDS reserved instances: aws.amazon.com/rds/postgresql/pricing (Reserved Instances tab), 1 yr no upfront ~ -32 %.
#   ElastiCache reserved nodes: aws.amazon.com/elasticache/pricing (Reserved Nodes; size-flexible since 2024),
#     1 yr no upfront ~ -30 %; Valkey reserved nodes keep the 20 % engine discount.
#   Database Savings Plans (2025-12) also cover RDS/ElastiCache; the RI figures above are the lower bound of the saving.
COMMITMENT_FRACTION: dict[str, float] = {
    "compute": 0.72,  # EC2 instances and EKS node groups (on-demand only; spot is never committed)
    "rds": 0.68,
    "elasticache": 0.70,
}
COMMITMENT_TERM = "1-year no-upfront (Compute Savings Plan for EC2/EKS nodes, reserved RDS instances and ElastiCache nodes)"

# ------------------------------------------------------------------ AWS Backup (notes: usage-based)

BACKUP_WARM_GB_MONTH = 0.06  # RDS snapshot / S3 backup storage in a Backup vault, per GB-month (aws.amazon.com/backup/pricing)
BACKUP_CROSS_REGION_PER_GB = 0.08  # inter-region transfer of a copy job, per GB (EC2 data transfer between regions)

# ------------------------------------------------------------------ VPC flow logs (issue 15 item 9)

# Flow logs are CloudWatch "vended logs", billed on the volume delivered. Seoul, first 10 TB/month
# (aws.amazon.com/cloudwatch/pricing, "Vended Logs", Asia Pacific (Seoul); the same figures as
# Tokyo, ~1.5x us-east-1's $0.50 / $0.25): delivery to CloudWatch Logs $0.76/GB, to S3 $0.38/GB.
# Storage: CloudWatch Logs ~$0.033/GB-month of archived (gzip-compressed) data; S3 Standard
# $0.025/GB-month (objects are delivered gzip-compressed).
FLOW_LOGS_CWL_PER_GB = 0.76
FLOW_LOGS_S3_PER_GB = 0.38
CLOUDWATCH_LOGS_STORED_GB_MONTH = 0.033  # on compressed bytes; the pod-log line charges raw bytes (upper bound)
S3_STANDARD_GB_MONTH = 0.025

# ASSUMED flow volume per stage (no traffic data yet; revisit with a month of real flow logs).
# A flow log record (default format v2, 14 fields as text) is ~130 bytes; stored compressed to
# ~15 %. Each flow (5-tuple, per ENI and direction) writes one record per aggregation interval
# while it lasts, a short flow at least one. So per month:
#   records = long_flows x (seconds per month / interval) + new_flows_per_second x seconds per month
# long_flows: average concurrent long-lived flows. production: ~5,000 WebSockets (seed 001's
# peak of 10k, averaged over the day), each seen on the NLB's and a node's ENI in both
# directions (x4) = 20,000; ~1,500 relayed TURN sessions (seed 000: 10 % of users) x 4 (client
# and peer legs, both directions) = 6,000; pods to Redis/RDS pools, nodes to the control plane,
# scrapes ~4,000 -> 30,000. new_flows_per_second: API requests, STUN checks, health checks.
# Traffic to the VPC resolver (DNS) is not logged by flow logs.
FLOW_LOG_RECORD_BYTES = 130
FLOW_LOG_COMPRESSION = 0.15
SECONDS_PER_MONTH = HOURS_PER_MONTH * 3600
FLOW_LOG_VOLUME: dict[str, tuple[int, float]] = {
    # stage: (long_flows, new_flows_per_second)
    "production": (30_000, 150.0),
    "nas-migration": (2_000, 20.0),
    "dev": (300, 5.0),
}
FLOW_LOG_VOLUME_DEFAULT = FLOW_LOG_VOLUME["dev"]  # clones (qa, feature stages); a load test is bigger
# Share of the records each traffic type keeps (REJECT: scans and misconfigurations only).
FLOW_LOG_TRAFFIC_SHARE = {"ALL": 1.0, "ACCEPT": 0.95, "REJECT": 0.05}


def flow_log_gb_per_month(stage: str, interval_seconds: int, traffic_type: str = "ALL") -> float:
    """Assumed flow-log volume (GB delivered per month) of a stage at an aggregation interval."""
    long_flows, new_per_second = FLOW_LOG_VOLUME.get(stage, FLOW_LOG_VOLUME_DEFAULT)
    records = long_flows * SECONDS_PER_MONTH / interval_seconds + new_per_second * SECONDS_PER_MONTH
    return records * FLOW_LOG_TRAFFIC_SHARE.get(traffic_type, 1.0) * FLOW_LOG_RECORD_BYTES / 1e9
