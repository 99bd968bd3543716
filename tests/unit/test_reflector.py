"""The reflector lists, watches, resumes from the last resourceVersion and
relists on 410 Gone, against a scripted list/watch source; the informer on
top of it tells the queue's handlers everything but the echo of our writes."""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import pytest

from disvc.builders.types import Obj
from disvc.controller import errors
from disvc.controller.backoff import Backoff
from disvc.controller.clock import FakeClock
from disvc.controller.informer import Informer
from disvc.controller.reflector import Reflector
from disvc.controller.store import DeletedFinalStateUnknown, Store
from disvc.testing.fixtures import eventually


def svc(name: str, rv: str) -> Obj:
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "namespace": "ns", "resourceVersion": rv}}


def event(kind: str, obj: Obj) -> Obj:
    return {"type": kind, "object": obj}


def bookmark(rv: str) -> Obj:
    return event("BOOKMARK", {"kind": "Service", "metadata": {"resourceVersion": rv}})


class FakeStream:
    """Yields its events, then ends cleanly, raises ``end``, or blocks until closed."""

    def __init__(self, events: list[Obj], end: Exception | None = None, block: bool = False) -> None:
        self._events = iter(events)
        self._end = end
        self._block = block
        self.closed = threading.Event()

    def __iter__(self) -> Iterator[Obj]:
        return self

    def __next__(self) -> Obj:
        for e in self._events:
            return e
        if self._block:
            self.closed.wait()
        if self._end is not None and not self.closed.is_set():
            raise self._end
        raise StopIteration

    def close(self) -> None:
        self.closed.set()


@dataclass
class ScriptedSource:
    """Answers list and watch calls from scripts; sets ``stop`` once a script runs out."""

    stop: threading.Event
    lists: list[tuple[list[Obj], str] | Exception]
    watches: list[FakeStream | Exception]
    list_calls: int = 0
    watch_from: list[str] = field(default_factory=list)
    any_version: list[bool] = field(default_factory=list)
    idle_timeouts: list[float | None] = field(default_factory=list)

    def list(self, kind: str, namespace: str | None = None, label_selector: str | None = None,
             *, transform: Callable[[Obj], Obj] | None = None, any_version: bool = False) -> tuple[list[Obj], str]:
        self.list_calls += 1
        self.any_version.append(any_version)
        if not self.lists:
            self.stop.set()
            raise errors.TransientError("script exhausted")
        answer = self.lists.pop(0)
        if isinstance(answer, Exception):
            raise answer
        items, version = answer
        return [transform(o) if transform else o for o in items], version

    def watch(self, kind: str, resource_version: str, namespace: str | None = None,
              label_selector: str | None = None, timeout_seconds: int = 300,
              allow_bookmarks: bool = True, *, idle_timeout: float | None = None) -> FakeStream:
        self.watch_from.append(resource_version)
        self.idle_timeouts.append(idle_timeout)
        if not self.watches:
            self.stop.set()
            return FakeStream([])
        answer = self.watches.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer


class RecordingListener:
    def __init__(self) -> None:
        self.seen: list[tuple[str, str, str]] = []
        self.tombstones: list[DeletedFinalStateUnknown] = []

    def on_add(self, obj: Obj) -> None:
        self.seen.append(("add", obj["metadata"]["name"], obj["metadata"]["resourceVersion"]))

    def on_update(self, old: Obj, new: Obj, *, relisted: bool = False) -> None:
        self.seen.append(("update", new["metadata"]["name"], new["metadata"]["resourceVersion"]))

    def on_delete(self, obj: Obj | DeletedFinalStateUnknown) -> None:
        if isinstance(obj, DeletedFinalStateUnknown):
            self.tombstones.append(obj)
            obj = obj.obj
        self.seen.append(("delete", obj["metadata"]["name"], obj["metadata"]["resourceVersion"]))


class CountingBackoff(Backoff):
    """No waiting; counts how often the reflector backed off."""

    def __init__(self) -> None:
        super().__init__(initial=0.0)
        self.waits = 0

    def next(self) -> float:
        self.waits += 1
        return 0.0


