"""Field sets: which fields of an object a field manager owns.

Server-side apply records ownership in ``metadata.managedFields`` as a
``fieldsV1`` tree. This module is the in-memory form of that tree and its
codec, shared by the apply logic in :mod:`apply`. A *path* is a tuple of
encoded path elements exactly as Kubernetes spells them in ``fieldsV1``:

- ``f:<name>``: a field of a map or struct,
- ``k:{"name":"a"}``: an item of a map-keyed list (key JSON, keys sorted),
- ``v:<json>``: an item of a set list,
- ``i:<n>``: an item by index (kept only for decoding foreign entries).

A *field set* is a frozenset of paths; each path is a member in its own
right, its ancestors are not. In ``fieldsV1`` a member with children carries
``".": {}``; a member without children is an empty object.
"""

from __future__ import annotations

import json
from typing import Any, Final

Path = tuple[str, ...]
FieldSet = frozenset[Path]

EMPTY: Final[FieldSet] = frozenset()


def field(name: str) -> str:
    """The path element for a map/struct field."""
    return "f:" + name


def key(values: dict[str, Any]) -> str:
    """The path element for a map-list item; keys sorted as Kubernetes does."""
    return "k:" + _compact_json({name: values[name] for name in sorted(values)})


def value(item: Any) -> str:
    """The path element for a set-list item."""
    return "v:" + _compact_json(item)


def _compact_json(data: Any) -> str:
    return json.dumps(data, separators=(",", ":"), ensure_ascii=False, sort_keys=True)


def to_fields_v1(fields: FieldSet) -> dict[str, Any]:
    """Encode a field set as the ``fieldsV1`` JSON object."""
    root: dict[str, Any] = {}
    for path in sorted(fields):
        node = root
        for element in path:
            node = node.setdefault(element, {})
        node["."] = {}
    return _drop_leaf_dots(root)


def _drop_leaf_dots(node: dict[str, Any]) -> dict[str, Any]:
    """A member without children is written ``{}``, not ``{".": {}}``."""
    out: dict[str, Any] = {}
    for element, child in node.items():
        if element == ".":
            continue
        encoded = _drop_leaf_dots(child)
        if "." in child and encoded:
            encoded = {".": {}, **encoded}
        out[element] = encoded
    return out


def from_fields_v1(tree: dict[str, Any]) -> FieldSet:
    """Decode a ``fieldsV1`` JSON object into a field set."""
    members: set[Path] = set()

    def walk(node: dict[str, Any], path: Path) -> None:
        for element, child in node.items():
            if element == ".":
                members.add(path)
                continue
            child_path = path + (element,)
            if not child:
                members.add(child_path)
            else:
                walk(child, child_path)

    walk(tree, ())
    members.discard(())
    return frozenset(members)


def describe(path: Path) -> str:
    """Human form used in conflict messages: ``.spec.ports[port=80,protocol="TCP"]``."""
    parts: list[str] = []
    for element in path:
        kind, _, rest = element.partition(":")
        if kind == "f":
            parts.append("." + rest)
        elif kind == "k":
            item = json.loads(rest)
            parts.append("[" + ",".join(f"{name}={_compact_json(item[name])}" for name in item) + "]")
        elif kind == "v":
            parts.append("[=" + rest + "]")
        else:
            parts.append("[" + rest + "]")
    return "".join(parts)


def prefixes(fields: FieldSet) -> set[Path]:
    """Every strict ancestor of every member (for "is anything owned below")."""
    out: set[Path] = set()
    for path in fields:
        for end in range(len(path)):
            out.add(path[:end])
    return out
