"""Automated canary analysis end to end, against a scripted Prometheus query API.

The real controller runs with ``--prometheus-url`` pointing at
``ScriptedPrometheus``, which answers each query with the value a test
chooses (pass, fail, no data, an outage); KServe's part is the stub (every
ISVC turns Ready). Each test starts from v1 serving and changes the
template, so v2 is a canary under analysis. Runs on the loopback API and on
a real kube-apiserver (``DISVC_TEST_KUBECONFIG``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
import yaml
from kubernetes import client

from disvc.testing import prometheus_api
from disvc.testing.fixtures import KubeEnv, eventually
from disvc.testing.kserve_stub import KServeStub
from disvc.testing.prometheus_api import Reply, ScriptedPrometheus

from .harness import Cluster, RunningController, StartController, condition

NAME = "model"
INTERVAL = 1.5
TIMEOUT = 40.0
Obj = dict[str, Any]

TEMPLATE: Obj = {
    "predictor": {
        "model": {
            "modelFormat": {"name": "sklearn"},
            "protocolVersion": "v2",
            "storageUri": "gs://kfserving-examples/models/sklearn/1.0/model",
        }
    }
}


def analysis(steps: list[int], failure_limit: int = 0) -> Obj:
    return {
        "steps": steps,
        "interval": f"{int(INTERVAL * 1000)}ms",
        "failureLimit": failure_limit,
        "metrics": [
            {
                "name": "error-rate",
                "query": 'error_rate{namespace="{{ namespace }}",service="{{ service }}",'
                'generation="{{ generation }}",window="{{ interval }}"}',
                "max": 0.05,
            }
        ],
    }


def manifest(version: str, rollout: Obj) -> Obj:
    return {
        "apiVersion": "serving.kserve.io/v1alpha1",
        "kind": "DistributedInferenceService",
        "metadata": {"name": NAME},
        "spec": {
            "replicas": 2,
            "annotations": {"version": version},
            "inferenceService": TEMPLATE,
            "rollout": {"scaleDownDelaySeconds": 0, "canaryTrafficPercent": 10, **rollout},
        },
    }


@pytest.fixture
def prometheus() -> Iterator[ScriptedPrometheus]:
    server = ScriptedPrometheus().start()
    yield server
    server.stop()


@pytest.fixture
def running(start_controller: StartController, prometheus: ScriptedPrometheus, kserve: KServeStub) -> RunningController:
    return start_controller(prometheus_url=prometheus.url)


def start_canary(kube: KubeEnv, cluster: Cluster, rollout: Obj) -> None:
    """v1 serving, then v2 as a canary under ``rollout``'s analysis."""
    kube.apply_yaml(yaml.safe_dump(manifest("v1", rollout)))
    eventually(lambda: _reason(cluster, "Converged"), timeout=TIMEOUT)
    kube.apply_yaml(yaml.safe_dump(manifest("v2", rollout)))


def _reason(cluster: Cluster, reason: str) -> Obj:
    progressing = condition(cluster.disvc(NAME), "Progressing") or {}
    assert progressing.get("reason") == reason, progressing
    return progressing


def canary_weight(cluster: Cluster) -> int | None:
    found = cluster.ingresses().get(f"{NAME}-canary")
    if found is None:
        return None
    return int(found["metadata"]["annotations"]["nginx.ingress.kubernetes.io/canary-weight"])


def steps_seen(cluster: Cluster, until: Callable[[Obj], bool]) -> list[int]:
    """The analysis steps ``status.analysis`` shows, in order, until ``until(disvc)``."""
    seen: list[int] = []

    def check() -> None:
        disvc = cluster.disvc(NAME)
        step = ((disvc.get("status") or {}).get("analysis") or {}).get("step")
        if step is not None and (not seen or seen[-1] != step):
            seen.append(step)
        assert until(disvc)

    eventually(check, timeout=TIMEOUT, interval=0.05)
    return seen


