"""CustomResourceDefinitions: accepted, established and served at once.

A CRD write is checked for what the apiextensions server needs to serve it
(names, scope, one storage version, schemas that compile), and its status
is set as the apiextensions controllers would set it a moment later
(``NamesAccepted`` and ``Established`` true, ``acceptedNames``,
``storedVersions``): here there is no moment later, the CRD is served as
soon as it is stored. Deleting a CRD stops serving its types and deletes
their objects; a version no longer served loses its objects too.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

from disvc.testing.apiserver import clock, errors
from disvc.testing.apiserver.resources import CrdError, ResourceType, crd_types
from disvc.testing.apiserver.storage import Obj, Stored
from disvc.testing.apiserver.strategies.base import Strategy
from disvc.testing.apiserver.strategies.custom import CompiledSchemas
from disvc.testing.apiserver.validation import Cause

if TYPE_CHECKING:
    from disvc.testing.apiserver.store import Store

KEY: Final = "apiextensions.k8s.io/customresourcedefinitions"
"""Storage key of the CustomResourceDefinition resource type."""


class CustomResourceDefinitionStrategy(Strategy):
    def __init__(self, rt: ResourceType, schemas: CompiledSchemas) -> None:
        super().__init__(rt)
        self._schemas = schemas

    def prepare_for_create(self, obj: Obj) -> None:
        super().prepare_for_create(obj)
        self._accept(obj)

    def prepare_for_update(self, new: Obj, old: Obj) -> None:
        self._accept(new)

    def _accept(self, crd: Obj) -> None:
        name = crd["metadata"].get("name", "")
        try:
            types = crd_types(crd)
        except CrdError as exc:
            raise errors.invalid(
                self.rt, name, [Cause("FieldValueInvalid", exc.field_path, f"Invalid value: {exc}")]
            ) from exc
        for served in types:
            try:
                self._schemas.get(served.schema)
            except Exception as exc:  # any schema the validator cannot compile
                raise errors.invalid(self.rt, name, [Cause(
                    "FieldValueInvalid", f"spec.versions[{served.version}].schema.openAPIV3Schema",
                    f"Invalid value: {exc}",
                )]) from exc
        spec = crd["spec"]
        spec.setdefault("conversion", {"strategy": "None"})
        crd["status"] = _accepted_status(spec, dict(crd.get("status") or {}))

    def after_store(self, store: Store, stored: Stored) -> None:
        name = stored.obj["metadata"]["name"]
        before = {t.key for t in store.registry.crd_types(name)}
        types = store.registry.serve_crd(stored.obj)
        for key in before - {t.key for t in types}:
            store.drop_resource(key)
        self._schemas.retain(t.schema for t in store.registry.custom_types())

    def after_delete(self, store: Store, gone: Stored) -> None:
        for served in store.registry.unserve_crd(gone.obj["metadata"]["name"]):
            store.drop_resource(served.key)
        self._schemas.retain(t.schema for t in store.registry.custom_types())


def _accepted_status(spec: Obj, status: Obj) -> Obj:
    """The status the apiextensions controllers give a CRD whose names are free."""
    now = clock.now()
    old_conditions = {
        c.get("type"): c for c in (status.get("conditions") or []) if isinstance(c, dict)
    }

    def condition(kind: str, reason: str, message: str) -> Obj:
        previous = old_conditions.get(kind)
        since = previous.get("lastTransitionTime", now) if previous and previous.get("status") == "True" else now
        return {"type": kind, "status": "True", "lastTransitionTime": since,
                "reason": reason, "message": message}

    status["conditions"] = [
        condition("NamesAccepted", "NoConflicts", "no conflicts found"),
        condition("Established", "InitialNamesAccepted", "the initial names have been accepted"),
    ]
    status["acceptedNames"] = dict(spec.get("names") or {})
    storage_version = next(v["name"] for v in spec["versions"] if v.get("storage"))
    stored_versions = list(status.get("storedVersions") or [])
    if storage_version not in stored_versions:
        stored_versions.append(storage_version)
    status["storedVersions"] = stored_versions
    return status
