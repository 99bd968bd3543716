"""Validation, defaulting and pruning as kube-apiserver does them.

The controller's tests must see the same 422 Invalid responses a real
control plane gives, or a builder that emits a bad ISVC would pass here and
fail in production. Three sources of rules:

- :class:`SchemaValidator` for custom resources: structural pruning,
  schema ``default``s and OpenAPI v3 value validation, plus CEL
  ``x-kubernetes-validations`` evaluated with cel-python. A schema is
  compiled once into a tree of :class:`_Node` so validating an object costs a
  walk of the object, not of the (large: 39k-line KServe) schema.
- :func:`validate_builtin` / :func:`default_builtin` for the built-in kinds
  the controller writes (Service, Ingress, Lease, Event, Namespace).
- :func:`validate_metadata` for every object's name, labels, annotations.

Each failure is a :class:`Cause` with Kubernetes' field path and message
body; the server joins them into the Status message
(``<field>: <message>``). Everything is pure: inputs are never mutated.
"""

from __future__ import annotations

import base64
import copy
import itertools
import json
import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Final

import celpy
from celpy import celtypes
from celpy.adapter import json_to_cel
from celpy.evaluation import CELEvalError

__all__ = [
    "Cause",
    "SchemaValidator",
    "default_builtin",
    "validate_builtin",
    "validate_metadata",
]


@dataclass(frozen=True, slots=True)
class Cause:
    """One invalid field, as a ``StatusCause`` of a 422 response."""

    type: str
    """Kubernetes' reason: FieldValueInvalid, FieldValueRequired, ..."""
    field: str
    """Path like ``spec.ports[0].port``."""
    message: str
    """The error body without the field: ``Invalid value: 0: must be ...``."""


# --------------------------------------------------------------------------
# Kubernetes field.Error bodies (apimachinery pkg/util/validation/field)


def _go_value(data: Any) -> str:
    """A bad value as Go's field.Error prints it."""
    if data is None:
        return '"null"'
    if isinstance(data, bool):
        return "true" if data else "false"
    if isinstance(data, int):
        return str(data)
    if isinstance(data, float):
        return _go_float(data)
    if isinstance(data, str):
        return json.dumps(data, ensure_ascii=False)
    return json.dumps(data, separators=(",", ":"), sort_keys=True)


def _go_float(number: float) -> str:
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


def _invalid(path: str, data: Any, detail: str, reason: str = "FieldValueInvalid") -> Cause:
    return Cause(reason, path, f"Invalid value: {_go_value(data)}: {detail}")


def _required(path: str, detail: str = "") -> Cause:
    return Cause("FieldValueRequired", path, "Required value" + (f": {detail}" if detail else ""))


def _not_supported(path: str, data: Any, allowed: list[Any]) -> Cause:
    quoted = ", ".join(json.dumps(v) if isinstance(v, str) else json.dumps(v, separators=(",", ":")) for v in allowed)
    return Cause("FieldValueNotSupported", path, f"Unsupported value: {_go_value(data)}: supported values: {quoted}")


def _too_long(path: str, limit: int) -> Cause:
    unit = "byte" if limit == 1 else "bytes"
    return Cause("FieldValueTooLong", path, f"Too long: may not be more than {limit} {unit}")


def _too_many(path: str, actual: int, limit: int) -> Cause:
    unit = "item" if limit == 1 else "items"
    return Cause("FieldValueTooMany", path, f"Too many: {actual}: must have at most {limit} {unit}")


def _duplicate(path: str, data: Any) -> Cause:
    return Cause("FieldValueDuplicate", path, f"Duplicate value: {_go_value(data)}")


def _forbidden(path: str, detail: str) -> Cause:
    return Cause("FieldValueForbidden", path, f"Forbidden: {detail}")


# --------------------------------------------------------------------------
# CEL (x-kubernetes-validations)


def _string_function(method: Callable[..., Any]) -> Callable[..., Any]:
    def call(*args: Any) -> Any:
        result = method(*args)
        if isinstance(result, str):
            return celtypes.StringType(result)
        if isinstance(result, bool):
            return celtypes.BoolType(result)
        if isinstance(result, int):
            return celtypes.IntType(result)
        if isinstance(result, list):
            return celtypes.ListType([celtypes.StringType(part) for part in result])
        return result

    return call


