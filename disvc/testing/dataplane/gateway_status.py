"""The route status a Gateway implementation writes, written by the data plane's router.

The Gateway API specification has the controller of a Gateway report, on
every route attached to it, one ``status.parents[]`` entry per parentRef it
manages (its ``controllerName`` names the implementation) with the
conditions ``Accepted`` and ``ResolvedRefs``
(https://gateway-api.sigs.k8s.io/reference/spec/#routeparentstatus). An
implementation manages a Gateway whose GatewayClass names its
``controllerName``; it says nothing about parents it does not manage, and
nobody says anything about a Gateway that does not exist.

The router here claims ``CONTROLLER_NAME``. For a parent Gateway of a
GatewayClass with that ``controllerName`` it accepts the route when a
listener allows it (``sectionName`` names an existing listener, and the
listener's ``allowedRoutes.namespaces.from`` is ``All``, or ``Same`` (the
default) with the route in the Gateway's namespace; ``Selector`` is not
followed here and refuses), else ``Accepted=False NotAllowedByListeners``;
``ResolvedRefs`` comes from ``router.gateway.route_status``. The status is
written through the status subresource only when it changes (a condition
keeps its ``lastTransitionTime`` while its status holds), so an idle
cluster sees no writes.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Final

import structlog
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from disvc.testing.dataplane.cluster import InformerView
from disvc.testing.dataplane.router.gateway import route_status
from disvc.testing.rawapi import request_json

log = structlog.get_logger(__name__)

CONTROLLER_NAME: Final = "disvc.example/dataplane-router"
"""The ``controllerName`` a GatewayClass names for the data plane's router to manage it."""
GROUP_PATH: Final = "/apis/gateway.networking.k8s.io/v1"
PLURALS: Final = {"HTTPRoute": "httproutes", "GRPCRoute": "grpcroutes"}

JsonObject = dict[str, Any]


def _meta(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    meta: Mapping[str, Any] = obj.get("metadata") or {}
    return meta


def listener_refusal(gateway: Mapping[str, Any], route: Mapping[str, Any], parent: Mapping[str, Any]) -> str | None:
    """Why no listener of ``gateway`` allows ``route`` through ``parent``; None when one does."""
    route_kind = route.get("kind", "HTTPRoute")
    route_ns = _meta(route).get("namespace", "default")
    gateway_ns = _meta(gateway).get("namespace", "default")
    listeners = (gateway.get("spec") or {}).get("listeners") or []
    section = parent.get("sectionName")
    if section is not None:
        listeners = [listener for listener in listeners if listener.get("name") == section]
        if not listeners:
            return f"Gateway {_meta(gateway).get('name')} has no listener {section}"
    for listener in listeners:
        allowed = listener.get("allowedRoutes") or {}
        kinds = [k.get("kind") for k in allowed.get("kinds") or []]
        if kinds and route_kind not in kinds:
            continue
        origin = (allowed.get("namespaces") or {}).get("from", "Same")
        if origin == "All" or (origin == "Same" and route_ns == gateway_ns):
            return None
    return f"no listener of Gateway {gateway_ns}/{_meta(gateway).get('name')} allows {route_kind}s from namespace {route_ns}"


class GatewayStatusWriter:
    """Writes route status for the Gateways the router manages, whenever the view changes."""

    def __init__(self, api_client: client.ApiClient, view: InformerView) -> None:
        self._api = api_client
        self._view = view
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._view.add_listener(self._wake.set)
        self._thread = threading.Thread(target=self._run, name="gateway-status", daemon=True)
        self._thread.start()
        self._wake.set()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(5)

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.wait()
            self._wake.clear()
            if self._stop.is_set():
                return
            try:
                self.sync()
            except Exception:  # a failed write is retried at the next change
                log.exception("Writing route status failed")
                self._stop.wait(0.5)
                self._wake.set()

    def _managed_gateway(self, namespace: str, name: str) -> Mapping[str, Any] | None:
        gateway = next((g for g in self._view.gateways() if _meta(g).get("namespace") == namespace
                        and _meta(g).get("name") == name), None)
        if gateway is None:
            return None
        class_name = (gateway.get("spec") or {}).get("gatewayClassName")
        managed = any(_meta(c).get("name") == class_name
                      and (c.get("spec") or {}).get("controllerName") == CONTROLLER_NAME
                      for c in self._view.gateway_classes())
        return gateway if managed else None

    def sync(self) -> None:
        """Write the status of every route whose status is not what the router would say."""
        for kind, routes in (("HTTPRoute", self._view.http_routes()), ("GRPCRoute", self._view.grpc_routes())):
            for route in routes:
                route = {"kind": kind, **route}
                wanted = self.status_for(route)
                live = (route.get("status") or {}).get("parents") or []
                if wanted is not None and _comparable(wanted) != _comparable(live):
                    self._write(kind, route, _keep_transitions(wanted, live))

    def status_for(self, route: Mapping[str, Any]) -> list[JsonObject] | None:
        """The ``status.parents`` the router writes on ``route``; None: no parent is ours."""
        namespace = _meta(route).get("namespace", "default")
        computed = route_status(route, self._view.service, controller_name=CONTROLLER_NAME,
                                now=datetime.now(UTC))["parents"]
        parents = []
        for parent, entry in zip((route.get("spec") or {}).get("parentRefs") or [], computed, strict=False):
            gateway = self._managed_gateway(parent.get("namespace", namespace), parent.get("name", ""))
            if gateway is None:
                continue  # not ours to speak for
            refusal = listener_refusal(gateway, route, parent)
            if refusal is not None:
                accepted = next(c for c in entry["conditions"] if c["type"] == "Accepted")
                # the spec's reasons: a sectionName naming no listener matches no parent
                reason = "NoMatchingParent" if refusal.startswith("Gateway ") else "NotAllowedByListeners"
                accepted.update(status="False", reason=reason, message=refusal)
            parents.append(entry)
        return parents or None

    def _write(self, kind: str, route: Mapping[str, Any], parents: list[JsonObject]) -> None:
        meta = _meta(route)
        path = f"{GROUP_PATH}/namespaces/{meta.get('namespace')}/{PLURALS[kind]}/{meta.get('name')}/status"
        try:
            request_json(self._api, "PATCH", path, body={"status": {"parents": parents}},
                         content_type="application/merge-patch+json")
        except ApiException as error:
            if error.status != 404:  # a route deleted meanwhile needs no status
                raise


def _comparable(parents: Sequence[Mapping[str, Any]]) -> list[Any]:
    return [
        (p.get("parentRef"), p.get("controllerName"),
         [{k: v for k, v in c.items() if k != "lastTransitionTime"} for c in p.get("conditions") or []])
        for p in parents
    ]


def _keep_transitions(wanted: list[JsonObject], live: list[Mapping[str, Any]]) -> list[JsonObject]:
    """``wanted`` with each condition's ``lastTransitionTime`` kept where its status did not change."""
    for entry in wanted:
        old = next((p for p in live if p.get("parentRef") == entry["parentRef"]), None)
        for condition in entry["conditions"]:
            before = next((c for c in (old or {}).get("conditions") or [] if c.get("type") == condition["type"]), None)
            if before is not None and before.get("status") == condition["status"]:
                condition["lastTransitionTime"] = before.get("lastTransitionTime", condition["lastTransitionTime"])
    return wanted
