"""PostgreSQL connection capacity of an RDS instance class, computed from config.

RDS PostgreSQL's default `max_connections` is `LEAST({DBInstanceClassMemory/9531392}, 5000)`
(AWS Prescriptive Guidance, "max_connections"; RDS User Guide, DB parameter formulas).
DBInstanceClassMemory is the class's memory minus what RDS keeps for the OS and its own
processes, so it is below the nominal figure (1 GiB would give 112). We model the reserve as
max(300 MiB, 5 %) (db.t4g.micro: 79), a conservative estimate, and check demand against 90 % of
the result; `database.maxConnections` pins an exact value in the parameter group instead.

Pure functions, no Pulumi: the config schema (components/config.py) uses them to refuse a
stage whose pools cannot fit, and the apps tier sizes the DatabaseConnections alarm with them.
"""

from __future__ import annotations

import math
import re

DIVISOR_BYTES = 9531392
CAP = 5000
MIB = 1024 * 1024
# What RDS keeps for the OS and its own processes (see the module docstring).
RESERVED_MIB_FLOOR = 300
RESERVED_FRACTION = 0.05
# Share of max_connections the pools may claim; the rest absorbs bursts, psql sessions, migrations.
USABLE_FRACTION = 0.9
# superuser_reserved_connections (3) + rds.rds_superuser_reserved_connections (2) + operators (5).
ADMIN_RESERVE = 10
# AWS DMS writes into the target with up to 8 parallel full-load tables plus its CDC apply and
# control sessions (MaxFullLoadSubTasks default 8).
DMS_RESERVE = 10
# Alarm when connections reach this share of max_connections.
ALARM_FRACTION = 0.8

# Memory (GiB) per size, by family kind: burstable and general purpose share a ladder
# (2xlarge = 32 GiB), memory-optimised classes have twice that.
_SIZES = {"micro": 1, "small": 2, "medium": 4, "large": 8, "xlarge": 16}
_GENERAL = ("t3", "t4g", "m5", "m5d", "m6g", "m6gd", "m6i", "m6id", "m7g", "m7i", "m8g")
_MEMORY = ("r5", "r5b", "r5d", "r6g", "r6gd", "r6i", "r6id", "r7g", "r7i", "r8g")


def instance_memory_gib(instance_class: str) -> float | None:
    """Nominal memory of a db.<family>.<size> class (AWS's instance class table), or None."""
    m = re.fullmatch(r"db\.([a-z0-9]+)\.([0-9]*)(micro|small|medium|large|xlarge)", instance_class)
    if not m:
        return None
    family, mult, size = m.group(1), m.group(2), m.group(3)
    if mult and size != "xlarge":
        return None
    base = _SIZES[size] * (int(mult) if mult else 1)
    if family in _GENERAL:
        # t-classes stop at 2xlarge; m-classes have no micro/small/medium.
        if family.startswith("t") and base > 32:
            return None
        if family.startswith("m") and size in ("micro", "small", "medium"):
            return None
        return float(base)
    if family in _MEMORY and size not in ("micro", "small", "medium"):
        return float(base * 2)
    return None


def class_memory_bytes(instance_class: str) -> int | None:
    """DBInstanceClassMemory: nominal memory minus the RDS reserve."""
    gib = instance_memory_gib(instance_class)
    if gib is None:
        return None
    mib = gib * 1024
    return int((mib - max(RESERVED_MIB_FLOOR, mib * RESERVED_FRACTION)) * MIB)


def max_connections(instance_class: str, explicit: int | None = None) -> int | None:
    """max_connections of the class: the parameter group's explicit value, else RDS's default formula."""
    if explicit is not None:
        return explicit
    memory = class_memory_bytes(instance_class)
    if memory is None:
        return None
    return min(memory // DIVISOR_BYTES, CAP)


def usable(max_conn: int) -> int:
    return math.floor(max_conn * USABLE_FRACTION)


def alarm_threshold(max_conn: int) -> int:
    return math.floor(max_conn * ALARM_FRACTION)
