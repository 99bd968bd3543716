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
        """An uncached GET: the cache holds only labelled children, so a foreign
        object under one of our names is invisible to it."""


class Writer(Protocol):
    """Every write the reconciler makes; each returns the object the API returned."""

    def apply(self, obj: Obj, *, force: bool = True) -> Obj:
        """Server-side apply (field manager ``disvc-controller``).

        ``force`` takes over fields others changed (drift repair on children
        this DISVC controls). Without it the API refuses, with
        ``ConflictError``, to change a field someone else set differently."""

    def create(self, obj: Obj) -> Obj:
        """A plain create: ``ConflictError`` when anything holds the name."""

    def delete(self, ref: ChildRef) -> None:
        """Delete with uid and resourceVersion preconditions; gone already is fine."""

    def apply_status(self, disvc: Obj, status: Obj) -> Obj:
        """Server-side apply of ``status`` through the status subresource."""


class EventRecorder(Protocol):
    """Records core/v1 Events about a DISVC without blocking the reconcile."""

    def emit(self, regarding: Obj, event: EventSpec) -> None: ...


class Reconciler(Protocol):
    def reconcile(self, key: ObjectKey) -> Result: ...
