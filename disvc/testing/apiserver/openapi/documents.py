"""The OpenAPI documents of the served types: v3 per group-version, v2 as one.

``kubectl explain`` reads ``/openapi/v3/apis/<group>/<version>`` (or
``api/v1``), finds the operation of the resource's path to learn its kind,
then the schema carrying that ``x-kubernetes-group-version-kind``.
``kubectl apply`` reads the PATCH operations to learn that the server
validates fields itself (``fieldValidation``), and the v2 document
(``/openapi/v2``) for patch strategies and client-side validation.

Custom resources are published as the API server publishes them: the CRD
version's schema with ``apiVersion``, ``kind`` and a reference to
``ObjectMeta`` filled in, under a name built from the reversed group
(``io.kserve.serving.v1alpha1.DistributedInferenceService``), plus its list
kind. Built-in kinds come from :mod:`.schemas`. Every document is built from
the registry when asked for, so it follows CRDs as they change; the v3
index carries a hash of each document so caching clients refetch only what
changed.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable
from typing import Any, Final

from disvc.testing.apiserver.openapi import protobuf, schemas
from disvc.testing.apiserver.openapi.schemas import LIST_META, OBJECT_META, Obj, ref
from disvc.testing.apiserver.resources import Registry, ResourceType

_V3_PREFIX: Final = "#/components/schemas/"
_V2_PREFIX: Final = "#/definitions/"
_PATCH_TYPES: Final = (
    "application/json-patch+json", "application/merge-patch+json",
    "application/strategic-merge-patch+json", "application/apply-patch+yaml",
)
_QUERY: Final[dict[str, tuple[str, str]]] = {
    "dryRun": ("string", "All: process every stage of the request but persist nothing."),
    "fieldManager": ("string", "The name of the writer, for field ownership."),
    "fieldValidation": ("string", "Ignore, Warn or Strict: what to do with unknown or duplicate fields."),
    "force": ("boolean", "Apply only: take over fields other managers own."),
    "pretty": ("string", "Indent the output."),
}
_WRITE_PARAMS: Final = ("dryRun", "fieldManager", "fieldValidation")


def definition_name(rt: ResourceType) -> str:
    """The definition name of a type's kind."""
    if not rt.custom:
        name = schemas.BUILTIN_KINDS.get((rt.group, rt.version, rt.kind))
        if name is not None:
            return name
    reversed_group = ".".join(reversed(rt.group.split("."))) if rt.group else "core"
    return f"{reversed_group}.{rt.version}.{rt.kind}"


def _custom_schema(rt: ResourceType) -> Obj:
    root: Obj = json.loads(json.dumps(rt.schema or {}))  # a deep copy; quicker than copy.deepcopy
    root.setdefault("type", "object")
    properties = root.setdefault("properties", {})
    properties["apiVersion"] = schemas.string("The versioned schema of this representation of an object.")
    properties["kind"] = schemas.string("The REST resource this object represents, in CamelCase.")
    properties["metadata"] = ref(OBJECT_META, "Standard object's metadata.")
    root["x-kubernetes-group-version-kind"] = schemas.gvk(rt.group, rt.version, rt.kind)
    return root


def _unwritten(rt: ResourceType) -> Obj:
    """A built-in kind whose fields :mod:`.schemas` does not spell out: findable, not explained."""
    schema = schemas.type_meta(f"{rt.kind} ({rt.api_version}).", {}, rt.group, rt.version, rt.kind)
    schema["x-kubernetes-preserve-unknown-fields"] = True
    return schema


def _kind_definitions(rt: ResourceType) -> dict[str, Obj]:
    """The definitions of one type: its kind and its list kind."""
    name = definition_name(rt)
    kind = _custom_schema(rt) if rt.custom else schemas.DEFINITIONS.get(name) or _unwritten(rt)
    return {
        name: kind,
        name + "List": schemas.list_of(name, f"{rt.list_kind} is a list of {rt.kind}", rt.group, rt.version, rt.kind),
    }


def _referenced(node: Any, found: set[str]) -> None:
    if isinstance(node, dict):
        target = node.get("$ref")
        if isinstance(target, str) and target.startswith(_V3_PREFIX):
            name = target[len(_V3_PREFIX):]
            if name not in found and name in schemas.DEFINITIONS:
                found.add(name)
                _referenced(schemas.DEFINITIONS[name], found)
        for value in node.values():
            _referenced(value, found)
    elif isinstance(node, list):
        for value in node:
            _referenced(value, found)


