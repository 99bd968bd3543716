"""List and map shapes of a type: how server-side apply merges and owns them.

Structured merge needs to know, for every list of an object, whether it is
atomic (replaced whole), a set, or a map keyed by some fields, and which
maps are atomic. Built-in kinds declare it in their Go types
(:func:`builtin_list_keys`, trimmed to the kinds disvc writes); a custom
resource declares it in its schema's ``x-kubernetes-list-type``,
``x-kubernetes-list-map-keys`` and ``x-kubernetes-map-type``
(:func:`schema_list_keys`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from dataclasses import field as dataclass_field
from typing import Any, Final

__all__ = ["ListKeys", "ListShape", "builtin_list_keys", "schema_list_keys"]

ListKeys = Callable[[tuple[str, ...]], list[str] | None]
"""Shape of the lists of one kind: the path of a list (field names only, no
indexes or keys) -> the map keys of its items, ``[]`` for a set list, None for
an atomic list (replaced whole, owned as one field)."""



@dataclass(frozen=True, slots=True)
class ListShape:
    """A :data:`ListKeys` that also knows atomic maps and key defaults.

    Callable like a plain ``ListKeys``; the apply code asks the extra
    questions through ``getattr`` so a bare function still works.
    """

    lists: Callable[[tuple[str, ...]], list[str] | None]
    """List path -> map keys, ``[]`` for a set, None for atomic."""
    atomic_maps: Callable[[tuple[str, ...]], bool] = lambda names: False
    """Map path -> whether it is replaced whole (``x-kubernetes-map-type: atomic``)."""
    key_defaults: Callable[[tuple[str, ...]], dict[str, Any]] = lambda names: {}
    """List path -> defaults of its key fields (Service ports: protocol TCP)."""
    zero_structs: frozenset[tuple[str, ...]] = dataclass_field(default_factory=frozenset)
    """Struct paths a Go type always has (so an Update never "adds" them)."""

    def __call__(self, names: tuple[str, ...]) -> list[str] | None:
        return self.lists(names)


_METADATA_LISTS: Final[dict[tuple[str, ...], list[str]]] = {
    ("metadata", "ownerReferences"): ["uid"],
    ("metadata", "finalizers"): [],
}

_BUILTIN_MAP_LISTS: Final[dict[str, list[str]]] = {
    "containers": ["name"],
    "initContainers": ["name"],
    "ephemeralContainers": ["name"],
    "env": ["name"],
    "volumes": ["name"],
    "volumeMounts": ["mountPath"],
    "imagePullSecrets": ["name"],
    "conditions": ["type"],
}

_BUILTIN_ZERO_STRUCTS: Final[dict[str, frozenset[tuple[str, ...]]]] = {
    "Service": frozenset({("spec",), ("status",), ("status", "loadBalancer")}),
    "Ingress": frozenset({("spec",), ("status",), ("status", "loadBalancer")}),
    "Namespace": frozenset({("spec",), ("status",)}),
    "Lease": frozenset({("spec",)}),
    "Event": frozenset({("involvedObject",), ("source",)}),
}


def builtin_list_keys(kind: str) -> ListKeys:
    """List shapes of a built-in kind, as its Go types declare them."""

    def lists(names: tuple[str, ...]) -> list[str] | None:
        if names in _METADATA_LISTS:
            return list(_METADATA_LISTS[names])
        if kind == "Service" and names == ("spec", "ports"):
            return ["port", "protocol"]
        if kind == "Ingress" and names[:2] == ("spec",) + names[1:2] and names[1:2] in {("rules",), ("tls",)}:
            return None
        last = names[-1] if names else ""
        if last == "ports" and "containers" in names:
            return ["containerPort", "protocol"]
        keys = _BUILTIN_MAP_LISTS.get(last)
        return list(keys) if keys is not None else None

    def atomic_maps(names: tuple[str, ...]) -> bool:
        return bool(names) and names[-1] in {"selector", "nodeSelector"} and names[0] == "spec"

    def key_defaults(names: tuple[str, ...]) -> dict[str, Any]:
        return {"protocol": "TCP"} if names and names[-1] == "ports" else {}

    return ListShape(lists, atomic_maps, key_defaults, _BUILTIN_ZERO_STRUCTS.get(kind, frozenset()))


def schema_list_keys(openapi_schema: dict[str, Any]) -> ListKeys:
    """List shapes from a CRD's ``openAPIV3Schema`` (default: atomic lists).

    ``metadata`` follows ObjectMeta (ownerReferences keyed by uid, finalizers
    a set) whatever the schema says, as kube-apiserver does.
    """
    cache: dict[tuple[str, ...], dict[str, Any] | None] = {}

    def node(names: tuple[str, ...]) -> dict[str, Any] | None:
        if names in cache:
            return cache[names]
        found: dict[str, Any] | None
        if not names:
            found = openapi_schema
        else:
            parent = node(names[:-1])
            found = None
            while parent is not None and parent.get("type") == "array":
                parent = parent.get("items")
            if parent is not None:
                properties = parent.get("properties") or {}
                if names[-1] in properties:
                    found = properties[names[-1]]
                elif isinstance(parent.get("additionalProperties"), dict):
                    found = parent["additionalProperties"]
        cache[names] = found
        return found

    def lists(names: tuple[str, ...]) -> list[str] | None:
        if names in _METADATA_LISTS:
            return list(_METADATA_LISTS[names])
        schema = node(names)
        if schema is None:
            return None
        list_type = schema.get("x-kubernetes-list-type", "atomic")
        if list_type == "set":
            return []
        if list_type == "map":
            return list(schema.get("x-kubernetes-list-map-keys") or [])
        return None

    def atomic_maps(names: tuple[str, ...]) -> bool:
        schema = node(names)
        return schema is not None and (
            schema.get("x-kubernetes-map-type") == "atomic" or schema.get("x-kubernetes-struct-type") == "atomic"
        )

    def key_defaults(names: tuple[str, ...]) -> dict[str, Any]:
        schema = node(names)
        if schema is None:
            return {}
        item_properties = (schema.get("items") or {}).get("properties") or {}
        return {
            name: prop["default"]
            for name in schema.get("x-kubernetes-list-map-keys") or []
            if "default" in (prop := item_properties.get(name) or {})
        }

    return ListShape(lists, atomic_maps, key_defaults)
