"""Automated canary analysis on real metrics: a real Prometheus scraping real
KServe model servers, while steady load flows through the data plane's router.

A good new version walks every step and is promoted; a slow one
(``DISVC_IRIS_DELAY_SECONDS``) is aborted within ``failureLimit + 1``
intervals of its first step; no request answered by the serving generation
fails throughout. Runs on every backend; skipped, saying why, where
Prometheus (Debian's ``prometheus`` package) or the dataplane extra is
missing.
"""

from __future__ import annotations

import copy
import json
import urllib.parse
import urllib.request
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import pytest
import yaml

from disvc.testing.dataplane import monitoring
from disvc.testing.dataplane.traffic import Answer, Load, client_addresses, failures
from disvc.testing.fixtures import KubeEnv, eventually

from .harness import POC1, Cluster, RunningController, StartController, condition

pytest.importorskip("kserve", reason="needs the dataplane extra: pip install -e '.[dataplane]'")
if monitoring.binary() is None:
    pytest.skip("needs a prometheus binary: apt-get install prometheus", allow_module_level=True)

from disvc.testing.dataplane.plane import DataPlane

NAME = yaml.safe_load(POC1.read_text())["metadata"]["name"]
INTERVAL = 5.0
FAILURE_LIMIT = 1
READY_TIMEOUT = 180.0
SELECTOR = 'namespace="{{ namespace }}",disvc_group="{{ service }}"'
ANALYSIS: dict[str, Any] = {
    "steps": [30, 60],
    "interval": f"{int(INTERVAL)}s",
    "failureLimit": FAILURE_LIMIT,
    "metrics": [
        {
            "name": "mean-latency",
            "query": f"sum(rate(request_predict_seconds_sum{{{SELECTOR}}}[{{{{ interval }}}}])) / "
            f"sum(rate(request_predict_seconds_count{{{SELECTOR}}}[{{{{ interval }}}}]))",
            "max": 0.25,
        },
        {
            "name": "requests",
            "query": f"sum(rate(request_predict_seconds_count{{{SELECTOR}}}[{{{{ interval }}}}]))",
            "min": 0.5,
        },
    ],
}
Obj = dict[str, Any]


def manifest(version: str, delay: float = 0.0) -> Obj:
    doc: Obj = yaml.safe_load(POC1.read_text())
    doc["metadata"].pop("namespace", None)
    spec = doc["spec"]
    spec["inferenceService"] = spec.pop("inferenservice")
    spec["replicas"] = 1
    spec["annotations"] = {"version": version}
    spec["rollout"] = {"scaleDownDelaySeconds": 2, "canaryTrafficPercent": 30, "analysis": copy.deepcopy(ANALYSIS)}
    if delay:
        model = spec["inferenceService"]["predictor"]["model"]
        model["env"] = [*model.get("env", []), {"name": "DISVC_IRIS_DELAY_SECONDS", "value": str(delay)}]
    return doc


@pytest.fixture
def dataplane(kube: KubeEnv, tmp_path_factory: pytest.TempPathFactory) -> Iterator[DataPlane]:
    plane = DataPlane(kube.api_client, namespace=kube.namespace, log_dir=tmp_path_factory.mktemp("pods"))
    with plane:
        yield plane


@pytest.fixture
def prometheus(dataplane: DataPlane, tmp_path_factory: pytest.TempPathFactory) -> Iterator[monitoring.Monitoring]:
    with monitoring.Monitoring(dataplane.registry, tmp_path_factory.mktemp("prometheus")) as running:
        yield running


def query(prometheus: monitoring.Monitoring, promql: str) -> list[Obj]:
    url = f"{prometheus.url}/api/v1/query?" + urllib.parse.urlencode({"query": promql})
    with urllib.request.urlopen(url, timeout=5) as response:
        result: list[Obj] = json.loads(response.read())["data"]["result"]
    return result


def settled(cluster: Cluster, generation: str) -> None:
    disvc = cluster.disvc(NAME)
    assert (condition(disvc, "Progressing") or {}).get("reason") == "Converged", disvc.get("status")
    assert (disvc.get("status") or {}).get("activeGeneration") == generation
    assert set(cluster.isvcs()) == {f"{NAME}-{generation}-0"}


def generation_of(answer: Answer) -> str | None:
    return answer.isvc.removeprefix(f"{NAME}-").rsplit("-", 1)[0] if answer.isvc else None


