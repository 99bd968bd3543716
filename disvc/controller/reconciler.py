"""The DISVC reconciler: one key in, the cluster moved one step towards desired.

``DisvcReconciler`` is a thin, level-based loop (as controller-runtime's
``reconcile.Reconciler``): read the DISVC and its children from the cache,
ask ``desired.state`` what the world should look like, make exactly the
writes the plan lists, and say when to come back. Every decision
about *what* to write lives in the pure builders; this module only sequences
reads and writes. It never sees the watch event or the queue: the worker maps
a raised error to a backoff and a ``Result`` to a requeue.

Writes are ordered creates/updates, then deletes, then status, so a rollout
never deletes a serving generation before its successor exists, and the
status a user reads describes objects that are already there. The status
write is conditional on the DISVC version it was worked out from
(``ApiWriter.apply_status``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Final

import structlog

from disvc.builders import analysis, desired, names
from disvc.builders.desired import BuildOptions, Desired
from disvc.builders.types import ChildKind, Obj, ObjectKey
from disvc.controller.errors import ConflictError, NotFoundError, PermanentError
from disvc.controller.reconcile import EventRecorder, Reader, Result, Writer

log = structlog.get_logger(__name__)


Measure = Callable[[ObjectKey, Sequence[analysis.Query]], analysis.Measured]
"""Runs a canary analysis's due queries (``controller.prometheus``)."""


