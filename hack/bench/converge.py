"""How fast and how frugally the controller converges N DISVCs, against a plain script.

Targets (from the project brief; printed as ratios, never asserted: machines
are shared and noisy):

- time: the controller converges N DISVCs in at most 1.2x the time a script
  takes to create the same objects with the same client (``baseline.py``);
- writes: at most 1.05x the minimum, N*(R+4) children (R ISVCs, two Services,
  the Ingress, the ControllerRevision) + N status patches;
- zero writes while idle, on a restart and on resyncs.

Each repeat uses a fresh loopback API server (in this process, in a thread)
with both CRDs installed; everything else runs as a subprocess:

1. baseline: ``baseline.py`` creates the DISVCs, then each one's children and
   its status. Timed by the script from its first to its last write.
2. controller: start ``python -m disvc.controller``, wait for ``/readyz``,
   then ``baseline.py --disvcs-only`` creates the same DISVCs. Timed from the
   first DISVC create until every DISVC has all its children and
   ``status.observedGeneration == metadata.generation`` (read from the
   server's store, no HTTP). Then wait for the controller's writes to stop
   and count them from the server's request records (by User-Agent).
3. steady state (last repeat only): idle for ``--idle`` seconds; restart the
   controller (with ``--resync-period``) and wait for one reconcile per DISVC;
   then wait ``--resyncs`` resync rounds. Writes are counted in each window.

``--profile DIR`` runs the controller of the first repeat under ``py-spy``
and prints where its time goes (see ``hotspots.py``); the timings of a
profiled run are skewed, so profile and measure in separate runs.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import harness
import hotspots
from harness import CONTROLLER_USER_AGENT, Controller, Timeout, cpu_seconds, loopback, median, settle

BASELINE_USER_AGENT = "OpenAPI-Generator"
"""The ``kubernetes`` client's default User-Agent (the baseline script's)."""
EVENTS = "create events"


@dataclass(slots=True)
class SteadyState:
    idle_seconds: float
    idle_writes: dict[str, int]
    restart_ready_seconds: float
    restart_reconciles: float
    restart_writes: dict[str, int]
    resync_period: float
    resync_reconciles: float
    resync_writes: dict[str, int]


@dataclass(slots=True)
class BaselineRun:
    seconds: float
    writes: int
    script_cpu: float
    """CPU seconds of the baseline script (first to last write)."""
    server_cpu: float
    """CPU seconds of this process (the API server) over the same span."""


@dataclass(slots=True)
class ControllerRun:
    seconds: float
    """First DISVC create -> every DISVC converged."""
    last_write_seconds: float
    """First DISVC create -> the controller's last write (polled, ~50 ms)."""
    writes: dict[str, int]
    reads: dict[str, int]
    ready_seconds: float
    controller_cpu: float
    """CPU seconds of the controller, first create -> converged."""
    server_cpu: float
    """CPU seconds of this process (the API server) over the same span."""
    creator_cpu: float
    """CPU seconds of the script creating the DISVCs."""
    reconciles: float
    """``controller_runtime_reconcile_total`` once settled (ideal: about N)."""
    steady: SteadyState | None = None


@dataclass(slots=True)
class Report:
    n: int
    replicas: int
    baseline: list[BaselineRun] = field(default_factory=list)
    controller: list[ControllerRun] = field(default_factory=list)


def measure_baseline(n: int, replicas: int, timeout: float) -> BaselineRun:
    with loopback() as env:
        script = harness.WorkloadScript(env.kubeconfig, n, replicas)
        server_cpu = cpu_seconds()
        script.go()
        run = script.result(timeout)
        # the span is the script's own plus pipe latency: close enough for CPU
        return BaselineRun(run.seconds, env.write_count(BASELINE_USER_AGENT), run.cpu, cpu_seconds() - server_cpu)


def measure_controller(args: argparse.Namespace, workdir: Path, steady: bool, profile: Path | None) -> ControllerRun:
    n, replicas = args.n, args.replicas
    with loopback() as env:
        controller = Controller(env.kubeconfig, workdir / "controller.log", args.controller_arg, profile).start()
        try:
            ready = controller.wait_ready()
            creator = harness.WorkloadScript(env.kubeconfig, n, replicas, disvcs_only=True)
            controller_cpu, server_cpu = controller.cpu(), cpu_seconds()
            creator.go()
            harness.wait_for(
                f"{n} DISVCs to converge",
                lambda: env.converged(n, replicas) >= n,
                args.timeout,
                interval=0.02,
            )
            converged_at = time.monotonic()
            controller_cpu, server_cpu = controller.cpu() - controller_cpu, cpu_seconds() - server_cpu
            created = creator.result(args.timeout)
            _, last_write = settle(lambda: env.write_count(CONTROLLER_USER_AGENT), args.quiet, args.timeout)
            run = ControllerRun(
                seconds=converged_at - created.start,
                last_write_seconds=max(last_write, converged_at) - created.start,
                writes=dict(env.requests_by(CONTROLLER_USER_AGENT)),
                reads=dict(env.requests_by(CONTROLLER_USER_AGENT, writes_only=False)),
                ready_seconds=ready,
                controller_cpu=controller_cpu,
                server_cpu=server_cpu,
                creator_cpu=created.cpu,
                reconciles=controller.reconciles(),
            )
            if steady:
                # stops this controller and runs a restarted one of its own
                run.steady = measure_steady_state(args, env, controller, workdir)
        finally:
            controller.stop()
        return run


