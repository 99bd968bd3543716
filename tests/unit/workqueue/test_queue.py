"""The base queue's promises: fair, de-duplicating, stingy, clean shutdown."""

from __future__ import annotations

import threading
from collections import Counter

import pytest

from disvc.controller.clock import FakeClock
from disvc.controller.workqueue.queue import Queue
from disvc.testing.fixtures import eventually


class _Instrument:
    """One recorded instrument: a counter, gauge or histogram."""

    def __init__(self) -> None:
        self.value = 0.0
        self.observations: list[float] = []

    def inc(self) -> None:
        self.value += 1

    def dec(self) -> None:
        self.value -= 1

    def set(self, value: float) -> None:
        self.value = value

    def observe(self, value: float) -> None:
        self.observations.append(value)


class RecordingProvider:
    def __init__(self) -> None:
        self.instruments: dict[tuple[str, str], _Instrument] = {}

    def _get(self, metric: str, name: str) -> _Instrument:
        return self.instruments.setdefault((metric, name), _Instrument())

    def depth(self, name: str) -> _Instrument:
        return self._get("depth", name)

    def adds(self, name: str) -> _Instrument:
        return self._get("adds", name)

    def latency(self, name: str) -> _Instrument:
        return self._get("latency", name)

    def work_duration(self, name: str) -> _Instrument:
        return self._get("work_duration", name)

    def unfinished_work_seconds(self, name: str) -> _Instrument:
        return self._get("unfinished", name)

    def longest_running_processor_seconds(self, name: str) -> _Instrument:
        return self._get("longest", name)

    def retries(self, name: str) -> _Instrument:
        return self._get("retries", name)


def _get_in_thread(queue: Queue[str]) -> tuple[threading.Thread, list[tuple[str | None, bool]]]:
    got: list[tuple[str | None, bool]] = []
    thread = threading.Thread(target=lambda: got.append(queue.get()), daemon=True)
    thread.start()
    return thread, got


def test_keys_come_out_in_the_order_they_went_in() -> None:
    queue: Queue[str] = Queue()
    for key in ("ns/c", "ns/a", "ns/b"):
        queue.add(key)

    assert [queue.get()[0] for _ in range(3)] == ["ns/c", "ns/a", "ns/b"]


def test_a_key_added_twice_before_processing_is_handed_out_once() -> None:
    queue: Queue[str] = Queue()
    queue.add("ns/a")
    queue.add("ns/b")
    queue.add("ns/a")

    assert len(queue) == 2
    assert queue.get() == ("ns/a", False)
    assert queue.get() == ("ns/b", False)
    assert len(queue) == 0


def test_a_key_readded_while_processing_waits_for_done_then_runs_again() -> None:
    queue: Queue[str] = Queue()
    queue.add("ns/a")
    queue.get()
    queue.add("ns/a")

    # Not handed to a second worker while the first holds it.
    assert len(queue) == 0
    thread, got = _get_in_thread(queue)
    thread.join(0.05)
    assert got == []

    queue.done("ns/a")
    thread.join(5)
    assert got == [("ns/a", False)]


def test_a_key_done_without_a_readd_is_not_handed_out_again() -> None:
    queue: Queue[str] = Queue()
    queue.add("ns/a")
    queue.get()
    queue.done("ns/a")

    assert len(queue) == 0


def test_concurrent_workers_never_hold_the_same_key_and_every_key_is_processed() -> None:
    queue: Queue[str] = Queue()
    keys = [f"ns/k{i}" for i in range(10)]
    held: set[str] = set()
    overlaps: list[str] = []
    processed: Counter[str] = Counter()
    lock = threading.Lock()

    def work() -> None:
        while True:
            key, shutdown = queue.get()
            if shutdown:
                return
            assert key is not None
            with lock:
                if key in held:
                    overlaps.append(key)
                held.add(key)
            # Re-adding our own key while holding it is the case stinginess is about.
            queue.add(key)
            with lock:
                held.discard(key)
                processed[key] += 1
            queue.done(key)

    def produce() -> None:
        for _ in range(50):
            for key in keys:
                queue.add(key)

    workers = [threading.Thread(target=work, daemon=True) for _ in range(8)]
    producers = [threading.Thread(target=produce, daemon=True) for _ in range(3)]
    for thread in workers + producers:
        thread.start()
    for thread in producers:
        thread.join(10)

    eventually(lambda: _assert(all(processed[key] >= 2 for key in keys)))
    queue.shut_down()
    for thread in workers:
        thread.join(10)
    assert overlaps == []
    assert not any(thread.is_alive() for thread in workers)