class TickingClock(FakeClock):
    """Ten seconds pass between any two readings: no watch counts as short."""

    def __init__(self) -> None:
        super().__init__()
        self._ticks = itertools.count(step=10)

    def monotonic(self) -> float:
        return float(next(self._ticks))


def reflector_for(source: ScriptedSource, store: Store, listener: RecordingListener,
                  backoff: Backoff | None = None, **kwargs: object) -> Reflector:
    return Reflector(source, "Service", store, listener, backoff=backoff or CountingBackoff(),
                     clock=TickingClock(), **kwargs)  # type: ignore[arg-type]


def test_lists_then_watches_from_the_list_resource_version() -> None:
    stop = threading.Event()
    source = ScriptedSource(stop, lists=[([svc("a", "5")], "10")],
                            watches=[FakeStream([event("ADDED", svc("b", "11")), event("MODIFIED", svc("a", "12"))])])
    s, listener = Store(), RecordingListener()
    r = reflector_for(source, s, listener)
    r.run(stop)
    assert r.has_synced()
    assert source.watch_from[0] == "10"
    assert listener.seen == [("add", "a", "5"), ("add", "b", "11"), ("update", "a", "12")]
    assert sorted(s.keys()) == ["ns/a", "ns/b"]


def test_a_watch_that_ends_resumes_from_the_last_event_without_relisting() -> None:
    stop = threading.Event()
    source = ScriptedSource(stop, lists=[([], "10")],
                            watches=[FakeStream([event("ADDED", svc("a", "11"))]), FakeStream([])])
    r = reflector_for(source, Store(), RecordingListener())
    r.run(stop)
    assert source.list_calls == 1
    assert source.watch_from[:2] == ["10", "11"]


def test_bookmarks_advance_the_resource_version_and_nothing_else() -> None:
    stop = threading.Event()
    source = ScriptedSource(stop, lists=[([], "10")], watches=[FakeStream([bookmark("50")])])
    s, listener = Store(), RecordingListener()
    r = reflector_for(source, s, listener)
    r.run(stop)
    assert listener.seen == [] and len(s) == 0
    assert source.watch_from[:2] == ["10", "50"]


def test_a_broken_watch_backs_off_and_resumes_from_the_last_resource_version() -> None:
    stop = threading.Event()
    backoff = CountingBackoff()
    source = ScriptedSource(stop, lists=[([], "10")], watches=[
        FakeStream([event("ADDED", svc("a", "11"))], end=errors.TransientError("connection reset")),
        errors.TransientError("connection refused"),
    ])
    r = reflector_for(source, Store(), RecordingListener(), backoff=backoff)
    r.run(stop)
    assert source.list_calls == 1
    assert source.watch_from[:3] == ["10", "11", "11"]
    assert backoff.waits == 2


@pytest.mark.parametrize("gone_at", ["start", "stream"])
def test_gone_relists_and_reports_vanished_objects_as_tombstones(gone_at: str) -> None:
    stop = threading.Event()
    gone = errors.GoneError("too old resource version")
    first_watch: FakeStream | Exception = gone if gone_at == "start" else FakeStream([], end=gone)
    source = ScriptedSource(stop, lists=[([svc("kept", "5"), svc("vanished", "6")], "10"),
                                         ([svc("kept", "30"), svc("new", "31")], "40")],
                            watches=[first_watch])
    s, listener = Store(), RecordingListener()
    r = reflector_for(source, s, listener)
    r.run(stop)
    assert source.list_calls == 2
    assert source.watch_from[1] == "40"
    assert listener.seen[2:] == [("add", "new", "31"), ("update", "kept", "30"), ("delete", "vanished", "6")]
    assert [t.key for t in listener.tombstones] == ["ns/vanished"]
    assert sorted(s.keys()) == ["ns/kept", "ns/new"]
    # The first list may come from the server's cache; the relist after 410
    # must not be older than what the store saw, so it asks for the latest.
    assert source.any_version == [True, False]


