"""The edge tier (docs/edge.md): DNS and certificates, WAF, the ALB and NLB, CloudFront, their buckets and alarms."""
