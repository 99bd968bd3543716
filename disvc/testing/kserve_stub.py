"""A stand-in for KServe's controller: it only reports InferenceServices ready.

The DISVC controller creates InferenceServices and waits for KServe to mark
them ``Ready`` before it moves traffic (SPEC "Status", "Rolling update").
Neither the loopback API nor envtest runs KServe, so this thread plays its
part: it watches InferenceServices and writes the ``status`` KServe would
write once the predictor is up, through the status subresource:

- ``conditions``: ``IngressReady``, ``PredictorReady`` and ``Ready``;
- ``url`` ``http://<name>-<namespace>.<domain>`` and ``address.url``;
- ``observedGeneration``: the generation it judged.

``mode`` chooses the outcome: ``ready`` (the default), ``fail``
(``Ready=False`` with a reason, as a model that cannot load) or ``never``
(status left alone, as a predictor still pulling its image). ``ready_after``
delays the verdict for each generation it sees, so tests can observe the
in-between state. A new ``metadata.generation`` is judged again.

It talks to the API with the plain ``kubernetes`` client, like KServe's own
controller would, and survives what a long watch meets: the stream ending,
the connection dropping, and ``410 Gone`` (it then lists afresh). It uses its
own ``ApiClient`` with user agent ``kserve-stub`` so request counts on the
loopback API can tell its traffic from the controller's.
"""

from __future__ import annotations

import heapq
import json
import logging
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import TracebackType
from typing import Any, Final, Literal, Self

from kubernetes import client
from kubernetes.client.exceptions import ApiException

GROUP: Final = "serving.kserve.io"
VERSION: Final = "v1beta1"
PLURAL: Final = "inferenceservices"
USER_AGENT: Final = "kserve-stub"
FAIL_REASON: Final = "ModelLoadFailed"
"""The reason on ``Ready=False`` in mode ``fail``."""

Mode = Literal["ready", "never", "fail"]

log = logging.getLogger(__name__)

JsonObject = dict[str, Any]


