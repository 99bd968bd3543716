"""Plumbing shared by the benchmarks: the loopback API, subprocesses, probes.

The loopback API server (``disvc.testing.apiserver.ApiServer``) runs in the
bench driver's process, in its own thread; everything that competes with it
for CPU (the controller, the baseline script, the DISVC creator) runs as a
subprocess, so no two parties share a GIL. The driver stays nearly idle:
it reads the server's store directly (no HTTP, no request records polluted)
and the controller's ``/metrics``.

Every subprocess is registered in ``_CHILDREN`` and terminated on exit,
including on Ctrl-C and SIGTERM, so an interrupted run leaves nothing behind.
"""

from __future__ import annotations

import atexit
import collections
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import IO, Any, Final, TypeVar

import psutil  # type: ignore[import-untyped]
import workload  # first: puts the repository on sys.path
from kubernetes import client, config

from disvc.testing import fixtures
from disvc.testing.apiserver import ApiServer
from disvc.testing.apiserver.server import WRITE_VERBS
from disvc.testing.apiserver.storage import Storage

T = TypeVar("T")

BENCH_DIR: Final = Path(__file__).resolve().parent
CONTROLLER_USER_AGENT: Final = "disvc-controller"
"""Prefix of the controller's User-Agent (``disvc.controller.kube``)."""
PYTHON: Final = sys.executable
CONTROLLER_PYTHON: Final = os.environ.get("DISVC_BENCH_CONTROLLER_PYTHON") or sys.executable
"""Interpreter of the controller under test. Point it at a venv holding only
the runtime install (``pip install .``, no test extras) to measure what a
deployment runs: test-only packages (kubernetes-validate, rich) are imported
by the client and structlog when present and cost several MiB."""

_STORAGE_KEYS: Final = {
    "DistributedInferenceService": f"{workload.GROUP}/{workload.DISVC_PLURAL}",
    "InferenceService": f"{workload.GROUP}/{workload.ISVC_PLURAL}",
    "Service": "/services",
    "Ingress": "networking.k8s.io/ingresses",
    "ControllerRevision": "apps/controllerrevisions",
}
"""The loopback store's keys (``group/plural``, see ``ResourceType.key``)."""


class Timeout(Exception):
    """A bounded wait ran out; the message says what was still missing."""


