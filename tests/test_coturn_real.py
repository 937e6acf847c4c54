"""The TURN config proven against a REAL coturn (Debian `coturn`, `turnserver` 4.6.x).

The config is rendered by the same function the nodes' user data uses
(components.turn.turn_config.render_turnserver_conf); only the addresses (loopback), ports
(free ones), the secret (a test value), metrics (Debian's build has no Prometheus) and,
for the relay tests, `allow-loopback-peers` differ. Everything stays on 127.0.0.1:
denied-peer checks only ask the server for a permission, nothing is ever sent there.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import random
import shutil
import socket
import struct
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from components.turn.turn_config import (
    SECRET_PLACEHOLDER,
    TurnServerConf,
    denied_peer_ranges,
    render_turnserver_conf,
)

TURNSERVER = shutil.which("turnserver")
UCLIENT = shutil.which("turnutils_uclient")
NOT_INSTALLED = (
    "coturn is NOT installed (no `turnserver`/`turnutils_uclient` on PATH): the real-TURN tests did NOT run. "
    "Install it with `apt-get install -y coturn` or run `make test` as root."
)
LOOP = "127.0.0.1"
SECRET = "test-shared-secret-" + "x" * 24
REALM = "turn.test.invalid"
VPC_CIDR = "10.40.0.0/16"  # production's VPC: the node config denies it


# ----------------------------------------------------------------- a tiny TURN client

MAGIC = 0x2112A442
BINDING, ALLOCATE, CREATE_PERMISSION, SEND_INDICATION, DATA_INDICATION = 0x0001, 0x0003, 0x0008, 0x0016, 0x0017
A_USERNAME, A_MESSAGE_INTEGRITY, A_ERROR_CODE, A_REALM, A_NONCE = 0x0006, 0x0008, 0x0009, 0x0014, 0x0015
A_XOR_PEER_ADDRESS, A_DATA, A_XOR_RELAYED_ADDRESS, A_REQUESTED_TRANSPORT, A_FINGERPRINT = 0x0012, 0x0013, 0x0016, 0x0019, 0x8028


def rest_credentials(secret: str, user: str, ttl_seconds: int) -> tuple[str, str]:
    """TURN REST API credentials: username `<unix expiry>:<user>`, password base64(HMAC-SHA1(secret, username))."""
    username = f"{int(time.time()) + ttl_seconds}:{user}"
    password = base64.b64encode(hmac.new(secret.encode(), username.encode(), hashlib.sha1).digest()).decode()
    return username, password


def _attr(kind: int, value: bytes) -> bytes:
    return struct.pack("!HH", kind, len(value)) + value + b"\0" * (-len(value) % 4)


def _xor_addr(ip: str, port: int) -> bytes:
    packed = struct.unpack("!I", socket.inet_aton(ip))[0] ^ MAGIC
    return struct.pack("!BBHI", 0, 1, port ^ (MAGIC >> 16), packed)


def _parse_xor_addr(value: bytes) -> tuple[str, int]:
    _, family, port, packed = struct.unpack("!BBHI", value[:8])
    assert family == 1, "IPv4 expected"
    return socket.inet_ntoa(struct.pack("!I", packed ^ MAGIC)), port ^ (MAGIC >> 16)


def _message(kind: int, attrs: list[tuple[int, bytes]], key: bytes | None = None) -> bytes:
    txid = os.urandom(12)
    body = b"".join(_attr(t, v) for t, v in attrs)
    if key is not None:
        header = struct.pack("!HHI12s", kind, len(body) + 24, MAGIC, txid)
        body += _attr(A_MESSAGE_INTEGRITY, hmac.new(key, header + body, hashlib.sha1).digest())
    header = struct.pack("!HHI12s", kind, len(body) + 8, MAGIC, txid)
    crc = (binascii.crc32(header + body) ^ 0x5354554E) & 0xFFFFFFFF
    body += _attr(A_FINGERPRINT, struct.pack("!I", crc))
    return struct.pack("!HHI12s", kind, len(body), MAGIC, txid) + body


@dataclass
class Reply:
    kind: int
    attrs: dict[int, bytes]

    @property
    def error(self) -> int | None:
        if (self.kind & 0x0110) != 0x0110:
            return None
        raw = self.attrs[A_ERROR_CODE]
        return (raw[2] & 0x07) * 100 + raw[3]


def _parse(data: bytes) -> Reply:
    kind, length, magic = struct.unpack("!HHI", data[:8])
    assert magic == MAGIC, "not a STUN message"
    attrs, pos = {}, 20
    while pos < 20 + length:
        t, n = struct.unpack("!HH", data[pos : pos + 4])
        attrs.setdefault(t, data[pos + 4 : pos + 4 + n])
        pos += 4 + n + (-n % 4)
    return Reply(kind, attrs)


class TurnClient:
    """Just enough TURN over UDP (RFC 5766) to allocate, permit, send and receive."""

    def __init__(self, port: int, username: str, password: str):
        self.server = (LOOP, port)
        self.username, self.password = username, password
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((LOOP, 0))
        self.sock.settimeout(2.0)
        self.realm = self.nonce = b""

    def close(self) -> None:
        self.sock.close()

    def _ask(self, data: bytes) -> Reply:
        self.sock.sendto(data, self.server)
        return _parse(self.sock.recv(2048))

    def _key(self) -> bytes:
        return hashlib.md5(f"{self.username}:{self.realm.decode()}:{self.password}".encode()).digest()

    def _auth(self) -> list[tuple[int, bytes]]:
        return [(A_USERNAME, self.username.encode()), (A_REALM, self.realm), (A_NONCE, self.nonce)]

    def allocate(self) -> Reply:
        transport = [(A_REQUESTED_TRANSPORT, bytes([17, 0, 0, 0]))]
        first = self._ask(_message(ALLOCATE, transport))
        assert first.error == 401, f"an unauthenticated Allocate must be challenged, got {first.error}"
        self.realm, self.nonce = first.attrs[A_REALM], first.attrs[A_NONCE]
        return self._ask(_message(ALLOCATE, transport + self._auth(), self._key()))

    def create_permission(self, peer_ip: str) -> Reply:
        return self._ask(_message(CREATE_PERMISSION, [(A_XOR_PEER_ADDRESS, _xor_addr(peer_ip, 0)), *self._auth()], self._key()))

    def send(self, peer: tuple[str, int], payload: bytes) -> None:
        self.sock.sendto(_message(SEND_INDICATION, [(A_XOR_PEER_ADDRESS, _xor_addr(*peer)), (A_DATA, payload)]), self.server)

    def receive(self) -> Reply:
        return _parse(self.sock.recv(2048))


# ----------------------------------------------------------------- the server


def _free_port() -> int:
    """A port free on 127.0.0.1 for both UDP and TCP."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
            udp.bind((LOOP, 0))
            port = udp.getsockname()[1]
            try:
                with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp:
                    tcp.bind((LOOP, port))
                return port
            except OSError:
                continue
    raise RuntimeError("no free port on 127.0.0.1")


