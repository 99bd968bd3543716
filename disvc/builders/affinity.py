"""Per-client affinity (``spec.sessionAffinity``) in the terms of each router on the path.

A client reaches a replica through one of three kinds of router, and each
picks endpoints by its own rules, never by another's:

- kube-proxy, for in-cluster clients of Service ``N`` or ``N-v<g>``: the
  Services' ``sessionAffinity: ClientIP`` and its timeout. kube-proxy cannot
  read cookies, so a ``Cookie`` DISVC keeps ``ClientIP`` there.
- ingress-nginx, for the Ingress ``N`` (and ``N-canary``): it balances over
  the endpoints itself and ignores the Services' affinity. ``ClientIP`` is
  its consistent hashing on the client address (``upstream-hash-by:
  $remote_addr``); ``Cookie`` is its cookie affinity (``affinity: cookie``,
  ``session-cookie-name``, ``session-cookie-max-age``). Its canary decision
  comes first: a request whose affinity cookie names a side stays on that
  side (``affinity-canary-behavior: sticky``), every other request is
  weighed on its own. So during a canary only cookie affinity keeps a client
  on one generation; hashing keeps it on one replica of whichever side the
  weight picked.
- a Gateway API implementation, for the HTTPRoute or GRPCRoute ``N``: it
  too ignores the Services' affinity. The route rule's
  ``sessionPersistence`` (an experimental-channel field) pins a client by a
  cookie, across both sides of a canary. Gateway API has no client-address
  affinity, so ``ClientIP`` asks for that cookie too, the nearest it offers.
  Where the installed route CRD does not serve the field nothing is set.

``paths`` says, path by path, what holds and why not where it does not: the
``status.sessionAffinity`` a user reads. User annotations in
``spec.ingress.annotations`` win over ours, so the Ingress paths are judged
from the annotations the Ingress finally carries.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final, Literal, TypeAlias

from disvc.builders.spec import SessionAffinity

NGINX: Final = "nginx.ingress.kubernetes.io/"
HASH_BY_ANNOTATION: Final = NGINX + "upstream-hash-by"
AFFINITY_ANNOTATION: Final = NGINX + "affinity"
COOKIE_NAME_ANNOTATION: Final = NGINX + "session-cookie-name"
COOKIE_MAX_AGE_ANNOTATION: Final = NGINX + "session-cookie-max-age"
CANARY_BEHAVIOR_ANNOTATION: Final = NGINX + "affinity-canary-behavior"
CLIENT_ADDRESS: Final = "$remote_addr"

PathName: TypeAlias = Literal["Service", "Ingress", "Canary", "HTTPRoute", "GRPCRoute"]
Mode: TypeAlias = Literal["ClientIP", "Cookie", "Hash", "None"]


@dataclass(frozen=True, slots=True)
class PathReport:
    """One entry of ``status.sessionAffinity.paths``."""

    path: PathName
    enforced: bool
    mode: Mode
    """What the router on this path applies."""
    message: str

    def as_status(self) -> dict[str, Any]:
        return {"path": self.path, "enforced": self.enforced, "mode": self.mode, "message": self.message}


def service_fields(affinity: SessionAffinity) -> dict[str, Any]:
    """The Service ``spec`` fields for ``affinity`` (kube-proxy's terms)."""
    if affinity.type == "None":
        return {"sessionAffinity": "None"}
    # Cookie too: kube-proxy cannot read cookies; the client address is what it has
    return {
        "sessionAffinity": "ClientIP",
        "sessionAffinityConfig": {"clientIP": {"timeoutSeconds": affinity.timeout_seconds}},
    }


def ingress_annotations(affinity: SessionAffinity, *, canary: bool) -> dict[str, str]:
    """ingress-nginx annotations for ``affinity`` on the Ingress ``N``, or on
    the canary Ingress ``N-canary`` (``canary``)."""
    if affinity.type == "ClientIP":
        # the canary backend hashes by its own annotation
        return {HASH_BY_ANNOTATION: CLIENT_ADDRESS}
    if affinity.type == "Cookie":
        if canary:
            # sticky (ingress-nginx's default, stated so a reader sees it):
            # the main Ingress's cookie affinity keeps each client on its side
            return {CANARY_BEHAVIOR_ANNOTATION: "sticky"}
        return {
            AFFINITY_ANNOTATION: "cookie",
            COOKIE_NAME_ANNOTATION: affinity.cookie_name,
            COOKIE_MAX_AGE_ANNOTATION: str(affinity.timeout_seconds),
        }
    return {}


def session_persistence(affinity: SessionAffinity) -> dict[str, Any] | None:
    """A route rule's ``sessionPersistence`` for ``affinity`` (None: none asked)."""
    if affinity.type == "None":
        return None
    return {
        "sessionName": affinity.cookie_name,
        "type": "Cookie",
        "absoluteTimeout": f"{affinity.timeout_seconds}s",
        "cookieConfig": {"lifetimeType": "Permanent"},
    }


def service_path(affinity: SessionAffinity) -> PathReport:
    if affinity.type == "None":
        return PathReport("Service", False, "None", "spec.sessionAffinity.type is None: kube-proxy "
                          "picks a replica for each new connection")
    message = (
        f"kube-proxy keeps each client address on one replica for {affinity.timeout_seconds}s "
        "(in-cluster clients of Services N and N-v<g>)"
    )
    if affinity.type == "Cookie":
        message += "; kube-proxy cannot read cookies, so the Services use ClientIP"
    return PathReport("Service", True, "ClientIP", message)


def ingress_path(annotations: Mapping[str, str], *, canary: bool) -> PathReport:
    """The Ingress path (or the canary's side decision, ``canary``), judged
    from the annotations the main Ingress finally carries."""
    cookie = annotations.get(AFFINITY_ANNOTATION) == "cookie"
    hashed = annotations.get(HASH_BY_ANNOTATION)
    if canary:
        if cookie:
            return PathReport("Canary", True, "Cookie", "ingress-nginx keeps a client whose affinity "
                              "cookie names a generation on that generation (affinity-canary-behavior: "
                              "sticky); the canary weight decides only for clients without one")
        return PathReport("Canary", False, "None", "ingress-nginx draws the canary weight for each "
                          "request of a client without an affinity cookie, so a client may alternate "
                          "between generations; only spec.sessionAffinity.type Cookie keeps it on one")
    if cookie:
        name = annotations.get(COOKIE_NAME_ANNOTATION, "INGRESSCOOKIE")
        return PathReport("Ingress", True, "Cookie", f"ingress-nginx cookie affinity ({name}) for "
                          "clients that keep cookies; an Ingress controller other than ingress-nginx "
                          "ignores it")
    if hashed:
        mode: Mode = "ClientIP" if hashed in (CLIENT_ADDRESS, "$binary_remote_addr") else "Hash"
        return PathReport("Ingress", True, mode, f"ingress-nginx hashes {hashed} to one replica; an "
                          "Ingress controller other than ingress-nginx ignores it")
    return PathReport("Ingress", False, "None", "ingress-nginx balances each request itself and does "
                      "not apply the Services' affinity; no affinity annotation is set")


def route_path(
    affinity: SessionAffinity, kind: Literal["HTTPRoute", "GRPCRoute"], served: bool, *, canary: bool
) -> PathReport:
    """A Gateway API route, or the canary's split on it (``canary``);
    ``served``: the installed route CRD serves ``sessionPersistence``."""
    path: PathName = "Canary" if canary else kind
    if affinity.type == "None":
        return PathReport(path, False, "None", "spec.sessionAffinity.type is None: the Gateway "
                          "balances each request")
    if not served:
        return PathReport(path, False, "None", f"the installed {kind} CRD has no sessionPersistence "
                          "(Gateway API standard channel): the Gateway balances each request itself "
                          "and does not apply the Services' affinity")
    message = f"{kind} sessionPersistence: cookie {affinity.cookie_name} keeps a client on one replica"
    if canary:
        message += " and one generation (the rule spans both backendRefs)"
    if affinity.type == "ClientIP":
        message += "; Gateway API has no client-address affinity, so a cookie is the nearest"
    return PathReport(path, True, "Cookie", message + ", for clients that keep cookies")


def status(affinity: SessionAffinity, reports: list[PathReport]) -> dict[str, Any]:
    """``status.sessionAffinity``."""
    return {"type": affinity.type, "paths": [report.as_status() for report in reports]}