def measure_steady_state(
    args: argparse.Namespace, env: harness.Loopback, controller: Controller, workdir: Path
) -> SteadyState:
    n = args.n
    env.server.reset_requests()
    time.sleep(args.idle)  # a benchmark window, not a wait for a condition
    idle_writes = dict(env.requests_by(CONTROLLER_USER_AGENT))

    controller.stop()
    env.server.reset_requests()
    restarted = Controller(
        env.kubeconfig,
        workdir / "controller-restarted.log",
        [*args.controller_arg, "--resync-period", str(args.resync_period)],
    ).start()
    try:
        ready = restarted.wait_ready()
        restart_reconciles = restarted.wait_reconciles(n, args.timeout)
        settle(lambda: env.write_count(CONTROLLER_USER_AGENT), args.quiet, args.timeout)
        restart_writes = dict(env.requests_by(CONTROLLER_USER_AGENT))

        env.server.reset_requests()
        before = restarted.reconciles()
        restarted.wait_reconciles(before + args.resyncs * n, args.timeout)
        settle(lambda: env.write_count(CONTROLLER_USER_AGENT), args.quiet, args.timeout)
        resync_reconciles = restarted.reconciles() - before
        resync_writes = dict(env.requests_by(CONTROLLER_USER_AGENT))
    finally:
        restarted.stop()
    return SteadyState(
        idle_seconds=args.idle,
        idle_writes=idle_writes,
        restart_ready_seconds=ready,
        restart_reconciles=restart_reconciles,
        restart_writes=restart_writes,
        resync_period=args.resync_period,
        resync_reconciles=resync_reconciles,
        resync_writes=resync_writes,
    )


def _non_event(writes: dict[str, int]) -> int:
    return sum(count for what, count in writes.items() if not what.endswith(" events"))


def _events(writes: dict[str, int]) -> int:
    return sum(count for what, count in writes.items() if what.endswith(" events"))


def _breakdown(counts: dict[str, int]) -> str:
    return ", ".join(f"{what} {count}" for what, count in sorted(counts.items())) or "none"


