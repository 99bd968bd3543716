"""A LIST response decoded one item at a time.

A list of 10,000 InferenceServices is about 24 MB of JSON. ``json.loads``
would build every item, ``managedFields`` included, before the informer's
transform could shrink any of them: several times the size of the cache
itself, held at once, and never all given back to the OS afterwards (this
was most of the controller's RSS after a restart over 5000 DISVCs). Here
each item is decoded and handed to ``each`` (the transform) before the next
one is read, so only one full-size item is alive at a time.

The result equals ``json.loads`` for any JSON object; only the top level
and the ``items`` array are walked here, everything else is the standard
decoder's.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any, Final

from disvc.builders.types import Obj

_DECODER: Final = json.JSONDecoder()
_WHITESPACE: Final = re.compile(r"[ \t\n\r]*")


def decode(body: bytes, each: Callable[[Obj], Obj]) -> tuple[list[Obj], Obj]:
    """The list's items, each passed through ``each`` as it is decoded, and its ``metadata``.

    Raises ``ValueError`` (``json.JSONDecodeError``) when ``body`` is not a JSON object.
    """
    text = body.decode("utf-8")
    items: list[Obj] = []
    metadata: Obj = {}
    pos = _expect(text, _skip(text, 0), "{")
    if text[_skip(text, pos):].startswith("}"):
        return items, metadata
    while True:
        key, pos = _DECODER.raw_decode(text, _skip(text, pos))
        pos = _skip(text, _expect(text, _skip(text, pos), ":"))
        if key == "items" and text.startswith("[", pos):
            pos = _items(text, pos + 1, each, items)
        else:
            value, pos = _DECODER.raw_decode(text, pos)
            if key == "metadata" and isinstance(value, dict):
                metadata = value
        pos = _skip(text, pos)
        if text.startswith(",", pos):
            pos += 1
            continue
        _expect(text, pos, "}")
        return items, metadata


def _items(text: str, pos: int, each: Callable[[Obj], Obj], into: list[Obj]) -> int:
    """Decode the array whose ``[`` ends before ``pos``; the position after its ``]``."""
    pos = _skip(text, pos)
    if text.startswith("]", pos):
        return pos + 1
    while True:
        item: Any
        item, pos = _DECODER.raw_decode(text, pos)
        into.append(each(item))
        pos = _skip(text, pos)
        if text.startswith(",", pos):
            pos = _skip(text, pos + 1)
            continue
        return _expect(text, pos, "]")


def _skip(text: str, pos: int) -> int:
    found = _WHITESPACE.match(text, pos)
    return found.end() if found else pos


def _expect(text: str, pos: int, char: str) -> int:
    if not text.startswith(char, pos):
        raise json.JSONDecodeError(f"Expecting '{char}'", text, pos)
    return pos + 1
