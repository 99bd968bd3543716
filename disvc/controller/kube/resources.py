"""The API surface: which kinds the controller touches, where they are served,
and exactly which calls it may make on them.

``RESOURCES`` maps a kind to its group, version and plural. ``_PERMITTED``
lists, per verb, the (kind, subresource) pairs the client may use; every
client method asks ``resource`` first and refuses anything else. So the
table is exactly what the controller can call, and ``API_CALLS`` (the RBAC
rules that follow from it) cannot drift from the code: a test compares the
ClusterRole in ``config/rbac`` against it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final, Literal, TypeAlias
from urllib.parse import quote

from disvc.builders.types import (
    CONTROLLER_REVISION_KIND,
    DISVC_KIND,
    GRPCROUTE_KIND,
    HTTPROUTE_KIND,
    INGRESS_KIND,
    ISVC_KIND,
    SERVICE_KIND,
)

Verb: TypeAlias = Literal["get", "list", "watch", "create", "update", "patch", "delete"]

LEASE_KIND: Final = "Lease"
CRD_KIND: Final = "CustomResourceDefinition"
EVENT_KIND: Final = "Event"
TOKEN_REVIEW_KIND: Final = "TokenReview"
SUBJECT_ACCESS_REVIEW_KIND: Final = "SubjectAccessReview"


@dataclass(frozen=True, slots=True)
class Resource:
    """Where a kind is served."""

    group: str
    """API group; ``""`` for the core group."""
    version: str
    plural: str
    """The resource name in URLs and RBAC rules."""
    kind: str
    namespaced: bool

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    def path(self, namespace: str | None = None, name: str | None = None, subresource: str | None = None) -> str:
        """The URL path of the collection, or of one object (and subresource)."""
        prefix = f"/apis/{self.group}/{self.version}" if self.group else f"/api/{self.version}"
        parts = [prefix]
        if self.namespaced and namespace:
            parts.append(f"namespaces/{quote(namespace, safe='')}")
        parts.append(self.plural)
        if name is not None:
            parts.append(quote(name, safe=""))
            if subresource:
                parts.append(subresource)
        return "/".join(parts)


@dataclass(frozen=True, slots=True, order=True)
class ApiCall:
    """One permission the controller needs: an RBAC rule's group, resource, verb."""

    group: str
    resource: str
    """Plural, with ``/subresource`` when the call targets one."""
    verb: str


RESOURCES: Final[Mapping[str, Resource]] = {
    r.kind: r
    for r in (
        Resource("serving.kserve.io", "v1alpha1", "distributedinferenceservices", DISVC_KIND, True),
        Resource("serving.kserve.io", "v1beta1", "inferenceservices", ISVC_KIND, True),
        Resource("", "v1", "services", SERVICE_KIND, True),
        Resource("networking.k8s.io", "v1", "ingresses", INGRESS_KIND, True),
        Resource("gateway.networking.k8s.io", "v1", "httproutes", HTTPROUTE_KIND, True),
        Resource("gateway.networking.k8s.io", "v1", "grpcroutes", GRPCROUTE_KIND, True),
        # one per generation that served, holding its template (history.py)
        Resource("apps", "v1", "controllerrevisions", CONTROLLER_REVISION_KIND, True),
        # Read only, by name: whether the Gateway API route CRDs are installed,
        # and whether they serve sessionPersistence (gateway_api.py).
        Resource("apiextensions.k8s.io", "v1", "customresourcedefinitions", CRD_KIND, False),
        Resource("coordination.k8s.io", "v1", "leases", LEASE_KIND, True),
        # core/v1 Events: the form `kubectl describe` shows and the
        # EventRecorder contract names.
        Resource("", "v1", "events", EVENT_KIND, True),
        # Reviews are never stored: a create asks the API server a question
        # (who holds this token, may they do that) and the answer comes back.
        Resource("authentication.k8s.io", "v1", "tokenreviews", TOKEN_REVIEW_KIND, False),
        Resource("authorization.k8s.io", "v1", "subjectaccessreviews", SUBJECT_ACCESS_REVIEW_KIND, False),
    )
}

_CHILDREN: Final = frozenset(
    {ISVC_KIND, SERVICE_KIND, INGRESS_KIND, HTTPROUTE_KIND, GRPCROUTE_KIND, CONTROLLER_REVISION_KIND}
)
_WATCHED: Final = frozenset({DISVC_KIND, CRD_KIND, *_CHILDREN})

_PERMITTED: Final[Mapping[Verb, frozenset[tuple[str, str | None]]]] = {
    "get": frozenset({(k, None) for k in _WATCHED | {LEASE_KIND}}),
    "list": frozenset({(k, None) for k in _WATCHED}),
    "watch": frozenset({(k, None) for k in _WATCHED}),
    "patch": frozenset({(k, None) for k in _CHILDREN} | {(DISVC_KIND, "status"), (EVENT_KIND, None)}),
    "delete": frozenset({(k, None) for k in _CHILDREN}),
    "create": frozenset(
        {(k, None) for k in _CHILDREN | {EVENT_KIND, LEASE_KIND, TOKEN_REVIEW_KIND, SUBJECT_ACCESS_REVIEW_KIND}}
    ),
    "update": frozenset({(LEASE_KIND, None)}),
}


def resource(kind: str, verb: Verb, subresource: str | None = None) -> Resource:
    """The kind's Resource, if ``verb`` on it is a call the controller may make."""
    if (kind, subresource) not in _PERMITTED[verb]:
        raise ValueError(f"the controller does not {verb} {kind}{'/' + subresource if subresource else ''}")
    return RESOURCES[kind]


def _api_calls() -> frozenset[ApiCall]:
    calls = set()
    for verb, targets in _PERMITTED.items():
        for kind, subresource in targets:
            res = RESOURCES[kind]
            plural = f"{res.plural}/{subresource}" if subresource else res.plural
            calls.add(ApiCall(res.group, plural, verb))
            if verb == "patch" and subresource is None:
                # Server-side apply of an absent object creates it, and the API
                # server authorizes that PATCH as "create" too.
                calls.add(ApiCall(res.group, plural, "create"))
    # Children name their DISVC with blockOwnerDeletion: clusters running the
    # OwnerReferencesPermissionEnforcement admission plugin (OpenShift does)
    # require the writer to be allowed to update the owner's finalizers.
    disvc = RESOURCES[DISVC_KIND]
    calls.add(ApiCall(disvc.group, f"{disvc.plural}/finalizers", "update"))
    return frozenset(calls)


API_CALLS: Final[frozenset[ApiCall]] = _api_calls()
"""Every (group, resource[/subresource], verb) the controller can call."""
