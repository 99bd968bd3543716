"""Lease-based leader election against an in-memory Lease API with
resourceVersion preconditions, on a stepped clock."""

from __future__ import annotations

import copy
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest

from disvc.builders.types import Obj
from disvc.controller import errors
from disvc.controller.leader import LeaderElectionConfig, LeaderElector
from disvc.testing.fixtures import eventually

NS, NAME = "disvc-system", "disvc-controller-leader"


class FakeLeases:
    """One namespace of Leases; writes must carry the current resourceVersion."""

    def __init__(self) -> None:
        self.leases: dict[str, Obj] = {}
        self.version = 0
        self.fail_writes = False
        self.before_update: Callable[[], None] | None = None

    def get_lease(self, namespace: str, name: str) -> Obj | None:
        lease = self.leases.get(name)
        return copy.deepcopy(lease) if lease else None

    def create_lease(self, namespace: str, name: str, body: Obj) -> Obj:
        self._maybe_fail()
        if name in self.leases:
            raise errors.ConflictError("already exists", status=409)
        return self._store(name, body)

    def update_lease(self, namespace: str, name: str, body: Obj) -> Obj:
        hook, self.before_update = self.before_update, None
        if hook:
            hook()
        self._maybe_fail()
        if body["metadata"].get("resourceVersion") != self.leases[name]["metadata"]["resourceVersion"]:
            raise errors.ConflictError("the object has been modified", status=409)
        return self._store(name, body)

    def spec(self) -> Obj:
        spec: Obj = self.leases[NAME]["spec"]
        return spec

    def _store(self, name: str, body: Obj) -> Obj:
        self.version += 1
        stored = copy.deepcopy(body)
        stored["metadata"]["resourceVersion"] = str(self.version)
        self.leases[name] = stored
        return copy.deepcopy(stored)

    def _maybe_fail(self) -> None:
        if self.fail_writes:
            raise errors.TransientError("503 service unavailable", status=503)


class SteppedClock:
    def __init__(self) -> None:
        self.t = 0.0

    def monotonic(self) -> float:
        return self.t

    def now(self) -> datetime:
        return datetime(2026, 1, 1, tzinfo=UTC) + timedelta(seconds=self.t)


def candidate(leases: FakeLeases, identity: str, clock: SteppedClock, **timings: float) -> LeaderElector:
    return LeaderElector(
        leases, LeaderElectionConfig(NS, NAME, identity=identity, **timings),  # type: ignore[arg-type]
        on_started_leading=lambda: None, on_stopped_leading=lambda: None, clock=clock,
    )


def test_first_candidate_creates_the_lease_and_leads() -> None:
    leases, clock = FakeLeases(), SteppedClock()
    assert candidate(leases, "a", clock).try_acquire_or_renew()
    spec = leases.spec()
    assert spec["holderIdentity"] == "a"
    assert spec["leaseDurationSeconds"] == 15
    assert spec["leaseTransitions"] == 0
    assert spec["renewTime"] == "2026-01-01T00:00:00.000000Z"


def test_renewal_moves_renew_time_and_keeps_acquire_time_and_transitions() -> None:
    leases, clock = FakeLeases(), SteppedClock()
    a = candidate(leases, "a", clock)
    a.try_acquire_or_renew()
    clock.t = 2
    assert a.try_acquire_or_renew()
    spec = leases.spec()
    assert spec["renewTime"] == "2026-01-01T00:00:02.000000Z"
    assert spec["acquireTime"] == "2026-01-01T00:00:00.000000Z"
    assert spec["leaseTransitions"] == 0


def test_another_candidate_waits_out_the_lease_duration_then_takes_over() -> None:
    leases, clock = FakeLeases(), SteppedClock()
    candidate(leases, "a", clock).try_acquire_or_renew()
    b = candidate(leases, "b", clock)
    assert not b.try_acquire_or_renew()  # first sight of the record starts b's timer
    clock.t = 14.9
    assert not b.try_acquire_or_renew()
    clock.t = 15.0
    assert b.try_acquire_or_renew()
    spec = leases.spec()
    assert spec["holderIdentity"] == "b"
    assert spec["leaseTransitions"] == 1
    assert spec["acquireTime"] == "2026-01-01T00:00:15.000000Z"


