"""The OpenAPI v3 keywords of one schema node, checked as kube-openapi words them.

``type`` (with Kubernetes' int-or-string), ``enum``, numeric bounds,
lengths, ``pattern``, item and property counts, ``uniqueItems`` and the
formats the API server checks. :mod:`schema` compiles each node's keywords
into a list of :data:`Check` functions once, then runs them on every value.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Callable
from typing import Any, Final

from disvc.testing.apiserver.validation.causes import Cause, go_float, invalid, not_supported, too_long, too_many

_TYPE_NAMES: Final = {"object": dict, "array": list, "string": str, "boolean": bool}


def json_type(data: Any) -> str:
    if data is None:
        return "null"
    if isinstance(data, bool):
        return "boolean"
    if isinstance(data, int):
        return "integer"
    if isinstance(data, float):
        return "number"
    if isinstance(data, str):
        return "string"
    if isinstance(data, list):
        return "array"
    return "object"


def has_type(data: Any, wanted: str) -> bool:
    if wanted == "integer":
        return (isinstance(data, int) and not isinstance(data, bool)) or (isinstance(data, float) and data.is_integer())
    if wanted == "number":
        return isinstance(data, (int, float)) and not isinstance(data, bool)
    expected = _TYPE_NAMES.get(wanted)
    return expected is None or isinstance(data, expected)


Check = Callable[[Any, str], list[Cause]]


def _number(limit: Any) -> str:
    """Schema limits are float64 in Kubernetes, so they print as Go floats."""
    return go_float(float(limit))


def value_checks(schema: dict[str, Any]) -> list[Check]:
    """The keyword checks of one node, messages as kube-openapi words them."""
    checks: list[Check] = []
    if "enum" in schema:
        allowed = list(schema["enum"])
        checks.append(lambda v, p: [] if v in allowed else [not_supported(p, v, allowed)])
    if "minimum" in schema:
        low = schema["minimum"]
        if schema.get("exclusiveMinimum"):
            checks.append(_numeric(lambda v: v > low, f"should be greater than {_number(low)}"))
        else:
            checks.append(_numeric(lambda v: v >= low, f"should be greater than or equal to {_number(low)}"))
    if "maximum" in schema:
        high = schema["maximum"]
        if schema.get("exclusiveMaximum"):
            checks.append(_numeric(lambda v: v < high, f"should be less than {_number(high)}"))
        else:
            checks.append(_numeric(lambda v: v <= high, f"should be less than or equal to {_number(high)}"))
    if "multipleOf" in schema:
        factor = schema["multipleOf"]
        checks.append(_numeric(lambda v: (v / factor).is_integer(), f"should be a multiple of {_number(factor)}"))
    if "maxLength" in schema:
        longest = int(schema["maxLength"])
        checks.append(lambda v, p: [too_long(p, longest)] if isinstance(v, str) and len(v) > longest else [])
    if "minLength" in schema:
        shortest = int(schema["minLength"])
        checks.append(
            lambda v, p: (
                [invalid(p, v, f"{p} in body should be at least {shortest} chars long")]
                if isinstance(v, str) and len(v) < shortest
                else []
            )
        )
    if "pattern" in schema:
        source = str(schema["pattern"])
        compiled = re.compile(source)
        checks.append(
            lambda v, p: (
                [invalid(p, v, f"{p} in body should match '{source}'")]
                if isinstance(v, str) and not compiled.search(v)
                else []
            )
        )
    if "maxItems" in schema:
        most = int(schema["maxItems"])
        checks.append(lambda v, p: [too_many(p, len(v), most)] if isinstance(v, list) and len(v) > most else [])
    if "minItems" in schema:
        least = int(schema["minItems"])
        checks.append(
            lambda v, p: (
                [invalid(p, len(v), f"{p} in body should have at least {least} items")]
                if isinstance(v, list) and len(v) < least
                else []
            )
        )
    if schema.get("uniqueItems"):
        checks.append(
            lambda v, p: (
                [invalid(p, v, f"{p} in body shouldn't contain duplicates")]
                if isinstance(v, list) and len({json.dumps(i, sort_keys=True) for i in v}) < len(v)
                else []
            )
        )
    if "maxProperties" in schema:
        most_props = int(schema["maxProperties"])
        checks.append(
            lambda v, p: [too_many(p, len(v), most_props)] if isinstance(v, dict) and len(v) > most_props else []
        )
    if "minProperties" in schema:
        least_props = int(schema["minProperties"])
        checks.append(
            lambda v, p: (
                [invalid(p, len(v), f"{p} in body should have at least {least_props} properties")]
                if isinstance(v, dict) and len(v) < least_props
                else []
            )
        )
    fmt = schema.get("format")
    if fmt in _FORMATS:
        valid = _FORMATS[fmt]
        checks.append(
            lambda v, p: (
                [invalid(p, v, f"{p} in body must be of type {fmt}: {json.dumps(v)}")]
                if isinstance(v, str) and not valid(v)
                else []
            )
        )
    return checks


def _numeric(ok: Callable[[Any], bool], detail: str) -> Check:
    def check(value: Any, path: str) -> list[Cause]:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or ok(value):
            return []
        return [invalid(path, value, f"{path} in body {detail}")]

    return check


def _is_base64(text: str) -> bool:
    try:
        base64.b64decode(text, validate=True)
    except ValueError:
        return False
    return True


_FORMATS: Final[dict[str, Callable[[str], bool]]] = {
    "date-time": lambda s: re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)", s) is not None,
    "date": lambda s: re.fullmatch(r"\d{4}-\d\d-\d\d", s) is not None,
    "byte": _is_base64,
    "uuid": lambda s: re.fullmatch(r"[0-9a-fA-F]{8}-?([0-9a-fA-F]{4}-?){3}[0-9a-fA-F]{12}", s) is not None,
}
