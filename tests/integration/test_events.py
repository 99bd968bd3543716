"""Events on a real API: a repeated Event is one object whose count grows
(``Kube.patch_event``), as ``kubectl describe`` shows it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from disvc.builders.types import EventSpec, Obj
from disvc.controller.clock import FakeClock
from disvc.controller.kube import Kube
from disvc.controller.recorder import EventRecorder
from disvc.testing.fixtures import KubeEnv, request_json

DISVC: Obj = {
    "apiVersion": "serving.kserve.io/v1alpha1",
    "kind": "DistributedInferenceService",
    "metadata": {"namespace": "ns", "name": "iris", "uid": "u-1", "resourceVersion": "42"},
}
CONFLICT = EventSpec("Warning", "ChildConflict", "Service ns/iris exists and is not controlled by this DISVC")
NOW = datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)


class Moments(FakeClock):
    """A fake clock whose wall time reads the given moments in turn."""

    def __init__(self, *moments: datetime) -> None:
        super().__init__()
        self._moments = iter(moments)

    def now(self) -> datetime:
        return next(self._moments)


def test_a_repeated_event_bumps_the_count_of_one_event_object(api: Kube, kube: KubeEnv) -> None:
    disvc = {**DISVC, "metadata": {**DISVC["metadata"], "namespace": kube.namespace}}
    clock = Moments(NOW, NOW + timedelta(seconds=5), NOW + timedelta(seconds=10))
    events = EventRecorder(api, instance="pod-1", clock=clock).start()

    for _ in range(3):
        events.emit(disvc, CONFLICT)
    events.stop()

    assert (events.failed, events.dropped) == (0, 0)
    listed = request_json(kube.api_client, "GET", f"/api/v1/namespaces/{kube.namespace}/events")["items"]
    [event] = [e for e in listed if e["involvedObject"]["name"] == "iris"]
    assert event["reason"] == "ChildConflict"
    assert event["count"] == 3
    assert event["firstTimestamp"] == "2024-05-01T12:00:00Z"
    assert event["lastTimestamp"] == "2024-05-01T12:00:10Z"
