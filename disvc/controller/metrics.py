"""What the controller exports to Prometheus, and the ``/metrics`` endpoint.

Four groups, each under the names an operator's dashboards already know:

- controller-runtime's reconcile metrics (``controller_runtime_*``, label
  ``controller``), recorded by the worker;
- client-go's workqueue metrics (``workqueue_*``, label ``name``), recorded
  by the queue through ``queue_metrics_provider()``;
- our own (``disvc_*``): DISVCs in the cache, replicas per DISVC, every API
  request by response code and the writes among them (counted by the
  client's transport through ``count_api_request``), the waits the API
  server asked for with ``Retry-After`` (``count_retry_after_wait``),
  Events dropped because the recorder's queue was full, and whether this
  process is the leader;
- the process's own (``process_*``: CPU seconds, resident and virtual
  memory, open and maximum file descriptors, start time), from
  prometheus_client's ``ProcessCollector``, as controller-runtime exports
  them beside its own.

``Metrics`` registers everything on its own ``CollectorRegistry`` rather than
the process-wide default, so a test can build as many as it likes and read
values back without interference.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Final, Literal, TypeAlias, get_args
from wsgiref.simple_server import WSGIServer

import prometheus_client
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, ProcessCollector
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from disvc.controller.options import BindAddress
from disvc.controller.workqueue.metrics import (
    CounterMetric,
    GaugeMetric,
    HistogramMetric,
    MetricsProvider,
    SettableGaugeMetric,
)

RECONCILE_TIME_BUCKETS: Final[Sequence[float]] = (
    0.005, 0.01, 0.025, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.35, 0.4, 0.45, 0.5,
    0.6, 0.7, 0.8, 0.9, 1.0, 1.25, 1.5, 1.75, 2.0, 2.5, 3.0, 3.5, 4.0, 4.5,
    5.0, 6.0, 7.0, 8.0, 9.0, 10.0, 15.0, 20.0, 25.0, 30.0, 40.0, 50.0, 60.0,
)  # fmt: skip
"""Fine below a second where healthy reconciles land, coarse up to a minute
(the spacing controller-runtime uses, so shared dashboards line up)."""

WORKQUEUE_DURATION_BUCKETS: Final[Sequence[float]] = tuple(10.0**exponent for exponent in range(-8, 4))
"""Decades from 10 ns to 1000 s: queue waits span backoff's whole range."""

REACTION_BUCKETS: Final[Sequence[float]] = (
    0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 300.0,
)  # fmt: skip
"""Fine around the targets (p50 20 ms, p99 100 ms idle), coarse up to the
minutes a backlog of thousands of DISVCs can wait."""

ReconcileResult: TypeAlias = Literal["success", "error", "requeue", "requeue_after"]
"""Values of ``controller_runtime_reconcile_total{result}``."""

RECONCILE_RESULTS: Final[tuple[ReconcileResult, ...]] = get_args(ReconcileResult)

WRITE_VERBS: Final = frozenset({"create", "update", "patch", "delete"})
"""Requests also counted in ``disvc_api_writes_total`` (an apply is a patch)."""


class _WorkqueueMetricsProvider:
    """Hands each queue the children of the shared workqueue families."""

    def __init__(self, metrics: Metrics) -> None:
        self._metrics = metrics

    def depth(self, name: str) -> GaugeMetric:
        return self._metrics.workqueue_depth.labels(name=name)

    def adds(self, name: str) -> CounterMetric:
        return self._metrics.workqueue_adds_total.labels(name=name)

    def latency(self, name: str) -> HistogramMetric:
        return self._metrics.workqueue_queue_duration_seconds.labels(name=name)

    def work_duration(self, name: str) -> HistogramMetric:
        return self._metrics.workqueue_work_duration_seconds.labels(name=name)

    def unfinished_work_seconds(self, name: str) -> SettableGaugeMetric:
        return self._metrics.workqueue_unfinished_work_seconds.labels(name=name)

    def longest_running_processor_seconds(self, name: str) -> SettableGaugeMetric:
        return self._metrics.workqueue_longest_running_processor_seconds.labels(name=name)

    def retries(self, name: str) -> CounterMetric:
        return self._metrics.workqueue_retries_total.labels(name=name)


