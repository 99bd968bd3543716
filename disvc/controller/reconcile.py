"""The reconciler contract: what a reconcile gets, what it may use, what it returns.

The reconciler never sees watch events or the queue (as controller-runtime's
``reconcile.Reconciler``): it gets a key, reads through a ``Reader``, writes
through a ``Writer`` and returns a ``Result``. The worker maps the outcome to
queue operations.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from disvc.builders.types import ChildKind, ChildRef, EventSpec, Obj, ObjectKey


@dataclass(frozen=True, slots=True)
class Result:
    """How a reconcile that did not raise wants to be scheduled again."""

    requeue_after: float | None = None
    """Reconcile this key again after so many seconds (None: only on the next event)."""


class Reader(Protocol):
    """Reads for one reconcile: the informer cache first, the API only on a miss."""

    def get_disvc(self, key: ObjectKey) -> Obj | None:
        """The cached DISVC, or None once it is gone."""

    def children(self, key: ObjectKey) -> list[Obj]:
        """Cached ISVCs, Services and Ingresses labelled or owned for this DISVC."""

    def get_live(self, kind: ChildKind, namespace: str, name: str) -> Obj | None:
        """An uncached GET, used when a create finds its name taken by an
        object the cache does not hold (foreign objects carry no ``disvc`` label)."""


class Writer(Protocol):
    """Every write the reconciler makes; each returns the object the API returned."""

    def apply(self, obj: Obj) -> Obj:
        """Server-side apply (field manager ``disvc-controller``, force) of an
        object this DISVC controls."""

    def create(self, obj: Obj) -> Obj:
        """Server-side apply without force, for a name the cache does not hold.

        Creates the object when the name is free. When an object already holds
        the name and differs in any field we set (a foreign object: it carries
        no ``disvc`` label, so the cache cannot show it), the API refuses with
        ``ConflictError`` (or ``PermanentError`` for a second controller
        reference) and the object is left as it was."""

    def delete(self, ref: ChildRef) -> None:
        """Delete with uid and resourceVersion preconditions; gone already is fine."""

    def apply_status(self, disvc: Obj, status: Obj) -> Obj:
        """Server-side apply of ``status`` through the status subresource."""


class EventRecorder(Protocol):
    """Records core/v1 Events about a DISVC without blocking the reconcile."""

    def emit(self, regarding: Obj, event: EventSpec) -> None: ...


class Reconciler(Protocol):
    def reconcile(self, key: ObjectKey) -> Result: ...
