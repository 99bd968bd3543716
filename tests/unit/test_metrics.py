"""Exported metric families, the workqueue provider and the /metrics endpoint."""

from __future__ import annotations

import os
import resource
import urllib.request
from pathlib import Path

from prometheus_client import CollectorRegistry, generate_latest

from disvc.controller import metrics as metrics_module
from disvc.controller.clock import FakeClock
from disvc.controller.metrics import DisvcState, Metrics, metric_names, serve
from disvc.controller.options import BindAddress
from disvc.controller.workqueue.limiters import ItemExponentialFailureRateLimiter
from disvc.controller.workqueue.rate_limiting import RateLimitingQueue
from disvc.testing.fixtures import eventually

REQUIRED = {
    "controller_runtime_reconcile_total",
    "controller_runtime_reconcile_errors_total",
    "controller_runtime_reconcile_time_seconds",
    "controller_runtime_active_workers",
    "controller_runtime_max_concurrent_reconciles",
    "workqueue_depth",
    "workqueue_adds_total",
    "workqueue_queue_duration_seconds",
    "workqueue_work_duration_seconds",
    "workqueue_retries_total",
    "workqueue_unfinished_work_seconds",
    "workqueue_longest_running_processor_seconds",
    "process_cpu_seconds_total",
    "process_resident_memory_bytes",
    "process_open_fds",
    "process_start_time_seconds",
    "disvc_managed",
    "disvc_ready_replicas",
    "disvc_replicas",
    "disvc_rollout_stalled",
    "disvc_api_writes_total",
    "disvc_leader",
}


def _exposed_families(registry: CollectorRegistry) -> set[str]:
    """Family names in the text exposition, less prometheus_client's
    ``*_created`` timestamps (no dashboard queries those)."""
    text = generate_latest(registry).decode()
    families = {line.split()[2] for line in text.splitlines() if line.startswith("# TYPE ")}
    return {family for family in families if not family.endswith("_created")}


def test_metric_names_lists_what_prometheus_scrapes() -> None:
    metrics = Metrics()
    # Labelled families only appear in the exposition once they have a series.
    metrics.reconcile_total.labels(controller="c", result="success")
    metrics.queue_metrics_provider().depth("q")
    names = metric_names()

    assert REQUIRED <= names
    assert _exposed_families(metrics.registry) <= names


def test_every_family_is_named_as_prometheus_shows_it() -> None:
    registry = CollectorRegistry()
    metrics = Metrics(registry)
    metrics.reconcile_total.labels(controller="c", result="success").inc()
    metrics.reconcile_errors_total.labels(controller="c").inc()
    metrics.terminal_reconcile_errors_total.labels(controller="c").inc()
    metrics.reconcile_time_seconds.labels(controller="c").observe(0.1)
    metrics.active_workers.labels(controller="c").set(1)
    metrics.max_concurrent_reconciles.labels(controller="c").set(1)
    provider = metrics.queue_metrics_provider()
    provider.depth("q").inc()
    provider.adds("q").inc()
    provider.latency("q").observe(0.1)
    provider.work_duration("q").observe(0.1)
    provider.unfinished_work_seconds("q").set(1)
    provider.longest_running_processor_seconds("q").set(1)
    provider.retries("q").inc()
    metrics.read_disvc_states(lambda: [DisvcState("ns", "a", replicas=2, ready_replicas=1, stalled=False)])
    metrics.count_api_request("patch", "Service", "200")
    metrics.count_retry_after_wait("patch", "Service", 1.0)

    assert _exposed_families(registry) == metric_names()


def test_two_metrics_objects_do_not_share_values() -> None:
    first, second = Metrics(), Metrics()

    first.count_api_request("patch", "InferenceService", "200")

    labels = {"verb": "patch", "kind": "InferenceService"}
    assert first.registry.get_sample_value("disvc_api_writes_total", labels) == 1
    assert second.registry.get_sample_value("disvc_api_writes_total", labels) is None


def test_a_retry_after_wait_is_counted_with_its_seconds_by_verb_and_kind() -> None:
    metrics = Metrics()

    metrics.count_retry_after_wait("patch", "InferenceService", 3.0)
    metrics.count_retry_after_wait("patch", "InferenceService", 1.0)
    metrics.count_retry_after_wait("create", "Event", 2.0)

    read = metrics.registry.get_sample_value
    isvc = {"verb": "patch", "kind": "InferenceService"}
    assert read("disvc_api_retry_after_waits_total", isvc) == 2
    assert read("disvc_api_retry_after_wait_seconds_total", isvc) == 4.0
    assert read("disvc_api_retry_after_waits_total", {"verb": "create", "kind": "Event"}) == 1
    assert read("disvc_api_retry_after_wait_seconds_total", {"verb": "create", "kind": "Event"}) == 2.0


