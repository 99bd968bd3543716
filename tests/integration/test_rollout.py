"""Progressive delivery end to end: the real controller through each rollout
strategy, a revert in the middle of each, a progress deadline, and a
controller killed with SIGKILL in the middle of a rollout.

The test plays KServe by hand (``mark_isvc_ready``) so each step of a
rollout can be observed before the next one is allowed to happen.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from disvc.testing.fixtures import KubeEnv, eventually
from disvc.testing.kserve_stub import KServeStub

from .harness import Cluster, RunningController, condition, disvc_manifest

NAME = "model"
REPO = Path(__file__).resolve().parents[2]
TIMEOUT = 30.0
SAMPLE = REPO / "config" / "samples" / "serving_v1alpha1_distributedinferenceservice_rolling.yaml"
TEMPLATE = yaml.safe_load(SAMPLE.read_text())["spec"]["inferenceService"]
Obj = dict[str, Any]


def manifest(replicas: int, version: str, rollout: Obj | None = None, scale_down_delay: int = 0) -> Obj:
    return disvc_manifest(NAME, TEMPLATE, replicas, version, rollout, scale_down_delay)


def apply(kube: KubeEnv, doc: Obj) -> None:
    kube.apply_yaml(yaml.safe_dump(doc))


def isvcs(cluster: Cluster) -> set[str]:
    return {n.removeprefix(f"{NAME}-") for n in cluster.isvcs()}


def backend(cluster: Cluster, ingress: str = NAME) -> str:
    found = cluster.ingresses().get(ingress)
    assert found is not None, f"no Ingress {ingress}"
    rule = found["spec"]["rules"][0]
    return str(rule["http"]["paths"][0]["backend"]["service"]["name"])


def mark_ready(cluster: Cluster, *suffixes: str) -> None:
    for suffix in suffixes:
        cluster.mark_isvc_ready(f"{NAME}-{suffix}")


def serving(cluster: Cluster, replicas: int, generation: str) -> None:
    """Assert: ``generation`` alone, every replica Ready, all traffic on it."""
    assert isvcs(cluster) == {f"{generation}-{i}" for i in range(replicas)}
    assert backend(cluster) == f"{NAME}-{generation}"
    status = cluster.disvc(NAME).get("status") or {}
    assert status.get("activeGeneration") == generation
    assert status.get("readyReplicas") == replicas
    assert (condition(cluster.disvc(NAME), "Progressing") or {}).get("reason") == "Converged"


def start_serving(kube: KubeEnv, cluster: Cluster, replicas: int, rollout: Obj | None) -> None:
    apply(kube, manifest(replicas, "v1", rollout))
    eventually(lambda: _equal(isvcs(cluster), {f"v1-{i}" for i in range(replicas)}), TIMEOUT)
    mark_ready(cluster, *(f"v1-{i}" for i in range(replicas)))
    eventually(lambda: serving(cluster, replicas, "v1"), TIMEOUT)


ROLLING = {"strategy": "Rolling", "maxSurge": 1, "maxUnavailable": 0}
EVERY_STRATEGY = pytest.mark.parametrize(
    "rollout", [None, ROLLING, {"canaryTrafficPercent": 50}], ids=["blue-green", "rolling", "canary"]
)


def test_rolling_replaces_isvcs_one_at_a_time_behind_the_disvc_service(
    kube: KubeEnv, controller: RunningController, cluster: Cluster
) -> None:
    start_serving(kube, cluster, 3, ROLLING)
    apply(kube, manifest(3, "v2", ROLLING))

    def first_step() -> None:
        assert isvcs(cluster) == {"v1-0", "v1-1", "v1-2", "v2-0"}
        assert backend(cluster) == NAME
        # the status follows the creates within the same reconcile: read it leniently
        status = cluster.disvc(NAME).get("status") or {}
        assert [(g["name"], g["replicas"]) for g in status.get("generations", [])] == [("v1", 3), ("v2", 1)]
        assert status.get("activeGeneration") == "v1"

    eventually(first_step, TIMEOUT)
    for index, gone in ((0, "v1-2"), (1, "v1-1")):
        mark_ready(cluster, f"v2-{index}")
        # the old replica goes and the next new one comes without any outside event
        eventually(lambda index=index, gone=gone: _replaced(isvcs(cluster), f"v2-{index + 1}", gone), TIMEOUT)
        assert len(isvcs(cluster)) <= 4
    mark_ready(cluster, "v2-2")
    eventually(lambda: serving(cluster, 3, "v2"), TIMEOUT)
    assert set(cluster.services()) == {NAME, f"{NAME}-v2"}
    history = cluster.disvc(NAME)["status"]["history"]
    assert [h["generation"] for h in history] == ["v1", "v2"]


def test_the_old_generation_waits_out_the_scale_down_delay_then_goes_without_an_event(
    kube: KubeEnv, controller: RunningController, cluster: Cluster
) -> None:
    apply(kube, manifest(2, "v1", scale_down_delay=3))
    eventually(lambda: _equal(isvcs(cluster), {"v1-0", "v1-1"}), TIMEOUT)
    mark_ready(cluster, "v1-0", "v1-1")
    apply(kube, manifest(2, "v2", scale_down_delay=3))
    eventually(lambda: _equal(isvcs(cluster), {"v1-0", "v1-1", "v2-0", "v2-1"}), TIMEOUT)
    mark_ready(cluster, "v2-0", "v2-1")

    def waiting() -> None:
        assert backend(cluster) == f"{NAME}-v2"
        assert isvcs(cluster) == {"v1-0", "v1-1", "v2-0", "v2-1"}
        assert f"{NAME}-v1" in cluster.services()
        status = cluster.disvc(NAME).get("status") or {}
        assert status.get("activeGeneration") == "v2"
        assert ("v1", 0) in [(g["name"], g.get("trafficPercent")) for g in status.get("generations", [])]
        assert (condition(cluster.disvc(NAME), "Progressing") or {}).get("reason") == "ScaleDownDelay"

    eventually(waiting, TIMEOUT)
    # the requeue the reconcile asked for deletes v1: no watch event is needed
    eventually(lambda: serving(cluster, 2, "v2"), TIMEOUT)
    assert set(cluster.services()) == {NAME, f"{NAME}-v2"}


def test_scaling_during_a_rolling_rollout(
    kube: KubeEnv, controller: RunningController, cluster: Cluster, kserve: KServeStub
) -> None:
    apply(kube, manifest(2, "v1", ROLLING))
    eventually(lambda: serving(cluster, 2, "v1"), TIMEOUT)
    apply(kube, manifest(2, "v2", ROLLING))
    apply(kube, manifest(4, "v2", ROLLING))
    eventually(lambda: serving(cluster, 4, "v2"), TIMEOUT)


def test_canary_takes_its_share_until_promoted(
    kube: KubeEnv, controller: RunningController, cluster: Cluster
) -> None:
    canary = {"canaryTrafficPercent": 25}
    start_serving(kube, cluster, 1, canary)
    apply(kube, manifest(1, "v2", canary))
    eventually(lambda: _equal(isvcs(cluster), {"v1-0", "v2-0"}), TIMEOUT)
    assert f"{NAME}-canary" not in cluster.ingresses()
    mark_ready(cluster, "v2-0")

    def split() -> None:
        backend(cluster, f"{NAME}-canary")
        ingress = cluster.ingresses()[f"{NAME}-canary"]
        assert ingress["metadata"]["annotations"]["nginx.ingress.kubernetes.io/canary"] == "true"
        assert ingress["metadata"]["annotations"]["nginx.ingress.kubernetes.io/canary-weight"] == "25"
        assert backend(cluster, f"{NAME}-canary") == f"{NAME}-v2"
        assert backend(cluster) == f"{NAME}-v1"
        assert (condition(cluster.disvc(NAME), "Progressing") or {}).get("reason") == "CanaryRunning"

    eventually(split, TIMEOUT)
    cluster.merge_patch_disvc(NAME, {"spec": {"rollout": {"canaryTrafficPercent": None}}})
    eventually(lambda: serving(cluster, 1, "v2"), TIMEOUT)
    assert set(cluster.ingresses()) == {NAME}


@EVERY_STRATEGY
def test_reverting_mid_rollout_deletes_the_unfinished_generation_and_creates_none(
    kube: KubeEnv, controller: RunningController, cluster: Cluster, rollout: Obj | None
) -> None:
    start_serving(kube, cluster, 2, rollout)
    apply(kube, manifest(2, "v2", rollout))
    eventually(lambda: _contains(isvcs(cluster), "v2-0"), TIMEOUT)
    mark_ready(cluster, "v2-0")
    eventually(lambda: _progress(cluster), TIMEOUT)

    apply(kube, manifest(2, "v1", rollout))

    def reverted() -> None:
        for name in isvcs(cluster):
            if name.startswith("v1-") and name not in {"v1-0", "v1-1"}:
                raise AssertionError(f"unexpected {name}")
            if not name.startswith("v1-"):
                mark_ready(cluster, *(n for n in isvcs(cluster) if n.startswith("v1-")))
                raise AssertionError(f"{name} still there")
        mark_ready(cluster, *isvcs(cluster))
        serving(cluster, 2, "v1")

    eventually(reverted, TIMEOUT)
    assert not any(n.startswith("v3") for n in isvcs(cluster))
    assert set(cluster.services()) == {NAME, f"{NAME}-v1"}


def test_a_rollout_past_its_deadline_is_reported_and_the_serving_generation_kept(
    kube: KubeEnv, controller: RunningController, cluster: Cluster
) -> None:
    rollout = {"progressDeadlineSeconds": 1}
    start_serving(kube, cluster, 1, rollout)
    apply(kube, manifest(1, "v2", rollout))
    eventually(lambda: _contains(isvcs(cluster), "v2-0"), TIMEOUT)
    failed = {"status": {"conditions": [
        {"type": "Ready", "status": "False", "reason": "PredictorFailed", "message": "model did not load",
         "lastTransitionTime": "2024-01-01T00:00:00Z"},
    ]}}
    cluster.raw("PATCH", f"{cluster.isvcs_path(f'{NAME}-v2-0')}/status", body=failed,
                content_type="application/merge-patch+json")

    def stalled() -> None:
        progressing = condition(cluster.disvc(NAME), "Progressing") or {}
        assert (progressing.get("status"), progressing.get("reason")) == ("False", "ProgressDeadlineExceeded")
        assert "model-v2-0 Ready=False (PredictorFailed: model did not load)" in progressing["message"]
        warnings = [e for e in cluster.events(NAME) if e.get("reason") == "ProgressDeadlineExceeded"]
        assert warnings and warnings[0]["type"] == "Warning"
        assert controller.metric("disvc_rollout_stalled", namespace=kube.namespace, name=NAME) == 1

    eventually(stalled, TIMEOUT)
    assert backend(cluster) == f"{NAME}-v1"
    assert isvcs(cluster) == {"v1-0", "v2-0"}
    assert cluster.disvc(NAME)["status"]["activeGeneration"] == "v1"


# --- a controller killed mid-rollout -----------------------------------------


@pytest.fixture
def controller_process(kube: KubeEnv) -> Iterator[Any]:
    """``start()`` -> a ``python -m disvc.controller`` process for this namespace."""
    started: list[subprocess.Popen[bytes]] = []

    def start() -> subprocess.Popen[bytes]:
        proc = subprocess.Popen(
            [
                sys.executable, "-m", "disvc.controller",
                "--kubeconfig", kube.kubeconfig,
                "--namespace", kube.namespace,
                "--metrics-bind-address", "0",
                "--health-probe-bind-address", "0",
            ],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            env={**os.environ, "PYTHONPATH": str(REPO)},
        )
        started.append(proc)
        return proc

    yield start
    for proc in started:
        if proc.poll() is None:
            proc.kill()
        proc.wait(10)


@EVERY_STRATEGY
def test_a_controller_killed_mid_rollout_is_resumed_by_the_next_one(
    kube: KubeEnv, cluster: Cluster, controller_process: Any, rollout: Obj | None
) -> None:
    first = controller_process()
    start_serving(kube, cluster, 2, rollout)
    apply(kube, manifest(2, "v2", rollout))
    eventually(lambda: _contains(isvcs(cluster), "v2-0"), TIMEOUT)
    mark_ready(cluster, "v2-0")
    eventually(lambda: _progress(cluster), TIMEOUT)
    first.send_signal(signal.SIGKILL)
    first.wait(10)
    before = isvcs(cluster)

    controller_process()
    if rollout is not None and "canaryTrafficPercent" in rollout:
        def split() -> None:
            mark_ready(cluster, *(n for n in isvcs(cluster) if n.startswith("v2-")))
            _equal(backend(cluster, f"{NAME}-canary"), f"{NAME}-v2")

        eventually(split, TIMEOUT)
        cluster.merge_patch_disvc(NAME, {"spec": {"rollout": {"canaryTrafficPercent": 100}}})

    def finished() -> None:
        current = isvcs(cluster)
        assert all(n.startswith(("v1-", "v2-")) for n in current), current
        mark_ready(cluster, *(n for n in current if n.startswith("v2-")))
        serving(cluster, 2, "v2")

    eventually(finished, TIMEOUT)
    assert before <= {"v1-0", "v1-1", "v2-0", "v2-1"}
    history = cluster.disvc(NAME)["status"]["history"]
    assert [h["generation"] for h in history] == ["v1", "v2"]


def _progress(cluster: Cluster) -> None:
    """The rollout has taken a step past creating the new generation."""
    current = isvcs(cluster)
    status = cluster.disvc(NAME).get("status") or {}
    assert "v2-0" in current and len(status.get("generations") or ()) == 2, (current, status)


def _equal(value: object, expected: object) -> None:
    assert value == expected, f"{value!r} != {expected!r}"


def _contains(found: set[str], *wanted: str) -> None:
    assert set(wanted) <= found, f"{sorted(wanted)} not all in {sorted(found)}"


def _replaced(found: set[str], new: str, old: str) -> None:
    assert new in found and old not in found, sorted(found)


# --- Gateway API ----------------------------------------------------------------


def route_backends(cluster: Cluster) -> list[tuple[str, int | None]]:
    route = cluster.find(f"/apis/gateway.networking.k8s.io/v1/namespaces/{cluster.ns}/httproutes/{NAME}")
    assert route is not None, "no HTTPRoute"
    [rule] = route["spec"]["rules"]
    refs = rule["backendRefs"]
    # a lone backend carries no weight; the real CRD's schema defaults it to 1
    return [(ref["name"], ref.get("weight") if len(refs) > 1 else None) for ref in refs]


def test_a_canary_through_a_gateway_splits_by_backend_weights(
    kube: KubeEnv, start_controller: Any, cluster: Cluster
) -> None:
    start_controller(gateway_api=True)
    doc = manifest(1, "v1", {"canaryTrafficPercent": 30})
    doc["spec"]["ingress"] = {"gateway": {"name": "public", "namespace": "infra"}}
    apply(kube, doc)
    eventually(lambda: _equal(route_backends(cluster), [(f"{NAME}-v1", None)]), TIMEOUT)
    assert cluster.ingresses() == {}
    mark_ready(cluster, "v1-0")

    doc["spec"]["annotations"] = {"version": "v2"}
    apply(kube, doc)
    eventually(lambda: _contains(isvcs(cluster), "v2-0"), TIMEOUT)
    mark_ready(cluster, "v2-0")
    eventually(lambda: _equal(route_backends(cluster), [(f"{NAME}-v1", 70), (f"{NAME}-v2", 30)]), TIMEOUT)

    cluster.merge_patch_disvc(NAME, {"spec": {"rollout": {"canaryTrafficPercent": 100}}})
    eventually(lambda: _equal(route_backends(cluster), [(f"{NAME}-v2", None)]), TIMEOUT)
    eventually(lambda: _equal(isvcs(cluster), {"v2-0"}), TIMEOUT)
    # the status is written right after the deletes of the same reconcile
    eventually(lambda: _equal(cluster.disvc(NAME)["status"]["activeGeneration"], "v2"), TIMEOUT)
