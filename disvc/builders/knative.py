"""The Knative-mode shape of a DISVC's Services, and what Knative-mode ISVCs report.

In Knative mode each ISVC ``X`` is a Knative Service ``X-predictor``; every
change to it makes a new revision ``X-predictor-0000n`` with pods of its own,
and each pod runs Knative's queue-proxy in front of the model server. The
queue-proxy counts requests for the autoscaler and enforces concurrency
limits, timeouts and drain, so our Services must reach the pods through it:

- the target port is queue-proxy's *named* port ``queue-port`` (8012, or 8013
  when the model serves h2c: Knative names both ``queue-port``, so the name
  resolves per pod, ``pkg/reconciler/revision/resources/queue.go``), never
  the model container's 8080;
- the selector adds ``component: predictor`` (KServe's label, so a
  transformer's pods are not picked) and pins one revision number,
  ``serving.knative.dev/configurationGeneration``: Knative copies a
  revision's labels onto its pods (``revision/resources/meta.go``) and names
  revision ``n`` of a configuration ``<config>-0000n``
  (``configuration/resources/revision.go``). The pinned number is the newest
  one a Ready ISVC serves on its latest revision, so old revisions' pods get
  no requests from us and Knative can scale them away.

An ISVC counts as Ready in Knative mode only when KServe says ``Ready`` and
its latest created revision is its latest ready one with ready copies
(``is_serving_latest``). ``status.observedGeneration`` of a Knative-mode ISVC
is the Knative Service's generation (KServe copies it), so nothing here
compares it with the ISVC's ``metadata.generation``.

Scale to zero (``minReplicas: 0``) is refused: with no pods a selector
Service has no endpoints, and only Knative's activator, which we bypass,
could wake the revision. KServe also creates an ExternalName Service named
after every ISVC, ``N-v<g>-<i>``, so a DISVC named like another one's ISVC
(or like Knative's per-ISVC Services) is refused rather than fought over.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any, Final

from disvc.builders.protocol import ServingProtocol
from disvc.builders.spec import DisvcSpec, InvalidSpec
from disvc.builders.types import Obj

QUEUE_PORT_NAME: Final = "queue-port"
"""queue-proxy's serving port name, on 8012 (HTTP/1 and h2c) or 8013 (h2c)."""

COMPONENT_LABEL: Final = "component"
PREDICTOR: Final = "predictor"
CONFIGURATION_GENERATION_LABEL: Final = "serving.knative.dev/configurationGeneration"
REVISION_LABEL: Final = "serving.knative.dev/revision"
FIRST_REVISION: Final = 1

_REVISION_SUFFIX: Final = re.compile(r"-(\d{5,})$")
_KSERVE_NAME: Final = re.compile(
    r".+-v[1-9][0-9]*-(0|[1-9][0-9]*)(-(predictor|transformer|explainer)(-[0-9]{5,}(-private)?)?)?"
)


def serving_protocol(base: ServingProtocol) -> ServingProtocol:
    """``base`` (REST or gRPC, from the template) reached through queue-proxy."""
    return ServingProtocol(is_grpc=base.is_grpc, target_port=QUEUE_PORT_NAME)


def is_knative_protocol(protocol: ServingProtocol) -> bool:
    return protocol.target_port == QUEUE_PORT_NAME


def pod_selector(base: Mapping[str, str], isvcs: Iterable[Obj]) -> dict[str, str]:
    """``base`` narrowed to predictor pods of the revision number ``isvcs`` serve on."""
    return {
        **base,
        COMPONENT_LABEL: PREDICTOR,
        CONFIGURATION_GENERATION_LABEL: str(pinned_revision(isvcs)),
    }


