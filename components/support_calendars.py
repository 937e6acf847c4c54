"""Vendor support calendars the config checks pinned versions against.

AWS moves what it supports on its own schedule: an EKS version past its end of standard
support is upgraded in place (upgradePolicy STANDARD) or billed 6x (EXTENDED); a DMS engine
past its "no new instance" date cannot be created. The mocks see none of it, so the dates
live here, with their source and the day they were last checked (`CALENDARS_CHECKED`).
The config refuses a pin that is out of support on that day, and tests/test_support_calendars.py
fails when a pinned default is. Update the tables (and the date) when you raise a pin.
"""

from __future__ import annotations

from datetime import date

# The day the tables below were last compared with their sources.
CALENDARS_CHECKED = date(2026, 11, 29)

# Kubernetes minor -> end of EKS standard support (UTC), from the "Amazon EKS Kubernetes
# release calendar" (docs.aws.amazon.com/eks/latest/userguide/kubernetes-versions.html;
# awsdocs/amazon-eks-user-guide latest/ug/versioning/kubernetes-versions.adoc). 1.35 and 1.36
# as listed by endoflife.date/amazon-eks (which tracks that page): 1.35 reached EKS in late
# January 2026, 1.36 on 2026-06-02; standard support lasts 14 months from the EKS release.
EKS_SOURCE = "docs.aws.amazon.com/eks/latest/userguide/kubernetes-versions.html (release calendar), endoflife.date/amazon-eks"
EKS_STANDARD_SUPPORT_END: dict[str, date] = {
    "1.31": date(2025, 11, 26),
    "1.32": date(2026, 3, 23),
    "1.33": date(2026, 7, 29),
    "1.34": date(2026, 12, 2),
    "1.35": date(2027, 3, 27),
    "1.36": date(2027, 8, 2),
}

# DMS replication engine -> (no new instance date, end of life: DMS upgrades instances itself).
# From the "AWS DMS release notes" table (docs.aws.amazon.com/dms/latest/userguide/CHAP_ReleaseNotes.html).
DMS_SOURCE = "docs.aws.amazon.com/dms/latest/userguide/CHAP_ReleaseNotes.html (active versions table)"
DMS_ENGINE_SUPPORT: dict[str, tuple[date, date]] = {
    "3.5.3": (date(2026, 2, 28), date(2026, 6, 30)),
    "3.5.4": (date(2026, 9, 15), date(2026, 11, 15)),
    "3.6.0": (date(2026, 4, 27), date(2026, 7, 27)),
    "3.6.1": (date(2027, 4, 30), date(2027, 6, 30)),
}


def eks_version_problem(version: str, on: date = CALENDARS_CHECKED) -> str | None:
    """Why `version` may not be pinned on `on`, or None."""
    end = EKS_STANDARD_SUPPORT_END.get(version)
    if end is None:
        known = ", ".join(EKS_STANDARD_SUPPORT_END)
        return f"{version} is not in the EKS support calendar (components/support_calendars.py knows {known}); add it with its dates"
    if on >= end:
        fits = [v for v, e in EKS_STANDARD_SUPPORT_END.items() if e > on]
        return (
            f"{version} left EKS standard support on {end.isoformat()} (calendar checked {on.isoformat()}); with "
            f"upgradePolicy STANDARD EKS upgrades it in place. Pick one in standard support: {', '.join(fits) or 'update the calendar'}"
        )
    return None


def dms_engine_problem(version: str, on: date = CALENDARS_CHECKED) -> str | None:
    """Why DMS engine `version` may not be pinned on `on`, or None."""
    dates = DMS_ENGINE_SUPPORT.get(version)
    if dates is None:
        return f"{version} is not in the DMS engine calendar (components/support_calendars.py knows {', '.join(DMS_ENGINE_SUPPORT)})"
    no_new, eol = dates
    if on >= no_new:
        fits = [v for v, (n, _) in DMS_ENGINE_SUPPORT.items() if n > on]
        return (
            f"DMS stopped creating {version} instances on {no_new.isoformat()} (end of life {eol.isoformat()}; calendar "
            f"checked {on.isoformat()}); pick one still offered: {', '.join(fits) or 'update the calendar'}"
        )
    return None
