"""One table per N: the direct script (the floor), disvc and a Go peer, same server, same run.

The question this answers is issue 14's: how close does disvc come to the
server's own limit, and to a client-go controller doing the same job? Each
row is one implementation making the same objects for N DISVCs (R replicas
each) in a namespace of its own, while a KServe stand-in
(``disvc.testing.kserve_stub``, in this process) marks every ISVC Ready at
once:

- ``direct script``: ``baseline.py``, sequential, the typed client: it creates
  the DISVCs, then each one's children, then patches its status. Timed by the
  script itself from its first write to its last. Its writes exclude the DISVC
  creates (nor are they counted for the controllers).
- ``disvc``: ``python -m disvc.controller --namespace NS``; once ``/readyz``
  answers, ``baseline.py --disvcs-only`` creates the DISVCs. Timed from the
  first DISVC create until every DISVC reports ``observedGeneration ==
  generation`` and ``readyReplicas == R`` (watched from here), so the figure
  includes waiting for the stand-in.
- ``Go peer`` (with ``--go-peer PATH``): a client-go controller binary, run
  exactly as disvc. Its requests are counted by the binary and logged on exit.

Columns: seconds; ``x floor`` (seconds / the script's); writes (children and
status, no Events); requests per DISVC (everything the controller sent:
reads, writes, Events, lists and watches); peak RSS; CPU seconds from the
first create to converged.

Servers: by default a fresh loopback API (``disvc.testing.apiserver``) in
this process, which counts requests itself; with ``--kubeconfig`` a real
kube-apiserver. On a real server only namespaces this run creates
(``disvc-bench-<pid>-…``, labelled ``disvc-bench``) are touched, and each is
deleted before the next row starts (kube-controller-manager finishes that;
without it the namespace stays Terminating and the run says so). disvc's
requests are read from its own ``disvc_api_requests_total`` (or, on older
code, ``disvc_api_writes_total``: writes only).

``--restart`` also restarts disvc over its converged DISVCs and reports the
time to ``/readyz``, the time until it has reconciled every DISVC, and its
writes (target: 0). ``--profile DIR`` runs disvc under ``py-spy`` (timings
skewed) and prints where its CPU went.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import harness
import hotspots
import workload
from harness import Controller, Timeout, wait_for
from kubernetes import client, config, watch
from kubernetes.client.exceptions import ApiException

from disvc.testing.crds import install_crds
from disvc.testing.kserve_stub import KServeStub

WRITE_VERBS = frozenset({"create", "update", "patch", "delete", "deletecollection"})
_HTTP_WRITES = frozenset({"POST", "PUT", "PATCH", "DELETE"})
MIB = 1024 * 1024


@dataclass(slots=True)
class Row:
    impl: str
    n: int
    seconds: float
    writes: int
    requests: int | None
    """All requests the implementation sent; None where they cannot be counted."""
    rss_mib: float
    cpu: float
    detail: dict[str, int]
    """Requests by ``verb kind`` (or HTTP method and code for the Go peer)."""


@dataclass(slots=True)
class Restart:
    ready_seconds: float
    reconciled_seconds: float
    writes: int
    detail: dict[str, int]


# --- servers --------------------------------------------------------------------


class Server:
    """Where the rows run: namespaces, the stand-in, request counts."""

    kubeconfig: str
    api_client: Any
    loopback: harness.Loopback | None = None

    def __init__(self, kubeconfig: str | None, workdir: Path) -> None:
        if kubeconfig is None:
            self.loopback = harness.Loopback(workdir)
            self.kubeconfig = self.loopback.kubeconfig
            self.api_client = self.loopback.api_client
        else:
            self.kubeconfig = kubeconfig
            self.api_client = config.new_client_from_config(config_file=kubeconfig)  # type: ignore[no-untyped-call]
            install_crds(self.api_client)  # ours replaced by the tree's; KServe's left alone
        self.core = client.CoreV1Api(self.api_client)
        self.custom = client.CustomObjectsApi(self.api_client)
        self._serial = 0

    @property
    def name(self) -> str:
        return "loopback API" if self.loopback is not None else "kube-apiserver " + self._version()

    def _version(self) -> str:
        try:
            return str(client.VersionApi(self.api_client).get_code().git_version)
        except ApiException:
            return "(version unknown)"

    def new_namespace(self, impl: str) -> str:
        self._serial += 1
        name = f"disvc-bench-{os.getpid()}-{self._serial}-{impl}"
        body: Any = {"metadata": {"name": name, "labels": {"disvc-bench": str(os.getpid())}}}
        self.core.create_namespace(body)
        return name

    def delete_namespace(self, name: str, timeout: float) -> float | None:
        """Delete it and wait until it is gone; seconds taken, None if it is not."""
        if self.loopback is not None:
            return 0.0  # the whole server goes away with the run
        started = time.monotonic()
        try:
            self.core.delete_namespace(name)
        except ApiException as problem:
            if problem.status == 404:
                return 0.0
            raise

        def gone() -> bool:
            try:
                self.core.read_namespace(name)
            except ApiException as problem:
                return problem.status == 404
            return False

        try:
            wait_for(f"namespace {name} to go", gone, timeout, interval=1.0)
        except Timeout:
            return None
        return time.monotonic() - started

    def loopback_requests(self, user_agent: str) -> Counter[str]:
        assert self.loopback is not None
        counts: Counter[str] = Counter()
        for record in self.loopback.server.requests:
            if record.user_agent.startswith(user_agent):
                resource = f"{record.resource}/{record.subresource}" if record.subresource else record.resource
                counts[f"{record.verb} {resource}"] += 1
        return counts

    def reset_requests(self) -> None:
        if self.loopback is not None:
            self.loopback.server.reset_requests()

    def close(self) -> None:
        if self.loopback is not None:
            self.loopback.close()
        else:
            self.api_client.close()


@contextmanager
def stand_in(server: Server, namespace: str) -> Iterator[KServeStub]:
    stub = KServeStub(server.api_client, namespace=namespace).start()
    try:
        yield stub
    finally:
        stub.stop()


@contextmanager
def controlled_namespace(
    server: Server, purpose: str, workdir: Path, timeout: float, extra_args: list[str] | None = None
) -> Iterator[tuple[str, Controller, Convergence]]:
    """A fresh namespace with the stand-in, a ready disvc controller for it and
    a convergence watch on it; all stopped, and the namespace deleted, after."""
    namespace = server.new_namespace(purpose)
    try:
        with stand_in(server, namespace):
            controller = Controller(
                server.kubeconfig, workdir / f"{purpose}.log", ["--namespace", namespace, *(extra_args or [])]
            ).start()
            watcher = Convergence(server, namespace)
            try:
                controller.wait_ready(timeout)
                yield namespace, controller, watcher
            finally:
                watcher.stop()
                controller.stop()
    finally:
        server.delete_namespace(namespace, timeout)


class Convergence:
    """Watches the DISVCs of one namespace; counts those fully converged: status
    of the current generation, with every replica Ready."""

    def __init__(self, server: Server, namespace: str) -> None:
        self._server, self._namespace = server, namespace
        self._done: set[str] = set()
        self._last_event = time.monotonic()
        self._watch = watch.Watch()
        self._thread = threading.Thread(target=self._run, name="convergence", daemon=True)
        self._thread.start()

    def _converged(self, obj: dict[str, Any]) -> bool:
        meta, status = obj.get("metadata", {}), obj.get("status") or {}
        return bool(
            status.get("observedGeneration") == meta.get("generation")
            and status.get("readyReplicas") == (obj.get("spec") or {}).get("replicas", 1)
        )

    def _run(self) -> None:
        resource_version = ""
        while True:
            try:
                for event in self._watch.stream(
                    self._server.custom.list_namespaced_custom_object,
                    workload.GROUP, workload.DISVC_VERSION, self._namespace, workload.DISVC_PLURAL,
                    resource_version=resource_version, timeout_seconds=300,
                ):
                    obj = event["object"]
                    name = obj.get("metadata", {}).get("name", "")
                    resource_version = obj.get("metadata", {}).get("resourceVersion", resource_version)
                    self._last_event = time.monotonic()
                    if event["type"] != "DELETED" and self._converged(obj):
                        self._done.add(name)
                    else:
                        self._done.discard(name)
                if self._watch._stop:  # stop() was called
                    return
            except ApiException as problem:
                if problem.status == 410:
                    resource_version = ""  # expired: list again
                    continue
                time.sleep(0.5)
            except Exception:  # noqa: BLE001 - a dropped stream: watch again
                if self._watch._stop:
                    return
                time.sleep(0.5)

    def count(self) -> int:
        return len(self._done)

    def quiet_for(self) -> float:
        """Seconds since the last DISVC event: nobody writes a status any more."""
        return time.monotonic() - self._last_event

    def stop(self) -> None:
        self._watch.stop()


# --- the implementations ----------------------------------------------------------


def floor_row(server: Server, args: argparse.Namespace, n: int) -> Row:
    namespace = server.new_namespace("floor")
    try:
        with stand_in(server, namespace):
            script = harness.WorkloadScript(server.kubeconfig, n, args.replicas, namespace=namespace)
            rss = harness.RssSampler(script.process.pid, 0.1)
            script.go()
            run = script.result(args.timeout)
            peak = rss.stop()
    finally:
        _delete(server, namespace, args)
    writes = run.writes - n  # the DISVC creates are the input, not the job
    return Row("direct script, sequential (floor)", n, run.seconds, writes, writes, peak / MIB, run.cpu, {})


def _metric_counts(text: str, family: str) -> Counter[str]:
    counts: Counter[str] = Counter()
    pattern = re.compile(rf"^{family}\{{(?P<labels>[^}}]*)\}} (?P<value>\S+)$")
    for line in text.splitlines():
        found = pattern.match(line)
        if found is None:
            continue
        labels = dict(re.findall(r'(\w+)="([^"]*)"', found.group("labels")))
        counts[f"{labels.get('verb', '?')} {labels.get('kind', '?')}"] += int(float(found.group("value")))
    return counts


def disvc_requests(controller: Controller) -> tuple[Counter[str], bool]:
    """(``verb kind`` -> count, whether reads are included) from its /metrics."""
    _, text = controller._get("/metrics", controller.metrics_port)
    counts = _metric_counts(text, "disvc_api_requests_total")
    if counts:
        return counts, True
    return _metric_counts(text, "disvc_api_writes_total"), False


def _writes(counts: Counter[str]) -> int:
    """Writes without Events (``verb kind`` keys, verbs as RBAC names them)."""
    return sum(v for k, v in counts.items() if k.split(" ")[0] in WRITE_VERBS and not k.endswith(" Event")
               and not k.endswith(" events"))


class GoPeer:
    """The client-go peer binary; it logs its request counts when it stops."""

    def __init__(self, path: str, kubeconfig: str, namespace: str, log_path: Path) -> None:
        self.log_path = log_path
        self._log = open(log_path, "w", encoding="utf-8")  # noqa: SIM115 - closed in stop()
        self.process = harness.spawn(
            [path, "-kubeconfig", kubeconfig, "-namespace", namespace], stdout=self._log, stderr=subprocess.STDOUT
        )
        self.pid = self.process.pid

    def wait_ready(self, timeout: float) -> None:
        def started() -> bool:
            if self.process.poll() is not None:
                raise RuntimeError(f"disvc-peer exited with {self.process.returncode}; log: {self.log_path}")
            return "Started workers" in self.log_path.read_text(errors="replace")

        wait_for("disvc-peer to start its workers", started, timeout)

    def cpu(self) -> float:
        return harness.cpu_seconds(self.pid)

    def stop(self) -> Counter[str]:
        """Stop it; its requests by ``METHOD code`` as it logged them."""
        harness.terminate(self.process)
        self._log.close()
        counts: Counter[str] = Counter()
        for line in self.log_path.read_text(errors="replace").splitlines():
            if "API requests by method and status" in line:
                for method, code, value in re.findall(r"([A-Z]+) (\d+|error)\"?:(\d+)", line):
                    counts[f"{method} {code}"] += int(value)
        return counts


def controller_row(server: Server, args: argparse.Namespace, n: int, impl: str, workdir: Path) -> tuple[Row, Restart | None]:
    namespace = server.new_namespace("disvc" if impl == "disvc" else "go")
    restart: Restart | None = None
    try:
        with stand_in(server, namespace):
            server.reset_requests()
            proc: Controller | GoPeer
            if impl == "disvc":
                profile = None
                if args.profile is not None:
                    args.profile.mkdir(parents=True, exist_ok=True)
                    profile = args.profile / f"controller-{n}.txt"
                proc = Controller(
                    server.kubeconfig, workdir / f"disvc-{n}.log", ["--namespace", namespace, *args.controller_arg], profile
                ).start()
                proc.wait_ready()
            else:
                proc = GoPeer(args.go_peer, server.kubeconfig, namespace, workdir / f"go-peer-{n}.log")
                proc.wait_ready(args.timeout)
            watcher = Convergence(server, namespace)
            try:
                rss = harness.RssSampler(proc.pid, 0.1)
                creator = harness.WorkloadScript(server.kubeconfig, n, args.replicas, disvcs_only=True, namespace=namespace)
                cpu = proc.cpu()
                creator.go()
                wait_for(f"{n} DISVCs to converge ({impl})", lambda: watcher.count() >= n, args.timeout, interval=0.05)
                converged_at = time.monotonic()
                cpu = proc.cpu() - cpu
                created = creator.result(args.timeout)
                wait_for("DISVC statuses to settle", lambda: watcher.quiet_for() >= args.quiet, args.timeout)
                peak = rss.stop()
            finally:
                watcher.stop()
            seconds = converged_at - created.start
            if isinstance(proc, GoPeer):
                detail = proc.stop()
                writes = sum(v for k, v in detail.items() if k.split(" ")[0] in _HTTP_WRITES)
                requests: int | None = sum(detail.values())
            else:
                if server.loopback is not None:
                    counts = server.loopback_requests(harness.CONTROLLER_USER_AGENT)
                    has_reads = True
                else:
                    counts, has_reads = disvc_requests(proc)
                detail = dict(counts)
                writes = _writes(counts)
                requests = sum(counts.values()) if has_reads else None
                if args.restart:
                    proc.stop()
                    restart = measure_restart(server, args, n, namespace, workdir)
                proc.stop()
    finally:
        _delete(server, namespace, args)
    label = "disvc" if impl == "disvc" else "client-go controller in Go, same job"
    return Row(label, n, seconds, writes, requests, peak / MIB, cpu, dict(detail)), restart


def measure_restart(server: Server, args: argparse.Namespace, n: int, namespace: str, workdir: Path) -> Restart:
    """A fresh controller over N converged DISVCs: /readyz, every DISVC reconciled, its writes."""
    server.reset_requests()
    restarted = Controller(
        server.kubeconfig, workdir / f"disvc-restart-{n}.log", ["--namespace", namespace, *args.controller_arg]
    ).start()
    try:
        ready = restarted.wait_ready(args.timeout)
        restarted.wait_reconciles(n, args.timeout)
        reconciled = time.monotonic() - restarted.started
        time.sleep(args.quiet)  # a window in which a stray write would show
        if server.loopback is not None:
            counts = server.loopback_requests(harness.CONTROLLER_USER_AGENT)
        else:
            counts, _ = disvc_requests(restarted)
    finally:
        restarted.stop()
    return Restart(ready, reconciled, _writes(counts), dict(counts))


def _delete(server: Server, namespace: str, args: argparse.Namespace) -> None:
    took = server.delete_namespace(namespace, args.timeout)
    if took is None:
        print(f"  (namespace {namespace} still deleting after {args.timeout:.0f}s; left to the server)", flush=True)
    elif took > 1:
        print(f"  (namespace {namespace} deleted in {took:.0f}s)", flush=True)


# --- the table --------------------------------------------------------------------


def print_table(server: Server, n: int, replicas: int, rows: list[Row], restart: Restart | None) -> None:
    floor = rows[0].seconds if rows and rows[0].impl.startswith("direct script") else None
    print()
    print(f"n = {n}, R = {replicas}, {server.name}, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, "
          f"{os.cpu_count()} CPUs, {platform.node()}, Python {platform.python_version()}")
    print("| impl | n | seconds | x floor | writes | requests/DISVC | RSS MiB | CPU s |")
    print("|---|---|---|---|---|---|---|---|")
    for row in rows:
        per = f"{row.requests / n:.1f}" if row.requests is not None else "n/a"
        name = f"**{row.impl}**" if row.impl == "disvc" else row.impl
        ratio = f"{row.seconds / floor:.2f}" if floor else "n/a"
        print(f"| {name} | {n} | {row.seconds:.2f} | {ratio} | {row.writes} | {per} | "
              f"{row.rss_mib:.1f} | {row.cpu:.2f} |")
    for row in rows:
        if not row.detail:
            continue
        print(f"  {row.impl} requests: " + ", ".join(f"{k} {v}" for k, v in sorted(row.detail.items())))
    if restart is not None:
        print(f"  disvc restart over {n} converged DISVCs: /readyz {restart.ready_seconds:.2f} s, "
              f"all reconciled {restart.reconciled_seconds:.2f} s, writes {restart.writes} (target 0)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--n", type=int, action="append", help="how many DISVCs (repeatable; default 200)")
    parser.add_argument("--replicas", type=int, default=2, help="ISVCs per DISVC (default 2)")
    parser.add_argument("--kubeconfig", default=None, help="a real API server (default: a loopback one)")
    parser.add_argument("--go-peer", default=os.environ.get("DISVC_BENCH_GO_PEER"),
                        help="path of the client-go peer binary (row left out without it)")
    parser.add_argument("--skip", action="append", default=[], choices=["floor", "disvc", "go"],
                        help="leave a row out (repeatable)")
    parser.add_argument("--restart", action="store_true", help="also restart disvc over its converged DISVCs")
    parser.add_argument("--quiet", type=float, default=2.0, help="seconds without a status change that count as settled")
    parser.add_argument("--timeout", type=float, default=900.0, help="bound on every wait, seconds")
    parser.add_argument("--controller-arg", action="append", default=[], help="extra disvc flag (repeatable)")
    parser.add_argument("--profile", type=Path, default=None, help="directory for py-spy profiles of disvc")
    parser.add_argument("--json", type=Path, default=None, help="also write every row as JSON here")
    parser.add_argument("--logs", type=Path, default=None, help="keep the controllers' logs in this directory")
    args = parser.parse_args(argv)
    harness.install_cleanup()
    if args.go_peer and not Path(args.go_peer).is_file():
        parser.error(f"--go-peer {args.go_peer}: no such file")

    results: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="disvc-bench-") as tmp:
        workdir = Path(tmp) if args.logs is None else args.logs
        workdir.mkdir(parents=True, exist_ok=True)
        server = Server(args.kubeconfig, workdir)
        try:
            for n in args.n or [200]:
                rows = []
                if "floor" not in args.skip:
                    print(f"[n={n}] floor ...", flush=True)
                    rows.append(floor_row(server, args, n))
                restart = None
                if "disvc" not in args.skip:
                    print(f"[n={n}] disvc ...", flush=True)
                    row, restart = controller_row(server, args, n, "disvc", workdir)
                    rows.append(row)
                if args.go_peer and "go" not in args.skip:
                    print(f"[n={n}] Go peer ...", flush=True)
                    rows.append(controller_row(server, args, n, "go", workdir)[0])
                print_table(server, n, args.replicas, rows, restart)
                results.append({"n": n, "rows": [asdict(r) for r in rows], "restart": asdict(restart) if restart else None})
        except Timeout as problem:
            print(f"benchmark aborted: {problem}", file=sys.stderr)
            return 1
        finally:
            harness.stop_all()
            server.close()
            if args.profile is not None:
                for profile in sorted(args.profile.glob("controller-*.txt")):
                    print(f"\n{profile.name}\n{hotspots.summary(profile)}")
    if args.json is not None:
        args.json.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
