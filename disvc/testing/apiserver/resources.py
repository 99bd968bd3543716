"""Which resource types the loopback API server serves, and its discovery.

A :class:`ResourceType` holds what the request handlers need to know about
one served group/version/resource: its kind, scope, subresources, and the
strategy choices the real API server makes per type (does it track
``metadata.generation``, may PUT create, must PUT carry a resourceVersion).

The built-in types are the ones disvc and its tests touch.  A
CustomResourceDefinition adds one type per served version when it is
created, and removes them when it is deleted, as the real apiextensions
server does. Discovery (:mod:`discovery`) and OpenAPI (:mod:`openapi`)
documents are generated from the registry, so ``kubectl`` and dynamic clients
see the same set as the handlers serve.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Final

Obj = dict[str, Any]

ALL_VERBS: Final = ("create", "delete", "deletecollection", "get", "list", "patch", "update", "watch")
_NAME_FIELDS: Final = frozenset({"metadata.name", "metadata.namespace"})


@dataclass(frozen=True, slots=True)
class ScalePaths:
    """Where a CRD keeps the numbers its ``scale`` subresource exposes."""

    spec_replicas: str
    status_replicas: str
    label_selector: str | None = None


@dataclass(frozen=True, slots=True)
class ResourceType:
    """One served group/version/resource and the strategy it follows."""

    group: str
    version: str
    plural: str
    kind: str
    namespaced: bool
    singular: str = ""
    short_names: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    status_subresource: bool = False
    """Writes to the main resource ignore ``.status``; ``/status`` writes only it."""
    scale: ScalePaths | None = None
    tracks_generation: bool = False
    """Bump ``metadata.generation`` when anything but metadata/status changes."""
    allow_create_on_update: bool = False
    allow_unconditional_update: bool = True
    """PUT without ``metadata.resourceVersion`` is accepted (not for CRs)."""
    custom: bool = False
    """Served by the apiextensions machinery (a custom resource)."""
    schema: Obj | None = field(default=None, compare=False, hash=False)
    """The version's ``openAPIV3Schema`` (custom resources only)."""
    field_labels: frozenset[str] = _NAME_FIELDS
    printer_columns: tuple[Obj, ...] = field(default=(), compare=False, hash=False)
    """The CRD version's ``additionalPrinterColumns`` (custom resources only)."""

    @property
    def key(self) -> str:
        """Storage key: version-independent, as objects are stored once."""
        return f"{self.group}/{self.plural}"

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def list_kind(self) -> str:
        return f"{self.kind}List"

    @property
    def qualified_resource(self) -> str:
        """``services`` or ``ingresses.networking.k8s.io``, as error messages say."""
        return f"{self.plural}.{self.group}" if self.group else self.plural

    @property
    def qualified_kind(self) -> str:
        """``Service`` or ``Ingress.networking.k8s.io``, as Invalid messages say."""
        return f"{self.kind}.{self.group}" if self.group else self.kind

    @property
    def subresources(self) -> tuple[str, ...]:
        subs: list[str] = []
        if self.status_subresource:
            subs.append("status")
        if self.scale is not None:
            subs.append("scale")
        return tuple(subs)


def _builtin_types() -> list[ResourceType]:
    return [
        ResourceType(
            "", "v1", "namespaces", "Namespace", False, "namespace", ("ns",),
            status_subresource=True,
            field_labels=_NAME_FIELDS | {"status.phase"},
        ),
        ResourceType(
            "", "v1", "services", "Service", True, "service", ("svc",), ("all",),
            status_subresource=True,
        ),
        ResourceType("", "v1", "configmaps", "ConfigMap", True, "configmap", ("cm",)),
        ResourceType(
            "", "v1", "secrets", "Secret", True, "secret",
            field_labels=_NAME_FIELDS | {"type"},
        ),
        ResourceType(
            "", "v1", "events", "Event", True, "event", ("ev",),
            allow_create_on_update=True,
            field_labels=_NAME_FIELDS | {
                "involvedObject.kind", "involvedObject.namespace", "involvedObject.name",
                "involvedObject.uid", "involvedObject.apiVersion",
                "involvedObject.resourceVersion", "involvedObject.fieldPath",
                "reason", "reportingComponent", "source", "type",
            },
        ),
        ResourceType(
            "events.k8s.io", "v1", "events", "Event", True, "event", ("ev",),
            allow_create_on_update=True,
            field_labels=_NAME_FIELDS | {
                "regarding.kind", "regarding.namespace", "regarding.name", "regarding.uid",
                "reason", "reportingController", "type",
            },
        ),
        ResourceType(
            "networking.k8s.io", "v1", "ingresses", "Ingress", True, "ingress", ("ing",),
            status_subresource=True, tracks_generation=True,
        ),
        ResourceType("apps", "v1", "controllerrevisions", "ControllerRevision", True, "controllerrevision"),
        ResourceType(
            "coordination.k8s.io", "v1", "leases", "Lease", True, "lease",
            allow_create_on_update=True,
        ),
        ResourceType(
            "apiextensions.k8s.io", "v1", "customresourcedefinitions",
            "CustomResourceDefinition", False, "customresourcedefinition", ("crd", "crds"),
            status_subresource=True, tracks_generation=True,
            allow_unconditional_update=False,
        ),
    ]