def test_real_metrics_promote_a_good_version_and_abort_a_slow_one(
    kube: KubeEnv,
    cluster: Cluster,
    dataplane: DataPlane,
    prometheus: monitoring.Monitoring,
    start_controller: StartController,
) -> None:
    controller = start_controller(prometheus_url=prometheus.url)
    kube.apply_yaml(yaml.safe_dump(manifest("v1")))
    eventually(lambda: settled(cluster, "v1"), timeout=READY_TIMEOUT, interval=0.5)
    eventually(lambda: query(prometheus, f'up{{disvc_group="{NAME}-v1"}} == 1') or _no(), timeout=30, interval=0.5)

    with Load(dataplane.address, f"{NAME}-{kube.namespace}.example.com", NAME, client_addresses(6, first=40)) as load:
        # a good version: every step passes on its model server's own latency
        kube.apply_yaml(yaml.safe_dump(manifest("v2")))
        steps: list[int] = []

        def promoted() -> None:
            analysis = (cluster.disvc(NAME).get("status") or {}).get("analysis") or {}
            if analysis.get("generation") == "v2" and analysis.get("step") and analysis["step"] not in steps:
                steps.append(analysis["step"])
            settled(cluster, "v2")

        eventually(promoted, timeout=READY_TIMEOUT, interval=0.2)
        assert steps == [1, 2]
        analysis = cluster.disvc(NAME)["status"]["analysis"]
        assert analysis["phase"] == "Successful"
        assert {m["verdict"] for m in analysis["measurements"]} == {"Pass"}
        promoted_at = len(load.snapshot())
        before = _measurements(controller, kube.namespace)

        # a slow version: aborted on its latency, traffic back on v2
        kube.apply_yaml(yaml.safe_dump(manifest("v3", delay=0.5)))

        def aborted() -> Obj:
            disvc = cluster.disvc(NAME)
            assert (condition(disvc, "Progressing") or {}).get("reason") == "AnalysisFailed"
            return disvc

        disvc = eventually(aborted, timeout=READY_TIMEOUT, interval=0.2)
        analysis = disvc["status"]["analysis"]
        assert analysis["generation"] == "v3" and analysis["step"] == 1
        assert analysis["failures"] == FAILURE_LIMIT + 1
        # failureLimit + 1 failed measurements, one per interval; a measurement
        # before Prometheus had two scrapes of the canary is inconclusive and
        # costs an interval more (seen on a loaded 2-core machine)
        after = _measurements(controller, kube.namespace)
        assert after["fail"] - before["fail"] == FAILURE_LIMIT + 1
        assert after["pass"] == before["pass"]
        intervals = FAILURE_LIMIT + 1 + after["inconclusive"] - before["inconclusive"]
        took = _seconds(analysis["lastMeasuredAt"]) - _seconds(analysis["stepStartedAt"])
        assert took <= intervals * INTERVAL + 2, (analysis, after)
        assert "mean-latency" in condition(disvc, "Progressing")["message"]  # type: ignore[index]
        eventually(lambda: settled_after_abort(cluster), timeout=60, interval=0.2)
        answers = load.stop()

    failed = {id(a) for a in failures(answers)}
    serving_failures = [
        a for i, a in enumerate(answers) if id(a) in failed and generation_of(a) == ("v1" if i < promoted_at else "v2")
    ]
    assert serving_failures == []
    unanswered = [a for a in answers if id(a) in failed and generation_of(a) is None]
    assert unanswered == [], "failed before any model server answered"
    by_generation = {generation_of(a) for a in answers if a.ok}
    assert {"v1", "v2", "v3"} <= by_generation  # the canaries took real traffic


def settled_after_abort(cluster: Cluster) -> None:
    assert set(cluster.isvcs()) == {f"{NAME}-v2-0"}
    assert (cluster.disvc(NAME).get("status") or {}).get("activeGeneration") == "v2"


def _measurements(controller: RunningController, namespace: str) -> dict[str, float]:
    """mean-latency measurements so far, by result."""
    return {
        result: controller.metric(
            "disvc_analysis_measurements_total", namespace=namespace, name=NAME, metric="mean-latency", result=result
        )
        or 0.0
        for result in ("pass", "fail", "inconclusive", "error")
    }


def _seconds(stamp: str) -> float:
    return datetime.fromisoformat(stamp).timestamp()


def _no() -> list[Obj]:
    raise AssertionError("not scraped yet")
