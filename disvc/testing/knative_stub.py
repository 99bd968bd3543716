"""A stand-in for KServe's controller with Knative Serving: its objects and its status.

Next to ``kserve_stub`` (Standard mode), this plays KServe and Knative for
InferenceServices whose mode is Knative. The mode of each ISVC is chosen as
KServe chooses it (``GetDeploymentMode`` in KServe's
``controller/v1beta1/inferenceservice/utils/utils.go``): ``status.deploymentMode``
once set, else the ``serving.kserve.io/deploymentMode`` annotation (either
spelling), else ``default_mode`` (KServe's ConfigMap default). Standard-mode
ISVCs get what today's stub writes, plus ``status.deploymentMode: Standard``.

For a Knative-mode ISVC ``X`` at ``metadata.generation`` ``n`` it creates the
core Services the two controllers create (``research/knative-mode.md``):

- ``X``: KServe's ExternalName to the local gateway, controlled by the ISVC
  and without labels (``ingress_reconciler.go`` ``reconcileExternalService``);
- ``X-predictor``: the Knative Route's ExternalName Service;
- ``X-predictor-0000n`` (no selector) and ``X-predictor-0000n-private``
  (selecting ``serving.knative.dev/revision``, port 80 to ``queue-port``):
  revision ``n``'s Services. Knative puts the ISVC's labels on these, so
  they carry ``disvc`` and ``disvc.group`` like the pods do.

With ``pods`` (a :class:`~disvc.testing.dataplane.launcher.PodLauncher`)
each Knative-mode ISVC's pods are revision ``n``'s: Knative's revision
labels, queue-proxy's ``queue-port`` and a queue-proxy hop in front of the
model server that counts requests per revision; Standard-mode ISVCs get a
Deployment's pods as with ``kserve_stub``. Without Knative Serving
(``knative_installed=False``) a Knative-mode ISVC gets none.

Knative's Route, Configuration, Revision and PodAutoscaler are left out:
their CRDs are not installed here. The ISVC owns every Service written, so
the garbage collector removes them with it (in Knative the Route and the
Revision own theirs; either way they go with the ISVC).

The status is KServe's for a Knative-mode ISVC: ``deploymentMode: Knative``,
the conditions ``PredictorRouteReady``, ``PredictorConfigurationReady``,
``LatestDeploymentReady``, ``RoutesReady``, ``PredictorReady``,
``IngressReady`` and ``Ready``; ``components.predictor`` with
``latestCreatedRevision``, ``latestReadyRevision``, ``latestRolledoutRevision``
and ``traffic``; ``modelStatus.copies.totalCopies`` (ready pods: ``min_replicas``
of the predictor, default 1); ``observedGeneration`` the Knative Service's
generation, which this stand-in keeps equal to the ISVC's (a Configuration
makes revision ``n`` for its ``n``-th template, and every ISVC spec change
is one). With ``knative_installed=False`` it does what KServe does without the
Knative Service CRD (``ServerlessModeRejected``): it records the mode in the
status and builds nothing.
"""

from __future__ import annotations

import logging
from typing import Any, Final

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from disvc.testing.kserve_stub import GROUP, PLURAL, VERSION, JsonObject, KServeStub, _Due, _now

MODE_ANNOTATION: Final = "serving.kserve.io/deploymentMode"
MODES: Final = {"Standard": "Standard", "RawDeployment": "Standard", "Knative": "Knative", "Serverless": "Knative"}
"""KServe's ``ParseDeploymentMode``: the current names and the ones before v0.16."""
LOCAL_GATEWAY: Final = "knative-local-gateway.istio-system.svc.cluster.local"
REVISION_LABEL: Final = "serving.knative.dev/revision"
CONFIGURATION_GENERATION_LABEL: Final = "serving.knative.dev/configurationGeneration"
QUEUE_PORT_NAME: Final = "queue-port"
KNATIVE_CONDITIONS: Final = (
    "PredictorRouteReady",
    "PredictorConfigurationReady",
    "LatestDeploymentReady",
    "RoutesReady",
    "PredictorReady",
    "IngressReady",
    "Ready",
)

log = logging.getLogger(__name__)


def revision_name(isvc_name: str, number: int) -> str:
    """Knative's ``<configuration>-0000n``; KServe's configuration is ``X-predictor``."""
    return f"{isvc_name}-predictor-{number:05d}"