def wait_for(what: str, check: Callable[[], T | None], timeout: float, interval: float = 0.05) -> T:
    """Poll ``check`` until it returns something other than None/False."""
    deadline = time.monotonic() + timeout
    while True:
        check_interrupted()
        value = check()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise Timeout(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(interval)


# --- subprocesses -------------------------------------------------------------

_CHILDREN: list[subprocess.Popen[Any]] = []


def _child_env() -> dict[str, str]:
    env = dict(os.environ)
    paths = [str(workload.REPO_ROOT), str(BENCH_DIR)]
    if env.get("PYTHONPATH"):
        paths.append(env["PYTHONPATH"])
    env["PYTHONPATH"] = os.pathsep.join(paths)
    return env


def spawn(argv: Sequence[str], **kwargs: Any) -> subprocess.Popen[Any]:
    """Start a subprocess that ``stop_all`` (run at exit) will terminate."""
    process: subprocess.Popen[Any] = subprocess.Popen(
        list(argv), cwd=workload.REPO_ROOT, env=_child_env(), **kwargs
    )
    _CHILDREN.append(process)
    return process


def terminate(process: subprocess.Popen[Any], timeout: float = 15.0) -> int | None:
    """SIGTERM, then SIGKILL after ``timeout``; returns the exit code."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)
    if process in _CHILDREN:
        _CHILDREN.remove(process)
    return process.returncode


def stop_all() -> None:
    for process in _CHILDREN:
        terminate(process, timeout=5.0)


_INTERRUPTED = threading.Event()


def _on_signal(signum: int, _frame: FrameType | None) -> None:
    if _INTERRUPTED.is_set():
        # The first KeyboardInterrupt was swallowed (raised inside a __del__,
        # say) or cleanup hangs: give up on niceties.
        stop_all()
        os._exit(128 + signum)
    _INTERRUPTED.set()
    raise KeyboardInterrupt(signal.Signals(signum).name)


def check_interrupted() -> None:
    """Raise KeyboardInterrupt if a signal came but its exception was lost."""
    if _INTERRUPTED.is_set():
        raise KeyboardInterrupt("interrupted")


def install_cleanup() -> None:
    """Terminate every subprocess on exit, Ctrl-C or SIGTERM."""
    atexit.register(stop_all)
    signal.signal(signal.SIGTERM, _on_signal)
    # Explicitly, too: a shell starting us in the background ignores SIGINT.
    signal.signal(signal.SIGINT, _on_signal)


# --- the loopback API ---------------------------------------------------------


class Loopback:
    """A fresh ApiServer with both CRDs and the bench namespace."""

    def __init__(self, workdir: Path) -> None:
        self.server = ApiServer().start()
        self.kubeconfig = self.server.write_kubeconfig(str(workdir / "kubeconfig"))
        self.api_client = config.new_client_from_config(config_file=self.kubeconfig)  # type: ignore[no-untyped-call]
        fixtures.install_crds(self.api_client)  # type: ignore[attr-defined]  # not in fixtures.__all__
        namespace: Any = {"metadata": {"name": workload.NAMESPACE}}  # a dict body, as scripts pass
        client.CoreV1Api(self.api_client).create_namespace(namespace)
        self.server.reset_requests()

    def close(self) -> None:
        # Every subprocess talks to this server: stop them before it goes away.
        stop_all()
        self.api_client.close()
        self.server.stop()

    def converged(self, count: int, replicas: int, namespace: str = workload.NAMESPACE) -> int:
        """How many of DISVCs 0..count-1 have every child and an up-to-date status.

        Reads the store on the server's loop thread (its only user, so no
        lock): no HTTP request, so the request records stay the controller's.
        """

        def count_on_loop(storage: Storage) -> int:
            done = 0
            for index in range(count):
                name = workload.disvc_name(index)
                disvc = storage.get(_STORAGE_KEYS["DistributedInferenceService"], namespace, name)
                if disvc is None:
                    continue
                meta, status = disvc.obj["metadata"], disvc.obj.get("status") or {}
                if status.get("observedGeneration") != meta.get("generation"):
                    continue
                if all(
                    storage.get(_STORAGE_KEYS[kind], namespace, child) is not None
                    for kind, child in workload.child_names(name, replicas)
                ):
                    done += 1
            return done

        return int(self.server.snapshot(count_on_loop) or 0)

    def requests_by(self, user_agent: str, writes_only: bool = True) -> collections.Counter[str]:
        """``verb resource[/subresource]`` -> count, for one client."""
        counts: collections.Counter[str] = collections.Counter()
        for record in self.server.requests:
            if not record.user_agent.startswith(user_agent):
                continue
            if writes_only != (record.verb in WRITE_VERBS):
                continue
            resource = f"{record.resource}/{record.subresource}" if record.subresource else record.resource
            counts[f"{record.verb} {resource}"] += 1
        return counts

    def write_count(self, user_agent: str) -> int:
        return self.server.write_count(user_agent)


@contextmanager
def loopback() -> Iterator[Loopback]:
    with tempfile.TemporaryDirectory(prefix="disvc-bench-") as tmp:
        env = Loopback(Path(tmp))
        try:
            yield env
        finally:
            env.close()


# --- the workload subprocess ----------------------------------------------------


@dataclass(frozen=True, slots=True)
class ScriptRun:
    """What ``baseline.py`` reported."""

    start: float
    """``time.monotonic()`` just before its first write."""
    end: float
    seconds: float
    writes: int
    cpu: float
    """CPU seconds the script itself used between ``start`` and ``end``."""


class WorkloadScript:
    """``baseline.py`` as a subprocess, started and connected before ``go``."""

    def __init__(
        self, kubeconfig: str, n: int, replicas: int, disvcs_only: bool = False, namespace: str = workload.NAMESPACE
    ) -> None:
        argv = [
            PYTHON, str(BENCH_DIR / "baseline.py"), "--kubeconfig", kubeconfig,
            "--n", str(n), "--replicas", str(replicas), "--namespace", namespace, "--wait-go",
        ]
        if disvcs_only:
            argv.append("--disvcs-only")
        self.process = spawn(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        assert self.process.stdout is not None
        line = self.process.stdout.readline().strip()
        if line != "ready":
            terminate(self.process)
            raise RuntimeError(f"baseline.py did not start (said {line!r})")

    def go(self) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write("go\n")
        self.process.stdin.flush()

    def result(self, timeout: float) -> ScriptRun:
        try:
            out, _ = self.process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            terminate(self.process)
            raise Timeout(f"baseline.py still running after {timeout:.0f}s") from None
        except BaseException:
            terminate(self.process)  # interrupted: do not leave it running
            raise
        _CHILDREN.remove(self.process)
        if self.process.returncode != 0:
            raise RuntimeError(f"baseline.py failed with exit code {self.process.returncode}")
        data = json.loads(out.strip().splitlines()[-1])
        return ScriptRun(data["start"], data["end"], data["seconds"], data["writes"], data["cpu"])


def run_script(kubeconfig: str, n: int, replicas: int, disvcs_only: bool = False, timeout: float = 600.0) -> ScriptRun:
    script = WorkloadScript(kubeconfig, n, replicas, disvcs_only)
    script.go()
    return script.result(timeout)


# --- the controller subprocess ------------------------------------------------------

_ADDRESS: Final = re.compile(r"127\.0\.0\.1:(\d+)")


@dataclass(slots=True)
class Controller:
    """``python -m disvc.controller`` against the loopback API, logs to a file.

    With ``profile`` set, runs under ``py-spy record`` (raw collapsed stacks
    to that path); ``pid`` is then still the controller's own.
    """

    kubeconfig: str
    log_path: Path
    extra_args: Sequence[str] = ()
    profile: Path | None = None
    process: subprocess.Popen[Any] = field(init=False)
    health_port: int = field(init=False, default=0)
    metrics_port: int = field(init=False, default=0)
    pid: int = field(init=False, default=0)
    started: float = field(init=False, default=0.0)
    log: IO[str] = field(init=False)

    def start(self, timeout: float = 60.0) -> Controller:
        argv = [
            CONTROLLER_PYTHON, "-m", "disvc.controller", "--kubeconfig", self.kubeconfig,
            "--metrics-bind-address", "127.0.0.1:0", "--health-probe-bind-address", "127.0.0.1:0",
            "--log-format", "json", *self.extra_args,
        ]
        if self.profile is not None:
            argv = [
                str(Path(PYTHON).parent / "py-spy"), "record", "--format", "raw", "--rate", "250", "--gil",
                "--nonblocking", "--output", str(self.profile), "--", *argv,
            ]
        self.log = open(self.log_path, "w", encoding="utf-8")  # noqa: SIM115 - closed in stop()
        self.started = time.monotonic()
        self.process = spawn(argv, stdout=self.log, stderr=subprocess.STDOUT)
        self.pid = self.process.pid
        if self.profile is not None:
            self.pid = wait_for("py-spy to start the controller", self._profiled_pid, timeout)
        self.health_port = wait_for("the health probe address in the log", lambda: self._port("Serving health probes"), timeout)
        self.metrics_port = wait_for("the metrics address in the log", lambda: self._port("Serving metrics"), timeout)
        return self

    def _profiled_pid(self) -> int | None:
        self._check_alive()
        kids = psutil.Process(self.process.pid).children()
        return kids[0].pid if kids else None

    def _check_alive(self) -> None:
        if self.process.poll() is not None:
            raise RuntimeError(f"controller exited with {self.process.returncode}; log: {self.log_path}")

    def _port(self, message: str) -> int | None:
        self._check_alive()
        for line in self.log_path.read_text(encoding="utf-8", errors="replace").splitlines():
            if message in line:
                found = _ADDRESS.search(line)
                if found:
                    return int(found.group(1))
        return None

    def _get(self, path: str, port: int) -> tuple[int, str]:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as answer:
                return int(answer.status), answer.read().decode()
        except OSError as problem:
            code = getattr(problem, "code", 0)
            return int(code or 0), ""

    def wait_ready(self, timeout: float = 120.0) -> float:
        """Wait for ``/readyz`` 200; returns seconds since start."""
        def ready() -> bool:
            self._check_alive()
            return self._get("/readyz", self.health_port)[0] == 200

        wait_for("/readyz", ready, timeout)
        return time.monotonic() - self.started

    def reconciles(self) -> float:
        """``controller_runtime_reconcile_total`` summed over results."""
        _, text = self._get("/metrics", self.metrics_port)
        total = 0.0
        for line in text.splitlines():
            if line.startswith("controller_runtime_reconcile_total{"):
                total += float(line.rsplit(" ", 1)[1])
        return total

    def wait_reconciles(self, at_least: float, timeout: float) -> float:
        def enough() -> float | None:
            got = self.reconciles()
            return got if got >= at_least else None

        return wait_for(f"{at_least:.0f} reconciles", enough, timeout, interval=0.1)

    def cpu(self) -> float:
        """CPU seconds (user + system) the controller has used so far."""
        return cpu_seconds(self.pid)

    def rss(self) -> int:
        """Resident set size of the controller process, in bytes."""
        return int(psutil.Process(self.pid).memory_info().rss)

    def stop(self, timeout: float = 20.0) -> int | None:
        if self.profile is not None and self.process.poll() is None:
            # Stop the controller itself: py-spy then writes its profile and exits.
            try:
                os.kill(self.pid, signal.SIGTERM)
                self.process.wait(timeout)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                pass
        code = terminate(self.process, timeout)
        self.log.close()
        return code


class RssSampler:
    """A process's RSS every ``interval`` seconds, in a thread, until ``stop``:
    ``samples`` as (seconds since start, bytes), and ``peak`` bytes."""

    def __init__(self, pid: int, interval: float) -> None:
        self.samples: list[tuple[float, int]] = []
        self.peak = 0
        self._process = psutil.Process(pid)
        self._interval = interval
        self._start = time.monotonic()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="rss", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                rss = int(self._process.memory_info().rss)
            except psutil.Error:
                return  # the process is gone
            self.samples.append((time.monotonic() - self._start, rss))
            self.peak = max(self.peak, rss)
            self._stop.wait(self._interval)

    def stop(self) -> int:
        """Stop sampling; the peak in bytes."""
        self._stop.set()
        self._thread.join()
        return self.peak


def cpu_seconds(pid: int | None = None) -> float:
    """User + system CPU seconds of a process (this one when None)."""
    times = psutil.Process(pid).cpu_times()
    return float(times.user + times.system)


def median(values: Sequence[float]) -> float:
    ordered = sorted(values)
    middle = len(ordered) // 2
    return ordered[middle] if len(ordered) % 2 else (ordered[middle - 1] + ordered[middle]) / 2


def settle(count: Callable[[], int], quiet: float, timeout: float, interval: float = 0.05) -> tuple[int, float]:
    """Wait until ``count()`` has not changed for ``quiet`` seconds.

    Returns the final count and the monotonic time it last changed.
    """
    deadline = time.monotonic() + timeout
    last, changed = count(), time.monotonic()
    while time.monotonic() - changed < quiet:
        check_interrupted()
        if time.monotonic() >= deadline:
            raise Timeout(f"still changing after {timeout:.0f}s (now {last})")
        time.sleep(interval)
        now = count()
        if now != last:
            last, changed = now, time.monotonic()
    return last, changed