class DisvcReconciler:
    """Converges one DISVC per call; safe to call concurrently for different keys."""

    def __init__(
        self,
        reader: Reader,
        writer: Writer,
        events: EventRecorder,
        build_options_factory: Callable[[], BuildOptions],
        measure: Measure | None = None,
    ) -> None:
        self.reader = reader
        self.writer = writer
        self.events = events
        # A factory, not a value: BuildOptions carries the reconcile's "now".
        self.build_options_factory = build_options_factory
        self.measure = measure

    def reconcile(self, key: ObjectKey) -> Result:
        disvc = self.reader.get_disvc(key)
        if disvc is None:
            return Result()  # children go by ownerReference garbage collection
        options = self.build_options_factory()
        children = self.reader.children(key)
        want = desired.state(disvc, children, options)
        if want.queries and self.measure is not None:
            # a canary's measurement is due: take it, then decide with it
            options = replace(options, measured=self.measure(key, want.queries))
            want = desired.state(disvc, children, options)
        refusal: PermanentError | None = None
        try:
            want = self._write_children(key, disvc, want, options)
            if want.plan.create:
                want = self._as_now(key, disvc, want, options)
        except PermanentError as refused:
            # Say so where users look, claiming nothing the plan did not
            # write; then raise, so the worker retries with backoff: an
            # admin's fix (a quota, a webhook) sends no event to wake us.
            refusal = refused
            want = desired.rejected(disvc, want, str(refused), options)
        if want.status != (disvc.get("status") or {}):
            try:
                self.writer.apply_status(disvc, want.status)
            except NotFoundError:
                return Result()  # deleted while we reconciled; its delete event is on the way
            except ConflictError:
                # Changed (or re-created) since we read it: the status is
                # worked out again from the new version. The Events describe
                # writes already made, so they are told now.
                self._emit(disvc, want)
                raise
        self._emit(disvc, want)
        if refusal is not None:
            raise refusal
        if want.plan.is_empty and want.status == (disvc.get("status") or {}):
            log.debug("Already converged")
        return Result(requeue_after=want.recheck_after)

    def _emit(self, disvc: Obj, want: Desired) -> None:
        for event in want.events:
            self.events.emit(disvc, event)
            if event.type == "Warning":
                # A problem a person must fix (InvalidSpec, ChildRejected,
                # ChildConflict, ProgressDeadlineExceeded): the builders raise
                # it once, when it appears or changes, so one line each.
                log.warning("Problem reported on the DISVC", reason=event.reason, detail=event.message)

    def _as_now(self, key: ObjectKey, disvc: Obj, want: Desired, options: BuildOptions) -> Desired:
        """``want`` with the status of the world as the cache shows it after our writes.

        The planned status describes new children as just created (an ISVC
        not Ready yet). While we created its siblings the first one may have
        turned Ready; its event would then cost another reconcile and a second
        status write at once. Planning again from the cache costs a build, no
        request. Only a plan with nothing left to write may lend its status:
        otherwise that status would describe writes not made yet.
        """
        now = desired.state(disvc, self.reader.children(key), options)
        if not now.plan.is_empty:
            return want
        return replace(want, status=now.status, recheck_after=now.recheck_after)

    def _write_children(self, key: ObjectKey, disvc: Obj, want: Desired, options: BuildOptions) -> Desired:
        """Creates, then updates, then deletes; returns the plan that was written."""
        clashes = self._create(want.plan.create)
        if clashes:
            # Names we meant to create are held by objects the cache cannot show
            # (foreign objects carry no disvc label). Plan again with them in
            # view so the builders report the conflict and plan around it.
            want = desired.state(disvc, [*self.reader.children(key), *clashes], options)
            if self._create(want.plan.create):
                raise ConflictError(f"{key}: child names are being taken while we create them")
        for obj in want.plan.update:
            self.writer.apply(obj)
        for ref in want.plan.delete:
            self.writer.delete(ref)
        return want

    def _create(self, creates: Sequence[Obj]) -> list[Obj]:
        """Create each object; return the live objects that hold a name we wanted.

        Nothing may change an object someone else wrote, and the child
        informers see only labelled objects, so a free name in the cache
        proves nothing. Every create is therefore one that the server refuses
        (409) when anything holds the name, and only a refusal costs a read:

        - a generation's ISVCs and Service never change shape under one name
          (a new template makes new names): a plain create;
        - the DISVC-level Service and Ingress change over time and need apply
          ownership, so that a later apply can drop a field (TLS, a port's
          appProtocol; fields a POST sets stay owned by an Update entry that
          no apply can drop): an apply carrying a resourceVersion no object
          can have (``ABSENT``). On a free name the server ignores it and
          creates; on a taken one it is a failed precondition. An apply
          without it would merge into a foreign object.
        """
        clashes: list[Obj] = []
        for obj in creates:
            kind, namespace, name = _identity(obj)
            try:
                if names.is_generation_scoped(obj):
                    self.writer.create(obj)
                else:
                    self.writer.apply(_if_absent(obj), force=False)
                continue
            except ConflictError:
                pass  # taken: read what holds it
            holder = self.reader.get_live(kind, namespace, name)
            if holder is None:
                raise ConflictError(f"{kind} {namespace}/{name}: name taken, then freed, while creating it")
            log.info("Name taken by another object", kind=kind, object=f"{namespace}/{name}")
            clashes.append(holder)
        return clashes


ABSENT: Final = "1"
"""A resourceVersion no object has: etcd's revisions start at 1 and its first
write is revision 2 (the loopback API counts the same way). As a precondition
in an apply it makes the apply create-only: the API server (1.23 and newer;
``kube_version`` refuses to start below 1.25) ignores it when the name is
free and fails the precondition (409) when it is taken. resourceVersions are
opaque, so this leans on etcd's numbering; there is no other create-only
apply (a ``metadata.uid`` in an apply of a free name is a 409 "uid
mismatch", and a plain create leaves the fields owned by an Update entry no
later apply can drop). A storage that gave an object version 1 would let
this apply merge into it; etcd3 and kine, the ones Kubernetes runs on, never do."""


def _if_absent(obj: Obj) -> Obj:
    return {**obj, "metadata": {**obj["metadata"], "resourceVersion": ABSENT}}


def _identity(obj: Obj) -> tuple[ChildKind, str, str]:
    meta = obj["metadata"]
    kind: ChildKind = obj["kind"]
    return kind, meta.get("namespace", ""), meta["name"]
