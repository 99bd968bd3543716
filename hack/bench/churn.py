"""Churn: does the controller's memory level off while DISVCs come, change and go?

One disvc controller (``--namespace``) and a KServe stand-in marking ISVCs
Ready at once. ``--n`` DISVCs are created and converged; then for
``--minutes`` random operations run at ``--rate`` per second, each picked at
random:

- scale: ``spec.replicas`` to 1..3;
- rollout: a new ``storageUri``, so a new generation replaces the serving one;
- child deletion: one child (ISVC, Service or Ingress) of a DISVC deleted, which
  the controller re-creates;
- re-creation: a DISVC deleted, then created again under the same name a few
  operations later (its children go by garbage collection, its state in the
  controller must go with it). Only on a real server: the loopback API has no
  garbage collector, so the old children would stay and clash.

The controller's RSS is sampled every ``--sample`` seconds. The script prints
RSS per minute, the growth rate over the second half of the churn (MiB per
minute, least squares: it should be about 0 once caches and pools are warm)
and how long the controller takes to converge every DISVC once the churn
stops. A leak shows as a steady slope; compare runs of different length
(``--minutes 6`` and ``--minutes 60``) before calling it one.

Usage::

    python hack/bench/churn.py --kubeconfig /tmp/k8s-run/admin.kubeconfig --minutes 6
    python hack/bench/churn.py --minutes 2          # on a loopback API in this process
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import harness
import workload
from compare import MIB, Server, controlled_namespace
from harness import Timeout, wait_for
from kubernetes.client.exceptions import ApiException

OPERATIONS = ("scale", "rollout", "delete child", "re-create")


def slope_mib_per_minute(samples: list[tuple[float, int]]) -> float:
    """Least-squares growth of RSS, MiB per minute."""
    if len(samples) < 2:
        return 0.0
    xs = [t / 60 for t, _ in samples]
    ys = [rss / MIB for _, rss in samples]
    mean_x, mean_y = sum(xs) / len(xs), sum(ys) / len(ys)
    spread = sum((x - mean_x) ** 2 for x in xs)
    if spread == 0:
        return 0.0
    return sum((x - mean_x) * (y - mean_y) for x, y in zip(xs, ys, strict=True)) / spread


class Churner:
    """Random operations on the DISVCs of one namespace, through the typed client."""

    def __init__(self, server: Server, namespace: str, n: int, seed: int) -> None:
        self.server, self.namespace, self.n = server, namespace, n
        self.random = random.Random(seed)
        self.done: Counter[str] = Counter()
        self.failed: Counter[str] = Counter()
        self._deleted: list[int] = []
        self._serial = 0
        self.operations = OPERATIONS if server.loopback is None else OPERATIONS[:-1]

    def _disvc_api(self) -> tuple[str, str, str, str]:
        return workload.GROUP, workload.DISVC_VERSION, self.namespace, workload.DISVC_PLURAL

    def create(self, index: int) -> None:
        self.server.custom.create_namespaced_custom_object(
            *self._disvc_api(), workload.disvc_manifest(index, 2, self.namespace)
        )

    def step(self) -> None:
        # Bring back a DISVC deleted a few operations ago (its delete has had
        # time to reach the controller), then do one random operation.
        if self._deleted and (len(self._deleted) > 3 or self.random.random() < 0.3):
            index = self._deleted.pop(0)
            self._run("create", lambda index=index: self.create(index))
        operation = self.random.choice(self.operations)
        live = [i for i in range(self.n) if i not in self._deleted]
        if not live:
            return
        index = self.random.choice(live)
        name = workload.disvc_name(index)
        if operation == "scale":
            body: Any = {"spec": {"replicas": self.random.randint(1, 3)}}
            self._run(operation, lambda: self.server.custom.patch_namespaced_custom_object(*self._disvc_api(), name, body))
        elif operation == "rollout":
            self._serial += 1
            uri = f"gs://kfserving-examples/models/sklearn/1.0/model?churn={self._serial}"
            patch: Any = {"spec": {"inferenceService": {"predictor": {"model": {"storageUri": uri}}}}}
            self._run(operation, lambda: self.server.custom.patch_namespaced_custom_object(*self._disvc_api(), name, patch))
        elif operation == "delete child":
            self._run(operation, lambda: self._delete_a_child(name))
        else:
            self._deleted.append(index)
            self._run(operation, lambda: self.server.custom.delete_namespaced_custom_object(*self._disvc_api(), name))

    def _delete_a_child(self, name: str) -> None:
        selector = f"disvc={name}"
        kind = self.random.choice(("InferenceService", "Service", "Ingress"))
        if kind == "InferenceService":
            items = self.server.custom.list_namespaced_custom_object(
                workload.GROUP, workload.ISVC_VERSION, self.namespace, workload.ISVC_PLURAL, label_selector=selector
            )["items"]
            if items:
                victim = self.random.choice(items)["metadata"]["name"]
                self.server.custom.delete_namespaced_custom_object(
                    workload.GROUP, workload.ISVC_VERSION, self.namespace, workload.ISVC_PLURAL, victim
                )
        elif kind == "Service":
            services = self.server.core.list_namespaced_service(self.namespace, label_selector=selector).items
            if services:
                self.server.core.delete_namespaced_service(self.random.choice(services).metadata.name, self.namespace)
        else:
            from kubernetes import client

            networking = client.NetworkingV1Api(self.server.api_client)
            if networking.list_namespaced_ingress(self.namespace, label_selector=selector).items:
                networking.delete_namespaced_ingress(name, self.namespace)

    def _run(self, operation: str, call: Any) -> None:
        try:
            call()
            self.done[operation] += 1
        except ApiException:
            self.failed[operation] += 1  # raced the controller or a delete: part of churn

    def restore(self) -> None:
        """Re-create every DISVC still deleted, so all N can converge."""
        while self._deleted:
            index = self._deleted.pop(0)
            self._run("create", lambda index=index: self.create(index))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--kubeconfig", default=None, help="a real API server (default: a loopback one)")
    parser.add_argument("--n", type=int, default=100, help="DISVCs (default 100)")
    parser.add_argument("--minutes", type=float, default=6.0, help="churn duration (default 6)")
    parser.add_argument("--rate", type=float, default=8.0, help="operations per second (default 8)")
    parser.add_argument("--sample", type=float, default=2.0, help="RSS sampling interval, seconds")
    parser.add_argument("--seed", type=int, default=14)
    parser.add_argument("--timeout", type=float, default=600.0, help="bound on every wait, seconds")
    parser.add_argument("--controller-arg", action="append", default=[], help="extra disvc flag (repeatable)")
    args = parser.parse_args(argv)
    harness.install_cleanup()

    with tempfile.TemporaryDirectory(prefix="disvc-churn-") as tmp:
        workdir = Path(tmp)
        server = Server(args.kubeconfig, workdir)
        try:
            with controlled_namespace(server, "churn", workdir, args.timeout, args.controller_arg) as (
                namespace, controller, watcher,
            ):
                churner = Churner(server, namespace, args.n, args.seed)
                for index in range(args.n):
                    churner.create(index)
                wait_for(f"{args.n} DISVCs to converge", lambda: watcher.count() >= args.n, args.timeout)
                sampler = harness.RssSampler(controller.pid, args.sample)
                started = time.monotonic()
                end = started + args.minutes * 60
                next_report = started + 60
                while time.monotonic() < end:
                    churner.step()
                    if time.monotonic() >= next_report:
                        rss = sampler.samples[-1][1] / MIB if sampler.samples else 0
                        print(f"  {(time.monotonic() - started) / 60:4.1f} min: RSS {rss:6.1f} MiB, "
                              f"{sum(churner.done.values())} operations", flush=True)
                        next_report += 60
                    time.sleep(max(0.0, 1 / args.rate - 0.002))
                churner.restore()
                stopped = time.monotonic()
                # Converged and quiet: the watch has caught up with the last changes.
                wait_for(
                    "every DISVC to converge after the churn",
                    lambda: watcher.count() >= args.n and watcher.quiet_for() >= 2.0,
                    args.timeout,
                )
                settle_seconds = max(0.0, time.monotonic() - watcher.quiet_for() - stopped)
                time.sleep(5)  # a window for one more sample at rest
                sampler.stop()
        except Timeout as problem:
            print(f"churn aborted: {problem}", file=sys.stderr)
            return 1
        finally:
            server.close()

    samples = sampler.samples
    churn_samples = [s for s in samples if s[0] <= args.minutes * 60]
    half = [s for s in churn_samples if s[0] >= args.minutes * 30]
    print()
    print(f"churn: {args.n} DISVCs, {args.minutes:g} min at {args.rate:g}/s on {server.name}")
    print("  operations: " + ", ".join(f"{k} {v}" for k, v in sorted(churner.done.items()))
          + (f"; refused (raced): {sum(churner.failed.values())}" if churner.failed else ""))
    print(f"  RSS: start {samples[0][1] / MIB:.1f} MiB, peak {max(r for _, r in samples) / MIB:.1f} MiB, "
          f"end {samples[-1][1] / MIB:.1f} MiB")
    print(f"  RSS growth, whole churn {slope_mib_per_minute(churn_samples):+.2f} MiB/min, "
          f"second half {slope_mib_per_minute(half):+.2f} MiB/min (level: about 0)")
    print(f"  converged {settle_seconds:.1f} s after the churn stopped (the last DISVC status change)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
