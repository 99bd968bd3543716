"""Gateway API, found on the cluster rather than switched on by a flag.

The controller watches two CustomResourceDefinitions by name,
``httproutes.gateway.networking.k8s.io`` and
``grpcroutes.gateway.networking.k8s.io``, each through its own informer
with a ``metadata.name`` field selector (so nothing else of the cluster's
CRDs is listed or cached), and keeps of each only what the builders need:
whether its ``v1`` version is served and Established, and whether that
version's schema has ``sessionPersistence`` on its rules (the experimental
channel does, the standard one does not).

When a route CRD appears, an informer for that route kind (labelled
``disvc`` children, like the other child informers) is created and started;
once it has synced, every DISVC is enqueued so those that route through a
Gateway get their route. When the CRD goes, the route informer is stopped
and dropped, and every DISVC is enqueued again (one naming a Gateway is
then reported as an invalid spec). No restart, and with no Gateway API
installed no request is ever made for routes. ``--gateway-api=false``
turns all of it off: then no CRD is watched.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable, Mapping
from typing import Any, Final

import structlog

from disvc.builders.types import GRPCROUTE_KIND, HTTPROUTE_KIND, Obj
from disvc.controller.informer import Informer
from disvc.controller.kube import Kube
from disvc.controller.kube.resources import CRD_KIND
from disvc.controller.options import DEFAULTS
from disvc.controller.reflector import WatchStream

log = structlog.get_logger(__name__)

ROUTE_CRDS: Final[Mapping[str, str]] = {
    HTTPROUTE_KIND: "httproutes.gateway.networking.k8s.io",
    GRPCROUTE_KIND: "grpcroutes.gateway.networking.k8s.io",
}
SERVED_VERSION: Final = "v1"
SYNC_TIMEOUT: Final = 60.0


def summarize(crd: Obj) -> Obj:
    """What the controller keeps of a route CRD: its name, and whether
    ``v1`` is served (``served``) with ``sessionPersistence`` (``persistence``)."""
    meta = crd.get("metadata") or {}
    spec = crd.get("spec") or {}
    conditions = (crd.get("status") or {}).get("conditions") or []
    established = any(c.get("type") == "Established" and c.get("status") == "True" for c in conditions)
    version = next((v for v in spec.get("versions") or [] if v.get("name") == SERVED_VERSION), None)
    served = bool(established and version is not None and version.get("served"))
    return {
        "apiVersion": crd.get("apiVersion"),
        "kind": crd.get("kind", CRD_KIND),
        "metadata": {k: meta[k] for k in ("name", "uid", "resourceVersion") if k in meta},
        "served": served,
        "persistence": served and version is not None and _has_persistence(version),
    }


def _has_persistence(version: Mapping[str, Any]) -> bool:
    schema = (version.get("schema") or {}).get("openAPIV3Schema") or {}
    rules = (((schema.get("properties") or {}).get("spec") or {}).get("properties") or {}).get("rules") or {}
    rule = (rules.get("items") or {}).get("properties") or {}
    return "sessionPersistence" in rule


class _ByName:
    """``Kube``'s list and watch of one object by name (a field selector)."""

    def __init__(self, kube: Kube, name: str) -> None:
        self._kube = kube
        self._selector = f"metadata.name={name}"

    def list(
        self, kind: str, namespace: str | None = None, label_selector: str | None = None,
        *, transform: Callable[[Obj], Obj] | None = None, any_version: bool = False,
    ) -> tuple[list[Obj], str]:
        return self._kube.list(
            kind, namespace, label_selector, transform=transform, any_version=any_version,
            field_selector=self._selector,
        )

    def watch(
        self, kind: str, resource_version: str, namespace: str | None = None,
        label_selector: str | None = None, timeout_seconds: int = 300, allow_bookmarks: bool = True,
        *, idle_timeout: float | None = None,
    ) -> WatchStream:
        return self._kube.watch(
            kind, resource_version, namespace, label_selector, timeout_seconds, allow_bookmarks,
            field_selector=self._selector, idle_timeout=idle_timeout,
        )


