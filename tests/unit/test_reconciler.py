"""DisvcReconciler against in-memory Reader/Writer/EventRecorder and a scripted
``desired.state``: checks the sequencing the reconciler owns (what it reads,
which writes in which order, when it plans again), not what the builders decide.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import pytest
import structlog

from disvc.builders import desired
from disvc.builders.desired import BuildOptions, Desired
from disvc.builders.diff import Plan
from disvc.builders.types import ChildKind, ChildRef, EventSpec, Obj, ObjectKey
from disvc.controller.errors import ConflictError, NotFoundError, PermanentError
from disvc.controller.reconcile import Result
from disvc.controller.reconciler import DisvcReconciler

KEY = ObjectKey("ns", "iris")


def disvc(status: Obj | None = None) -> Obj:
    obj: Obj = {
        "apiVersion": "serving.kserve.io/v1alpha1",
        "kind": "DistributedInferenceService",
        "metadata": {"namespace": "ns", "name": "iris", "uid": "u-1", "generation": 1},
        "spec": {"replicas": 1},
    }
    if status is not None:
        obj["status"] = status
    return obj


def child(kind: ChildKind, name: str, **extra: object) -> Obj:
    return {"kind": kind, "metadata": {"namespace": "ns", "name": name, **extra}}


def generation_child(kind: ChildKind, name: str) -> Obj:
    """An ISVC or generation Service: carries the generation label."""
    return child(kind, name, labels={"disvc": "iris", "disvc.group": "iris-v2"})


@dataclass
class FakeReader:
    disvc: Obj | None = None
    cached: list[Obj] = field(default_factory=list)
    uncached: dict[tuple[str, str, str], Obj] = field(default_factory=dict)
    live_gets: list[tuple[str, str, str]] = field(default_factory=list)

    def get_disvc(self, key: ObjectKey) -> Obj | None:
        return self.disvc

    def children(self, key: ObjectKey) -> list[Obj]:
        return list(self.cached)

    def get_live(self, kind: ChildKind, namespace: str, name: str) -> Obj | None:
        self.live_gets.append((kind, namespace, name))
        return self.uncached.get((kind, namespace, name))


@dataclass
class FakeWriter:
    calls: list[tuple[str, object]] = field(default_factory=list)
    fail_apply: Exception | None = None
    fail_status: Exception | None = None
    taken: set[tuple[str, str, str]] = field(default_factory=set)
    """Names held by objects someone else wrote. As on a real server, a create
    and an apply with a resourceVersion precondition are refused there; an
    apply without one would merge into the object."""

    def create(self, obj: Obj) -> Obj:
        meta = obj["metadata"]
        if (obj["kind"], meta["namespace"], meta["name"]) in self.taken:
            raise ConflictError("already exists", status=409)
        self.calls.append(("create", meta["name"]))
        return obj

    def apply(self, obj: Obj, *, force: bool = True) -> Obj:
        meta = obj["metadata"]
        if meta.get("resourceVersion") and (obj["kind"], meta["namespace"], meta["name"]) in self.taken:
            raise ConflictError("the object has been modified", status=409)
        if self.fail_apply is not None:
            raise self.fail_apply
        self.calls.append(("apply-new" if meta.get("resourceVersion") else "apply", meta["name"]))
        return obj

    def delete(self, ref: ChildRef) -> None:
        self.calls.append(("delete", ref.name))

    def apply_status(self, disvc: Obj, status: Obj) -> Obj:
        if self.fail_status is not None:
            raise self.fail_status
        self.calls.append(("status", status))
        return {**disvc, "status": status}


@dataclass
class FakeEvents:
    emitted: list[tuple[str, EventSpec]] = field(default_factory=list)

    def emit(self, regarding: Obj, event: EventSpec) -> None:
        self.emitted.append((regarding["metadata"]["name"], event))


@dataclass
class ScriptedState:
    """Stands in for ``desired.state``: answers in order, records what it saw."""

    answers: list[Desired]
    seen_live: list[list[Obj]] = field(default_factory=list)
    seen_options: list[BuildOptions] = field(default_factory=list)

    def __call__(self, disvc: Obj, live: Sequence[Obj], options: BuildOptions) -> Desired:
        self.seen_live.append(list(live))
        self.seen_options.append(options)
        return self.answers[min(len(self.seen_live), len(self.answers)) - 1]


@dataclass
class Harness:
    reader: FakeReader
    writer: FakeWriter
    events: FakeEvents
    state: ScriptedState
    reconciler: DisvcReconciler


@pytest.fixture
def harness(monkeypatch: pytest.MonkeyPatch) -> Harness:
    reader, writer, events = FakeReader(disvc=disvc(status={})), FakeWriter(), FakeEvents()
    state = ScriptedState([Desired(plan=Plan(), status={})])
    monkeypatch.setattr(desired, "state", state)
    options_made = iter(range(1000))
    reconciler = DisvcReconciler(
        reader, writer, events, lambda: BuildOptions(now=f"2024-01-01T00:00:{next(options_made):02d}Z")
    )
    return Harness(reader, writer, events, state, reconciler)


def test_a_deleted_disvc_needs_no_writes_and_no_requeue(harness: Harness) -> None:
    harness.reader.disvc = None

    assert harness.reconciler.reconcile(KEY) == Result()
    assert harness.writer.calls == []
    assert harness.state.seen_live == []


def test_writes_creates_and_updates_then_deletes_then_status(harness: Harness) -> None:
    ref = ChildRef("InferenceService", "ns", "iris-v1-0", uid="u-old", resource_version="7")
    harness.state.answers = [
        Desired(
            plan=Plan(
                create=(generation_child("InferenceService", "iris-v2-0"),),
                update=(child("Ingress", "iris"),),
                delete=(ref,),
            ),
            status={"replicas": 1},
        )
    ]

    harness.reconciler.reconcile(KEY)

    assert harness.writer.calls == [
        ("create", "iris-v2-0"),
        ("apply", "iris"),
        ("delete", "iris-v1-0"),
        ("status", {"replicas": 1}),
    ]


def test_status_is_not_written_when_it_already_matches(harness: Harness) -> None:
    harness.reader.disvc = disvc(status={"replicas": 1, "readyReplicas": 1})
    harness.state.answers = [Desired(plan=Plan(), status={"replicas": 1, "readyReplicas": 1})]

    harness.reconciler.reconcile(KEY)

    assert harness.writer.calls == []


def test_builders_see_the_cached_children(harness: Harness) -> None:
    cached = [child("Service", "iris"), child("InferenceService", "iris-v1-0")]
    harness.reader.cached = cached

    harness.reconciler.reconcile(KEY)

    assert harness.state.seen_live == [cached]


def test_a_foreign_object_missing_from_the_cache_is_planned_around(harness: Harness) -> None:
    foreign = child("Service", "iris", uid="someone-else")
    harness.reader.uncached[("Service", "ns", "iris")] = foreign
    harness.writer.taken.add(("Service", "ns", "iris"))
    harness.state.answers = [
        Desired(plan=Plan(create=(child("Service", "iris"), generation_child("Service", "iris-v1"))), status={}),
        Desired(plan=Plan(conflicts=(foreign,)), status={"conflict": True}),
    ]

    harness.reconciler.reconcile(KEY)

    assert harness.state.seen_live == [[], [foreign]]
    assert harness.reader.live_gets == [("Service", "ns", "iris")]  # read once, not again to report it
    assert harness.writer.calls == [("create", "iris-v1"), ("status", {"conflict": True})]


def test_a_generation_object_is_created_without_reading_first(harness: Harness) -> None:
    harness.state.answers = [
        Desired(plan=Plan(create=(generation_child("InferenceService", "iris-v2-0"),
                                  generation_child("Service", "iris-v2"))), status={}),
    ]  # fmt: skip

    harness.reconciler.reconcile(KEY)

    assert harness.reader.live_gets == []
    assert harness.writer.calls == [("create", "iris-v2-0"), ("create", "iris-v2")]


def test_a_child_ready_by_the_time_its_siblings_are_created_is_in_the_one_status_write(harness: Harness) -> None:
    harness.state.answers = [
        Desired(plan=Plan(create=(generation_child("InferenceService", "iris-v1-0"),
                                  generation_child("InferenceService", "iris-v1-1"))),
                status={"readyReplicas": 0}),
        Desired(plan=Plan(), status={"readyReplicas": 1}),  # the cache after the creates
    ]  # fmt: skip

    harness.reconciler.reconcile(KEY)

    assert harness.writer.calls == [("create", "iris-v1-0"), ("create", "iris-v1-1"), ("status", {"readyReplicas": 1})]


def test_a_status_planned_with_writes_still_to_make_is_not_written(harness: Harness) -> None:
    harness.state.answers = [
        Desired(plan=Plan(create=(generation_child("InferenceService", "iris-v2-0"),)), status={"step": "created"}),
        Desired(plan=Plan(update=(child("Ingress", "iris"),)), status={"step": "switched"}),
    ]

    harness.reconciler.reconcile(KEY)

    assert harness.writer.calls == [("create", "iris-v2-0"), ("status", {"step": "created"})]


def test_a_taken_generation_name_is_read_and_planned_around(harness: Harness) -> None:
    foreign = child("InferenceService", "iris-v2-0", uid="someone-else")
    harness.reader.uncached[("InferenceService", "ns", "iris-v2-0")] = foreign
    harness.writer.taken.add(("InferenceService", "ns", "iris-v2-0"))
    harness.state.answers = [
        Desired(plan=Plan(create=(generation_child("InferenceService", "iris-v2-0"),)), status={}),
        Desired(plan=Plan(conflicts=(foreign,)), status={}),
    ]

    harness.reconciler.reconcile(KEY)

    assert harness.reader.live_gets == [("InferenceService", "ns", "iris-v2-0")]
    assert harness.state.seen_live[1] == [foreign]
    assert harness.writer.calls == []


def test_the_top_level_service_and_ingress_are_created_by_apply_without_reading_first(harness: Harness) -> None:
    harness.state.answers = [
        Desired(plan=Plan(create=(child("Service", "iris"), child("Ingress", "iris"))), status={}),
    ]

    harness.reconciler.reconcile(KEY)

    assert harness.reader.live_gets == []
    assert harness.writer.calls == [("apply-new", "iris"), ("apply-new", "iris")]


def test_both_plans_of_one_reconcile_share_one_clock_reading(harness: Harness) -> None:
    harness.reader.uncached[("Service", "ns", "iris")] = child("Service", "iris")
    harness.writer.taken.add(("Service", "ns", "iris"))
    harness.state.answers = [
        Desired(plan=Plan(create=(child("Service", "iris"),)), status={}),
        Desired(plan=Plan(), status={}),
    ]

    harness.reconciler.reconcile(KEY)

    assert len(harness.state.seen_options) == 2
    assert harness.state.seen_options[0] is harness.state.seen_options[1]


def test_a_name_freed_again_while_we_create_requeues_the_key(harness: Harness) -> None:
    harness.writer.taken.add(("InferenceService", "ns", "iris-v2-0"))  # refused, but then nothing there
    harness.state.answers = [
        Desired(plan=Plan(create=(generation_child("InferenceService", "iris-v2-0"),)), status={}),
    ]

    with pytest.raises(ConflictError):
        harness.reconciler.reconcile(KEY)


def test_events_are_emitted_on_the_disvc(harness: Harness) -> None:
    warning = EventSpec("Warning", "ChildConflict", "Service ns/iris is not controlled by this DISVC")
    harness.state.answers = [Desired(plan=Plan(), status={}, events=(warning,))]

    harness.reconciler.reconcile(KEY)

    assert harness.events.emitted == [("iris", warning)]


def test_recheck_after_becomes_the_requeue_delay(harness: Harness) -> None:
    harness.state.answers = [Desired(plan=Plan(), status={}, recheck_after=30.0)]

    assert harness.reconciler.reconcile(KEY) == Result(requeue_after=30.0)


def test_a_conflict_propagates_to_the_worker_and_stops_the_reconcile(harness: Harness) -> None:
    harness.writer.fail_apply = ConflictError("stale", status=409)
    harness.state.answers = [Desired(plan=Plan(update=(child("Service", "iris"),)), status={"replicas": 1})]

    with pytest.raises(ConflictError):
        harness.reconciler.reconcile(KEY)
    assert harness.writer.calls == []


def test_a_disvc_deleted_during_the_reconcile_ends_it_quietly(harness: Harness) -> None:
    harness.writer.fail_status = NotFoundError("gone")
    warning = EventSpec("Normal", "Created", "Created Service ns/iris")
    harness.state.answers = [Desired(plan=Plan(), status={"replicas": 1}, events=(warning,), recheck_after=5.0)]

    assert harness.reconciler.reconcile(KEY) == Result()
    assert harness.events.emitted == []


def test_a_write_the_api_refuses_for_good_is_reported_in_status_and_as_a_warning(harness: Harness) -> None:
    refusal = 'admission webhook "inferenceservice.kserve-webhook-server.validator" denied the request'
    harness.writer.fail_apply = PermanentError(refusal, status=400, reason="BadRequest")
    harness.state.answers = [
        Desired(plan=Plan(update=(child("InferenceService", "iris-v1-0"),)), status={"observedGeneration": 1})
    ]

    with pytest.raises(PermanentError):  # the worker retries it with backoff
        harness.reconciler.reconcile(KEY)

    [(action, status)] = harness.writer.calls
    assert action == "status"
    assert isinstance(status, dict)
    ready, progressing = status["conditions"]
    assert (ready["type"], ready["status"], ready["reason"]) == ("Ready", "False", "ChildRejected")
    assert refusal in ready["message"]
    assert (progressing["type"], progressing["status"]) == ("Progressing", "False")
    [(name, event)] = harness.events.emitted
    assert (name, event.type, event.reason) == ("iris", "Warning", "ChildRejected")


def test_a_refused_create_stops_the_plan_and_is_reported(harness: Harness) -> None:
    harness.writer.fail_apply = PermanentError("Ingress.networking.k8s.io is invalid", status=422, reason="Invalid")
    harness.state.answers = [
        Desired(
            plan=Plan(create=(child("Ingress", "iris"),), delete=(ChildRef("Service", "ns", "iris-v0", "u", "1"),)),
            status={"observedGeneration": 1},
        )
    ]

    with pytest.raises(PermanentError):
        harness.reconciler.reconcile(KEY)

    assert [action for action, _ in harness.writer.calls] == ["status"]
    assert harness.events.emitted[0][1].reason == "ChildRejected"


@pytest.mark.parametrize("reason", ["InvalidSpec", "ProgressDeadlineExceeded", "ChildConflict"])
def test_a_problem_raised_as_a_warning_event_is_logged_at_warning_once(harness: Harness, reason: str) -> None:
    warning = EventSpec("Warning", reason, "what went wrong, in words")
    normal = EventSpec("Normal", "Created", "Created Service ns/iris")
    harness.state.answers = [Desired(plan=Plan(), status={"replicas": 1}, events=(warning, normal))]

    with structlog.testing.capture_logs() as logs:
        harness.reconciler.reconcile(KEY)

    warned = [line for line in logs if line["log_level"] == "warning"]
    assert [(line["event"], line["reason"], line["detail"]) for line in warned] == [
        ("Problem reported on the DISVC", reason, "what went wrong, in words")
    ]