def _substring(text: str, start: int, end: int | None = None) -> str:
    if start < 0 or start > len(text) or (end is not None and (end < start or end > len(text))):
        raise ValueError("index out of range")
    return text[start:end]


def _index_of(text: str, needle: str, start: int = 0) -> int:
    return text.find(needle, start)


def _last_index_of(text: str, needle: str, start: int | None = None) -> int:
    return text.rfind(needle, 0, None if start is None else start + len(needle))


def _split(text: str, sep: str, limit: int | None = None) -> list[str]:
    if limit == 0:
        return []
    return text.split(sep, -1 if limit is None or limit < 0 else limit - 1)


def _replace(text: str, old: str, new: str, limit: int = -1) -> str:
    return text.replace(old, new, limit)


def _is_sorted(items: Any) -> bool:
    values = list(items)
    return all(a <= b for a, b in itertools.pairwise(values))


def _cel_sum(items: Any) -> Any:
    values = list(items)
    total: Any = values[0] if values else celtypes.IntType(0)
    for value in values[1:]:
        total = total + value
    return total


_CEL_FUNCTIONS: Final[dict[str, Callable[..., Any]]] = {
    # Kubernetes enables the cel-go strings extension and its list library;
    # cel-python ships neither.
    "lowerAscii": _string_function(lambda s: s.lower()),
    "upperAscii": _string_function(lambda s: s.upper()),
    "trim": _string_function(lambda s: s.strip()),
    "charAt": _string_function(lambda s, i: s[i] if i < len(s) else ""),
    "indexOf": _string_function(_index_of),
    "lastIndexOf": _string_function(_last_index_of),
    "substring": _string_function(_substring),
    "split": _string_function(_split),
    "replace": _string_function(_replace),
    "join": _string_function(lambda items, sep="": str(sep).join(str(i) for i in items)),
    "isSorted": _string_function(_is_sorted),
    "sum": _cel_sum,
    "min": lambda items: min(items),
    "max": lambda items: max(items),
}


@dataclass(frozen=True, slots=True)
class _Rule:
    text: str
    message: str
    message_expression: Any
    field_path: str
    reason: str
    program: Any
    is_transition: bool


_CEL_ENV: Final = celpy.Environment()
_PROGRAMS: dict[str, Any] = {}


def _cel_program(text: str) -> Any:
    program = _PROGRAMS.get(text)
    if program is None:
        program = _CEL_ENV.program(_CEL_ENV.compile(text), functions=_CEL_FUNCTIONS)
        _PROGRAMS[text] = program
    return program


def _cel_error_text(error: BaseException) -> str:
    first = error.args[0] if error.args else error
    text = str(first)
    member = re.match(r"no such member in mapping: '(.*)'", text)
    if member:
        return f"no such key: {member.group(1)}"
    return text


# --------------------------------------------------------------------------
# Compiled structural schema


_TYPE_NAMES: Final = {"object": dict, "array": list, "string": str, "boolean": bool}


def _json_type(data: Any) -> str:
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


def _has_type(data: Any, wanted: str) -> bool:
    if wanted == "integer":
        return (isinstance(data, int) and not isinstance(data, bool)) or (isinstance(data, float) and data.is_integer())
    if wanted == "number":
        return isinstance(data, (int, float)) and not isinstance(data, bool)
    expected = _TYPE_NAMES.get(wanted)
    return expected is None or isinstance(data, expected)


