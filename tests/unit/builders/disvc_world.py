"""A tiny simulated world for builder tests: DISVC manifests, live children,
and a reconcile loop that applies plans the way the controller would
(server-side apply sets what we send, the server adds defaults)."""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import yaml

from disvc.builders import desired
from disvc.builders.desired import BuildOptions, Desired
from disvc.builders.types import Obj

REPO = Path(__file__).resolve().parents[3]
SEED = REPO / "config" / "samples" / "serving_v1alpha1_distributedinferenceservice.yaml"
"""The seed's PoC 1 manifest, shipped unchanged as the first sample."""
GOLDEN = Path(__file__).resolve().parent / "golden"

UID = "6f0d8a52-0000-4000-8000-000000000001"
OPTIONS = BuildOptions(now="2024-01-01T00:00:00Z")
LATER = BuildOptions(now="2024-01-01T00:05:00Z")

SKLEARN: dict[str, Any] = {
    "predictor": {
        "model": {
            "modelFormat": {"name": "sklearn"},
            "protocolVersion": "v2",
            "runtime": "kserve-sklearnserver",
            "storageUri": "gs://kfserving-examples/models/sklearn/1.0/model",
        }
    }
}


def seed() -> Obj:
    """The PoC manifest as the API server would hold it (uid, generation)."""
    manifest: Obj = yaml.safe_load(SEED.read_text())
    manifest["metadata"]["uid"] = UID
    manifest["metadata"]["generation"] = 1
    return manifest


def disvc(
    name: str = "model",
    namespace: str = "ns",
    replicas: int | None = 1,
    template: Any = None,
    annotations: dict[str, str] | None = None,
    metadata_annotations: dict[str, str] | None = None,
    spec: dict[str, Any] | None = None,
    generation: int = 1,
    scale_down_delay: int | None = 0,
) -> Obj:
    """A DISVC manifest. ``scale_down_delay`` sets
    ``spec.rollout.scaleDownDelaySeconds``; it is 0 unless a test asks, so
    the generation traffic left goes in the switch's reconcile and tests
    about something else need no clock (None leaves the field out: the
    default delay)."""
    body: dict[str, Any] = {
        "inferenceService": copy.deepcopy(SKLEARN) if template is None else template
    }
    if replicas is not None:
        body["replicas"] = replicas
    if annotations is not None:
        body["annotations"] = annotations
    body.update(spec or {})
    rollout = body.get("rollout")
    if scale_down_delay is not None and (rollout is None or isinstance(rollout, dict)):
        body["rollout"] = {"scaleDownDelaySeconds": scale_down_delay, **(rollout or {})}
    meta: dict[str, Any] = {
        "name": name,
        "namespace": namespace,
        "uid": UID,
        "generation": generation,
    }
    if metadata_annotations:
        meta["annotations"] = metadata_annotations
    return {
        "apiVersion": "serving.kserve.io/v1alpha1",
        "kind": "DistributedInferenceService",
        "metadata": meta,
        "spec": body,
    }


def with_spec(obj: Obj, **changes: Any) -> Obj:
    """A new generation of ``obj`` with spec fields replaced (status kept)."""
    new = copy.deepcopy(obj)
    new["spec"].update(changes)
    new["metadata"]["generation"] = obj["metadata"].get("generation", 1) + 1
    return new


def ready_condition(ready: bool) -> dict[str, Any]:
    return {"type": "Ready", "status": "True" if ready else "False"}


def as_live(obj: Obj, ready: bool = False, version: int = 1) -> Obj:
    """``obj`` as the API server returns it: server fields and defaults added."""
    live = copy.deepcopy(obj)
    meta = live["metadata"]
    meta["uid"] = f"uid-{obj['kind']}-{meta['name']}"
    meta["resourceVersion"] = str(version)
    meta["creationTimestamp"] = "2024-01-01T00:00:00Z"
    meta["generation"] = 1
    if obj["kind"] == "Service":
        live["spec"]["clusterIP"] = "10.0.0.10"
        if live["spec"].get("sessionAffinity") == "ClientIP":
            # the API server defaults the timeout for ClientIP only
            live["spec"].setdefault("sessionAffinityConfig", {"clientIP": {"timeoutSeconds": 10800}})
        live["spec"]["internalTrafficPolicy"] = "Cluster"
    if obj["kind"] == "InferenceService":
        live["status"] = {"conditions": [ready_condition(ready)]}
    return live


def set_ready(live: Sequence[Obj], names: set[str] | None = None, ready: bool = True) -> list[Obj]:
    """Mark ISVCs (all, or those in ``names``) Ready or not, as KServe would."""
    result = []
    for obj in live:
        if obj["kind"] == "InferenceService" and (names is None or obj["metadata"]["name"] in names):
            obj = {**obj, "status": {"conditions": [ready_condition(ready)]}}
        result.append(obj)
    return result


def named(objs: Sequence[Obj], kind: str | None = None) -> list[str]:
    return [o["metadata"]["name"] for o in objs if kind is None or o["kind"] == kind]


def find(objs: Sequence[Obj], kind: str, name: str) -> Obj:
    for obj in objs:
        if obj["kind"] == kind and obj["metadata"]["name"] == name:
            return obj
    raise AssertionError(f"no {kind} {name} in {[(o['kind'], o['metadata']['name']) for o in objs]}")


def condition(status: Obj, type_: str) -> dict[str, Any]:
    return next(c for c in status["conditions"] if c["type"] == type_)


def reconcile(
    obj: Obj,
    live: Sequence[Obj],
    options: BuildOptions = OPTIONS,
    ready: Callable[[str], bool] = lambda name: False,
) -> tuple[Obj, list[Obj], Desired]:
    """One reconcile as the controller does it: apply, delete, write status.

    New ISVCs start Ready when ``ready(name)`` says so; updated objects keep
    their live status."""
    want = desired.state(obj, live, options)
    by_id = {(o["kind"], o["metadata"]["name"]): o for o in live}
    for new in (*want.plan.create, *want.plan.update):
        key = (new["kind"], new["metadata"]["name"])
        old = by_id.get(key)
        applied = as_live(new, ready=ready(key[1]))
        if old is not None and "status" in old:
            applied["status"] = old["status"]
        by_id[key] = applied
    for ref in want.plan.delete:
        del by_id[(ref.kind, ref.name)]
    return {**obj, "status": want.status}, list(by_id.values()), want


def settle(
    obj: Obj, live: Sequence[Obj] = (), options: BuildOptions = OPTIONS, rounds: int = 6
) -> tuple[Obj, list[Obj]]:
    """Reconcile, every ISVC turning Ready, until a reconcile changes nothing."""
    current = list(live)
    for _ in range(rounds):
        before = obj.get("status")
        obj, current, want = reconcile(obj, set_ready(current), options, ready=lambda n: True)
        if want.plan.is_empty and want.status == before:
            return obj, set_ready(current)
    raise AssertionError("did not converge")
