"""EventRecorder: the Events a user sees in ``kubectl describe``, and that
recording them never blocks or breaks a reconcile."""

from __future__ import annotations

import itertools
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import pytest
from kubernetes import client as k8s_client

from disvc.builders.types import EventSpec, Obj
from disvc.controller import errors, options
from disvc.controller.kube import Kube
from disvc.controller.manager import Manager
from disvc.controller.recorder import COMPONENT, DEFAULT_CAPACITY, EventRecorder

DISVC: Obj = {
    "apiVersion": "serving.kserve.io/v1alpha1",
    "kind": "DistributedInferenceService",
    "metadata": {"namespace": "ns", "name": "iris", "uid": "u-1", "resourceVersion": "42"},
}
CONFLICT = EventSpec("Warning", "ChildConflict", "Service ns/iris exists and is not controlled by this DISVC")
ROLLOUT = EventSpec("Normal", "RolloutStarted", "Rolling out generation v2")
NOW = datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)


@dataclass
class ScriptedClock:
    """Reads each wall-clock moment and monotonic reading from a script."""

    moments: Iterator[datetime] = field(default_factory=lambda: itertools.repeat(NOW))
    readings: Iterator[float] = field(default_factory=lambda: itertools.repeat(0.0))

    def now(self) -> datetime:
        return next(self.moments)

    def monotonic(self) -> float:
        return next(self.readings)

    def wait_until(self, condition: threading.Condition, deadline: float | None) -> None:
        raise AssertionError("the recorder never waits on its clock")


@dataclass
class CreatingSink:
    created: list[Obj] = field(default_factory=list)
    failures: list[Exception] = field(default_factory=list)

    def create_event(self, event: Obj) -> Obj:
        if self.failures:
            raise self.failures.pop(0)
        self.created.append(event)
        return event


@dataclass
class PatchingSink(CreatingSink):
    patches: list[tuple[str, str, Obj]] = field(default_factory=list)
    expired: bool = False

    def patch_event(self, namespace: str, name: str, patch: Obj) -> Obj:
        if self.expired:
            raise errors.NotFoundError("gone")
        self.patches.append((namespace, name, patch))
        return patch


def recorder(sink: CreatingSink, clock: ScriptedClock | None = None, **kwargs: object) -> EventRecorder:
    return EventRecorder(sink, instance="pod-1", clock=clock or ScriptedClock(), **kwargs)  # type: ignore[arg-type]


def test_event_names_the_disvc_and_the_controller() -> None:
    sink = CreatingSink()
    events = recorder(sink).start()

    events.emit(DISVC, CONFLICT)
    events.stop()

    [event] = sink.created
    assert event["metadata"]["namespace"] == "ns"
    assert event["metadata"]["name"].startswith("iris.")
    assert event["involvedObject"] == {
        "apiVersion": "serving.kserve.io/v1alpha1",
        "kind": "DistributedInferenceService",
        "namespace": "ns",
        "name": "iris",
        "uid": "u-1",
        "resourceVersion": "42",
    }
    assert (event["type"], event["reason"], event["message"]) == ("Warning", "ChildConflict", CONFLICT.message)
    assert event["source"] == {"component": COMPONENT}
    assert event["reportingComponent"] == "disvc-controller"
    assert event["reportingInstance"] == "pod-1"
    assert event["count"] == 1
    assert event["firstTimestamp"] == event["lastTimestamp"] == "2024-05-01T12:00:00Z"


def test_distinct_events_get_distinct_names() -> None:
    sink = CreatingSink()
    events = recorder(sink).start()

    events.emit(DISVC, CONFLICT)
    events.emit(DISVC, ROLLOUT)
    events.stop()

    assert len({e["metadata"]["name"] for e in sink.created}) == 2


def test_a_repeat_updates_the_count_of_the_first_event() -> None:
    sink = PatchingSink()
    events = recorder(sink).start()

    for _ in range(3):
        events.emit(DISVC, CONFLICT)
    events.stop()

    [event] = sink.created
    assert [(ns, name, patch["count"]) for ns, name, patch in sink.patches] == [
        ("ns", event["metadata"]["name"], 2),
        ("ns", event["metadata"]["name"], 3),
    ]