Check = Callable[[Any, str], list[Cause]]


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
    rules: list[_Rule] = field(default_factory=list)
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
    node.checks = _value_checks(schema)
    node.all_of = [_compile(s) for s in schema.get("allOf") or ()]
    node.any_of = [_compile(s) for s in schema.get("anyOf") or ()]
    node.one_of = [_compile(s) for s in schema.get("oneOf") or ()]
    if isinstance(schema.get("not"), dict):
        node.not_ = _compile(schema["not"])
    for raw in schema.get("x-kubernetes-validations") or ():
        text = str(raw["rule"])
        message_expression = raw.get("messageExpression")
        node.rules.append(
            _Rule(
                text=text,
                message=str(raw.get("message") or ""),
                message_expression=_cel_program(message_expression) if message_expression else None,
                field_path=str(raw.get("fieldPath") or ""),
                reason=str(raw.get("reason") or "FieldValueInvalid"),
                program=_cel_program(text),
                is_transition=re.search(r"\boldSelf\b", text) is not None,
            )
        )
    return node


def _number(limit: Any) -> str:
    """Schema limits are float64 in Kubernetes, so they print as Go floats."""
    return _go_float(float(limit))


def _value_checks(schema: dict[str, Any]) -> list[Check]:
    """The keyword checks of one node, messages as kube-openapi words them."""
    checks: list[Check] = []
    if "enum" in schema:
        allowed = list(schema["enum"])
        checks.append(lambda v, p: [] if v in allowed else [_not_supported(p, v, allowed)])
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
        checks.append(lambda v, p: [_too_long(p, longest)] if isinstance(v, str) and len(v) > longest else [])
    if "minLength" in schema:
        shortest = int(schema["minLength"])
        checks.append(
            lambda v, p: (
                [_invalid(p, v, f"{p} in body should be at least {shortest} chars long")]
                if isinstance(v, str) and len(v) < shortest
                else []
            )
        )
    if "pattern" in schema:
        source = str(schema["pattern"])
        compiled = re.compile(source)
        checks.append(
            lambda v, p: (
                [_invalid(p, v, f"{p} in body should match '{source}'")]
                if isinstance(v, str) and not compiled.search(v)
                else []
            )
        )
    if "maxItems" in schema:
        most = int(schema["maxItems"])
        checks.append(lambda v, p: [_too_many(p, len(v), most)] if isinstance(v, list) and len(v) > most else [])
    if "minItems" in schema:
        least = int(schema["minItems"])
        checks.append(
            lambda v, p: (
                [_invalid(p, len(v), f"{p} in body should have at least {least} items")]
                if isinstance(v, list) and len(v) < least
                else []
            )
        )
    if schema.get("uniqueItems"):
        checks.append(
            lambda v, p: (
                [_invalid(p, v, f"{p} in body shouldn't contain duplicates")]
                if isinstance(v, list) and len({json.dumps(i, sort_keys=True) for i in v}) < len(v)
                else []
            )
        )
    if "maxProperties" in schema:
        most_props = int(schema["maxProperties"])
        checks.append(
            lambda v, p: [_too_many(p, len(v), most_props)] if isinstance(v, dict) and len(v) > most_props else []
        )
    if "minProperties" in schema:
        least_props = int(schema["minProperties"])
        checks.append(
            lambda v, p: (
                [_invalid(p, len(v), f"{p} in body should have at least {least_props} properties")]
                if isinstance(v, dict) and len(v) < least_props
                else []
            )
        )
    fmt = schema.get("format")
    if fmt in _FORMATS:
        valid = _FORMATS[fmt]
        checks.append(
            lambda v, p: (
                [_invalid(p, v, f"{p} in body must be of type {fmt}: {json.dumps(v)}")]
                if isinstance(v, str) and not valid(v)
                else []
            )
        )
    return checks