def _free_udp_block(size: int) -> tuple[int, int]:
    """A run of `size` UDP ports free on 127.0.0.1, inside the ephemeral-free zone."""
    for _ in range(50):
        base = random.randrange(50000, 60000 - size)
        socks = []
        try:
            for p in range(base, base + size):
                s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                socks.append(s)
                s.bind((LOOP, p))
            return base, base + size - 1
        except OSError:
            continue
        finally:
            for s in socks:
                s.close()
    raise RuntimeError("no free UDP port block on 127.0.0.1")


@dataclass
class Coturn:
    port: int
    min_port: int
    max_port: int
    conf_text: str
    log: Path


def _test_conf(allow_loopback_peers: bool, tmp: Path) -> TurnServerConf:
    min_port, max_port = _free_udp_block(16)
    return TurnServerConf(
        realm=REALM,
        static_auth_secret=SECRET,
        listening_port=_free_port(),
        tls_listening_port=_free_port(),
        min_port=min_port,
        max_port=max_port,
        listening_ips=[LOOP],
        relay_ips=[LOOP],
        external_ip=None,
        denied_peers=denied_peer_ranges(VPC_CIDR, allow_loopback_peers=allow_loopback_peers),
        allow_loopback_peers=allow_loopback_peers,
        prometheus_port=None,  # Debian's coturn 4.6.1 is built without Prometheus support
        log_file="stdout",
        pidfile=str(tmp / "turnserver.pid"),
    )


def _start(conf: TurnServerConf, tmp: Path):
    conf_text = render_turnserver_conf(conf)
    path = tmp / "turnserver.conf"
    path.write_text(conf_text)
    log = tmp / "turnserver.log"
    with log.open("wb") as out:
        # -l stdout on the command line too: coturn opens its default log file before reading -c.
        proc = subprocess.Popen([TURNSERVER, "-c", str(path), "-l", "stdout"], stdout=out, stderr=subprocess.STDOUT, cwd=tmp)
    server = Coturn(conf.listening_port, conf.min_port, conf.max_port, conf_text, log)
    deadline = time.monotonic() + 5
    probe = _message(BINDING, [])
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(0.1)
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"turnserver exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
            try:
                s.sendto(probe, (LOOP, conf.listening_port))
                s.recv(2048)
                break
            except OSError:
                if time.monotonic() > deadline:
                    proc.kill()
                    raise RuntimeError(f"turnserver did not answer STUN within 5 s:\n{log.read_text()[-3000:]}") from None
    return proc, server


