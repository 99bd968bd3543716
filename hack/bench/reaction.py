"""Reaction time while idle: from a change to the controller's first write because of it.

The controller exports ``disvc_reaction_seconds``: from the watch event that
enqueued a DISVC to the first write of the reconcile that took it. This
script converges ``--n`` DISVCs, then makes ``--changes`` single changes one
at a time, ``--interval`` seconds apart (an idle controller, one event at a
time): each deletes one child, which the controller re-creates. It reads the
histogram before and after and prints p50 and p99 of the changes' reactions
(interpolated within buckets, as Prometheus' ``histogram_quantile`` does)
next to the targets: p50 <= 20 ms, p99 <= 100 ms.

Usage::

    python hack/bench/reaction.py --kubeconfig /tmp/k8s-run/admin.kubeconfig
    python hack/bench/reaction.py            # on a loopback API in this process
"""

from __future__ import annotations

import argparse
import random
import re
import sys
import tempfile
import time
from pathlib import Path

import harness
import workload
from compare import Server, controlled_namespace
from harness import Controller, Timeout, wait_for
from kubernetes import client

from disvc.builders import names

FAMILY = "disvc_reaction_seconds"


def buckets(controller: Controller) -> dict[float, float]:
    """Cumulative bucket counts by upper bound, scraped from /metrics."""
    _, text = controller._get("/metrics", controller.metrics_port)
    found: dict[float, float] = {}
    for line in text.splitlines():
        match = re.match(rf'^{FAMILY}_bucket\{{le="([^"]+)"\}} (\S+)$', line)
        if match:
            found[float(match.group(1))] = float(match.group(2))
    return found


def quantile(q: float, cumulative: dict[float, float]) -> float:
    """``histogram_quantile``: linear interpolation inside the bucket holding rank q."""
    bounds = sorted(cumulative)
    total = cumulative[bounds[-1]]
    if total == 0:
        return float("nan")
    rank, lower, below = q * total, 0.0, 0.0
    for bound in bounds:
        count = cumulative[bound]
        if count >= rank:
            if bound == float("inf"):
                return lower
            return lower + (bound - lower) * (rank - below) / max(count - below, 1e-9)
        lower, below = bound, count
    return lower


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--kubeconfig", default=None, help="a real API server (default: a loopback one)")
    parser.add_argument("--n", type=int, default=20, help="DISVCs (default 20)")
    parser.add_argument("--changes", type=int, default=100, help="single changes to time (default 100)")
    parser.add_argument("--interval", type=float, default=0.3, help="seconds between changes (default 0.3)")
    parser.add_argument("--timeout", type=float, default=300.0, help="bound on every wait, seconds")
    args = parser.parse_args(argv)
    harness.install_cleanup()

    with tempfile.TemporaryDirectory(prefix="disvc-reaction-") as tmp:
        workdir = Path(tmp)
        server = Server(args.kubeconfig, workdir)
        core = client.CoreV1Api(server.api_client)
        try:
            with controlled_namespace(server, "reaction", workdir, args.timeout) as (namespace, controller, watcher):
                for index in range(args.n):
                    server.custom.create_namespaced_custom_object(
                        workload.GROUP, workload.DISVC_VERSION, namespace, workload.DISVC_PLURAL,
                        workload.disvc_manifest(index, 2, namespace),
                    )
                wait_for(f"{args.n} DISVCs to converge", lambda: watcher.count() >= args.n, args.timeout)
                time.sleep(2.0)  # let the last echoes pass
                before = buckets(controller)
                rng = random.Random(14)
                for _ in range(args.changes):
                    name = workload.disvc_name(rng.randrange(args.n))
                    core.delete_namespaced_service(names.generation_name(name, workload.FIRST_GENERATION), namespace)
                    time.sleep(args.interval)
                wait_for("the last re-creation", lambda: watcher.quiet_for() >= 1.0, args.timeout)
                time.sleep(1.0)
                after = buckets(controller)
        except Timeout as problem:
            print(f"reaction aborted: {problem}", file=sys.stderr)
            return 1
        finally:
            server.close()

    window = {bound: after[bound] - before.get(bound, 0.0) for bound in after}
    count = window.get(float("inf"), 0.0)
    print(f"reaction, idle: {args.changes} child deletions {args.interval:g} s apart, {args.n} DISVCs, on {server.name}")
    print(f"  reactions observed {count:.0f}")
    print(f"  p50 {quantile(0.5, window) * 1000:.1f} ms (target <= 20), p99 {quantile(0.99, window) * 1000:.1f} ms "
          f"(target <= 100)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
