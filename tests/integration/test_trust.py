"""Trust through failovers, relists and re-created objects (issue 23): each
test makes one fault happen at the wrong moment, on the loopback API and on
a real one where the fault can be made there."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from disvc.controller import errors, kube_version
from disvc.controller.client import ApiWriter
from disvc.controller.kube import Kube
from disvc.controller.manager import Manager
from disvc.controller.mutation_cache import MutationCache
from disvc.controller.store import Store
from disvc.testing.apiserver import FaultRule
from disvc.testing.apiserver.resources import VERSION_INFO
from disvc.testing.fixtures import KubeEnv, eventually

from .conftest import controller_options
from .harness import POC1, Cluster, condition

Obj = dict[str, Any]
NAME = "sklearn-v2-iris-rest"


def create_poc1(kube: KubeEnv) -> Obj:
    doc: Obj = yaml.safe_load(POC1.read_text())
    (created,) = kube.apply_yaml(yaml.safe_dump(doc))
    return dict(created)


# -- row 9: a status worked out for one object never lands on another ----------


def test_a_status_for_a_deleted_disvc_never_lands_on_its_same_named_successor(
    kube: KubeEnv, api: Kube, cluster: Cluster
) -> None:
    old = create_poc1(kube)
    cluster.raw("DELETE", cluster.disvcs_path(NAME))
    new = create_poc1(kube)  # `kubectl replace --force`: same name, new uid
    assert new["metadata"]["uid"] != old["metadata"]["uid"]

    writer = ApiWriter(api, {"DistributedInferenceService": MutationCache(Store())})
    with pytest.raises(errors.ConflictError):
        writer.apply_status(old, {"observedGeneration": 1, "activeGeneration": "v7"})

    assert "activeGeneration" not in (cluster.disvc(NAME).get("status") or {})


def test_a_status_worked_out_from_an_older_version_is_refused(
    kube: KubeEnv, api: Kube, cluster: Cluster
) -> None:
    read = create_poc1(kube)
    cluster.merge_patch_disvc(NAME, {"spec": {"replicas": 3}})  # the user's change we have not seen

    writer = ApiWriter(api, {"DistributedInferenceService": MutationCache(Store())})
    with pytest.raises(errors.ConflictError):
        writer.apply_status(read, {"observedGeneration": 1, "replicas": 1})
    current = cluster.disvc(NAME)
    writer.apply_status(current, {"observedGeneration": 2, "replicas": 1})  # from what is there: written
    assert cluster.disvc(NAME)["status"]["observedGeneration"] == 2


# -- row 3: a refusal fixed by an admin is picked up without any event ----------


def test_a_quota_fixed_by_an_admin_is_picked_up_long_before_the_resync(
    kube: KubeEnv, controller: Any, cluster: Cluster
) -> None:
    """ISVC creates are refused (403: a quota on the loopback API's fault
    rules, a real ResourceQuota on a cluster) until an admin lifts it; the
    controller retries with backoff and converges with no DISVC event."""
    quota = f"/api/v1/namespaces/{cluster.ns}/resourcequotas"
    rule = None
    if kube.server is not None:
        rule = kube.server.add_fault(FaultRule(
            verb="create", resource="inferenceservices", count=None, code=403,
            message='inferenceservices.serving.kserve.io "x" is forbidden: exceeded quota: isvcs',
        ))  # fmt: skip
    else:
        hard = {"count/inferenceservices.serving.kserve.io": "0"}
        cluster.raw("POST", quota, body={
            "apiVersion": "v1", "kind": "ResourceQuota", "metadata": {"name": "isvcs"}, "spec": {"hard": hard},
        })  # fmt: skip
        if kube.session.backend == "envtest":
            # Quota admission enforces status.hard, which kube-controller-manager's
            # resourcequota controller copies from spec.hard along with the usage
            # it counted; envtest runs none, so write what its first sync would.
            cluster.raw("PUT", f"{quota}/isvcs/status", body={
                **cluster.raw("GET", f"{quota}/isvcs"), "status": {"hard": hard, "used": {name: "0" for name in hard}},
            })  # fmt: skip
    create_poc1(kube)

    def refused() -> None:
        ready = condition(cluster.disvc(NAME), "Ready") or {}
        assert ready.get("reason") == "ChildRejected", ready
        assert "activeGeneration" not in cluster.disvc(NAME)["status"]  # nothing serves yet: never claimed

    eventually(refused, timeout=30)
    time.sleep(3)  # several refusals, so the backoff has grown
    if rule is not None:
        assert kube.server is not None
        kube.server.remove_fault(rule)
    else:
        cluster.raw("DELETE", f"{quota}/isvcs")

    eventually(lambda: _created(cluster), timeout=30)


def _created(cluster: Cluster) -> None:
    assert f"{NAME}-v1-0" in cluster.isvcs()


# -- row 10: the oldest Kubernetes the controller runs against ------------------


def test_the_controller_reads_the_server_version_at_start(kube: KubeEnv, api: Kube) -> None:
    assert kube_version.check(api.server_version()) >= kube_version.MINIMUM


@pytest.mark.substrate_only
def test_an_api_server_older_than_the_minimum_is_refused_at_start(
    kube: KubeEnv, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(VERSION_INFO, "minor", "22")
    monkeypatch.setitem(VERSION_INFO, "gitVersion", "v1.22.17")
    manager, stop = Manager(controller_options(kube)), threading.Event()
    raised: list[BaseException] = []

    def run() -> None:
        try:
            manager.run(stop)
        except BaseException as error:  # noqa: BLE001 - the test reads it
            raised.append(error)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(10)
    stop.set()
    thread.join(10)
    assert len(raised) == 1 and isinstance(raised[0], errors.ConfigError), raised
    assert "Kubernetes 1.22 (v1.22.17); the controller needs 1.25 or newer" in str(raised[0])


# -- row 2 + chaos: a paused leader, a standby that takes over ------------------


class _Controller:
    """``python -m disvc.controller`` with leader election; its JSON log lines kept."""

    def __init__(self, kube: KubeEnv) -> None:
        self.popen = subprocess.Popen(
            [sys.executable, "-m", "disvc.controller", "--kubeconfig", kube.kubeconfig,
             "--namespace", kube.namespace, "--metrics-bind-address", "0", "--health-probe-bind-address", "0",
             "--leader-elect", "--leader-election-namespace", kube.namespace,
             "--leader-election-lease-duration", "4", "--leader-election-renew-deadline", "3",
             "--leader-election-retry-period", "0.5", "--log-format", "json"],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
            env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])},
        )  # fmt: skip
        self.lines: list[Obj] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.popen.stderr is not None
        for line in self.popen.stderr:
            try:
                self.lines.append(json.loads(line))
            except json.JSONDecodeError:
                pass

    def leads(self) -> None:
        assert any(line.get("msg") == "Became leader" for line in list(self.lines))

    def writes_after(self, position: int) -> list[Obj]:
        return [line for line in list(self.lines)[position:] if "action" in line]


@pytest.fixture
def controllers(kube: KubeEnv) -> Iterator[list[_Controller]]:
    started: list[_Controller] = []
    yield started
    for proc in started:
        if proc.popen.poll() is None:
            proc.popen.send_signal(signal.SIGCONT)
            proc.popen.kill()
        proc.popen.wait(10)


def test_a_paused_leader_writes_nothing_after_its_lease_expired_and_no_generation_is_lost(
    kube: KubeEnv, cluster: Cluster, kserve: Any, controllers: list[_Controller]
) -> None:
    leader = _Controller(kube)
    controllers.append(leader)
    eventually(leader.leads, timeout=30)
    standby = _Controller(kube)
    controllers.append(standby)
    doc: Obj = yaml.safe_load(POC1.read_text())
    kube.apply_yaml(yaml.safe_dump(doc))
    eventually(lambda: _serving(cluster, "v1"), timeout=30)

    doc["spec"]["inferenservice"]["predictor"]["model"]["runtimeVersion"] = "1.5.0"
    kube.apply_yaml(yaml.safe_dump(doc))  # a rollout to v2 ...
    time.sleep(0.3)
    leader.popen.send_signal(signal.SIGSTOP)  # ... during which the leader is paused
    eventually(standby.leads, timeout=30)
    eventually(lambda: _serving(cluster, "v2"), timeout=60)
    time.sleep(2)  # well past the paused leader's renew deadline and lease

    paused_at = len(leader.lines)
    leader.popen.send_signal(signal.SIGCONT)
    assert leader.popen.wait(30) == 1  # it finds its lease lost and exits 1
    assert leader.writes_after(paused_at) == []
    _serving(cluster, "v2")
    history = cluster.disvc(NAME)["status"]["history"]
    assert [h["generation"] for h in history] == ["v1", "v2"]


def _serving(cluster: Cluster, generation: str) -> None:
    status = cluster.disvc(NAME).get("status") or {}
    assert status.get("activeGeneration") == generation, status
    assert (condition(cluster.disvc(NAME), "Ready") or {}).get("status") == "True", status
    assert f"{NAME}-{generation}-0" in cluster.isvcs()
    assert set(cluster.isvcs()) == {f"{NAME}-{generation}-0"}, sorted(cluster.isvcs())