def test_expiry_is_measured_from_when_the_candidate_saw_the_record_change() -> None:
    leases, clock = FakeLeases(), SteppedClock()
    a, b = candidate(leases, "a", clock), candidate(leases, "b", clock)
    a.try_acquire_or_renew()
    for step in range(1, 30):
        clock.t = step * 2.0
        a.try_acquire_or_renew()
        assert not b.try_acquire_or_renew()
    assert leases.spec()["holderIdentity"] == "a"


def test_of_two_candidates_racing_for_an_expired_lease_only_one_wins() -> None:
    leases, clock = FakeLeases(), SteppedClock()
    candidate(leases, "old", clock).try_acquire_or_renew()
    b, c = candidate(leases, "b", clock), candidate(leases, "c", clock)
    b.try_acquire_or_renew()
    c.try_acquire_or_renew()
    clock.t = 20
    won_c: list[bool] = []
    leases.before_update = lambda: won_c.append(c.try_acquire_or_renew())  # c writes between b's read and write
    assert not b.try_acquire_or_renew()
    assert won_c == [True]
    assert leases.spec()["holderIdentity"] == "c"
    assert leases.spec()["leaseTransitions"] == 1


def test_a_lost_create_race_is_not_leadership() -> None:
    leases, clock = FakeLeases(), SteppedClock()
    b = candidate(leases, "b", clock)
    original_get = leases.get_lease
    leases.get_lease = lambda namespace, name: None  # type: ignore[method-assign]
    candidate(leases, "a", clock).try_acquire_or_renew()
    assert not b.try_acquire_or_renew()
    leases.get_lease = original_get  # type: ignore[method-assign]
    assert leases.spec()["holderIdentity"] == "a"


def test_api_errors_mean_not_leading_this_round() -> None:
    leases, clock = FakeLeases(), SteppedClock()
    leases.fail_writes = True
    assert not candidate(leases, "a", clock).try_acquire_or_renew()


def test_release_lets_a_successor_acquire_at_once() -> None:
    leases, clock = FakeLeases(), SteppedClock()
    a, b = candidate(leases, "a", clock), candidate(leases, "b", clock)
    a.try_acquire_or_renew()
    assert not b.try_acquire_or_renew()
    assert a.release()
    assert leases.spec()["holderIdentity"] == ""
    assert leases.spec()["leaseDurationSeconds"] == 1
    assert b.try_acquire_or_renew()
    assert leases.spec()["holderIdentity"] == "b"


def test_release_by_a_non_holder_changes_nothing() -> None:
    leases, clock = FakeLeases(), SteppedClock()
    candidate(leases, "a", clock).try_acquire_or_renew()
    assert not candidate(leases, "b", clock).release()
    assert leases.spec()["holderIdentity"] == "a"


def test_run_leads_until_stopped_then_releases() -> None:
    leases = FakeLeases()
    calls: list[str] = []
    elector = LeaderElector(
        leases, LeaderElectionConfig(NS, NAME, identity="a", retry_period=0.01),
        on_started_leading=lambda: calls.append("started"),
        on_stopped_leading=lambda: calls.append("stopped"),
    )
    stop = threading.Event()
    thread = threading.Thread(target=elector.run, args=(stop,), daemon=True)
    thread.start()
    eventually(lambda: _assert(elector.is_leader() and calls == ["started"]))
    first_renew = leases.spec()["renewTime"]
    eventually(lambda: _assert(leases.spec()["renewTime"] != first_renew))
    stop.set()
    thread.join(timeout=5)
    assert calls == ["started", "stopped"]
    assert not elector.is_leader()
    assert leases.spec()["holderIdentity"] == ""


