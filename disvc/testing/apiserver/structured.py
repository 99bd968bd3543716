"""Structured merge: what server-side apply does to objects, field by field.

structured-merge-diff sees an object as a set of field paths (``fieldsV1``,
:mod:`fieldpath`), shaped by the type's list and map kinds
(:mod:`listtypes`): :func:`field_set` lists the paths an object sets,
:func:`compare` finds what an update added, changed or removed,
:func:`merge` lays an applied configuration over the live object, and
:func:`remove` drops the fields a manager stopped applying. Field ownership
and conflicts are :mod:`apply`'s; these functions only walk objects, and
never mutate their inputs.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from dataclasses import field as dataclass_field
from typing import Any, Final, Literal

from disvc.testing.apiserver import fieldpath
from disvc.testing.apiserver.fieldpath import FieldSet, Path
from disvc.testing.apiserver.listtypes import ListKeys

_MISSING: Final = object()

STRIPPED_META: Final = frozenset(
    {
        "name",
        "namespace",
        "uid",
        "resourceVersion",
        "generation",
        "creationTimestamp",
        "deletionTimestamp",
        "deletionGracePeriodSeconds",
        "managedFields",
        "selfLink",
    }
)
"""ObjectMeta fields no manager ever owns (the server sets them)."""


@dataclass(slots=True)
class Walk:
    """How to walk one kind's objects: list shapes and ignored fields."""

    list_keys: ListKeys
    subresource: str
    status_subresource: bool

    def list_type(self, names: tuple[str, ...]) -> Literal["atomic", "set", "map"]:
        keys = self.list_keys(names)
        if keys is None:
            return "atomic"
        return "map" if keys else "set"

    def is_atomic_map(self, names: tuple[str, ...]) -> bool:
        check: Callable[[tuple[str, ...]], bool] | None = getattr(self.list_keys, "atomic_maps", None)
        return check is not None and check(names)

    def item_key(self, names: tuple[str, ...], item: Any) -> str | None:
        keys = self.list_keys(names) or []
        if not isinstance(item, dict):
            return None
        defaults: Callable[[tuple[str, ...]], dict[str, Any]] | None = getattr(self.list_keys, "key_defaults", None)
        fallback = defaults(names) if defaults is not None else {}
        values = {name: item.get(name, fallback.get(name)) for name in keys}
        return fieldpath.key({name: val for name, val in values.items() if val is not None})

    def is_zero_struct(self, names: tuple[str, ...]) -> bool:
        return names in getattr(self.list_keys, "zero_structs", frozenset())

    def is_ignored_top(self, name: str) -> bool:
        """Top-level fields outside this endpoint's field management."""
        if name in {"apiVersion", "kind"}:
            return True
        if self.subresource == "status":
            return name not in {"status", "metadata"}
        return name == "status" and self.status_subresource

    def children(self, obj: Any, names: tuple[str, ...]) -> Iterable[tuple[str, str, Any]]:
        """(path element, field name or "" for items, child) of a granular node."""
        if isinstance(obj, dict):
            for name, child in obj.items():
                if not names and self.is_ignored_top(name):
                    continue
                if names == ("metadata",) and name in STRIPPED_META:
                    continue
                yield fieldpath.field(name), name, child
        elif isinstance(obj, list):
            list_type = self.list_type(names)
            for item in obj:
                if list_type == "set":
                    yield fieldpath.value(item), "", item
                else:
                    element = self.item_key(names, item)
                    if element is not None:
                        yield element, "", item

    def is_granular(self, obj: Any, names: tuple[str, ...]) -> bool:
        if isinstance(obj, dict):
            return bool(obj) and (not names or not self.is_atomic_map(names))
        if isinstance(obj, list):
            return bool(obj) and self.list_type(names) != "atomic"
        return False


def field_set(walk: Walk, obj: Any) -> FieldSet:
    """The fields an applied configuration sets (structured-merge-diff ToFieldSet)."""
    members: set[Path] = set()

    def visit(node: Any, path: Path, names: tuple[str, ...], is_item: bool) -> None:
        if not walk.is_granular(node, names):
            if path:
                members.add(path)
            return
        if is_item:
            members.add(path)
        item_list = isinstance(node, list)
        for element, name, child in walk.children(node, names):
            child_names = names if item_list else names + (name,)
            visit(child, path + (element,), child_names, item_list and isinstance(child, dict))

    visit(obj, (), (), False)
    return frozenset(members)


@dataclass(slots=True)
class _Comparison:
    added: set[Path] = dataclass_field(default_factory=set)
    modified: set[Path] = dataclass_field(default_factory=set)
    removed: set[Path] = dataclass_field(default_factory=set)