class GatewayApi:
    """The route informers, started and stopped as their CRDs come and go.

    ``make_informer(kind)`` builds a route informer with the manager's
    handlers; ``attach``/``detach`` put its cache where the reader and writer
    look and take it away; ``changed()`` enqueues every DISVC."""

    def __init__(
        self,
        kube: Kube,
        make_informer: Callable[[str], Informer],
        attach: Callable[[str, Informer], None],
        detach: Callable[[str], None],
        changed: Callable[[], None],
        *,
        watch_idle_timeout: float = DEFAULTS.watch_idle_timeout,
    ) -> None:
        self._make_informer = make_informer
        self._attach = attach
        self._detach = detach
        self._changed = changed
        self._lock = threading.Lock()
        self._routes: dict[str, Informer] = {}
        self._synced: set[str] = set()
        self._persistence: set[str] = set()
        self._stopped = False
        self.crds: dict[str, Informer] = {}
        for kind, name in ROUTE_CRDS.items():
            informer = Informer(
                _ByName(kube, name), CRD_KIND, transform=summarize, watch_idle_timeout=watch_idle_timeout
            )
            refresh = functools.partial(self._on_event, kind)
            informer.add_handler(refresh, refresh, refresh)
            self.crds[kind] = informer

    # -- what the builders learn ---------------------------------------------

    def serves(self, kind: str) -> bool:
        """Routes of ``kind`` can be written and are cached (CRD there, informer synced)."""
        with self._lock:
            return kind in self._synced

    def persistence(self) -> frozenset[str]:
        """Route kinds whose installed CRD serves ``sessionPersistence``."""
        with self._lock:
            return frozenset(self._persistence & self._synced)

    # -- running -------------------------------------------------------------

    def start(self) -> None:
        for informer in self.crds.values():
            informer.start()

    def wait_for_sync(self, timeout: float | None = None) -> bool:
        return all(informer.wait_for_sync(timeout) for informer in self.crds.values())

    def stop(self, timeout: float) -> bool:
        with self._lock:
            self._stopped = True
            routes = list(self._routes.values())
        ended = [informer.stop(timeout) for informer in (*self.crds.values(), *routes)]
        return all(ended)

    def _on_event(self, kind: str, *_objects: object) -> None:
        self._refresh(kind)

    def _refresh(self, kind: str) -> None:
        # by name again: a server that ignored the field selector lists them all
        crd = next((c for c in self.crds[kind].store.list() if c["metadata"].get("name") == ROUTE_CRDS[kind]), None)
        present = bool(crd and crd.get("served"))
        started: Informer | None = None
        stopped: Informer | None = None
        with self._lock:
            if self._stopped:
                return
            had_persistence = kind in self._persistence
            if crd is not None and crd.get("persistence"):
                self._persistence.add(kind)
            else:
                self._persistence.discard(kind)
            running = self._routes.get(kind)
            if present and running is None:
                started = self._routes[kind] = self._make_informer(kind)
            elif not present and running is not None:
                stopped = self._routes.pop(kind)
                self._synced.discard(kind)
            persistence_changed = had_persistence != (kind in self._persistence)
        if started is not None:
            log.info("Gateway API route kind found, watching it", kind=kind)
            self._attach(kind, started)
            started.start()
            threading.Thread(
                target=self._await_sync, args=(kind, started), daemon=True, name=f"sync-{kind}"
            ).start()
        if stopped is not None:
            log.info("Gateway API route kind gone, no longer watching it", kind=kind)
            stopped.stop(1.0)
            self._detach(kind)
        if stopped is not None or persistence_changed:
            self._changed()

    def _await_sync(self, kind: str, informer: Informer) -> None:
        if not informer.wait_for_sync(SYNC_TIMEOUT):
            log.warning("Route informer did not sync", kind=kind)
            return
        with self._lock:
            if self._routes.get(kind) is not informer:
                return
            self._synced.add(kind)
        self._changed()
