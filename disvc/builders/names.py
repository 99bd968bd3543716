"""Names, labels, selectors and annotation keys of a DISVC's children.

Every other module (builders, handler, reconciler, render) takes these from
here, so the naming scheme lives in one place.
"""

from __future__ import annotations

from typing import Final

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
