"""The reflector keeps a ``Store`` equal to the API server: list, then watch.

It lists a kind, replaces the store with the result, then watches from the
list's resourceVersion and applies every event, telling a ``Listener``
(the informer) what changed. The watch is resumed, not relisted, whenever
that is still possible:

- the watch ends (server timeout, dropped connection, read timeout): watch
  again from the last resourceVersion seen. Bookmarks only advance that
  version, so a quiet watch does not fall behind the server's history;
- the watch receives nothing at all (no event, no bookmark, no byte) for
  ``idle_timeout`` seconds: its connection is taken for dead (a peer gone,
  or a proxy that keeps the connection up and forwards nothing), closed, and
  the watch resumed at once from the last resourceVersion on a new one. The
  server sends bookmarks often enough that a healthy watch is never that
  quiet (``options.DEFAULT_WATCH_IDLE_TIMEOUT`` says how often);
- the version is too old (410 Gone, in the response or as an ERROR event),
  or the server ended the watch with any other ERROR event (but 429): list
  again and ``replace`` the store. Objects that vanished meanwhile are
  reported as ``DeletedFinalStateUnknown`` tombstones.

Repeated failures back off exponentially with jitter (capped at about 30 s)
and the backoff resets once a list or watch delivers. ``run`` returns
promptly after its stop event is set and ``interrupt`` is called.

An optional resync re-delivers every cached object as an update (the same
object as old and new) every N seconds, without any API call: the controller uses it to show that a
converged resync writes nothing.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import Final, Literal, Protocol

import structlog

from disvc.builders.types import Obj
from disvc.controller import errors
from disvc.controller.backoff import Backoff
from disvc.controller.clock import Clock, RealClock
from disvc.controller.options import DEFAULTS
from disvc.controller.store import DeletedFinalStateUnknown, Store, object_key, resource_version

log = structlog.get_logger(__name__)

SHORT_WATCH: Final = 1.0
"""A watch that ends within this many seconds having delivered nothing counts
as a failure (backed off), so a server that closes every watch at once is not
hammered."""

WATCH_TIMEOUT_RANGE: Final = (300, 600)
"""Server-side watch timeouts are drawn from this range (seconds), spreading
re-watches of many informers over time."""


class WatchStream(Protocol):
    """A running watch: iterate events; ``close`` may come from another thread."""

    def __iter__(self) -> Iterator[Obj]: ...

    def __next__(self) -> Obj: ...

    def close(self) -> None: ...


class ListWatch(Protocol):
    """The two calls a reflector needs (``kube.Kube`` provides them)."""

    def list(
        self, kind: str, namespace: str | None = None, label_selector: str | None = None,
        *, transform: Callable[[Obj], Obj] | None = None, any_version: bool = False,
    ) -> tuple[list[Obj], str]:
        """Every matching object, each passed through ``transform``; ``any_version``
        allows an answer from the server's cache (the first list only)."""
        ...

    def watch(
        self,
        kind: str,
        resource_version: str,
        namespace: str | None = None,
        label_selector: str | None = None,
        timeout_seconds: int = ...,
        allow_bookmarks: bool = True,
        *,
        idle_timeout: float | None = None,
    ) -> WatchStream:
        """A watch from ``resource_version``; iterating it raises
        ``errors.IdleWatchError`` once nothing arrived for ``idle_timeout`` seconds."""
        ...


class Listener(Protocol):
    """Told about every change the reflector makes to its store."""

    def on_add(self, obj: Obj) -> None: ...

    def on_update(self, old: Obj, new: Obj, *, relisted: bool = False) -> None:
        """``relisted``: found by a relist, so versions between ``old`` and
        ``new`` went unseen."""
        ...

    def on_delete(self, obj: Obj | DeletedFinalStateUnknown) -> None: ...


_Outcome = Literal["ended", "failed", "gone"]


