"""Literal credentials in text and nested values (user data, container env, Helm values).

Four detectors, each cheap and each with few false positives on this program's own output:
- known token formats: AWS access key ids (AKIA/ASIA + 16), GitHub (ghp_/gho_/ghs_/ghu_/ghr_),
  Slack (xox?-), Stripe-style live keys (sk_live_), Google API keys (AIza + 35);
- PEM private-key blocks (`-----BEGIN ... PRIVATE KEY-----`);
- known secret key names (password, AWS_SECRET_ACCESS_KEY, static-auth-secret, requirepass,
  auth_token, client_secret, ...) given any literal value that is not a reference or placeholder;
- high-entropy strings (>= 16 chars, >= 3.5 bits/char) assigned to a secret-like name
  (anything containing secret, token, passw, apikey/api_key, private_key, credential).
A value is a reference, not a secret, when it is a Pulumi secret marker, an ARN, a shell or
template expansion (`$X`, `${X}`, `{{ }}`, `@X@`), a file path, or a Kubernetes secret name
under a `*Ref`/`existingSecret`/`secretName` key.
"""

from __future__ import annotations

import base64
import binascii
import math
import re
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

TOKEN_FORMATS = (
    ("AWS access key id", re.compile(r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b")),
    ("GitHub token", re.compile(r"\bgh[pousr]_[A-Za-z0-9]{36}\b")),
    ("Slack token", re.compile(r"\bxox[abprs]-[A-Za-z0-9-]{10,}\b")),
    ("Stripe live key", re.compile(r"\b[sr]k_live_[A-Za-z0-9]{20,}\b")),
    ("Google API key", re.compile(r"\bAIza[0-9A-Za-z_-]{35}\b")),
)
PEM_PRIVATE_KEY = re.compile(r"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY-----")
# Names whose value is a credential whatever it looks like.
KNOWN_SECRET_NAMES = {
    "password",
    "passwd",
    "pgpassword",
    "db_password",
    "database_password",
    "redis_password",
    "requirepass",
    "masterauth",
    "aws_secret_access_key",
    "aws_session_token",
    "static_auth_secret",
    "auth_token",
    "client_secret",
    "api_key",
    "apikey",
    "secret_key",
    "private_key",
    "admin_password",
    "adminpassword",
    "turn_secret",
    "turn_shared_secret",
}
SECRET_LIKE = re.compile(r"secret|token|passw|api_?key|private_?key|credential", re.IGNORECASE)
# Keys whose value names a secret (a reference), never holds one.
REFERENCE_KEYS = re.compile(r"(ref|arn|name|id|existingsecret|secretname|path|file|version|header|length)$", re.IGNORECASE)
MIN_ENTROPY_LEN = 16
MIN_ENTROPY_BITS = 3.5
# `NAME=VALUE`, `NAME: VALUE`, `NAME = "VALUE"` in scripts and config files (one line).
ASSIGNMENT = re.compile(r"""(?:^|[ \t;'"(]|--)([A-Za-z_][A-Za-z0-9_.-]*)[ \t]*[=:][ \t]*['"]?([^\s'";]+)""", re.MULTILINE)


def _norm(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_")


def shannon_bits(value: str) -> float:
    counts: dict[str, int] = {}
    for ch in value:
        counts[ch] = counts.get(ch, 0) + 1
    return -sum(c / len(value) * math.log2(c / len(value)) for c in counts.values()) if value else 0.0


def is_reference(value: str) -> bool:
    v = value.strip()
    return (
        not v
        or v == "[secret]"
        or v.startswith(("arn:", "$", "/", "./", "@", "{{", "secretsmanager:", "ssm:", "http://", "https://"))
        or ("${" in v)
        or (v.startswith("@") and v.endswith("@"))
        or v.lower() in {"true", "false", "null", "none", "changeme", "<secret>", "xxx", "redacted"}
    )


def _assignment_findings(name: str, value: str) -> Iterator[str]:
    norm = _norm(name)
    if is_reference(value) or REFERENCE_KEYS.search(norm.replace("_", "")):
        return
    if norm in KNOWN_SECRET_NAMES or norm.split("_")[-1] in {"password", "passwd"}:
        yield f"{name} is given a literal value"
    elif SECRET_LIKE.search(norm) and len(value) >= MIN_ENTROPY_LEN and shannon_bits(value) >= MIN_ENTROPY_BITS:
        yield f"{name} is given a high-entropy literal ({len(value)} chars, {shannon_bits(value):.1f} bits/char)"


def scan_text(text: str) -> list[str]:
    """Findings in free text (a script, a config file): formats, PEM blocks, assignments."""
    found = [f"a {what}" for what, rx in TOKEN_FORMATS if rx.search(text)]
    if PEM_PRIVATE_KEY.search(text):
        found.append("a PEM private key block")
    for m in ASSIGNMENT.finditer(text):
        found += list(_assignment_findings(m.group(1), m.group(2)))
    return sorted(set(found))


def scan_value(value: Any, path: str = "") -> list[str]:
    """Findings in nested data (Helm values, env lists): every string leaf is scanned as text,
    and every leaf is judged as the value of its key. Returns `path: finding` strings."""
    out: list[str] = []
    if isinstance(value, Mapping):
        # Kubernetes env entries: {name: X, value: Y}.
        if isinstance(value.get("name"), str) and isinstance(value.get("value"), str):
            out += [f"{path}: {f}" for f in _assignment_findings(value["name"], value["value"])]
        for k, v in value.items():
            sub = f"{path}.{k}" if path else str(k)
            if isinstance(v, str) and not (k == "value" and "name" in value):
                out += [f"{sub}: {f}" for f in _assignment_findings(str(k), v)]
            out += scan_value(v, sub) if not isinstance(v, str) else [f"{sub}: {f}" for f in scan_text(v) if "given" not in f]
    elif isinstance(value, Sequence) and not isinstance(value, str):
        for i, v in enumerate(value):
            out += scan_value(v, f"{path}[{i}]")
    elif isinstance(value, str):
        out += [f"{path}: {f}" for f in scan_text(value)]
    return sorted(set(out))


def decode_user_data(value: str) -> str:
    """User data as the instance sees it: launch templates take base64; instances may take either."""
    try:
        raw = base64.b64decode(value, validate=True)
        return raw.decode("utf-8")
    except (binascii.Error, ValueError, UnicodeDecodeError):
        return value
