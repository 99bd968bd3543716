"""Predictor pods: real KServe model servers, and the stand-in that reports them.

Each test starts real model-server processes (about two seconds each), so
they are few: one answers the seed's request under the name the ISVC's args
give it, one never loads, one is deleted; then the KServe stand-in reports
an ISVC Ready only once its model server is, and not Ready when it crashes.
"""

from __future__ import annotations

import http.client
import json
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from disvc.testing.dataplane.launcher import PodLauncher
from disvc.testing.dataplane.pods import Pod, PodRegistry
from disvc.testing.fixtures import KubeEnv
from disvc.testing.kserve_stub import KServeStub
from disvc.testing.polling import eventually

pytest.importorskip("kserve")
pytest.importorskip("sklearn")

pytestmark = pytest.mark.slow

KSERVE, VERSION, PLURAL = "serving.kserve.io", "v1beta1", "inferenceservices"
SEED = {
    "inputs": [
        {"name": "input-0", "shape": [2, 4], "datatype": "FP32", "data": [[6.8, 2.8, 4.8, 1.4], [6.0, 3.4, 4.5, 1.6]]}
    ]
}
START_TIMEOUT = 60.0
"""Generous: two shared cores, and each server imports kserve and trains."""


def _isvc(name: str, namespace: str = "ns", generation: int = 1, **model: Any) -> dict[str, Any]:
    return {
        "apiVersion": f"{KSERVE}/{VERSION}",
        "kind": "InferenceService",
        "metadata": {
            "name": name, "namespace": namespace, "uid": f"uid-{name}", "generation": generation,
            "labels": {"disvc": "iris"},
        },
        "spec": {"predictor": {"model": {"modelFormat": {"name": "sklearn"}, "runtime": "kserve-sklearnserver", **model}}},
    }  # fmt: skip


def _crashing(name: str, namespace: str = "ns") -> dict[str, Any]:
    return _isvc(name, namespace, env=[{"name": "DISVC_IRIS_CRASH", "value": "1"}])


