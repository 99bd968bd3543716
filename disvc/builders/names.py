"""Names, labels, selectors and annotation keys of a DISVC's children.

Every other module (builders, handler, reconciler, render) takes these from
here, so the naming scheme lives in one place.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any, Final

FIELD_MANAGER: Final = "disvc-controller"
"""Server-side apply field manager for every write the controller makes."""

DISVC_LABEL: Final = "disvc"
"""On every child: the owning DISVC's name. Informers watch children by it."""

GROUP_LABEL: Final = "disvc.group"
"""On ISVCs: ``N-v<g>``, selected by the generation Service."""

TEMPLATE_HASH_ANNOTATION: Final = "disvc.serving.kserve.io/template-hash"
"""On ISVCs: hash of everything that shapes an ISVC, to tell generations apart."""

APPLIED_HASH_ANNOTATION: Final = "disvc.serving.kserve.io/applied-hash"
"""On every child: hash of the body we applied; a changed hash means re-apply
even when every field we set still matches (a field we stopped setting)."""

PROPAGATED_ANNOTATION_PREFIX: Final = "serving.kserve.io/"
"""DISVC metadata annotations with this prefix are copied to every ISVC."""

MAX_NAME_LENGTH: Final = 63
"""DNS-1035 label limit that applies to ISVC and Service names."""

MAX_DISVC_NAME_LENGTH: Final = 50
"""Longest DISVC name we accept (the CRD enforces it too). ISVC names are
``N-v<g>-<i>``: 50 leaves 13 characters, room for ``-v<g>-<i>`` with 10 digits
between generation and index (e.g. generation 99999, index 9999)."""

GRPC_BACKEND_ANNOTATION: Final = "nginx.ingress.kubernetes.io/backend-protocol"
"""Set to ``GRPC`` on the Ingress when the model serves gRPC."""

SERVICE_PORT: Final = 80
"""Port every child Service exposes; the Ingress routes to it."""


def generation_label(generation: int) -> str:
    """``v<g>``: how ``status.activeGeneration`` spells a generation."""
    return f"v{generation}"


def parse_generation_label(value: object) -> int | None:
    """The generation number in ``v<g>``, or None when ``value`` is not one."""
    if not isinstance(value, str) or not value.startswith("v"):
        return None
    digits = value[1:]
    if not digits.isdigit() or not digits.isascii() or (len(digits) > 1 and digits[0] == "0"):
        return None
    number = int(digits)
    return number if number >= 1 else None


def generation_name(disvc_name: str, generation: int) -> str:
    """``N-v<g>``: the generation Service's name and the ISVCs' group label."""
    return f"{disvc_name}-{generation_label(generation)}"


def isvc_name(disvc_name: str, generation: int, index: int) -> str:
    """``N-v<g>-<i>``: the ``index``-th replica ISVC of ``generation``."""
    return f"{generation_name(disvc_name, generation)}-{index}"


def top_service_name(disvc_name: str) -> str:
    """The stable top-level Service shares the DISVC's name."""
    return disvc_name


def ingress_name(disvc_name: str) -> str:
    return disvc_name


def route_name(disvc_name: str) -> str:
    """The Gateway API HTTPRoute that replaces the Ingress when a Gateway is named."""
    return disvc_name


def canary_ingress_name(disvc_name: str) -> str:
    """The second Ingress that carries a canary's share of external traffic."""
    return f"{disvc_name}-canary"


def default_ingress_host(disvc_name: str, namespace: str, domain: str) -> str:
    """``N-NS.<domain>``, the Ingress host when the DISVC names none."""
    return f"{disvc_name}-{namespace}.{domain}"


def parse_generation_name(disvc_name: str, value: object) -> int | None:
    """The generation ``g`` in ``N-v<g>`` for this DISVC, or None."""
    prefix = f"{disvc_name}-"
    if not isinstance(value, str) or not value.startswith(prefix):
        return None
    return parse_generation_label(value[len(prefix):])


def parse_isvc_name(disvc_name: str, value: str) -> tuple[int, int] | None:
    """``(generation, index)`` from ``N-v<g>-<i>``, or None when it is not one.

    Parsed from the right, so the result is unambiguous even when ``N``
    itself contains ``-v<digits>-``."""
    group, sep, index = value.rpartition("-")
    if not sep or not index.isdigit() or not index.isascii():
        return None
    if len(index) > 1 and index[0] == "0":
        return None
    generation = parse_generation_name(disvc_name, group)
    return None if generation is None else (generation, int(index))


def selector(disvc_name: str) -> str:
    """The label selector string of ``status.selector`` (the scale subresource)."""
    return f"{DISVC_LABEL}={disvc_name}"


def child_labels(disvc_name: str) -> dict[str, str]:
    """Labels on every child: the informers and the top-level Service select by them."""
    return {DISVC_LABEL: disvc_name}


def generation_labels(disvc_name: str, generation: int) -> dict[str, str]:
    """Labels on a generation's ISVCs (and its Service, to find the generation
    from live objects even at zero replicas)."""
    return {DISVC_LABEL: disvc_name, GROUP_LABEL: generation_name(disvc_name, generation)}


def generation_selector(disvc_name: str, generation: int) -> dict[str, str]:
    """The generation Service's pod selector: only that generation's ISVC pods."""
    return {GROUP_LABEL: generation_name(disvc_name, generation)}


def content_hash(value: object) -> str:
    """A stable short hash of a JSON value (sha256 of canonical JSON, 10 hex chars).

    Canonical means sorted keys and no whitespace, so equal values hash
    equally whatever order their dicts were built in."""
    canonical = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()[:10]


def is_generation_scoped(obj: Mapping[str, Any]) -> bool:
    """True for a generation's own objects (its ISVCs and its Service).

    They never change shape under one name: a new template makes a new
    generation with new names. The DISVC-level Service and Ingress do change.
    """
    if obj.get("kind") == "ControllerRevision":
        return True  # a generation's template, written once (its data is immutable)
    labels = (obj.get("metadata") or {}).get("labels") or {}
    return GROUP_LABEL in labels