def test_a_passing_canary_walks_every_step_and_is_promoted(
    kube: KubeEnv, cluster: Cluster, prometheus: ScriptedPrometheus, running: RunningController
) -> None:
    prometheus.script = lambda query: prometheus_api.value("0.001")
    start_canary(kube, cluster, {"analysis": analysis([20, 50, 80])})
    weights: list[int] = []

    def promoted(disvc: Obj) -> bool:
        weight = canary_weight(cluster)
        if weight is not None and (not weights or weights[-1] != weight):
            weights.append(weight)
        return (disvc.get("status") or {}).get("activeGeneration") == "v2"

    assert steps_seen(cluster, promoted) == [1, 2, 3]
    assert weights == [20, 50, 80]
    eventually(lambda: _reason(cluster, "Converged"), timeout=TIMEOUT)
    assert set(cluster.isvcs()) == {f"{NAME}-v2-0", f"{NAME}-v2-1"}
    ns = kube.namespace
    assert prometheus.received()[0] == (
        f'error_rate{{namespace="{ns}",service="{NAME}-v2",generation="v2",window="1500ms"}}'
    )
    # one measurement per step: each step lasts an interval and is measured once
    assert len(prometheus.received()) == 3
    assert (
        running.metric("disvc_analysis_measurements_total", namespace=ns, name=NAME, metric="error-rate", result="pass")
        == 3
    )
    reasons = [e.get("reason") for e in cluster.events(NAME)]
    assert reasons.count("AnalysisStep") == 3 and "AnalysisSuccessful" in reasons


def test_a_failing_canary_is_aborted_and_stays_so_until_retried(
    kube: KubeEnv, cluster: Cluster, prometheus: ScriptedPrometheus, running: RunningController
) -> None:
    prometheus.script = lambda query: prometheus_api.value("0.25")
    start_canary(kube, cluster, {"analysis": analysis([20, 50], failure_limit=1)})
    failed = eventually(lambda: _reason(cluster, "AnalysisFailed"), timeout=TIMEOUT)
    assert failed["status"] == "False"
    assert "error-rate = 0.25 is outside max 0.05" in failed["message"]
    assert "failureLimit 1" in failed["message"]
    eventually(lambda: _only_v1(cluster), timeout=TIMEOUT)
    assert len(prometheus.received()) == 2  # failureLimit + 1 measurements
    warnings = [e for e in cluster.events(NAME) if e.get("reason") == "AnalysisFailed"]
    assert len(warnings) == 1 and warnings[0]["type"] == "Warning"

    # it stays aborted: no canary comes back, nothing more is measured
    disvc = cluster.disvc(NAME)
    with pytest.raises(AssertionError):
        eventually(lambda: _canary_back(cluster), timeout=3 * INTERVAL)
    assert cluster.disvc(NAME)["metadata"]["resourceVersion"] == disvc["metadata"]["resourceVersion"]
    assert len(prometheus.received()) == 2

    prometheus.script = lambda query: prometheus_api.value("0.0")
    cluster.merge_patch_disvc(NAME, {"metadata": {"annotations": {"disvc.serving.kserve.io/analysis-retry": "1"}}})
    eventually(lambda: _canary_back(cluster), timeout=TIMEOUT)
    eventually(
        lambda: (cluster.disvc(NAME).get("status") or {}).get("activeGeneration") == "v2" or _fail(),
        timeout=TIMEOUT,
    )


def test_no_data_holds_the_step_and_prometheus_outages_pause_it(
    kube: KubeEnv, cluster: Cluster, prometheus: ScriptedPrometheus, running: RunningController
) -> None:
    replies: dict[str, Reply] = {"now": prometheus_api.NO_DATA}
    prometheus.script = lambda query: replies["now"]
    start_canary(kube, cluster, {"analysis": analysis([20, 50])})
    eventually(lambda: _measured(prometheus, 2), timeout=TIMEOUT)
    status = cluster.disvc(NAME)["status"]["analysis"]
    assert (status["step"], status["failures"], status["measurements"][0]["verdict"]) == (1, 0, "Inconclusive")
    assert canary_weight(cluster) == 20

    replies["now"] = prometheus_api.UNAVAILABLE
    paused = eventually(lambda: _reason(cluster, "AnalysisPaused"), timeout=TIMEOUT)
    assert "unavailable" in paused["message"] and "scripted outage" in paused["message"]
    assert canary_weight(cluster) == 20
    assert {f"{NAME}-v2-0", f"{NAME}-v2-1"} <= set(cluster.isvcs())

    replies["now"] = prometheus_api.DROP
    before = len(prometheus.received())
    eventually(lambda: _measured(prometheus, before + 1), timeout=TIMEOUT)
    _reason(cluster, "AnalysisPaused")

    replies["now"] = prometheus_api.value("0.01")
    eventually(
        lambda: (cluster.disvc(NAME).get("status") or {}).get("activeGeneration") == "v2" or _fail(),
        timeout=TIMEOUT,
    )


