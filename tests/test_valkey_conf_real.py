"""The in-cluster Valkey's valkey.conf (charts/valkey rendered with dev's release values) run by a
real server: Debian's `redis-server` (7.0, the protocol and config language Valkey 8 keeps). With
the password passed as the pod passes it (`--requirepass`): a client without AUTH is refused, a
wrong password too, the renamed commands do not exist, maxmemory and its policy are what the
config says, and nothing is saved.

Skipped loudly when `redis-server` is missing (`make test` installs it as root)."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time

import pytest

from components.cluster.valkey import CHART_PATH
from tests.harness import stack_plan
from tests.test_cache_placement import ELASTICACHE_RESTRICTED, conf, rendered

SERVER = shutil.which("redis-server")
PASSWORD = "Pa55wordFromTheSecret0123456789abcdefABCDEF0123456789abcdefABCD"


def command(sock: socket.socket, *args: str) -> str:
    """One RESP command and its reply: a simple string, an error ("-ERR ..."), an integer or a bulk string."""
    sock.sendall(b"".join([f"*{len(args)}\r\n".encode(), *(f"${len(a.encode())}\r\n{a}\r\n".encode() for a in args)]))
    reader = sock.makefile("rb")
    head = reader.readline().decode().rstrip("\r\n")
    if head.startswith("$") and head != "$-1":
        return reader.read(int(head[1:]) + 2)[:-2].decode()
    return head


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    if SERVER is None:
        pytest.skip(
            "redis-server is NOT installed (Debian package `redis-server`; `make test` installs it as root): the rendered valkey.conf is NOT run"
        )
    plan = stack_plan("dev")
    valkey = rendered(plan, CHART_PATH)
    group = plan["config"]["signaling"]["redisGroup"]
    d = tmp_path_factory.mktemp("valkey")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    # The pod's file as rendered; only where it listens and its data directory differ here.
    here = {"dir": f"dir {d}", "port": f"port {port}", "bind": "bind 127.0.0.1"}
    lines = [here.get(line.split(" ", 1)[0], line) for line in conf(valkey, group)]
    (d / "valkey.conf").write_text("\n".join(lines) + "\n")
    proc = subprocess.Popen([SERVER, str(d / "valkey.conf"), "--requirepass", PASSWORD], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                if proc.poll() is not None:
                    pytest.fail(f"redis-server refused the rendered config:\n{proc.stdout.read().decode()}")
                time.sleep(0.05)
        yield port, plan["config"]["cache"]["groups"][group]
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    # Stopped as Kubernetes stops it (SIGTERM): nothing was written (save "", appendonly no).
    assert sorted(p.name for p in d.iterdir()) == ["valkey.conf"]


def connect(port: int) -> socket.socket:
    return socket.create_connection(("127.0.0.1", port), timeout=5)


def test_auth_is_required_and_checked(server):
    port, _ = server
    with connect(port) as s:
        assert command(s, "PING").startswith("-NOAUTH")
        assert command(s, "AUTH", "not-the-password").startswith("-WRONGPASS")
        assert command(s, "SET", "k", "v").startswith("-NOAUTH")
    with connect(port) as s:
        assert command(s, "AUTH", PASSWORD) == "+OK"
        assert command(s, "PING") == "+PONG"


def test_withheld_commands_do_not_exist(server):
    port, _ = server
    with connect(port) as s:
        assert command(s, "AUTH", PASSWORD) == "+OK"
        for name in sorted(ELASTICACHE_RESTRICTED | {"PSYNC", "MODULE"}):
            args = {"CONFIG": ("CONFIG", "GET", "maxmemory-policy"), "DEBUG": ("DEBUG", "SLEEP", "0")}.get(name, (name,))
            reply = command(s, *args)
            assert reply.startswith("-ERR unknown command"), (name, reply)
        assert command(s, "PING") == "+PONG"  # still up: SHUTDOWN did nothing


def test_memory_and_policy_as_configured(server):
    port, group = server
    with connect(port) as s:
        assert command(s, "AUTH", PASSWORD) == "+OK"
        info = dict(line.split(":", 1) for line in command(s, "INFO", "memory").splitlines() if ":" in line)
        assert int(info["maxmemory"]) == group["memoryMib"] * 1024 * 1024
        assert info["maxmemory_policy"] == group["maxmemoryPolicy"]
        assert command(s, "SET", "k", "v", "EX", "60") == "+OK"