def _stop(proc) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=3)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=3)


def _running(tmp_path_factory, loopback_peers: bool, label: str):
    if not TURNSERVER or not UCLIENT:
        pytest.skip(NOT_INSTALLED)
    tmp = tmp_path_factory.mktemp(f"coturn-{label}")
    proc, server = _start(_test_conf(loopback_peers, tmp), tmp)
    yield server
    _stop(proc)


@pytest.fixture(scope="module")
def node_like(tmp_path_factory):
    """coturn with the node's settings (loopback peers denied as on a node)."""
    yield from _running(tmp_path_factory, False, "node")


@pytest.fixture(scope="module")
def loopback(tmp_path_factory):
    """The same rendering with `allow-loopback-peers`, so relayed packets can reach a local peer."""
    yield from _running(tmp_path_factory, True, "loopback")


# ----------------------------------------------------------------- tests


def test_test_config_is_the_node_config_but_for_test_knobs():
    """The tests run the node's config: only addresses, ports, secret, metrics, logs differ."""
    node = TurnServerConf(realm=REALM, static_auth_secret=SECRET_PLACEHOLDER, denied_peers=denied_peer_ranges(VPC_CIDR))
    test = _test_conf(True, Path("/nonexistent"))
    node_lines = set(render_turnserver_conf(node).splitlines())
    test_lines = set(render_turnserver_conf(test).splitlines())
    knobs = ("listening-ip=", "relay-ip=", "listening-port=", "tls-listening-port=", "min-port=", "max-port=",
             "external-ip=", "static-auth-secret=", "prometheus", "pidfile=", "allow-loopback-peers",
             "denied-peer-ip=127.", "denied-peer-ip=::1")  # fmt: skip
    differing = {line for line in node_lines ^ test_lines if not line.startswith(knobs)}
    assert not differing, f"the test config drifts from the node config: {sorted(differing)}"
    for must in ("use-auth-secret", "fingerprint", "no-cli", "no-multicast-peers", "no-tlsv1", "no-tlsv1_1",
                 "max-bps=125000", "total-quota=1000", "denied-peer-ip=10.40.0.0-10.40.255.255",
                 "denied-peer-ip=169.254.0.0-169.254.255.255"):  # fmt: skip
        assert must in test_lines


