"""What the Gateway said about our route: accepted, refused, or not yet answered.

A Gateway API implementation writes, per parent Gateway it manages, a
``status.parents[]`` entry on the route with the conditions ``Accepted``
(the Gateway took the route: a listener allows it, the hostname fits) and
``ResolvedRefs`` (every backendRef resolved). Only conditions about the
route's current ``metadata.generation`` count: an older verdict is about a
spec we have since changed. A refusal makes the DISVC ``Ready=False``
(``conditions``) with the Gateway's reason and message; ``status.url`` is
claimed only for a route the Gateway accepted.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from disvc.builders import names
from disvc.builders.httproute import GATEWAY_GROUP
from disvc.builders.spec import GatewayRef
from disvc.builders.types import Obj, child_kind


@dataclass(frozen=True, slots=True)
class Verdict:
    accepted: bool
    """Every condition of our parent's entry is True for the current generation."""
    refusal: str | None = None
    """The first False condition, in words: kind, Gateway, reason, message."""


PENDING = Verdict(accepted=False)
"""No Gateway has answered for the route's current generation yet."""


def verdict(disvc_name: str, namespace: str, gateway: GatewayRef, live: Sequence[Obj]) -> Verdict:
    """The Gateway's verdict on our live route ``N`` (either kind)."""
    route = next(
        (
            obj
            for obj in live
            if child_kind(obj) in ("HTTPRoute", "GRPCRoute")
            and obj.get("metadata", {}).get("name") == names.route_name(disvc_name)
        ),
        None,
    )
    if route is None:
        return PENDING
    meta = route.get("metadata") or {}
    generation = meta.get("generation")
    status = route.get("status") or {}
    entries = [p for p in status.get("parents") or [] if _is_ours(p.get("parentRef"), gateway, namespace)]
    current: list[Mapping[str, Any]] = []
    for entry in entries:
        for condition in entry.get("conditions") or []:
            if condition.get("type") not in ("Accepted", "ResolvedRefs"):
                continue
            observed = condition.get("observedGeneration")
            if generation is not None and observed is not None and observed != generation:
                continue
            current.append(condition)
    refused = next((c for c in current if c.get("status") == "False"), None)
    if refused is not None:
        target = f"{gateway.namespace or namespace}/{gateway.name}"
        return Verdict(
            accepted=False,
            refusal=f"{route.get('kind', 'HTTPRoute')} {names.route_name(disvc_name)} on Gateway {target}: "
            f"{refused.get('type')}=False {refused.get('reason', '')}: {refused.get('message', '')}".rstrip(": "),
        )
    accepted = any(c.get("type") == "Accepted" and c.get("status") == "True" for c in current)
    return Verdict(accepted=accepted)


def _is_ours(ref: object, gateway: GatewayRef, namespace: str) -> bool:
    if not isinstance(ref, Mapping):
        return False
    return (
        ref.get("group", GATEWAY_GROUP) == GATEWAY_GROUP
        and ref.get("kind", "Gateway") == "Gateway"
        and ref.get("name") == gateway.name
        and ref.get("namespace", namespace) == (gateway.namespace or namespace)
        and ref.get("sectionName") == gateway.section_name
    )
