"""The literal-credential detectors behind the no-secrets-* rules (policies/secret_scan.py):
each kind found, and the references this program writes never taken for secrets."""

from __future__ import annotations

import base64

import pytest

from policies.secret_scan import decode_user_data, scan_text, scan_value


@pytest.mark.parametrize(
    ("text", "finding"),
    [
        ("export AWS_ACCESS_KEY_ID=AKIAIOSFODNN7EXAMPLE", "a AWS access key id"),
        ("-----BEGIN OPENSSH PRIVATE KEY-----\nb3Blbn\n-----END OPENSSH PRIVATE KEY-----", "a PEM private key block"),
        ("token=ghp_" + "a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8", "a GitHub token"),
        ("static-auth-secret=abc123", "static-auth-secret is given a literal value"),
        ("PGPASSWORD='s3cr3t'", "PGPASSWORD is given a literal value"),
        ("jwt_secret: Zx9Qm2Lp8Rt4Vw6Yb1Nc3Kd5Hf7Jg0", "jwt_secret is given a high-entropy literal (30 chars, 4.9 bits/char)"),
    ],
)
def test_each_detector_finds_its_kind(text, finding):
    assert finding in scan_text(text)


@pytest.mark.parametrize(
    "text",
    [
        "SECRET_ARN=arn:aws:secretsmanager:ap-northeast-2:123456789012:secret:voip/dev/turn/shared-secret",
        "static-auth-secret=@TURN_STATIC_AUTH_SECRET@",
        'password: "${DB_PASSWORD}"',
        "redis_password=$REDIS_PASSWORD",
        "session_token: short",  # secret-like name, low-entropy short value
        "secret_name=turn-shared-secret",
    ],
)
def test_references_and_placeholders_are_not_secrets(text):
    assert scan_text(text) == []


def test_nested_values_and_env_entries():
    values = {"existingSecrets": {"redis": "signaling-redis"}, "env": [{"name": "DB_PASSWORD", "value": "hunter2"}], "auth": "[secret]"}
    assert scan_value(values) == ["env[0]: DB_PASSWORD is given a literal value"]


def test_user_data_is_read_as_the_instance_reads_it():
    script = "#!/bin/bash\nexport AWS_ACCESS_KEY_ID=AKIAIOSFODNN7EXAMPLE\n"
    assert decode_user_data(base64.b64encode(script.encode()).decode()) == script
    assert decode_user_data(script) == script  # instances may take plain text