def test_delete_events_pass_the_final_state_and_empty_the_store() -> None:
    stop = threading.Event()
    source = ScriptedSource(stop, lists=[([svc("a", "5")], "10")],
                            watches=[FakeStream([event("DELETED", svc("a", "11"))])])
    s, listener = Store(), RecordingListener()
    reflector_for(source, s, listener).run(stop)
    assert listener.seen[-1] == ("delete", "a", "11")
    assert listener.tombstones == []
    assert len(s) == 0


def test_a_failed_list_is_retried_with_backoff_before_syncing() -> None:
    stop = threading.Event()
    backoff = CountingBackoff()
    source = ScriptedSource(stop, lists=[errors.TransientError("503"), errors.PermanentError("403"), ([], "10")],
                            watches=[])
    r = reflector_for(source, Store(), RecordingListener(), backoff=backoff)
    r.run(stop)
    assert r.has_synced()
    assert backoff.waits == 2
    assert source.any_version == [True, True, True]  # still the first list until one succeeds


def test_a_watch_that_went_silent_is_closed_and_resumed_at_once_from_the_last_resource_version() -> None:
    stop = threading.Event()
    backoff = CountingBackoff()
    silent = FakeStream([event("ADDED", svc("a", "11")), bookmark("15")],
                        end=errors.IdleWatchError("watch Service: nothing received for 150s"))
    source = ScriptedSource(stop, lists=[([], "10")], watches=[silent, FakeStream([])])
    reflector_for(source, Store(), RecordingListener(), backoff=backoff).run(stop)
    assert silent.closed.is_set()
    assert source.list_calls == 1  # the version is not gone: no relist
    assert source.watch_from[:2] == ["10", "15"]
    assert backoff.waits == 0  # the server answered; only the connection died


def test_every_watch_is_given_the_reflectors_idle_limit() -> None:
    stop = threading.Event()
    source = ScriptedSource(stop, lists=[([], "10")], watches=[FakeStream([bookmark("11")]), FakeStream([])])
    reflector_for(source, Store(), RecordingListener(), idle_timeout=7.5).run(stop)
    assert source.idle_timeouts[:2] == [7.5, 7.5]


def test_the_informer_hands_its_watch_idle_limit_to_its_reflector() -> None:
    stop = threading.Event()
    source = ScriptedSource(stop, lists=[([], "10")], watches=[])
    informer = Informer(source, "Service", backoff=Backoff(initial=0.01, cap=0.05), watch_idle_timeout=4.0)
    run_until_scripts_end(informer, source)
    assert source.idle_timeouts[0] == 4.0


def test_a_watch_closed_at_once_with_nothing_delivered_counts_as_a_failure() -> None:
    stop = threading.Event()
    backoff = CountingBackoff()
    source = ScriptedSource(stop, lists=[([], "10")], watches=[FakeStream([])])
    Reflector(source, "Service", Store(), RecordingListener(), backoff=backoff, clock=FakeClock()).run(stop)
    assert backoff.waits == 1


def informer_over(source: ScriptedSource, write_on_add: Obj) -> tuple[Informer, RecordingListener, RecordingListener]:
    """An informer whose first add makes "our" write; returns it with a queue
    handler (not told of our echoes) and a gauge handler (told of everything)."""
    informer = Informer(source, "Service", backoff=Backoff(initial=0.01, cap=0.05))
    queue, gauges = RecordingListener(), RecordingListener()
    informer.add_handler(lambda obj: informer.cache.mutation(write_on_add), own_writes=False)
    informer.add_handler(queue.on_add, queue.on_update, queue.on_delete, own_writes=False)
    informer.add_handler(gauges.on_add, gauges.on_update, gauges.on_delete)
    return informer, queue, gauges


def run_until_scripts_end(informer: Informer, source: ScriptedSource) -> None:
    informer.start()
    try:
        assert source.stop.wait(5)
    finally:
        assert informer.stop(5)


def test_the_echo_of_our_own_write_reaches_no_queue_handler_but_advances_the_watch() -> None:
    source = ScriptedSource(threading.Event(), lists=[([svc("a", "5")], "10")],
                            watches=[FakeStream([event("MODIFIED", svc("a", "12")), event("MODIFIED", svc("a", "13"))]),
                                     FakeStream([])])
    informer, queue, gauges = informer_over(source, write_on_add=svc("a", "12"))
    run_until_scripts_end(informer, source)
    assert queue.seen == [("add", "a", "5"), ("update", "a", "13")]
    assert gauges.seen == [("add", "a", "5"), ("update", "a", "12"), ("update", "a", "13")]
    assert source.watch_from[1] == "13"