def _infer(pod: Pod, model_name: str, timeout: float = 10.0) -> Any:
    request = urllib.request.Request(
        f"http://{pod.ip}:8080/v2/models/{model_name}/infer",
        data=json.dumps(SEED).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return json.load(response)


@pytest.fixture
def registry() -> PodRegistry:
    return PodRegistry()


@pytest.fixture
def launcher(registry: PodRegistry, tmp_path: Path) -> Iterator[PodLauncher]:
    pods = PodLauncher(registry, tmp_path / "pods")
    yield pods
    pods.stop()


def _ready_pod(registry: PodRegistry, namespace: str, isvc: str) -> Pod:
    pods = registry.of_isvc(namespace, isvc)
    assert len(pods) == 1 and pods[0].ready, pods
    return pods[0]


def test_a_pod_answers_the_seed_under_the_isvcs_model_name(launcher: PodLauncher, registry: PodRegistry) -> None:
    launcher.ensure(_isvc("iris-v1-0", args=["--model_name=iris"]))
    pod = registry.of_isvc("ns", "iris-v1-0")[0]
    assert not pod.ready
    assert pod.labels == {
        "disvc": "iris",
        "serving.kserve.io/inferenceservice": "iris-v1-0",
        "component": "predictor",
        "app": "isvc.iris-v1-0-predictor",
    }
    pod = eventually(lambda: _ready_pod(registry, "ns", "iris-v1-0"), timeout=START_TIMEOUT, interval=0.1)
    assert launcher.state("ns", "iris-v1-0")[0] == "ready"
    answer = _infer(pod, "iris")
    assert answer["model_name"] == "iris"
    assert answer["outputs"][0]["data"] == [1, 1]
    # The runtime's --model_name={{.Name}} lost to the ISVC's own: no such model.
    with pytest.raises(urllib.error.HTTPError) as missing:
        _infer(pod, "iris-v1-0")
    assert missing.value.code == 404


def test_a_model_server_that_never_loads_fails_and_is_never_ready(launcher: PodLauncher, registry: PodRegistry) -> None:
    launcher.ensure(_crashing("broken"))

    def failed() -> tuple[str, str, str]:
        state = launcher.state("ns", "broken")
        assert state[0] == "failed", state
        return state

    _, reason, message = eventually(failed, timeout=START_TIMEOUT, interval=0.1)
    assert reason == "ModelLoadFailed"
    assert "DISVC_IRIS_CRASH" in message
    assert not any(pod.ready for pod in registry.of_isvc("ns", "broken"))


def test_delete_takes_the_pod_out_first_and_ends_its_process(launcher: PodLauncher, registry: PodRegistry) -> None:
    launcher.ensure(_isvc("gone"))
    pod = eventually(lambda: _ready_pod(registry, "ns", "gone"), timeout=START_TIMEOUT, interval=0.1)
    assert _infer(pod, "gone")["outputs"][0]["data"] == [1, 1]
    launcher.delete("ns", "gone")
    assert registry.of_isvc("ns", "gone") == []  # at once: routers stop sending
    assert launcher.state("ns", "gone")[0] == "pending"

    def refused() -> None:
        try:
            _infer(pod, "gone", timeout=2.0)
        except (OSError, http.client.HTTPException):
            # nothing listens any more, or a server shutting down took the
            # connection and never answered (its socket accepts until the
            # process is gone): either way no answer comes back
            return
        raise AssertionError("the model server still answers")

    eventually(refused, timeout=10)


# --- the KServe stand-in, judging from the pods ---------------------------------


def _conditions(kube: KubeEnv, name: str) -> dict[str, dict[str, Any]]:
    isvc = kube.custom.get_namespaced_custom_object(KSERVE, VERSION, kube.namespace, PLURAL, name)
    return {c["type"]: c for c in (isvc.get("status") or {}).get("conditions", [])}


def test_the_stub_reports_ready_only_once_the_model_server_is(
    kube: KubeEnv, launcher: PodLauncher, registry: PodRegistry
) -> None:
    with KServeStub(kube.api_client, namespace=kube.namespace, pods=launcher):
        for isvc in (_isvc("good", kube.namespace), _crashing("bad", kube.namespace)):
            isvc["metadata"] = {"name": isvc["metadata"]["name"]}
            kube.custom.create_namespaced_custom_object(KSERVE, VERSION, kube.namespace, PLURAL, isvc)
        eventually(lambda: _not_ready_yet_or_pod_ready(kube, registry), timeout=START_TIMEOUT, interval=0.05)

        def good_ready() -> None:
            assert _conditions(kube, "good").get("Ready", {}).get("status") == "True"

        eventually(good_ready, timeout=START_TIMEOUT, interval=0.1)
        assert _ready_pod(registry, kube.namespace, "good").ready

        def bad_failed() -> dict[str, Any]:
            ready = _conditions(kube, "bad").get("Ready", {})
            assert ready.get("status") == "False", ready
            return ready

        ready = eventually(bad_failed, timeout=START_TIMEOUT, interval=0.1)
        assert ready["reason"] == "ModelLoadFailed"
        assert "DISVC_IRIS_CRASH" in ready["message"]

        kube.custom.delete_namespaced_custom_object(KSERVE, VERSION, kube.namespace, PLURAL, "good")
        eventually(lambda: _no_pods(registry, kube.namespace, "good"), timeout=10)


def _not_ready_yet_or_pod_ready(kube: KubeEnv, registry: PodRegistry) -> None:
    """Until the model server is Ready, the ISVC must not be: checked on each poll,
    and the poll ends once the pod is Ready."""
    pods = registry.of_isvc(kube.namespace, "good")
    ready_pod = any(p.ready for p in pods)
    # Read the ISVC after the pod: Ready=True before the pod was would show here.
    if not ready_pod:
        assert _conditions(kube, "good").get("Ready", {}).get("status") != "True", "ISVC Ready before its pod"
        raise AssertionError("pod not ready yet")


def _no_pods(registry: PodRegistry, namespace: str, isvc: str) -> None:
    assert registry.of_isvc(namespace, isvc) == []