def print_report(report: Report) -> None:
    n, r = report.n, report.replicas
    base = median([run.seconds for run in report.baseline])
    ctl = median([run.seconds for run in report.controller])
    last = median([run.last_write_seconds for run in report.controller])
    minimum = n * (r + 4 + 1)
    first = report.controller[-1]
    writes = _non_event(first.writes)
    print()
    print(f"disvc convergence benchmark  {datetime.now(UTC):%Y-%m-%d %H:%M} UTC  "
          f"{os.cpu_count()} CPUs  Python {platform.python_version()}")
    print(f"N = {n} DISVCs, R = {r} replica(s), {len(report.controller)} repeat(s) (median; all runs in brackets)")
    print(f"  baseline script (typed client, sequential)     {base:7.2f} s  {_runs([x.seconds for x in report.baseline])}"
          f"  ({report.baseline[-1].writes} writes)")
    print(f"  controller: first create -> converged          {ctl:7.2f} s  {_runs([x.seconds for x in report.controller])}")
    print(f"  controller: first create -> last write         {last:7.2f} s  {_runs([x.last_write_seconds for x in report.controller])}")
    print(f"  controller /readyz after start                 {median([x.ready_seconds for x in report.controller]):7.2f} s")
    print(f"  TIME RATIO controller/baseline                 {ctl / base:7.2f}    (target <= 1.2)")
    print(f"  time ratio to the last write                   {last / base:7.2f}")
    b_cpu = median([x.script_cpu for x in report.baseline])
    b_srv = median([x.server_cpu for x in report.baseline])
    c_cpu = median([x.controller_cpu for x in report.controller])
    c_srv = median([x.server_cpu for x in report.controller])
    c_new = median([x.creator_cpu for x in report.controller])
    print(f"  CPU s, baseline run: script {b_cpu:.2f}, API server {b_srv:.2f}")
    print(f"  CPU s, controller run: controller {c_cpu:.2f}, DISVC creator {c_new:.2f}, API server {c_srv:.2f}")
    print(f"  cpu ratio (controller+creator)/script          {(c_cpu + c_new) / b_cpu:7.2f}    "
          f"API server cpu ratio {c_srv / b_srv:.2f}")
    print(f"  controller writes (without Events)             {writes:7d}    minimum N*(R+4+1) = {minimum}")
    print(f"  WRITE RATIO writes/minimum                     {writes / minimum:7.2f}    (target <= 1.05)")
    print(f"    by verb/resource: {_breakdown({k: v for k, v in first.writes.items() if not k.endswith(' events')})}")
    print(f"  reconciles until settled                       {first.reconciles:7.0f}    ({first.reconciles / n:.1f} per DISVC)")
    print(f"  Events written (reported apart)                {_events(first.writes):7d}")
    print(f"  controller reads: {_breakdown(first.reads)}")
    requests = sum(first.writes.values()) + sum(first.reads.values())
    base_requests = report.baseline[-1].writes  # the baseline only writes
    print(f"  REQUESTS controller (all, Events included) / baseline  {requests} / {base_requests} = "
          f"{requests / base_requests:.2f}   (deterministic: the steadiest proxy for time on a noisy machine)")
    steady = first.steady
    if steady is not None:
        print(f"  IDLE {steady.idle_seconds:g} s: writes                              "
              f"{sum(steady.idle_writes.values()):7d}    (target 0) {_breakdown(steady.idle_writes)}")
        print(f"  RESTART (ready in {steady.restart_ready_seconds:.2f} s, {steady.restart_reconciles:.0f} reconciles): writes "
              f"{sum(steady.restart_writes.values()):4d}    (target 0) {_breakdown(steady.restart_writes)}")
        print(f"  RESYNC every {steady.resync_period:g} s ({steady.resync_reconciles:.0f} reconciles): writes    "
              f"{sum(steady.resync_writes.values()):4d}    (target 0) {_breakdown(steady.resync_writes)}")


def _runs(values: list[float]) -> str:
    return "[" + " ".join(f"{v:.2f}" for v in values) + "]"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--n", type=int, default=200, help="how many DISVCs (default 200)")
    parser.add_argument("--replicas", type=int, default=1, help="ISVCs per DISVC (default 1)")
    parser.add_argument("--repeat", type=int, default=1, help="runs of each side; medians are reported")
    parser.add_argument("--idle", type=float, default=5.0, help="idle window in seconds (default 5)")
    parser.add_argument("--resync-period", type=float, default=2.0, help="controller --resync-period for the resync window")
    parser.add_argument("--resyncs", type=int, default=3, help="resync rounds to watch (default 3)")
    parser.add_argument("--quiet", type=float, default=1.0, help="seconds without a write that count as settled")
    parser.add_argument("--timeout", type=float, default=300.0, help="bound on every wait, seconds")
    parser.add_argument("--no-steady", action="store_true", help="skip the idle/restart/resync windows")
    parser.add_argument("--controller-arg", action="append", default=[], help="extra controller flag (repeatable)")
    parser.add_argument("--profile", type=Path, default=None, help="directory for a py-spy profile of the controller")
    parser.add_argument("--json", type=Path, default=None, help="also write the figures as JSON here")
    args = parser.parse_args(argv)
    harness.install_cleanup()

    report = Report(args.n, args.replicas)
    try:
        with tempfile.TemporaryDirectory(prefix="disvc-bench-") as tmp:
            workdir = Path(tmp)
            for repeat in range(args.repeat):
                baseline = measure_baseline(args.n, args.replicas, args.timeout)
                report.baseline.append(baseline)
                print(f"[{repeat + 1}/{args.repeat}] baseline {baseline.seconds:.2f} s", flush=True)
                profile = None
                if args.profile is not None and repeat == 0:
                    args.profile.mkdir(parents=True, exist_ok=True)
                    profile = args.profile / "controller.txt"
                last = repeat == args.repeat - 1
                run = measure_controller(args, workdir, steady=last and not args.no_steady, profile=profile)
                report.controller.append(run)
                print(f"[{repeat + 1}/{args.repeat}] controller {run.seconds:.2f} s", flush=True)
    except Timeout as problem:
        print(f"benchmark aborted: {problem}", file=sys.stderr)
        return 1
    print_report(report)
    if args.json is not None:
        args.json.write_text(json.dumps(asdict(report), indent=2))
    if args.profile is not None:
        profile_file = args.profile / "controller.txt"
        if profile_file.exists():
            print()
            print(hotspots.summary(profile_file))
    return 0


if __name__ == "__main__":
    sys.exit(main())
