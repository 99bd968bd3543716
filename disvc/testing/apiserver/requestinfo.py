"""What a request asks for, read from its method and path (k8s ``RequestInfo``).

``/api/v1/namespaces/ns/services/name/status`` and
``/apis/group/version/watch/plural`` become a :class:`Call`: the RBAC verb,
group, version, resource, namespace, name and subresource. Accounting, fault
rules and the handlers all read the same :class:`Call`; a path that names no
resource (discovery, health, OpenAPI) is left to the server's non-resource
routes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from disvc.testing.apiserver import errors


@dataclass(frozen=True, slots=True)
class Call:
    """A parsed API request path plus the bits of the request handlers need."""

    method: str
    verb: str
    group: str
    version: str
    plural: str
    namespace: str
    name: str
    subresource: str
    watch: bool

    @property
    def resource(self) -> str:
        """RBAC's spelling: ``services`` or ``distributedinferenceservices/status``."""
        return f"{self.plural}/{self.subresource}" if self.subresource else self.plural


class Query:
    """Typed access to query parameters."""

    def __init__(self, query: Any) -> None:
        self._query = query

    def get(self, key: str) -> str | None:
        value = self._query.get(key)
        return None if value is None else str(value)

    def flag(self, key: str) -> bool:
        return (self.get(key) or "").lower() in ("true", "1")

    def integer(self, key: str, what: str = "") -> int | None:
        """The parameter as an integer (None when absent or empty); 400 names ``what`` it should be."""
        value = self.get(key)
        if value is None or value == "":
            return None
        try:
            return int(value)
        except ValueError as exc:
            raise errors.bad_request(f"invalid {what}: {value!r}" if what else f"invalid value for {key}: {value!r}") from exc

    def resource_version(self) -> int | None:
        return self.integer("resourceVersion", "resource version")


def parse(method: str, path: str, query: Query) -> Call | None:
    """Parse a resource path; None for discovery and other non-resource paths."""
    parts = [p for p in path.split("/") if p]
    if len(parts) < 2 or parts[0] not in ("api", "apis"):
        return None
    if parts[0] == "api":
        group, version, rest = "", parts[1], parts[2:]
    else:
        if len(parts) < 3:
            return None
        group, version, rest = parts[1], parts[2], parts[3:]
    if not rest:
        return None
    watch = False
    if rest[0] == "watch":
        watch, rest = True, rest[1:]
    namespace = ""
    if len(rest) >= 3 and rest[0] == "namespaces" and rest[2] not in ("status", "finalize"):
        namespace, rest = rest[1], rest[2:]
    if not rest or len(rest) > 3:
        raise errors.unknown_resource()
    plural = rest[0]
    name = rest[1] if len(rest) > 1 else ""
    subresource = rest[2] if len(rest) > 2 else ""
    watch = watch or query.flag("watch")
    return Call(method, _verb(method, bool(name), watch), group, version, plural, namespace, name, subresource, watch)


def _verb(method: str, has_name: bool, watch: bool) -> str:
    if method == "GET":
        if watch:
            return "watch"
        return "get" if has_name else "list"
    if method == "POST":
        return "create"
    if method == "PUT":
        return "update"
    if method == "PATCH":
        return "patch"
    if method == "DELETE":
        return "delete" if has_name else "deletecollection"
    return method.lower()
