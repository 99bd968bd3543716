"""The PoC 1 seed manifest renders exactly the children the PoC expects.

The full objects are kept as golden YAML beside this file; set
DISVC_UPDATE_GOLDEN=1 to rewrite it after an intended change (and review the diff).
"""

from __future__ import annotations

import os
from typing import Any

import pytest
import yaml
from disvc_world import GOLDEN, OPTIONS, condition, find, reconcile, seed, set_ready

from disvc.builders import desired, names

GOLDEN_CHILDREN = GOLDEN / "poc1-children.yaml"
GOLDEN_STATUS = GOLDEN / "poc1-status-ready.yaml"
N = "sklearn-v2-iris-rest"


def _children() -> list[dict[str, Any]]:
    return list(desired.state(seed(), [], OPTIONS).plan.create)


def _ready_status() -> dict[str, Any]:
    obj, live, _ = reconcile(seed(), [])
    obj, live, want = reconcile(obj, set_ready(live))
    return want.status


@pytest.mark.parametrize(
    ("path", "build"), [(GOLDEN_CHILDREN, _children), (GOLDEN_STATUS, _ready_status)]
)
def test_seed_matches_golden(path: Any, build: Any) -> None:
    built = build()
    if os.environ.get("DISVC_UPDATE_GOLDEN"):
        documents = built if isinstance(built, list) else [built]
        path.write_text(yaml.safe_dump_all(documents, sort_keys=False))
    golden = list(yaml.safe_load_all(path.read_text()))
    assert built == (golden if isinstance(built, list) else golden[0])


def test_seed_isvc_serves_the_model_under_the_disvc_name() -> None:
    isvc = find(_children(), "InferenceService", f"{N}-v1-0")
    assert isvc["metadata"]["labels"] == {"disvc": N, "disvc.group": f"{N}-v1"}
    assert isvc["spec"]["predictor"]["model"]["args"] == [f"--model_name={N}"]
    annotations = isvc["metadata"]["annotations"]
    assert annotations["serving.kserve.io/deploymentMode"] == "RawDeployment"
    assert annotations["serving.kserve.io/autoscalerClass"] == "none"
    assert names.TEMPLATE_HASH_ANNOTATION in annotations


def test_seed_services_select_all_replicas_and_the_generation() -> None:
    children = _children()
    top = find(children, "Service", N)["spec"]
    assert top["selector"] == {"disvc": N}
    assert top["sessionAffinity"] == "ClientIP"
    assert [(p["port"], p["targetPort"]) for p in top["ports"]] == [(80, 8080)]
    generation = find(children, "Service", f"{N}-v1")["spec"]
    assert generation["selector"] == {"disvc.group": f"{N}-v1"}
    assert generation["sessionAffinity"] == "ClientIP"


def test_seed_ingress_routes_the_namespaced_host_to_the_generation_service() -> None:
    (rule,) = find(_children(), "Ingress", N)["spec"]["rules"]
    assert rule["host"] == f"{N}-kserve-demo.example.com"
    (path,) = rule["http"]["paths"]
    assert path["backend"]["service"] == {"name": f"{N}-v1", "port": {"number": 80}}


def test_seed_reports_urls_only_once_an_isvc_is_ready() -> None:
    _, _, first = reconcile(seed(), [])
    assert "url" not in first.status and "address" not in first.status
    status = _ready_status()
    assert status["url"] == f"http://{N}-kserve-demo.example.com"
    assert status["address"] == {"url": f"http://{N}-v1.kserve-demo.svc.cluster.local"}
    assert condition(status, "Ready")["status"] == "True"


def test_every_seed_child_is_owned_by_the_disvc() -> None:
    for child in _children():
        (ref,) = child["metadata"]["ownerReferences"]
        assert (ref["kind"], ref["name"], ref["controller"], ref["blockOwnerDeletion"]) == (
            "DistributedInferenceService", N, True, True,
        )
        assert child["metadata"]["labels"]["disvc"] == N
        assert names.APPLIED_HASH_ANNOTATION in child["metadata"]["annotations"]


def test_seed_isvc_validates_against_kserve_schema(isvc_validator: Any) -> None:
    errors = list(isvc_validator.iter_errors(find(_children(), "InferenceService", f"{N}-v1-0")))
    assert not errors, [e.message for e in errors]
