"""A list-and-watch cache for the substrate's own readers (router, stand-ins).

The same mechanics client-go's reflector and informer use, kept small and
separate from the controller's (the substrate must not share the
controller's bugs): list, then watch from the list's resourceVersion;
re-watch from the last version seen when a stream ends; relist on ``410
Gone`` or on any broken stream (events may have been lost). The store
holds the latest object per ``namespace/name``; listeners are called after
every change, outside the lock, so a reader always sees the state that
caused the call (or a newer one).

A collection that is not served (a CRD not installed, e.g. Gateway API on a
cluster without it) is simply empty: the informer keeps asking every few
seconds, so the kind is followed from the moment its CRD appears.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Iterator
from typing import Any, Final, Self

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from disvc.testing.rawapi import request_json

log = logging.getLogger(__name__)

JsonObject = dict[str, Any]
Key = tuple[str, str]

WATCH_SECONDS: Final = 240
"""Server-side watch timeout; a fresh watch follows at once."""
NOT_SERVED_RETRY_SECONDS: Final = 2.0
FAILURE_RETRY_SECONDS: Final = 0.2


class Informer:
    """Follows one collection (e.g. ``/api/v1/services``) into a keyed store."""

    def __init__(
        self,
        api_client: client.ApiClient,
        path: str,
        *,
        namespace: str | None = None,
        label_selector: str | None = None,
        user_agent: str = "disvc-dataplane",
    ) -> None:
        # A client of our own: a watch holds its connection for minutes.
        self._client = client.ApiClient(configuration=api_client.configuration)
        self._client.user_agent = user_agent
        self.path = _scoped(path, namespace)
        self._selector = label_selector
        self._store: dict[Key, JsonObject] = {}
        self._lock = threading.Condition()
        self._listeners: list[Callable[[], None]] = []
        self._synced = False
        self._stopping = threading.Event()
        self._response: Any = None
        self._thread: threading.Thread | None = None

    # --- reading ----------------------------------------------------------

    def items(self) -> list[JsonObject]:
        with self._lock:
            return list(self._store.values())

    def get(self, namespace: str, name: str) -> JsonObject | None:
        with self._lock:
            return self._store.get((namespace, name))

    def add_listener(self, listener: Callable[[], None]) -> None:
        with self._lock:
            self._listeners.append(listener)

    def wait_synced(self, timeout: float) -> bool:
        """True once the first list has filled the store (or the kind is not served)."""
        with self._lock:
            return self._lock.wait_for(lambda: self._synced, timeout)

    # --- lifecycle --------------------------------------------------------

    def start(self) -> Self:
        self._thread = threading.Thread(target=self._run, name=f"informer {self.path}", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        self._stopping.set()
        response = self._response
        if response is not None:
            try:
                shutdown = getattr(response, "shutdown", None)
                (shutdown or response.close)()
            except Exception as error:  # noqa: BLE001 - already closed is fine
                log.debug("informer %s: closing the watch: %r", self.path, error)
        if self._thread is not None:
            self._thread.join(timeout)
        self._client.close()  # type: ignore[no-untyped-call]

    # --- list + watch -----------------------------------------------------

    def _run(self) -> None:
        version: str | None = None
        while not self._stopping.is_set():
            try:
                if version is None:
                    version = self._list()
                    if version is None:  # not served: empty, ask again later
                        self._stopping.wait(NOT_SERVED_RETRY_SECONDS)
                        continue
                version = self._watch(version)
            except ApiException as error:
                version = None  # 410 or any refusal: relist from scratch
                if error.status != 410:
                    log.debug("informer %s: API error %s", self.path, error.status)
                    self._stopping.wait(FAILURE_RETRY_SECONDS)
            except Exception as error:  # noqa: BLE001 - resets, timeouts: relist
                if self._stopping.is_set():
                    return
                version = None
                log.debug("informer %s: watch broke: %r", self.path, error)
                self._stopping.wait(FAILURE_RETRY_SECONDS)

    def _query(self) -> list[tuple[str, str]]:
        return [("labelSelector", self._selector)] if self._selector else []

    def _list(self) -> str | None:
        try:
            listing = request_json(self._client, "GET", self.path, query=self._query())
        except ApiException as error:
            if error.status == 404:
                self._replace({})
                return None
            raise
        fresh = {_key(item): item for item in listing.get("items") or []}
        self._replace(fresh)
        version: str = listing["metadata"]["resourceVersion"]
        return version

    def _watch(self, version: str) -> str | None:
        query = [
            *self._query(),
            ("watch", "true"),
            ("resourceVersion", version),
            ("allowWatchBookmarks", "true"),
            ("timeoutSeconds", str(WATCH_SECONDS)),
        ]
        method, url, headers, body, _ = self._client.param_serialize(
            method="GET",
            resource_path=self.path,
            query_params=query,
            header_params={"Accept": "application/json"},
            auth_settings=["BearerToken"],
        )
        answer = self._client.call_api(method, url, header_params=headers, body=body)
        response: Any = answer.response  # urllib3's, unread: the events stream from it
        self._response = response
        try:
            if not 200 <= answer.status <= 299:
                answer.read()  # type: ignore[no-untyped-call]
                self._client.response_deserialize(answer, {})  # raises ApiException
            for event in watch_events(response):
                kind, obj = event.get("type"), event.get("object") or {}
                if kind == "ERROR":
                    raise ApiException(status=obj.get("code"), reason=obj.get("message"))
                version = obj.get("metadata", {}).get("resourceVersion") or version
                if kind in ("ADDED", "MODIFIED"):
                    self._put(obj)
                elif kind == "DELETED":
                    self._delete(obj)
            return version
        finally:
            self._response = None
            response.release_conn()

    # --- store ------------------------------------------------------------

    def _replace(self, fresh: dict[Key, JsonObject]) -> None:
        with self._lock:
            self._store = fresh
            self._synced = True
        self._notify()

    def _put(self, obj: JsonObject) -> None:
        with self._lock:
            self._store[_key(obj)] = obj
        self._notify()

    def _delete(self, obj: JsonObject) -> None:
        with self._lock:
            self._store.pop(_key(obj), None)
        self._notify()

    def _notify(self) -> None:
        with self._lock:
            self._lock.notify_all()
            listeners = list(self._listeners)
        for listener in listeners:
            try:
                listener()
            except Exception:  # a listener's bug must not stop the watch
                log.exception("informer %s: listener failed", self.path)


def _scoped(path: str, namespace: str | None) -> str:
    """``/api/v1/services`` limited to one namespace when one is given."""
    if namespace is None:
        return path
    head, _, plural = path.rstrip("/").rpartition("/")
    return f"{head}/namespaces/{namespace}/{plural}"


def _key(obj: JsonObject) -> Key:
    metadata = obj.get("metadata") or {}
    return metadata.get("namespace") or "", metadata.get("name") or ""


def watch_events(response: Any) -> Iterator[JsonObject]:
    """The JSON events of a watch response, one per line."""
    buffer = b""
    for chunk in response.stream(amt=None, decode_content=False):
        buffer += chunk
        while b"\n" in buffer:
            line, buffer = buffer.split(b"\n", 1)
            if line.strip():
                yield json.loads(line)
