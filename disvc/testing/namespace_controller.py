"""Namespace deletion where no kube-controller-manager runs (envtest).

Deleting a Namespace only marks it Terminating: kube-apiserver keeps it, and
everything in it, until the namespace controller of kube-controller-manager
has emptied it and removed its ``kubernetes`` finalizer. envtest runs no
controller-manager, so without this module every test's objects would stay
for the rest of the session, and some of them hold what all namespaces
share: each ClusterIP Service keeps one address of the service range
(``envtest.DEFAULT_SERVICE_CLUSTER_IP_RANGE``, 254 of them) until it is
deleted. A real cluster frees them when the namespace goes; the loopback API
empties a deleted namespace itself (``apiserver/strategies/namespace.py``).

``finish_deletion`` does for one namespace what one pass of that controller
does, as kubernetes ``pkg/controller/namespace/deletion/namespaced_resources_deleter.go``
(``Delete``, ``deleteAllContent``, ``finalizeNamespace``) describes it:

1. nothing unless the namespace exists and carries a deletionTimestamp;
2. for each namespaced resource that discovery lists, in its group's
   preferred version, with the ``delete`` verb: ``deletecollection`` with
   propagation ``Background``, or list and delete each object when the
   resource does not offer ``deletecollection``;
3. list those resources again: objects still there (held by finalizers of
   their own) end the pass, and the namespace stays Terminating, as it would
   on a cluster until their finalizers are removed;
4. else remove the ``kubernetes`` finalizer through the ``finalize``
   subresource; the API server deletes a terminating namespace once it has
   no finalizers left.

The controller requeues a namespace with content left; a test fixture calls
this once and reports what was left instead.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from disvc.testing.rawapi import request_json

FINALIZER: Final = "kubernetes"
"""The namespace controller's token in ``spec.finalizers``."""

JsonObject = dict[str, Any]


@dataclass(frozen=True, slots=True)
class NamespacedResource:
    """One deletable namespaced resource type, as discovery lists it."""

    group_version: str
    plural: str
    verbs: frozenset[str]

    def collection_path(self, namespace: str) -> str:
        prefix = f"/api/{self.group_version}" if "/" not in self.group_version else f"/apis/{self.group_version}"
        return f"{prefix}/namespaces/{namespace}/{self.plural}"


def deletable_resources(api_client: client.ApiClient) -> list[NamespacedResource]:
    """Namespaced resources with the ``delete`` verb, each in its group's
    preferred version (discovery's ``ServerPreferredNamespacedResources``)."""
    group_versions = ["v1"]
    groups = request_json(api_client, "GET", "/apis")
    group_versions += [g["preferredVersion"]["groupVersion"] for g in groups.get("groups", [])]
    found = []
    for group_version in group_versions:
        path = f"/api/{group_version}" if group_version == "v1" else f"/apis/{group_version}"
        try:
            listing = request_json(api_client, "GET", path)
        except ApiException as error:
            if error.status in (404, 503):  # a group going away, or an aggregated API not answering
                continue
            raise
        for resource in listing.get("resources", []):
            verbs = frozenset(resource.get("verbs") or ())
            if resource.get("namespaced") and "/" not in resource["name"] and "delete" in verbs:
                found.append(NamespacedResource(group_version, resource["name"], verbs))
    return found


def finish_deletion(api_client: client.ApiClient, namespace: str) -> list[str]:
    """Empty a terminating namespace and release it (one pass, see the module
    doc); the ``plural/name`` of each object left behind, empty once the
    namespace is gone or on its way."""
    try:
        ns = request_json(api_client, "GET", f"/api/v1/namespaces/{namespace}")
    except ApiException as error:
        if error.status == 404:
            return []
        raise
    if not ns["metadata"].get("deletionTimestamp"):
        return []
    resources = deletable_resources(api_client)
    for resource in resources:
        _delete_all(api_client, resource, namespace)
    left = [
        f"{resource.plural}/{item['metadata']['name']}"
        for resource in resources
        if "list" in resource.verbs
        for item in _list(api_client, resource, namespace)
    ]
    if left:
        return left
    ns["spec"]["finalizers"] = [f for f in ns["spec"].get("finalizers") or () if f != FINALIZER]
    try:
        request_json(api_client, "PUT", f"/api/v1/namespaces/{namespace}/finalize", body=ns)
    except ApiException as error:
        if error.status != 404:  # 404: gone already
            raise
    return []


_BACKGROUND: Final = [("propagationPolicy", "Background")]


def _delete_all(api_client: client.ApiClient, resource: NamespacedResource, namespace: str) -> None:
    path = resource.collection_path(namespace)
    if "deletecollection" in resource.verbs:
        request_json(api_client, "DELETE", path, query=_BACKGROUND)
        return
    for item in _list(api_client, resource, namespace) if "list" in resource.verbs else ():
        try:
            request_json(api_client, "DELETE", f"{path}/{item['metadata']['name']}", query=_BACKGROUND)
        except ApiException as error:
            if error.status != 404:  # 404: deleted meanwhile
                raise


def _list(api_client: client.ApiClient, resource: NamespacedResource, namespace: str) -> list[JsonObject]:
    items: list[JsonObject] = request_json(api_client, "GET", resource.collection_path(namespace)).get("items", [])
    return items