def pinned_revision(isvcs: Iterable[Obj]) -> int:
    """The revision number to select: the newest any ISVC serves on its latest
    revision, else the newest created (it comes up next), else the first."""
    serving: list[int] = []
    created: list[int] = []
    for obj in isvcs:
        predictor = _predictor_status(obj)
        ready = revision_number(predictor.get("latestReadyRevision"))
        if ready is not None and is_serving_latest(obj):
            serving.append(ready)
        latest = revision_number(predictor.get("latestCreatedRevision"))
        if latest is not None:
            created.append(latest)
    if serving:
        return max(serving)
    return max(created) if created else FIRST_REVISION


def revision_number(revision: object) -> int | None:
    """``n`` in a revision name ``<configuration>-0000n``."""
    if not isinstance(revision, str):
        return None
    found = _REVISION_SUFFIX.search(revision)
    return int(found.group(1)) if found else None


def is_serving_latest(isvc: Obj) -> bool:
    """True when the predictor's latest revision is its ready one and has ready
    copies (``modelStatus.copies.totalCopies``, KServe's count of ready pods)."""
    predictor = _predictor_status(isvc)
    ready = predictor.get("latestReadyRevision")
    if not isinstance(ready, str) or not ready:
        return False
    created = predictor.get("latestCreatedRevision")
    if isinstance(created, str) and created and created != ready:
        return False
    status = isvc.get("status")
    model_status = status.get("modelStatus") if isinstance(status, Mapping) else None
    copies = model_status.get("copies") if isinstance(model_status, Mapping) else None
    if isinstance(copies, Mapping):
        total = copies.get("totalCopies", 0)
        return isinstance(total, int) and total > 0
    return True


def check_min_replicas(spec: DisvcSpec) -> None:
    """Refuse scale to zero in Knative mode (see the module docstring)."""
    predictor = spec.template.get("predictor")
    min_replicas = predictor.get("minReplicas") if isinstance(predictor, Mapping) else None
    if min_replicas == 0 and not isinstance(min_replicas, bool):
        raise InvalidSpec(
            f"{spec.template_field}.predictor.minReplicas",
            "0 (scale to zero) is not supported in Knative mode: the Services that keep "
            "each client on one replica reach the pods directly, so a replica scaled to "
            "zero has no endpoints and nothing wakes it (Knative's activator is bypassed); "
            "set minReplicas to 1 or more, or use Standard mode",
        )


def check_name(name: str) -> None:
    """Refuse a DISVC name that another DISVC's ISVCs use in Knative mode."""
    if _KSERVE_NAME.fullmatch(name):
        raise InvalidSpec(
            "metadata.name",
            f"{name!r} has the shape of another DistributedInferenceService's InferenceService "
            "(N-v<g>-<i>): in Knative mode KServe and Knative create Services of such names "
            "(N-v<g>-<i>, N-v<g>-<i>-predictor...) and overwrite a Service in their way; "
            "choose a name that does not end in -v<number>-<number>",
        )


def kept_status(isvc: Obj) -> dict[str, Any]:
    """The parts of an ISVC's status besides ``Ready`` that the builders read
    (``mode.reported``, ``is_serving_latest``, ``pinned_revision``), for a
    cache that keeps no more than it must."""
    status = isvc.get("status")
    if not isinstance(status, Mapping):
        return {}
    kept: dict[str, Any] = {}
    if "deploymentMode" in status:
        kept["deploymentMode"] = status["deploymentMode"]
    predictor = {
        key: value
        for key, value in _predictor_status(isvc).items()
        if key in ("latestReadyRevision", "latestCreatedRevision")
    }
    if predictor:
        kept["components"] = {"predictor": predictor}
    model_status = status.get("modelStatus")
    copies = model_status.get("copies") if isinstance(model_status, Mapping) else None
    if isinstance(copies, Mapping) and "totalCopies" in copies:
        kept["modelStatus"] = {"copies": {"totalCopies": copies["totalCopies"]}}
    return kept


def _predictor_status(isvc: Obj) -> Mapping[str, Any]:
    status = isvc.get("status")
    components = status.get("components") if isinstance(status, Mapping) else None
    predictor = components.get("predictor") if isinstance(components, Mapping) else None
    return predictor if isinstance(predictor, Mapping) else {}
