"""The manager wires every part of the controller together and runs it.

It plays the role of controller-runtime's ``manager.Manager``: one ``Kube``
client; four informers (DISVCs unfiltered; ISVCs, Services and Ingresses
selected by the ``disvc`` label, in ``--namespace`` or everywhere) whose
handlers enqueue DISVC keys; a rate-limited queue; ``--workers`` worker
threads running the ``DisvcReconciler``; the Event recorder; the
``/metrics`` and ``/healthz``/``/readyz`` servers; and, with
``--leader-elect``, a Lease so only one replica reconciles.

Order of ``run`` and why:

1. probes and metrics first, so the kubelet sees a live (not ready) pod;
2. informers, then wait until every cache has synced: a reconcile on a
   half-filled cache would see children as missing and re-create them.
   ``/readyz`` turns 200 here;
3. workers start only once this replica leads (at once without
   ``--leader-elect``): a standby keeps warm caches but never writes;
4. on stop: stop the watches, shut the queue down and give in-flight
   reconciles ``--graceful-shutdown-timeout`` to finish, flush Events,
   release the Lease (so a successor starts at once), stop the servers.

Losing the Lease while running ends ``run`` with exit code 1, as
controller-runtime does: another replica may already be reconciling.
"""

from __future__ import annotations

import threading
import time
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Final

import structlog
from prometheus_client import CollectorRegistry

from disvc.builders import names
from disvc.builders.desired import BuildOptions
from disvc.builders.types import DISVC_KIND, HTTPROUTE_KIND, INGRESS_KIND, ISVC_KIND, SERVICE_KIND, ChildKind, Obj
from disvc.controller import kube as kube_module
from disvc.controller.client import ApiWriter, CacheReader
from disvc.controller.events import EventRecorder
from disvc.controller.handler import EnqueueDisvc, EnqueueOwner
from disvc.controller.health import HealthServer
from disvc.controller.informer import Informer
from disvc.controller.kube import Kube
from disvc.controller.leader import LeaderElectionConfig, LeaderElector
from disvc.controller.metrics import Metrics, MetricsServer, serve
from disvc.controller.metrics_auth import MetricsAuth
from disvc.controller.options import Options
from disvc.controller.reconciler import DisvcReconciler
from disvc.controller.secure_metrics import serve_secure
from disvc.controller.store import DeletedFinalStateUnknown
from disvc.controller.tls import CertificateSource
from disvc.controller.worker import CONTROLLER_NAME, Worker
from disvc.controller.workqueue import RateLimitingQueue, default_controller_rate_limiter

log = structlog.get_logger(__name__)

CHILD_KINDS: Final[tuple[ChildKind, ...]] = (ISVC_KIND, SERVICE_KIND, INGRESS_KIND)
SERVICE_ACCOUNT_NAMESPACE: Final = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")
EXIT_OK: Final = 0
EXIT_LEADERSHIP_LOST: Final = 1
REVIEW_TIMEOUT: Final = 10.0
"""Seconds a scrape may wait for its TokenReview or SubjectAccessReview."""


def _rfc3339_now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _leader_election_namespace(options: Options) -> str:
    if options.leader_election_namespace:
        return options.leader_election_namespace
    try:
        return SERVICE_ACCOUNT_NAMESPACE.read_text().strip() or "default"
    except OSError:
        return "default"  # running outside a pod, e.g. from a laptop


