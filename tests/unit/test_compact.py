"""The caches' compact copies: what a child's copy leaves out must never be a
field the builders set, or a converged child would look drifted and be
re-applied on every reconcile."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from disvc.builders import desired, diff
from disvc.builders.desired import BuildOptions
from disvc.builders.types import Obj
from disvc.controller.compact import SERVER_SET_SPEC_FIELDS, compact, compact_child

SAMPLES = Path(__file__).resolve().parents[2] / "config" / "samples"


def _sample_disvcs() -> list[tuple[str, Obj]]:
    found = []
    for path in sorted(SAMPLES.glob("serving_*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if doc and doc.get("kind") == "DistributedInferenceService":
                doc["metadata"].update(uid="u-1", generation=1, namespace="ns")
                found.append((path.stem, doc))
    return found


def _variant(base: Obj, **ingress: Any) -> Obj:
    obj = copy.deepcopy(base)
    obj["spec"]["ingress"] = {**obj["spec"].get("ingress", {}), **ingress}
    return obj


SEED = _sample_disvcs()[0][1]
CASES = [
    *_sample_disvcs(),
    ("tls-host-class", _variant(SEED, host="models.example.org", className="nginx", tls={"secretName": "cert"})),
    ("gateway", _variant(SEED, gateway={"name": "gw", "namespace": "infra"})),
]


def as_served(child: Obj) -> Obj:
    """``child`` as the API server returns it: managed fields, allocated IPs, a full status."""
    live = copy.deepcopy(child)
    live["metadata"]["managedFields"] = [{"manager": "disvc-controller", "operation": "Apply"}]
    if child["kind"] == "Service":
        live["spec"].update(
            clusterIP="10.96.0.7", clusterIPs=["10.96.0.7"], ipFamilies=["IPv4"],
            ipFamilyPolicy="SingleStack", internalTrafficPolicy="Cluster",
        )
    live["status"] = {
        "conditions": [
            {"type": "PredictorReady", "status": "True"},
            {"type": "Ready", "status": "True", "lastTransitionTime": "2026-01-01T00:00:00Z"},
        ],
        "url": "http://x.example.com",
        "loadBalancer": {},
    }
    return live


@pytest.mark.parametrize(("name", "disvc"), CASES, ids=[name for name, _ in CASES])
def test_a_compacted_child_still_holds_every_field_the_builders_set(name: str, disvc: Obj) -> None:
    options = BuildOptions(gateway_api=True)
    children = desired.children(disvc, 1, options)
    assert children, name
    for child in children:  # desired bodies, carrying their applied-hash
        assert diff.is_converged(child, compact_child(as_served(child)), "u-1"), child["metadata"]["name"]


def test_the_builders_never_set_a_field_the_compact_copy_drops() -> None:
    for _, disvc in CASES:
        for child in desired.children(disvc, 1, BuildOptions(gateway_api=True)):
            dropped = SERVER_SET_SPEC_FIELDS.get(child["kind"], frozenset())
            assert not dropped & set(child.get("spec", {})), child["metadata"]["name"]
            assert "status" not in child


def test_a_childs_status_keeps_only_its_ready_condition() -> None:
    served = as_served({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s"}, "spec": {"ports": []}})
    stored = compact_child(served)
    assert stored["status"] == {"conditions": [{"type": "Ready", "status": "True", "lastTransitionTime": "2026-01-01T00:00:00Z"}]}
    assert "clusterIP" not in stored["spec"] and "managedFields" not in stored["metadata"]
    del served["status"]["conditions"]
    assert "status" not in compact_child(served)


def test_the_disvc_copy_keeps_its_whole_status() -> None:
    obj = {"kind": "DistributedInferenceService", "metadata": {"name": "d", "managedFields": [{}]},
           "status": {"history": [{"generation": "v1"}], "conditions": [{"type": "Progressing"}]}}
    assert compact(obj)["status"] == obj["status"]
    assert "managedFields" not in compact(obj)["metadata"]
