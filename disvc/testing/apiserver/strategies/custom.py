"""Custom resources: validated by their CRD version's structural schema.

A custom resource is pruned to its schema (unknown fields dropped, or
refused under ``fieldValidation=Strict``), defaulted from it, then checked
against it and its CEL rules (:mod:`disvc.testing.apiserver.validation.schema`).
Its lists merge as the schema's ``x-kubernetes-list-type`` says; it takes no
strategic merge patch, and a deleted one is answered with the object.

Compiling a schema is the expensive part (KServe's is 39k lines), so
:class:`CompiledSchemas` keeps one validator per distinct schema: the CRD
strategy compiles a new version's schema while checking the CRD write, and
the custom resources of that version reuse it.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from typing import Any, ClassVar

from disvc.testing.apiserver import errors, validation
from disvc.testing.apiserver.listtypes import ListKeys, schema_list_keys
from disvc.testing.apiserver.resources import ResourceType
from disvc.testing.apiserver.storage import Obj
from disvc.testing.apiserver.strategies.base import Strategy
from disvc.testing.apiserver.validation import Cause, SchemaValidator


def _digest(schema: Obj | None) -> str:
    return hashlib.sha1(json.dumps(schema, sort_keys=True).encode()).hexdigest()


class CompiledSchemas:
    """One compiled validator per distinct ``openAPIV3Schema``."""

    def __init__(self) -> None:
        self._validators: dict[str, SchemaValidator] = {}

    def get(self, schema: Obj | None) -> SchemaValidator:
        """The schema's validator, compiled on first use (may raise on a bad schema)."""
        digest = _digest(schema)
        validator = self._validators.get(digest)
        if validator is None:
            validator = SchemaValidator(schema or {})
            self._validators[digest] = validator
        return validator

    def retain(self, schemas: Iterable[Obj | None]) -> None:
        """Forget every validator but those of ``schemas`` (the ones still served)."""
        kept = {_digest(s) for s in schemas}
        self._validators = {d: v for d, v in self._validators.items() if d in kept}


class CustomResourceStrategy(Strategy):
    return_deleted_object: ClassVar[bool] = True
    strategic_merge: ClassVar[bool] = False

    def __init__(self, rt: ResourceType, schemas: CompiledSchemas) -> None:
        super().__init__(rt)
        self._validator = schemas.get(rt.schema)

    def canonicalize(self, obj: Obj, *, strict: bool) -> Obj:
        pruned = self._validator.prune(obj)
        if strict:
            unknown = _dropped_fields(
                {k: v for k, v in obj.items() if k != "metadata"},
                {k: v for k, v in pruned.items() if k != "metadata"}, "",
            )
            if unknown:
                raise errors.bad_request(
                    "strict decoding error: " + ", ".join(f'unknown field "{p}"' for p in unknown)
                )
        return self._validator.default(pruned)

    def validate(self, obj: Obj, old: Obj | None) -> list[Cause]:
        return [
            *validation.validate_metadata(obj, dns1035=False),
            *self._validator.validate(obj, old),
        ]

    def _make_list_keys(self) -> ListKeys:
        return schema_list_keys(self.rt.schema or {})


def _dropped_fields(before: Any, after: Any, prefix: str) -> list[str]:
    """Field paths present in ``before`` but pruned from ``after``."""
    dropped: list[str] = []
    if isinstance(before, dict) and isinstance(after, dict):
        for key, value in before.items():
            path = f"{prefix}.{key}" if prefix else key
            if key not in after:
                dropped.append(path)
            else:
                dropped.extend(_dropped_fields(value, after[key], path))
    elif isinstance(before, list) and isinstance(after, list):
        for index, (item, kept) in enumerate(zip(before, after, strict=False)):
            dropped.extend(_dropped_fields(item, kept, f"{prefix}[{index}]"))
    return dropped