def _definitions(types: Iterable[ResourceType]) -> dict[str, Obj]:
    """The kinds of ``types`` and every definition they reference."""
    defs: dict[str, Obj] = {}
    for rt in types:
        defs.update(_kind_definitions(rt))
        if rt.scale is not None:
            defs["io.k8s.api.autoscaling.v1.Scale"] = schemas.DEFINITIONS["io.k8s.api.autoscaling.v1.Scale"]
    found: set[str] = set()
    _referenced([defs, ref(OBJECT_META), ref(LIST_META)], found)
    for name in sorted(found):
        defs.setdefault(name, schemas.DEFINITIONS[name])
    return defs


# --- paths -----------------------------------------------------------------------


def _gvk(rt: ResourceType, kind: str | None = None) -> Obj:
    return {"group": rt.group, "version": rt.version, "kind": kind or rt.kind}


def _operation(rt: ResourceType, action: str, target: str, params: tuple[str, ...], *, kind: str | None = None) -> Obj:
    return {
        "operationId": f"{action}{rt.kind}",
        "description": f"{action} {kind or rt.kind}",
        "parameters": [
            {"name": p, "in": "query", "description": _QUERY[p][1], "schema": {"type": _QUERY[p][0]}}
            for p in ("pretty", *params)
        ],
        "responses": {"200": {"description": "OK", "content": {"application/json": {"schema": ref(target)}}}},
        "x-kubernetes-action": action,
        "x-kubernetes-group-version-kind": _gvk(rt, kind),
    }


def _patch(rt: ResourceType, target: str, *, kind: str | None = None) -> Obj:
    op = _operation(rt, "patch", target, (*_WRITE_PARAMS, "force"), kind=kind)
    accepted = _PATCH_TYPES if not rt.custom else tuple(t for t in _PATCH_TYPES if "strategic" not in t)
    op["requestBody"] = {"content": {t: {"schema": {"type": "object"}} for t in accepted}}
    return op


def _paths(rt: ResourceType) -> dict[str, Obj]:
    base = f"/apis/{rt.group}/{rt.version}" if rt.group else f"/api/{rt.version}"
    collection = f"{base}/namespaces/{{namespace}}/{rt.plural}" if rt.namespaced else f"{base}/{rt.plural}"
    name = definition_name(rt)
    paths: dict[str, Obj] = {
        collection: {
            "get": _operation(rt, "list", name + "List", ()),
            "post": _operation(rt, "post", name, _WRITE_PARAMS),
            "delete": _operation(rt, "deletecollection", name + "List", ("dryRun",)),
        },
        f"{collection}/{{name}}": {
            "get": _operation(rt, "get", name, ()),
            "put": _operation(rt, "put", name, _WRITE_PARAMS),
            "patch": _patch(rt, name),
            "delete": _operation(rt, "delete", name, ("dryRun",)),
        },
    }
    if rt.namespaced:
        paths[f"{base}/{rt.plural}"] = {"get": _operation(rt, "list", name + "List", ())}
    if rt.status_subresource:
        paths[f"{collection}/{{name}}/status"] = {
            "get": _operation(rt, "get", name, ()),
            "put": _operation(rt, "put", name, _WRITE_PARAMS),
            "patch": _patch(rt, name),
        }
    if rt.scale is not None:
        scale = "io.k8s.api.autoscaling.v1.Scale"
        paths[f"{collection}/{{name}}/scale"] = {
            "get": _operation(rt, "get", scale, (), kind="Scale"),
            "put": _operation(rt, "put", scale, _WRITE_PARAMS, kind="Scale"),
            "patch": _patch(rt, scale, kind="Scale"),
        }
    return paths


# --- v3 -------------------------------------------------------------------------------


def _gv_key(group: str, version: str) -> str:
    return f"apis/{group}/{version}" if group else f"api/{version}"


def _by_group_version(registry: Registry) -> dict[str, list[ResourceType]]:
    found: dict[str, list[ResourceType]] = {}
    for rt in registry.types():
        found.setdefault(_gv_key(rt.group, rt.version), []).append(rt)
    return found


def v3_group_version(registry: Registry, key: str, server_version: str) -> Obj | None:
    """The v3 document of one group-version (``api/v1``, ``apis/<g>/<v>``); None if not served."""
    types = _by_group_version(registry).get(key.strip("/"))
    if not types:
        return None
    paths: dict[str, Obj] = {}
    for rt in types:
        paths.update(_paths(rt))
    return {
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes", "version": server_version},
        "paths": paths,
        "components": {"schemas": _definitions(types)},
    }


def group_version_keys(registry: Registry) -> list[str]:
    """Every served group-version, as the v3 index names them (``api/v1``, ``apis/<g>/<v>``)."""
    return sorted(_by_group_version(registry))