def _uclient(port: int, username: str, password: str, *flags: str) -> subprocess.Popen:
    return subprocess.Popen(
        [UCLIENT, "-p", str(port), "-u", username, "-w", password, "-m", "1", "-n", "3", "-z", "5", "-c", *flags, "-e", LOOP, LOOP],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def test_uclient_allocates_and_relays_with_rest_credentials_udp_and_tcp(loopback):
    """turnutils_uclient, client-to-client through two relays, over UDP and over TCP 3478
    (the NLB's TURNS path lands on TCP): every packet comes back."""
    username, password = rest_credentials(SECRET, "alice", 600)
    runs = {"udp": _uclient(loopback.port, username, password, "-y"), "tcp": _uclient(loopback.port, username, password, "-y", "-t")}
    for transport, proc in runs.items():
        out, _ = proc.communicate(timeout=15)
        assert proc.returncode == 0, f"{transport}: uclient failed:\n{out[-2000:]}"
        assert "Cannot complete Allocation" not in out
        assert "Total lost packets 0 (0.000000%)" in out, f"{transport}: packets lost:\n{out[-2000:]}"
        sent = [int(line.split("tot_send_msgs=")[1].split(",")[0]) for line in out.splitlines() if "start_mclient: tot_send_msgs=" in line]
        assert sent and sent[-1] > 0, f"{transport}: nothing was relayed:\n{out[-2000:]}"


def test_relay_reaches_a_peer_and_back(loopback):
    """Our own client: the allocation's relayed address is in the relay range, a Send
    indication reaches the peer from that address, and the peer's answer comes back."""
    client = TurnClient(loopback.port, *rest_credentials(SECRET, "bob", 600))
    peer = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        peer.bind((LOOP, 0))
        peer.settimeout(2.0)
        reply = client.allocate()
        assert reply.error is None and reply.kind == 0x0103, f"Allocate refused: {reply.error}"
        relay_ip, relay_port = _parse_xor_addr(reply.attrs[A_XOR_RELAYED_ADDRESS])
        assert relay_ip == LOOP and loopback.min_port <= relay_port <= loopback.max_port
        assert client.create_permission(LOOP).error is None
        client.send(peer.getsockname(), b"hello through the relay")
        data, source = peer.recvfrom(2048)
        assert data == b"hello through the relay" and source == (relay_ip, relay_port)
        peer.sendto(b"and back", source)
        indication = client.receive()
        assert indication.kind == DATA_INDICATION and indication.attrs[A_DATA] == b"and back"
    finally:
        peer.close()
        client.close()


def test_node_config_allocates_with_rest_credentials(node_like):
    client = TurnClient(node_like.port, *rest_credentials(SECRET, "carol", 600))
    try:
        reply = client.allocate()
        assert reply.error is None and A_XOR_RELAYED_ADDRESS in reply.attrs
    finally:
        client.close()


@pytest.mark.parametrize(
    "case",
    ["wrong-password", "expired-username", "wrong-secret"],
)
def test_bad_credentials_are_refused(node_like, case):
    username, password = rest_credentials(SECRET, "mallory", -60 if case == "expired-username" else 600)
    if case == "wrong-password":
        password = base64.b64encode(b"not the hmac of the username").decode()
    if case == "wrong-secret":
        username, password = rest_credentials("some-other-secret", "mallory", 600)
    client = TurnClient(node_like.port, username, password)
    try:
        assert client.allocate().error == 401, f"{case}: the allocation must be refused with 401"
    finally:
        client.close()
    # The stock client agrees (and fails fast).
    out = subprocess.run(
        [UCLIENT, "-p", str(node_like.port), "-u", username, "-w", password, "-m", "1", "-n", "1", "-c", "-y", LOOP],
        capture_output=True,
        text=True,
        timeout=10,
    ).stdout
    assert "Cannot complete Allocation" in out


@pytest.mark.parametrize(
    "peer",
    [
        "10.40.1.10",  # inside the stage's VPC
        "169.254.169.254",  # EC2 instance metadata
        "192.168.10.20",  # RFC 1918 (the NAS LAN range)
        "172.16.0.1",  # RFC 1918
        "100.64.0.1",  # carrier-grade NAT
        "127.0.0.1",  # loopback (denied on a node)
    ],
)
def test_denied_peers_are_refused(node_like, peer):
    client = TurnClient(node_like.port, *rest_credentials(SECRET, "dave", 600))
    try:
        assert client.allocate().error is None
        assert client.create_permission(peer).error == 403, f"a relay to {peer} must be forbidden"
        # Control: the same allocation may reach a public peer (permission only, nothing is sent).
        assert client.create_permission("198.51.99.1").error is None
    finally:
        client.close()


def test_loopback_variant_still_denies_the_vpc(loopback):
    """allow-loopback-peers (tests only) opens 127/8 and nothing else."""
    client = TurnClient(loopback.port, *rest_credentials(SECRET, "erin", 600))
    try:
        assert client.allocate().error is None
        assert client.create_permission(LOOP).error is None
        assert client.create_permission("10.40.0.5").error == 403
    finally:
        client.close()


def test_server_log_shows_no_config_errors(node_like):
    text = node_like.log.read_text()
    bad = [line for line in text.splitlines() if "Bad configuration format" in line or "CONFIG ERROR" in line]
    assert not bad, f"turnserver rejected lines of the rendered config: {bad}"


def test_a_relay_is_throttled_near_one_megabit(loopback):
    """max-bps in coturn's unit (bytes/s): the node's rendered limit, 1 Mbps = 125000 B/s.
    A client pushes ~1.5 MB/s (at least 0.5 MB/s on a busy machine) of Send indications for 2 s; what reaches the peer stays near
    125 kB/s. coturn accounts per second and lets one extra second of buffer through, so
    the bound is (2 + 1) s worth. With the seed's `max-bps=1000000` the same sender would
    get ~1 MB/s (8 Mbps) through: more than 5 times this bound."""
    assert "max-bps=125000" in loopback.conf_text.splitlines()
    client = TurnClient(loopback.port, *rest_credentials(SECRET, "carol", 600))
    peer = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        peer.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 22)
        peer.bind((LOOP, 0))
        peer.setblocking(False)
        assert client.allocate().error is None
        assert client.create_permission(LOOP).error is None
        sent = received = 0
        start = time.monotonic()
        while time.monotonic() - start < 2.0:
            client.send(peer.getsockname(), b"x" * 1000)
            sent += 1000
            time.sleep(0.0004)
            try:
                while True:
                    received += len(peer.recv(4096))
            except BlockingIOError:
                pass
        seconds = time.monotonic() - start
    finally:
        peer.close()
        client.close()
    limit = 125_000
    assert sent / seconds > 4 * limit, f"the sender must outpace the limit ({sent / seconds:.0f} B/s)"
    assert received > 0.8 * limit, f"the relay must carry traffic ({received} B)"
    assert received <= limit * (seconds + 1) * 1.1, f"{received} B in {seconds:.1f} s: not throttled to 1 Mbps"
    assert received * 8 / seconds < 2 * 1_000_000, "well under the 8 Mbps the seed's value allowed"
