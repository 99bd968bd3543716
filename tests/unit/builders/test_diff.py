"""diff.plan: desired vs live, table-driven."""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from disvc_world import OPTIONS, SKLEARN, UID, as_live, disvc, named

from disvc.builders import desired, diff

CHILDREN = desired.children(disvc(replicas=2), 1, OPTIONS)
LIVE = [as_live(c, ready=True) for c in CHILDREN]


def _edit(name: str, change: Callable[[dict[str, Any]], None]) -> list[dict[str, Any]]:
    live = copy.deepcopy(LIVE)
    for obj in live:
        if obj["metadata"]["name"] == name and obj["kind"] in ("Service", "InferenceService"):
            change(obj)
            break
    return live


def _drop_affinity(obj: dict[str, Any]) -> None:
    obj["spec"]["sessionAffinity"] = "None"


def _old_applied_hash(obj: dict[str, Any]) -> None:
    obj["metadata"]["annotations"]["disvc.serving.kserve.io/applied-hash"] = "0000000000"


def _foreign(obj: dict[str, Any]) -> None:
    del obj["metadata"]["ownerReferences"]


def _server_defaults(obj: dict[str, Any]) -> None:
    obj["spec"]["predictor"]["model"]["resources"] = {"limits": {"cpu": "1"}}
    obj["metadata"]["labels"]["extra"] = "x"
    obj["metadata"]["managedFields"] = [{"manager": "kserve"}]


WITH_RESOURCES = {"predictor": {"model": {**SKLEARN["predictor"]["model"],
                                          "resources": {"limits": {"cpu": "1", "memory": "2Gi"}}}}}
CHILDREN_WITH_RESOURCES = desired.children(disvc(template=WITH_RESOURCES), 1, OPTIONS)


def _webhook_respells_quantities(obj: dict[str, Any]) -> None:
    # as a defaulting webhook (or a user's kubectl edit) writes the same values
    obj["spec"]["predictor"]["model"]["resources"] = {"limits": {"cpu": 1, "memory": "2048Mi"}}


@dataclass(frozen=True)
class DiffCase:
    id: str
    desired: list[dict[str, Any]]
    live: list[dict[str, Any]]
    create: list[str] = field(default_factory=list)
    update: list[str] = field(default_factory=list)
    delete: list[str] = field(default_factory=list)
    conflicts: list[str] = field(default_factory=list)
    keep: frozenset[tuple[str, str]] = frozenset()


def _respelled(children: list[dict[str, Any]]) -> list[dict[str, Any]]:
    live = [as_live(c, ready=True) for c in children]
    for obj in live:
        if obj["kind"] == "InferenceService":
            _webhook_respells_quantities(obj)
    return live


CASES = [
    DiffCase("missing-creates", CHILDREN, [], create=named(CHILDREN)),
    DiffCase("converged-does-nothing", CHILDREN, LIVE),
    DiffCase("server-defaults-still-converged", CHILDREN, _edit("model-v1-0", _server_defaults)),
    DiffCase("drifted-updates", CHILDREN, _edit("model", _drop_affinity), update=["model"]),
    DiffCase("changed-applied-hash-updates", CHILDREN, _edit("model-v1", _old_applied_hash), update=["model-v1"]),
    DiffCase("extra-replicas-delete-highest-first", CHILDREN[1:], LIVE + [as_live(c) for c in desired.children(disvc(replicas=4), 1, OPTIONS)[2:4]], delete=["model-v1-3", "model-v1-2", "model-v1-0"]),
    DiffCase("foreign-is-conflict-not-applied", CHILDREN, _edit("model-v1-1", _foreign), conflicts=["model-v1-1"]),
    DiffCase("foreign-not-desired-not-deleted", CHILDREN[1:], _edit("model-v1-0", _foreign)),
    DiffCase(
        "respelled-quantities-still-converged", CHILDREN_WITH_RESOURCES,
        _respelled(CHILDREN_WITH_RESOURCES),
    ),
    DiffCase("kept-not-deleted", CHILDREN[1:], LIVE, keep=frozenset({("InferenceService", "model-v1-0")})),
]


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_plan(case: DiffCase) -> None:
    plan = diff.plan(case.desired, case.live, UID, case.keep)  # type: ignore[arg-type]
    assert named(plan.create) == case.create
    assert named(plan.update) == case.update
    assert [r.name for r in plan.delete] == case.delete
    assert named(plan.conflicts) == case.conflicts


def test_delete_carries_uid_and_resource_version_preconditions() -> None:
    (ref,) = diff.plan(CHILDREN[1:], LIVE, UID).delete
    assert (ref.kind, ref.namespace, ref.name) == ("InferenceService", "ns", "model-v1-0")
    assert (ref.uid, ref.resource_version) == ("uid-InferenceService-model-v1-0", "1")


def test_live_list_items_without_kind_are_still_matched() -> None:
    kindless = [{k: v for k, v in obj.items() if k not in ("kind", "apiVersion")} for obj in LIVE]
    assert diff.plan(CHILDREN, kindless, UID).is_empty


@pytest.mark.parametrize(
    ("want", "have", "subset"),
    [
        ({"a": 1}, {"a": 1, "b": 2}, True),
        ({"a": {"b": 1}}, {"a": {"b": 1, "c": 2}}, True),
        ({"a": [1, 2]}, {"a": [1, 2, 3]}, False),
        ({"a": [{"x": 1}]}, {"a": [{"x": 1, "y": 2}]}, True),
        ({"a": True}, {"a": 1}, False),
        ({"a": 80}, {"a": "80"}, False),
        ({"a": 1}, {}, False),
        # resource quantities compare by value, as Kubernetes reads them
        ({"limits": {"cpu": "1", "memory": "2Gi"}}, {"limits": {"cpu": 1, "memory": "2048Mi"}}, True),
        ({"requests": {"cpu": "500m"}}, {"requests": {"cpu": "0.5"}}, True),
        ({"requests": {"memory": "1e3"}}, {"requests": {"memory": "1k"}}, True),
        ({"limits": {"cpu": "1"}}, {"limits": {"cpu": "1001m"}}, False),
        ({"limits": {"memory": "1Gi"}}, {"limits": {"memory": "1G"}}, False),
        ({"limits": {"cpu": "1"}}, {"limits": {}}, False),
        # elsewhere a string is not a quantity
        ({"args": {"n": "1k"}}, {"args": {"n": "1000"}}, False),
    ],
)
def test_desired_is_compared_as_a_subset_of_live(want: Any, have: Any, subset: bool) -> None:
    assert diff.is_subset(want, have) is subset
