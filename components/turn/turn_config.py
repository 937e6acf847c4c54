"""coturn configuration: the ONE renderer of `turnserver.conf`, and the node's boot script.

`render_turnserver_conf` is called by the TURN nodes' user data (components/turn/turn.py)
and by the real-coturn tests (tests/test_coturn_real.py), so what the tests prove
against a running `turnserver` is what the nodes run. Values the program cannot know
(the shared secret, the node's own addresses) are written as placeholders and filled
in at boot by `render_user_data`'s script; the secret never appears in user data.

Pure functions, no Pulumi imports: cheap to import and to test.
"""

from __future__ import annotations

import ipaddress
import shlex
from collections.abc import Sequence
from dataclasses import dataclass, field

from components.ports import Ports

# Placeholders the boot script replaces (bash parameter expansion, no `sed`, so the
# secret never shows up in a process's command line).
SECRET_PLACEHOLDER = "@TURN_STATIC_AUTH_SECRET@"
PUBLIC_IP_PLACEHOLDER = "@PUBLIC_IPV4@"
PRIVATE_IP_PLACEHOLDER = "@PRIVATE_IPV4@"

# Peers a relay must never reach: a TURN server is an open UDP proxy into whatever it
# can route to. Special-purpose IPv4 ranges (RFC 6890) plus the IPv6 equivalents. The
# stage's VPC CIDR is added per node (it is inside 10/8 today, but a VPC need not be).
SPECIAL_PURPOSE_PEER_RANGES: tuple[str, ...] = (
    "0.0.0.0/8",  # "this network"
    "10.0.0.0/8",  # RFC 1918
    "100.64.0.0/10",  # carrier-grade NAT
    "169.254.0.0/16",  # link-local: EC2 metadata 169.254.169.254, DNS .253, NTP .123
    "172.16.0.0/12",  # RFC 1918
    "192.0.0.0/24",  # IETF protocol assignments
    "192.0.2.0/24",  # TEST-NET-1
    "192.88.99.0/24",  # 6to4 relay anycast
    "192.168.0.0/16",  # RFC 1918 (the NAS LAN lives here)
    "198.18.0.0/15",  # benchmarking
    "198.51.100.0/24",  # TEST-NET-2
    "203.0.113.0/24",  # TEST-NET-3
    "224.0.0.0/4",  # multicast (no-multicast-peers covers it too)
    "240.0.0.0/4",  # reserved + broadcast
    # Not "::/128": coturn 4.6 reads `denied-peer-ip=::` as "deny every peer" (the real-coturn
    # tests caught it); nothing can be relayed to the unspecified address anyway.
    "64:ff9b::/96",  # NAT64: would reach the IPv4 ranges above
    "fc00::/7",  # unique local
    "fe80::/10",  # link-local
    "fd00:ec2::/32",  # EC2 IPv6 metadata/DNS/NTP (fd00:ec2::254 etc.)
)
LOOPBACK_PEER_RANGES: tuple[str, ...] = ("127.0.0.0/8", "::1/128")


def denied_peer_ranges(vpc_cidr: str | None, *, allow_loopback_peers: bool = False) -> list[str]:
    """Every CIDR a node must refuse to relay to: the VPC, special-purpose ranges, loopback."""
    ranges = list(SPECIAL_PURPOSE_PEER_RANGES)
    if not allow_loopback_peers:
        ranges = list(LOOPBACK_PEER_RANGES) + ranges
    if vpc_cidr:
        ranges.insert(0, str(ipaddress.ip_network(vpc_cidr, strict=True)))
    return ranges


def coturn_range(cidr: str) -> str:
    """coturn 4.6 takes `denied-peer-ip=<first>-<last>` (or one address), not CIDR."""
    net = ipaddress.ip_network(cidr, strict=True)
    if net.num_addresses == 1:
        return str(net.network_address)
    return f"{net.network_address}-{net.broadcast_address}"


def max_bps_bytes(bits_per_second: int) -> int:
    """coturn's `max-bps` value (bytes per second) for a limit in bits per second."""
    return bits_per_second // 8


