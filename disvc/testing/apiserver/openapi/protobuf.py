"""OpenAPI v2 in protocol buffers, the encoding ``kubectl`` downloads.

client-go fetches ``/openapi/v2`` only in protobuf
(:data:`REQUESTED_MEDIA_TYPES`): a gnostic ``openapi_v2.Document`` message. This module encodes the part of a Swagger
2.0 document kubectl reads (info, the PATCH operations' kinds and content
types, definitions with their vendor extensions) in the protobuf wire
format, using the field numbers of gnostic's ``OpenAPIv2.proto``. Vendor
extensions and defaults travel as YAML text, as gnostic carries them (here
written as JSON, which is YAML).
"""

from __future__ import annotations

import json
from typing import Any, Final

Obj = dict[str, Any]

REQUESTED_MEDIA_TYPES: Final = (
    "application/com.github.proto-openapi.spec.v2@v1.0+protobuf",
    "application/com.github.proto-openapi.spec.v2.v1.0+protobuf",
)
"""What clients ask for: client-go the first (older) spelling, newer clients the second."""
MEDIA_TYPE: Final = "application/com.github.proto-openapi.spec.v2.v1.0+protobuf"
"""What the answer is labelled (an ``@`` is not valid in a media type; Go's parser refuses it)."""

_METHODS: Final = {"get": 2, "put": 3, "post": 4, "delete": 5, "patch": 8}
"""PathItem field numbers of the operations."""


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _field(number: int, payload: bytes) -> bytes:
    """A length-delimited field (strings, bytes, messages)."""
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def _string(number: int, text: str) -> bytes:
    return _field(number, text.encode()) if text else b""


def _flag(number: int, value: bool) -> bytes:
    return _varint(number << 3) + b"\x01" if value else b""


def _strings(number: int, values: list[str]) -> bytes:
    return b"".join(_field(number, v.encode()) for v in values)


def _yaml_any(value: Any) -> bytes:
    """gnostic's ``Any``: the value as YAML text in field 2 (JSON is YAML, and quicker to write)."""
    return _string(2, json.dumps(value, sort_keys=True))


def _extensions(number: int, node: Obj) -> bytes:
    return b"".join(
        _field(number, _string(1, key) + _field(2, _yaml_any(value)))
        for key, value in node.items() if key.startswith("x-")
    )


def schema(node: Obj) -> bytes:
    """An ``openapi_v2.Schema``."""
    out = [
        _string(1, str(node.get("$ref", ""))),
        _string(2, str(node.get("format", ""))),
        _string(4, str(node.get("description", ""))),
    ]
    if "default" in node:
        out.append(_field(5, _yaml_any(node["default"])))
    out.append(_strings(19, list(node.get("required") or [])))
    out.extend(_field(20, _yaml_any(v)) for v in node.get("enum") or [])
    additional = node.get("additionalProperties")
    if isinstance(additional, dict):
        out.append(_field(21, _field(1, schema(additional))))
    elif isinstance(additional, bool):
        out.append(_field(21, _flag(2, additional) or _varint(2 << 3) + b"\x00"))
    if node.get("type"):
        out.append(_field(22, _strings(1, [str(node["type"])])))
    if isinstance(node.get("items"), dict):
        out.append(_field(23, _field(1, schema(node["items"]))))
    out.extend(_field(24, schema(sub)) for sub in node.get("allOf") or [])
    if isinstance(node.get("properties"), dict):
        out.append(_field(25, b"".join(
            _field(1, _string(1, name) + _field(2, schema(sub))) for name, sub in node["properties"].items()
        )))
    out.append(_extensions(31, node))
    return b"".join(out)


def _parameter(param: Obj) -> bytes:
    """A query parameter (the only kind kubectl looks at) as a ``ParametersItem``."""
    query = (
        _flag(1, bool(param.get("required"))) + _string(2, "query") + _string(3, str(param.get("description", "")))
        + _string(4, str(param.get("name", ""))) + _string(6, str(param.get("type", "")))
    )
    non_body = _field(3, query)
    return _field(1, _field(2, non_body))


def _operation(op: Obj) -> bytes:
    return b"".join([
        _string(3, str(op.get("description", ""))),
        _string(5, str(op.get("operationId", ""))),
        _strings(6, list(op.get("produces") or [])),
        _strings(7, list(op.get("consumes") or [])),
        b"".join(_parameter(p) for p in op.get("parameters") or [] if p.get("in") == "query"),
        _extensions(13, op),
    ])


def document(swagger: Obj) -> bytes:
    """A Swagger 2.0 document as an ``openapi_v2.Document``."""
    info = swagger.get("info") or {}
    paths = b"".join(
        _field(2, _string(1, path) + _field(2, b"".join(
            _field(_METHODS[method], _operation(op)) for method, op in item.items() if method in _METHODS
        )))
        for path, item in (swagger.get("paths") or {}).items()
    )
    definitions = b"".join(
        _field(1, _string(1, name) + _field(2, schema(node)))
        for name, node in (swagger.get("definitions") or {}).items()
    )
    return b"".join([
        _string(1, str(swagger.get("swagger", "2.0"))),
        _field(2, _string(1, str(info.get("title", ""))) + _string(2, str(info.get("version", "")))),
        _field(8, paths),
        _field(9, definitions),
    ])
