"""The JSONPath subset of CRD printer columns (``additionalPrinterColumns``).

A column's ``jsonPath`` is a simple path: fields (``.status.url``), quoted
fields (``['a.b']``), indexes (``[0]``), wildcards (``[*]``) and equality
filters (``[?(@.type=="Ready")]``), as client-go's ``util/jsonpath`` reads
them. :func:`find` returns every value the path reaches, in document order;
a missing key reaches nothing, as the API server's column printer allows.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Final

_STEP: Final = re.compile(
    r"""\.(?P<field>[A-Za-z0-9_\-]+)
      | \[(?P<index>-?\d+)\]
      | \[\*\]|\.\*
      | \['(?P<quoted>[^']*)'\]
      | \[\?\(@(?P<filter_path>(?:\.[A-Za-z0-9_\-]+)+)\s*==\s*(?P<filter_value>"[^"]*"|'[^']*'|[^)\s]+)\s*\)\]""",
    re.VERBOSE,
)


class PathError(ValueError):
    """A path outside the supported subset."""


@dataclass(frozen=True, slots=True)
class _Step:
    kind: str
    """field, index, all or filter."""
    key: Any = None
    value: Any = None


def parse(path: str) -> tuple[_Step, ...]:
    text = path.strip()
    if text.startswith("{") and text.endswith("}"):
        text = text[1:-1].strip()
    steps: list[_Step] = []
    position = 0
    while position < len(text):
        match = _STEP.match(text, position)
        if match is None:
            raise PathError(f"unrecognized JSONPath {path!r} at {text[position:]!r}")
        if match.group("field") is not None:
            steps.append(_Step("field", match.group("field")))
        elif match.group("quoted") is not None:
            steps.append(_Step("field", match.group("quoted")))
        elif match.group("index") is not None:
            steps.append(_Step("index", int(match.group("index"))))
        elif match.group("filter_path") is not None:
            raw = match.group("filter_value")
            value = raw[1:-1] if raw[:1] in "\"'" else json.loads(raw)
            steps.append(_Step("filter", tuple(match.group("filter_path").strip(".").split(".")), value))
        else:
            steps.append(_Step("all"))
        position = match.end()
    return tuple(steps)


def find(steps: tuple[_Step, ...], data: Any) -> list[Any]:
    """Every value ``steps`` reach in ``data``."""
    return list(_walk(steps, data))


def _walk(steps: tuple[_Step, ...], node: Any) -> Iterator[Any]:
    if not steps:
        yield node
        return
    step, rest = steps[0], steps[1:]
    if step.kind == "field":
        if isinstance(node, dict) and step.key in node:
            yield from _walk(rest, node[step.key])
    elif step.kind == "index":
        if isinstance(node, list) and -len(node) <= step.key < len(node):
            yield from _walk(rest, node[step.key])
    elif step.kind == "all":
        children = node.values() if isinstance(node, dict) else node if isinstance(node, list) else ()
        for child in children:
            yield from _walk(rest, child)
    elif isinstance(node, list):
        for item in node:
            if _lookup(item, step.key) == step.value:
                yield from _walk(rest, item)


def _lookup(node: Any, keys: tuple[str, ...]) -> Any:
    for key in keys:
        if not isinstance(node, dict):
            return None
        node = node.get(key)
    return node
