"""The cluster tier (docs/cluster.md, docs/monitoring.md): EKS, node autoscaling, block storage, the monitoring stack, Helm releases and the signaling release."""
