"""CRD structural schemas: pruning, defaulting and OpenAPI v3 validation.

A custom resource is checked against its version's ``openAPIV3Schema`` the
way the apiextensions server does: unknown fields are pruned (kept under
``x-kubernetes-preserve-unknown-fields``), ``default``s fill absent fields,
then every keyword (:mod:`keywords`; list types and combinators here) and
every CEL rule (:mod:`cel`) is checked, messages as kube-openapi words them.
A schema is compiled once into a tree of :class:`_Node` so validating an
object costs a walk of the object, not of the (large: 39k-line KServe)
schema.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass, field
from typing import Any, Final

from disvc.testing.apiserver.validation import cel
from disvc.testing.apiserver.validation.causes import (
    Cause,
    duplicate,
    invalid,
    required,
)
from disvc.testing.apiserver.validation.keywords import Check, has_type, json_type, value_checks


@dataclass(slots=True)
class _Node:
    """One schema node with its checks precomputed."""

    type: str = ""
    nullable: bool = False
    int_or_string: bool = False
    preserve_unknown: bool = False
    embedded: bool = False
    properties: dict[str, _Node] = field(default_factory=dict)
    required: tuple[str, ...] = ()
    items: _Node | None = None
    additional: _Node | None = None
    has_default: bool = False
    default: Any = None
    checks: list[Check] = field(default_factory=list)
    rules: list[cel.Rule] = field(default_factory=list)
    list_type: str = "atomic"
    list_keys: tuple[str, ...] = ()
    all_of: list[_Node] = field(default_factory=list)
    any_of: list[_Node] = field(default_factory=list)
    one_of: list[_Node] = field(default_factory=list)
    not_: _Node | None = None


def _compile(schema: dict[str, Any]) -> _Node:
    node = _Node(
        type=str(schema.get("type") or ""),
        nullable=bool(schema.get("nullable")),
        int_or_string=bool(schema.get("x-kubernetes-int-or-string")),
        preserve_unknown=bool(schema.get("x-kubernetes-preserve-unknown-fields")),
        embedded=bool(schema.get("x-kubernetes-embedded-resource")),
        required=tuple(schema.get("required") or ()),
        has_default="default" in schema,
        default=schema.get("default"),
        list_type=str(schema.get("x-kubernetes-list-type") or "atomic"),
        list_keys=tuple(schema.get("x-kubernetes-list-map-keys") or ()),
    )
    for name, sub in (schema.get("properties") or {}).items():
        node.properties[name] = _compile(sub)
    if isinstance(schema.get("items"), dict):
        node.items = _compile(schema["items"])
    additional = schema.get("additionalProperties")
    if isinstance(additional, dict):
        node.additional = _compile(additional)
    elif additional is True:
        node.preserve_unknown = True
    node.checks = value_checks(schema)
    node.all_of = [_compile(s) for s in schema.get("allOf") or ()]
    node.any_of = [_compile(s) for s in schema.get("anyOf") or ()]
    node.one_of = [_compile(s) for s in schema.get("oneOf") or ()]
    if isinstance(schema.get("not"), dict):
        node.not_ = _compile(schema["not"])
    node.rules = cel.rules_of(schema)
    return node


_OBJECT_META_FIELDS: Final = frozenset(
    {
        "name",
        "generateName",
        "namespace",
        "selfLink",
        "uid",
        "resourceVersion",
        "generation",
        "creationTimestamp",
        "deletionTimestamp",
        "deletionGracePeriodSeconds",
        "labels",
        "annotations",
        "ownerReferences",
        "finalizers",
        "managedFields",
    }
)


def _child_path(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


class SchemaValidator:
    """Prune, default and validate custom resources against one CRD version.

    Compiled once per schema; the instance is immutable and may be shared
    between threads. CEL programs are cached process-wide by rule text.
    """

    def __init__(self, openapi_v3_schema: dict[str, Any]) -> None:
        self._root = _compile(openapi_v3_schema)

    # -- pruning -------------------------------------------------------------

    def prune(self, obj: dict[str, Any]) -> dict[str, Any]:
        """Drop fields the schema does not declare (structural pruning)."""
        pruned = self._prune(self._root, obj, is_root=True)
        assert isinstance(pruned, dict)
        return pruned

    def _prune(self, node: _Node, data: Any, *, is_root: bool = False) -> Any:
        if isinstance(data, dict):
            out: dict[str, Any] = {}
            keeps_meta = is_root or node.embedded
            for name, child in data.items():
                if keeps_meta and name in {"apiVersion", "kind"}:
                    out[name] = copy.deepcopy(child)
                elif keeps_meta and name == "metadata":
                    out[name] = _prune_object_meta(child, keep_all=not is_root and node.preserve_unknown)
                elif name in node.properties:
                    out[name] = self._prune(node.properties[name], child)
                elif node.additional is not None:
                    out[name] = self._prune(node.additional, child)
                elif node.preserve_unknown:
                    out[name] = copy.deepcopy(child)
            return out
        if isinstance(data, list):
            if node.items is None:
                return copy.deepcopy(data) if node.preserve_unknown or not node.type else data[:]
            return [self._prune(node.items, item) for item in data]
        return data

    # -- defaulting ----------------------------------------------------------

    def default(self, obj: dict[str, Any]) -> dict[str, Any]:
        """Apply schema defaults where the parent object exists.

        As Kubernetes does: a null in a non-nullable field is dropped (or
        replaced by its default), and defaults inside a defaulted value apply
        too.
        """
        defaulted = self._default(self._root, copy.deepcopy(obj))
        assert isinstance(defaulted, dict)
        return defaulted

    def _default(self, node: _Node, data: Any) -> Any:
        if isinstance(data, dict):
            for name, child_node in node.properties.items():
                present = name in data
                if present and data[name] is None and not child_node.nullable:
                    del data[name]
                    present = False
                if not present and child_node.has_default:
                    data[name] = copy.deepcopy(child_node.default)
                if name in data:
                    data[name] = self._default(child_node, data[name])
            if node.additional is not None:
                for name in list(data):
                    if name not in node.properties:
                        data[name] = self._default(node.additional, data[name])
        elif isinstance(data, list) and node.items is not None:
            return [self._default(node.items, item) for item in data]
        return data

    # -- validation ----------------------------------------------------------

    def validate(self, obj: dict[str, Any], old: dict[str, Any] | None = None) -> list[Cause]:
        """Every schema and CEL violation of obj (transition rules need old)."""
        causes: list[Cause] = []
        self._validate(self._root, obj, "", old, old is not None, causes, is_root=True)
        return causes

    def _validate(
        self,
        node: _Node,
        data: Any,
        path: str,
        old: Any,
        has_old: bool,
        causes: list[Cause],
        *,
        is_root: bool = False,
    ) -> None:
        if data is None:
            if not node.nullable and (node.type or node.int_or_string):
                wanted = "integer,string" if node.int_or_string else node.type
                causes.append(
                    Cause(
                        "FieldValueTypeInvalid",
                        path,
                        f'Invalid value: "null": {path} in body must be of type {wanted}: "null"',
                    )
                )
            return
        if node.int_or_string:
            if not (has_type(data, "integer") or isinstance(data, str)):
                actual = json_type(data)
                causes.append(
                    Cause(
                        "FieldValueTypeInvalid",
                        path,
                        f"Invalid value: {json.dumps(actual)}: {path} in body must be of type integer,string: {json.dumps(actual)}",
                    )
                )
                return
        elif node.type and not has_type(data, node.type):
            actual = json_type(data)
            causes.append(
                Cause(
                    "FieldValueTypeInvalid",
                    path,
                    f"Invalid value: {json.dumps(actual)}: {path} in body must be of type {node.type}: {json.dumps(actual)}",
                )
            )
            return
        for check in node.checks:
            causes.extend(check(data, path))
        self._validate_combinators(node, data, path, causes)
        if isinstance(data, dict):
            for name in node.required:
                if name not in data:
                    causes.append(required(_child_path(path, name)))
            old_map = old if has_old and isinstance(old, dict) else None
            for name, child in data.items():
                if is_root and name in {"apiVersion", "kind", "metadata"} and name not in node.properties:
                    continue
                child_node = node.properties.get(name) or node.additional
                if child_node is None:
                    continue
                child_has_old = old_map is not None and name in old_map
                self._validate(
                    child_node,
                    child,
                    _child_path(path, name),
                    old_map.get(name) if old_map is not None else None,
                    child_has_old,
                    causes,
                )
        elif isinstance(data, list):
            self._validate_list(node, data, path, old if has_old else None, causes)
        if node.rules:
            shown_type = node.type or ("integer,string" if node.int_or_string else "")
            causes.extend(cel.evaluate(node.rules, data, path, old, has_old, shown_type))

    def _validate_list(self, node: _Node, data: list[Any], path: str, old: Any, causes: list[Cause]) -> None:
        old_items: dict[str, Any] = {}
        if node.list_type == "map" and isinstance(old, list):
            for item in old:
                if isinstance(item, dict):
                    old_items[_map_key(item, node.list_keys)] = item
        seen: set[str] = set()
        for index, item in enumerate(data):
            item_path = f"{path}[{index}]"
            if node.list_type in {"set", "map"}:
                identity = (
                    _map_key(item, node.list_keys)
                    if node.list_type == "map" and isinstance(item, dict)
                    else json.dumps(item, sort_keys=True)
                )
                if identity in seen:
                    shown = {k: item.get(k) for k in node.list_keys} if node.list_type == "map" else item
                    causes.append(duplicate(item_path, shown))
                seen.add(identity)
            if node.items is None:
                continue
            key = _map_key(item, node.list_keys) if node.list_type == "map" and isinstance(item, dict) else None
            has_old = key is not None and key in old_items
            self._validate(node.items, item, item_path, old_items.get(key) if key else None, has_old, causes)

    def _validate_combinators(self, node: _Node, data: Any, path: str, causes: list[Cause]) -> None:
        def passes(branch: _Node) -> bool:
            found: list[Cause] = []
            self._validate(branch, data, path, None, False, found)
            return not found

        for branch in node.all_of:
            self._validate(branch, data, path, None, False, causes)
        if node.any_of and not any(passes(b) for b in node.any_of):
            causes.append(invalid(path, data, f"{path} in body must validate at least one schema (anyOf)"))
        if node.one_of and sum(passes(b) for b in node.one_of) != 1:
            causes.append(invalid(path, data, f"{path} in body must validate one and only one schema (oneOf)"))
        if node.not_ is not None and passes(node.not_):
            causes.append(invalid(path, data, f"{path} in body must not validate the schema (not)"))


def _map_key(item: dict[str, Any], keys: tuple[str, ...]) -> str:
    return json.dumps([item.get(k) for k in keys])


def _prune_object_meta(meta: Any, *, keep_all: bool) -> Any:
    if not isinstance(meta, dict) or keep_all:
        return copy.deepcopy(meta)
    return {name: copy.deepcopy(v) for name, v in meta.items() if name in _OBJECT_META_FIELDS}