@dataclass(frozen=True)
class TurnServerConf:
    """Inputs of `turnserver.conf`. Defaults are seed 000's settings for a node."""

    realm: str
    # The secret itself (tests) or SECRET_PLACEHOLDER (nodes: filled at boot).
    static_auth_secret: str
    listening_port: int = Ports.turn_listening
    tls_listening_port: int = Ports.turn_tls
    min_port: int = Ports.turn_relay_min
    max_port: int = Ports.turn_relay_max
    # Empty: coturn listens/relays on every interface (a node has one ENI).
    listening_ips: Sequence[str] = ()
    relay_ips: Sequence[str] = ()
    # "PUBLIC/PRIVATE" as coturn announces it behind EC2's 1:1 NAT; None: not behind NAT.
    external_ip: str | None = f"{PUBLIC_IP_PLACEHOLDER}/{PRIVATE_IP_PLACEHOLDER}"
    # Per session and per direction, in bits per second (seed 000: 1 Mbps). coturn's own
    # `max-bps` is BYTES per second ("max bytes-per-second bandwidth a TURN session is allowed
    # to handle"): the renderer divides by 8, the one place the unit changes.
    max_bits_per_second: int = 1_000_000
    total_quota: int = 1000
    user_quota: int = 10
    # CIDRs relayed peers must not be in (see denied_peer_ranges).
    denied_peers: Sequence[str] = field(default_factory=lambda: denied_peer_ranges(None))
    # Tests only: peers on 127.0.0.0/8. Never on a node.
    allow_loopback_peers: bool = False
    # None disables the exporter (Debian's coturn 4.6.1 is built without libprom).
    prometheus_port: int | None = Ports.turn_metrics
    # "syslog", "stdout" (a node: Docker's awslogs driver ships stdout to CloudWatch Logs) or a path.
    log_file: str = "stdout"
    # TLS is terminated on the NLB (TURNS 5349 -> TCP listening-port): no certificate on the node.
    tls_on_node: bool = False
    pidfile: str | None = None

    def __post_init__(self) -> None:
        if not 0 < self.min_port <= self.max_port <= 65535:
            raise ValueError(f"relay ports {self.min_port}-{self.max_port}: need 0 < min <= max <= 65535")
        if self.allow_loopback_peers and any(r in LOOPBACK_PEER_RANGES for r in self.denied_peers):
            raise ValueError("allow_loopback_peers contradicts a denied loopback range")
        for value in (self.realm, self.static_auth_secret, self.external_ip or "", *self.listening_ips, *self.relay_ips):
            if any(c in value for c in "\n\r#") or value != value.strip():
                raise ValueError(f"{value!r}: turnserver.conf values may not hold newlines, '#' or surrounding blanks")


def render_turnserver_conf(conf: TurnServerConf) -> str:
    """The text of `turnserver.conf` for `conf` (deterministic)."""
    # The node-side comments keep the module's former path: a changed byte of user data is a
    # new launch template version, and the nodes would be replaced for a comment.
    lines: list[str] = ["# turnserver.conf rendered by components/turn/turn_config.py; do not edit on the node."]

    def section(title: str, *entries: str) -> None:
        lines.append("")
        lines.append(f"# {title}")
        lines.extend(e for e in entries if e)

    section(
        "Listeners (seed 000: 3478 UDP/TCP, TURNS 5349)",
        *[f"listening-ip={ip}" for ip in conf.listening_ips],
        f"listening-port={conf.listening_port}",
        f"tls-listening-port={conf.tls_listening_port}",
        # TURNS is terminated on the NLB and forwarded to the plain TCP listener; DTLS
        # cannot pass an NLB TLS listener. With no certificate, coturn would only log noise.
        "" if conf.tls_on_node else "no-tls",
        "" if conf.tls_on_node else "no-dtls",
        # Should TLS ever move onto the node: modern protocol versions only.
        "no-tlsv1",
        "no-tlsv1_1",
    )
    section(
        "Relay: public address behind EC2's 1:1 NAT, UDP relay range",
        f"external-ip={conf.external_ip}" if conf.external_ip else "",
        *[f"relay-ip={ip}" for ip in conf.relay_ips],
        f"min-port={conf.min_port}",
        f"max-port={conf.max_port}",
        # WebRTC relays over UDP; RFC 6062 TCP relays would need TCP egress to any port.
        "no-tcp-relay",
    )
    section(
        "Authentication: TURN REST API credentials (username <expiry>:<user>, HMAC-SHA1 password)",
        "use-auth-secret",
        f"static-auth-secret={conf.static_auth_secret}",
        f"realm={conf.realm}",
        "fingerprint",
    )
    section(
        f"Quotas (max-bps is bytes/s: {conf.max_bits_per_second} bit/s per session and direction)",
        f"max-bps={max_bps_bytes(conf.max_bits_per_second)}",
        f"total-quota={conf.total_quota}",
        f"user-quota={conf.user_quota}",
    )
    section(
        "Peers a relay may not reach: the VPC, metadata, private and special-purpose ranges",
        "no-multicast-peers",
        "allow-loopback-peers" if conf.allow_loopback_peers else "",
        *[f"denied-peer-ip={coturn_range(r)}" for r in conf.denied_peers],
    )
    section(
        "Hardening and observability",
        "no-cli",
        "no-software-attribute",
        "no-rfc5780",
        "no-stun-backward-compatibility",
        "response-origin-only-with-rfc5780",
        *(["prometheus", f"prometheus-port={conf.prometheus_port}"] if conf.prometheus_port else []),
        "syslog" if conf.log_file == "syslog" else f"log-file={conf.log_file}",
        "simple-log",
        f"pidfile={conf.pidfile}" if conf.pidfile else "",
    )
    return "\n".join(lines) + "\n"