def _numeric(ok: Callable[[Any], bool], detail: str) -> Check:
    def check(value: Any, path: str) -> list[Cause]:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or ok(value):
            return []
        return [_invalid(path, value, f"{path} in body {detail}")]

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
            if not (_has_type(data, "integer") or isinstance(data, str)):
                actual = _json_type(data)
                causes.append(
                    Cause(
                        "FieldValueTypeInvalid",
                        path,
                        f"Invalid value: {json.dumps(actual)}: {path} in body must be of type integer,string: {json.dumps(actual)}",
                    )
                )
                return
        elif node.type and not _has_type(data, node.type):
            actual = _json_type(data)
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
                    causes.append(_required(_child_path(path, name)))
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
            self._run_rules(node, data, path, old, has_old, causes)

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
                    causes.append(_duplicate(item_path, shown))
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
            causes.append(_invalid(path, data, f"{path} in body must validate at least one schema (anyOf)"))
        if node.one_of and sum(passes(b) for b in node.one_of) != 1:
            causes.append(_invalid(path, data, f"{path} in body must validate one and only one schema (oneOf)"))
        if node.not_ is not None and passes(node.not_):
            causes.append(_invalid(path, data, f"{path} in body must not validate the schema (not)"))

    def _run_rules(self, node: _Node, data: Any, path: str, old: Any, has_old: bool, causes: list[Cause]) -> None:
        activation: dict[str, Any] = {"self": json_to_cel(data)}
        if has_old:
            activation["oldSelf"] = json_to_cel(old)
        shown_type = node.type or ("integer,string" if node.int_or_string else "")
        for rule in node.rules:
            if rule.is_transition and not has_old:
                continue
            rule_text = rule.text.strip()
            try:
                result = rule.program.evaluate(activation)
            except Exception as error:  # noqa: BLE001 - cel-python raises CELEvalError and plain Python errors alike
                causes.append(_invalid(path, shown_type, f"{_cel_error_text(error)} evaluating rule: {rule_text}"))
                continue
            if isinstance(result, CELEvalError):
                causes.append(_invalid(path, shown_type, f"{_cel_error_text(result)} evaluating rule: {rule_text}"))
                continue
            if bool(result):
                continue
            message = rule.message or f"failed rule: {rule_text}"
            if rule.message_expression is not None:
                try:
                    computed = rule.message_expression.evaluate(activation)
                    if isinstance(computed, str) and computed.strip():
                        message = str(computed)
                except Exception:  # noqa: BLE001, S110 - a broken messageExpression falls back to message, as Kubernetes does
                    pass
            rule_path = path
            if rule.field_path:
                rule_path = path + _cel_field_path(rule.field_path)
                rule_path = rule_path.lstrip(".")
            causes.append(_rule_cause(rule_path, shown_type, message, rule.reason))


def _cel_field_path(field_path: str) -> str:
    """``.spec.a['b.c']`` -> ``.spec.a[b.c]`` (field.Path's spelling of a map key)."""
    return re.sub(r"\['([^']*)'\]", r"[\1]", field_path if field_path.startswith((".", "[")) else "." + field_path)


def _rule_cause(path: str, shown_type: str, message: str, reason: str) -> Cause:
    if reason == "FieldValueForbidden":
        return _forbidden(path, message)
    if reason == "FieldValueRequired":
        return _required(path, message)
    if reason == "FieldValueDuplicate":
        return _duplicate(path, shown_type)
    return _invalid(path, shown_type, message)


def _map_key(item: dict[str, Any], keys: tuple[str, ...]) -> str:
    return json.dumps([item.get(k) for k in keys])


def _prune_object_meta(meta: Any, *, keep_all: bool) -> Any:
    if not isinstance(meta, dict) or keep_all:
        return copy.deepcopy(meta)
    return {name: copy.deepcopy(v) for name, v in meta.items() if name in _OBJECT_META_FIELDS}


# --------------------------------------------------------------------------
# Names, labels, annotations (apimachinery pkg/util/validation)

_DNS1123_LABEL: Final = "[a-z0-9]([-a-z0-9]*[a-z0-9])?"
_DNS1123_SUBDOMAIN: Final = _DNS1123_LABEL + r"(\." + _DNS1123_LABEL + ")*"
_DNS1035_LABEL: Final = "[a-z]([-a-z0-9]*[a-z0-9])?"
_QUALIFIED_NAME: Final = "([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]"
_LABEL_VALUE: Final = "(" + _QUALIFIED_NAME + ")?"

