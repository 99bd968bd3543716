"""The controller's memory with N DISVCs (and their children) in its caches.

Target (project brief): RSS at most 100 MiB with 1000 DISVCs cached.
Printed as a figure against the target, never asserted.

1. A fresh loopback API server (in this process) gets N DISVCs, their R+3
   children each and their status, written directly by ``baseline.py``
   (a subprocess) with the controller's own builders, so the objects are
   exactly what the controller would write, ``applied-hash`` included.
2. The controller starts; psutil samples its RSS every ``--interval``
   seconds from the start. It lists and caches everything, reconciles each
   DISVC once (``controller_runtime_reconcile_total`` reaches N) and, if
   the objects match, writes nothing.
3. After ``--steady`` more seconds: peak RSS (the list + first reconciles)
   and steady RSS (median of the last window), in MiB.

For scale, the same controller on an empty API is measured first (the
interpreter and imports, no cache): ``--no-empty`` skips that.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import harness
from harness import CONTROLLER_USER_AGENT, Controller, Timeout, loopback, median, settle

MIB = 1024 * 1024
TARGET_MIB = 100


class RssSampler:
    """Samples one process's RSS in a thread until stopped."""

    def __init__(self, controller: Controller, interval: float) -> None:
        self.controller = controller
        self.interval = interval
        self.samples: list[tuple[float, int]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="rss-sampler", daemon=True)

    def start(self) -> RssSampler:
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.samples.append((time.monotonic(), self.controller.rss()))
            except Exception:  # noqa: BLE001 - the process may be gone; stop sampling
                return
            self._stop.wait(self.interval)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)

    def peak(self) -> int:
        return max((rss for _, rss in self.samples), default=0)

    def since(self, start: float) -> list[int]:
        return [rss for at, rss in self.samples if at >= start]


def empty_rss(workdir: Path, settle_seconds: float) -> float:
    """RSS (MiB) of a synced, idle controller with nothing to cache."""
    with loopback() as env:
        controller = Controller(env.kubeconfig, workdir / "controller-empty.log").start()
        try:
            controller.wait_ready()
            time.sleep(settle_seconds)  # let start-up garbage be collected
            return controller.rss() / MIB
        finally:
            controller.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--n", type=int, default=1000, help="how many DISVCs (default 1000)")
    parser.add_argument("--replicas", type=int, default=1, help="ISVCs per DISVC (default 1)")
    parser.add_argument("--steady", type=float, default=3.0, help="seconds of steady state to sample")
    parser.add_argument("--interval", type=float, default=0.05, help="RSS sampling interval, seconds")
    parser.add_argument("--timeout", type=float, default=600.0, help="bound on every wait, seconds")
    parser.add_argument("--no-empty", action="store_true", help="skip the empty-controller figure")
    parser.add_argument("--controller-arg", action="append", default=[], help="extra controller flag (repeatable)")
    args = parser.parse_args(argv)
    harness.install_cleanup()
    n, replicas = args.n, args.replicas

    try:
        with tempfile.TemporaryDirectory(prefix="disvc-bench-") as tmp:
            workdir = Path(tmp)
            empty = None if args.no_empty else empty_rss(workdir, args.steady)
            with loopback() as env:
                started = time.monotonic()
                created = harness.run_script(env.kubeconfig, n, replicas, timeout=args.timeout)
                print(f"created {n} DISVCs and {n * (replicas + 3)} children directly in "
                      f"{created.seconds:.1f} s ({time.monotonic() - started:.1f} s with start-up)", flush=True)
                objects = env.server.object_count()
                env.server.reset_requests()

                controller = Controller(env.kubeconfig, workdir / "controller.log", args.controller_arg).start()
                sampler = RssSampler(controller, args.interval).start()
                try:
                    ready = controller.wait_ready(args.timeout)
                    rss_ready = controller.rss()
                    controller.wait_reconciles(n, args.timeout)
                    reconciled = time.monotonic() - controller.started
                    settle(lambda: env.write_count(CONTROLLER_USER_AGENT), 1.0, args.timeout)
                    window = time.monotonic()
                    time.sleep(args.steady)  # the steady-state sampling window
                    steady = median([float(x) for x in sampler.since(window)]) / MIB
                    writes = dict(env.requests_by(CONTROLLER_USER_AGENT))
                    reconciles = controller.reconciles()
                finally:
                    sampler.stop()
                    controller.stop()
    except Timeout as problem:
        print(f"benchmark aborted: {problem}", file=sys.stderr)
        return 1

    peak = sampler.peak() / MIB
    print()
    print(f"disvc memory benchmark  {datetime.now(UTC):%Y-%m-%d %H:%M} UTC  "
          f"{os.cpu_count()} CPUs  Python {platform.python_version()}")
    print(f"N = {n} DISVCs, R = {replicas}: {n * (replicas + 4)} objects cached "
          f"({objects} objects in the API)")
    if empty is not None:
        print(f"  empty controller (no objects), idle RSS        {empty:7.1f} MiB")
    print(f"  /readyz (caches synced) after                  {ready:7.2f} s   RSS then {rss_ready / MIB:.1f} MiB")
    print(f"  {reconciles:.0f} reconciles done after                   {reconciled:7.2f} s")
    print(f"  PEAK RSS                                       {peak:7.1f} MiB  (target <= {TARGET_MIB} MiB)")
    print(f"  STEADY RSS (median of last {args.steady:g} s)              {steady:7.1f} MiB  (target <= {TARGET_MIB} MiB)")
    print(f"  steady/target                                  {steady / TARGET_MIB:7.2f}")
    total = sum(writes.values())
    detail = ", ".join(f"{k} {v}" for k, v in sorted(writes.items())) or "none"
    print(f"  controller writes on start-up over converged objects: {total} (target 0) {detail}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
