"""Leader election on a coordination.k8s.io/v1 Lease, so only one replica reconciles.

Candidates race to hold one Lease. The holder renews it every ``retry_period``;
the others take it over only once it has gone unrenewed for its
``leaseDurationSeconds``, as measured on *their own* clock from the moment
they last saw the record change (never by comparing the holder's
timestamps with ours, so clock skew between nodes cannot cause two
leaders). Every write carries the resourceVersion it read, so two
candidates racing for an expired lease cannot both win: the loser gets a
409 and tries again next period.

Timings default to the command line's (``options.DEFAULTS``:
controller-runtime's lease 15 s, renew deadline 10 s, retry 2 s) and must
keep ``retry_period < renew_deadline < lease_duration`` (checked when the
config is made). A leader that cannot renew within the renew deadline stops
leading (``on_stopped_leading``) and ``run`` returns: the manager must then
stop reconciling, because another replica may take over 5 s later. On a
clean shutdown the leader releases the lease (empty holder, 1 s duration)
so a successor need not wait out the full lease.

Leading is a matter of time, not of a flag: ``may_write`` is true only while
less than the renew deadline has passed since the last successful renewal
was *sent*, on our monotonic clock. A candidate takes the lease over only
a whole lease duration after it saw that renewal, so every write checked
against ``may_write`` happens while nobody else can lead, whatever paused
this process (a GC, SIGSTOP, CPU throttling) and however late the renew
loop notices. The loop itself never sleeps past the deadline.
"""

from __future__ import annotations

import random
import socket
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Final, Protocol

import structlog

from disvc.builders.types import Obj
from disvc.controller import errors
from disvc.controller.clock import Clock, RealClock, rfc3339
from disvc.controller.options import DEFAULTS

log = structlog.get_logger(__name__)

LEASE_API_VERSION: Final = "coordination.k8s.io/v1"
JITTER: Final = 0.2
"""Acquire attempts are spread over [retry_period, retry_period * 1.2)."""


def default_identity() -> str:
    """``<hostname>_<uuid>``: unique even for two candidates on one host."""
    return f"{socket.gethostname()}_{uuid.uuid4()}"


class LeaseClient(Protocol):
    """The Lease calls leader election makes (``kube.Kube`` provides them)."""

    def get_lease(self, namespace: str, name: str) -> Obj | None: ...

    def create_lease(self, namespace: str, name: str, body: Obj) -> Obj: ...

    def update_lease(self, namespace: str, name: str, body: Obj) -> Obj: ...


@dataclass(frozen=True, slots=True)
class LeaderElectionConfig:
    namespace: str
    name: str
    identity: str = field(default_factory=default_identity)
    lease_duration: float = DEFAULTS.lease_duration
    """How long an unrenewed lease keeps other candidates out."""
    renew_deadline: float = DEFAULTS.renew_deadline
    """How long the leader keeps trying to renew before it gives up leading."""
    retry_period: float = DEFAULTS.retry_period
    """Time between attempts to acquire or renew."""
    release_on_cancel: bool = True
    """Release the lease on a clean shutdown so a successor starts at once."""

    def __post_init__(self) -> None:
        check_timings(self.lease_duration, self.renew_deadline, self.retry_period)


def check_timings(lease_duration: float, renew_deadline: float, retry_period: float) -> None:
    """Raise ``ValueError`` unless ``0 < retry_period < renew_deadline < lease_duration``.

    The margin between the renew deadline and the lease duration is what
    keeps a leader that stops writing at its deadline from overlapping a
    successor; a retry period as long as the deadline leaves no second try."""
    if not 0 < retry_period < renew_deadline < lease_duration:
        raise ValueError(
            "leader election needs 0 < retry period < renew deadline < lease duration, got "
            f"retry period {retry_period:g}s, renew deadline {renew_deadline:g}s, lease duration {lease_duration:g}s"
        )


