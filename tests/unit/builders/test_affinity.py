"""``spec.sessionAffinity`` in each router's terms, and the per-path report in status.

One table per router: what the controller writes for each affinity type and
what ``status.sessionAffinity`` then says. The routers' behaviour behind
these objects is tested through the data plane (tests/integration/test_traffic.py).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

import pytest
from disvc_world import OPTIONS, condition, disvc, find, reconcile, set_ready, settle, with_spec

from disvc.builders import affinity, desired
from disvc.builders.desired import BuildOptions
from disvc.builders.spec import GatewayRef, InvalidSpec, SessionAffinity, parse
from disvc.builders.types import Obj

NGINX = "nginx.ingress.kubernetes.io/"
GRPC_TEMPLATE: dict[str, Any] = {
    "predictor": {"model": {"modelFormat": {"name": "sklearn"}, "ports": [{"name": "h2c", "containerPort": 8081}]}}
}


def _paths(obj: Obj) -> dict[str, tuple[bool, str]]:
    return {p["path"]: (p["enforced"], p["mode"]) for p in obj["status"]["sessionAffinity"]["paths"]}


def _annotations(obj: Obj) -> dict[str, str]:
    return {k: v for k, v in obj["metadata"].get("annotations", {}).items() if k.startswith(NGINX)}


# --- the spec --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, SessionAffinity()),
        ({}, SessionAffinity("ClientIP", 10800, "disvc-affinity")),
        ({"type": "Cookie", "timeoutSeconds": 60, "cookieName": "sticky"}, SessionAffinity("Cookie", 60, "sticky")),
        ({"type": "None"}, SessionAffinity("None")),
    ],
)
def test_session_affinity_defaults_to_client_ip_for_three_hours(value: Any, expected: SessionAffinity) -> None:
    spec = {"sessionAffinity": value} if value is not None else {}
    assert parse(disvc(spec=spec)).affinity == expected


@pytest.mark.parametrize(
    ("value", "field_name"),
    [
        ({"type": "Source"}, "spec.sessionAffinity.type"),
        ({"timeoutSeconds": 0}, "spec.sessionAffinity.timeoutSeconds"),
        ({"timeoutSeconds": 86401}, "spec.sessionAffinity.timeoutSeconds"),
        ({"cookieName": "a b"}, "spec.sessionAffinity.cookieName"),
        ("ClientIP", "spec.sessionAffinity"),
    ],
)
def test_an_invalid_session_affinity_is_named(value: Any, field_name: str) -> None:
    with pytest.raises(InvalidSpec) as raised:
        parse(disvc(spec={"sessionAffinity": value}))
    assert raised.value.field == field_name


# --- kube-proxy and ingress-nginx ------------------------------------------------------


@dataclass(frozen=True)
class IngressCase:
    id: str
    affinity: dict[str, Any]
    service: dict[str, Any]
    ingress: dict[str, str]
    paths: dict[str, tuple[bool, str]]
    user: dict[str, str] = field(default_factory=dict)


INGRESS_CASES = [
    IngressCase(
        "client-ip",
        {},
        {"sessionAffinity": "ClientIP", "sessionAffinityConfig": {"clientIP": {"timeoutSeconds": 10800}}},
        {NGINX + "upstream-hash-by": "$remote_addr"},
        {"Service": (True, "ClientIP"), "Ingress": (True, "ClientIP")},
    ),
    IngressCase(
        "cookie",
        {"type": "Cookie", "timeoutSeconds": 600},
        {"sessionAffinity": "ClientIP", "sessionAffinityConfig": {"clientIP": {"timeoutSeconds": 600}}},
        {NGINX + "affinity": "cookie", NGINX + "session-cookie-name": "disvc-affinity",
         NGINX + "session-cookie-max-age": "600"},
        {"Service": (True, "ClientIP"), "Ingress": (True, "Cookie")},
    ),
    IngressCase(
        "none",
        {"type": "None"},
        {"sessionAffinity": "None"},
        {},
        {"Service": (False, "None"), "Ingress": (False, "None")},
    ),
    IngressCase(
        "user-annotations-win",
        {},
        {"sessionAffinity": "ClientIP", "sessionAffinityConfig": {"clientIP": {"timeoutSeconds": 10800}}},
        {NGINX + "upstream-hash-by": "$http_x_user"},
        {"Service": (True, "ClientIP"), "Ingress": (True, "Hash")},
        user={NGINX + "upstream-hash-by": "$http_x_user"},
    ),
]


@pytest.mark.parametrize("case", INGRESS_CASES, ids=lambda c: c.id)
def test_affinity_reaches_the_services_and_the_ingress_in_their_own_terms(case: IngressCase) -> None:
    spec: dict[str, Any] = {"sessionAffinity": case.affinity}
    if case.user:
        spec["ingress"] = {"annotations": case.user}
    obj, live = settle(disvc(replicas=2, spec=spec))
    for name in ("model", "model-v1"):
        service = find(live, "Service", name)["spec"]
        assert {k: v for k, v in service.items() if k.startswith("sessionAffinity")} == case.service
    assert _annotations(find(live, "Ingress", "model")) == case.ingress
    assert _paths(obj) == case.paths
    assert desired.state(obj, live, OPTIONS).plan.is_empty  # converged: nothing more to write


def _canary(affinity_spec: dict[str, Any], options: BuildOptions = OPTIONS) -> tuple[Obj, list[Obj]]:
    spec = {"rollout": {"canaryTrafficPercent": 20}, "sessionAffinity": affinity_spec}
    if options.gateway_api:
        spec["ingress"] = {"gateway": {"name": "public"}}
    obj, live = settle(disvc(replicas=2, annotations={"version": "v1"}, spec=spec), options=options)
    obj, live, _ = reconcile(with_spec(obj, annotations={"version": "v2"}), live, options)
    return settle(obj, live, options=options)


@pytest.mark.parametrize(
    ("affinity_spec", "canary_annotations", "canary_path"),
    [
        ({}, {NGINX + "upstream-hash-by": "$remote_addr"}, (False, "None")),
        ({"type": "Cookie"}, {NGINX + "affinity-canary-behavior": "sticky"}, (True, "Cookie")),
        ({"type": "None"}, {}, (False, "None")),
    ],
    ids=["client-ip", "cookie", "none"],
)
def test_during_a_canary_only_cookie_affinity_keeps_a_client_on_its_side(
    affinity_spec: dict[str, Any], canary_annotations: dict[str, str], canary_path: tuple[bool, str]
) -> None:
    obj, live = _canary(affinity_spec)
    annotations = _annotations(find(live, "Ingress", "model-canary"))
    assert {k: v for k, v in annotations.items() if not k.startswith(NGINX + "canary")} == canary_annotations
    assert _paths(obj)["Canary"] == canary_path
    message = next(p["message"] for p in obj["status"]["sessionAffinity"]["paths"] if p["path"] == "Canary")
    assert ("sticky" in message) == canary_path[0]


# --- Gateway API ----------------------------------------------------------------------

SERVED = BuildOptions(now="2024-01-01T00:00:00Z", gateway_api=True, grpc_route=True,
                      session_persistence=frozenset({"HTTPRoute", "GRPCRoute"}))
STANDARD = BuildOptions(now="2024-01-01T00:00:00Z", gateway_api=True, grpc_route=True)


@pytest.mark.parametrize(
    ("affinity_spec", "options", "persistence", "path"),
    [
        ({}, SERVED, {"sessionName": "disvc-affinity", "type": "Cookie", "absoluteTimeout": "10800s",
                      "cookieConfig": {"lifetimeType": "Permanent"}}, (True, "Cookie")),
        ({"type": "Cookie", "cookieName": "s", "timeoutSeconds": 60}, SERVED,
         {"sessionName": "s", "type": "Cookie", "absoluteTimeout": "60s", "cookieConfig": {"lifetimeType": "Permanent"}},
         (True, "Cookie")),
        ({"type": "None"}, SERVED, None, (False, "None")),
        ({}, STANDARD, None, (False, "None")),
    ],
    ids=["client-ip-as-cookie", "cookie", "none", "standard-channel-crd"],
)
def test_a_route_carries_session_persistence_only_where_its_crd_serves_it(
    affinity_spec: dict[str, Any], options: BuildOptions, persistence: dict[str, Any] | None, path: tuple[bool, str]
) -> None:
    spec = {"sessionAffinity": affinity_spec, "ingress": {"gateway": {"name": "public"}}}
    obj, live = settle(disvc(replicas=2, spec=spec), options=options)
    [rule] = find(live, "HTTPRoute", "model")["spec"]["rules"]
    assert rule.get("sessionPersistence") == persistence
    assert _paths(obj)["HTTPRoute"] == path
    assert "Ingress" not in _paths(obj)


def test_a_canary_through_a_gateway_keeps_clients_by_the_rules_session_persistence() -> None:
    obj, live = _canary({"type": "Cookie"}, SERVED)
    [rule] = find(live, "HTTPRoute", "model")["spec"]["rules"]
    assert [ref.get("weight") for ref in rule["backendRefs"]] == [80, 20]
    assert rule["sessionPersistence"]["type"] == "Cookie"
    assert _paths(obj)["Canary"] == (True, "Cookie")


def test_a_grpc_model_through_a_gateway_gets_a_grpc_route() -> None:
    spec = {"ingress": {"gateway": {"name": "public"}}}
    obj, live = settle(disvc(template=GRPC_TEMPLATE, spec=spec), options=SERVED)
    route = find(live, "GRPCRoute", "model")
    assert route["apiVersion"] == "gateway.networking.k8s.io/v1"
    [rule] = route["spec"]["rules"]
    assert "matches" not in rule and rule["backendRefs"][0]["name"] == "model-v1"
    assert [o["kind"] for o in live if o["kind"] in ("Ingress", "HTTPRoute")] == []
    assert _paths(obj)["GRPCRoute"] == (True, "Cookie")
    # without the GRPCRoute CRD the same model gets an HTTPRoute
    _, live = settle(disvc(template=GRPC_TEMPLATE, spec=spec), options=BuildOptions(gateway_api=True))
    assert find(live, "HTTPRoute", "model")


@pytest.mark.parametrize(
    ("spec", "options", "kind"),
    [
        ({}, BuildOptions(gateway_api=True, default_gateway=GatewayRef("public", "infra")), "HTTPRoute"),
        ({}, BuildOptions(gateway_api=False, default_gateway=GatewayRef("public", "infra")), "Ingress"),
        ({"ingress": {"className": "nginx"}}, BuildOptions(gateway_api=True, default_gateway=GatewayRef("public")),
         "Ingress"),
        ({"ingress": {"gateway": {"name": "own"}}}, BuildOptions(gateway_api=True, default_gateway=GatewayRef("public")),
         "HTTPRoute"),
    ],
    ids=["default-gateway", "no-gateway-api-falls-back", "explicit-class-wins", "own-gateway-wins"],
)
def test_the_default_gateway_routes_dispatched_disvcs_that_name_none(spec: Obj, options: BuildOptions, kind: str) -> None:
    _, live = settle(disvc(spec=spec), options=options)
    routes = [o for o in live if o["kind"] in ("Ingress", "HTTPRoute")]
    assert [o["kind"] for o in routes] == [kind]
    if kind == "HTTPRoute":
        parent = routes[0]["spec"]["parentRefs"][0]
        assert parent["name"] == ("own" if "ingress" in spec else "public")


# --- the Gateway's verdict -----------------------------------------------------------


def _with_route_status(live: list[Obj], conditions: list[dict[str, Any]], parent: dict[str, Any] | None = None,
                       observed: int | None = 1) -> list[Obj]:
    live = copy.deepcopy(live)
    route = find(live, "HTTPRoute", "model")
    route["metadata"]["generation"] = 1
    ref = parent or {"group": "gateway.networking.k8s.io", "kind": "Gateway", "name": "public"}
    route["status"] = {"parents": [{
        "parentRef": ref, "controllerName": "example.com/gateway",
        "conditions": [{**c, **({"observedGeneration": observed} if observed is not None else {})} for c in conditions],
    }]}
    return live


ACCEPTED = [{"type": "Accepted", "status": "True", "reason": "Accepted", "message": ""},
            {"type": "ResolvedRefs", "status": "True", "reason": "ResolvedRefs", "message": ""}]
REFUSED = [{"type": "Accepted", "status": "False", "reason": "NotAllowedByListeners",
            "message": "no listener allows routes from namespace ns"},
           {"type": "ResolvedRefs", "status": "True", "reason": "ResolvedRefs", "message": ""}]


@pytest.mark.parametrize(
    ("conditions", "parent", "observed", "ready", "url"),
    [
        (None, None, 1, ("True", "AllReplicasReady"), False),
        (ACCEPTED, None, 1, ("True", "AllReplicasReady"), True),
        (REFUSED, None, 1, ("False", "RouteNotAccepted"), False),
        (REFUSED, None, 0, ("True", "AllReplicasReady"), False),  # about an older spec
        (REFUSED, {"kind": "Gateway", "name": "other"}, 1, ("True", "AllReplicasReady"), False),  # not our parent
        ([{"type": "ResolvedRefs", "status": "False", "reason": "BackendNotFound", "message": "Service gone"}],
         None, 1, ("False", "RouteNotAccepted"), False),
    ],
    ids=["pending", "accepted", "refused", "stale-refusal", "other-parent", "unresolved"],
)
def test_the_gateways_verdict_decides_ready_and_the_url(
    conditions: list[dict[str, Any]] | None, parent: dict[str, Any] | None, observed: int,
    ready: tuple[str, str], url: bool,
) -> None:
    obj, live = settle(disvc(spec={"ingress": {"gateway": {"name": "public"}}}), options=SERVED)
    if conditions is not None:
        live = _with_route_status(live, conditions, parent, observed)
    want = desired.state(obj, set_ready(live), SERVED)
    got = condition(want.status, "Ready")
    assert (got["status"], got["reason"]) == ready
    assert ("url" in want.status) == url
    if ready[1] == "RouteNotAccepted":
        assert "Gateway ns/public" in got["message"] and "False" in got["message"]
    # the verdict changes nothing in the route itself
    assert want.plan.is_empty


def test_a_refusal_names_the_gateways_reason_and_message() -> None:
    obj, live = settle(disvc(spec={"ingress": {"gateway": {"name": "public"}}}), options=SERVED)
    want = desired.state(obj, _with_route_status(live, REFUSED), SERVED)
    message = condition(want.status, "Ready")["message"]
    assert message == ("HTTPRoute model on Gateway ns/public: Accepted=False NotAllowedByListeners: "
                       "no listener allows routes from namespace ns")


def test_affinity_reports_are_plain_values() -> None:
    report = affinity.service_path(SessionAffinity("Cookie"))
    assert report.as_status()["mode"] == "ClientIP" and "cannot read cookies" in report.message