_DNS1123_LABEL_MSG: Final = (
    "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', "
    "and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', "
    f"regex used for validation is '{_DNS1123_LABEL}')"
)
_DNS1123_SUBDOMAIN_MSG: Final = (
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', "
    "and must start and end with an alphanumeric character (e.g. 'example.com', "
    f"regex used for validation is '{_DNS1123_SUBDOMAIN}')"
)
_DNS1035_LABEL_MSG: Final = (
    "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an "
    "alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', "
    f"regex used for validation is '{_DNS1035_LABEL}')"
)
_QUALIFIED_NAME_MSG: Final = (
    "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with "
    "an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', "
    f"regex used for validation is '{_QUALIFIED_NAME}')"
)
_LABEL_VALUE_MSG: Final = (
    "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', "
    "and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', "
    f"regex used for validation is '{_LABEL_VALUE}')"
)
_TOTAL_ANNOTATION_BYTES: Final = 256 * 1024


def _dns_label_errors(text: str) -> list[str]:
    errors = [] if len(text) <= 63 else ["must be no more than 63 characters"]
    if not re.fullmatch(_DNS1123_LABEL, text):
        errors.append(_DNS1123_LABEL_MSG)
    return errors


def _dns_subdomain_errors(text: str) -> list[str]:
    errors = [] if len(text) <= 253 else ["must be no more than 253 characters"]
    if not re.fullmatch(_DNS1123_SUBDOMAIN, text):
        errors.append(_DNS1123_SUBDOMAIN_MSG)
    return errors


def _dns1035_errors(text: str) -> list[str]:
    errors = [] if len(text) <= 63 else ["must be no more than 63 characters"]
    if not re.fullmatch(_DNS1035_LABEL, text):
        errors.append(_DNS1035_LABEL_MSG)
    return errors


def _qualified_name_errors(text: str) -> list[str]:
    parts = text.split("/")
    if len(parts) > 2:
        return ["a qualified name " + _QUALIFIED_NAME_MSG.replace("name part ", "", 1)]
    errors: list[str] = []
    name = parts[-1]
    if len(parts) == 2:
        prefix = parts[0]
        if not prefix:
            errors.append("prefix part must be non-empty")
        else:
            errors.extend("prefix part " + message for message in _dns_subdomain_errors(prefix))
    if not name:
        errors.append("name part must be non-empty")
    elif len(name) > 63:
        errors.append("name part must be no more than 63 characters")
    if name and not re.fullmatch(_QUALIFIED_NAME, name):
        errors.append(_QUALIFIED_NAME_MSG)
    return errors


def _label_value_errors(text: str) -> list[str]:
    errors = [] if len(text) <= 63 else ["must be no more than 63 characters"]
    if not re.fullmatch(_LABEL_VALUE, text):
        errors.append(_LABEL_VALUE_MSG)
    return errors


def _validate_labels(labels: Any, path: str) -> list[Cause]:
    if labels is None:
        return []
    if not isinstance(labels, dict):
        return [_invalid(path, labels, "must be a map of string to string")]
    causes: list[Cause] = []
    for name, text in labels.items():
        causes.extend(_invalid(path, name, message) for message in _qualified_name_errors(str(name)))
        if not isinstance(text, str):
            causes.append(_invalid(f"{path}[{name}]", text, "must be a string"))
            continue
        causes.extend(_invalid(path, text, message) for message in _label_value_errors(text))
    return causes


def _validate_annotations(annotations: Any, path: str) -> list[Cause]:
    if annotations is None:
        return []
    if not isinstance(annotations, dict):
        return [_invalid(path, annotations, "must be a map of string to string")]
    causes: list[Cause] = []
    total = 0
    for name, text in annotations.items():
        causes.extend(_invalid(path, name, message) for message in _qualified_name_errors(str(name).lower()))
        total += len(str(name)) + len(str(text))
    if total > _TOTAL_ANNOTATION_BYTES:
        causes.append(_too_long(path, _TOTAL_ANNOTATION_BYTES))
    return causes