def test_run_stops_leading_when_renewals_fail_past_the_renew_deadline() -> None:
    leases = FakeLeases()
    calls: list[str] = []
    elector = LeaderElector(
        leases, LeaderElectionConfig(NS, NAME, identity="a", retry_period=0.01, renew_deadline=0.05),
        on_started_leading=lambda: calls.append("started"),
        on_stopped_leading=lambda: calls.append("stopped"),
    )
    stop = threading.Event()
    thread = threading.Thread(target=elector.run, args=(stop,), daemon=True)
    thread.start()
    eventually(lambda: _assert(calls == ["started"]))
    leases.fail_writes = True
    thread.join(timeout=5)
    assert not thread.is_alive(), "run returns by itself once leadership is lost"
    assert calls == ["started", "stopped"]
    assert not stop.is_set()


def test_identity_defaults_to_hostname_and_a_unique_suffix() -> None:
    one, two = LeaderElectionConfig(NS, NAME), LeaderElectionConfig(NS, NAME)
    assert one.identity != two.identity
    assert one.identity.rsplit("_", 1)[0] == two.identity.rsplit("_", 1)[0]


def _assert(condition: bool) -> None:
    assert condition


def test_a_leader_whose_renewal_hangs_stops_writing_at_the_renew_deadline() -> None:
    """A paused or stuck leader (its renewal never returns) must refuse to write
    once the renew deadline has passed since its last renewal, long before
    the lease it holds lets anyone else in, whatever its renew loop is doing."""
    leases = FakeLeases()
    clock = SteppedClock()
    stuck, release = threading.Event(), threading.Event()
    elector = LeaderElector(
        leases, LeaderElectionConfig(NS, NAME, identity="a", retry_period=2, renew_deadline=10, lease_duration=15),
        on_started_leading=lambda: None, on_stopped_leading=lambda: None, clock=clock,
    )
    stop = threading.Event()

    def hang() -> None:
        stuck.set()
        release.wait(10)

    thread = threading.Thread(target=elector.run, args=(stop,), daemon=True)
    thread.start()
    eventually(lambda: _assert(elector.is_leader()))
    assert elector.may_write()
    leases.before_update = hang  # the next renewal hangs inside its request
    clock.t = 2.0  # the loop's wait is real time; wake it through a short deadline instead
    eventually(lambda: _assert(stuck.is_set()), timeout=5)
    clock.t = 9.9
    assert elector.may_write()
    clock.t = 10.0  # the renew deadline, measured from the renewal sent at 0
    assert elector.is_leader()  # the loop is still inside the hung renewal...
    assert not elector.may_write()  # ...and writes are already refused
    release.set()
    thread.join(timeout=5)
    assert not thread.is_alive() and not elector.is_leader()
    stop.set()


def test_a_renewal_that_returns_after_the_deadline_does_not_extend_leadership() -> None:
    leases = FakeLeases()
    clock = SteppedClock()
    stopped: list[bool] = []
    elector = LeaderElector(
        leases, LeaderElectionConfig(NS, NAME, identity="a", retry_period=0.01, renew_deadline=5, lease_duration=15),
        on_started_leading=lambda: None, on_stopped_leading=lambda: stopped.append(True), clock=clock,
    )

    def paused() -> None:
        clock.t += 20  # SIGSTOP between sending the renewal and its reply
    leases.before_update = paused
    stop = threading.Event()
    thread = threading.Thread(target=elector.run, args=(stop,), daemon=True)
    thread.start()
    thread.join(timeout=5)
    assert stopped == [True] and not elector.may_write()


@pytest.mark.parametrize(
    ("lease", "deadline", "retry"),
    [(15, 15, 2), (15, 20, 2), (15, 10, 10), (15, 10, 12), (15, 10, 0)],
)
def test_timings_must_keep_retry_below_deadline_below_lease(lease: float, deadline: float, retry: float) -> None:
    with pytest.raises(ValueError, match="retry period < renew deadline < lease duration"):
        LeaderElectionConfig(NS, NAME, lease_duration=lease, renew_deadline=deadline, retry_period=retry)
