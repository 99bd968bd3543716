"""Workers: take a key from the queue, reconcile it, schedule it again.

This is the one place that turns a reconcile's outcome into queue
operations (the reconciler never sees the queue), as controller-runtime's
``reconcileHandler`` does:

- ``Result(requeue_after=s)`` with ``s > 0``: forget the failures, look again
  in ``s`` seconds;
- ``Result(requeue_after=0)``: look again soon, rate limited;
- ``Result()``: forget; the next watch event brings the key back;
- ``TransientError``: back off (or wait exactly ``retry_after`` if the API
  server said how long, counted as one of its ``Retry-After`` waits);
- ``PermanentError``: the API refused the request as it stands (403, 422,
  a webhook's denial): back off, as for a transient error, but log an
  error; what refused it may be fixed (a quota raised) without any event;
- ``NotLeaderError``: a write was refused because this replica may no
  longer lead; forget the key (the next leader starts from its caches);
- any other exception: a bug or a surprise. It is caught only here, logged
  once with its traceback, counted and retried with backoff, so one bad
  object cannot stop the controller.

Each reconcile gets its own log context (``controller``, ``namespace``,
``name``, ``reconcileID``) and is measured with controller-runtime's
metrics.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable
from typing import Final

import structlog
from structlog.typing import FilteringBoundLogger

from disvc.builders.types import ObjectKey
from disvc.controller.errors import ConflictError, NotLeaderError, PermanentError, TransientError
from disvc.controller.metrics import RECONCILE_RESULTS, Metrics, ReconcileResult
from disvc.controller.reconcile import Reconciler
from disvc.controller.workqueue.rate_limiting import RateLimitingQueue

CONTROLLER_NAME: Final = "distributedinferenceservice"


class Worker:
    """Runs reconciles for the keys of one queue on a pool of threads."""

    def __init__(
        self,
        queue: RateLimitingQueue[str],
        reconciler: Reconciler,
        metrics: Metrics,
        *,
        workers: int = 1,
        logger_factory: Callable[[], FilteringBoundLogger] = structlog.get_logger,
        controller_name: str = CONTROLLER_NAME,
    ) -> None:
        if workers < 1:
            raise ValueError("at least one worker is needed")
        self._workers = workers
        self._queue = queue
        self._reconciler = reconciler
        self._metrics = metrics
        self._log = logger_factory()
        self._controller = controller_name
        self._threads: list[threading.Thread] = []
        self._stopping = threading.Event()
        # Present every series from the start so rate() has a zero to begin at.
        for result in RECONCILE_RESULTS:
            metrics.reconcile_total.labels(controller=controller_name, result=result)
        metrics.reconcile_errors_total.labels(controller=controller_name)
        metrics.terminal_reconcile_errors_total.labels(controller=controller_name)
        metrics.active_workers.labels(controller=controller_name).set(0)

    def start(self) -> None:
        """Start the worker threads, each taking keys until ``stop``."""
        self._metrics.max_concurrent_reconciles.labels(controller=self._controller).set(self._workers)
        for index in range(self._workers):
            thread = threading.Thread(target=self.run, name=f"{self._controller}-worker-{index}", daemon=True)
            thread.start()
            self._threads.append(thread)

    def stop(self, timeout: float) -> bool:
        """Let each worker finish the reconcile it is running, then end; True
        if all ended within ``timeout`` seconds. Keys still queued are left."""
        self._stopping.set()
        # A worker blocked in get() cannot see ``_stopping``; shutting the
        # queue down is what releases it.
        self._queue.shut_down()
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        return not any(thread.is_alive() for thread in self._threads)

    def run(self) -> None:
        """Process keys until ``stop`` (or the queue shuts down)."""
        while not self._stopping.is_set() and self.process_next_item():
            pass

    def process_next_item(self) -> bool:
        """Reconcile one key (blocking until there is one); False once the
        queue is shut down."""
        key, shutdown = self._queue.get()
        if shutdown or key is None:
            return False
        active = self._metrics.active_workers.labels(controller=self._controller)
        active.inc()
        try:
            self._handle(key)
        finally:
            active.dec()
            self._queue.done(key)
        return True

    def _handle(self, key: str) -> None:
        try:
            object_key = ObjectKey.parse(key)
        except ValueError:
            # forget: a malformed key never succeeds, so retrying only costs
            self._queue.forget(key)
            self._log.error("Dropping a key that is not namespace/name", controller=self._controller, key=key)
            return
        fields = {
            "controller": self._controller,
            "namespace": object_key.namespace,
            "name": object_key.name,
            "reconcileID": str(uuid.uuid4()),
        }
        log = self._log.bind(**fields)
        started = time.perf_counter()
        try:
            # Context variables carry the same fields to every line the
            # reconciler and the writer log during this reconcile.
            with structlog.contextvars.bound_contextvars(**fields):
                result = self._reconciler.reconcile(object_key)
        except NotLeaderError as error:
            # Leadership is gone (the manager is stopping us): whoever leads
            # next reconciles every key from its own caches.
            self._queue.forget(key)
            self._count("error")
            log.warning("Reconcile stopped: no longer leading", error=str(error))
        except PermanentError as error:
            # The same request would fail again, but what refused it (a
            # quota, a webhook, RBAC) can be fixed without any event reaching
            # us: retry with the per-key backoff (up to ~17 min apart), never
            # wait for the resync.
            self._queue.add_rate_limited(key)
            self._count("error", terminal=True)
            log.error("Reconcile refused by the API, retried with backoff", error=str(error), reason=error.reason)
        except TransientError as error:
            self._count("error")
            if error.retry_after is not None:
                # The server said when; backing off on top would wait twice.
                self._queue.forget(key)
                self._queue.add_after(key, error.retry_after)
                self._metrics.count_retry_after_wait(error.verb or "", error.kind or "", error.retry_after)
            else:
                self._queue.add_rate_limited(key)
            # A 409 is optimistic concurrency doing its job (a write raced
            # another, or read a stale cache): routine, so only at debug.
            log_retry = log.debug if isinstance(error, ConflictError) else log.warning
            log_retry("Reconcile failed and will be retried", error=str(error), retryAfter=error.retry_after)
        except Exception:
            self._count("error")
            self._queue.add_rate_limited(key)
            log.exception("Reconcile raised an unexpected error")
        else:
            if result.requeue_after is None:
                self._queue.forget(key)
                self._count("success")
            elif result.requeue_after > 0:
                self._queue.forget(key)
                self._queue.add_after(key, result.requeue_after)
                self._count("requeue_after")
            else:
                # "Again now" would spin on a key that never settles; rate limit it.
                self._queue.add_rate_limited(key)
                self._count("requeue")
            log.debug("Reconcile finished", requeueAfter=result.requeue_after)
        finally:
            self._metrics.reconcile_time_seconds.labels(controller=self._controller).observe(
                time.perf_counter() - started
            )

    def _count(self, result: ReconcileResult, *, terminal: bool = False) -> None:
        self._metrics.reconcile_total.labels(controller=self._controller, result=result).inc()
        if result == "error":
            self._metrics.reconcile_errors_total.labels(controller=self._controller).inc()
        if terminal:
            self._metrics.terminal_reconcile_errors_total.labels(controller=self._controller).inc()