class Reflector:
    """Lists and watches one kind into a ``Store``; see the module docstring."""

    def __init__(
        self,
        list_watch: ListWatch,
        kind: str,
        store: Store,
        listener: Listener,
        *,
        namespace: str | None = None,
        label_selector: str | None = None,
        resync_period: float = 0.0,
        backoff: Backoff | None = None,
        watch_timeout_range: tuple[int, int] = WATCH_TIMEOUT_RANGE,
        idle_timeout: float = DEFAULTS.watch_idle_timeout,
        clock: Clock | None = None,
    ) -> None:
        self._lw = list_watch
        self.kind = kind
        self._store = store
        self._listener = listener
        self._namespace = namespace
        self._label_selector = label_selector
        self._resync_period = resync_period
        self._backoff = backoff or Backoff()
        self._watch_timeout_range = watch_timeout_range
        self._idle_timeout = idle_timeout
        self._clock: Clock = clock or RealClock()
        self._synced = threading.Event()
        self._lock = threading.Lock()
        self._stream: WatchStream | None = None
        self._resource_version = ""

    @property
    def resource_version(self) -> str:
        """The last resourceVersion seen (list, event or bookmark): where a watch resumes."""
        return self._resource_version

    def has_synced(self) -> bool:
        """True once the first list is in the store."""
        return self._synced.is_set()

    def wait_for_sync(self, timeout: float | None = None) -> bool:
        return self._synced.wait(timeout)

    def interrupt(self) -> None:
        """Close the running watch, if any, so ``run`` notices its stop event now."""
        with self._lock:
            stream = self._stream
        if stream is not None:
            stream.close()

    def run(self, stop: threading.Event) -> None:
        """List and watch until ``stop`` is set."""
        if self._resync_period > 0:
            threading.Thread(
                target=self._resync_loop, args=(stop,), name=f"resync-{self.kind}", daemon=True
            ).start()
        need_list = True
        while not stop.is_set():
            if need_list:
                if not self._list_and_replace():
                    stop.wait(self._backoff.next())
                    continue
                need_list = False
            outcome = self._watch_once(stop)
            if outcome == "gone":
                log.info("Watch expired, relisting", kind=self.kind, resourceVersion=self._resource_version)
                need_list = True
            elif outcome == "failed" and not stop.is_set():
                stop.wait(self._backoff.next())

    def _list_and_replace(self) -> bool:
        try:
            # The first list may come from the server's watch cache, as
            # client-go's does; a relist after 410 reads etcd, so it is never
            # older than what this store already saw.
            items, resource_version = self._lw.list(
                self.kind, self._namespace, self._label_selector,
                transform=self._store.transform, any_version=not self._synced.is_set(),
            )
        except errors.NotFoundError as exc:
            # The API does not serve the kind at all: nothing to retry soon
            # about, but say what usually causes it.
            log.warning("List failed", kind=self.kind, error=str(exc), errorType=type(exc).__name__,
                        hint="the API server does not serve this kind: is its CRD installed (KServe for InferenceService)?")
            return False
        except Exception as exc:  # noqa: BLE001 - any failure: back off and list again
            log.warning("List failed", kind=self.kind, error=str(exc), errorType=type(exc).__name__)
            return False
        changes = self._store.replace(items, resource_version, transformed=True)
        self._resource_version = resource_version
        for obj in changes.added:
            self._listener.on_add(obj)
        relisted = self._synced.is_set()
        for old, new in changes.updated:
            self._listener.on_update(old, new, relisted=relisted)
        for obj in changes.deleted:
            self._listener.on_delete(DeletedFinalStateUnknown(object_key(obj), obj))
        self._backoff.reset()
        self._synced.set()
        log.debug("Listed", kind=self.kind, count=len(items), resourceVersion=resource_version)
        return True

    def _watch_once(self, stop: threading.Event) -> _Outcome:
        started = self._clock.monotonic()
        delivered = 0
        try:
            stream = self._lw.watch(
                self.kind, self._resource_version, self._namespace, self._label_selector,
                timeout_seconds=self._backoff.rng.randint(*self._watch_timeout_range),
                idle_timeout=self._idle_timeout,
            )
        except errors.GoneError:
            return "gone"
        except Exception as exc:  # noqa: BLE001 - any failure: back off and watch again
            log.warning("Watch failed to start", kind=self.kind, error=str(exc), errorType=type(exc).__name__)
            return "failed"
        with self._lock:
            self._stream = stream
        try:
            if stop.is_set():
                return "ended"
            for event in stream:
                if delivered == 0:
                    self._backoff.reset()
                delivered += 1
                self._handle(event)
                if stop.is_set():
                    return "ended"
        except errors.GoneError:
            return "gone"
        except errors.IdleWatchError as exc:
            # Not the server's doing: it got a request and answered. Resume
            # now; if the path is still dead, the next start fails and backs off.
            log.info("Watch went silent, resuming", kind=self.kind, error=str(exc),
                     resourceVersion=self._resource_version)
            return "ended"
        except Exception as exc:  # noqa: BLE001 - a broken stream is resumed, never fatal
            if stop.is_set():
                return "ended"
            if _is_error_event(exc):
                # The server ended the watch with an ERROR event: resuming from
                # the same resourceVersion would get the same answer forever.
                # Relist, as client-go does for any watch error but 429.
                log.info("Watch ended with an error, relisting", kind=self.kind, error=str(exc),
                         errorType=type(exc).__name__)
                return "gone"
            log.info("Watch broke, resuming", kind=self.kind, error=str(exc), errorType=type(exc).__name__)
            return "failed"
        finally:
            with self._lock:
                self._stream = None
            stream.close()
        if delivered == 0 and self._clock.monotonic() - started < SHORT_WATCH:
            return "failed"
        return "ended"

    def _handle(self, event: Obj) -> None:
        kind = event.get("type")
        obj: Obj = event.get("object") or {}
        if kind in ("ADDED", "MODIFIED"):
            old, new = self._store.put(obj)
            if old is None:
                self._listener.on_add(new)
            else:
                self._listener.on_update(old, new)
        elif kind == "DELETED":
            self._store.delete(obj)
            self._listener.on_delete(obj)
        elif kind != "BOOKMARK":
            log.warning("Unknown watch event", kind=self.kind, eventType=kind)
            return
        version = resource_version(obj)
        if version:
            self._resource_version = version

    def _resync_loop(self, stop: threading.Event) -> None:
        # A re-delivery passes the same object as old and new: nothing changed.
        while not stop.wait(self._resync_period):
            if not self._synced.is_set():
                continue
            for obj in self._store.list():
                self._listener.on_update(obj, obj)


def _is_error_event(exc: Exception) -> bool:
    """An error the server sent (an HTTP status in an ERROR event), not a
    broken connection; 429 asks us to slow down, not to relist."""
    status = getattr(exc, "status", None)
    return (
        isinstance(exc, errors.ControllerError)
        and isinstance(status, int)
        and not isinstance(exc, errors.TooManyRequestsError)
    )