def test_per_disvc_series_follow_the_cache_at_each_scrape() -> None:
    metrics = Metrics()
    cached = [
        DisvcState("ns", "a", replicas=3, ready_replicas=2, stalled=True),
        DisvcState("ns", "b", replicas=1, ready_replicas=1, stalled=False),
    ]
    metrics.read_disvc_states(lambda: list(cached))
    read = metrics.registry.get_sample_value
    assert read("disvc_replicas", {"namespace": "ns", "name": "a"}) == 3
    assert read("disvc_ready_replicas", {"namespace": "ns", "name": "a"}) == 2
    assert read("disvc_rollout_stalled", {"namespace": "ns", "name": "a"}) == 1

    del cached[0]  # deleted: its series go with it, nothing to forget

    assert read("disvc_replicas", {"namespace": "ns", "name": "a"}) is None
    assert read("disvc_ready_replicas", {"namespace": "ns", "name": "a"}) is None
    assert read("disvc_rollout_stalled", {"namespace": "ns", "name": "a"}) is None
    assert read("disvc_ready_replicas", {"namespace": "ns", "name": "b"}) == 1
    assert read("disvc_rollout_stalled", {"namespace": "ns", "name": "b"}) == 0


def test_reconcile_time_buckets_span_milliseconds_to_a_minute() -> None:
    buckets = metrics_module.RECONCILE_TIME_BUCKETS

    assert list(buckets) == sorted(set(buckets))
    assert buckets[0] == 0.005 and buckets[-1] == 60.0


def test_the_workqueue_reports_through_the_provider() -> None:
    clock = FakeClock()
    metrics = Metrics()
    limiter: ItemExponentialFailureRateLimiter[str] = ItemExponentialFailureRateLimiter()
    queue = RateLimitingQueue(limiter, "disvc", clock=clock, metrics_provider=metrics.queue_metrics_provider())
    read = metrics.registry.get_sample_value
    labels = {"name": "disvc"}
    try:
        queue.add("ns/a")
        queue.add("ns/b")
        queue.add_rate_limited("ns/c")
        assert read("workqueue_depth", labels) == 2
        assert read("workqueue_retries_total", labels) == 1

        clock.step(2.0)
        queue.get()
        assert read("workqueue_queue_duration_seconds_sum", labels) == 2.0

        # The refresher thread reports in-flight work while it runs, not only at done().
        clock.step(5.0)
        eventually(lambda: _assert_equal(read("workqueue_longest_running_processor_seconds", labels), 5.0))

        queue.done("ns/a")
        assert read("workqueue_work_duration_seconds_sum", labels) == 5.0
    finally:
        queue.shut_down()


def _assert_equal(actual: object, expected: object) -> None:
    assert actual == expected


def test_serve_exposes_the_registry_on_an_ephemeral_port() -> None:
    metrics = Metrics()
    metrics.leader.set(1)

    server = serve(BindAddress("127.0.0.1", 0), metrics.registry)
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{server.port}/metrics", timeout=5) as response:
            body = response.read().decode()
    finally:
        server.stop()

    assert server.port != 0
    assert "disvc_leader 1.0" in body


def test_the_process_metrics_read_this_process() -> None:
    metrics = Metrics()
    read = metrics.registry.get_sample_value
    assert (read("process_resident_memory_bytes") or 0) > 1 << 20
    assert read("process_max_fds") == resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    # both count the descriptor that lists /proc/self/fd while it is open
    assert read("process_open_fds") == len(os.listdir("/proc/self/fd"))


def test_retries_count_a_requeue_a_reconcile_asked_for_as_the_readme_says() -> None:
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    [row] = [line for line in readme.splitlines() if line.startswith("| `workqueue_retries_total`")]
    assert "retries after a failure and requeues a reconcile asked for" in row
    metrics = Metrics()
    limiter: ItemExponentialFailureRateLimiter[str] = ItemExponentialFailureRateLimiter()
    queue = RateLimitingQueue(limiter, "disvc", clock=FakeClock(), metrics_provider=metrics.queue_metrics_provider())
    try:
        queue.add_after("ns/a", 30.0)  # the worker's answer to Result(requeue_after=30)
        queue.add_rate_limited("ns/b")  # its answer to a failure
        assert metrics.registry.get_sample_value("workqueue_retries_total", {"name": "disvc"}) == 2
    finally:
        queue.shut_down()
