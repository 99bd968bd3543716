"""The manager wires every part of the controller together and runs it.

It plays the role of controller-runtime's ``manager.Manager``: one ``Kube``
client (its requests counted in the metrics); four informers (DISVCs
unfiltered; ISVCs, Services and Ingresses selected by the ``disvc`` label, in
``--namespace`` or everywhere, with the child indexes and the compact
transform) whose handlers enqueue DISVC keys; a rate-limited queue;
``--workers`` worker threads running the ``DisvcReconciler``; the Event
recorder; the ``/metrics`` and ``/healthz``/``/readyz`` servers; and, with
``--leader-elect``, a Lease so only one replica reconciles.

The parts run in ``runnables.Group``s, started in this order and stopped in
reverse, each with a timeout:

1. servers, so the kubelet sees a live (not ready) pod;
2. caches: informers, then wait until every cache has synced (``/readyz``
   turns 200 here): a reconcile on a half-filled cache would see children
   as missing and re-create them;
3. leader election (with ``--leader-elect``): a standby keeps warm caches
   but never writes;
4. once this replica leads (at once without ``--leader-elect``): the Event
   recorder, then the workers.

Every write (children, status, Events) first asks ``_may_write``: with
leader election it is refused once the renew deadline has passed since the
last renewal, even before the renew loop notices, so a paused leader that
wakes after its lease expired writes nothing. On stop, in-flight reconciles get ``--graceful-shutdown-timeout`` to finish,
queued Events are flushed, and the Lease is released so a successor starts
at once; if reconciles are still running at the deadline the Lease is kept
instead (it expires), since they may still write. Losing the Lease while
running ends ``run`` with exit code 1, as controller-runtime does: another
replica may already be reconciling.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Final, TypeVar

import structlog
from prometheus_client import CollectorRegistry

from disvc.builders import names
from disvc.builders.desired import BuildOptions
from disvc.builders.spec import GatewayRef
from disvc.builders.types import (
    CONTROLLER_REVISION_KIND,
    DISVC_KIND,
    GRPCROUTE_KIND,
    HTTPROUTE_KIND,
    INGRESS_KIND,
    ISVC_KIND,
    SERVICE_KIND,
    ChildKind,
    Obj,
    find_condition,
)
from disvc.controller import kube_version
from disvc.controller.backoff import Backoff
from disvc.controller.client import ApiWriter, CacheReader
from disvc.controller.clock import Clock, RealClock, rfc3339
from disvc.controller.compact import compact, compact_child
from disvc.controller.errors import ConfigError, ControllerError
from disvc.controller.gateway_api import GatewayApi
from disvc.controller.handler import EnqueueDisvc, EnqueueOwner
from disvc.controller.health import HealthServer
from disvc.controller.indexes import CHILD_INDEXERS
from disvc.controller.informer import Informer
from disvc.controller.kube import Kube, load_api_client
from disvc.controller.leader import LeaderElectionConfig, LeaderElector
from disvc.controller.metrics import WRITE_VERBS, DisvcState, Metrics, MetricsServer, serve
from disvc.controller.metrics_auth import MetricsAuth
from disvc.controller.mutation_cache import MutationCache
from disvc.controller.options import BindAddress, Options
from disvc.controller.prometheus import Analyst, Prometheus
from disvc.controller.reaction import Reaction
from disvc.controller.reconciler import DisvcReconciler
from disvc.controller.recorder import EventRecorder
from disvc.controller.runnables import Group, Loop, Member, Started
from disvc.controller.secure_metrics import serve_secure
from disvc.controller.tls import CertificateSource
from disvc.controller.worker import CONTROLLER_NAME, Worker
from disvc.controller.workqueue import RateLimitingQueue, default_controller_rate_limiter

log = structlog.get_logger(__name__)

CHILD_KINDS: Final[tuple[ChildKind, ...]] = (ISVC_KIND, SERVICE_KIND, INGRESS_KIND, CONTROLLER_REVISION_KIND)
SERVICE_ACCOUNT_NAMESPACE: Final = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")
EXIT_OK: Final = 0
EXIT_LEADERSHIP_LOST: Final = 1
SERVER_STOP_TIMEOUT: Final = 1.0
INFORMER_STOP_TIMEOUT: Final = 1.0
"""A list in flight may outlast it; the reflector thread is a daemon."""
EVENT_FLUSH_TIMEOUT: Final = 5.0
LEASE_RELEASE_MARGIN: Final = 5.0
"""Added to the retry period (the bound on one Lease request) for the release."""
REVIEW_TIMEOUT: Final = 10.0
"""Seconds a scrape may wait for its TokenReview or SubjectAccessReview."""


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
        clock: Clock | None = None,
    ) -> None:
        self.options = options
        self.clock: Clock = clock or RealClock()
        self.metrics = Metrics(registry)
        self.kube = kube if kube is not None else Kube(load_api_client(options.kubeconfig, options.context))
        self.reaction = Reaction(self.metrics.reaction_seconds.observe)
        self.kube.on_request = self._on_request
        self.kube.on_retry_after = self.metrics.count_retry_after_wait

        self.queue: RateLimitingQueue[str] = RateLimitingQueue(
            default_controller_rate_limiter(),
            CONTROLLER_NAME,
            metrics_provider=self.metrics.queue_metrics_provider(),
        )
        # Gateway API routes are watched only while their CRDs exist
        # (gateway_api.py): without them the watch could never sync.
        child_kinds = CHILD_KINDS
        self.informers: dict[str, Informer] = {
            # The resync re-delivers cached DISVCs only: each DISVC reconcile
            # covers its children, so resyncing them would enqueue the same keys.
            DISVC_KIND: Informer(
                self.kube, DISVC_KIND, options.namespace, resync_period=options.resync_period, transform=compact,
                watch_idle_timeout=options.watch_idle_timeout,
            ),
            **{
                kind: Informer(
                    self.kube, kind, options.namespace, label_selector=names.DISVC_LABEL,
                    indexers=CHILD_INDEXERS, transform=compact_child, watch_idle_timeout=options.watch_idle_timeout,
                )
                for kind in child_kinds
            },
        }
        # The queue is not told of our own writes' echoes; the gauges are.
        events = self.reaction.watching(self.queue)
        enqueue_disvc, enqueue_owner = EnqueueDisvc(events), EnqueueOwner(events)
        disvcs = self.informers[DISVC_KIND]
        disvcs.add_handler(enqueue_disvc.on_add, enqueue_disvc.on_update, enqueue_disvc.on_delete, own_writes=False)
        for kind in child_kinds:
            self.informers[kind].add_handler(
                enqueue_owner.on_add, enqueue_owner.on_update, enqueue_owner.on_delete, own_writes=False
            )
        self.metrics.managed.set_function(lambda: len(disvcs.store))
        self.metrics.read_disvc_states(self._disvc_states)

        self.recorder = EventRecorder(
            self.kube, on_drop=self.metrics.events_dropped_total.inc, clock=self.clock, may_write=self._may_write
        )
        # Shared with the reader and the writer: route caches join and leave
        # them as the Gateway API CRDs come and go.
        caches: dict[str, MutationCache] = {kind: informer.cache for kind, informer in self.informers.items()}
        child_caches: dict[ChildKind, MutationCache] = {kind: caches[kind] for kind in child_kinds}
        writer = ApiWriter(self.kube, caches, may_write=self._may_write)
        for kind in child_kinds:
            self.informers[kind].add_handler(on_delete=functools.partial(writer.forget, kind))

        def route_informer(kind: str) -> Informer:
            informer = Informer(
                self.kube, kind, options.namespace, label_selector=names.DISVC_LABEL,
                indexers=CHILD_INDEXERS, transform=compact_child, watch_idle_timeout=options.watch_idle_timeout,
            )
            informer.add_handler(enqueue_owner.on_add, enqueue_owner.on_update, enqueue_owner.on_delete, own_writes=False)
            informer.add_handler(on_delete=functools.partial(writer.forget, kind))
            return informer

        def attach(kind: str, informer: Informer) -> None:
            caches[kind] = informer.cache
            child_caches[HTTPROUTE_KIND if kind == HTTPROUTE_KIND else GRPCROUTE_KIND] = informer.cache

        def detach(kind: str) -> None:
            caches.pop(kind, None)
            child_caches.pop(HTTPROUTE_KIND if kind == HTTPROUTE_KIND else GRPCROUTE_KIND, None)

        self.gateway: GatewayApi | None = (
            GatewayApi(
                self.kube, route_informer, attach, detach, self._enqueue_all,
                watch_idle_timeout=options.watch_idle_timeout,
            )
            if options.gateway_api
            else None
        )
        self.reconciler = DisvcReconciler(
            CacheReader(self.kube, caches[DISVC_KIND], child_caches),
            writer,
            self.recorder,
            self._build_options,
            measure=Analyst(
                Prometheus(
                    options.prometheus_url,
                    bearer_token_file=options.prometheus_bearer_token_file,
                    ca_file=options.prometheus_ca_file,
                )
                if options.prometheus_url
                else None,
                count=self.metrics.count_measurement,
            ),
        )
        self.worker = Worker(
            self.queue, self.reaction.reconciling(self.reconciler), self.metrics, workers=options.workers
        )

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
                clock=self.clock,
            )

        self.health: HealthServer | None = None
        self.metrics_server: MetricsServer | None = None
        self._caches = Group("caches", [
            *(Member(f"informer-{kind}", informer, INFORMER_STOP_TIMEOUT) for kind, informer in self.informers.items()),
            *([Member("gateway-api", self.gateway, INFORMER_STOP_TIMEOUT)] if self.gateway is not None else []),
        ])
        self._recorder = Group("event-recorder", [Member("event-recorder", self.recorder, EVENT_FLUSH_TIMEOUT)])
        self._workers = Group("workers", [Member("workers", self.worker, options.graceful_shutdown_timeout)])
        self._synced = threading.Event()
        self._stop: threading.Event | None = None
        self._leadership_lost = False

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
        """Run until ``stop`` is set; returns the exit code.

        Losing the Lease sets ``stop`` too, and makes the exit code 1.
        """
        self._stop = stop
        started: list[Group] = []
        try:
            servers = self._servers()
            servers.start()
            started.append(servers)
            info = self._server_version(stop)
            if info is None:
                return EXIT_OK  # stopped before the API server answered
            version = kube_version.check(info)
            log.info("API server", kubernetes=f"{version[0]}.{version[1]}")
            self._caches.start()
            started.append(self._caches)
            self._log_addresses()
            if not self._wait_for_sync(stop):
                return EXIT_OK  # stopped before the caches filled
            if self.elector is not None:
                election = Group("leader-election", [Member(
                    "leader-election", Loop("leader-election", self.elector.run),
                    self.options.retry_period + LEASE_RELEASE_MARGIN,
                )])
                election.start()
                started.append(election)
            else:
                self._start_writing()
            stop.wait()
        finally:
            self._shut_down(started)
        return EXIT_LEADERSHIP_LOST if self._leadership_lost else EXIT_OK

    def _server_version(self, stop: threading.Event) -> Obj | None:
        """``/version``, asked until the API server answers (an outage at start
        is waited out, as the informers' lists would be); None once stopped."""
        backoff = Backoff(initial=0.5, cap=10.0)
        while not stop.is_set():
            try:
                return self.kube.server_version()
            except ControllerError as error:
                log.warning("Cannot read the API server's version yet", error=str(error))
                stop.wait(backoff.next())
        return None

    def _servers(self) -> Group:
        opts, members = self.options, []
        if (metrics_address := opts.metrics_bind_address) is not None:
            members.append(Member("metrics", Started(lambda: self._serve_metrics(metrics_address)), SERVER_STOP_TIMEOUT))
        if (probe_address := opts.health_probe_bind_address) is not None:
            members.append(Member("health-probes", Started(lambda: self._serve_probes(probe_address)), SERVER_STOP_TIMEOUT))
        return Group("servers", members)

    def _serve_probes(self, address: BindAddress) -> HealthServer:
        # Bound only when its group starts, so a failed start leaves no socket behind.
        self.health = _listening("health probes", address, lambda: HealthServer(address, is_ready=self.is_ready))
        return self.health.start()

    def _serve_metrics(self, address: BindAddress) -> MetricsServer:
        opts = self.options
        if opts.metrics_secure:
            server = _listening("metrics", address, lambda: serve_secure(
                address, self.metrics.registry,
                MetricsAuth(self._review_client()), CertificateSource(opts.metrics_cert_dir),
            ))  # fmt: skip
        else:
            server = _listening("metrics", address, lambda: serve(address, self.metrics.registry))
        self.metrics_server = server
        log.info("Serving metrics", address=f"{server.host}:{server.port}", secure=opts.metrics_secure)
        return server

    def _review_client(self) -> Kube:
        # Reviews change nothing in the cluster: counted as requests, they stay
        # out of disvc_api_writes_total, which counts what reconciles write.
        # Bounded, so a slow API server fails a scrape instead of piling them up.
        reviews = self.kube.bounded(REVIEW_TIMEOUT)
        reviews.on_request = self.metrics.count_api_question
        return reviews

    def _log_addresses(self) -> None:
        if self.health is not None and self.options.health_probe_bind_address is not None:
            log.info("Serving health probes", address=f"{self.options.health_probe_bind_address.host}:{self.health.port}")

    def _wait_for_sync(self, stop: threading.Event) -> bool:
        log.info("Waiting for caches to sync")
        syncing: list[Informer | GatewayApi] = [*self.informers.values()]
        if self.gateway is not None:
            syncing.append(self.gateway)
        for informer in syncing:
            while not informer.wait_for_sync(0.1):
                if stop.is_set():
                    return False
        self._synced.set()
        log.info("Caches synced", kinds=sorted(self.informers))
        return True

    def _may_write(self) -> bool:
        """Every write asks first: with leader election, only while the Lease
        was renewed less than the renew deadline ago (``LeaderElector.may_write``)."""
        return self.elector is None or self.elector.may_write()

    def _started_leading(self) -> None:
        self.metrics.leader.set(1)
        self._start_writing()

    def _start_writing(self) -> None:
        if self._recorder.start() and self._workers.start():
            log.info("Started workers", workers=self.options.workers)

    def _stopped_leading(self) -> None:
        self.metrics.leader.set(0)
        if self._stop is not None and not self._stop.is_set():
            # Renewal failed: someone else may lead already. Stop reconciling now.
            self._leadership_lost = True
            self._stop.set()

    def _shut_down(self, started: list[Group]) -> None:
        log.info("Shutting down")
        # No grace after a lost Lease: another replica may lead already.
        # Writes are refused from here on anyway (``_may_write``); the workers
        # are told to end and nobody waits for them.
        grace = 0.0 if self._leadership_lost else None
        if not self._workers.stop(grace) and self.elector is not None:
            # A successor must not start while our reconciles may still write:
            # keep the Lease and let it expire instead of releasing it.
            self.elector.config = replace(self.elector.config, release_on_cancel=False)
        self._recorder.stop()
        for group in reversed(started):
            group.stop()
        log.info("Shutdown complete")

    # -- gauges -------------------------------------------------------------------

    def _on_request(self, verb: str, kind: str, code: str) -> None:
        self.metrics.count_api_request(verb, kind, code)
        if verb in WRITE_VERBS:
            self.reaction.wrote()

    def _disvc_states(self) -> Iterator[DisvcState]:
        """The per-DISVC gauges' values, from the cache at scrape time."""
        for disvc in self.informers[DISVC_KIND].store.list():
            meta, spec, status = disvc["metadata"], disvc.get("spec") or {}, disvc.get("status") or {}
            progressing = find_condition(status, "Progressing") or {}
            running = progressing.get("reason") in ("AnalysisRunning", "AnalysisPaused")
            analysis = status.get("analysis") or {}
            weights = [g.get("trafficPercent") or 0 for g in status.get("generations") or ()
                       if g.get("name") != status.get("activeGeneration")]
            yield DisvcState(
                meta.get("namespace", ""), meta["name"],
                replicas=int(spec.get("replicas", 1) or 0), ready_replicas=int(status.get("readyReplicas") or 0),
                stalled=progressing.get("reason") == "ProgressDeadlineExceeded",
                analysis_step=int(analysis.get("step") or 0) if running else 0,
                canary_weight=int(max(weights, default=0)) if progressing.get("reason") != "Converged" else 0,
            )

    def _enqueue_all(self) -> None:
        """Every DISVC, to be reconciled again: what the cluster serves changed."""
        for disvc in self.informers[DISVC_KIND].store.list():
            meta = disvc["metadata"]
            self.queue.add(f"{meta.get('namespace', '')}/{meta['name']}")

    def _build_options(self) -> BuildOptions:
        gateway = self.gateway
        default = self.options.default_gateway
        default_ref = None
        if default:
            namespace, _, name = default.partition("/")
            default_ref = GatewayRef(name=name, namespace=namespace)
        return BuildOptions(
            ingress_domain=self.options.ingress_domain,
            ingress_class=self.options.ingress_class,
            gateway_api=gateway is not None and gateway.serves(HTTPROUTE_KIND),
            grpc_route=gateway is not None and gateway.serves(GRPCROUTE_KIND),
            session_persistence=gateway.persistence() if gateway is not None else frozenset(),
            default_gateway=default_ref,
            default_deployment_mode=self.options.default_deployment_mode,
            now=rfc3339(self.clock.now()),
        )


_Server = TypeVar("_Server")


def _listening(purpose: str, address: BindAddress, start: Callable[[], _Server]) -> _Server:
    """``start()``, with a port that cannot be bound reported as the setup
    mistake it is (another process on it, a host not on this machine)."""
    try:
        return start()
    except OSError as error:
        raise ConfigError(
            f"cannot listen on {address.host}:{address.port} for {purpose}: {error.strerror or error}"
        ) from error