# --- v2 -------------------------------------------------------------------------------


def _to_v2(node: Any, *, custom: bool) -> Any:
    """A v3 schema as Swagger 2.0 has it (and as kubectl's v2 parser accepts it)."""
    if isinstance(node, list):
        return [_to_v2(v, custom=custom) for v in node]
    if not isinstance(node, dict):
        return node
    all_of = node.get("allOf")
    if isinstance(all_of, list) and len(all_of) == 1 and "$ref" in all_of[0] and "properties" not in node:
        out: Obj = {"$ref": all_of[0]["$ref"].replace(_V3_PREFIX, _V2_PREFIX)}
        if node.get("description"):
            out["description"] = node["description"]
        return out
    if "$ref" in node:
        return {"$ref": str(node["$ref"]).replace(_V3_PREFIX, _V2_PREFIX)}
    dropped = {"nullable", "oneOf", "anyOf", "not", "allOf", "x-kubernetes-validations"}
    out = {k: _to_v2(v, custom=custom) for k, v in node.items() if k not in dropped}
    if node.get("x-kubernetes-int-or-string"):
        out.pop("type", None)
        out.pop("format", None)
    if custom and node.get("x-kubernetes-preserve-unknown-fields"):
        # kubectl would reject fields a schema that keeps unknown fields does not list
        return {k: v for k, v in out.items() if k == "description" or k.startswith("x-")}
    if out.get("type") == "array" and not isinstance(out.get("items"), dict):
        out["items"] = {}
    return out


def _v2_operation(op: Obj) -> Obj:
    out: Obj = {k: v for k, v in op.items() if k not in ("requestBody", "responses", "parameters")}
    out["parameters"] = [
        {"name": p["name"], "in": "query", "type": p["schema"]["type"], "description": p["description"]}
        for p in op.get("parameters") or []
    ]
    out["produces"] = ["application/json", "application/yaml"]
    out["consumes"] = list((op.get("requestBody") or {}).get("content") or ["*/*"])
    out["responses"] = {"200": {"description": "OK"}}
    return out


def v2(registry: Registry, server_version: str) -> Obj:
    """``/openapi/v2``: one Swagger 2.0 document of every served type."""
    types = registry.types()
    paths: dict[str, Obj] = {}
    definitions: dict[str, Obj] = {}
    for rt in types:
        for path, item in _paths(rt).items():
            paths[path] = {method: _v2_operation(op) for method, op in item.items()}
        for name, schema in _definitions([rt]).items():
            definitions[name] = _to_v2(schema, custom=rt.custom and not name.startswith("io.k8s."))
    return {"swagger": "2.0", "info": {"title": "Kubernetes", "version": server_version},
            "paths": paths, "definitions": definitions}


class Publisher:
    """The documents of one registry, built once per revision of its served set."""

    def __init__(self, registry: Registry, server_version: str) -> None:
        self._registry = registry
        self._version = server_version
        self._revision = -1
        self._cache: dict[str, Any] = {}

    def _cached(self, key: str, build: Callable[[], Any]) -> Any:
        if self._registry.revision != self._revision:
            self._cache.clear()
            self._revision = self._registry.revision
        if key not in self._cache:
            self._cache[key] = build()
        return self._cache[key]

    def v2_json(self) -> bytes:
        return bytes(self._cached("v2.json", lambda: _dump(self._v2())))

    def v2_protobuf(self) -> bytes:
        return bytes(self._cached("v2.pb", lambda: protobuf.document(self._v2())))

    def _v2(self) -> Obj:
        doc: Obj = self._cached("v2", lambda: v2(self._registry, self._version))
        return doc

    def v3_index(self) -> bytes:
        """``/openapi/v3``: each group-version's document, with a hash of its content."""
        def build() -> bytes:
            index: dict[str, Obj] = {}
            for key in group_version_keys(self._registry):
                body = self.v3_group_version(key)
                if body is not None:
                    digest = hashlib.sha512(body).hexdigest()[:64].upper()
                    index[key] = {"serverRelativeURL": f"/openapi/v3/{key}?hash={digest}"}
            return _dump({"paths": index})

        return bytes(self._cached("v3", build))

    def v3_group_version(self, key: str) -> bytes | None:
        def build() -> bytes | None:
            doc = v3_group_version(self._registry, key, self._version)
            return None if doc is None else _dump(doc)

        found: bytes | None = self._cached(f"v3/{key.strip('/')}", build)
        return found


def _dump(doc: Obj) -> bytes:
    return json.dumps(doc, separators=(",", ":")).encode()