def compare(walk: Walk, old: Any, new: Any) -> _Comparison:
    """Which fields an old -> new change added, modified and removed."""
    result = _Comparison()

    def mark(target: set[Path], path: Path, names: tuple[str, ...]) -> None:
        # metadata itself and a Go kind's always-present structs are never owned.
        if path and names != ("metadata",) and not walk.is_zero_struct(names):
            target.add(path)

    def visit(before: Any, after: Any, path: Path, names: tuple[str, ...]) -> None:
        granular_before = before is not _MISSING and walk.is_granular(before, names)
        granular_after = after is not _MISSING and walk.is_granular(after, names)
        if not granular_before and not granular_after:
            if before is _MISSING and after is not _MISSING:
                mark(result.added, path, names)
            elif after is _MISSING and before is not _MISSING:
                mark(result.removed, path, names)
            elif before != after or type(before) is not type(after):
                mark(result.modified, path, names)
            return
        # A container appearing or vanishing is itself added or removed (the
        # ``.: {}`` of an Update entry); null counts as absent.
        absent_before = before is _MISSING or before is None
        absent_after = after is _MISSING or after is None
        if absent_before and not absent_after:
            mark(result.added, path, names)
        elif absent_after and not absent_before:
            mark(result.removed, path, names)
        elif type(before) is not type(after):
            mark(result.modified, path, names)
        before_children = _indexed(walk, before, names) if granular_before else {}
        after_children = _indexed(walk, after, names) if granular_after else {}
        is_list = isinstance(after if granular_after else before, list)
        for element in list(before_children) + [e for e in after_children if e not in before_children]:
            name_b, child_b = before_children.get(element, ("", _MISSING))
            name_a, child_a = after_children.get(element, ("", _MISSING))
            child_names = names if is_list else names + (name_a or name_b,)
            visit(child_b, child_a, path + (element,), child_names)

    visit(old, new, (), ())
    return result


def _is_empty(data: Any) -> bool:
    return data is None or data == {} or data == []


def _indexed(walk: Walk, obj: Any, names: tuple[str, ...]) -> dict[str, tuple[str, Any]]:
    return {element: (name, child) for element, name, child in walk.children(obj, names)}


def merge(walk: Walk, live: Any, config: Any, names: tuple[str, ...]) -> Any:
    """Merge an applied configuration into the live object (config wins)."""
    if isinstance(live, dict) and isinstance(config, dict) and (not names or not walk.is_atomic_map(names)):
        out = dict(live)
        for name, change in config.items():
            out[name] = merge(walk, live[name], change, names + (name,)) if name in live else copy.deepcopy(change)
        return out
    if isinstance(live, list) and isinstance(config, list) and walk.list_type(names) != "atomic":
        return _merge_list(walk, live, config, names)
    return copy.deepcopy(config)


def _merge_list(walk: Walk, live: list[Any], config: list[Any], names: tuple[str, ...]) -> list[Any]:
    """Item-wise merge: live-only items keep their place, config items keep config order."""
    set_list = walk.list_type(names) == "set"

    def element(item: Any) -> str | None:
        return fieldpath.value(item) if set_list else walk.item_key(names, item)

    config_items = [(element(item), item) for item in config]
    config_by_element = {e: item for e, item in config_items if e is not None}
    live_by_element = {element(item): item for item in live}
    out: list[Any] = []
    emitted: set[str | None] = set()
    pending = iter(config_items)

    def emit_config_until(stop: str | None) -> None:
        for e, item in pending:
            if e in emitted:
                continue
            emitted.add(e)
            out.append(merge(walk, live_by_element[e], item, names) if e in live_by_element else copy.deepcopy(item))
            if e == stop:
                return

    for item in live:
        e = element(item)
        if e in config_by_element:
            if e not in emitted:
                emit_config_until(e)
        else:
            out.append(item)
    emit_config_until(None)
    return out


def remove(walk: Walk, obj: dict[str, Any], paths: Iterable[Path], protected: set[Path]) -> dict[str, Any]:
    """Remove fields from obj, then the named parents the removal left empty.

    structured-merge-diff treats the struct fields above an applier's fields
    as the applier's too, so emptying one removes it; ``protected`` paths
    (owned by someone, or holding owned fields) stay. Top-level fields stay.
    """
    out = copy.deepcopy(obj)
    for path in sorted(paths, key=len, reverse=True):
        trail: list[Any] = [out]
        for element in path:
            found = _child(trail[-1], element)
            if found is _MISSING:
                break
            trail.append(found)
        else:
            _delete_child(trail[-2], path[-1])
            for depth in range(len(path) - 1, 1, -1):
                parent_path = path[:depth]
                emptied = trail[depth]
                if emptied != {} or not parent_path[-1].startswith("f:") or parent_path in protected:
                    break
                _delete_child(trail[depth - 1], parent_path[-1])
    return out


def _child(node: Any, element: str) -> Any:
    if isinstance(node, dict) and element.startswith("f:"):
        return node.get(element[2:], _MISSING)
    if isinstance(node, list):
        for item in node:
            if _item_element(item, element) == element:
                return item
    return _MISSING


def _item_element(item: Any, element: str) -> str | None:
    if element.startswith("v:"):
        return fieldpath.value(item)
    if element.startswith("k:") and isinstance(item, dict):
        wanted = json.loads(element[2:])
        return element if all(item.get(name, value) == value for name, value in wanted.items()) else None
    return None


def _delete_child(node: Any, element: str) -> None:
    if isinstance(node, dict):
        node.pop(element[2:], None)
    elif isinstance(node, list):
        node[:] = [item for item in node if _item_element(item, element) != element]
