"""The strategy of a resource type: what the generic store asks of one type.

The API server has one generic store; what differs between types lives in a
strategy, as in k8s.io/apiserver's ``registry/rest`` (``RESTCreateStrategy``,
``RESTUpdateStrategy``, ``RESTDeleteStrategy``). The store calls, in order:

1. :meth:`Strategy.prepare_for_create` / :meth:`Strategy.prepare_for_update`:
   reset what clients may not set, fill what the server allocates;
2. :meth:`Strategy.canonicalize`: defaults (and pruning, for schemas);
3. :meth:`Strategy.validate`: the reasons to answer 422;
4. :meth:`Strategy.after_store` once the object is stored, or
   :meth:`Strategy.delete` / :meth:`Strategy.after_delete` on deletion.

:class:`Strategy` itself is the strategy of a plain built-in kind (ConfigMap,
Lease, Event, ...): built-in defaulting and validation, list shapes from the
Go types. Types that do more override it, each in its own module.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from disvc.testing.apiserver import validation
from disvc.testing.apiserver.listtypes import ListKeys, builtin_list_keys
from disvc.testing.apiserver.resources import ResourceType
from disvc.testing.apiserver.storage import Obj, Stored
from disvc.testing.apiserver.validation import Cause

if TYPE_CHECKING:
    from disvc.testing.apiserver.store import Store


class Strategy:
    """A built-in kind with nothing special: defaults and validation by kind."""

    return_deleted_object: ClassVar[bool] = False
    """A finished delete answers with the object (else with a Success Status)."""
    strategic_merge: ClassVar[bool] = True
    """Accepts ``application/strategic-merge-patch+json`` (built-ins only)."""
    dns1035_name: ClassVar[bool] = False
    """Names must be DNS-1035 labels (Services), not DNS-1123 subdomains."""

    def __init__(self, rt: ResourceType) -> None:
        self.rt = rt
        self._list_keys: ListKeys | None = None

    def prepare_for_create(self, obj: Obj) -> None:
        """Clear what a create may not set: ``.status`` behind a status subresource."""
        if self.rt.status_subresource:
            obj.pop("status", None)

    def prepare_for_update(self, new: Obj, old: Obj) -> None:
        """Carry over or refuse what an update may not change (nothing, by default)."""

    def canonicalize(self, obj: Obj, *, strict: bool) -> Obj:
        """The object with server-side defaults; ``strict`` refuses unknown fields."""
        return validation.default_builtin(self.rt.kind, obj)

    def validate(self, obj: Obj, old: Obj | None) -> list[Cause]:
        return [
            *validation.validate_metadata(obj, dns1035=self.dns1035_name),
            *validation.validate_builtin(self.rt.kind, obj),
        ]

    def list_keys(self) -> ListKeys:
        """How this type's lists merge under server-side apply."""
        if self._list_keys is None:
            self._list_keys = self._make_list_keys()
        return self._list_keys

    def _make_list_keys(self) -> ListKeys:
        return builtin_list_keys(self.rt.kind)

    def after_store(self, store: Store, stored: Stored) -> None:
        """React to a stored create or update (nothing, by default)."""

    def delete(self, store: Store, old: Stored, policy: str) -> tuple[Obj, bool] | None:
        """Delete in a type-specific way; None leaves it to the generic store.

        Returns (object to answer with, whether it is gone).
        """
        return None

    def after_delete(self, store: Store, gone: Stored) -> None:
        """React to the object being removed for good (nothing, by default)."""
