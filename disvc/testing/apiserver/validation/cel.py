"""CEL ``x-kubernetes-validations`` rules of CRD schemas, evaluated with cel-python.

Kubernetes compiles each rule with cel-go plus its strings extension and list
library; cel-python ships neither, so the functions CRDs use are added here.
A rule breaks as a :class:`Cause` worded as the API server words it
(``failed rule: ...`` or the rule's own message). Programs are compiled once
per rule text, process-wide. Used by :mod:`schema` while it walks an object.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

import celpy
from celpy import celtypes
from celpy.adapter import json_to_cel
from celpy.evaluation import CELEvalError

from disvc.testing.apiserver.validation.causes import Cause, duplicate, forbidden, invalid, required


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
class Rule:
    text: str
    message: str
    message_expression: Any
    field_path: str
    reason: str
    program: Any
    is_transition: bool


_CEL_ENV: Final = celpy.Environment()
_PROGRAMS: dict[str, Any] = {}


def program(text: str) -> Any:
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


def rules_of(schema: dict[str, Any]) -> list[Rule]:
    """The compiled ``x-kubernetes-validations`` of one schema node."""
    rules: list[Rule] = []
    for raw in schema.get("x-kubernetes-validations") or ():
        text = str(raw["rule"])
        message_expression = raw.get("messageExpression")
        rules.append(
            Rule(
                text=text,
                message=str(raw.get("message") or ""),
                message_expression=program(message_expression) if message_expression else None,
                field_path=str(raw.get("fieldPath") or ""),
                reason=str(raw.get("reason") or "FieldValueInvalid"),
                program=program(text),
                is_transition=re.search(r"\boldSelf\b", text) is not None,
            )
        )
    return rules


def evaluate(rules: list[Rule], data: Any, path: str, old: Any, has_old: bool, shown_type: str) -> list[Cause]:
    """Every rule ``data`` breaks at ``path`` (transition rules only with an old value)."""
    causes: list[Cause] = []
    activation: dict[str, Any] = {"self": json_to_cel(data)}
    if has_old:
        activation["oldSelf"] = json_to_cel(old)
    for rule in rules:
        if rule.is_transition and not has_old:
            continue
        rule_text = rule.text.strip()
        try:
            result = rule.program.evaluate(activation)
        except Exception as error:  # noqa: BLE001 - cel-python raises CELEvalError and plain Python errors alike
            causes.append(invalid(path, shown_type, f"{_cel_error_text(error)} evaluating rule: {rule_text}"))
            continue
        if isinstance(result, CELEvalError):
            causes.append(invalid(path, shown_type, f"{_cel_error_text(result)} evaluating rule: {rule_text}"))
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
    return causes


def _cel_field_path(field_path: str) -> str:
    """``.spec.a['b.c']`` -> ``.spec.a[b.c]`` (field.Path's spelling of a map key)."""
    return re.sub(r"\['([^']*)'\]", r"[\1]", field_path if field_path.startswith((".", "[")) else "." + field_path)


def _rule_cause(path: str, shown_type: str, message: str, reason: str) -> Cause:
    if reason == "FieldValueForbidden":
        return forbidden(path, message)
    if reason == "FieldValueRequired":
        return required(path, message)
    if reason == "FieldValueDuplicate":
        return duplicate(path, shown_type)
    return invalid(path, shown_type, message)
