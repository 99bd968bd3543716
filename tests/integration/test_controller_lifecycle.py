"""The controller as an operator runs it: resyncs and restarts that write
nothing, probes, metrics, leader election, and the real process entry point
stopped with SIGTERM."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from disvc.testing.apiserver import FaultRule
from disvc.testing.fixtures import KubeEnv, eventually
from disvc.testing.kserve_stub import KServeStub

from .harness import (
    CONTROLLER_USER_AGENT,
    POC1,
    Cluster,
    RunningController,
    StartController,
    condition,
)

NAME = "sklearn-v2-iris-rest"
REPO = Path(__file__).resolve().parents[2]
Obj = dict[str, Any]

ISSUE_4_METRICS = (
    "controller_runtime_reconcile_total",
    "controller_runtime_reconcile_errors_total",
    "controller_runtime_reconcile_time_seconds",
    "controller_runtime_max_concurrent_reconciles",
    "controller_runtime_active_workers",
    "workqueue_depth",
    "workqueue_adds_total",
    "workqueue_queue_duration_seconds",
    "workqueue_work_duration_seconds",
    "workqueue_retries_total",
    "workqueue_unfinished_work_seconds",
    "workqueue_longest_running_processor_seconds",
    "disvc_managed",
    "disvc_replicas",
    "disvc_ready_replicas",
    "disvc_api_writes_total",
)


def apply_poc1(kube: KubeEnv, replicas: int = 1) -> None:
    doc: Obj = yaml.safe_load(POC1.read_text())
    doc["spec"]["replicas"] = replicas
    kube.apply_yaml(yaml.safe_dump(doc))


def ready(cluster: Cluster, replicas: int = 1) -> None:
    disvc = cluster.disvc(NAME)
    assert (condition(disvc, "Ready") or {}).get("status") == "True", disvc.get("status")
    assert (disvc.get("status") or {}).get("readyReplicas") == replicas


def reconciles(controller: RunningController) -> float:
    return controller.metric(
        "controller_runtime_reconcile_total", controller="distributedinferenceservice", result="success"
    ) or 0.0


def snapshot(cluster: Cluster) -> dict[tuple[str, str], tuple[str, str]]:
    """(kind, name) -> (uid, resourceVersion) of every child in the namespace."""
    objects = {
        **{("InferenceService", n): o for n, o in cluster.isvcs().items()},
        **{("Service", n): o for n, o in cluster.services().items()},
        **{("Ingress", n): o for n, o in cluster.ingresses().items()},
    }
    objects[("DistributedInferenceService", NAME)] = cluster.disvc(NAME)  # its status, too
    return {k: (o["metadata"]["uid"], o["metadata"]["resourceVersion"]) for k, o in objects.items()}


def test_a_resync_of_converged_disvcs_writes_nothing(
    kube: KubeEnv, start_controller: StartController, cluster: Cluster, kserve: KServeStub
) -> None:
    controller = start_controller(resync_period=0.2)
    apply_poc1(kube, replicas=2)
    eventually(lambda: ready(cluster, 2))
    kserve.stop()  # its work is done; only the controller may write from here on
    # Let in-flight watch events settle into a converged reconcile first.
    before = reconciles(controller)
    eventually(lambda: _at_least(reconciles(controller), before + 2))
    if kube.server is not None:
        kube.server.reset_requests()
    written = controller.metric_sum("disvc_api_writes_total")
    objects = snapshot(cluster)
    counted = reconciles(controller)

    eventually(lambda: _at_least(reconciles(controller), counted + 5))  # five resyncs, at least

    # Unchanged resourceVersions show no write reached any object, on any
    # server; the loopback API can also tell that no request was made at all.
    assert snapshot(cluster) == objects
    assert controller.metric_sum("disvc_api_writes_total") == written
    if kube.server is not None:
        assert kube.server.write_count(user_agent=CONTROLLER_USER_AGENT) == 0
        assert kube.server.request_count(user_agent=CONTROLLER_USER_AGENT) == 0  # reads come from the cache


def test_a_restarted_controller_converges_with_no_duplicates_and_no_writes(
    kube: KubeEnv, start_controller: StartController, cluster: Cluster, kserve: KServeStub
) -> None:
    first = start_controller()
    apply_poc1(kube, replicas=2)
    eventually(lambda: ready(cluster, 2))
    before = snapshot(cluster)
    assert first.stop() == 0
    kserve.stop()
    if kube.server is not None:
        kube.server.reset_requests()

    second = start_controller()

    eventually(lambda: _at_least(reconciles(second), 1))
    assert snapshot(cluster) == before
    assert second.metric_sum("disvc_api_writes_total") == 0
    if kube.server is not None:
        assert kube.server.write_count(user_agent=CONTROLLER_USER_AGENT) == 0
    ready(cluster, 2)


def test_metrics_expose_controller_runtime_workqueue_and_disvc_families(
    kube: KubeEnv, controller: RunningController, cluster: Cluster, kserve: KServeStub
) -> None:
    apply_poc1(kube)
    eventually(lambda: ready(cluster))

    def gauges_current() -> None:
        assert controller.metric("disvc_managed") == 1
        assert controller.metric("disvc_replicas", namespace=kube.namespace, name=NAME) == 1
        assert controller.metric("disvc_ready_replicas", namespace=kube.namespace, name=NAME) == 1

    eventually(gauges_current)
    status, text = controller.get("/metrics")
    assert status == 200
    for name in ISSUE_4_METRICS:
        assert f"\n# TYPE {name} " in text, name
    assert (controller.metric("disvc_api_writes_total", verb="create", kind="InferenceService") or 0) >= 1
    assert (controller.metric("disvc_api_requests_total", verb="create", kind="InferenceService", code="201")
            or 0) >= 1
    assert (controller.metric("disvc_api_requests_total", verb="list", kind="DistributedInferenceService",
                              code="200") or 0) >= 1
    assert (controller.metric("controller_runtime_max_concurrent_reconciles",
                              controller="distributedinferenceservice")) == 2


@pytest.mark.substrate_only
def test_readyz_turns_200_only_once_the_caches_have_synced(
    kube: KubeEnv, start_controller: StartController
) -> None:
    assert kube.server is not None
    kube.server.add_fault(FaultRule(verb="list", resource="distributedinferenceservices", count=None, code=500))

    controller = start_controller(wait_ready=False)

    eventually(lambda: _at_least(kube.server.request_count(  # type: ignore[union-attr]
        verb="list", resource="distributedinferenceservices", code=500), 1))
    assert controller.get("/readyz")[0] == 503
    assert controller.get("/healthz")[0] == 200

    kube.server.clear_faults()

    eventually(lambda: _equal(controller.get("/readyz")[0], 200), timeout=30)


def test_with_leader_election_only_the_leader_reconciles(
    kube: KubeEnv, start_controller: StartController, cluster: Cluster
) -> None:
    lease_options = {"leader_elect": True, "leader_election_namespace": kube.namespace,
                     "lease_duration": 15.0, "renew_deadline": 10.0, "retry_period": 0.2}
    leader = start_controller(**lease_options)
    eventually(lambda: _is_true(leader.manager.elector is not None and leader.manager.elector.is_leader()))
    standby = start_controller(**lease_options)
    assert standby.manager.elector is not None and not standby.manager.elector.is_leader()

    apply_poc1(kube)
    eventually(lambda: _equal(set(cluster.isvcs()), {f"{NAME}-v1-0"}))

    assert reconciles(standby) == 0
    assert not standby.manager.elector.is_leader()
    assert leader.stop() == 0

    # Released on shutdown: the standby takes over without waiting out 15 s.
    eventually(lambda: _is_true(standby.manager.elector.is_leader()), timeout=10)  # type: ignore[union-attr]


# --- the real process ----------------------------------------------------------


class Process:
    """``python -m disvc.controller`` with its JSON log lines collected."""

    def __init__(self, argv: list[str]) -> None:
        env = {**os.environ, "PYTHONPATH": str(REPO)}
        self.popen = subprocess.Popen(
            [sys.executable, "-m", "disvc.controller", *argv],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env,
        )
        self.lines: list[dict[str, Any]] = []
        self.raw: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.popen.stderr is not None
        for line in self.popen.stderr:
            self.raw.append(line)
            try:
                self.lines.append(json.loads(line))
            except json.JSONDecodeError:
                pass

    def logged(self, msg: str) -> dict[str, Any]:
        for line in list(self.lines):
            if line.get("msg") == msg:
                return line
        raise AssertionError(f"not logged yet: {msg!r}; output so far: {''.join(self.raw)[-2000:]}")

    def get(self, url: str) -> int:
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                return int(response.status)
        except urllib.error.HTTPError as error:
            return int(error.code)


@pytest.fixture
def process(kube: KubeEnv) -> Iterator[type[Process]]:
    started: list[Process] = []

    class Tracked(Process):
        def __init__(self, argv: list[str]) -> None:
            super().__init__(argv)
            started.append(self)

    yield Tracked
    for proc in started:
        if proc.popen.poll() is None:
            proc.popen.kill()
            proc.popen.wait(10)


def test_the_process_serves_probes_leads_reconciles_and_exits_0_on_sigterm(
    kube: KubeEnv, process: type[Process], cluster: Cluster
) -> None:
    lease_path = f"/apis/coordination.k8s.io/v1/namespaces/{kube.namespace}/leases/disvc-controller-leader"
    proc = process([
        "--kubeconfig", kube.kubeconfig,
        "--namespace", kube.namespace,
        "--metrics-bind-address", "127.0.0.1:0",
        "--health-probe-bind-address", "127.0.0.1:0",
        "--leader-elect", "--leader-election-namespace", kube.namespace,
        "--log-format", "json",
    ])
    probes = eventually(lambda: proc.logged("Serving health probes"), timeout=30)["address"]
    metrics = proc.logged("Serving metrics")["address"]
    eventually(lambda: _equal(proc.get(f"http://{probes}/readyz"), 200), timeout=30)
    assert proc.get(f"http://{metrics}/metrics") == 200

    def leading() -> None:
        lease = cluster.find(lease_path)
        assert lease is not None and lease["spec"].get("holderIdentity")

    eventually(leading, timeout=30)
    apply_poc1(kube)
    eventually(lambda: _equal(set(cluster.isvcs()), {f"{NAME}-v1-0"}), timeout=30)

    proc.popen.send_signal(signal.SIGTERM)

    assert proc.popen.wait(30) == 0
    assert not cluster.raw("GET", lease_path)["spec"].get("holderIdentity")  # released
    proc.logged("Shutdown complete")
    assert all(set(line) >= {"ts", "level", "logger", "msg"} for line in proc.lines)


# --- small assertions usable inside eventually ------------------------------------


def _at_least(value: float, minimum: float) -> None:
    assert value >= minimum, f"{value} < {minimum}"


def _equal(value: object, expected: object) -> None:
    assert value == expected, f"{value!r} != {expected!r}"


def _is_true(value: bool) -> None:
    assert value
