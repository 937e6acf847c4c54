"""A first run completes in the order dev -> nas-migration -> production: each stage delegates
its own zone into a parent that exists before any stage (voip-bootstrap's apex zone), production
serves that zone without creating it, and the config refuses delegations that cannot work."""

from __future__ import annotations

import pytest

from tests.harness import config_errors, stack_plan

MOCK_NS = ["ns-1.awsdns-01.org", "ns-2.awsdns-02.co.uk", "ns-3.awsdns-03.com", "ns-4.awsdns-04.net"]


@pytest.mark.parametrize("stack, domain", [("dev", "dev.voip.example.com"), ("nas-migration", "migration.voip.example.com")])
def test_stages_delegate_their_own_zone_into_the_apex(stack, domain):
    plan = stack_plan(stack)
    (zone,) = plan.of_type("aws:route53/zone:Zone")
    (ns,) = [r for r in plan.of_type("aws:route53/record:Record") if r["props"]["type"] == "NS"]
    assert zone["props"]["name"] == domain and ns["props"]["name"] == domain
    # Into the apex zone looked up by name (the mocks answer getZone by name), not the stage's own.
    assert ns["props"]["zoneId"] != zone["id"] and ns["props"]["records"] == MOCK_NS
    for validation in plan.of_type("aws:acm/certificateValidation:CertificateValidation"):
        assert ns["urn"] in validation["dependsOn"]


def test_production_serves_the_bootstrap_apex_zone_without_owning_it():
    plan = stack_plan("production")
    assert not plan.of_type("aws:route53/zone:Zone")
    assert not [r for r in plan.of_type("aws:route53/record:Record") if r["props"]["type"] == "NS"]
    zone_ids = {r["props"]["zoneId"] for r in plan.of_type("aws:route53/record:Record")}
    assert len(zone_ids) == 1 and next(iter(zone_ids)).startswith("Z")
    assert plan["outputs"]["nameServers"] == ["ns-11.awsdns-11.org", "ns-12.awsdns-12.co.uk", "ns-13.awsdns-13.com", "ns-14.awsdns-14.net"]


def test_no_stage_names_another_stages_resources():
    """Nothing in dev's or nas-migration's plan refers to production (the old order problem)."""
    for stack in ("dev", "nas-migration"):
        text = repr(stack_plan(stack)["resources"])
        assert "production" not in text, stack


@pytest.mark.parametrize(
    "edge, message",
    [
        (
            {"delegateFrom": "example.org"},
            "error: voip-infra:edge.delegateFrom: 'example.org' is not a parent of domain 'dev.voip.example.com'",
        ),
        ({"hostedZoneId": "Z0123456789ABC"}, "error: voip-infra:edge.delegateFrom: only a stage that creates its own zone delegates it"),
        (
            {"existingZone": True, "delegateFrom": None, "hostedZoneId": "Z0123456789ABC"},
            "error: voip-infra:edge.existingZone: set either hostedZoneId or existingZone",
        ),
    ],
)
def test_delegation_config_errors(edge, message):
    lines = config_errors({"voip-infra:edge": edge})
    assert any(line.startswith(message) for line in lines), lines


def test_runner_without_nat_is_a_config_error():
    lines = config_errors({"voip-infra:network": {"natStrategy": "none"}})
    assert any(
        line.startswith("error: voip-infra:cluster.ciRunner.enabled: the runner in the private subnets needs egress") for line in lines
    )
