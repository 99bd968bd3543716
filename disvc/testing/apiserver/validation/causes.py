"""Validation causes: one invalid field, worded as Kubernetes' ``field.Error``.

Every validator of the loopback API server reports :class:`Cause` values;
the server joins them into a 422 ``Invalid`` Status
(``<field>: <message>``). The constructors here produce the message bodies
apimachinery's ``pkg/util/validation/field`` prints, including Go's way of
printing the bad value.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from decimal import Decimal
from typing import Any


@dataclass(frozen=True, slots=True)
class Cause:
    """One invalid field, as a ``StatusCause`` of a 422 response."""

    type: str
    """Kubernetes' reason: FieldValueInvalid, FieldValueRequired, ..."""
    field: str
    """Path like ``spec.ports[0].port``."""
    message: str
    """The error body without the field: ``Invalid value: 0: must be ...``."""


def go_value(data: Any) -> str:
    """A bad value as Go's field.Error prints it."""
    if data is None:
        return '"null"'
    if isinstance(data, bool):
        return "true" if data else "false"
    if isinstance(data, int):
        return str(data)
    if isinstance(data, float):
        return go_float(data)
    if isinstance(data, str):
        return json.dumps(data, ensure_ascii=False)
    return json.dumps(data, separators=(",", ":"), sort_keys=True)


def go_float(number: float) -> str:
    """Go's ``%v`` of a float64: shortest digits, exponent form below 1e-4 or from 1e6."""
    if math.isinf(number):
        return "+Inf" if number > 0 else "-Inf"
    if math.isnan(number):
        return "NaN"
    if number == 0:
        return "0"
    _, digits, exponent = Decimal(repr(abs(number))).normalize().as_tuple()
    assert isinstance(exponent, int)
    text = "".join(str(d) for d in digits)
    point = len(text) + exponent
    exp = point - 1
    prefix = "-" if number < 0 else ""
    if exp < -4 or exp >= 6:
        mantissa = text[0] + ("." + text[1:] if len(text) > 1 else "")
        return f"{prefix}{mantissa}e{'-' if exp < 0 else '+'}{abs(exp):02d}"
    if point <= 0:
        return f"{prefix}0.{'0' * -point}{text}"
    if point >= len(text):
        return prefix + text + "0" * (point - len(text))
    return f"{prefix}{text[:point]}.{text[point:]}"


def invalid(path: str, data: Any, detail: str, reason: str = "FieldValueInvalid") -> Cause:
    return Cause(reason, path, f"Invalid value: {go_value(data)}: {detail}")


def required(path: str, detail: str = "") -> Cause:
    return Cause("FieldValueRequired", path, "Required value" + (f": {detail}" if detail else ""))


def not_supported(path: str, data: Any, allowed: list[Any]) -> Cause:
    quoted = ", ".join(json.dumps(v) if isinstance(v, str) else json.dumps(v, separators=(",", ":")) for v in allowed)
    return Cause("FieldValueNotSupported", path, f"Unsupported value: {go_value(data)}: supported values: {quoted}")


def too_long(path: str, limit: int) -> Cause:
    unit = "byte" if limit == 1 else "bytes"
    return Cause("FieldValueTooLong", path, f"Too long: may not be more than {limit} {unit}")


def too_many(path: str, actual: int, limit: int) -> Cause:
    unit = "item" if limit == 1 else "items"
    return Cause("FieldValueTooMany", path, f"Too many: {actual}: must have at most {limit} {unit}")


def duplicate(path: str, data: Any) -> Cause:
    return Cause("FieldValueDuplicate", path, f"Duplicate value: {go_value(data)}")


def forbidden(path: str, detail: str) -> Cause:
    return Cause("FieldValueForbidden", path, f"Forbidden: {detail}")