def validate_metadata(obj: dict[str, Any], *, dns1035: bool) -> list[Cause]:
    """Name (DNS-1123 subdomain, or DNS-1035 label for Services), labels, annotations."""
    metadata = obj.get("metadata")
    if not isinstance(metadata, dict):
        return [_required("metadata")]
    causes: list[Cause] = []
    name = metadata.get("name")
    generate_name = metadata.get("generateName")
    if not name:
        if not generate_name:
            causes.append(_required("metadata.name", "name or generateName is required"))
    else:
        name_errors = _dns1035_errors(str(name)) if dns1035 else _dns_subdomain_errors(str(name))
        causes.extend(_invalid("metadata.name", name, message) for message in name_errors)
    if generate_name and not name:
        # generateName is checked with its random suffix's room left, as a prefix.
        trimmed = str(generate_name).rstrip("-") or "a"
        prefix_errors = _dns1035_errors(trimmed) if dns1035 else _dns_subdomain_errors(trimmed)
        causes.extend(_invalid("metadata.generateName", generate_name, m) for m in prefix_errors)
    namespace = metadata.get("namespace")
    if namespace:
        causes.extend(_invalid("metadata.namespace", namespace, m) for m in _dns_label_errors(str(namespace)))
    causes.extend(_validate_labels(metadata.get("labels"), "metadata.labels"))
    causes.extend(_validate_annotations(metadata.get("annotations"), "metadata.annotations"))
    causes.extend(_validate_owner_references(metadata.get("ownerReferences")))
    return causes


def _validate_owner_references(refs: Any) -> list[Cause]:
    """At most one owner may be the controller (apimachinery ValidateOwnerReferences)."""
    if not isinstance(refs, list):
        return []
    controllers = [r for r in refs if isinstance(r, dict) and r.get("controller") is True]
    if len(controllers) < 2:
        return []
    found = " and ".join(f"{r.get('kind')}/{r.get('name')}" for r in controllers)
    return [
        _invalid(
            "metadata.ownerReferences",
            refs,
            f'Only one reference can have Controller set to true. Found "true" in references for {found}',
        )
    ]


# --------------------------------------------------------------------------
# Built-in kinds (kubernetes pkg/apis/*/validation, trimmed to what we use)

_SERVICE_TYPES: Final = ["ClusterIP", "ExternalName", "LoadBalancer", "NodePort"]
_PROTOCOLS: Final = ["SCTP", "TCP", "UDP"]
_PATH_TYPES: Final = ["Exact", "ImplementationSpecific", "Prefix"]
_PORT_RANGE_MSG: Final = "must be between 1 and 65535, inclusive"


def _port_name_errors(name: str) -> list[str]:
    errors: list[str] = []
    if len(name) > 15:
        errors.append("must be no more than 15 characters")
    if not re.fullmatch("[-a-z0-9]+", name):
        errors.append("must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)")
    if not re.search("[a-z]", name):
        errors.append("must contain at least one letter (a-z)")
    if "--" in name:
        errors.append("must not contain consecutive hyphens")
    if name.startswith("-") or name.endswith("-"):
        errors.append("must not begin or end with a hyphen")
    return errors


def _validate_port_number(port: Any, path: str) -> list[Cause]:
    if isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535:
        return [_invalid(path, port, _PORT_RANGE_MSG)]
    return []