# Socket buffers for many concurrent UDP flows (each relayed call is two).
SYSCTLS: dict[str, str] = {
    "net.core.rmem_max": "16777216",
    "net.core.wmem_max": "16777216",
    "net.core.rmem_default": "1048576",
    "net.core.wmem_default": "1048576",
    "net.core.netdev_max_backlog": "65536",
    "net.ipv4.udp_rmem_min": "16384",
    "net.ipv4.udp_wmem_min": "16384",
    "net.ipv4.ip_local_port_range": "1024 49151",  # keep the relay range for coturn
    "fs.file-max": "2097152",
}


@dataclass(frozen=True)
class NodeBoot:
    """What the boot script needs besides the rendered config (none of it secret)."""

    region: str
    secret_arn: str
    image: str  # container image reference, e.g. docker.io/coturn/coturn:4.6.3@sha256:...
    log_group: str
    conf: TurnServerConf


def render_user_data(boot: NodeBoot) -> str:
    """The node's cloud-init user data (a shell script). It holds no secret: the shared
    secret is read from Secrets Manager with the instance role at boot."""
    if boot.conf.static_auth_secret != SECRET_PLACEHOLDER:
        raise ValueError("user data must carry the secret placeholder, never the secret")
    template = render_turnserver_conf(boot.conf)
    sysctl = "\n".join(f"{k} = {v}" for k, v in SYSCTLS.items())
    q = shlex.quote
    return f"""#!/bin/bash
# TURN node bootstrap, rendered by components/turn/turn_config.py. Holds no secret.
set -euo pipefail
exec > >(tee -a /var/log/turn-bootstrap.log | logger -t turn-bootstrap) 2>&1

REGION={q(boot.region)}
SECRET_ARN={q(boot.secret_arn)}
IMAGE={q(boot.image)}
LOG_GROUP={q(boot.log_group)}

imds() {{
  local token
  token=$(curl -sf -X PUT http://169.254.169.254/latest/api/token -H 'X-aws-ec2-metadata-token-ttl-seconds: 300')
  curl -sf -H "X-aws-ec2-metadata-token: $token" "http://169.254.169.254/latest/meta-data/$1"
}}

# The node has no egress until its Elastic IP is associated (public subnet, no NAT):
# wait for it, bounded. The EIP is also the address coturn must announce.
PUBLIC_IP=""
for _ in $(seq 1 120); do
  PUBLIC_IP=$(imds public-ipv4 || true)
  [ -n "$PUBLIC_IP" ] && break
  sleep 5
done
[ -n "$PUBLIC_IP" ] || {{ echo "no public IPv4 after 10 minutes: is the EIP associated?"; exit 1; }}
PRIVATE_IP=$(imds local-ipv4)
INSTANCE_ID=$(imds instance-id)

cat > /etc/sysctl.d/90-turn.conf <<'SYSCTL'
{sysctl}
SYSCTL
sysctl --system >/dev/null

# coturn is not packaged for Amazon Linux 2023 (and EPEL is not available there):
# run the upstream image, pinned, with host networking (no NAT in front of the relay range).
dnf install -y -q docker
systemctl enable --now docker
for attempt in 1 2 3 4 5; do docker pull -q "$IMAGE" && break; sleep $((attempt * 10)); done

install -d -m 0755 /etc/coturn
cat > /etc/coturn/turnserver.conf.template <<'TURNCONF'
{template}TURNCONF

# The shared secret: read with the instance role, substituted by bash (never on a command line).
SECRET=$(aws secretsmanager get-secret-value --region "$REGION" --secret-id "$SECRET_ARN" --query SecretString --output text)
[ -n "$SECRET" ] || {{ echo "empty TURN secret"; exit 1; }}
CONF=$(< /etc/coturn/turnserver.conf.template)
CONF=${{CONF//{SECRET_PLACEHOLDER}/$SECRET}}
CONF=${{CONF//{PUBLIC_IP_PLACEHOLDER}/$PUBLIC_IP}}
CONF=${{CONF//{PRIVATE_IP_PLACEHOLDER}/$PRIVATE_IP}}
umask 077
printf '%s\\n' "$CONF" > /etc/coturn/turnserver.conf
unset SECRET CONF
# The image runs coturn as nobody (65534): only it may read the file.
chown 65534:65534 /etc/coturn/turnserver.conf
chmod 0400 /etc/coturn/turnserver.conf

docker rm -f coturn >/dev/null 2>&1 || true
docker run -d --name coturn --restart always --network host \\
  --ulimit nofile=1048576:1048576 \\
  --log-driver awslogs --log-opt awslogs-region="$REGION" \\
  --log-opt awslogs-group="$LOG_GROUP" --log-opt awslogs-stream="$INSTANCE_ID" \\
  -v /etc/coturn/turnserver.conf:/etc/coturn/turnserver.conf:ro \\
  "$IMAGE" -c /etc/coturn/turnserver.conf
echo "coturn started on $PRIVATE_IP, announcing $PUBLIC_IP"
"""
