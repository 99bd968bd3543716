"""Value types shared by every builder and by the reconciler.

Kubernetes objects stay JSON dicts exactly as the API returns them (``Obj``);
our own values are frozen dataclasses.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final, Literal, TypeAlias

Obj: TypeAlias = dict[str, Any]
"""A Kubernetes object as JSON (apiVersion, kind, metadata, spec, status)."""

DISVC_API_VERSION: Final = "serving.kserve.io/v1alpha1"
DISVC_KIND: Final = "DistributedInferenceService"
ISVC_API_VERSION: Final = "serving.kserve.io/v1beta1"
ISVC_KIND: Final = "InferenceService"
SERVICE_API_VERSION: Final = "v1"
SERVICE_KIND: Final = "Service"
INGRESS_API_VERSION: Final = "networking.k8s.io/v1"
INGRESS_KIND: Final = "Ingress"
HTTPROUTE_API_VERSION: Final = "gateway.networking.k8s.io/v1"
HTTPROUTE_KIND: Final = "HTTPRoute"
GRPCROUTE_API_VERSION: Final = "gateway.networking.k8s.io/v1"
GRPCROUTE_KIND: Final = "GRPCRoute"
CONTROLLER_REVISION_API_VERSION: Final = "apps/v1"
CONTROLLER_REVISION_KIND: Final = "ControllerRevision"

ChildKind: TypeAlias = Literal[
    "InferenceService", "Service", "Ingress", "HTTPRoute", "GRPCRoute", "ControllerRevision"
]
EventType: TypeAlias = Literal["Normal", "Warning"]


@dataclass(frozen=True, slots=True, order=True)
class ObjectKey:
    """Identifies a namespaced object; ``str()`` gives the ``namespace/name`` key."""

    namespace: str
    name: str

    def __str__(self) -> str:
        return f"{self.namespace}/{self.name}"

    @classmethod
    def parse(cls, key: str) -> ObjectKey:
        namespace, sep, name = key.partition("/")
        if not sep or not namespace or not name:
            raise ValueError(f"not a namespace/name key: {key!r}")
        return cls(namespace, name)

    @classmethod
    def of(cls, obj: Obj) -> ObjectKey:
        meta = obj["metadata"]
        return cls(meta.get("namespace", ""), meta["name"])


@dataclass(frozen=True, slots=True, order=True)
class ChildRef:
    """A live child to delete, with the preconditions that make the delete safe."""

    kind: ChildKind
    namespace: str
    name: str
    uid: str
    """Delete only this incarnation of the object (precondition)."""
    resource_version: str
    """Delete only if nobody changed it since we read it (precondition)."""


@dataclass(frozen=True, slots=True)
class EventSpec:
    """A core/v1 Event to record on the DISVC."""

    type: EventType
    reason: str
    message: str


_KIND_BY_API_VERSION: Final[dict[tuple[str, str], ChildKind]] = {
    (ISVC_API_VERSION, ISVC_KIND): "InferenceService",
    (SERVICE_API_VERSION, SERVICE_KIND): "Service",
    (INGRESS_API_VERSION, INGRESS_KIND): "Ingress",
    (HTTPROUTE_API_VERSION, HTTPROUTE_KIND): "HTTPRoute",
    (GRPCROUTE_API_VERSION, GRPCROUTE_KIND): "GRPCRoute",
    (CONTROLLER_REVISION_API_VERSION, CONTROLLER_REVISION_KIND): "ControllerRevision",
}


def child_kind(obj: Obj) -> ChildKind | None:
    """The kind of a live child, or None when it is none of ours.

    Items of a list response carry no ``kind``; for those the shape of the
    spec tells the child kinds apart."""
    kind = obj.get("kind")
    if kind is not None:
        api_version = obj.get("apiVersion")
        for (known_version, known_kind), child in _KIND_BY_API_VERSION.items():
            if kind == known_kind and (api_version is None or api_version == known_version):
                return child
        return None
    if "revision" in obj and "spec" not in obj:
        return "ControllerRevision"
    spec = obj.get("spec")
    if not isinstance(spec, dict):
        return None
    if "predictor" in spec:
        return "InferenceService"
    if "parentRefs" in spec or "hostnames" in spec:
        return "HTTPRoute"
    if "rules" in spec or "defaultBackend" in spec or "ingressClassName" in spec:
        return "Ingress"
    if "ports" in spec or "selector" in spec or "clusterIP" in spec or "type" in spec:
        return "Service"
    return None


def find_condition(status: object, type_: str) -> Mapping[str, Any] | None:
    """The entry of ``status.conditions`` with ``type == type_``, if there is one.

    Tolerates any shape: a status or condition list that is missing or not
    what the API defines yields None."""
    conditions = status.get("conditions") if isinstance(status, Mapping) else None
    if not isinstance(conditions, list):
        return None
    for condition in conditions:
        if isinstance(condition, Mapping) and condition.get("type") == type_:
            return condition
    return None