def _validate_service(obj: dict[str, Any]) -> list[Cause]:
    spec = obj.get("spec")
    if not isinstance(spec, dict):
        return [_required("spec")]
    causes: list[Cause] = []
    service_type = spec.get("type", "ClusterIP")
    if service_type not in _SERVICE_TYPES:
        causes.append(_not_supported("spec.type", service_type, _SERVICE_TYPES))
    affinity = spec.get("sessionAffinity", "None")
    if affinity not in ("ClientIP", "None"):
        causes.append(_not_supported("spec.sessionAffinity", affinity, ["ClientIP", "None"]))
    timeout = (((spec.get("sessionAffinityConfig") or {}).get("clientIP")) or {}).get("timeoutSeconds")
    if affinity == "ClientIP" and timeout is not None and not (isinstance(timeout, int) and 0 < timeout <= 86400):
        causes.append(
            _invalid(
                "spec.sessionAffinityConfig.clientIP.timeoutSeconds",
                timeout,
                "must be greater than 0 and less than 86400",
            )
        )
    ports = spec.get("ports")
    if service_type != "ExternalName" and not ports:
        causes.append(_required("spec.ports"))
    if ports is not None and not isinstance(ports, list):
        causes.append(_invalid("spec.ports", ports, "must be a list"))
        ports = []
    names: set[str] = set()
    pairs: set[tuple[Any, Any]] = set()
    ports = ports or []
    for index, port in enumerate(ports):
        path = f"spec.ports[{index}]"
        if not isinstance(port, dict):
            causes.append(_invalid(path, port, "must be an object"))
            continue
        name = port.get("name", "")
        if len(ports) > 1 and not name:
            causes.append(_required(f"{path}.name"))
        elif name:
            causes.extend(_invalid(f"{path}.name", name, m) for m in _dns_label_errors(name))
            if name in names:
                causes.append(_duplicate(f"{path}.name", name))
            names.add(name)
        causes.extend(_validate_port_number(port.get("port"), f"{path}.port"))
        protocol = port.get("protocol", "TCP")
        if protocol not in _PROTOCOLS:
            causes.append(_not_supported(f"{path}.protocol", protocol, _PROTOCOLS))
        if (port.get("port"), protocol) in pairs:
            causes.append(_duplicate(path, {"port": port.get("port"), "protocol": protocol}))
        pairs.add((port.get("port"), protocol))
        target = port.get("targetPort")
        if isinstance(target, str):
            causes.extend(_invalid(f"{path}.targetPort", target, m) for m in _port_name_errors(target))
        elif target is not None:
            causes.extend(_validate_port_number(target, f"{path}.targetPort"))
    causes.extend(_validate_labels(spec.get("selector"), "spec.selector"))
    return causes


def _validate_ingress_backend(backend: Any, path: str) -> list[Cause]:
    if not isinstance(backend, dict):
        return [_required(path)]
    service = backend.get("service")
    if service is None and backend.get("resource") is None:
        return [_invalid(path, "", "one backend (service or resource) must be specified")]
    if service is None:
        return []
    causes: list[Cause] = []
    if not service.get("name"):
        causes.append(_required(f"{path}.service.name"))
    else:
        causes.extend(_invalid(f"{path}.service.name", service["name"], m) for m in _dns1035_errors(service["name"]))
    port = service.get("port") or {}
    if "name" in port and "number" in port:
        causes.append(_invalid(f"{path}.service.port", port, "cannot set both port name & port number"))
    elif "number" in port:
        causes.extend(_validate_port_number(port["number"], f"{path}.service.port.number"))
    elif port.get("name"):
        causes.extend(_invalid(f"{path}.service.port.name", port["name"], m) for m in _port_name_errors(port["name"]))
    else:
        causes.append(_invalid(f"{path}.service.port", port, "port name or number is required"))
    return causes


def _validate_ingress(obj: dict[str, Any]) -> list[Cause]:
    spec = obj.get("spec")
    if not isinstance(spec, dict):
        return [_required("spec")]
    causes: list[Cause] = []
    rules = spec.get("rules") or []
    if not rules and spec.get("defaultBackend") is None:
        causes.append(_invalid("spec", spec, "either `defaultBackend` or `rules` must be specified"))
    if spec.get("defaultBackend") is not None:
        causes.extend(_validate_ingress_backend(spec["defaultBackend"], "spec.defaultBackend"))
    for index, rule in enumerate(rules):
        path = f"spec.rules[{index}]"
        host = rule.get("host")
        if host:
            checked = host.removeprefix("*.")
            causes.extend(_invalid(f"{path}.host", host, m) for m in _dns_subdomain_errors(checked))
        http = rule.get("http")
        if http is None:
            continue
        paths = http.get("paths")
        if not paths:
            causes.append(_required(f"{path}.http.paths"))
            continue
        for p_index, entry in enumerate(paths):
            entry_path = f"{path}.http.paths[{p_index}]"
            path_type = entry.get("pathType")
            if path_type is None:
                causes.append(_required(f"{entry_path}.pathType", "pathType must be specified"))
            elif path_type not in _PATH_TYPES:
                causes.append(_not_supported(f"{entry_path}.pathType", path_type, _PATH_TYPES))
            text = entry.get("path", "")
            if path_type in {"Exact", "Prefix"} and not str(text).startswith("/"):
                causes.append(_invalid(f"{entry_path}.path", text, "must be an absolute path"))
            causes.extend(_validate_ingress_backend(entry.get("backend"), f"{entry_path}.backend"))
    for index, tls in enumerate(spec.get("tls") or []):
        for h_index, host in enumerate(tls.get("hosts") or []):
            checked = host.removeprefix("*.")
            causes.extend(
                _invalid(f"spec.tls[{index}].hosts[{h_index}]", host, m) for m in _dns_subdomain_errors(checked)
            )
    return causes


