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

With ``pods`` (a :class:`~disvc.testing.dataplane.launcher.PodLauncher`) the
verdict comes from real model servers instead of ``mode``: each ISVC seen
gets predictor pods, ``Ready=True`` is written once they are all Ready, and
``Ready=False`` (reason ``ModelLoadFailed``, the server's last stderr line as
message) once one exited before it was ever Ready. The verdict is revisited
while the generation is current, so a later change is reported too. A
deleted ISVC's pods are ended.

It talks to the API with the plain ``kubernetes`` client, like KServe's own
controller would, and survives what a long watch meets: the stream ending,
the connection dropping, and ``410 Gone`` (it then lists afresh). It uses its
own ``ApiClient`` with user agent ``kserve-stub`` so request counts on the
loopback API can tell its traffic from the controller's.
"""

from __future__ import annotations

import heapq
import logging
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Final, Literal, Self

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from disvc.testing.informer import watch_events
from disvc.testing.running import Running

if TYPE_CHECKING:
    from disvc.testing.dataplane.launcher import PodLauncher

GROUP: Final = "serving.kserve.io"
VERSION: Final = "v1beta1"
PLURAL: Final = "inferenceservices"
USER_AGENT: Final = "kserve-stub"
FAIL_REASON: Final = "ModelLoadFailed"
"""The reason on ``Ready=False`` in mode ``fail``."""

Mode = Literal["ready", "never", "fail"]

POD_POLL_SECONDS: Final = 0.2
"""How often pods still starting are looked at again."""
POD_RECHECK_SECONDS: Final = 1.0
"""How often a judged generation's pods are looked at again."""

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


class KServeStub(Running):
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
        pods: PodLauncher | None = None,
    ) -> None:
        if mode not in ("ready", "never", "fail"):
            raise ValueError(f"unknown mode {mode!r}")
        if pods is not None and mode != "ready":
            raise ValueError("with pods the verdict comes from the pods: mode must be 'ready'")
        self.pods = pods
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
        self._latest: dict[str, int] = {}
        """With pods: uid -> the newest generation seen (older ones are not judged)."""
        self._written: dict[str, tuple[int, tuple[str, str, str]]] = {}
        """With pods: uid -> (generation, verdict) last written."""
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
        items = listing.get("items", [])
        for item in items:
            self._observe(item)
        if self.pods is not None:
            # Deleted while no watch was open: no DELETED event will come.
            listed = {(i["metadata"]["namespace"], i["metadata"]["name"]) for i in items}
            for namespace, name in self.pods.isvcs():
                if (namespace, name) not in listed and self.namespace in (None, namespace):
                    self.pods.delete(namespace, name)
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
            for event in watch_events(response):
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
        if self.pods is not None and not metadata.get("deletionTimestamp"):
            self._ensure_pods(isvc)
            with self._lock:
                self._latest[uid] = max(generation, self._latest.get(uid, 0))
        elif metadata.get("deletionTimestamp") or self._has_verdict(isvc, generation):
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

    def _ensure_pods(self, isvc: JsonObject) -> None:
        """The ISVC's pods (a Deployment's, in Standard mode)."""
        assert self.pods is not None
        self.pods.ensure(isvc)

    def _has_verdict(self, isvc: JsonObject, generation: int) -> bool:
        status = isvc.get("status") or {}
        if status.get("observedGeneration") != generation:
            return False
        ready = next((c for c in status.get("conditions") or [] if c.get("type") == "Ready"), None)
        wanted = "True" if self.mode == "ready" else "False"
        return ready is not None and ready.get("status") == wanted

    def _forget(self, isvc: JsonObject) -> None:
        metadata = isvc.get("metadata", {})
        uid = metadata.get("uid", "")
        with self._lock:
            self._judged.pop(uid, None)
            self._latest.pop(uid, None)
            self._written.pop(uid, None)
        if self.pods is not None:
            self.pods.delete(metadata.get("namespace", ""), metadata.get("name", ""))

    def _mark_forever(self) -> None:
        while not self._stopping.is_set():
            with self._lock:
                while not self._stopping.is_set() and (not self._due or self._due[0].at > time.monotonic()):
                    wait = self._due[0].at - time.monotonic() if self._due else None
                    self._lock.wait(wait)
                if self._stopping.is_set():
                    return
                due = heapq.heappop(self._due)
            if self.pods is not None:
                self._judge_from_pods(due)
                continue
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

    def _retry(self, due: _Due, after: float = 0.1) -> None:
        with self._lock:
            due.at = time.monotonic() + after
            heapq.heappush(self._due, due)

    def _judge_from_pods(self, due: _Due) -> None:
        """Write what the ISVC's pods say, then look again later: pending pods
        soon, judged ones while their generation is the newest."""
        assert self.pods is not None
        with self._lock:
            if self._latest.get(due.uid) != due.generation:
                self._scheduled.discard((due.uid, due.generation))  # deleted or superseded
                return
        verdict = self.pods.state(due.namespace, due.name)
        if verdict[0] == "pending":
            self._retry(due, POD_POLL_SECONDS)
            return
        if self._written.get(due.uid) != (due.generation, verdict):
            failure = None if verdict[0] == "ready" else (verdict[1], verdict[2])
            try:
                self._write_status(due, failure)
            except ApiException as error:
                if error.status == 404:  # deleted meanwhile
                    with self._lock:
                        self._scheduled.discard((due.uid, due.generation))
                    return
                log.debug("KServe stub status write failed: %s", error.status)
                self._retry(due)
                return
            except Exception as error:  # noqa: BLE001 - connection trouble: try again
                log.debug("KServe stub status write failed: %r", error)
                self._retry(due)
                return
            with self._lock:
                self._written[due.uid] = (due.generation, verdict)
                self._judged[due.uid] = due.generation
        self._retry(due, POD_RECHECK_SECONDS)

    def status_for(
        self, namespace: str, name: str, generation: int, failure: tuple[str, str] | None = None
    ) -> JsonObject:
        """The status KServe would report for this ISVC: failed with
        ``failure`` (reason, message) if given or in mode ``fail``, else Ready."""
        now = _now()
        if failure is None and self.mode == "fail":
            failure = (FAIL_REASON, "Model failed to load: stub in mode fail")
        if failure is not None:
            reason, message = failure

            def condition(kind: str) -> JsonObject:
                return {
                    "type": kind,
                    "status": "False",
                    "reason": reason,
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

    def _write_status(self, due: _Due, failure: tuple[str, str] | None = None) -> None:
        body = {"status": self.status_for(due.namespace, due.name, due.generation, failure)}
        self._api.patch_namespaced_custom_object_status(
            GROUP, VERSION, due.namespace, PLURAL, due.name, body,
            _content_type="application/merge-patch+json",
        )  # fmt: skip
        self.marked += 1
