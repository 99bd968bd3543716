"""The KServe stand-in marks InferenceServices as KServe would.

The controller's readiness and rollout tests lean on it, so its verdicts,
its reaction to a new generation and its recovery from watch trouble are
checked here against the same ``kube`` fixture those tests use.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from disvc.testing.apiserver import FaultRule
from disvc.testing.fixtures import KubeEnv, eventually
from disvc.testing.kserve_stub import FAIL_REASON, USER_AGENT, KServeStub, Mode

KSERVE, VERSION, PLURAL = "serving.kserve.io", "v1beta1", "inferenceservices"


def _isvc(name: str) -> dict[str, Any]:
    return {
        "apiVersion": f"{KSERVE}/{VERSION}",
        "kind": "InferenceService",
        "metadata": {"name": name},
        "spec": {"predictor": {"model": {"modelFormat": {"name": "sklearn"}, "storageUri": "gs://bucket/model"}}},
    }


def _create(kube: KubeEnv, name: str) -> None:
    kube.custom.create_namespaced_custom_object(KSERVE, VERSION, kube.namespace, PLURAL, _isvc(name))


def _get(kube: KubeEnv, name: str) -> dict[str, Any]:
    return kube.custom.get_namespaced_custom_object(  # type: ignore[no-any-return]
        KSERVE, VERSION, kube.namespace, PLURAL, name
    )


def _conditions(isvc: dict[str, Any]) -> dict[str, str]:
    return {c["type"]: c["status"] for c in (isvc.get("status") or {}).get("conditions", [])}


def _ready(kube: KubeEnv, name: str, generation: int = 1) -> dict[str, Any]:
    isvc = _get(kube, name)
    assert _conditions(isvc).get("Ready") == "True", isvc.get("status")
    assert isvc["status"]["observedGeneration"] == generation
    return isvc


def _stub(kube: KubeEnv, mode: Mode = "ready", **kwargs: Any) -> KServeStub:
    return KServeStub(kube.api_client, mode=mode, namespace=kube.namespace, **kwargs)


@pytest.fixture
def ready_stub(kube: KubeEnv) -> Iterator[KServeStub]:
    with _stub(kube) as stub:
        yield stub


def _has_observed(stub: KServeStub, count: int) -> None:
    assert stub.observed >= count


def test_marks_a_new_isvc_ready_with_urls(kube: KubeEnv, ready_stub: KServeStub) -> None:
    _create(kube, "m")
    isvc = eventually(lambda: _ready(kube, "m"))
    assert _conditions(isvc) == {"IngressReady": "True", "PredictorReady": "True", "Ready": "True"}
    assert isvc["status"]["url"] == f"http://m-{kube.namespace}.example.com"
    assert isvc["status"]["address"]["url"] == f"http://m-predictor.{kube.namespace}.svc.cluster.local"


def test_marks_isvcs_that_existed_before_it_started(kube: KubeEnv) -> None:
    _create(kube, "early")
    with _stub(kube):
        eventually(lambda: _ready(kube, "early"))


def test_a_new_generation_is_marked_again(kube: KubeEnv, ready_stub: KServeStub) -> None:
    _create(kube, "m")
    eventually(lambda: _ready(kube, "m"))
    kube.custom.patch_namespaced_custom_object(
        KSERVE, VERSION, kube.namespace, PLURAL, "m",
        {"spec": {"predictor": {"minReplicas": 2}}},
        _content_type="application/merge-patch+json",
    )  # fmt: skip
    eventually(lambda: _ready(kube, "m", generation=2))


def test_mode_fail_reports_ready_false_with_a_reason(kube: KubeEnv) -> None:
    with _stub(kube, mode="fail"):
        _create(kube, "m")

        def failed() -> None:
            status = _get(kube, "m").get("status") or {}
            ready = [c for c in status.get("conditions", []) if c["type"] == "Ready"]
            assert ready and ready[0]["status"] == "False", status
            assert ready[0]["reason"] == FAIL_REASON
            assert "url" not in status

        eventually(failed)


def test_mode_never_leaves_status_alone(kube: KubeEnv) -> None:
    with _stub(kube, mode="never") as stub:
        _create(kube, "m")
        eventually(lambda: _has_observed(stub, 1))
        assert not _conditions(_get(kube, "m"))
        assert stub.marked == 0


def test_ready_after_delays_the_verdict(kube: KubeEnv) -> None:
    with _stub(kube, ready_after=60.0) as stub:
        _create(kube, "m")
        eventually(lambda: _has_observed(stub, 1))
        assert not _conditions(_get(kube, "m"))


def test_ready_after_elapses_into_a_verdict(kube: KubeEnv) -> None:
    with _stub(kube, ready_after=0.3):
        _create(kube, "m")
        eventually(lambda: _ready(kube, "m"))


def test_status_writes_carry_the_stub_user_agent(kube: KubeEnv, ready_stub: KServeStub) -> None:
    if kube.server is None:
        pytest.skip("request accounting needs the loopback API server")
    _create(kube, "m")
    eventually(lambda: _ready(kube, "m"))
    assert kube.server.request_count(verb="patch", resource="inferenceservices/status", user_agent=USER_AGENT) >= 1


@pytest.mark.substrate_only
def test_survives_dropped_watches(kube: KubeEnv, ready_stub: KServeStub) -> None:
    assert kube.server is not None
    _create(kube, "before")
    eventually(lambda: _ready(kube, "before"))
    eventually(lambda: _assert_watching(kube))
    kube.server.drop_watches()
    _create(kube, "after")
    eventually(lambda: _ready(kube, "after"))


@pytest.mark.substrate_only
def test_relists_after_410_gone(kube: KubeEnv, ready_stub: KServeStub) -> None:
    assert kube.server is not None
    eventually(lambda: _assert_watching(kube))
    rule = kube.server.add_fault(FaultRule(verb="watch", resource="inferenceservices", code=410))
    kube.server.drop_watches()
    eventually(lambda: _assert_hit(rule))
    _create(kube, "after-gone")
    eventually(lambda: _ready(kube, "after-gone"))
    assert kube.server.request_count(verb="list", resource="inferenceservices", user_agent=USER_AGENT) >= 2


def _assert_watching(kube: KubeEnv) -> None:
    # Open streams: the request log records a watch only when it ends.
    assert kube.server is not None
    assert kube.server.watch_count() >= 1


def _assert_hit(rule: FaultRule) -> None:
    assert rule.hits == 1


def test_stop_is_prompt_and_idempotent_enough(kube: KubeEnv) -> None:
    stub = KServeStub(kube.api_client, namespace=kube.namespace).start()
    if kube.server is not None:
        eventually(lambda: _assert_watching(kube))
    stub.stop()
    assert all(not thread.is_alive() for thread in stub._threads)
