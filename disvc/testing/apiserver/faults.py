"""Injected failures: make the loopback API server misbehave on purpose.

A controller's error paths (retry on 500, back off on 429 + Retry-After,
refetch on 409, relist on 410) only run when the API fails, which a healthy
test cluster never does.  A :class:`FaultRule` names which requests to spoil
(verb, resource, namespace, name; empty matches all), how (status code,
optional Retry-After, or only a delay), and how many times (``count``; None
for as long as the rule is installed).

Rules are added and removed from test threads while the server's loop thread
consults them, so :class:`FaultBook` guards them with a lock.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field


@dataclass(slots=True, eq=False)
class FaultRule:
    """Fail (or delay) the next ``count`` requests that match.

    ``resource`` uses RBAC's spelling: ``services`` matches the Service
    objects themselves, ``distributedinferenceservices/status`` their status
    subresource.  ``code`` None (or 0) only delays the request.  For a watch,
    410 is delivered as a real server does: HTTP 200 then an ERROR event.
    """

    verb: str | None = None
    """RBAC verb: get, list, watch, create, update, patch, delete, deletecollection."""
    resource: str | None = None
    namespace: str | None = None
    name: str | None = None
    count: int | None = 1
    """How many matching requests to spoil; None means every one."""
    code: int | None = 500
    retry_after: int | None = None
    """Seconds for the Retry-After header (429, 500 and 503 honour it)."""
    delay: float = 0.0
    """Seconds to stall before answering (or before failing)."""
    message: str | None = None
    hits: int = field(default=0)
    """How many requests this rule has spoiled so far."""

    def matches(self, verb: str, resource: str, namespace: str, name: str) -> bool:
        return (
            (self.verb is None or self.verb == verb)
            and (self.resource is None or self.resource == resource)
            and (self.namespace is None or self.namespace == namespace)
            and (self.name is None or self.name == name)
        )

    @property
    def exhausted(self) -> bool:
        return self.count is not None and self.hits >= self.count


class FaultBook:
    """The installed rules; the first live matching rule wins."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._rules: list[FaultRule] = []

    def add(self, rule: FaultRule) -> FaultRule:
        with self._lock:
            self._rules.append(rule)
        return rule

    def remove(self, rule: FaultRule) -> None:
        with self._lock:
            if rule in self._rules:
                self._rules.remove(rule)

    def clear(self) -> None:
        with self._lock:
            self._rules.clear()

    def take(self, verb: str, resource: str, namespace: str, name: str) -> FaultRule | None:
        """Consume one use of the first matching rule, if any."""
        if not self._rules:
            return None
        with self._lock:
            for rule in self._rules:
                if not rule.exhausted and rule.matches(verb, resource, namespace, name):
                    rule.hits += 1
                    if rule.exhausted:
                        self._rules.remove(rule)
                    return rule
        return None