def test_a_repeat_moves_last_timestamp_and_keeps_the_first() -> None:
    sink = PatchingSink()
    moments = iter([NOW, NOW + timedelta(seconds=30)])
    events = recorder(sink, ScriptedClock(moments=moments))

    events.emit(DISVC, CONFLICT)
    events.emit(DISVC, CONFLICT)
    events.start().stop()

    [event] = sink.created
    assert event["firstTimestamp"] == "2024-05-01T12:00:00Z"
    assert sink.patches == [("ns", event["metadata"]["name"], {"count": 2, "lastTimestamp": "2024-05-01T12:00:30Z"})]


@pytest.mark.parametrize("sink_type", [PatchingSink, CreatingSink], ids=["patching", "creating"])
def test_a_repeat_after_the_window_creates_a_new_event(sink_type: type[CreatingSink]) -> None:
    # A sink that can patch must not patch an Event past the window either.
    sink = sink_type()
    readings = iter([0.0, 601.0, 601.0])  # first write, then the repeat 601 s later
    events = recorder(sink, ScriptedClock(readings=readings), aggregation_window=600.0).start()

    events.emit(DISVC, CONFLICT)
    events.emit(DISVC, CONFLICT)
    events.stop()

    assert len(sink.created) == 2
    assert getattr(sink, "patches", []) == []


def test_events_past_the_window_are_forgotten_once_a_new_one_is_written() -> None:
    readings = iter([0.0, 0.0, 0.0, 601.0])  # three Events, then a fourth 601 s later
    events = recorder(CreatingSink(), ScriptedClock(readings=readings), aggregation_window=600.0).start()
    others = [{**DISVC, "metadata": {**DISVC["metadata"], "uid": f"u-{i}", "name": f"gone-{i}"}} for i in range(3)]

    for disvc in others:
        events.emit(disvc, CONFLICT)
    events.emit(DISVC, ROLLOUT)
    events.stop()

    assert events.remembered == 1


def test_the_same_reason_about_another_object_is_another_event() -> None:
    sink = PatchingSink()
    other = {**DISVC, "metadata": {**DISVC["metadata"], "name": "other", "uid": "u-2"}}
    events = recorder(sink).start()

    events.emit(DISVC, CONFLICT)
    events.emit(other, CONFLICT)
    events.stop()

    assert [e["involvedObject"]["name"] for e in sink.created] == ["iris", "other"]
    assert sink.patches == []


def test_a_repeat_after_the_first_event_expired_creates_a_new_one() -> None:
    sink = PatchingSink(expired=True)
    events = recorder(sink).start()

    events.emit(DISVC, CONFLICT)
    events.emit(DISVC, CONFLICT)
    events.stop()

    assert len(sink.created) == 2


def test_without_patch_a_repeat_within_the_window_is_not_written_again() -> None:
    sink = CreatingSink()
    events = recorder(sink, aggregation_window=600.0).start()

    events.emit(DISVC, CONFLICT)
    events.emit(DISVC, CONFLICT)
    events.stop()

    assert len(sink.created) == 1


def test_emit_never_blocks_and_drops_what_does_not_fit_the_queue() -> None:
    sink = CreatingSink()
    dropped: list[None] = []
    # Not started yet: nothing drains the queue, as when the API is stuck.
    events = recorder(sink, capacity=2, on_drop=lambda: dropped.append(None))

    for i in range(5):
        events.emit(DISVC, EventSpec("Normal", "Scaled", f"Scaled to {i}"))

    assert events.dropped == 3
    assert len(dropped) == 3
    events.start().stop()
    assert [e["message"] for e in sink.created] == ["Scaled to 0", "Scaled to 1"]


def test_an_api_failure_loses_one_event_not_the_recorder() -> None:
    sink = CreatingSink(failures=[errors.TransientError("boom", status=500)])
    events = recorder(sink).start()

    events.emit(DISVC, CONFLICT)
    events.emit(DISVC, ROLLOUT)
    events.stop()

    assert events.failed == 1
    assert [e["reason"] for e in sink.created] == ["RolloutStarted"]


def test_the_manager_counts_dropped_events_in_the_exported_metric() -> None:
    api_client = k8s_client.ApiClient(k8s_client.Configuration(host="http://127.0.0.1:1"))  # never called
    manager = Manager(options.parse(["--kubeconfig", "unused"]), kube=Kube(api_client))

    for i in range(DEFAULT_CAPACITY + 3):
        manager.recorder.emit(DISVC, EventSpec("Normal", "Scaled", f"Scaled to {i}"))

    assert manager.metrics.registry.get_sample_value("disvc_events_dropped_total") == 3
    api_client.close()  # type: ignore[no-untyped-call]
