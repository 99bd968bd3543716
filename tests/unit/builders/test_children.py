"""What each child looks like for the spec variations a KServe user writes."""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

import pytest
from disvc_world import OPTIONS, SKLEARN, disvc, find, reconcile, set_ready

from disvc.builders import desired, names, protocol
from disvc.builders.desired import BuildOptions


def _template(**model: Any) -> dict[str, Any]:
    template = copy.deepcopy(SKLEARN)
    template["predictor"]["model"].update(model)
    return template


GRPC = _template(ports=[{"name": "h2c", "containerPort": 9000, "protocol": "TCP"}])


@dataclass(frozen=True)
class ProtocolCase:
    id: str
    template: dict[str, Any]
    grpc: bool
    port: int


@pytest.mark.parametrize(
    "case",
    [
        ProtocolCase("rest-default", SKLEARN, False, 8080),
        ProtocolCase("h2c", GRPC, True, 9000),
        ProtocolCase("grpc-name", _template(ports=[{"name": "grpc", "containerPort": 8081}]), True, 8081),
        ProtocolCase("http1-port", _template(ports=[{"name": "http1", "containerPort": 8085}]), False, 8085),
        ProtocolCase(
            "custom-container",
            {"predictor": {"containers": [{"name": "c", "image": "i", "ports": [{"name": "h2c", "containerPort": 7000}]}]}},
            True,
            7000,
        ),
    ],
    ids=lambda c: c.id,
)
def test_protocol_follows_the_predictor_port_names(case: ProtocolCase) -> None:
    assert protocol.of(case.template) == protocol.ServingProtocol(case.grpc, case.port)


def test_grpc_services_name_the_port_and_ingress_asks_nginx_for_grpc() -> None:
    children = desired.children(disvc(template=GRPC), 1, OPTIONS)
    for name in ("model", "model-v1"):
        (port,) = find(children, "Service", name)["spec"]["ports"]
        assert port == {
            "name": "grpc",
            "port": 80,
            "protocol": "TCP",
            "targetPort": 9000,
            "appProtocol": "kubernetes.io/h2c",
        }
    ingress = find(children, "Ingress", "model")
    assert ingress["metadata"]["annotations"][names.GRPC_BACKEND_ANNOTATION] == "GRPC"
    assert "tls" not in ingress["spec"]


def test_tls_secret_adds_a_tls_section_and_makes_the_url_https() -> None:
    obj = disvc(template=GRPC, spec={"ingress": {"tls": {"secretName": "model-tls"}}})
    ingress = find(desired.children(obj, 1, OPTIONS), "Ingress", "model")
    assert ingress["spec"]["tls"] == [{"hosts": ["model-ns.example.com"], "secretName": "model-tls"}]
    obj, live, _ = reconcile(obj, [])
    _, _, want = reconcile(obj, set_ready(live))
    assert want.status["url"] == "https://model-ns.example.com"


@dataclass(frozen=True)
class IngressCase:
    id: str
    ingress: dict[str, Any]
    options: BuildOptions
    host: str
    class_name: str | None
    annotations: dict[str, str] = field(default_factory=dict)


@pytest.mark.parametrize(
    "case",
    [
        IngressCase("defaults", {}, OPTIONS, "model-ns.example.com", None),
        IngressCase("flag-domain-and-class", {}, BuildOptions(ingress_domain="ai.corp", ingress_class="nginx"), "model-ns.ai.corp", "nginx"),
        IngressCase(
            "spec-overrides",
            {"host": "models.corp", "className": "haproxy", "annotations": {"a": "b"}},
            BuildOptions(ingress_class="nginx"),
            "models.corp",
            "haproxy",
            {"a": "b"},
        ),
    ],
    ids=lambda c: c.id,
)
def test_ingress_host_class_and_annotations(case: IngressCase) -> None:
    ingress = find(desired.children(disvc(spec={"ingress": case.ingress}), 1, case.options), "Ingress", "model")
    assert ingress["spec"]["rules"][0]["host"] == case.host
    assert ingress["spec"].get("ingressClassName") == case.class_name
    annotations = {
        k: v
        for k, v in ingress["metadata"]["annotations"].items()
        if k not in (names.APPLIED_HASH_ANNOTATION, "nginx.ingress.kubernetes.io/upstream-hash-by")
    }
    assert annotations == case.annotations


