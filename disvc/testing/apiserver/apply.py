"""Server-side apply and ``metadata.managedFields``, as structured-merge-diff does them.

An apply merges the manager's configuration into the live object and records
which fields each manager owns (``fieldsV1`` from :mod:`fieldpath`); a
field another manager owns is a conflict unless forced. Every other write
updates ownership too (:func:`record_update`). How lists and maps merge comes
from the type's :data:`listtypes.ListKeys`; the patch algorithms are
:mod:`patch`.

Everything here is pure: inputs are never mutated, the clock is passed in as
``now``, and a conflict is an :class:`ApplyConflict` the server answers 409
with ``FieldManagerConflict`` causes.

What the server is expected to do around these functions:
- check ``metadata.resourceVersion``/``uid`` preconditions of an apply body
  before calling :func:`server_side_apply` (the body's copies are ignored);
- set uid, resourceVersion, generation and creationTimestamp afterwards;
- for a write to the main resource of a kind with a status subresource, keep
  the old ``status``; for ``/status``, keep everything but ``status`` and
  ``metadata``. Field ownership already ignores the other half (pass
  ``status_subresource=False`` for a CRD without the status subresource).
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

__all__ = ["ApplyConflict", "record_update", "server_side_apply"]


class ApplyConflict(Exception):
    """An apply would change fields another manager owns (and force was off)."""

    def __init__(self, conflicts: list[tuple[str, str]]) -> None:
        self.conflicts = conflicts
        """(manager, field path like ``.spec.replicas``), sorted."""
        described = ", ".join(f'conflict with "{manager}": {path}' for manager, path in conflicts)
        super().__init__(f"Apply failed with {len(conflicts)} conflict(s): {described}")


# --------------------------------------------------------------------------
# Structured merge: field sets, comparison, merge, removal

_MISSING: Final = object()

_STRIPPED_META: Final = frozenset(
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
class _Walk:
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
                if names == ("metadata",) and name in _STRIPPED_META:
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


def _field_set(walk: _Walk, obj: Any) -> FieldSet:
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


def _compare(walk: _Walk, old: Any, new: Any) -> _Comparison:
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


def _indexed(walk: _Walk, obj: Any, names: tuple[str, ...]) -> dict[str, tuple[str, Any]]:
    return {element: (name, child) for element, name, child in walk.children(obj, names)}


def _merge(walk: _Walk, live: Any, config: Any, names: tuple[str, ...]) -> Any:
    """Merge an applied configuration into the live object (config wins)."""
    if isinstance(live, dict) and isinstance(config, dict) and (not names or not walk.is_atomic_map(names)):
        out = dict(live)
        for name, change in config.items():
            out[name] = _merge(walk, live[name], change, names + (name,)) if name in live else copy.deepcopy(change)
        return out
    if isinstance(live, list) and isinstance(config, list) and walk.list_type(names) != "atomic":
        return _merge_list(walk, live, config, names)
    return copy.deepcopy(config)


def _merge_list(walk: _Walk, live: list[Any], config: list[Any], names: tuple[str, ...]) -> list[Any]:
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
            out.append(_merge(walk, live_by_element[e], item, names) if e in live_by_element else copy.deepcopy(item))
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


def _remove(walk: _Walk, obj: dict[str, Any], paths: Iterable[Path], protected: set[Path]) -> dict[str, Any]:
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


# --------------------------------------------------------------------------
# managedFields bookkeeping

_ManagerId = tuple[str, str, str]
"""(manager, operation, subresource): one managedFields entry."""


@dataclass(slots=True)
class _Entry:
    fields: FieldSet
    api_version: str
    time: str | None


def _read_managed(obj: dict[str, Any] | None) -> dict[_ManagerId, _Entry]:
    managed: dict[_ManagerId, _Entry] = {}
    for raw in ((obj or {}).get("metadata") or {}).get("managedFields") or []:
        if not isinstance(raw, dict) or "manager" not in raw:
            continue
        ident = (raw["manager"], raw.get("operation", "Update"), raw.get("subresource", ""))
        fields = fieldpath.from_fields_v1(raw.get("fieldsV1") or {})
        previous = managed.get(ident)
        if previous is not None:
            fields = previous.fields | fields
        managed[ident] = _Entry(fields, raw.get("apiVersion", ""), raw.get("time"))
    return managed


def _write_managed(obj: dict[str, Any], managed: dict[_ManagerId, _Entry]) -> dict[str, Any]:
    entries: list[dict[str, Any]] = []
    for (manager, operation, subresource), entry in managed.items():
        if not entry.fields:
            continue
        encoded: dict[str, Any] = {"manager": manager, "operation": operation, "apiVersion": entry.api_version}
        if entry.time is not None:
            encoded["time"] = entry.time
        encoded["fieldsType"] = "FieldsV1"
        encoded["fieldsV1"] = fieldpath.to_fields_v1(entry.fields)
        if subresource:
            encoded["subresource"] = subresource
        entries.append(encoded)
    # Kubernetes' order: operation, then time, manager, apiVersion, subresource.
    entries.sort(
        key=lambda e: (e["operation"], e.get("time") or "", e["manager"], e["apiVersion"], e.get("subresource", ""))
    )
    out = dict(obj)
    metadata = dict(out.get("metadata") or {})
    if entries:
        metadata["managedFields"] = entries
    else:
        metadata.pop("managedFields", None)
    out["metadata"] = metadata
    return out


def _without_managed(obj: dict[str, Any]) -> dict[str, Any]:
    metadata = obj.get("metadata")
    if not isinstance(metadata, dict) or "managedFields" not in metadata:
        return obj
    return {**obj, "metadata": {k: v for k, v in metadata.items() if k != "managedFields"}}


def _strip_applied(walk: _Walk, applied: dict[str, Any]) -> dict[str, Any]:
    """The applied configuration without what this endpoint does not manage."""
    out = {
        name: copy.deepcopy(item)
        for name, item in applied.items()
        if name in {"apiVersion", "kind"} or not walk.is_ignored_top(name)
    }
    metadata = applied.get("metadata")
    if isinstance(metadata, dict):
        out["metadata"] = {
            name: copy.deepcopy(item)
            for name, item in metadata.items()
            if name not in _STRIPPED_META or name in {"name", "namespace"}
        }
    return out


def server_side_apply(
    live: dict[str, Any] | None,
    applied: dict[str, Any],
    *,
    manager: str,
    force: bool,
    now: str,
    subresource: str = "",
    list_keys: ListKeys,
    status_subresource: bool = True,
) -> dict[str, Any]:
    """Apply a configuration as ``manager``; returns the new object.

    ``applied`` may still contain server-owned fields (uid, resourceVersion,
    managedFields, ...) and the other half of a status-subresource kind:
    they are ignored here. The result is ``live`` (or the config when
    creating) merged with the config, minus fields this manager applied
    before and no longer applies that nobody else owns, with
    ``metadata.managedFields`` updated. Raises :class:`ApplyConflict` when
    the config changes fields other managers own and ``force`` is False.
    An apply that changes nothing returns an object equal to ``live``.
    """
    walk = _Walk(list_keys, subresource, status_subresource)
    config = _strip_applied(walk, applied)
    managed = _read_managed(live)
    base = _without_managed(live) if live is not None else {}
    ident: _ManagerId = (manager, "Apply", subresource)
    last = managed.get(ident)
    applied_set = _field_set(walk, config)

    merged = _merge(walk, base, config, ()) if live is not None else config
    if last is not None:
        others: FieldSet = frozenset().union(*(e.fields for i, e in managed.items() if i != ident))
        kept = others | applied_set
        kept_parents = fieldpath.prefixes(kept)
        stale = [p for p in last.fields - applied_set if p not in others and p not in kept_parents]
        merged = _remove(walk, merged, stale, set(kept) | kept_parents)

    comparison = _compare(walk, base, merged)
    changed = comparison.added | comparison.modified
    conflicts: list[tuple[str, str]] = []
    for other, entry in managed.items():
        if other == ident:
            continue
        for path in entry.fields & changed:
            conflicts.append((other[0], fieldpath.describe(path)))
    if conflicts and not force:
        raise ApplyConflict(sorted(set(conflicts)))

    for other, entry in list(managed.items()):
        if other != ident:
            entry.fields = entry.fields - changed - comparison.removed
    api_version = str(applied.get("apiVersion") or (live or {}).get("apiVersion") or "")
    object_changed = live is None or merged != base
    time = now if object_changed or last is None else last.time
    managed[ident] = _Entry(applied_set, api_version, time)
    return _write_managed(merged, managed)


def record_update(
    old: dict[str, Any] | None,
    new: dict[str, Any],
    *,
    manager: str,
    now: str,
    subresource: str = "",
    list_keys: ListKeys,
    status_subresource: bool = True,
) -> dict[str, Any]:
    """Record a create/update/patch by ``manager`` in ``new``'s managedFields.

    Fields that appeared or changed become owned by (manager, Update,
    subresource) and leave every other set (updates never conflict); removed
    fields leave every set; empty entries are dropped. ``new``'s own
    ``managedFields`` are ignored: ownership continues from ``old``'s.
    """
    walk = _Walk(list_keys, subresource, status_subresource)
    managed = _read_managed(old)
    before = _without_managed(old) if old is not None else {}
    after = _without_managed(new)
    comparison = _compare(walk, before, after)
    changed = frozenset(comparison.added | comparison.modified)
    removed = frozenset(comparison.removed)
    ident: _ManagerId = (manager, "Update", subresource)
    for entry in managed.values():
        entry.fields = entry.fields - changed - removed
    previous = managed.get(ident)
    if changed:
        fields = ((previous.fields if previous else fieldpath.EMPTY) | changed) - removed
        managed[ident] = _Entry(fields, str(new.get("apiVersion") or ""), now)
    elif previous is not None:
        # Nothing newly owned: the entry keeps its time (Kubernetes does too).
        previous.fields = previous.fields - removed
    return _write_managed(after, managed)