@dataclass(order=True, slots=True)
class _Due:
    """One verdict to write at ``at`` (monotonic seconds)."""

    at: float
    namespace: str = field(compare=False)
    name: str = field(compare=False)
    uid: str = field(compare=False)
    generation: int = field(compare=False)


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class KServeStub:
    """Marks InferenceServices ready (or failed) as KServe's controller would.

    ``start()`` returns at once; the first verdicts follow within
    ``ready_after`` seconds of the stub seeing each object. ``stop()`` ends
    both threads and closes the open watch.
    """

    def __init__(
        self,
        api_client: client.ApiClient,
        mode: Mode = "ready",
        ready_after: float = 0.0,
        namespace: str | None = None,
        domain: str = "example.com",
    ) -> None:
        if mode not in ("ready", "never", "fail"):
            raise ValueError(f"unknown mode {mode!r}")
        # A client of our own: its own connection pool (the watch holds one
        # connection for minutes) and its own user agent.
        self._client = client.ApiClient(configuration=api_client.configuration)
        self._client.user_agent = USER_AGENT
        self._api = client.CustomObjectsApi(self._client)
        self.mode: Mode = mode
        self.ready_after = ready_after
        self.namespace = namespace
        self.domain = domain
        self.marked = 0
        """How many status writes succeeded (for tests of the stub itself)."""
        self.observed = 0
        """How many InferenceService states it has looked at (listed or watched),
        so a test can wait until the stub has seen an object before asserting
        that it left it alone."""
        self._stopping = threading.Event()
        self._lock = threading.Condition()
        self._due: list[_Due] = []
        self._scheduled: set[tuple[str, int]] = set()
        """(uid, generation) waiting in ``_due``: seen again, it is not rescheduled."""
        self._judged: dict[str, int] = {}
        """uid -> the generation whose verdict was written."""
        self._response: Any = None
        self._threads: list[threading.Thread] = []

    # --- lifecycle ---------------------------------------------------------

    def start(self) -> Self:
        self._threads = [
            threading.Thread(target=self._watch_forever, name="kserve-stub-watch", daemon=True),
            threading.Thread(target=self._mark_forever, name="kserve-stub-mark", daemon=True),
        ]
        for thread in self._threads:
            thread.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        self._stopping.set()
        with self._lock:
            self._lock.notify_all()
        self._close_stream()
        for thread in self._threads:
            thread.join(timeout)
        self._client.close()  # type: ignore[no-untyped-call]

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    # --- list + watch ------------------------------------------------------

    def _watch_forever(self) -> None:
        """List, then watch from the list's resourceVersion; relist on 410,
        re-watch from the last seen version when the stream just ends."""
        resource_version: str | None = None
        while not self._stopping.is_set():
            try:
                if resource_version is None:
                    resource_version = self._list()
                resource_version = self._watch(resource_version)
            except ApiException as error:
                if error.status == 410:
                    resource_version = None  # our version was compacted away: relist
                    continue
                self._pause_after_failure(f"API error {error.status}")
            except Exception as error:  # noqa: BLE001 - connection resets and the like
                if self._stopping.is_set():
                    return
                # The stream may have lost events mid-way; a relist is the only safe resume.
                resource_version = None
                self._pause_after_failure(repr(error))

    def _pause_after_failure(self, what: str) -> None:
        log.debug("KServe stub watch failed, retrying: %s", what)
        self._stopping.wait(0.2)

    def _list(self) -> str:
        listing: JsonObject
        if self.namespace:
            listing = self._api.list_namespaced_custom_object(  # type: ignore[assignment]
                GROUP, VERSION, self.namespace, PLURAL
            )
        else:
            listing = self._api.list_cluster_custom_object(  # type: ignore[assignment]
                GROUP, VERSION, PLURAL
            )
        for item in listing.get("items", []):
            self._observe(item)
        version: str = listing["metadata"]["resourceVersion"]
        return version

    def _watch(self, resource_version: str) -> str | None:
        """Follow one watch stream; the version to resume from when it ends."""
        arguments: dict[str, Any] = {
            "watch": True,
            "resource_version": resource_version,
            "allow_watch_bookmarks": True,
            "timeout_seconds": 300,
            "_preload_content": False,
        }
        response: Any
        if self.namespace:
            response = self._api.list_namespaced_custom_object(GROUP, VERSION, self.namespace, PLURAL, **arguments)
        else:
            response = self._api.list_cluster_custom_object(GROUP, VERSION, PLURAL, **arguments)
        self._response = response
        try:
            if not 200 <= response.status <= 299:
                self._client.response_deserialize(response, {})  # raises ApiException
            if self._stopping.is_set():
                return resource_version
            for event in _events(response):
                kind, obj = event.get("type"), event.get("object") or {}
                if kind == "ERROR":
                    raise ApiException(status=obj.get("code"), reason=obj.get("message"))
                resource_version = obj.get("metadata", {}).get("resourceVersion", resource_version)
                if kind in ("ADDED", "MODIFIED"):
                    self._observe(obj)
                elif kind == "DELETED":
                    self._forget(obj)
            return resource_version
        finally:
            self._response = None
            response.release_conn()

    def _close_stream(self) -> None:
        response = self._response
        if response is None:
            return
        # shutdown() unblocks a read in progress on another thread; close() may not.
        shutdown = getattr(response, "shutdown", None)
        try:
            if shutdown is not None:
                shutdown()
            else:
                response.close()
        except Exception as error:  # noqa: BLE001 - already closed is fine
            log.debug("KServe stub could not close its watch: %r", error)

    # --- judging -----------------------------------------------------------

    def _observe(self, isvc: JsonObject) -> None:
        self.observed += 1
        if self.mode == "never":
            return
        metadata = isvc.get("metadata", {})
        uid, generation = metadata.get("uid", ""), int(metadata.get("generation", 0))
        if metadata.get("deletionTimestamp") or self._has_verdict(isvc, generation):
            return
        with self._lock:
            if self._judged.get(uid) == generation or (uid, generation) in self._scheduled:
                return
            self._scheduled.add((uid, generation))
            heapq.heappush(
                self._due,
                _Due(
                    time.monotonic() + self.ready_after,
                    metadata["namespace"],
                    metadata["name"],
                    uid,
                    generation,
                ),
            )
            self._lock.notify_all()

    def _has_verdict(self, isvc: JsonObject, generation: int) -> bool:
        status = isvc.get("status") or {}
        if status.get("observedGeneration") != generation:
            return False
        ready = next((c for c in status.get("conditions") or [] if c.get("type") == "Ready"), None)
        wanted = "True" if self.mode == "ready" else "False"
        return ready is not None and ready.get("status") == wanted

    def _forget(self, isvc: JsonObject) -> None:
        uid = isvc.get("metadata", {}).get("uid", "")
        with self._lock:
            self._judged.pop(uid, None)

    def _mark_forever(self) -> None:
        while not self._stopping.is_set():
            with self._lock:
                while not self._stopping.is_set() and (not self._due or self._due[0].at > time.monotonic()):
                    wait = self._due[0].at - time.monotonic() if self._due else None
                    self._lock.wait(wait)
                if self._stopping.is_set():
                    return
                due = heapq.heappop(self._due)
            try:
                self._write_status(due)
            except ApiException as error:
                if error.status != 404:  # 404: deleted meanwhile, nothing to report
                    log.debug("KServe stub status write failed: %s", error.status)
                    self._retry(due)
                    continue
            except Exception as error:  # noqa: BLE001 - connection trouble: try again
                log.debug("KServe stub status write failed: %r", error)
                self._retry(due)
                continue
            with self._lock:
                self._scheduled.discard((due.uid, due.generation))
                self._judged[due.uid] = due.generation

    def _retry(self, due: _Due) -> None:
        with self._lock:
            due.at = time.monotonic() + 0.1
            heapq.heappush(self._due, due)

    def status_for(self, namespace: str, name: str, generation: int) -> JsonObject:
        """The status KServe would report for this ISVC in this stub's mode."""
        now = _now()
        if self.mode == "fail":
            message = "Model failed to load: stub in mode fail"

            def condition(kind: str) -> JsonObject:
                return {
                    "type": kind,
                    "status": "False",
                    "reason": FAIL_REASON,
                    "message": message,
                    "lastTransitionTime": now,
                }

            return {
                "observedGeneration": generation,
                "conditions": [condition("PredictorReady"), condition("Ready")],
            }
        conditions = [
            {"type": kind, "status": "True", "lastTransitionTime": now}
            for kind in ("IngressReady", "PredictorReady", "Ready")
        ]
        return {
            "observedGeneration": generation,
            "url": f"http://{name}-{namespace}.{self.domain}",
            "address": {"url": f"http://{name}-predictor.{namespace}.svc.cluster.local"},
            "conditions": conditions,
        }

    def _write_status(self, due: _Due) -> None:
        body = {"status": self.status_for(due.namespace, due.name, due.generation)}
        self._api.patch_namespaced_custom_object_status(
            GROUP, VERSION, due.namespace, PLURAL, due.name, body,
            _content_type="application/merge-patch+json",
        )  # fmt: skip
        self.marked += 1


def _events(response: Any) -> Iterator[JsonObject]:
    """The JSON events of a watch response, one per line."""
    buffer = b""
    for chunk in response.stream(amt=None, decode_content=False):
        buffer += chunk
        while b"\n" in buffer:
            line, buffer = buffer.split(b"\n", 1)
            if line.strip():
                yield json.loads(line)