class LeaderElector:
    """Acquires, renews and releases one Lease for one candidate."""

    def __init__(
        self,
        kube: LeaseClient,
        config: LeaderElectionConfig,
        *,
        on_started_leading: Callable[[], None],
        on_stopped_leading: Callable[[], None],
        clock: Clock | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self._kube = kube
        self.config = config
        self._on_started = on_started_leading
        self._on_stopped = on_stopped_leading
        self._clock: Clock = clock or RealClock()
        self._rng = rng or random.Random()
        self._observed_spec: Obj | None = None
        self._observed_time = 0.0
        self._leading = threading.Event()
        self._renewed_at = 0.0
        """Monotonic time the last successful acquire or renewal was sent."""

    @property
    def identity(self) -> str:
        return self.config.identity

    def is_leader(self) -> bool:
        return self._leading.is_set()

    def may_write(self) -> bool:
        """True while we lead and less than the renew deadline has passed since
        our last successful renewal was sent: every write asks first."""
        return self._leading.is_set() and self._clock.monotonic() - self._renewed_at < self.config.renew_deadline

    def run(self, stop: threading.Event) -> None:
        """Acquire, call ``on_started_leading``, renew until ``stop`` or a failed
        renewal, then call ``on_stopped_leading`` and return.

        The callbacks run on this thread and must return promptly.
        """
        cfg = self.config
        while not stop.is_set():
            sent = self._clock.monotonic()
            if self.try_acquire_or_renew():
                self._renewed_at = sent
                break
            stop.wait(cfg.retry_period * (1 + JITTER * self._rng.random()))
        if stop.is_set():
            return
        log.info("Became leader", lease=f"{cfg.namespace}/{cfg.name}", identity=cfg.identity)
        self._leading.set()
        self._on_started()
        try:
            while not stop.wait(self._until_next_renewal()):
                if self._past_deadline():
                    break  # paused, or a renewal hung: another may lead by now
                # Counted from when the renewal was sent: others measure the
                # lease from the renewTime it carries, not from our reply.
                sent = self._clock.monotonic()
                if self.try_acquire_or_renew() and not self._past_deadline():
                    self._renewed_at = sent
                elif self._past_deadline():
                    break
            else:
                # Read now, not at start: shutdown withholds the release while
                # reconciles it could not wait for may still write.
                if self.config.release_on_cancel:
                    self.release()
        finally:
            if not stop.is_set():
                log.error("Leader election lost", lease=f"{cfg.namespace}/{cfg.name}", identity=cfg.identity)
            self._leading.clear()
            self._on_stopped()

    def _past_deadline(self) -> bool:
        return self._clock.monotonic() - self._renewed_at >= self.config.renew_deadline

    def _until_next_renewal(self) -> float:
        """The retry period, cut short so the loop wakes by the renew deadline."""
        left = self._renewed_at + self.config.renew_deadline - self._clock.monotonic()
        return max(0.0, min(self.config.retry_period, left))

    def try_acquire_or_renew(self) -> bool:
        """One attempt; True when we hold the lease afterwards."""
        cfg = self.config
        now = self._clock.now()
        try:
            lease = self._kube.get_lease(cfg.namespace, cfg.name)
            if lease is None:
                created = self._kube.create_lease(cfg.namespace, cfg.name, {
                    "apiVersion": LEASE_API_VERSION,
                    "kind": "Lease",
                    "metadata": {"namespace": cfg.namespace, "name": cfg.name},
                    "spec": self._spec(now, acquire_time=rfc3339(now, micro=True), transitions=0),
                })
                self._observe(created)
                return True
            spec: Obj = lease.get("spec") or {}
            if spec != self._observed_spec:
                self._observe(lease)
            holder = spec.get("holderIdentity") or ""
            if holder and holder != cfg.identity and not self._observed_expired():
                return False
            transitions = int(spec.get("leaseTransitions") or 0)
            if holder == cfg.identity:
                acquire_time = str(spec.get("acquireTime") or rfc3339(now, micro=True))
            else:
                acquire_time, transitions = rfc3339(now, micro=True), transitions + 1
            updated = self._kube.update_lease(
                cfg.namespace, cfg.name,
                {**lease, "spec": self._spec(now, acquire_time=acquire_time, transitions=transitions)},
            )
            self._observe(updated)
            return True
        except errors.ConflictError:
            # Another candidate wrote first (create or update); look again next period.
            return False
        except errors.ControllerError as exc:
            log.warning("Lease acquire or renew failed", lease=f"{cfg.namespace}/{cfg.name}", error=str(exc))
            return False

    def release(self) -> bool:
        """Give the lease up if we hold it, so a successor need not wait it out."""
        cfg = self.config
        try:
            lease = self._kube.get_lease(cfg.namespace, cfg.name)
            if lease is None or (lease.get("spec") or {}).get("holderIdentity") != cfg.identity:
                return False
            spec = lease["spec"]
            now = self._clock.now()
            released = {
                **spec,
                "holderIdentity": "",
                "leaseDurationSeconds": 1,
                "renewTime": rfc3339(now, micro=True),
                "acquireTime": rfc3339(now, micro=True),
            }
            self._observe(self._kube.update_lease(cfg.namespace, cfg.name, {**lease, "spec": released}))
            log.info("Released leader lease", lease=f"{cfg.namespace}/{cfg.name}", identity=cfg.identity)
            return True
        except errors.ControllerError as exc:
            log.warning("Lease release failed", lease=f"{cfg.namespace}/{cfg.name}", error=str(exc))
            return False

    def _spec(self, now: datetime, *, acquire_time: str, transitions: int) -> Obj:
        return {
            "holderIdentity": self.config.identity,
            "leaseDurationSeconds": max(1, round(self.config.lease_duration)),
            "acquireTime": acquire_time,
            "renewTime": rfc3339(now, micro=True),
            "leaseTransitions": transitions,
        }

    def _observe(self, lease: Obj) -> None:
        self._observed_spec = lease.get("spec") or {}
        self._observed_time = self._clock.monotonic()

    def _observed_expired(self) -> bool:
        duration = float((self._observed_spec or {}).get("leaseDurationSeconds") or self.config.lease_duration)
        return self._observed_time + duration <= self._clock.monotonic()
