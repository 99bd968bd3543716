"""An informer: one kind's cache, kept current by a ``Reflector``, fanning
every change out to registered handlers.

The cache is two layers, as client-go's: a ``Store`` exactly as the watch
delivered it (with the indexers and transform the caller passes), and a
``MutationCache`` over it holding our own writes until their watch events
arrive. Readers use ``cache``; only the reflector writes ``store``.

The manager creates one per watched kind (DISVCs unfiltered; ISVCs,
Services and Ingresses with the ``disvc`` label selector), registers the
handlers that map events to queue keys, starts it, and waits for
``has_synced`` before starting workers, so the first reconciles see a full
cache. Handlers run one at a time (on the reflector's thread, or the resync
thread for a resync), in event order, and must be
quick (ours only enqueue keys). A handler added after objects are cached is
first told about each of them as an add, so late registration misses nothing.
A handler registered with ``own_writes=False`` is not told about the watch
echo of our own writes (``MutationCache.observed``): the queue's handlers,
since the reconcile that wrote already knew that state. Delete handlers get
the object's last known state, or a ``DeletedFinalStateUnknown`` tombstone
when a relist found it gone.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import structlog

from disvc.builders.types import Obj
from disvc.controller.backoff import Backoff
from disvc.controller.mutation_cache import MutationCache
from disvc.controller.options import DEFAULTS
from disvc.controller.reflector import ListWatch, Reflector
from disvc.controller.store import DeletedFinalStateUnknown, IndexFunc, Store, Transform, object_key

log = structlog.get_logger(__name__)

AddHandler = Callable[[Obj], None]
UpdateHandler = Callable[[Obj, Obj], None]
DeleteHandler = Callable[[Obj | DeletedFinalStateUnknown], None]


@dataclass(frozen=True, slots=True)
class _Handlers:
    on_add: AddHandler | None
    on_update: UpdateHandler | None
    on_delete: DeleteHandler | None
    own_writes: bool


class Informer:
    """Cache + reflector + handler fan-out for one kind."""

    def __init__(
        self,
        kube: ListWatch,
        kind: str,
        namespace: str | None = None,
        label_selector: str | None = None,
        resync_period: float = 0.0,
        *,
        indexers: Mapping[str, IndexFunc] | None = None,
        transform: Transform | None = None,
        backoff: Backoff | None = None,
        watch_idle_timeout: float = DEFAULTS.watch_idle_timeout,
    ) -> None:
        self.kind = kind
        self.store = Store(indexers, transform)
        """What the watch delivered; written only by the reflector."""
        self.cache = MutationCache(self.store)
        """What readers use: the store, with our own writes until it catches up."""
        self._handlers: list[_Handlers] = []
        # Held while dispatching, so a handler added concurrently is replayed
        # the cache exactly once and then sees every later event.
        self._dispatch_lock = threading.RLock()
        self._reflector = Reflector(
            kube, kind, self.store, self,
            namespace=namespace, label_selector=label_selector,
            resync_period=resync_period, backoff=backoff, idle_timeout=watch_idle_timeout,
        )
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def add_handler(
        self,
        on_add: AddHandler | None = None,
        on_update: UpdateHandler | None = None,
        on_delete: DeleteHandler | None = None,
        *,
        own_writes: bool = True,
    ) -> None:
        handlers = _Handlers(on_add, on_update, on_delete, own_writes)
        with self._dispatch_lock:
            self._handlers.append(handlers)
            if on_add is not None:
                for obj in self.store.list():
                    self._call(on_add, obj)

    def start(self) -> None:
        """Run the reflector on a daemon thread; returns at once."""
        if self._thread is not None:
            raise RuntimeError(f"informer for {self.kind} already started")
        self._thread = threading.Thread(
            target=self._reflector.run, args=(self._stop,), name=f"informer-{self.kind}", daemon=True
        )
        self._thread.start()

    def stop(self, timeout: float | None = 5.0) -> bool:
        """Stop watching and wait (up to ``timeout``) for the thread to end.

        Returns whether it has ended (a list in flight can outlast a short timeout).
        """
        self._stop.set()
        self._reflector.interrupt()
        if self._thread is None:
            return True
        self._thread.join(timeout)
        return not self._thread.is_alive()

    def has_synced(self) -> bool:
        """True once the first list is in the store (and its handlers were told)."""
        return self._reflector.has_synced()

    def wait_for_sync(self, timeout: float | None = None) -> bool:
        return self._reflector.wait_for_sync(timeout)

    @property
    def resource_version(self) -> str:
        return self._reflector.resource_version

    # Listener, called by the reflector.

    def on_add(self, obj: Obj) -> None:
        echo = self.cache.observed(obj)
        with self._dispatch_lock:
            for h in self._handlers:
                if h.on_add is not None and (h.own_writes or not echo):
                    self._call(h.on_add, obj)

    def on_update(self, old: Obj, new: Obj, *, relisted: bool = False) -> None:
        # The same object as old and new is a resync's re-delivery, not a change.
        # A relist skipped versions: one of them may be a change made by
        # someone else that our write (made without seeing it) carries, so a
        # relisted object at our write's version is news all the same.
        echo = old is not new and self.cache.observed(new) and not relisted
        with self._dispatch_lock:
            for h in self._handlers:
                if h.on_update is not None and (h.own_writes or not echo):
                    self._call(h.on_update, old, new)

    def on_delete(self, obj: Obj | DeletedFinalStateUnknown) -> None:
        self.cache.observed_delete(obj.key if isinstance(obj, DeletedFinalStateUnknown) else object_key(obj))
        with self._dispatch_lock:
            for h in self._handlers:
                if h.on_delete is not None:
                    self._call(h.on_delete, obj)

    def _call(self, handler: Callable[..., None], *args: object) -> None:
        try:
            handler(*args)
        except Exception:
            log.exception("Event handler failed", kind=self.kind)