def test_an_unparseable_query_is_reported_with_prometheus_words(
    kube: KubeEnv, cluster: Cluster, prometheus: ScriptedPrometheus, running: RunningController
) -> None:
    prometheus.script = lambda query: prometheus_api.bad_data('1:9: parse error: unexpected "}"')
    start_canary(kube, cluster, {"analysis": analysis([20])})
    paused = eventually(lambda: _reason(cluster, "AnalysisPaused"), timeout=TIMEOUT)
    assert 'Prometheus refused the query (bad_data): 1:9: parse error: unexpected "}"' in paused["message"]
    assert running.metric(
        "disvc_analysis_measurements_total", namespace=kube.namespace, name=NAME, metric="error-rate",
        result="error",
    ) == 1  # fmt: skip


def test_a_restarted_controller_resumes_the_walk_at_the_same_step(
    kube: KubeEnv,
    cluster: Cluster,
    prometheus: ScriptedPrometheus,
    start_controller: StartController,
    kserve: KServeStub,
) -> None:
    prometheus.script = lambda query: prometheus_api.value("0.0")
    first = start_controller(prometheus_url=prometheus.url)
    start_canary(kube, cluster, {"analysis": {**analysis([10, 20, 30, 40]), "interval": "3s"}})
    eventually(lambda: _at_step(cluster, 2), timeout=TIMEOUT)
    first.stop()
    measured = len(prometheus.received())
    started_at = cluster.disvc(NAME)["status"]["analysis"]["stepStartedAt"]
    start_controller(prometheus_url=prometheus.url)
    seen = steps_seen(cluster, lambda disvc: (disvc.get("status") or {}).get("activeGeneration") == "v2")
    assert seen[0] == 2 and seen == sorted(seen)  # never back to step 1
    assert len(prometheus.received()) == measured + 3  # steps 2, 3 and 4: once each
    history = [e for e in cluster.events(NAME) if e.get("reason") == "AnalysisStep"]
    assert started_at and len(history) == 4


def test_the_crd_refuses_an_analysis_without_a_canary_or_with_bad_steps(cluster: Cluster) -> None:
    def refused(rollout: Obj) -> str:
        doc = manifest("v1", rollout)
        if "canaryTrafficPercent" in rollout and rollout["canaryTrafficPercent"] is None:
            del doc["spec"]["rollout"]["canaryTrafficPercent"]
        # a create: kube-apiserver 1.28 answers a server-side apply with a
        # duplicate in a set-typed list with 500, before validation
        with pytest.raises(client.ApiException) as raised:
            cluster.raw("POST", cluster.disvcs_path(), body=doc)
        assert raised.value.status == 422
        return str(raised.value.body)

    assert "spec.rollout.analysis needs a canary" in refused({"canaryTrafficPercent": None, "analysis": analysis([10])})
    assert "must be increasing" in refused({"analysis": analysis([30, 10])})
    assert "Duplicate value" in refused({"analysis": analysis([10, 10])})
    assert "an analysis metric needs a bound" in refused(
        {"analysis": {**analysis([10]), "metrics": [{"name": "m", "query": "up"}]}}
    )


def _only_v1(cluster: Cluster) -> None:
    assert set(cluster.isvcs()) == {f"{NAME}-v1-0", f"{NAME}-v1-1"}
    assert canary_weight(cluster) is None
    assert (cluster.disvc(NAME).get("status") or {}).get("activeGeneration") == "v1"


def _canary_back(cluster: Cluster) -> None:
    assert f"{NAME}-v2-0" in cluster.isvcs()


def _measured(prometheus: ScriptedPrometheus, count: int) -> None:
    assert len(prometheus.received()) >= count


def _at_step(cluster: Cluster, step: int) -> None:
    assert ((cluster.disvc(NAME).get("status") or {}).get("analysis") or {}).get("step") == step


def _fail() -> bool:
    raise AssertionError("not yet")
