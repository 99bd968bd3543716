"""Request accounting: every request the loopback API server answered.

Tests and benchmarks assert how much a controller asked of the API ("one
write per change", "no LIST after startup"). The server records each
answered request as a :class:`RequestRecord` in a :class:`RequestLog`; test
threads read and filter it while the loop thread appends, so it takes a lock.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Final

WRITE_VERBS: Final = frozenset({"create", "update", "patch", "delete", "deletecollection"})


@dataclass(frozen=True, slots=True)
class RequestRecord:
    """One served API request, as the accounting sees it."""

    verb: str
    """RBAC verb (get, list, watch, create, update, patch, delete, deletecollection)."""
    group: str
    version: str
    resource: str
    """Plural resource name; empty for discovery and health paths."""
    subresource: str
    namespace: str
    name: str
    user_agent: str
    code: int
    method: str = ""
    path: str = ""

    def matches(
        self,
        verb: str | None,
        resource: str | None,
        user_agent: str | None,
        namespace: str | None,
        name: str | None,
        code: int | None,
    ) -> bool:
        """Whether every given (non-None) filter holds; see :meth:`RequestLog.count`."""
        if verb is not None and self.verb != verb:
            return False
        if resource is not None:
            full = f"{self.resource}/{self.subresource}" if self.subresource else self.resource
            if full != resource:
                return False
        if user_agent is not None and not self.user_agent.startswith(user_agent):
            return False
        if namespace is not None and self.namespace != namespace:
            return False
        if name is not None and self.name != name:
            return False
        return code is None or self.code == code


class RequestLog:
    """Every request served since the last reset, in arrival order."""

    def __init__(self) -> None:
        self._records: list[RequestRecord] = []
        self._lock = threading.Lock()

    def append(self, record: RequestRecord) -> None:
        with self._lock:
            self._records.append(record)

    def snapshot(self) -> list[RequestRecord]:
        with self._lock:
            return list(self._records)

    def clear(self) -> None:
        with self._lock:
            self._records.clear()

    def count(
        self,
        verb: str | None = None,
        resource: str | None = None,
        user_agent: str | None = None,
        *,
        namespace: str | None = None,
        name: str | None = None,
        code: int | None = None,
    ) -> int:
        """Count recorded requests matching every given filter.

        ``resource`` follows RBAC: ``services`` counts requests on the Service
        objects, ``distributedinferenceservices/status`` on that subresource.
        ``user_agent`` matches as a prefix (clients append versions).
        """
        return sum(
            1 for r in self.snapshot() if r.matches(verb, resource, user_agent, namespace, name, code)
        )

    def write_count(self, user_agent: str | None = None) -> int:
        """Requests that asked to change state (create/update/patch/delete[collection])."""
        return sum(
            1 for r in self.snapshot()
            if r.verb in WRITE_VERBS and (user_agent is None or r.user_agent.startswith(user_agent))
        )