class Metrics:
    """Every metric the controller exports, on one registry."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        r = self.registry
        ProcessCollector(registry=r)

        self.reconcile_total = Counter(
            "controller_runtime_reconcile_total",
            "Total number of reconciliations per controller",
            ["controller", "result"],
            registry=r,
        )
        self.reconcile_errors_total = Counter(
            "controller_runtime_reconcile_errors_total",
            "Total number of reconciliation errors per controller",
            ["controller"],
            registry=r,
        )
        self.terminal_reconcile_errors_total = Counter(
            "controller_runtime_terminal_reconcile_errors_total",
            "Total number of reconciliation errors that retrying cannot fix, per controller",
            ["controller"],
            registry=r,
        )
        self.reconcile_time_seconds = Histogram(
            "controller_runtime_reconcile_time_seconds",
            "Length of time per reconciliation per controller",
            ["controller"],
            buckets=RECONCILE_TIME_BUCKETS,
            registry=r,
        )
        self.active_workers = Gauge(
            "controller_runtime_active_workers",
            "Number of workers currently reconciling, per controller",
            ["controller"],
            registry=r,
        )
        self.max_concurrent_reconciles = Gauge(
            "controller_runtime_max_concurrent_reconciles",
            "Maximum number of concurrent reconciles per controller",
            ["controller"],
            registry=r,
        )

        self.workqueue_depth = Gauge("workqueue_depth", "Current depth of workqueue", ["name"], registry=r)
        self.workqueue_adds_total = Counter(
            "workqueue_adds_total", "Total number of adds handled by workqueue", ["name"], registry=r
        )
        self.workqueue_queue_duration_seconds = Histogram(
            "workqueue_queue_duration_seconds",
            "How long in seconds an item stays in workqueue before being requested",
            ["name"],
            buckets=WORKQUEUE_DURATION_BUCKETS,
            registry=r,
        )
        self.workqueue_work_duration_seconds = Histogram(
            "workqueue_work_duration_seconds",
            "How long in seconds processing an item from workqueue takes",
            ["name"],
            buckets=WORKQUEUE_DURATION_BUCKETS,
            registry=r,
        )
        self.workqueue_unfinished_work_seconds = Gauge(
            "workqueue_unfinished_work_seconds",
            "Seconds of work in progress not yet observed by work_duration; a steady rise means stuck workers",
            ["name"],
            registry=r,
        )
        self.workqueue_longest_running_processor_seconds = Gauge(
            "workqueue_longest_running_processor_seconds",
            "Seconds the longest running worker of the workqueue has been processing its item",
            ["name"],
            registry=r,
        )
        self.workqueue_retries_total = Counter(
            "workqueue_retries_total", "Total number of retries handled by workqueue", ["name"], registry=r
        )

        self.managed = Gauge("disvc_managed", "DistributedInferenceServices in the controller's cache", registry=r)
        self._disvc_states: Callable[[], Iterable[DisvcState]] = tuple
        r.register(_DisvcStateCollector(lambda: self._disvc_states()))
        self.api_writes_total = Counter(
            "disvc_api_writes_total",
            "Writes (create, update, patch, apply, delete) the controller sent to the API server",
            ["verb", "kind"],
            registry=r,
        )
        self.api_requests_total = Counter(
            "disvc_api_requests_total",
            "Requests the controller sent to the API server, by response code",
            ["verb", "kind", "code"],
            registry=r,
        )
        # Two counters rather than a histogram: APF asks for a few whole
        # seconds, so buckets would add series without telling more, and
        # the pair gives what a dashboard plots: waits per second, seconds
        # waited per second (how much of the controller's time the server
        # takes back) and, divided, the mean wait.
        self.api_retry_after_waits_total = Counter(
            "disvc_api_retry_after_waits_total",
            "Waits the API server asked for with Retry-After (429 or 5xx), taken in the call or by requeueing the key",
            ["verb", "kind"],
            registry=r,
        )
        self.api_retry_after_wait_seconds_total = Counter(
            "disvc_api_retry_after_wait_seconds_total",
            "Seconds the waits in disvc_api_retry_after_waits_total were for "
            "(a requeued key runs sooner if a watch event brings it back)",
            ["verb", "kind"],
            registry=r,
        )
        self.events_dropped_total = Counter(
            "disvc_events_dropped_total",
            "Events not recorded because the Event recorder's queue was full",
            registry=r,
        )
        self.analysis_measurements_total = Counter(
            "disvc_analysis_measurements_total",
            "Canary analysis measurements, by metric and result (pass, fail, inconclusive, error)",
            ["namespace", "name", "metric", "result"],
            registry=r,
        )
        self.leader = Gauge("disvc_leader", "1 while this process holds the leader lease, else 0", registry=r)
        self.reaction_seconds = Histogram(
            "disvc_reaction_seconds",
            "Seconds from a watch event to the first API write the reconcile it caused made",
            buckets=REACTION_BUCKETS,
            registry=r,
        )

    def queue_metrics_provider(self) -> MetricsProvider:
        """The provider to pass to the workqueue (client-go's workqueue metrics)."""
        return _WorkqueueMetricsProvider(self)

    def read_disvc_states(self, states: Callable[[], Iterable[DisvcState]]) -> None:
        """Where the per-DISVC gauges come from: called at each scrape (the controller's cache)."""
        self._disvc_states = states

    def count_api_request(self, verb: str, kind: str, code: str) -> None:
        """Count one request the client sent (its ``on_request`` hook)."""
        self.api_requests_total.labels(verb=verb, kind=kind, code=code).inc()
        if verb in WRITE_VERBS:
            self.api_writes_total.labels(verb=verb, kind=kind).inc()

    def count_retry_after_wait(self, verb: str, kind: str, seconds: float) -> None:
        """Count one wait of ``seconds`` the API server asked for (the
        client's ``on_retry_after`` hook, and the worker's requeues)."""
        self.api_retry_after_waits_total.labels(verb=verb, kind=kind).inc()
        self.api_retry_after_wait_seconds_total.labels(verb=verb, kind=kind).inc(seconds)

    def count_measurement(self, namespace: str, name: str, metric: str, result: str) -> None:
        """Count one canary analysis measurement of one metric."""
        self.analysis_measurements_total.labels(namespace=namespace, name=name, metric=metric, result=result).inc()

    def count_api_question(self, verb: str, kind: str, code: str) -> None:
        """Count a request that changes nothing though its verb is a write
        (a TokenReview or SubjectAccessReview ``create`` asks a question):
        it stays out of ``disvc_api_writes_total``."""
        self.api_requests_total.labels(verb=verb, kind=kind, code=code).inc()


def metric_names() -> frozenset[str]:
    """Every family name ``Metrics`` exports, as Prometheus shows it
    (counters with ``_total``; histograms without ``_bucket``/``_sum``/``_count``)."""
    registry = CollectorRegistry()
    Metrics(registry)
    return frozenset(
        family.name + "_total" if family.type == "counter" else family.name for family in registry.collect()
    )


@dataclass(frozen=True, slots=True)
class DisvcState:
    """One DISVC as the per-DISVC gauges show it."""

    namespace: str
    name: str
    replicas: int
    ready_replicas: int
    stalled: bool
    analysis_step: int = 0
    """The step a canary under analysis is at (``status.analysis.step``); 0 without one."""
    canary_weight: int = 0
    """The canary's share of external requests in percent; 0 without a canary."""


class _DisvcStateCollector(Collector):
    """``disvc_replicas``, ``disvc_ready_replicas`` and ``disvc_rollout_stalled``,
    built at scrape time from the DISVCs cached then (as kube-state-metrics
    does). No series is kept between scrapes, so a deleted DISVC's series go
    with it and thousands of DISVCs cost nothing here: labelled gauges held
    about 10 MiB for 5000 DISVCs, and one entry per DISVC ever seen until
    its delete was handled."""

    def __init__(self, states: Callable[[], Iterable[DisvcState]]) -> None:
        self._states = states

    def _families(self) -> tuple[GaugeMetricFamily, ...]:
        labels = ["namespace", "name"]
        return (
            GaugeMetricFamily("disvc_replicas", "Desired replicas per DistributedInferenceService", labels=labels),
            GaugeMetricFamily("disvc_ready_replicas", "Ready replicas per DistributedInferenceService", labels=labels),
            GaugeMetricFamily(
                "disvc_rollout_stalled",
                "1 while a DistributedInferenceService's rollout or scale-up is past its progress deadline",
                labels=labels,
            ),
            GaugeMetricFamily(
                "disvc_analysis_step",
                "The step a canary under automated analysis is at (0: no analysis running)",
                labels=labels,
            ),
            GaugeMetricFamily(
                "disvc_canary_weight_percent",
                "Share of external requests the canary generation takes, in percent",
                labels=labels,
            ),
        )

    def describe(self) -> Iterator[Metric]:
        return iter(self._families())

    def collect(self) -> Iterator[Metric]:
        families = self._families()
        replicas, ready, stalled, step, weight = families
        for state in self._states():
            labels = [state.namespace, state.name]
            replicas.add_metric(labels, state.replicas)
            ready.add_metric(labels, state.ready_replicas)
            stalled.add_metric(labels, 1 if state.stalled else 0)
            step.add_metric(labels, state.analysis_step)
            weight.add_metric(labels, state.canary_weight)
        return iter(families)


@dataclass(frozen=True, slots=True)
class MetricsServer:
    """A running ``/metrics`` endpoint."""

    host: str
    port: int
    """The bound port (the real one when asked for port 0)."""
    _httpd: WSGIServer

    def stop(self, timeout: float | None = None) -> bool:
        """Stop serving (at once: a scrape in flight is not waited for)."""
        self._httpd.shutdown()
        self._httpd.server_close()
        return True


def serve(address: BindAddress, registry: CollectorRegistry) -> MetricsServer:
    """Serve ``registry`` at ``http://<address>/metrics`` in a daemon thread
    (an empty host listens on every interface)."""
    host = address.host or "0.0.0.0"
    httpd, _thread = prometheus_client.start_http_server(address.port, addr=host, registry=registry)
    return MetricsServer(host=host, port=int(httpd.server_port), _httpd=httpd)
