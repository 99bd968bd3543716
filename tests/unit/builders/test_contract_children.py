"""SPEC "Children" and "The resource", statement by statement, table-driven.

Each table drives a settled world (every ISVC Ready) or ``desired.children``
and checks one SPEC statement across the spec variations a user writes.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

import pytest
from disvc_world import (
    OPTIONS,
    SKLEARN,
    UID,
    disvc,
    find,
    named,
    reconcile,
    seed,
    settle,
    with_spec,
)

from disvc.builders import affinity, desired, names
from disvc.builders.desired import BuildOptions
from disvc.builders.spec import InvalidSpec
from disvc.builders.types import Obj


def _template(**model: Any) -> dict[str, Any]:
    template = copy.deepcopy(SKLEARN)
    template["predictor"]["model"].update(model)
    return template


H2C = _template(ports=[{"name": "h2c", "containerPort": 9000, "protocol": "TCP"}])
GRPC_NAMED = _template(ports=[{"name": "grpc", "containerPort": 8081, "protocol": "TCP"}])
TLS = {"tls": {"secretName": "model-tls"}}


def _user_annotations(obj: Obj) -> dict[str, str]:
    return {
        k: v
        for k, v in obj["metadata"].get("annotations", {}).items()
        if k not in (names.APPLIED_HASH_ANNOTATION, names.TEMPLATE_HASH_ANNOTATION)
        # the default ClientIP affinity's own annotation: test_affinity.py covers it
        and (k, v) != (affinity.HASH_BY_ANNOTATION, affinity.CLIENT_ADDRESS)
    }


# --- Ingress: enabled, host, className, TLS, annotations, gRPC -----------------------


@dataclass(frozen=True)
class IngressCase:
    id: str
    ingress: dict[str, Any] | None
    template: dict[str, Any] = field(default_factory=lambda: SKLEARN)
    options: BuildOptions = OPTIONS
    host: str | None = "model-ns.example.com"
    """None: no Ingress at all."""
    class_name: str | None = None
    tls: list[dict[str, Any]] | None = None
    annotations: dict[str, str] = field(default_factory=dict)
    url: str | None = "http://model-ns.example.com"


INGRESS_CASES = [
    IngressCase("default", None),
    IngressCase("enabled-explicitly", {"enabled": True}),
    IngressCase("disabled", {"enabled": False}, host=None, url=None),
    IngressCase("disabled-ignores-tls-and-host", {"enabled": False, "host": "m.corp", **TLS}, host=None, url=None),
    IngressCase("host-override", {"host": "models.corp.io"}, host="models.corp.io", url="http://models.corp.io"),
    IngressCase(
        "host-override-with-tls",
        {"host": "models.corp.io", **TLS},
        host="models.corp.io",
        tls=[{"hosts": ["models.corp.io"], "secretName": "model-tls"}],
        url="https://models.corp.io",
    ),
    IngressCase("flag-domain", None, options=BuildOptions(ingress_domain="ai.corp"), host="model-ns.ai.corp", url="http://model-ns.ai.corp"),
    IngressCase("class-from-spec", {"className": "haproxy"}, class_name="haproxy"),
    IngressCase("class-from-flag", None, options=BuildOptions(ingress_class="nginx"), class_name="nginx"),
    IngressCase("class-spec-beats-flag", {"className": "haproxy"}, options=BuildOptions(ingress_class="nginx"), class_name="haproxy"),
    IngressCase("class-empty-falls-back-to-flag", {"className": ""}, options=BuildOptions(ingress_class="nginx"), class_name="nginx"),
    IngressCase(
        "tls-rest",
        TLS,
        tls=[{"hosts": ["model-ns.example.com"], "secretName": "model-tls"}],
        url="https://model-ns.example.com",
    ),
    IngressCase(
        "tls-grpc",
        TLS,
        template=H2C,
        tls=[{"hosts": ["model-ns.example.com"], "secretName": "model-tls"}],
        annotations={names.GRPC_BACKEND_ANNOTATION: "GRPC"},
        url="https://model-ns.example.com",
    ),
    IngressCase("grpc-h2c", None, template=H2C, annotations={names.GRPC_BACKEND_ANNOTATION: "GRPC"}),
    IngressCase("grpc-named-grpc", None, template=GRPC_NAMED, annotations={names.GRPC_BACKEND_ANNOTATION: "GRPC"}),
    IngressCase(
        "extra-annotations-rest",
        {"annotations": {"nginx.ingress.kubernetes.io/proxy-body-size": "64m", "team": "ml"}},
        annotations={"nginx.ingress.kubernetes.io/proxy-body-size": "64m", "team": "ml"},
    ),
    IngressCase(
        "extra-annotations-grpc",
        {"annotations": {"team": "ml"}},
        template=GRPC_NAMED,
        annotations={"team": "ml", names.GRPC_BACKEND_ANNOTATION: "GRPC"},
    ),
]


@pytest.mark.parametrize("case", INGRESS_CASES, ids=lambda c: c.id)
def test_ingress_and_status_url_follow_spec_ingress(case: IngressCase) -> None:
    spec = {} if case.ingress is None else {"ingress": case.ingress}
    obj, live = settle(disvc(template=case.template, spec=spec), options=case.options)
    status = obj["status"]
    # address.url names the generation Service whether or not there is an Ingress
    assert status["address"] == {"url": "http://model-v1.ns.svc.cluster.local"}
    assert status.get("url") == case.url
    if case.host is None:
        assert named(live, "Ingress") == []
        assert "Ingress" not in [c["kind"] for c in desired.children(obj, 1, case.options)]
        return
    ingress = find(live, "Ingress", "model")
    (rule,) = ingress["spec"]["rules"]
    assert rule["host"] == case.host
    (path,) = rule["http"]["paths"]
    assert (path["path"], path["pathType"]) == ("/", "Prefix")
    assert path["backend"] == {"service": {"name": "model-v1", "port": {"number": 80}}}
    assert ingress["spec"].get("ingressClassName") == case.class_name
    assert ingress["spec"].get("tls") == case.tls
    assert _user_annotations(ingress) == case.annotations


@dataclass(frozen=True)
class IngressChange:
    id: str
    ingress: dict[str, Any]


@pytest.mark.parametrize(
    "case",
    [
        IngressChange("host", {"host": "other.corp"}),
        IngressChange("class", {"className": "haproxy"}),
        IngressChange("tls", TLS),
        IngressChange("annotations", {"annotations": {"a": "b"}}),
    ],
    ids=lambda c: c.id,
)
def test_ingress_changes_update_the_ingress_only_and_start_no_rollout(case: IngressChange) -> None:
    obj, live = settle(disvc(replicas=2))
    want = desired.state(with_spec(obj, ingress=case.ingress), live, OPTIONS)
    assert want.plan.create == () and want.plan.delete == ()
    assert [(o["kind"], o["metadata"]["name"]) for o in want.plan.update] == [("Ingress", "model")]
    assert want.status["activeGeneration"] == "v1"


# --- Services and target port ------------------------------------------------------


@dataclass(frozen=True)
class ServiceCase:
    id: str
    template: dict[str, Any]
    port: dict[str, Any]


@pytest.mark.parametrize(
    "case",
    [
        ServiceCase("rest", SKLEARN, {"name": "http", "port": 80, "protocol": "TCP", "targetPort": 8080}),
        ServiceCase(
            "h2c",
            H2C,
            {"name": "grpc", "port": 80, "protocol": "TCP", "targetPort": 9000, "appProtocol": "kubernetes.io/h2c"},
        ),
        ServiceCase(
            "grpc-named",
            GRPC_NAMED,
            {"name": "grpc", "port": 80, "protocol": "TCP", "targetPort": 8081, "appProtocol": "kubernetes.io/h2c"},
        ),
        ServiceCase(
            "grpc-beside-http",
            _template(ports=[{"name": "http1", "containerPort": 8080}, {"name": "grpc", "containerPort": 8081}]),
            {"name": "grpc", "port": 80, "protocol": "TCP", "targetPort": 8081, "appProtocol": "kubernetes.io/h2c"},
        ),
    ],
    ids=lambda c: c.id,
)
def test_both_services_are_clusterip_client_affine_port_80_to_the_target(case: ServiceCase) -> None:
    children = desired.children(disvc(template=case.template, replicas=2), 3, OPTIONS)
    for name, selector in (("model", {"disvc": "model"}), ("model-v3", {"disvc.group": "model-v3"})):
        spec = find(children, "Service", name)["spec"]
        assert spec == {
            "type": "ClusterIP",
            "selector": selector,
            "sessionAffinity": "ClientIP",
            "sessionAffinityConfig": {"clientIP": {"timeoutSeconds": 10800}},
            "ports": [case.port],
        }


# --- ISVCs: names, labels, model name, annotations -----------------------------------


@dataclass(frozen=True)
class ArgsCase:
    id: str
    template: dict[str, Any]
    args: list[str]


@pytest.mark.parametrize(
    "case",
    [
        ArgsCase("empty-args", _template(args=[]), ["--model_name=model"]),
        ArgsCase("grpc-model", H2C, ["--model_name=model"]),
        ArgsCase("user-model-name-equals", _template(args=["--model_name=iris"]), ["--model_name=iris"]),
        ArgsCase("user-model-name-last", _template(args=["--workers=2", "--model_name", "iris"]), ["--workers=2", "--model_name", "iris"]),
        ArgsCase("user-model-name-equal-to-disvc", _template(args=["--model_name=model"]), ["--model_name=model"]),
    ],
    ids=lambda c: c.id,
)
def test_every_replica_serves_the_model_under_the_disvc_name(case: ArgsCase) -> None:
    children = desired.children(disvc(template=case.template, replicas=3), 1, OPTIONS)
    isvcs = [c for c in children if c["kind"] == "InferenceService"]
    assert named(isvcs) == ["model-v1-0", "model-v1-1", "model-v1-2"]
    for isvc in isvcs:
        assert isvc["apiVersion"] == "serving.kserve.io/v1beta1"
        assert isvc["metadata"]["labels"] == {"disvc": "model", "disvc.group": "model-v1"}
        assert isvc["spec"]["predictor"]["model"]["args"] == case.args
        # everything else of the template is passed through verbatim
        rest = {k: v for k, v in isvc["spec"]["predictor"]["model"].items() if k != "args"}
        assert rest == {k: v for k, v in case.template["predictor"]["model"].items() if k != "args"}


@dataclass(frozen=True)
class AnnotationCase:
    id: str
    spec_annotations: dict[str, str] | None
    metadata_annotations: dict[str, str] | None
    expected: dict[str, str]


@pytest.mark.parametrize(
    "case",
    [
        AnnotationCase("none", None, None, {}),
        AnnotationCase("spec-annotations", {"version": "v1", "team": "ml"}, None, {"version": "v1", "team": "ml"}),
        AnnotationCase(
            "propagated-kserve-prefix",
            None,
            {"serving.kserve.io/deploymentMode": "RawDeployment", "serving.kserve.io/autoscalerClass": "none"},
            {"serving.kserve.io/deploymentMode": "RawDeployment", "serving.kserve.io/autoscalerClass": "none"},
        ),
        AnnotationCase(
            "other-metadata-not-copied",
            None,
            {
                "kubectl.kubernetes.io/last-applied-configuration": "{}",
                "autoscaling.knative.dev/target": "5",
                "example.com/serving.kserve.io/x": "y",
                "disvc.serving.kserve.io/x": "y",
            },
            {},
        ),
        AnnotationCase(
            "both",
            {"version": "v2"},
            {"serving.kserve.io/deploymentMode": "RawDeployment", "owner": "me"},
            {"version": "v2", "serving.kserve.io/deploymentMode": "RawDeployment"},
        ),
    ],
    ids=lambda c: c.id,
)
def test_annotations_stamped_on_every_isvc(case: AnnotationCase) -> None:
    obj = disvc(replicas=3, annotations=case.spec_annotations, metadata_annotations=case.metadata_annotations)
    isvcs = [c for c in desired.children(obj, 1, OPTIONS) if c["kind"] == "InferenceService"]
    assert len(isvcs) == 3
    for isvc in isvcs:
        assert _user_annotations(isvc) == case.expected
        assert names.TEMPLATE_HASH_ANNOTATION in isvc["metadata"]["annotations"]


# --- the alias -----------------------------------------------------------------------


def _aliased(obj: Obj) -> Obj:
    alias = copy.deepcopy(obj)
    alias["spec"]["inferenservice"] = alias["spec"].pop("inferenceService")
    return alias


def test_seed_spelling_is_accepted_and_switching_spelling_is_no_template_change() -> None:
    # the seed applies unchanged
    assert "inferenservice" in seed()["spec"]
    obj, live = settle(seed())
    assert named(live, "InferenceService") == ["sklearn-v2-iris-rest-v1-0"]
    # rewriting the manifest with the documented spelling keeps the generation
    documented = copy.deepcopy(obj)
    documented["spec"]["inferenceService"] = documented["spec"].pop("inferenservice")
    documented["metadata"]["generation"] = 2
    want = desired.state(documented, live, OPTIONS)
    assert want.plan.is_empty
    assert want.status["activeGeneration"] == "v1"


@pytest.mark.parametrize(
    "spec",
    [
        {"inferenceService": SKLEARN, "inferenservice": SKLEARN},
        {"inferenceService": SKLEARN, "inferenservice": H2C},
    ],
    ids=["same-value", "different-values"],
)
def test_both_spellings_is_an_invalid_spec(spec: dict[str, Any]) -> None:
    obj = disvc()
    obj["spec"].update(copy.deepcopy(spec))
    with pytest.raises(InvalidSpec):
        desired.children(obj, 1, OPTIONS)
    want = desired.state(obj, [], OPTIONS)
    assert want.plan.is_empty
    ready = next(c for c in want.status["conditions"] if c["type"] == "Ready")
    assert (ready["status"], ready["reason"]) == ("False", "InvalidSpec")
    assert "inferenservice" in ready["message"]


# --- ownership and labels of every child ---------------------------------------------


def _rollout_world() -> list[Obj]:
    obj, live = settle(disvc(replicas=2, annotations={"version": "v1"}, template=H2C, spec={"ingress": TLS}))
    _, live, _ = reconcile(with_spec(obj, annotations={"version": "v2"}), live)
    return live


@pytest.mark.parametrize(
    "build",
    [
        lambda: desired.children(disvc(replicas=3), 1, OPTIONS),
        lambda: desired.children(disvc(template=GRPC_NAMED, spec={"ingress": TLS}), 4, OPTIONS),
        lambda: desired.children(_aliased(disvc(replicas=0)), 1, OPTIONS),
        _rollout_world,
    ],
    ids=["rest-3", "grpc-tls", "alias-zero-replicas", "mid-rollout-live"],
)
def test_every_child_is_labelled_and_controlled_by_the_disvc(build: Any) -> None:
    children = build()
    assert {c["kind"] for c in children} >= {"Service", "Ingress"}
    for child in children:
        meta = child["metadata"]
        assert meta["labels"]["disvc"] == "model"
        assert meta["namespace"] == "ns"
        assert meta["ownerReferences"] == [
            {
                "apiVersion": "serving.kserve.io/v1alpha1",
                "kind": "DistributedInferenceService",
                "name": "model",
                "uid": UID,
                "controller": True,
                "blockOwnerDeletion": True,
            }
        ]


# --- KServe schema -----------------------------------------------------------------------


SCHEMA_VARIANTS = {
    "grpc-h2c": disvc(template=H2C),
    "grpc-named-tls": disvc(template=GRPC_NAMED, spec={"ingress": TLS}),
    "custom-args": disvc(template=_template(args=["--workers=2", "--enable_docs_url"])),
    "user-model-name": disvc(template=_template(args=["--model_name", "iris"])),
    "alias": _aliased(disvc()),
    "annotations": disvc(
        annotations={"version": "v2"},
        metadata_annotations={"serving.kserve.io/deploymentMode": "RawDeployment", "x/y": "z"},
    ),
    "transformer-and-explainer": disvc(
        template={
            **_template(args=["--x"]),
            "transformer": {"containers": [{"name": "t", "image": "img", "ports": [{"name": "http1", "containerPort": 8080}]}]},
            "explainer": {"containers": [{"name": "e", "image": "img"}]},
        }
    ),
    "seed": seed(),
}


@pytest.mark.parametrize("obj", SCHEMA_VARIANTS.values(), ids=SCHEMA_VARIANTS.keys())
def test_every_variant_isvc_validates_against_kserve_schema(isvc_validator: Any, obj: Obj) -> None:
    isvcs = [c for c in desired.children(obj, 2, OPTIONS) if c["kind"] == "InferenceService"]
    assert isvcs
    for isvc in isvcs:
        assert [e.message for e in isvc_validator.iter_errors(isvc)] == []


# --- the resource ------------------------------------------------------------------


def test_replicas_default_to_one() -> None:
    children = desired.children(disvc(replicas=None), 1, OPTIONS)
    assert named(children, "InferenceService") == ["model-v1-0"]