def _assert(condition: bool) -> None:
    assert condition


def test_shut_down_releases_every_blocked_get() -> None:
    queue: Queue[str] = Queue()
    getters = [_get_in_thread(queue) for _ in range(3)]

    queue.shut_down()

    for thread, got in getters:
        thread.join(5)
        assert got == [(None, True)]
    assert queue.shutting_down()


def test_after_shut_down_queued_keys_are_still_handed_out_but_adds_are_ignored() -> None:
    queue: Queue[str] = Queue()
    queue.add("ns/a")
    queue.shut_down()
    queue.add("ns/b")

    assert queue.get() == ("ns/a", False)
    assert queue.get() == (None, True)


def test_drain_waits_for_keys_in_flight() -> None:
    clock = FakeClock()
    queue: Queue[str] = Queue(clock=clock)
    queue.add("ns/a")
    queue.get()
    drained: list[bool] = []
    thread = threading.Thread(target=lambda: drained.append(queue.shut_down_with_drain(30.0)), daemon=True)
    thread.start()
    eventually(lambda: _assert(clock.waiters() == 1))
    assert drained == []

    queue.done("ns/a")

    thread.join(5)
    assert drained == [True]


def test_drain_gives_up_at_its_timeout() -> None:
    clock = FakeClock()
    queue: Queue[str] = Queue(clock=clock)
    queue.add("ns/a")
    queue.get()
    drained: list[bool] = []
    thread = threading.Thread(target=lambda: drained.append(queue.shut_down_with_drain(30.0)), daemon=True)
    thread.start()
    eventually(lambda: _assert(clock.waiters() == 1))

    clock.step(29.0)
    eventually(lambda: _assert(clock.waiters() == 1))
    assert drained == []
    clock.step(1.0)

    thread.join(5)
    assert drained == [False]


def test_drain_with_nothing_in_flight_returns_at_once() -> None:
    queue: Queue[str] = Queue(clock=FakeClock())

    assert queue.shut_down_with_drain(30.0) is True


def test_metrics_follow_a_key_through_the_queue() -> None:
    clock = FakeClock()
    provider = RecordingProvider()
    queue: Queue[str] = Queue("disvc", clock=clock, metrics_provider=provider)

    def metric(kind: str) -> _Instrument:
        return provider.instruments[(kind, "disvc")]

    queue.add("ns/a")
    queue.add("ns/b")
    queue.add("ns/a")
    assert metric("adds").value == 2
    assert metric("depth").value == 2

    clock.step(2.0)
    queue.get()
    assert metric("depth").value == 1
    assert metric("latency").observations == [2.0]

    clock.step(3.0)
    queue.update_unfinished_work()
    assert metric("unfinished").value == 3.0
    assert metric("longest").value == 3.0
    queue.get()
    clock.step(1.0)
    queue.update_unfinished_work()
    assert metric("unfinished").value == 4.0 + 1.0
    assert metric("longest").value == 4.0

    queue.done("ns/a")
    assert metric("work_duration").observations == [4.0]
    queue.shut_down()


@pytest.mark.parametrize("timeout", [0.0, -1.0])
def test_drain_with_no_time_left_reports_keys_still_in_flight(timeout: float) -> None:
    queue: Queue[str] = Queue(clock=FakeClock())
    queue.add("ns/a")
    queue.get()

    assert queue.shut_down_with_drain(timeout) is False