def revision_labels(isvc_name: str, number: int) -> dict[str, str]:
    """The labels Knative puts on revision ``number``'s Services and pods."""
    return {
        "serving.knative.dev/configuration": f"{isvc_name}-predictor",
        "serving.knative.dev/service": f"{isvc_name}-predictor",
        CONFIGURATION_GENERATION_LABEL: str(number),
        REVISION_LABEL: revision_name(isvc_name, number),
    }


def mode_of(isvc: JsonObject, default_mode: str) -> str:
    """The mode KServe picks for ``isvc`` (see the module docstring)."""
    recorded = MODES.get((isvc.get("status") or {}).get("deploymentMode", ""))
    if recorded is not None:
        return recorded
    annotated = MODES.get(((isvc.get("metadata") or {}).get("annotations") or {}).get(MODE_ANNOTATION, ""))
    return annotated or default_mode


class KnativeKServeStub(KServeStub):
    """KServe in front of Knative Serving, for ISVCs in Knative mode."""

    def __init__(
        self,
        api_client: client.ApiClient,
        default_mode: str = "Knative",
        knative_installed: bool = True,
        **kwargs: Any,
    ) -> None:
        if default_mode not in ("Standard", "Knative"):
            raise ValueError(f"unknown mode {default_mode!r}")
        super().__init__(api_client, **kwargs)
        self.default_mode = default_mode
        self.knative_installed = knative_installed
        self._core = client.CoreV1Api(self._client)
        self._isvcs: dict[str, JsonObject] = {}
        """uid -> the newest state seen, for its labels, annotations and mode."""

    def _observe(self, isvc: JsonObject) -> None:
        uid = (isvc.get("metadata") or {}).get("uid", "")
        with self._lock:
            self._isvcs[uid] = isvc
        super()._observe(isvc)

    def _forget(self, isvc: JsonObject) -> None:
        with self._lock:
            self._isvcs.pop((isvc.get("metadata") or {}).get("uid", ""), None)
        super()._forget(isvc)

    def _ensure_pods(self, isvc: JsonObject) -> None:
        assert self.pods is not None
        if mode_of(isvc, self.default_mode) == "Standard":
            self.pods.ensure(isvc)
        elif self.knative_installed:
            from disvc.testing.dataplane.launcher import KnativeRevision

            meta = isvc["metadata"]
            generation = int(meta.get("generation", 0))
            name = revision_name(meta["name"], generation)
            self.pods.ensure(isvc, KnativeRevision(name, revision_labels(meta["name"], generation)))

    def _has_verdict(self, isvc: JsonObject, generation: int) -> bool:
        if mode_of(isvc, self.default_mode) == "Knative" and not self.knative_installed:
            return (isvc.get("status") or {}).get("deploymentMode") == "Knative"
        return super()._has_verdict(isvc, generation)

    def _write_status(self, due: _Due, failure: tuple[str, str] | None = None) -> None:
        with self._lock:
            isvc = self._isvcs.get(due.uid)
        if isvc is None:
            raise ApiException(status=404, reason="forgotten")
        mode = mode_of(isvc, self.default_mode)
        if mode == "Standard":
            status = self.status_for(due.namespace, due.name, due.generation, failure)
            status["deploymentMode"] = "Standard"
        elif not self.knative_installed:
            status = {"deploymentMode": "Knative"}
        else:
            self._ensure_services(isvc, due.generation)
            status = self.knative_status_for(isvc, due.generation, failure)
        self._api.patch_namespaced_custom_object_status(
            GROUP, VERSION, due.namespace, PLURAL, due.name, {"status": status},
            _content_type="application/merge-patch+json",
        )  # fmt: skip
        self.marked += 1

    def knative_status_for(
        self, isvc: JsonObject, generation: int, failure: tuple[str, str] | None = None
    ) -> JsonObject:
        """What KServe reports for a Knative-mode ISVC whose revision ``generation``
        is ready (or, with ``failure``, failed: the previous revision keeps serving)."""
        meta = isvc["metadata"]
        name, namespace = meta["name"], meta["namespace"]
        now = _now()
        if failure is None and self.mode == "fail":
            failure = ("RevisionFailed", "Revision failed: stub in mode fail")
        latest = revision_name(name, generation)
        ready_number = generation if failure is None else generation - 1
        predictor: JsonObject = {
            "latestCreatedRevision": latest,
            "url": f"http://{name}-predictor-{namespace}.{self.domain}",
            "address": {"url": f"http://{name}-predictor.{namespace}.svc.cluster.local"},
        }
        if ready_number >= 1:
            ready = revision_name(name, ready_number)
            predictor["latestReadyRevision"] = ready
            predictor["latestRolledoutRevision"] = ready
            predictor["traffic"] = [{"revisionName": ready, "latestRevision": True, "percent": 100}]
        if failure is None:
            conditions = [{"type": kind, "status": "True", "lastTransitionTime": now} for kind in KNATIVE_CONDITIONS]
        else:
            reason, message = failure
            conditions = [
                {"type": kind, "status": "False", "reason": reason, "message": message, "lastTransitionTime": now}
                for kind in ("LatestDeploymentReady", "PredictorConfigurationReady", "PredictorReady", "Ready")
            ]
        copies = _min_replicas(isvc) if failure is None else 0
        return {
            "deploymentMode": "Knative",
            "observedGeneration": generation,
            "url": f"http://{name}-{namespace}.{self.domain}",
            "address": {"url": f"http://{name}.{namespace}.svc.cluster.local"},
            "conditions": conditions,
            "components": {"predictor": predictor},
            "modelStatus": {
                "transitionStatus": "UpToDate" if failure is None else "BlockedByFailedLoad",
                "copies": {"failedCopies": 0 if failure is None else 1, "totalCopies": copies},
            },
        }

    # --- the Services KServe and Knative create ---------------------------

    def _ensure_services(self, isvc: JsonObject, generation: int) -> None:
        meta = isvc["metadata"]
        name, namespace = meta["name"], meta["namespace"]
        labels = dict(meta.get("labels") or {})
        labels["serving.kserve.io/inferenceservice"] = name
        labels["component"] = "predictor"
        revision = revision_name(name, generation)
        knative_labels = {**labels, **revision_labels(name, generation)}
        owner = {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": "InferenceService",
            "name": name,
            "uid": meta["uid"],
            "controller": True,
            "blockOwnerDeletion": True,
        }
        external = {"type": "ExternalName", "externalName": LOCAL_GATEWAY, "sessionAffinity": "None"}
        self._upsert(namespace, name, {}, owner, external, overwrite=True)
        self._upsert(namespace, f"{name}-predictor", labels, owner, external)
        self._upsert(
            namespace,
            revision,
            knative_labels,
            owner,
            {"ports": [_port("http", 80, 80), _port("https", 443, 443)]},
        )
        self._upsert(
            namespace,
            f"{revision}-private",
            knative_labels,
            owner,
            {
                "selector": {REVISION_LABEL: revision},
                "ports": [
                    _port("http", 80, QUEUE_PORT_NAME),
                    _port("https", 443, 8112),
                    _port("http-autometric", 9090, 9090),
                    _port("http-usermetric", 9091, 9091),
                    _port("http-queueadm", 8022, 8022),
                ],
            },
        )

    def _upsert(
        self,
        namespace: str,
        name: str,
        labels: dict[str, str],
        owner: JsonObject,
        spec: JsonObject,
        overwrite: bool = False,
    ) -> None:
        """Create the Service; an existing one is left alone, except KServe's
        ExternalName ``X``, which KServe overwrites whoever wrote it."""
        body: JsonObject = {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": name, "namespace": namespace, "ownerReferences": [owner]},
            "spec": spec,
        }
        if labels:
            body["metadata"]["labels"] = labels
        try:
            self._core.create_namespaced_service(namespace, body)  # type: ignore[arg-type]
        except ApiException as error:
            if error.status != 409:
                raise
            if overwrite:
                try:
                    self._core.patch_namespaced_service(
                        name, namespace, {"spec": spec}, _content_type="application/merge-patch+json"
                    )
                except ApiException as refused:
                    log.debug("Knative stub could not take Service %s/%s: %s", namespace, name, refused.status)


def _port(name: str, port: int, target: int | str) -> JsonObject:
    return {"name": name, "port": port, "protocol": "TCP", "targetPort": target}


def _min_replicas(isvc: JsonObject) -> int:
    predictor = (isvc.get("spec") or {}).get("predictor") or {}
    value = predictor.get("minReplicas")
    return value if isinstance(value, int) and not isinstance(value, bool) else 1
