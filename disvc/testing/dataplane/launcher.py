"""Predictor pods as processes: what a Deployment and its kubelet would do.

KServe's raw deployment mode gives each InferenceService a Deployment of
predictor pods; here each pod is a child process running KServe's model
server (:mod:`.modelserver`) on a loopback address of its own, recorded in
the :class:`~.pods.PodRegistry`. The behaviour follows the Kubernetes docs:

- Deployments ("Deployments", rolling update): a new ISVC generation starts
  a new set of pods; the old set goes once every new pod is Ready;
- pod lifecycle ("Pod Lifecycle", container restarts): a container that
  exits is restarted with an exponential back-off (10 s, doubling, capped at
  five minutes in the kubelet; 1 s doubling to 10 s here, so tests are quick),
  and its pod is not Ready meanwhile;
- readiness: the pod is Ready when the model server's own
  ``/v2/health/ready`` answers 200 (the probe KServe's runtimes use);
- termination ("Termination of Pods"): the pod leaves the endpoints first,
  then its process gets SIGTERM, and SIGKILL after a grace period.

In KServe's Knative mode (``ensure`` given a :class:`KnativeRevision`) a
pod is a revision's: it carries Knative's revision labels, declares
queue-proxy's ``queue-port`` (8012, or 8013 for an h2c model) next to the
model's ports, and has a queue-proxy hop there (:mod:`.queueproxy`) that
forwards to the model server and counts requests per revision. A new
revision's pods start beside the old ones, and the old revision's pods stay
``REVISION_LINGER_SECONDS`` after the new ones are Ready (Knative scales a
revision down only once traffic has left it).

Processes start in their own session, with stdout and stderr in per-pod files
under ``log_dir``; every process is killed when the launcher stops, or when
the interpreter exits, so no model server outlives a test session.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import logging
import os
import secrets
import signal
import subprocess
import sys
import threading
import time
import weakref
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Final, Literal

from disvc.testing.dataplane.pods import ContainerPort, Pod, PodRegistry, predictor_labels
from disvc.testing.dataplane.queueproxy import (
    QUEUE_H2C_PORT,
    QUEUE_HTTP_PORT,
    QUEUE_PORT_NAME,
    Hop,
    QueueProxies,
)
from disvc.testing.dataplane.runtime import Container, UnsupportedRuntime, predictor_container

MAX_REPLICAS: Final = 3
DRAIN_SECONDS: Final = 0.5
"""Between leaving the endpoints and SIGTERM: requests already routed finish."""
GRACE_SECONDS: Final = 5.0
BACKOFF_START: Final = 1.0
BACKOFF_CAP: Final = 10.0
LOAD_FAILED: Final = "ModelLoadFailed"
REVISION_LINGER_SECONDS: Final = 10.0
"""How long a Knative revision's pods outlive the Ready pods of the next one."""
GRPC_PORT_NAMES: Final = frozenset({"h2c", "grpc"})
"""KServe's convention: a container port of these names serves gRPC (h2c)."""
_PROBE_PATH: Final = "/v2/health/ready"
_TICK: Final = 0.1

State = Literal["ready", "pending", "failed"]


@dataclass(frozen=True, slots=True)
class KnativeRevision:
    """The Knative revision an ISVC's pods belong to (Knative mode)."""

    name: str
    """``X-predictor-0000n``."""
    labels: Mapping[str, str]
    """Knative's labels on the revision's pods (``serving.knative.dev/...``)."""

log = logging.getLogger(__name__)


@dataclass(slots=True)
class _Replica:
    """One pod: its process comes and goes (restarts), its name and IP stay."""

    name: str
    ip: str
    process: subprocess.Popen[bytes] | None = None
    http_port: int | None = None
    ready: bool = False
    restarts: int = 0
    exited_before_ready: bool = False
    last_error: str = ""
    next_start: float = 0.0
    stdout: Path | None = None
    stderr: Path | None = None


@dataclass(slots=True)
class _ReplicaSet:
    """The pods of one ISVC generation (a ReplicaSet of its Deployment)."""

    namespace: str
    isvc: str
    uid: str
    generation: int
    container: Container | None
    labels: Mapping[str, str]
    unsupported: UnsupportedRuntime | None = None
    replicas: list[_Replica] = field(default_factory=list)
    revision: KnativeRevision | None = None
    superseded_at: float | None = None
    """Knative mode: when the next revision's pods were all Ready."""

    def all_ready(self) -> bool:
        return bool(self.replicas) and all(r.ready for r in self.replicas)


