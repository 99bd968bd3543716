"""Who may read ``/metrics``: the API server decides, the answers are cached.

The secure metrics endpoint lets a request through only when its bearer
token passes two questions put to the Kubernetes API, the same two
controller-runtime's ``metrics/filters`` (and kube-rbac-proxy before it) ask:

1. authentication: a ``TokenReview`` says whose token it is (user name, uid,
   groups, extra);
2. authorization: a ``SubjectAccessReview`` says whether that user may use
   the HTTP verb (``get``) on the non-resource URL of the request
   (``/metrics``), which RBAC grants with a ``nonResourceURLs`` rule.

No token: 401. A token the API server does not accept: 401. An identity RBAC
does not allow: 403. A review that cannot be made (API unreachable): 503,
never cached, so the next scrape asks again.

Prometheus scrapes every few seconds with the same token, so the answers are
cached, as the delegating authenticator and authorizer of k8s.io/apiserver
cache them: a token's review for a minute, an allow for five minutes, a
denial and a rejected token for thirty seconds (a fresh RoleBinding takes
effect that soon). Each cache is an LRU bounded in entries, so a flood of
made-up tokens cannot grow memory; tokens are kept only as SHA-256 digests.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Final, Generic, Protocol, TypeVar

import structlog

from disvc.builders.types import Obj
from disvc.controller import errors

log = structlog.get_logger(__name__)

TOKEN_TTL: Final = 60.0
ALLOW_TTL: Final = 300.0
DENY_TTL: Final = 30.0
CACHE_SIZE: Final = 1024
"""Entries per cache; one scraper needs one of each."""

Clock = Callable[[], float]
K = TypeVar("K")
V = TypeVar("V")


class Reviewer(Protocol):
    """The two API calls this needs (``kube.Kube`` provides them)."""

    def create_token_review(self, token: str) -> Obj: ...

    def create_subject_access_review(self, spec: Obj) -> Obj: ...


@dataclass(frozen=True, slots=True)
class User:
    """An identity as a TokenReview reports it."""

    username: str
    uid: str = ""
    groups: tuple[str, ...] = ()
    extra: tuple[tuple[str, tuple[str, ...]], ...] = ()
    """``status.user.extra`` as sorted pairs, so a ``User`` can key a cache."""

    @classmethod
    def from_review(cls, user: Obj) -> User:
        extra: Mapping[str, list[str]] = user.get("extra") or {}
        return cls(
            username=str(user.get("username") or ""),
            uid=str(user.get("uid") or ""),
            groups=tuple(str(g) for g in user.get("groups") or ()),
            extra=tuple(sorted((str(k), tuple(str(v) for v in values)) for k, values in extra.items())),
        )


REJECTED: Final = User("")
"""Cached for a token the API server did not accept (no real user has an empty name)."""


@dataclass(slots=True)
class ExpiringLru(Generic[K, V]):
    """A bounded map whose entries expire; the least recently used goes first when full."""

    max_entries: int
    clock: Clock
    _entries: OrderedDict[K, tuple[float, V]] = field(default_factory=OrderedDict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def get(self, key: K) -> V | None:
        with self._lock:
            found = self._entries.get(key)
            if found is None:
                return None
            expires, value = found
            if self.clock() >= expires:
                del self._entries[key]
                return None
            self._entries.move_to_end(key)
            return value

    def put(self, key: K, value: V, ttl: float) -> None:
        with self._lock:
            self._entries[key] = (self.clock() + ttl, value)
            self._entries.move_to_end(key)
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)


def bearer_token(authorization: str | None) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header, else None."""
    if not authorization:
        return None
    scheme, _, token = authorization.strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        return None
    return token


class MetricsAuth:
    """Decides an HTTP status for a request: 200 to serve it, else 401, 403 or 503."""

    def __init__(
        self,
        reviewer: Reviewer,
        *,
        clock: Clock = time.monotonic,
        token_ttl: float = TOKEN_TTL,
        allow_ttl: float = ALLOW_TTL,
        deny_ttl: float = DENY_TTL,
        max_entries: int = CACHE_SIZE,
    ) -> None:
        self._reviewer = reviewer
        self._token_ttl, self._allow_ttl, self._deny_ttl = token_ttl, allow_ttl, deny_ttl
        self.tokens: ExpiringLru[str, User] = ExpiringLru(max_entries, clock)
        """SHA-256 of a token -> its user, or ``REJECTED``."""
        self.decisions: ExpiringLru[tuple[User, str, str], bool] = ExpiringLru(max_entries, clock)
        """(user, verb, path) -> allowed."""

    def check(self, authorization: str | None, verb: str, path: str) -> HTTPStatus:
        token = bearer_token(authorization)
        if token is None:
            return HTTPStatus.UNAUTHORIZED
        try:
            user = self._authenticate(token)
            if user is None:
                return HTTPStatus.UNAUTHORIZED
            allowed = self._authorize(user, verb, path)
        except errors.ControllerError as error:
            log.warning("Cannot review a metrics request", error=str(error))
            return HTTPStatus.SERVICE_UNAVAILABLE
        if not allowed:
            log.debug("Metrics request forbidden", user=user.username, verb=verb, path=path)
            return HTTPStatus.FORBIDDEN
        return HTTPStatus.OK

    def _authenticate(self, token: str) -> User | None:
        key = hashlib.sha256(token.encode()).hexdigest()
        cached = self.tokens.get(key)
        if cached is None:
            status = self._reviewer.create_token_review(token).get("status") or {}
            authenticated = bool(status.get("authenticated"))
            cached = User.from_review(status.get("user") or {}) if authenticated else REJECTED
            self.tokens.put(key, cached, self._token_ttl if authenticated else self._deny_ttl)
        return None if cached is REJECTED else cached

    def _authorize(self, user: User, verb: str, path: str) -> bool:
        key = (user, verb, path)
        cached = self.decisions.get(key)
        if cached is not None:
            return cached
        spec: Obj = {
            "user": user.username,
            "groups": list(user.groups),
            "nonResourceAttributes": {"path": path, "verb": verb},
        }
        if user.uid:
            spec["uid"] = user.uid
        if user.extra:
            spec["extra"] = {k: list(v) for k, v in user.extra}
        status = self._reviewer.create_subject_access_review(spec).get("status") or {}
        allowed = bool(status.get("allowed"))
        self.decisions.put(key, allowed, self._allow_ttl if allowed else self._deny_ttl)
        return allowed