class CrdError(ValueError):
    """A CRD this server cannot serve (reported to the client as Invalid)."""

    def __init__(self, field_path: str, message: str) -> None:
        super().__init__(message)
        self.field_path = field_path


def crd_types(crd: Obj) -> list[ResourceType]:
    """The resource types one CRD serves (one per served version)."""
    spec = crd.get("spec") or {}
    names = spec.get("names") or {}
    group = spec.get("group") or ""
    plural = names.get("plural") or ""
    kind = names.get("kind") or ""
    if not group or not plural or not kind:
        raise CrdError("spec.names", "group, names.plural and names.kind are required")
    expected = f"{plural}.{group}"
    if crd["metadata"].get("name") != expected:
        raise CrdError("metadata.name", f"must be spec.names.plural+\".\"+spec.group ({expected!r})")
    scope = spec.get("scope")
    if scope not in ("Namespaced", "Cluster"):
        raise CrdError("spec.scope", 'supported values: "Cluster", "Namespaced"')
    versions = spec.get("versions") or []
    if not versions:
        raise CrdError("spec.versions", "must have exactly one version marked as storage version")
    if sum(1 for v in versions if v.get("storage")) != 1:
        raise CrdError("spec.versions", "must have exactly one version marked as storage version")
    types: list[ResourceType] = []
    for version in versions:
        if not version.get("served", False):
            continue
        subresources = version.get("subresources") or {}
        scale_spec = subresources.get("scale")
        scale = None
        if scale_spec is not None:
            scale = ScalePaths(
                scale_spec.get("specReplicasPath", ".spec.replicas"),
                scale_spec.get("statusReplicasPath", ".status.replicas"),
                scale_spec.get("labelSelectorPath"),
            )
        schema = (version.get("schema") or {}).get("openAPIV3Schema") or {}
        types.append(
            ResourceType(
                group, version["name"], plural, kind, scope == "Namespaced",
                names.get("singular") or kind.lower(),
                tuple(names.get("shortNames") or ()), tuple(names.get("categories") or ()),
                status_subresource="status" in subresources,
                scale=scale,
                tracks_generation=True,
                allow_unconditional_update=False,
                custom=True,
                schema=schema,
                printer_columns=tuple(version.get("additionalPrinterColumns") or ()),
            )
        )
    return types


class Registry:
    """Every served resource type, looked up by (group, version, plural)."""

    def __init__(self, extra_builtins: Iterable[ResourceType] = ()) -> None:
        self._types: dict[tuple[str, str, str], ResourceType] = {}
        self._builtin_groups: list[tuple[str, str]] = []
        self._by_crd: dict[str, list[ResourceType]] = {}
        self.revision = 0
        """Bumped whenever the served set changes (a CRD served, changed or dropped)."""
        for rt in [*_builtin_types(), *extra_builtins]:
            self._types[(rt.group, rt.version, rt.plural)] = rt
            if rt.group and (rt.group, rt.version) not in self._builtin_groups:
                self._builtin_groups.append((rt.group, rt.version))

    def lookup(self, group: str, version: str, plural: str) -> ResourceType | None:
        return self._types.get((group, version, plural))

    def builtin(self, key: str) -> ResourceType | None:
        """The built-in type stored under ``key`` (``group/plural``)."""
        for rt in self._types.values():
            if not rt.custom and rt.key == key:
                return rt
        return None

    def custom_types(self) -> list[ResourceType]:
        """Every type served for a CRD."""
        return [rt for types in self._by_crd.values() for rt in types]

    def serve_crd(self, crd: Obj) -> list[ResourceType]:
        """Start (or update) serving a CRD's versions; returns the new types."""
        types = crd_types(crd)
        self.unserve_crd(crd["metadata"]["name"])
        for rt in types:
            self._types[(rt.group, rt.version, rt.plural)] = rt
        self._by_crd[crd["metadata"]["name"]] = types
        self.revision += 1
        return types

    def unserve_crd(self, name: str) -> list[ResourceType]:
        types = self._by_crd.pop(name, [])
        for rt in types:
            self._types.pop((rt.group, rt.version, rt.plural), None)
        self.revision += 1
        return types

    def crd_types(self, name: str) -> list[ResourceType]:
        return list(self._by_crd.get(name, []))

    def types(self) -> list[ResourceType]:
        """Every served type: built-ins first, then CRDs in the order they came."""
        return list(self._types.values())

    def group_versions(self) -> dict[str, list[str]]:
        """Served API groups (not the core group) -> their versions, preferred first."""
        groups: dict[str, list[str]] = {}
        for group, version in self._builtin_groups:
            groups.setdefault(group, []).append(version)
        for types in self._by_crd.values():
            for rt in types:
                versions = groups.setdefault(rt.group, [])
                if rt.version not in versions:
                    versions.append(rt.version)
        return groups


VERSION_INFO: Final[Obj] = {
    "major": "1",
    "minor": "30",
    "gitVersion": "v1.30.0-disvc-loopback",
    "gitCommit": "0000000000000000000000000000000000000000",
    "gitTreeState": "clean",
    "buildDate": "2024-04-17T00:00:00Z",
    "goVersion": "go1.22.2",
    "compiler": "gc",
    "platform": "linux/amd64",
}