def replica_count(isvc: Mapping[str, Any]) -> int:
    """``predictor.minReplicas`` (1 when unset or 0), at most :data:`MAX_REPLICAS`."""
    predictor = (isvc.get("spec") or {}).get("predictor") or {}
    wanted = predictor.get("minReplicas")
    count = wanted if isinstance(wanted, int) and wanted > 0 else 1
    return min(count, MAX_REPLICAS)


class PodLauncher:
    """Starts, watches, restarts and ends the predictor pods of ISVCs."""

    def __init__(self, registry: PodRegistry, log_dir: Path) -> None:
        self.registry = registry
        self.log_dir = Path(log_dir)
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self._lock = threading.RLock()
        self._sets: dict[tuple[str, str], list[_ReplicaSet]] = {}
        """Per ISVC, its replica sets, oldest first: the last is the current one."""
        self._processes: set[subprocess.Popen[bytes]] = set()
        self.queue_proxies = QueueProxies()
        """Knative-mode pods' queue-proxy hops, and the requests they counted."""
        self._stopping = threading.Event()
        self._terminations: list[threading.Thread] = []
        self._supervisor = threading.Thread(target=self._supervise, name="pod-launcher", daemon=True)
        # Shares only the process set, so it can run after the launcher is gone.
        self._finalizer = weakref.finalize(self, _kill_all, self._processes)
        self._supervisor.start()

    # --- the API the KServe stand-in uses ------------------------------------

    def ensure(self, isvc: Mapping[str, Any], revision: KnativeRevision | None = None) -> None:
        """Pods for this ISVC's uid and generation, started if not running
        (with ``revision``: Knative-mode pods of that revision)."""
        metadata = isvc.get("metadata") or {}
        namespace, name = str(metadata["namespace"]), str(metadata["name"])
        uid, generation = str(metadata.get("uid", "")), int(metadata.get("generation", 0))
        with self._lock:
            sets = self._sets.setdefault((namespace, name), [])
            if sets and sets[-1].uid == uid and sets[-1].generation == generation:
                return
            if sets and sets[-1].uid != uid:
                # Another object of the same name: the old one's pods are orphans.
                for old in sets:
                    self._retire(old)
                sets.clear()
            labels = predictor_labels(name, (metadata.get("labels") or {}).items())
            if revision is not None:
                labels.update(revision.labels)
            try:
                container: Container | None = predictor_container(isvc)
                unsupported = None
            except UnsupportedRuntime as error:
                container, unsupported = None, error
            new = _ReplicaSet(namespace, name, uid, generation, container, labels, unsupported, revision=revision)
            if container is not None:
                for _ in range(replica_count(isvc)):
                    prefix = revision.name if revision is not None else f"{name}-predictor"
                    replica = _Replica(f"{prefix}-{secrets.token_hex(3)[:5]}", self.registry.allocate_ip())
                    pod = self._pod(new, replica)
                    if revision is not None:
                        self._open_queue_proxy(new, replica, pod)
                    self.registry.add(pod)
                    new.replicas.append(replica)
            sets.append(new)

    def state(self, namespace: str, isvc: str) -> tuple[State, str, str]:
        """The current generation's verdict: (state, reason, message).

        ``failed`` once a pod's model server exited before it was ever Ready
        (and none is Ready now); the message is its last line on stderr."""
        with self._lock:
            sets = self._sets.get((namespace, isvc))
            if not sets:
                return "pending", "", ""
            current = sets[-1]
            if current.unsupported is not None:
                return "failed", current.unsupported.reason, current.unsupported.message
            if current.all_ready():
                return "ready", "", ""
            failed = next((r for r in current.replicas if r.exited_before_ready and not r.ready), None)
            if failed is not None:
                return "failed", LOAD_FAILED, failed.last_error or "the model server exited before it was ready"
            return "pending", "", ""

    def delete(self, namespace: str, isvc: str, wait: bool = False) -> None:
        """End every pod of the ISVC: out of the registry at once (routers stop
        sending), then SIGTERM after a short drain, SIGKILL after the grace."""
        with self._lock:
            sets = self._sets.pop((namespace, isvc), [])
            threads = [self._retire(replica_set) for replica_set in sets]
        if wait:
            for thread in threads:
                thread.join()

    def pods(self, namespace: str, isvc: str) -> list[Pod]:
        return self.registry.of_isvc(namespace, isvc)

    def isvcs(self) -> list[tuple[str, str]]:
        """(namespace, name) of every ISVC that has pods here."""
        with self._lock:
            return list(self._sets)

    def stop(self) -> None:
        """Kill every process and forget every pod."""
        self._stopping.set()
        self._supervisor.join(5)
        with self._lock:
            everything = [s for sets in self._sets.values() for s in sets]
            self._sets.clear()
            for replica_set in everything:
                for replica in replica_set.replicas:
                    self.registry.remove(replica_set.namespace, replica.name)
        _kill_all(self._processes)
        for thread in list(self._terminations):
            thread.join(GRACE_SECONDS + 1)
        for replica_set in everything:
            for replica in replica_set.replicas:
                self.registry.release_ip(replica.ip)
        self.queue_proxies.stop()
        self._finalizer.detach()

    # --- the supervisor: start, probe, restart, roll --------------------------

    def _supervise(self) -> None:
        while not self._stopping.wait(_TICK):
            with self._lock:
                work = [(s, r) for sets in self._sets.values() for s in sets for r in s.replicas]
            for replica_set, replica in work:
                try:
                    self._tend(replica_set, replica)
                except Exception:
                    log.exception("pod %s: supervisor error", replica.name)
            self._finish_rollouts()

    def _tend(self, replica_set: _ReplicaSet, replica: _Replica) -> None:
        process = replica.process
        if process is None:
            if time.monotonic() >= replica.next_start and replica_set.container is not None:
                with self._lock:
                    if self._is_current_member(replica_set, replica):
                        self._start(replica_set, replica, replica_set.container)
            return
        code = process.poll()
        if code is not None:
            self._on_exit(replica_set, replica, code)
            return
        if not replica.ready and self._probe(replica):
            replica.ready = True
            self.registry.set_ready(replica_set.namespace, replica.name, True)

    def _start(self, replica_set: _ReplicaSet, replica: _Replica, container: Container) -> None:
        replica.stdout = self.log_dir / f"{replica_set.namespace}_{replica.name}.log"
        replica.stderr = self.log_dir / f"{replica_set.namespace}_{replica.name}.err.log"
        env = {k: v for k, v in os.environ.items() if not k.startswith("DISVC_IRIS_")}
        env.update(container.env)
        command = [sys.executable, "-m", "disvc.testing.dataplane.modelserver", "--pod-ip", replica.ip, "--"]
        with open(replica.stdout, "ab") as out, open(replica.stderr, "ab") as err:
            _mark(out, err, f"start {replica.restarts}: {' '.join(container.args)}")
            process = subprocess.Popen(
                [*command, *container.args], stdout=out, stderr=err, env=env, start_new_session=True
            )
        replica.process, replica.http_port = process, None
        self._processes.add(process)

    def _on_exit(self, replica_set: _ReplicaSet, replica: _Replica, code: int) -> None:
        if replica.process is not None:
            self._processes.discard(replica.process)
        replica.process, replica.http_port = None, None
        if not replica.ready:
            replica.exited_before_ready = True
        replica.ready = False
        replica.last_error = _last_line(replica.stderr) or f"exit code {code}"
        self.registry.set_ready(replica_set.namespace, replica.name, False)
        delay = min(BACKOFF_CAP, BACKOFF_START * 2**replica.restarts)
        replica.restarts += 1
        replica.next_start = time.monotonic() + delay
        log.debug("pod %s exited (%s); restart in %.0f s", replica.name, code, delay)

    def _probe(self, replica: _Replica) -> bool:
        if replica.http_port is None:
            replica.http_port = _announced_port(replica.stdout)
            if replica.http_port is None:
                return False
        connection = http.client.HTTPConnection(replica.ip, replica.http_port, timeout=0.5)
        try:
            connection.request("GET", _PROBE_PATH)
            return connection.getresponse().status == 200
        except OSError:
            return False
        finally:
            connection.close()

    def _finish_rollouts(self) -> None:
        """Once the current set is all Ready, the older sets go (a finished
        rollout); an older Knative revision's after ``REVISION_LINGER_SECONDS``."""
        now = time.monotonic()
        with self._lock:
            for sets in self._sets.values():
                if len(sets) > 1 and sets[-1].all_ready():
                    going = []
                    for old in sets[:-1]:
                        if old.revision is not None and sets[-1].revision is not None:
                            old.superseded_at = old.superseded_at or now
                            if now - old.superseded_at < REVISION_LINGER_SECONDS:
                                continue
                        going.append(old)
                    for old in going:
                        self._retire(old)
                    sets[:] = [s for s in sets if not any(s is g for g in going)]

    # --- Knative's queue-proxy ----------------------------------------------------

    def _open_queue_proxy(self, replica_set: _ReplicaSet, replica: _Replica, pod: Pod) -> None:
        assert replica_set.revision is not None and replica_set.container is not None
        ports = replica_set.container.ports
        grpc = next((p.port for p in ports if p.name in GRPC_PORT_NAMES), None)
        user_port = grpc if grpc is not None else next((p.port for p in ports), 8080)
        queue_port = next(p.port for p in pod.ports if p.name == QUEUE_PORT_NAME)
        hop = Hop(replica_set.namespace, replica.name, replica_set.revision.name, replica.ip, queue_port, user_port)
        self.queue_proxies.open(hop)

    # --- termination ------------------------------------------------------------

    def _retire(self, replica_set: _ReplicaSet) -> threading.Thread:
        """Take the set's pods out of the registry now; end their processes in
        the background (drain, SIGTERM, grace, SIGKILL), then free their IPs."""
        for replica in replica_set.replicas:
            self.registry.remove(replica_set.namespace, replica.name)
        replicas = list(replica_set.replicas)
        replica_set.replicas = []  # the supervisor no longer tends (or restarts) them
        if replica_set.revision is not None:
            for replica in replicas:
                self.queue_proxies.close(replica_set.namespace, replica.name)
        thread = threading.Thread(target=self._terminate, args=(replicas,), name="pod-terminate", daemon=True)
        self._terminations = [t for t in self._terminations if t.is_alive()] + [thread]
        thread.start()
        return thread

    def _terminate(self, replicas: list[_Replica]) -> None:
        time.sleep(DRAIN_SECONDS)
        processes = [r.process for r in replicas if r.process is not None]
        for process in processes:
            _signal(process, signal.SIGTERM)
        deadline = time.monotonic() + GRACE_SECONDS
        for process in processes:
            try:
                process.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                _signal(process, signal.SIGKILL)
                process.wait()
            self._processes.discard(process)
        for replica in replicas:
            self.registry.release_ip(replica.ip)

    def _is_current_member(self, replica_set: _ReplicaSet, replica: _Replica) -> bool:
        sets = self._sets.get((replica_set.namespace, replica_set.isvc), [])
        return any(s is replica_set for s in sets) and replica in replica_set.replicas

    def _pod(self, replica_set: _ReplicaSet, replica: _Replica) -> Pod:
        container = replica_set.container
        ports = container.ports if container is not None else ()
        revision = replica_set.revision
        if revision is not None:
            h2c = any(p.name in GRPC_PORT_NAMES for p in ports)
            ports = (*ports, ContainerPort(QUEUE_H2C_PORT if h2c else QUEUE_HTTP_PORT, QUEUE_PORT_NAME))
        return Pod(
            namespace=replica_set.namespace,
            name=replica.name,
            isvc=replica_set.isvc,
            labels=dict(replica_set.labels),
            ip=replica.ip,
            ports=ports,
            ready=False,
            revision=revision.name if revision is not None else None,
        )


