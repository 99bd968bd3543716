"""What integration tests hold: a controller running beside them, and the
cluster as a kubectl user sees it.

``RunningController`` runs the real ``Manager`` on a thread (as KOPF's
``KopfRunner`` runs an operator beside its tests) and reads its probes and
``/metrics`` over HTTP, as Prometheus and the kubelet would. ``Cluster``
reads and edits objects through the plain client. The fixtures that build
them are in ``conftest.py``.
"""

from __future__ import annotations

import threading
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from kubernetes import client
from prometheus_client.parser import text_string_to_metric_families

from disvc.controller.kube import DEFAULT_USER_AGENT
from disvc.controller.manager import Manager
from disvc.testing.fixtures import KubeEnv, request_json

POC1: Final = Path(__file__).resolve().parents[2] / "config" / "samples" / "serving_v1alpha1_distributedinferenceservice.yaml"
"""The seed's PoC 1 manifest, shipped unchanged as the first sample."""
CONTROLLER_USER_AGENT: Final = DEFAULT_USER_AGENT
"""Requests whose user agent starts with this are the controller's."""
STARTUP_TIMEOUT: Final = 30.0

GROUP: Final = "serving.kserve.io"
DISVC_VERSION: Final = "v1alpha1"
DISVC_PLURAL: Final = "distributedinferenceservices"
ISVC_VERSION: Final = "v1beta1"
ISVC_PLURAL: Final = "inferenceservices"

Obj = dict[str, Any]


@dataclass
class RunningController:
    """One in-process controller: its manager, its thread and how to stop it."""

    manager: Manager
    stop_event: threading.Event = field(default_factory=threading.Event)
    exit_code: int | None = None
    thread: threading.Thread | None = None

    def start(self) -> RunningController:
        def run() -> None:
            self.exit_code = self.manager.run(self.stop_event)

        self.thread = threading.Thread(target=run, name="controller-under-test", daemon=True)
        self.thread.start()
        return self

    def stop(self, timeout: float = 30.0) -> int | None:
        """Signal stop as SIGTERM would, wait for ``run`` to return; its exit code."""
        self.stop_event.set()
        if self.thread is not None:
            self.thread.join(timeout)
            assert not self.thread.is_alive(), "controller did not stop"
        return self.exit_code

    def url(self, path: str) -> str:
        port = self.manager.metrics_port if path == "/metrics" else self.manager.health_port
        assert port is not None
        return f"http://127.0.0.1:{port}{path}"

    def get(self, path: str) -> tuple[int, str]:
        """GET a probe or /metrics; (status, body), never raising on 503."""
        try:
            with urllib.request.urlopen(self.url(path), timeout=5) as response:
                return int(response.status), response.read().decode()
        except urllib.error.HTTPError as error:
            return int(error.code), error.read().decode()

    def metric(self, name: str, /, **labels: str) -> float | None:
        """A sample's value as scraped from /metrics (None when absent)."""
        _, text = self.get("/metrics")
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                    return float(sample.value)
        return None


    def metric_sum(self, name: str, /, **labels: str) -> float:
        """The samples of ``name`` that carry ``labels`` added up, whatever
        their other labels (0 when absent)."""
        _, text = self.get("/metrics")
        return sum(
            float(sample.value)
            for family in text_string_to_metric_families(text)
            for sample in family.samples
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items())
        )


StartController = Callable[..., RunningController]
"""``start_controller(wait_ready=True, **option_overrides)``."""


# --- what a user reads, through the plain client ------------------------------


class Cluster:
    """kubectl-like reads and edits of the objects a DISVC produces."""

    def __init__(self, kube: KubeEnv) -> None:
        self.kube = kube
        self.ns = kube.namespace
        self.core = client.CoreV1Api(kube.api_client)
        self.networking = client.NetworkingV1Api(kube.api_client)

    def raw(self, method: str, path: str, body: object = None, content_type: str = "application/json") -> Obj:
        return request_json(self.kube.api_client, method, path, body=body, content_type=content_type)

    def find(self, path: str) -> Obj | None:
        """GET an object; None while it does not exist (for polling)."""
        try:
            return self.raw("GET", path)
        except client.ApiException as error:
            if error.status == 404:
                return None
            raise

    def disvc(self, name: str) -> Obj:
        return self.raw("GET", self.disvcs_path(name))

    def disvcs_path(self, name: str = "", subresource: str = "") -> str:
        path = f"/apis/{GROUP}/{DISVC_VERSION}/namespaces/{self.ns}/{DISVC_PLURAL}"
        return "/".join(p for p in (path, name, subresource) if p)

    def isvcs_path(self, name: str = "") -> str:
        path = f"/apis/{GROUP}/{ISVC_VERSION}/namespaces/{self.ns}/{ISVC_PLURAL}"
        return f"{path}/{name}" if name else path

    def isvcs(self) -> dict[str, Obj]:
        listed = self.raw("GET", self.isvcs_path())
        return {i["metadata"]["name"]: i for i in listed["items"]}

    def isvc(self, name: str) -> Obj:
        return self.raw("GET", self.isvcs_path(name))

    def services(self) -> dict[str, Obj]:
        listed = self.raw("GET", f"/api/v1/namespaces/{self.ns}/services")
        return {s["metadata"]["name"]: s for s in listed["items"]}

    def ingresses(self) -> dict[str, Obj]:
        listed = self.raw("GET", f"/apis/networking.k8s.io/v1/namespaces/{self.ns}/ingresses")
        return {i["metadata"]["name"]: i for i in listed["items"]}

    def events(self, involved_name: str) -> list[Obj]:
        listed = self.raw("GET", f"/api/v1/namespaces/{self.ns}/events")
        return [e for e in listed["items"] if e.get("involvedObject", {}).get("name") == involved_name]

    def merge_patch_disvc(self, name: str, patch: Obj, subresource: str = "") -> Obj:
        return self.raw("PATCH", self.disvcs_path(name, subresource), body=patch,
                        content_type="application/merge-patch+json")

    def mark_isvc_ready(self, name: str, ready: bool = True) -> Obj:
        """Write the status KServe writes when the predictor is (not) up."""
        status = "True" if ready else "False"
        body = {"status": {
            "url": f"http://{name}-{self.ns}.example.com",
            "conditions": [
                {"type": "PredictorReady", "status": status, "lastTransitionTime": "2024-01-01T00:00:00Z"},
                {"type": "Ready", "status": status, "lastTransitionTime": "2024-01-01T00:00:00Z"},
            ],
        }}
        return self.raw("PATCH", f"{self.isvcs_path(name)}/status", body=body,
                        content_type="application/merge-patch+json")


def disvc_manifest(name: str, template: Obj, replicas: int, version: str, rollout: Obj | None = None,
                   scale_down_delay: int = 0) -> Obj:
    """A DISVC of ``template`` whose ``version`` annotation marks its
    generation; the generation traffic left goes at once (a delay of 0)
    unless a test asks for ``scale_down_delay``, so tests about something
    else need not wait it out."""
    spec: Obj = {
        "replicas": replicas,
        "annotations": {"version": version},
        "inferenceService": template,
        "rollout": {"scaleDownDelaySeconds": scale_down_delay, **(rollout or {})},
    }
    return {
        "apiVersion": f"{GROUP}/{DISVC_VERSION}",
        "kind": "DistributedInferenceService",
        "metadata": {"name": name},
        "spec": spec,
    }


def condition(obj: Obj, kind: str) -> Obj | None:
    for cond in (obj.get("status") or {}).get("conditions") or ():
        if cond.get("type") == kind:
            return dict(cond)
    return None
