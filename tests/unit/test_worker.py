"""The worker maps each reconcile outcome onto the queue once, measures it
and logs it with the reconcile's own context."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import structlog
from pytest_mock import MockerFixture

from disvc.builders.types import ObjectKey
from disvc.controller.clock import FakeClock
from disvc.controller.errors import ConflictError, NotFoundError, PermanentError, TooManyRequestsError
from disvc.controller.metrics import Metrics
from disvc.controller.reconcile import Result
from disvc.controller.worker import CONTROLLER_NAME, Worker
from disvc.controller.workqueue.limiters import ItemExponentialFailureRateLimiter
from disvc.controller.workqueue.rate_limiting import RateLimitingQueue
from disvc.testing.fixtures import eventually

BACKOFF_BASE = 1.0


@dataclass
class Env:
    clock: FakeClock
    metrics: Metrics
    queue: RateLimitingQueue[str]
    reconciler: Any  # a pytest-mock Mock standing in for the Reconciler protocol
    make_worker: Callable[..., Worker]

    def sample(self, name: str, **labels: str) -> float:
        value = self.metrics.registry.get_sample_value(name, {"controller": CONTROLLER_NAME, **labels})
        assert value is not None, f"{name}{labels} is not exported"
        return value

    def ready(self, count: int) -> None:
        assert len(self.queue) == count


@pytest.fixture(autouse=True)
def _quiet_logs() -> Iterator[None]:
    # Rendering tracebacks to the console is slow and noisy; tests that read
    # log lines open their own capture inside this one.
    with structlog.testing.capture_logs():
        yield


@pytest.fixture
def env(mocker: MockerFixture) -> Iterator[Env]:
    clock = FakeClock()
    metrics = Metrics()
    limiter: ItemExponentialFailureRateLimiter[str] = ItemExponentialFailureRateLimiter(base=BACKOFF_BASE, max=60.0)
    queue = RateLimitingQueue(limiter, "disvc", clock=clock, metrics_provider=metrics.queue_metrics_provider())
    reconciler = mocker.Mock(spec_set=["reconcile"])
    reconciler.reconcile.return_value = Result()

    def make_worker(workers: int = 1) -> Worker:
        return Worker(queue, reconciler, metrics, workers=workers, logger_factory=structlog.get_logger)

    yield Env(clock, metrics, queue, reconciler, make_worker)
    queue.shut_down()


def _reconcile_once(env: Env, key: str = "ns/a") -> None:
    env.queue.add(key)
    assert env.make_worker().process_next_item() is True


def test_the_reconciler_gets_the_key_as_an_object_key(env: Env) -> None:
    _reconcile_once(env, "team-a/llama")

    env.reconciler.reconcile.assert_called_once_with(ObjectKey("team-a", "llama"))


def test_success_forgets_failures_and_does_not_requeue(env: Env) -> None:
    env.queue.rate_limiter.when("ns/a")

    _reconcile_once(env)

    assert env.queue.num_requeues("ns/a") == 0
    assert len(env.queue) == 0
    assert env.queue.waiting() == 0
    assert env.sample("controller_runtime_reconcile_total", result="success") == 1


def test_requeue_after_forgets_failures_and_comes_back_after_the_delay(env: Env) -> None:
    env.queue.rate_limiter.when("ns/a")
    env.reconciler.reconcile.return_value = Result(requeue_after=30.0)

    _reconcile_once(env)

    assert env.queue.num_requeues("ns/a") == 0
    assert env.queue.waiting() == 1
    env.clock.step(29.0)
    assert len(env.queue) == 0
    env.clock.step(1.0)
    eventually(lambda: env.ready(1))
    assert env.sample("controller_runtime_reconcile_total", result="requeue_after") == 1


def test_requeue_after_zero_comes_back_rate_limited(env: Env) -> None:
    env.reconciler.reconcile.return_value = Result(requeue_after=0.0)

    _reconcile_once(env)

    assert env.queue.num_requeues("ns/a") == 1
    env.clock.step(BACKOFF_BASE)
    eventually(lambda: env.ready(1))
    assert env.sample("controller_runtime_reconcile_total", result="requeue") == 1


def test_transient_error_backs_off(env: Env) -> None:
    env.reconciler.reconcile.side_effect = ConflictError("stale read", status=409)

    _reconcile_once(env)
    env.clock.step(BACKOFF_BASE)
    eventually(lambda: env.ready(1))
    _reconcile_once_more(env)

    assert env.queue.num_requeues("ns/a") == 2
    assert env.sample("controller_runtime_reconcile_total", result="error") == 2
    assert env.sample("controller_runtime_reconcile_errors_total") == 2


def _reconcile_once_more(env: Env) -> None:
    assert env.make_worker().process_next_item() is True


def test_transient_error_with_retry_after_waits_exactly_that_long(env: Env) -> None:
    env.queue.rate_limiter.when("ns/a")
    env.reconciler.reconcile.side_effect = TooManyRequestsError("slow down", status=429, retry_after=7.0)

    _reconcile_once(env)

    # Backoff would have added its own delay on top; the server's word is enough.
    assert env.queue.num_requeues("ns/a") == 0
    env.clock.step(6.0)
    assert len(env.queue) == 0
    env.clock.step(1.0)
    eventually(lambda: env.ready(1))


def test_a_retry_after_requeue_is_counted_as_a_wait_under_the_request_that_got_it(env: Env) -> None:
    env.reconciler.reconcile.side_effect = TooManyRequestsError(
        "slow down", status=429, retry_after=3.0, verb="patch", kind="InferenceService"
    )

    _reconcile_once(env)

    read = env.metrics.registry.get_sample_value
    labels = {"verb": "patch", "kind": "InferenceService"}
    assert read("disvc_api_retry_after_waits_total", labels) == 1
    assert read("disvc_api_retry_after_wait_seconds_total", labels) == 3.0


def test_a_transient_error_without_retry_after_is_no_retry_after_wait(env: Env) -> None:
    env.reconciler.reconcile.side_effect = TooManyRequestsError(
        "slow down", status=429, retry_after=None, verb="patch", kind="InferenceService"
    )

    _reconcile_once(env)

    assert env.metrics.registry.get_sample_value(
        "disvc_api_retry_after_waits_total", {"verb": "patch", "kind": "InferenceService"}
    ) is None


def test_a_refusal_is_retried_with_backoff_and_logged_as_an_error(env: Env) -> None:
    """A 403 from a quota or a webhook's denial can be fixed by an admin
    without any event reaching us: back off and try again, never drop the key
    until the resync (issue 23 row 3)."""
    env.queue.rate_limiter.when("ns/a")
    env.reconciler.reconcile.side_effect = PermanentError("exceeded quota", status=403, reason="Forbidden")

    with structlog.testing.capture_logs() as logs:
        _reconcile_once(env)

    assert env.queue.num_requeues("ns/a") == 2
    assert env.queue.waiting() == 1
    assert env.sample("controller_runtime_reconcile_total", result="error") == 1
    assert env.sample("controller_runtime_terminal_reconcile_errors_total") == 1
    [line] = logs
    assert line["log_level"] == "error"
    assert line["reason"] == "Forbidden"


def test_unexpected_exception_is_logged_once_with_traceback_and_retried(env: Env) -> None:
    env.reconciler.reconcile.side_effect = KeyError("spec")

    with structlog.testing.capture_logs() as logs:
        _reconcile_once(env)

    [line] = logs
    assert line["log_level"] == "error"
    assert line["exc_info"]
    assert env.queue.num_requeues("ns/a") == 1
    assert env.sample("controller_runtime_reconcile_errors_total") == 1
    env.clock.step(BACKOFF_BASE)
    eventually(lambda: env.ready(1))


def test_a_controller_error_without_a_retry_class_is_retried_with_backoff(env: Env) -> None:
    env.reconciler.reconcile.side_effect = NotFoundError("no such resource type")

    _reconcile_once(env)

    assert env.queue.num_requeues("ns/a") == 1


@pytest.mark.parametrize("key", ["no-slash", "ns/", "/name", ""])
def test_a_malformed_key_is_dropped_without_reconciling(env: Env, key: str) -> None:
    env.queue.rate_limiter.when(key)

    _reconcile_once(env, key)

    env.reconciler.reconcile.assert_not_called()
    assert env.queue.num_requeues(key) == 0
    assert env.queue.waiting() == 0


def test_the_key_is_released_even_when_reconcile_fails(env: Env) -> None:
    env.reconciler.reconcile.side_effect = RuntimeError("boom")

    _reconcile_once(env)
    env.queue.add("ns/a")

    # A key still held would wait for done(); a released one is handed out.
    assert len(env.queue) == 1


def test_log_lines_carry_the_reconcile_context(env: Env) -> None:
    env.reconciler.reconcile.side_effect = ConflictError("stale read", status=409)

    with structlog.testing.capture_logs() as logs:
        _reconcile_once(env, "team-a/llama")
        env.clock.step(BACKOFF_BASE)
        eventually(lambda: env.ready(1))
        _reconcile_once_more(env)

    assert len(logs) == 2
    for line in logs:
        assert line["controller"] == CONTROLLER_NAME
        assert line["namespace"] == "team-a"
        assert line["name"] == "llama"
        assert line["event"][0].isupper() and not line["event"].endswith(".")
        uuid.UUID(line["reconcileID"])
    assert logs[0]["reconcileID"] != logs[1]["reconcileID"]


def test_lines_the_reconciler_logs_carry_the_same_reconcile_id(env: Env) -> None:
    def reconcile(key: ObjectKey) -> Result:
        structlog.get_logger("disvc.controller.client").info("Applied object", action="apply")
        raise ConflictError("stale read", status=409)

    env.reconciler.reconcile.side_effect = reconcile

    with structlog.testing.capture_logs(processors=[structlog.contextvars.merge_contextvars]) as logs:
        _reconcile_once(env, "team-a/llama")

    applied, failed = logs
    assert applied["event"] == "Applied object"
    assert (applied["namespace"], applied["name"]) == ("team-a", "llama")
    assert applied["reconcileID"] == failed["reconcileID"]


def test_metrics_after_a_few_reconciles(env: Env) -> None:
    active_during_reconcile: list[float] = []

    def reconcile(key: ObjectKey) -> Result:
        active_during_reconcile.append(env.sample("controller_runtime_active_workers"))
        if key.name == "broken":
            raise ConflictError("stale", status=409)
        return Result(requeue_after=60.0) if key.name == "later" else Result()

    env.reconciler.reconcile.side_effect = reconcile
    worker = env.make_worker()
    for key in ("ns/a", "ns/b", "ns/broken", "ns/later"):
        env.queue.add(key)
    for _ in range(4):
        worker.process_next_item()

    assert active_during_reconcile == [1.0] * 4
    assert env.sample("controller_runtime_active_workers") == 0
    assert env.sample("controller_runtime_reconcile_total", result="success") == 2
    assert env.sample("controller_runtime_reconcile_total", result="error") == 1
    assert env.sample("controller_runtime_reconcile_total", result="requeue_after") == 1
    assert env.sample("controller_runtime_reconcile_total", result="requeue") == 0
    assert env.sample("controller_runtime_reconcile_errors_total") == 1
    assert env.sample("controller_runtime_reconcile_time_seconds_count") == 4
    workqueue = {"name": "disvc"}
    registry = env.metrics.registry
    assert registry.get_sample_value("workqueue_adds_total", workqueue) == 4
    assert registry.get_sample_value("workqueue_retries_total", workqueue) == 2
    assert registry.get_sample_value("workqueue_work_duration_seconds_count", workqueue) == 4


def test_started_workers_reconcile_concurrently_and_stop_after_their_current_key(env: Env) -> None:
    both_inside = threading.Barrier(2, timeout=5)

    def reconcile(key: ObjectKey) -> Result:
        both_inside.wait()  # breaks (and fails the test) unless two run at once
        return Result()

    env.reconciler.reconcile.side_effect = reconcile
    worker = env.make_worker(workers=2)

    worker.start()
    env.queue.add("ns/a")
    env.queue.add("ns/b")

    eventually(lambda: _assert_equal(env.reconciler.reconcile.call_count, 2))
    assert env.sample("controller_runtime_max_concurrent_reconciles") == 2
    assert worker.stop(5.0) is True
    assert env.queue.shutting_down()
    assert not both_inside.broken


def test_stop_leaves_queued_keys_and_waits_for_the_running_reconcile(env: Env) -> None:
    inside, release = threading.Event(), threading.Event()

    def reconcile(key: ObjectKey) -> Result:
        inside.set()
        release.wait(5)
        return Result()

    env.reconciler.reconcile.side_effect = reconcile
    worker = env.make_worker()
    worker.start()
    env.queue.add("ns/a")
    inside.wait(5)
    env.queue.add("ns/b")

    assert worker.stop(0.0) is False  # ns/a is still being reconciled
    release.set()
    assert worker.stop(5.0) is True
    assert env.reconciler.reconcile.call_count == 1


def _assert_equal(actual: object, expected: object) -> None:
    assert actual == expected


def test_process_next_item_reports_a_shut_down_queue(env: Env) -> None:
    env.queue.shut_down()

    assert env.make_worker().process_next_item() is False


@pytest.mark.parametrize(
    ("error", "level"),
    [
        (ConflictError("stale read", status=409), "debug"),
        (TooManyRequestsError("slow down", status=429, retry_after=None), "warning"),
    ],
    ids=["conflict", "throttled"],
)
def test_a_conflict_is_routine_and_logged_at_debug_other_retries_at_warning(
    env: Env, error: Exception, level: str
) -> None:
    env.reconciler.reconcile.side_effect = error

    with structlog.testing.capture_logs() as logs:
        _reconcile_once(env)

    [line] = logs
    assert (line["event"], line["log_level"]) == ("Reconcile failed and will be retried", level)
    assert env.queue.num_requeues("ns/a") == 1