def test_disabled_ingress_is_not_built_and_a_live_one_is_deleted() -> None:
    obj, live, _ = reconcile(disvc(), [])
    off = disvc(spec={"ingress": {"enabled": False}})
    assert [c["kind"] for c in desired.children(off, 1, OPTIONS)].count("Ingress") == 0
    want = desired.state({**off, "status": obj["status"]}, live, OPTIONS)
    assert [(r.kind, r.name) for r in want.plan.delete] == [("Ingress", "model")]
    _, _, ready = reconcile({**off, "status": want.status}, set_ready([o for o in live if o["kind"] != "Ingress"]))
    assert "url" not in ready.status and "address" in ready.status


@dataclass(frozen=True)
class ArgsCase:
    id: str
    template: dict[str, Any]
    args: list[str] | None


@pytest.mark.parametrize(
    "case",
    [
        ArgsCase("no-args", SKLEARN, ["--model_name=model"]),
        ArgsCase("user-args-kept-in-order", _template(args=["--b", "--a"]), ["--b", "--a", "--model_name=model"]),
        ArgsCase("user-model-name", _template(args=["--model_name=mine", "--x"]), ["--model_name=mine", "--x"]),
        ArgsCase("user-model-name-separate", _template(args=["--model_name", "mine"]), ["--model_name", "mine"]),
        ArgsCase("custom-containers", {"predictor": {"containers": [{"name": "c", "image": "i", "args": ["--x"]}]}}, None),
    ],
    ids=lambda c: c.id,
)
def test_model_is_served_under_the_disvc_name_unless_the_user_says_otherwise(case: ArgsCase) -> None:
    isvc = find(desired.children(disvc(template=case.template), 1, OPTIONS), "InferenceService", "model-v1-0")
    predictor = isvc["spec"]["predictor"]
    if case.args is None:
        assert predictor["containers"][0]["args"] == ["--x"]
        assert "model" not in predictor
    else:
        assert predictor["model"]["args"] == case.args


def test_spec_annotations_win_over_propagated_ones_and_others_are_not_copied() -> None:
    obj = disvc(
        annotations={"serving.kserve.io/autoscalerClass": "hpa", "team": "a"},
        metadata_annotations={"serving.kserve.io/autoscalerClass": "none", "other.io/x": "y"},
    )
    isvc = find(desired.children(obj, 1, OPTIONS), "InferenceService", "model-v1-0")
    annotations = isvc["metadata"]["annotations"]
    assert annotations["serving.kserve.io/autoscalerClass"] == "hpa"
    assert annotations["team"] == "a"
    assert "other.io/x" not in annotations


def test_alias_and_documented_spelling_build_the_same_children() -> None:
    documented = disvc()
    alias = copy.deepcopy(documented)
    alias["spec"]["inferenservice"] = alias["spec"].pop("inferenceService")
    assert desired.children(alias, 1, OPTIONS) == desired.children(documented, 1, OPTIONS)


def test_children_without_live_objects_are_what_state_creates() -> None:
    obj = disvc(replicas=2)
    created = [o for o in desired.state(obj, [], OPTIONS).plan.create if o["kind"] != "ControllerRevision"]
    assert desired.children(obj, 1, OPTIONS) == created


@pytest.mark.parametrize(
    "template",
    [
        SKLEARN,
        GRPC,
        _template(args=["--workers", "2"], resources={"limits": {"cpu": "1"}}),
        {**copy.deepcopy(SKLEARN), "transformer": {"containers": [{"name": "t", "image": "img"}]}},
        {"predictor": {"containers": [{"name": "kserve-container", "image": "img", "ports": [{"containerPort": 8080}]}]}},
    ],
    ids=["sklearn", "grpc", "resources", "transformer", "custom-container"],
)
def test_every_built_isvc_validates_against_kserve_schema(isvc_validator: Any, template: dict[str, Any]) -> None:
    for child in desired.children(disvc(template=template, replicas=2), 3, OPTIONS):
        if child["kind"] == "InferenceService":
            errors = [e.message for e in isvc_validator.iter_errors(child)]
            assert errors == []


def test_kserve_schema_check_would_catch_a_malformed_isvc(isvc_validator: Any) -> None:
    isvc = find(desired.children(disvc(), 1, OPTIONS), "InferenceService", "model-v1-0")
    broken = copy.deepcopy(isvc)
    broken["spec"]["predictor"]["model"]["args"] = "--model_name=model"
    assert list(isvc_validator.iter_errors(broken))
