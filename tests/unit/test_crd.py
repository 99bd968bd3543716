"""The DISVC CRD: structural, accepts the seed, and its CEL rules reject what they should."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import celpy
import jsonschema
import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
CRD_PATH = REPO / "config" / "crd" / "bases" / "serving.kserve.io_distributedinferenceservices.yaml"
SEED = REPO / "config" / "samples" / "serving_v1alpha1_distributedinferenceservice.yaml"
CRD = yaml.safe_load(CRD_PATH.read_text())
(VERSION,) = CRD["spec"]["versions"]
SCHEMA = VERSION["schema"]["openAPIV3Schema"]
CEL = celpy.Environment()


def _nodes(schema: dict[str, Any], path: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    yield path, schema
    for name, child in schema.get("properties", {}).items():
        yield from _nodes(child, f"{path}.{name}")
    if isinstance(schema.get("items"), dict):
        yield from _nodes(schema["items"], f"{path}[]")
    if isinstance(schema.get("additionalProperties"), dict):
        yield from _nodes(schema["additionalProperties"], f"{path}{{}}")


def test_crd_names_scope_and_subresources() -> None:
    spec = CRD["spec"]
    assert CRD["metadata"]["name"] == "distributedinferenceservices.serving.kserve.io"
    assert (spec["group"], spec["scope"], VERSION["name"]) == ("serving.kserve.io", "Namespaced", "v1alpha1")
    assert spec["names"]["kind"] == "DistributedInferenceService"
    assert spec["names"]["plural"] == "distributedinferenceservices"
    assert spec["names"]["shortNames"] == ["disvc"] and spec["names"]["categories"] == ["kserve"]
    assert VERSION["subresources"] == {
        "status": {},
        "scale": {
            "specReplicasPath": ".spec.replicas",
            "statusReplicasPath": ".status.replicas",
            "labelSelectorPath": ".status.selector",
        },
    }
    columns = {c["name"]: c["jsonPath"] for c in VERSION["additionalPrinterColumns"]}
    assert columns == {
        "URL": ".status.url",
        "Ready": '.status.conditions[?(@.type=="Ready")].status',
        "Replicas": ".spec.replicas",
        "Ready Replicas": ".status.readyReplicas",
        "Generation": ".status.activeGeneration",
        "Progress": '.status.conditions[?(@.type=="Progressing")].reason',
        "Strategy": ".spec.rollout.strategy",
        "Age": ".metadata.creationTimestamp",
    }


@pytest.mark.parametrize(("path", "node"), list(_nodes(SCHEMA)), ids=lambda v: v if isinstance(v, str) else "")
def test_schema_is_structural(path: str, node: dict[str, Any]) -> None:
    # apiextensions.k8s.io/v1 structural rules that a static check can see
    assert node.get("type") or node.get("x-kubernetes-int-or-string"), f"{path} has no type"
    assert not ("properties" in node and "additionalProperties" in node), path
    assert "$ref" not in node, path
    for forbidden in ("anyOf", "oneOf", "allOf", "not"):
        # allowed only without types/defaults inside; we simply use none
        assert forbidden not in node, f"{path} uses {forbidden}"
    if node.get("type") == "array":
        assert isinstance(node.get("items"), dict), f"{path} array without items"
    if node.get("x-kubernetes-list-type") == "map":
        keys = node["x-kubernetes-list-map-keys"]
        assert set(keys) <= set(node["items"].get("required", [])), f"{path} map keys must be required"
    if path == ".metadata":
        assert node == {"type": "object"}, "metadata may only be typed, as for every CRD"


def test_template_fields_keep_unknown_fields_and_status_is_typed() -> None:
    spec = SCHEMA["properties"]["spec"]["properties"]
    for field in ("inferenceService", "inferenservice"):
        assert spec[field]["x-kubernetes-preserve-unknown-fields"] is True
    assert spec["replicas"]["default"] == 1 and spec["replicas"]["minimum"] == 0
    assert spec["ingress"]["properties"]["enabled"]["default"] is True
    status = SCHEMA["properties"]["status"]["properties"]
    assert set(status) == {
        "observedGeneration", "replicas", "readyReplicas", "activeGeneration",
        "selector", "url", "address", "conditions", "generations", "history", "sessionAffinity", "analysis",
    }
    assert status["conditions"]["x-kubernetes-list-map-keys"] == ["type"]


def test_seed_manifest_validates_against_the_schema() -> None:
    jsonschema.Draft7Validator(SCHEMA).validate(yaml.safe_load(SEED.read_text()))
    assert _cel_failures(yaml.safe_load(SEED.read_text())) == []


def test_builder_status_validates_against_the_status_schema() -> None:
    from disvc import render

    seed_text = SEED.read_text()
    options = render.RenderOptions(with_status=True)
    *_, status_doc = render.render(render.load(seed_text, "seed"), "seed", options)
    jsonschema.Draft7Validator(SCHEMA["properties"]["status"]).validate(status_doc["status"])


def _cel_failures(obj: Any, schema: dict[str, Any] = SCHEMA) -> list[str]:
    """Evaluate every x-kubernetes-validations rule against ``obj`` as the API server would."""
    failures = []
    for rule in schema.get("x-kubernetes-validations", []):
        program = CEL.program(CEL.compile(rule["rule"]))
        if not bool(program.evaluate({"self": celpy.json_to_cel(obj)})):
            failures.append(rule["message"])
    if isinstance(obj, dict):
        for name, child in schema.get("properties", {}).items():
            if name in obj:
                failures.extend(_cel_failures(obj[name], child))
    return failures


def _seed(**spec: Any) -> dict[str, Any]:
    obj = yaml.safe_load(SEED.read_text())
    obj["spec"].update(spec)
    return {k: v for k, v in obj.items()}


def _renamed(name: str) -> dict[str, Any]:
    obj = _seed()
    obj["metadata"]["name"] = name
    return obj


def _without(field: str) -> dict[str, Any]:
    obj = _seed()
    del obj["spec"][field]
    return obj


TEMPLATE = copy.deepcopy(yaml.safe_load(SEED.read_text())["spec"]["inferenservice"])


@dataclass(frozen=True)
class CelCase:
    id: str
    obj: dict[str, Any]
    failure: str | None


CEL_CASES = [
    CelCase("seed-passes", _seed(), None),
    CelCase("documented-spelling-passes", {**_without("inferenservice"), "spec": {"inferenceService": TEMPLATE}}, None),
    CelCase("zero-replicas-pass", _seed(replicas=0), None),
    CelCase("name-of-50-passes", _renamed("a" * 50), None),
    CelCase("both-spellings", _seed(inferenceService=TEMPLATE), "exactly one of"),
    CelCase("no-template", _without("inferenservice"), "exactly one of"),
    CelCase("no-predictor", _seed(inferenservice={"transformer": {}}), "predictor is required"),
    CelCase("negative-replicas", _seed(replicas=-1), "must not be negative"),
    CelCase("name-of-51", _renamed("a" * 51), "at most 50 characters"),
    CelCase("name-with-dot", _renamed("a.b"), "DNS-1035"),
    CelCase("rolling-passes", _seed(rollout={"strategy": "Rolling", "maxSurge": 1, "maxUnavailable": 0}), None),
    CelCase("rolling-percentages-pass", _seed(rollout={"strategy": "Rolling", "maxSurge": "0%", "maxUnavailable": "25%"}), None),
    CelCase("rolling-both-zero", _seed(rollout={"strategy": "Rolling", "maxSurge": 0, "maxUnavailable": 0}), "must not both be 0"),
    CelCase("rolling-both-zero-percent", _seed(rollout={"strategy": "Rolling", "maxSurge": "0%", "maxUnavailable": 0}), "must not both be 0"),
    CelCase("blue-green-ignores-zero-surge", _seed(rollout={"strategy": "BlueGreen", "maxSurge": 0, "maxUnavailable": 0}), None),
    CelCase("surge-not-a-percentage", _seed(rollout={"maxSurge": "two"}), "maxSurge must be a non-negative integer or a percentage"),
    CelCase("surge-over-100-percent", _seed(rollout={"maxSurge": "101%"}), "maxSurge must be"),
    CelCase("negative-unavailable", _seed(rollout={"maxUnavailable": -1}), "maxUnavailable must be"),
    CelCase("canary-passes", _seed(rollout={"canaryTrafficPercent": 10}), None),
    CelCase("gateway-passes", _seed(ingress={"gateway": {"name": "public", "namespace": "infra"}}), None),
    CelCase("gateway-with-class", _seed(ingress={"gateway": {"name": "public"}, "className": "nginx"}), "className applies to an Ingress"),
    CelCase("canary-with-rolling", _seed(rollout={"strategy": "Rolling", "canaryTrafficPercent": 10}), "needs strategy BlueGreen"),
]


@pytest.mark.parametrize("case", CEL_CASES, ids=lambda c: c.id)
def test_cel_rules(case: CelCase) -> None:
    failures = _cel_failures(case.obj)
    if case.failure is None:
        assert failures == []
    else:
        assert len(failures) == 1 and case.failure in failures[0], failures


def test_negative_replicas_also_fail_the_openapi_minimum() -> None:
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.Draft7Validator(SCHEMA).validate(_seed(replicas=-1))


@pytest.mark.parametrize(
    ("rollout", "path"),
    [
        ({"strategy": "Canary"}, "strategy"),
        ({"canaryTrafficPercent": 101}, "canaryTrafficPercent"),
        ({"canaryTrafficPercent": -1}, "canaryTrafficPercent"),
        ({"progressDeadlineSeconds": 0}, "progressDeadlineSeconds"),
    ],
)
def test_rollout_ranges_fail_the_openapi_schema(rollout: dict[str, Any], path: str) -> None:
    with pytest.raises(jsonschema.ValidationError) as problem:
        jsonschema.Draft7Validator(SCHEMA).validate(_seed(rollout=rollout))
    assert path in list(problem.value.absolute_path)


def test_rollout_defaults_to_blue_green_with_deployment_like_bounds() -> None:
    rollout = SCHEMA["properties"]["spec"]["properties"]["rollout"]
    fields = rollout["properties"]
    assert rollout["default"] == {}
    assert (fields["strategy"]["default"], fields["maxSurge"]["default"], fields["maxUnavailable"]["default"]) == (
        "BlueGreen", 1, 0,
    )
    assert fields["progressDeadlineSeconds"]["default"] == 600
    assert fields["maxSurge"]["x-kubernetes-int-or-string"] is True


def test_a_gateway_needs_a_name() -> None:
    with pytest.raises(jsonschema.ValidationError, match="'name' is a required property"):
        jsonschema.Draft7Validator(SCHEMA).validate(_seed(ingress={"gateway": {"namespace": "infra"}}))