class Manager:
    """Builds the controller from ``Options``; ``run`` drives it until stopped."""

    def __init__(
        self,
        options: Options,
        *,
        kube: Kube | None = None,
        registry: CollectorRegistry | None = None,
    ) -> None:
        self.options = options
        self.metrics = Metrics(registry)
        self.kube = kube if kube is not None else Kube(kube_module.load_api_client(options.kubeconfig))
        self.kube.on_write = self.metrics.count_api_write

        self.queue: RateLimitingQueue[str] = RateLimitingQueue(
            default_controller_rate_limiter(),
            CONTROLLER_NAME,
            metrics_provider=self.metrics.queue_metrics_provider(),
        )
        # HTTPRoutes only on request: without the Gateway API CRDs their
        # watch could never sync and /readyz would never turn 200.
        child_kinds = (*CHILD_KINDS, HTTPROUTE_KIND) if options.gateway_api else CHILD_KINDS
        self.informers: dict[str, Informer] = {
            # The resync re-delivers cached DISVCs only: each DISVC reconcile
            # covers its children, so resyncing them would enqueue the same keys.
            DISVC_KIND: Informer(self.kube, DISVC_KIND, options.namespace, resync_period=options.resync_period),
            **{
                kind: Informer(self.kube, kind, options.namespace, label_selector=names.DISVC_LABEL)
                for kind in child_kinds
            },
        }
        enqueue_disvc, enqueue_owner = EnqueueDisvc(self.queue), EnqueueOwner(self.queue)
        self.informers[DISVC_KIND].add_handler(enqueue_disvc.on_add, enqueue_disvc.on_update, enqueue_disvc.on_delete)
        self.informers[DISVC_KIND].add_handler(self._observe_disvc, self._observe_disvc_update, self._forget_disvc)
        for kind in child_kinds:
            self.informers[kind].add_handler(enqueue_owner.on_add, enqueue_owner.on_update, enqueue_owner.on_delete)
        disvc_store = self.informers[DISVC_KIND].store
        self.metrics.managed.set_function(lambda: len(disvc_store))

        self.events = EventRecorder(self.kube, on_drop=self.metrics.events_dropped_total.inc)
        stores = {kind: informer.store for kind, informer in self.informers.items()}
        self.reconciler = DisvcReconciler(
            CacheReader(self.kube, disvc_store, {kind: stores[kind] for kind in child_kinds}),
            ApiWriter(self.kube, stores, on_cached={DISVC_KIND: self._observe_disvc}),
            self.events,
            self._build_options,
        )
        self.worker = Worker(self.queue, self.reconciler, self.metrics)

        self.elector: LeaderElector | None = None
        if options.leader_elect:
            self.elector = LeaderElector(
                self.kube.bounded(options.retry_period),
                LeaderElectionConfig(
                    namespace=_leader_election_namespace(options),
                    name=options.leader_election_id,
                    lease_duration=options.lease_duration,
                    renew_deadline=options.renew_deadline,
                    retry_period=options.retry_period,
                ),
                on_started_leading=self._started_leading,
                on_stopped_leading=self._stopped_leading,
            )

        self.health: HealthServer | None = None
        self.metrics_server: MetricsServer | None = None
        self._synced = threading.Event()
        self._workers_stop = threading.Event()
        self._workers_started = threading.Event()
        self._leader_stop = threading.Event()
        self._leadership_lost = threading.Event()
        self._wake = threading.Event()
        """Set by anything that must end ``run``'s wait: the caller's stop or a lost lease."""

    # -- what tests and probes read -------------------------------------------

    def is_ready(self) -> bool:
        """True once every informer has synced (``/readyz``)."""
        return self._synced.is_set()

    def wait_until_ready(self, timeout: float | None = None) -> bool:
        return self._synced.wait(timeout)

    @property
    def health_port(self) -> int | None:
        return self.health.port if self.health is not None else None

    @property
    def metrics_port(self) -> int | None:
        return self.metrics_server.port if self.metrics_server is not None else None

    # -- running ----------------------------------------------------------------

    def run(self, stop: threading.Event) -> int:
        """Run until ``stop`` is set (or the Lease is lost); returns the exit code."""
        threading.Thread(target=self._forward, args=(stop,), name="manager-stop", daemon=True).start()
        leader_thread: threading.Thread | None = None
        try:
            self._start_servers()
            self.events.start()
            for informer in self.informers.values():
                informer.start()
            if not self._wait_for_sync():
                return EXIT_OK  # stopped before the caches filled
            if self.elector is not None:
                leader_thread = threading.Thread(
                    target=self.elector.run, args=(self._leader_stop,), name="leader-election", daemon=True
                )
                leader_thread.start()
            else:
                self._start_workers()
            self._wake.wait()
        finally:
            self._shut_down(leader_thread)
        if self._leadership_lost.is_set() and not stop.is_set():
            return EXIT_LEADERSHIP_LOST
        return EXIT_OK

    def _forward(self, stop: threading.Event) -> None:
        stop.wait()
        self._wake.set()

    def _start_servers(self) -> None:
        opts = self.options
        if opts.metrics_bind_address is not None and opts.metrics_secure:
            self.metrics_server = serve_secure(
                opts.metrics_bind_address, self.metrics.registry,
                MetricsAuth(self._review_client()), CertificateSource(opts.metrics_cert_dir),
            )
            log.info("Serving metrics", address=f"{self.metrics_server.host}:{self.metrics_server.port}", secure=True)
        elif opts.metrics_bind_address is not None:
            server = serve(str(opts.metrics_bind_address), self.metrics.registry)
            if server is not None:
                log.info("Serving metrics", address=f"{server.host}:{server.port}")
            self.metrics_server = server
        if opts.health_probe_bind_address is not None:
            self.health = HealthServer(opts.health_probe_bind_address, is_ready=self.is_ready).start()
            log.info("Serving health probes", address=f"{opts.health_probe_bind_address.host}:{self.health.port}")

    def _review_client(self) -> Kube:
        # Reviews change nothing in the cluster: they stay out of
        # disvc_api_writes_total, which counts what reconciles write. Bounded,
        # so a slow API server fails a scrape instead of piling them up.
        reviews = self.kube.bounded(REVIEW_TIMEOUT)
        reviews.on_write = None
        return reviews

    def _wait_for_sync(self) -> bool:
        log.info("Waiting for caches to sync")
        for informer in self.informers.values():
            while not informer.wait_for_sync(0.1):
                if self._wake.is_set():
                    return False
        self._synced.set()
        log.info("Caches synced", kinds=sorted(self.informers))
        return True

    def _started_leading(self) -> None:
        self.metrics.leader.set(1)
        self._start_workers()

    def _start_workers(self) -> None:
        if self._workers_started.is_set():
            return
        self._workers_started.set()
        log.info("Starting workers", workers=self.options.workers)
        self.worker.start(self.options.workers, self._workers_stop)

    def _stopped_leading(self) -> None:
        self.metrics.leader.set(0)
        if not self._leader_stop.is_set():
            # Renewal failed: someone else may lead already. Stop reconciling now.
            self._leadership_lost.set()
            self._wake.set()

    def _shut_down(self, leader_thread: threading.Thread | None) -> None:
        started = time.monotonic()
        log.info("Shutting down")
        for informer in self.informers.values():
            informer.stop(timeout=0)
        self._workers_stop.set()  # shuts the queue down; workers end after their current key
        self.queue.shut_down()
        workers_done = not self._workers_started.is_set() or self.worker.join(self.options.graceful_shutdown_timeout)
        if not workers_done and self.elector is not None:
            # A successor must not start while our reconciles may still write:
            # keep the Lease and let it expire instead of releasing it.
            self.elector.config = replace(self.elector.config, release_on_cancel=False)
        if not workers_done:
            log.warning("Reconciles still running at the shutdown deadline", timeout=self.options.graceful_shutdown_timeout)
        remaining = max(0.0, self.options.graceful_shutdown_timeout - (time.monotonic() - started))
        self.events.stop(timeout=min(remaining, 5.0))
        self._leader_stop.set()  # the elector releases the Lease as it returns
        if leader_thread is not None:
            leader_thread.join(max(remaining, self.options.retry_period + 5.0))
        for informer in self.informers.values():
            informer.stop(timeout=1.0)
        if self.metrics_server is not None:
            self.metrics_server.stop()
        if self.health is not None:
            self.health.stop()
        log.info("Shutdown complete")

    # -- gauges -------------------------------------------------------------------

    def _observe_disvc(self, disvc: Obj) -> None:
        meta, spec, status = disvc["metadata"], disvc.get("spec") or {}, disvc.get("status") or {}
        progressing = next(
            (c for c in status.get("conditions") or () if isinstance(c, dict) and c.get("type") == "Progressing"), {}
        )
        self.metrics.set_disvc_replicas(
            meta.get("namespace", ""), meta["name"],
            replicas=int(spec.get("replicas", 1) or 0), ready_replicas=int(status.get("readyReplicas") or 0),
            stalled=progressing.get("reason") == "ProgressDeadlineExceeded",
        )

    def _observe_disvc_update(self, _old: Obj, new: Obj) -> None:
        self._observe_disvc(new)

    def _forget_disvc(self, disvc: Obj | DeletedFinalStateUnknown) -> None:
        obj = disvc if isinstance(disvc, dict) else disvc.obj
        meta = obj["metadata"]
        self.metrics.remove_disvc(meta.get("namespace", ""), meta["name"])

    def _build_options(self) -> BuildOptions:
        return BuildOptions(
            ingress_domain=self.options.ingress_domain,
            ingress_class=self.options.ingress_class,
            gateway_api=self.options.gateway_api,
            now=_rfc3339_now(),
        )