def test_a_change_overtaken_by_our_write_still_reaches_the_queue_handlers() -> None:
    # The user scaled (rv 11) while we wrote status (rv 12, which contains the
    # scale): the rv 11 event must still trigger a reconcile, and the
    # reconcile reads our rv 12, never the older event's state.
    reads: list[str] = []
    source = ScriptedSource(threading.Event(), lists=[([svc("a", "5")], "10")],
                            watches=[FakeStream([event("MODIFIED", svc("a", "11")), event("MODIFIED", svc("a", "12"))]),
                                     FakeStream([])])
    informer, queue, _ = informer_over(source, write_on_add=svc("a", "12"))
    informer.add_handler(on_update=lambda old, new: reads.append(informer.cache.get("ns/a")["metadata"]["resourceVersion"]),  # type: ignore[index]
                         own_writes=False)
    run_until_scripts_end(informer, source)
    assert queue.seen == [("add", "a", "5"), ("update", "a", "11")]
    assert reads == ["12"]


def test_stop_and_interrupt_end_a_blocked_watch() -> None:
    stop = threading.Event()
    stream = FakeStream([event("ADDED", svc("a", "11"))], block=True)
    source = ScriptedSource(stop, lists=[([], "10")], watches=[stream])
    listener = RecordingListener()
    r = reflector_for(source, Store(), listener)
    thread = threading.Thread(target=r.run, args=(stop,), daemon=True)
    thread.start()
    eventually(lambda: _assert(listener.seen == [("add", "a", "11")]))
    stop.set()
    r.interrupt()
    thread.join(timeout=5)
    assert not thread.is_alive()
    assert stream.closed.is_set()


def test_resync_redelivers_every_cached_object_as_an_update() -> None:
    stop = threading.Event()
    stream = FakeStream([], block=True)
    source = ScriptedSource(stop, lists=[([svc("a", "5"), svc("b", "6")], "10")], watches=[stream])
    listener = RecordingListener()
    r = reflector_for(source, Store(), listener, resync_period=0.01)
    thread = threading.Thread(target=r.run, args=(stop,), daemon=True)
    thread.start()
    try:
        eventually(lambda: _assert(listener.seen.count(("update", "a", "5")) >= 2
                                   and listener.seen.count(("update", "b", "6")) >= 2))
    finally:
        stop.set()
        r.interrupt()
        thread.join(timeout=5)


def _assert(condition: bool) -> None:
    assert condition


@pytest.mark.parametrize(
    "error",
    [errors.TransientError("etcdserver: request timed out", status=500),
     errors.PermanentError("forbidden", status=403)],
)
def test_a_watch_error_event_other_than_410_relists_instead_of_resuming_forever(error: Exception) -> None:
    stop = threading.Event()
    source = ScriptedSource(stop, lists=[([svc("a", "5")], "10"), ([svc("a", "20")], "30")],
                            watches=[FakeStream([], end=error), FakeStream([], end=error)])
    r = reflector_for(source, Store(), RecordingListener())
    r.run(stop)
    assert source.list_calls >= 2
    assert source.watch_from[:2] == ["10", "30"]


def test_a_relist_after_410_reports_a_foreign_change_hidden_behind_our_write() -> None:
    """While the watch was down a user changed the object (rv 11) and our
    write (rv 12, made from the state before it) returned it with that change
    inside. The relist shows only rv 12: the same version as our write, but
    not its echo, since the reconcile that wrote never saw rv 11."""
    source = ScriptedSource(threading.Event(), lists=[([svc("a", "5")], "10"), ([svc("a", "12")], "40")],
                            watches=[FakeStream([], end=errors.GoneError("too old")), FakeStream([])])
    informer, queue, _ = informer_over(source, write_on_add=svc("a", "12"))
    run_until_scripts_end(informer, source)
    assert ("update", "a", "12") in queue.seen
