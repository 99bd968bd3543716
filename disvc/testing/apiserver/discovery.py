"""API discovery: which groups, versions and resources the server serves.

``kubectl`` and dynamic clients find a resource's path, scope, verbs, short
names (``disvc``), categories (``kubectl get all``) and subresources here
before they make any request, and again when a name does not resolve. The
documents are the legacy discovery documents (``/api``, ``/apis``,
``/apis/<group>``, ``/api/v1`` and ``/apis/<group>/<version>``), built from
the registry on every request, so a CRD is discoverable as soon as it is
stored and gone as soon as it is deleted. A client that asks for aggregated
discovery gets these too and falls back to them, as it does with older
servers.
"""

from __future__ import annotations

import re

from disvc.testing.apiserver.resources import ALL_VERBS, Registry
from disvc.testing.apiserver.storage import Obj

_SUBRESOURCE_VERBS = ["get", "patch", "update"]
_CUSTOM_VERBS = ["delete", "deletecollection", "get", "list", "patch", "create", "update", "watch"]
"""The order the apiextensions server lists a custom resource's verbs in."""
_KUBE_VERSION = re.compile(r"^v(\d+)(?:(alpha|beta)(\d+))?$")


def version_priority(version: str) -> tuple[int, int, int, str]:
    """Sort key putting the version a client should prefer first (v2 > v1 > v1beta1 > v1alpha1)."""
    match = _KUBE_VERSION.match(version)
    if match is None:
        return (3, 0, 0, version)
    major, stage, minor = match.groups()
    rank = {None: 0, "beta": 1, "alpha": 2}[stage]
    return (rank, -int(major), -int(minor or 0), version)


def _group_versions(registry: Registry) -> dict[str, list[str]]:
    return {
        group: sorted(versions, key=version_priority)
        for group, versions in registry.group_versions().items()
    }


def api_versions(server_address: str) -> Obj:
    """``/api``: the core group's versions."""
    return {
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}],
    }


def api_group(registry: Registry, group: str) -> Obj | None:
    """``/apis/<group>``; None when the group is not served."""
    versions = _group_versions(registry).get(group)
    if not versions:
        return None
    entries = [{"groupVersion": f"{group}/{v}", "version": v} for v in versions]
    return {"kind": "APIGroup", "apiVersion": "v1", "name": group,
            "versions": entries, "preferredVersion": entries[0]}


def api_group_list(registry: Registry) -> Obj:
    """``/apis``: every served group."""
    groups = []
    for group in _group_versions(registry):
        doc = api_group(registry, group)
        if doc is not None:
            del doc["kind"], doc["apiVersion"]
            groups.append(doc)
    return {"kind": "APIGroupList", "apiVersion": "v1", "groups": groups}


def resource_list(registry: Registry, group: str, version: str) -> Obj | None:
    """``/api/v1`` or ``/apis/<group>/<version>``; None when not served."""
    types = [rt for rt in registry.types() if rt.group == group and rt.version == version]
    if not types:
        return None
    resources: list[Obj] = []
    for rt in types:
        entry: Obj = {
            "name": rt.plural,
            "singularName": rt.singular,
            "namespaced": rt.namespaced,
            "kind": rt.kind,
            "verbs": list(_CUSTOM_VERBS if rt.custom else ALL_VERBS),
        }
        if rt.short_names:
            entry["shortNames"] = list(rt.short_names)
        if rt.categories:
            entry["categories"] = list(rt.categories)
        resources.append(entry)
        if rt.status_subresource:
            resources.append({"name": f"{rt.plural}/status", "singularName": "", "namespaced": rt.namespaced,
                              "kind": rt.kind, "verbs": list(_SUBRESOURCE_VERBS)})
        if rt.scale is not None:
            resources.append({"name": f"{rt.plural}/scale", "singularName": "", "namespaced": rt.namespaced,
                              "group": "autoscaling", "version": "v1", "kind": "Scale",
                              "verbs": list(_SUBRESOURCE_VERBS)})
    return {
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": f"{group}/{version}" if group else version,
        "resources": resources,
    }


def document(registry: Registry, path: str, server_address: str) -> Obj | None:
    """The discovery document at ``path``; None if there is none."""
    parts = [p for p in path.split("/") if p]
    if parts == ["api"]:
        return api_versions(server_address)
    if parts == ["apis"]:
        return api_group_list(registry)
    if len(parts) == 2 and parts[0] == "api":
        return resource_list(registry, "", parts[1])
    if len(parts) == 2 and parts[0] == "apis":
        return api_group(registry, parts[1])
    if len(parts) == 3 and parts[0] == "apis":
        return resource_list(registry, parts[1], parts[2])
    return None