def _validate_lease(obj: dict[str, Any]) -> list[Cause]:
    spec = obj.get("spec") or {}
    causes: list[Cause] = []
    for name in ("leaseDurationSeconds", "leaseTransitions"):
        number = spec.get(name)
        if number is None:
            continue
        if name == "leaseDurationSeconds" and (not isinstance(number, int) or number <= 0):
            causes.append(_invalid(f"spec.{name}", number, "must be greater than 0"))
        if name == "leaseTransitions" and (not isinstance(number, int) or number < 0):
            causes.append(_invalid(f"spec.{name}", number, "must be greater than or equal to 0"))
    return causes


def _validate_event(obj: dict[str, Any]) -> list[Cause]:
    involved = obj.get("involvedObject")
    if not isinstance(involved, dict):
        return [_required("involvedObject")]
    causes: list[Cause] = []
    event_namespace = (obj.get("metadata") or {}).get("namespace", "")
    involved_namespace = involved.get("namespace", "")
    if involved_namespace and event_namespace and involved_namespace != event_namespace:
        causes.append(_invalid("involvedObject.namespace", involved_namespace, "does not match event.namespace"))
    event_type = obj.get("type")
    if event_type is not None and event_type not in ("Normal", "Warning"):
        causes.append(_not_supported("type", event_type, ["Normal", "Warning"]))
    return causes


def _validate_namespace(obj: dict[str, Any]) -> list[Cause]:
    name = (obj.get("metadata") or {}).get("name")
    if not name:
        return []
    # A namespace name is a DNS-1123 label, stricter than other names.
    return [_invalid("metadata.name", name, m) for m in _dns_label_errors(str(name))]


_BUILTIN_VALIDATORS: Final[dict[str, Callable[[dict[str, Any]], list[Cause]]]] = {
    "Service": _validate_service,
    "Ingress": _validate_ingress,
    "Lease": _validate_lease,
    "Event": _validate_event,
    "Namespace": _validate_namespace,
}


def validate_builtin(kind: str, obj: dict[str, Any]) -> list[Cause]:
    """Kind-specific rules of a built-in kind (metadata: :func:`validate_metadata`)."""
    validator = _BUILTIN_VALIDATORS.get(kind)
    return validator(obj) if validator is not None else []


def default_builtin(kind: str, obj: dict[str, Any]) -> dict[str, Any]:
    """Server-side defaults of a built-in kind (Service; others unchanged)."""
    out = copy.deepcopy(obj)
    if kind != "Service" or not isinstance(out.get("spec"), dict):
        return out
    spec = out["spec"]
    spec.setdefault("type", "ClusterIP")
    spec.setdefault("sessionAffinity", "None")
    if spec["sessionAffinity"] == "ClientIP":
        client_ip = spec.setdefault("sessionAffinityConfig", {}).setdefault("clientIP", {})
        client_ip.setdefault("timeoutSeconds", 10800)
    if spec["type"] != "ExternalName":
        spec.setdefault("internalTrafficPolicy", "Cluster")
        spec.setdefault("ipFamilyPolicy", "SingleStack")
        spec.setdefault("ipFamilies", ["IPv4"])
    for port in spec.get("ports") or []:
        if isinstance(port, dict):
            port.setdefault("protocol", "TCP")
            if "targetPort" not in port and "port" in port:
                port["targetPort"] = port["port"]
    return out
