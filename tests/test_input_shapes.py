"""Every input key of every resource in every plan is one the provider's schema has.

The mocks accept any property: a nested dict with a misspelt key (`origin_keepalive_timout`, a
snake_case key Pulumi could not translate, a block moved in a provider upgrade) plans cleanly and
fails at the first real `pulumi up`, or, worse, is dropped and leaves a default in place. The SDKs
carry the schema: each resource's Args class (`<Name>InitArgs` where the name collides with a
nested type, else `<Name>Args`) and the nested `...Args` classes in its annotations, whose
properties name the engine's camelCase keys (`pulumi.getter(name=...)`). This walks the plan's
recorded inputs through them. Free-form inputs (tags, Helm values, policy documents: mappings or
strings in the schema) are not walked; custom resources of CRDs have no SDK class and are listed.
"""

from __future__ import annotations

import copy
import importlib
import keyword
import sys
import typing
from collections.abc import Iterator
from functools import cache
from typing import Any

import pytest

from tests.harness import STACKS, bootstrap_plan, stack_plan

_PULUMI_NAME = "_pulumi_name"  # pulumi._types: the engine's name a getter carries
PACKAGES = {"aws": "pulumi_aws", "kubernetes": "pulumi_kubernetes", "random": "pulumi_random"}
# Kubernetes API groups as pulumi_kubernetes modules; the CRDs' groups have no SDK class.
K8S_GROUPS = {"storage.k8s.io": "storage", "networking.k8s.io": "networking", "helm.sh": "helm", "policy": "policy"}
CRD_GROUPS = ("monitoring.coreos.com", "elbv2.k8s.aws", "argoproj.io")


@cache
def args_class(token: str) -> type | None:
    """The Args class of a resource type token, or None for a CRD (no SDK class)."""
    package, module, name = token.split(":")
    if package == "kubernetes":
        group, _, version = module.rpartition("/")
        if group in CRD_GROUPS:
            return None
        path = f"{K8S_GROUPS.get(group, group or 'core')}.{version}"
    else:
        path = module.split("/")[0]
        path = "" if path == "index" else path + ("_" if keyword.iskeyword(path) else "")
    sdk = importlib.import_module(f"{PACKAGES[package]}.{path}".rstrip("."))
    resource = sys.modules[getattr(sdk, name).__module__]
    return getattr(resource, f"{name}InitArgs", None) or getattr(resource, f"{name}Args")


@cache
def fields(cls: type) -> dict[str, tuple[Any, dict[str, Any]]]:
    """Engine name -> (annotation, namespace to resolve it in) of an Args class's properties."""
    namespace = vars(sys.modules[cls.__module__])
    return {
        getattr(prop.fget, _PULUMI_NAME, attr): (prop.fget.__annotations__.get("return"), namespace)
        for attr, prop in vars(cls).items()
        if isinstance(prop, property)
    }


def nested_args(annotation: Any, namespace: dict[str, Any]) -> set[type]:
    """The Args classes an annotation names anywhere (Input, Optional, Sequence, Union unwrapped)."""
    if isinstance(annotation, typing.ForwardRef):
        annotation = annotation.__forward_arg__
    if isinstance(annotation, str):
        name = annotation.split("[")[0]
        return {namespace[name]} if name.endswith("Args") and name in namespace else set()
    return {cls for arg in getattr(annotation, "__args__", None) or () for cls in nested_args(arg, namespace)}


def unknown_keys(value: Any, classes: set[type], path: str) -> Iterator[str]:
    if not classes:
        return  # a scalar, a free-form mapping or a document: nothing to check inside
    if isinstance(value, list):
        for i, item in enumerate(value):
            yield from unknown_keys(item, classes, f"{path}[{i}]")
    elif isinstance(value, dict):
        allowed = {key: spec for cls in classes for key, spec in fields(cls).items()}
        for key, item in value.items():
            if key not in allowed:
                yield f"{path}.{key}: not an input of {'/'.join(sorted(c.__name__ for c in classes))}"
            else:
                yield from unknown_keys(item, nested_args(*allowed[key]), f"{path}.{key}")


def shape_violations(resources: list[dict]) -> list[str]:
    found = []
    for r in resources:
        package = r["type"].split(":")[0]
        if package not in PACKAGES:
            continue  # components and providers
        cls = args_class(r["type"])
        if cls is not None:
            found += [f"{r['type']} {m}" for m in unknown_keys(r["props"], {cls}, r["name"])]
    return found


@pytest.mark.parametrize("stack", STACKS)
def test_every_input_key_is_in_the_providers_schema(stack):
    assert shape_violations(stack_plan(stack).resources) == []


def test_bootstrap_input_keys_are_in_the_providers_schema():
    assert shape_violations(bootstrap_plan().resources) == []


def test_the_walk_reaches_nested_blocks_and_kubernetes_objects():
    """The walk is not vacuous: it resolves nested blocks three levels down and Kubernetes types."""
    plan = stack_plan("dev")
    (origin,) = [r for r in plan.resources if r["type"] == "aws:cloudfront/vpcOrigin:VpcOrigin"]
    config = fields(args_class(origin["type"]))["vpcOriginEndpointConfig"]
    (endpoint,) = nested_args(*config)
    (protocols,) = nested_args(*fields(endpoint)["originSslProtocols"])
    assert set(fields(protocols)) == {"items", "quantity"}
    assert "metadata" in fields(args_class("kubernetes:core/v1:Secret"))
    assert args_class("kubernetes:monitoring.coreos.com/v1:PrometheusRule") is None


def test_planted_misspellings_are_caught():
    planted = copy.deepcopy(stack_plan("dev").resources)
    by_type = {r["type"]: r for r in planted}
    # A snake_case key the SDK never translated, three levels down.
    by_type["aws:cloudfront/vpcOrigin:VpcOrigin"]["props"]["vpcOriginEndpointConfig"]["originSslProtocols"]["item_list"] = ["TLSv1.2"]
    # A misspelt key inside a list of blocks.
    distribution = by_type["aws:cloudfront/distribution:Distribution"]["props"]
    distribution["origins"][1]["vpcOriginConfig" if "vpcOriginConfig" in distribution["origins"][1] else "customOriginConfig"][
        "originKeepaliveTimout"
    ] = 60
    # A top-level key the resource does not have.
    by_type["aws:lb/loadBalancer:LoadBalancer"]["props"]["scheme"] = "internal"
    found = shape_violations(planted)
    assert len(found) == 3, found
    assert any(".vpcOriginEndpointConfig.originSslProtocols.item_list:" in f for f in found)
    assert any(".origins[1]." in f and ".originKeepaliveTimout:" in f for f in found)
    assert any(f.startswith("aws:lb/loadBalancer:LoadBalancer dev-alb.scheme:") for f in found)
