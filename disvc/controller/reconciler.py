"""The DISVC reconciler: one key in, the cluster moved one step towards desired.

``DisvcReconciler`` is the thin, level-based loop of STYLE §4 (as
controller-runtime's ``reconcile.Reconciler``): read the DISVC and its children
from the cache, ask ``desired.state`` what the world should look like, make
exactly the writes the plan lists, and say when to come back. Every decision
about *what* to write lives in the pure builders; this module only sequences
reads and writes. It never sees the watch event or the queue: the worker maps
a raised error to a backoff and a ``Result`` to a requeue.

Writes are ordered creates/updates, then deletes, then status, so a rollout
never deletes a serving generation before its successor exists, and the
status a user reads describes objects that are already there.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import structlog

from disvc.builders import desired
from disvc.builders.desired import BuildOptions
from disvc.builders.types import ChildKind, Obj, ObjectKey
from disvc.controller.errors import NotFoundError
from disvc.controller.reconcile import EventRecorder, Reader, Result, Writer

log = structlog.get_logger(__name__)


class DisvcReconciler:
    """Converges one DISVC per call; safe to call concurrently for different keys."""

    def __init__(
        self,
        reader: Reader,
        writer: Writer,
        events: EventRecorder,
        build_options_factory: Callable[[], BuildOptions],
    ) -> None:
        self.reader = reader
        self.writer = writer
        self.events = events
        # A factory, not a value: BuildOptions carries the reconcile's "now".
        self.build_options_factory = build_options_factory

    def reconcile(self, key: ObjectKey) -> Result:
        disvc = self.reader.get_disvc(key)
        if disvc is None:
            return Result()  # children go by ownerReference garbage collection
        live = self.reader.children(key)
        options = self.build_options_factory()
        want = desired.state(disvc, live, options)
        unseen = self._uncached_clashes(want.plan.create, live)
        if unseen:
            # The cache only holds labelled objects: a foreign object with one of
            # our names stays invisible until we look. Plan again with it in view
            # so the builders report the conflict instead of overwriting it.
            live = [*live, *unseen]
            want = desired.state(disvc, live, options)
        for obj in (*want.plan.create, *want.plan.update):
            self.writer.apply(obj)
        for ref in want.plan.delete:
            self.writer.delete(ref)
        if want.status != disvc.get("status"):
            try:
                self.writer.apply_status(disvc, want.status)
            except NotFoundError:
                return Result()  # deleted while we reconciled; its delete event is on the way
        for event in want.events:
            self.events.emit(disvc, event)
        if want.plan.is_empty and want.status == disvc.get("status"):
            log.debug("Already converged")
        return Result(requeue_after=want.recheck_after)

    def _uncached_clashes(self, creates: Sequence[Obj], live: Sequence[Obj]) -> list[Obj]:
        """Objects the API holds under names we are about to create."""
        known = {_identity(obj) for obj in live}
        found: list[Obj] = []
        for obj in creates:
            kind, namespace, name = _identity(obj)
            if (kind, namespace, name) in known:
                continue
            existing = self.reader.get_live(kind, namespace, name)
            if existing is not None:
                found.append(existing)
        return found


def _identity(obj: Obj) -> tuple[ChildKind, str, str]:
    meta = obj["metadata"]
    kind: ChildKind = obj["kind"]
    return kind, meta.get("namespace", ""), meta["name"]
