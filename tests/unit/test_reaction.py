"""Reaction time: from a watch event to the first write it caused."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field

import pytest

from disvc.builders.types import ObjectKey
from disvc.controller.reaction import Reaction
from disvc.controller.reconcile import Result

KEY = ObjectKey("ns", "iris")


@dataclass
class Clock:
    now: float = 100.0

    def __call__(self) -> float:
        return self.now


@dataclass
class Recorder:
    """Stands in for the queue the handlers add to."""

    added: list[str] = field(default_factory=list)

    def add(self, key: str) -> None:
        self.added.append(key)


@dataclass
class ScriptedReconciler:
    """Each reconcile runs ``step`` (writes through ``reaction.wrote``, or raises)."""

    step: Callable[[], None] = lambda: None

    def reconcile(self, key: ObjectKey) -> Result:
        self.step()
        return Result()


@dataclass
class Setup:
    clock: Clock
    observed: list[float]
    reaction: Reaction
    queue: Recorder
    reconciler: ScriptedReconciler

    def event(self) -> None:
        self.reaction.watching(self.queue).add(str(KEY))

    def reconcile(self) -> None:
        self.reaction.reconciling(self.reconciler).reconcile(KEY)


@pytest.fixture
def setup() -> Setup:
    clock, observed = Clock(), []
    reaction = Reaction(observed.append, clock=clock)
    return Setup(clock, observed, reaction, Recorder(), ScriptedReconciler())


def writes(setup: Setup, *, after: float, count: int = 1) -> Callable[[], None]:
    def step() -> None:
        setup.clock.now += after
        for _ in range(count):
            setup.reaction.wrote()
            setup.clock.now += 1.0

    return step


def test_the_first_write_after_an_event_is_measured_from_the_event(setup: Setup) -> None:
    setup.event()
    setup.clock.now += 0.25  # waiting in the queue
    setup.reconciler.step = writes(setup, after=0.05, count=3)

    setup.reconcile()

    assert setup.queue.added == ["ns/iris"]  # the key still reaches the queue
    assert setup.observed == [pytest.approx(0.30)]


def test_events_folded_into_one_reconcile_count_from_the_first(setup: Setup) -> None:
    setup.event()
    setup.clock.now += 1.0
    setup.event()
    setup.reconciler.step = writes(setup, after=0.5)

    setup.reconcile()

    assert setup.observed == [pytest.approx(1.5)]


def test_a_reconcile_without_an_event_is_no_reaction(setup: Setup) -> None:
    setup.reconciler.step = writes(setup, after=0.1)  # a resync or requeue that writes

    setup.reconcile()

    assert setup.observed == []


def test_a_reconcile_that_writes_nothing_records_nothing_and_forgets_the_event(setup: Setup) -> None:
    setup.event()

    setup.reconcile()
    setup.reconciler.step = writes(setup, after=0.1)
    setup.reconcile()  # a later requeue that writes is not a reaction to that event

    assert setup.observed == []
    assert setup.reaction.pending() == 0


def test_a_failed_reconcile_hands_its_event_to_the_retry(setup: Setup) -> None:
    def fail() -> None:
        setup.clock.now += 1.0
        raise RuntimeError("API server unavailable")

    setup.event()
    setup.reconciler.step = fail
    with pytest.raises(RuntimeError):
        setup.reconcile()
    setup.clock.now += 2.0  # backoff
    setup.reconciler.step = writes(setup, after=0.5)

    setup.reconcile()

    assert setup.observed == [pytest.approx(3.5)]


def test_writes_off_the_reconcile_thread_are_not_reactions(setup: Setup) -> None:
    def step() -> None:
        thread = threading.Thread(target=setup.reaction.wrote)  # as the Event recorder's thread
        thread.start()
        thread.join()

    setup.event()
    setup.reconciler.step = step

    setup.reconcile()

    assert setup.observed == []


def test_keys_of_deleted_disvcs_leave_nothing_behind(setup: Setup) -> None:
    for index in range(50):
        key = ObjectKey("ns", f"gone-{index}")
        setup.reaction.watching(setup.queue).add(str(key))
        setup.reaction.reconciling(setup.reconciler).reconcile(key)  # finds it deleted, writes nothing

    assert setup.reaction.pending() == 0