def _mark(out: IO[bytes], err: IO[bytes], line: str) -> None:
    for stream in (out, err):
        stream.write(f"--- disvc launcher: {line}\n".encode())
        stream.flush()


def _announced_port(stdout: Path | None) -> int | None:
    """The HTTP port the model server announced in its JSON line (latest start)."""
    if stdout is None:
        return None
    port: int | None = None
    with contextlib.suppress(OSError), open(stdout, "rb") as lines:
        for line in lines:
            if line.startswith(b"--- disvc launcher:"):
                port = None  # a restart: only what follows counts
            elif line.startswith(b'{"http_port"'):
                with contextlib.suppress(ValueError, KeyError):
                    port = int(json.loads(line)["http_port"])
    return port


def _last_line(path: Path | None) -> str:
    if path is None:
        return ""
    with contextlib.suppress(OSError):
        lines = [line.strip() for line in path.read_text(errors="replace").splitlines() if line.strip()]
        if lines and not lines[-1].startswith("--- disvc launcher:"):
            return lines[-1]
    return ""


def _signal(process: subprocess.Popen[bytes], sig: signal.Signals) -> None:
    # The process leads its own session: signal the group, as a container's
    # processes all get the kubelet's signal.
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, sig)


def _kill_all(processes: set[subprocess.Popen[bytes]]) -> None:
    for process in list(processes):
        if process.poll() is None:
            _signal(process, signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(5)
        processes.discard(process)
