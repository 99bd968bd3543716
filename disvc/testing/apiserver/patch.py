"""Patches as kube-apiserver applies them: JSON merge, JSON patch, strategic merge.

``PATCH`` with ``application/merge-patch+json`` (RFC 7386: null deletes,
lists are replaced), ``application/json-patch+json`` (RFC 6902 operations)
or ``application/strategic-merge-patch+json`` (built-in kinds only: lists
merge by the key their Go type declares, ``$patch`` directives). Server-side
apply is :mod:`apply`. Everything here is pure: inputs are never mutated; a
malformed patch is a :class:`PatchError` the server answers 400/422.
"""

from __future__ import annotations

import copy
from typing import Any, Final

__all__ = ["PatchError", "json_patch", "merge_patch", "strategic_merge_patch"]


class PatchError(Exception):
    """A malformed patch, or a JSON patch ``test`` that failed."""


# --------------------------------------------------------------------------
# RFC 7386 JSON merge patch


def merge_patch(target: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    """Apply an RFC 7386 merge patch; null deletes, lists are replaced."""
    if not isinstance(patch, dict):
        raise PatchError("merge patch must be a JSON object")
    merged = _merge_value(target, patch)
    assert isinstance(merged, dict)
    return merged


def _merge_value(target: Any, patch: Any) -> Any:
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    out = copy.deepcopy(target) if isinstance(target, dict) else {}
    for name, change in patch.items():
        if change is None:
            out.pop(name, None)
        else:
            out[name] = _merge_value(out.get(name), change)
    return out


# --------------------------------------------------------------------------
# RFC 6902 JSON patch

_JSON_PATCH_OPS: Final = frozenset({"add", "remove", "replace", "move", "copy", "test"})


def json_patch(target: dict[str, Any], ops: list[Any]) -> dict[str, Any]:
    """Apply an RFC 6902 patch; any bad operation or failed test -> PatchError."""
    if not isinstance(ops, list):
        raise PatchError("json patch must be a JSON array of operations")
    doc: Any = copy.deepcopy(target)
    for index, op in enumerate(ops):
        if not isinstance(op, dict) or op.get("op") not in _JSON_PATCH_OPS:
            raise PatchError(f"json patch operation {index}: unknown or missing op")
        kind = op["op"]
        path = _pointer(op, "path")
        if kind == "add":
            doc = _pointer_add(doc, path, copy.deepcopy(_operand(op, "value")))
        elif kind == "remove":
            doc, _ = _pointer_remove(doc, path)
        elif kind == "replace":
            doc, _ = _pointer_remove(doc, path)
            doc = _pointer_add(doc, path, copy.deepcopy(_operand(op, "value")))
        elif kind == "move":
            source = _pointer(op, "from")
            if path[: len(source)] == source and len(path) > len(source):
                raise PatchError("json patch move: cannot move a value into itself")
            doc, moved = _pointer_remove(doc, source)
            doc = _pointer_add(doc, path, moved)
        elif kind == "copy":
            doc = _pointer_add(doc, path, copy.deepcopy(_pointer_get(doc, _pointer(op, "from"))))
        elif _pointer_get(doc, path) != _operand(op, "value"):
            raise PatchError(f"json patch test failed at {op['path']!r}")
    if not isinstance(doc, dict):
        raise PatchError("json patch must leave an object")
    return dict(doc)


def _operand(op: dict[str, Any], name: str) -> Any:
    if name not in op:
        raise PatchError(f"json patch {op['op']}: missing {name!r}")
    return op[name]


def _pointer(op: dict[str, Any], name: str) -> list[str]:
    text = _operand(op, name)
    if not isinstance(text, str) or (text and not text.startswith("/")):
        raise PatchError(f"json patch {op['op']}: {name} {text!r} is not a JSON pointer")
    if not text:
        return []
    return [token.replace("~1", "/").replace("~0", "~") for token in text[1:].split("/")]


def _list_index(container: list[Any], token: str, *, allow_end: bool) -> int:
    if token == "-" and allow_end:
        return len(container)
    if not token.isdigit() or (token != "0" and token.startswith("0")):
        raise PatchError(f"json patch: {token!r} is not a list index")
    index = int(token)
    if index > len(container) or (index == len(container) and not allow_end):
        raise PatchError(f"json patch: index {index} out of range")
    return index


def _pointer_get(doc: Any, path: list[str]) -> Any:
    node = doc
    for token in path:
        if isinstance(node, dict) and token in node:
            node = node[token]
        elif isinstance(node, list):
            node = node[_list_index(node, token, allow_end=False)]
        else:
            raise PatchError(f"json patch: path /{'/'.join(path)} does not exist")
    return node


def _pointer_add(doc: Any, path: list[str], item: Any) -> Any:
    if not path:
        return item
    parent = _pointer_get(doc, path[:-1])
    token = path[-1]
    if isinstance(parent, dict):
        parent[token] = item
    elif isinstance(parent, list):
        parent.insert(_list_index(parent, token, allow_end=True), item)
    else:
        raise PatchError(f"json patch: parent of /{'/'.join(path)} is not a container")
    return doc


def _pointer_remove(doc: Any, path: list[str]) -> tuple[Any, Any]:
    if not path:
        raise PatchError("json patch: cannot remove the whole document")
    parent = _pointer_get(doc, path[:-1])
    token = path[-1]
    if isinstance(parent, dict) and token in parent:
        return doc, parent.pop(token)
    if isinstance(parent, list):
        return doc, parent.pop(_list_index(parent, token, allow_end=False))
    raise PatchError(f"json patch: path /{'/'.join(path)} does not exist")


# --------------------------------------------------------------------------
# Strategic merge patch (built-in kinds only; CRDs reject it with 415)

_PRIMITIVE_MERGE_LISTS: Final = frozenset({"finalizers"})
_MERGE_KEYS: Final[dict[str, str]] = {
    "containers": "name",
    "initContainers": "name",
    "ephemeralContainers": "name",
    "env": "name",
    "volumes": "name",
    "volumeMounts": "mountPath",
    "volumeDevices": "devicePath",
    "imagePullSecrets": "name",
    "ownerReferences": "uid",
    "conditions": "type",
    "hostAliases": "ip",
    "topologySpreadConstraints": "topologyKey",
    "resourceClaims": "name",
}


def _strategic_merge_key(kind: str, names: tuple[str, ...]) -> str | None:
    last = names[-1] if names else ""
    if last == "ports":
        # Service ports merge by port; container ports by containerPort.
        return "port" if kind == "Service" and names == ("spec", "ports") else "containerPort"
    return _MERGE_KEYS.get(last)


def strategic_merge_patch(target: dict[str, Any], patch: dict[str, Any], kind: str) -> dict[str, Any]:
    """Apply a Kubernetes strategic merge patch to a built-in object.

    Lists with a patch merge key merge item-wise (``$patch: delete`` items
    remove, ``{"$patch": "replace"}`` replaces the list); other lists are
    replaced; ``$patch: replace``/``delete`` on a map, ``$retainKeys``,
    ``$deleteFromPrimitiveList/<f>`` are honoured, ``$setElementOrder/<f>`` is
    accepted and ignored; null deletes.
    """
    if not isinstance(patch, dict):
        raise PatchError("strategic merge patch must be a JSON object")
    merged = _strategic_map(target, patch, kind, ())
    return merged if merged is not None else {}


def _strategic_map(target: Any, patch: dict[str, Any], kind: str, names: tuple[str, ...]) -> dict[str, Any] | None:
    directive = patch.get("$patch")
    if directive == "delete":
        return None
    body = {name: change for name, change in patch.items() if not name.startswith("$")}
    if directive == "replace":
        replaced: dict[str, Any] = _strip_directives(body)
        return replaced
    if directive is not None:
        raise PatchError(f"strategic merge patch: unknown $patch {directive!r}")
    out: dict[str, Any] = copy.deepcopy(target) if isinstance(target, dict) else {}
    retain = patch.get("$retainKeys")
    if retain is not None:
        if not isinstance(retain, list):
            raise PatchError("strategic merge patch: $retainKeys must be a list")
        out = {name: item for name, item in out.items() if name in retain}
    for name, change in patch.items():
        if name.startswith("$deleteFromPrimitiveList/"):
            list_name = name.partition("/")[2]
            if not isinstance(change, list):
                raise PatchError(f"strategic merge patch: {name} must be a list")
            if isinstance(out.get(list_name), list):
                out[list_name] = [item for item in out[list_name] if item not in change]
    for name, change in body.items():
        child_names = names + (name,)
        if change is None:
            out.pop(name, None)
        elif isinstance(change, dict):
            merged = _strategic_map(out.get(name), change, kind, child_names)
            if merged is None:
                out.pop(name, None)
            else:
                out[name] = merged
        elif isinstance(change, list):
            out[name] = _strategic_list(out.get(name), change, kind, child_names)
        else:
            out[name] = change
    return out


def _strategic_list(target: Any, patch: list[Any], kind: str, names: tuple[str, ...]) -> list[Any]:
    live = copy.deepcopy(target) if isinstance(target, list) else []
    if any(isinstance(item, dict) and item.get("$patch") == "replace" for item in patch):
        return [_strip_directives(item) for item in patch if not (isinstance(item, dict) and "$patch" in item)]
    if names[-1] in _PRIMITIVE_MERGE_LISTS:
        return live + [item for item in patch if item not in live]
    merge_key = _strategic_merge_key(kind, names)
    if merge_key is None or not all(isinstance(item, dict) for item in patch):
        return [_strip_directives(item) for item in patch]
    for item in patch:
        if merge_key not in item:
            raise PatchError(f"strategic merge patch: {'.'.join(names)} item lacks merge key {merge_key!r}")
        match = next(
            (i for i, old in enumerate(live) if isinstance(old, dict) and old.get(merge_key) == item[merge_key]), None
        )
        if item.get("$patch") == "delete":
            live = [old for old in live if not (isinstance(old, dict) and old.get(merge_key) == item[merge_key])]
        elif match is None:
            live.append(_strip_directives(item))
        else:
            merged = _strategic_map(live[match], item, kind, names)
            if merged is not None:
                live[match] = merged
    return live


def _strip_directives(data: Any) -> Any:
    if isinstance(data, dict):
        return {name: _strip_directives(item) for name, item in data.items() if not name.startswith("$")}
    if isinstance(data, list):
        return [_strip_directives(item) for item in data]
    return data
