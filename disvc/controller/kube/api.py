"""``Kube``: the controller's only door to the Kubernetes API, raw JSON.

Every request the controller makes goes through ``Kube``. It speaks JSON
dicts, never the ``kubernetes`` package's typed models: deserializing
thousands of ``V1*`` objects costs far more than ``json.loads``, and our
objects (SSA bodies, both CRDs) are dicts anyway. Each method checks its call
against the permission table (``resources.resource``), sends one request
through ``_request`` (over ``transport.Connections``; it counts the request
and maps a failed response with ``responses``), and retries transient
failures (``retry``). Watches go over the same connections (``_stream``)
and are returned as ``watching.Watch`` streams, not retried.

A write whose connection failed after it went out may or may not have been
applied: it raises ``errors.UnknownOutcomeError`` and is never resent here.
The caller's next attempt starts from a read (the reconciler from its cache
and the child's watch; the leader elector from a GET of the Lease).
"""

from __future__ import annotations

import builtins
import json
import time
from collections.abc import Callable, Mapping
from typing import Final, TypeAlias
from urllib.parse import urlencode

from kubernetes import client as k8s_client

from disvc import __version__
from disvc.builders import names
from disvc.builders.types import Obj
from disvc.controller import errors
from disvc.controller.kube import auth, lists, responses, retry, transport
from disvc.controller.kube.resources import (
    EVENT_KIND,
    LEASE_KIND,
    RESOURCES,
    SUBJECT_ACCESS_REVIEW_KIND,
    TOKEN_REVIEW_KIND,
    Resource,
    Verb,
    resource,
)
from disvc.controller.kube.watching import Watch

RequestHook: TypeAlias = Callable[[str, str, str], None]
"""``on_request(verb, kind, code)``: called once for every request sent, with
the response's status code, or ``"<error>"`` when none came back."""

RetryAfterHook: TypeAlias = Callable[[str, str, float], None]
"""``on_retry_after(verb, kind, seconds)``: called each time a call waits
out a ``Retry-After`` before trying again (not for one left to the caller)."""

NO_RESPONSE: Final = "<error>"

DEFAULT_USER_AGENT: Final = f"disvc-controller/{__version__}"
REQUEST_TIMEOUT: Final = (5.0, 30.0)
"""(connect, read) seconds for every call but watches."""
WATCH_TIMEOUT_SECONDS: Final = 300
"""Server-side watch timeout; the reflector re-watches when it ends."""
WATCH_READ_MARGIN: Final = 30.0
"""A watch read that stays silent this long past its server timeout is dead
(the bound when the caller sets no shorter idle limit)."""
LIST_PAGE_SIZE: Final = 500
AUTH_RECHECK_SECONDS: Final = 1.0
"""How stale the bearer token may be: tokens are refreshed well before they expire."""


class Kube:
    """Raw-JSON access to the resources in ``RESOURCES``; thread-safe.

    Every method maps failures onto ``disvc.controller.errors`` and retries
    transient ones (5xx, 429, resets) a few times before giving up.
    """

    def __init__(
        self,
        api_client: k8s_client.ApiClient,
        user_agent: str = DEFAULT_USER_AGENT,
        *,
        on_request: RequestHook | None = None,
        on_retry_after: RetryAfterHook | None = None,
        request_timeout: tuple[float, float] = REQUEST_TIMEOUT,
        retry_attempts: int = retry.ATTEMPTS,
        connections: transport.Transport | None = None,
    ) -> None:
        self._api = api_client
        self._user_agent = user_agent
        self.on_request = on_request
        """Attached by the metrics layer; told of every request sent."""
        self.on_retry_after = on_retry_after
        """Attached by the metrics layer; told of every ``Retry-After`` waited out in a call."""
        self._timeout = request_timeout
        self._retrying = retry.policy(retry_attempts, on_wait=self._waited)
        self._retrying_once_only = retry.policy(retry_attempts, replayable=False, on_wait=self._waited)
        self._connections = connections if connections is not None else auth.connections(api_client.configuration)
        self._auth_value: str | None = None
        self._auth_checked = float("-inf")

    def bounded(self, seconds: float) -> Kube:
        """A ``Kube`` on the same connection pool whose every call gives up
        within about ``seconds``: one attempt, no in-call retry.

        Leader election needs it: a lease renewal that hangs in retries past
        the renew deadline would leave this process acting as leader after
        another has taken over.
        """
        return Kube(
            self._api,
            self._user_agent,
            on_request=self.on_request,
            on_retry_after=self.on_retry_after,
            request_timeout=(min(self._timeout[0], seconds), seconds),
            retry_attempts=1,
            connections=self._connections,
        )

    # -- reads -------------------------------------------------------------

    def get(self, kind: str, namespace: str | None, name: str) -> Obj | None:
        """The object, or None when it does not exist."""
        res = resource(kind, "get")
        try:
            return self._call("get", res, "GET", res.path(namespace, name))
        except errors.NotFoundError:
            return None

    def list(
        self, kind: str, namespace: str | None = None, label_selector: str | None = None,
        *, transform: Callable[[Obj], Obj] | None = None, any_version: bool = False,
        field_selector: str | None = None,
    ) -> tuple[list[Obj], str]:
        """Every matching object (apiVersion/kind filled in) and the list's resourceVersion.

        ``transform`` is applied to each item as it is decoded (see ``lists``).
        ``any_version`` lets the server answer from its watch cache
        (``resourceVersion=0``, as client-go's first list): far cheaper for
        the server than paging through etcd, possibly a little behind it,
        and the watch that follows catches up.
        """
        res = resource(kind, "list")
        try:
            return self._list_pages(
                res, namespace, label_selector, LIST_PAGE_SIZE, transform, any_version, field_selector
            )
        except errors.GoneError:
            # The continue token expired between pages: one unpaginated list
            # is consistent by construction.
            return self._list_pages(res, namespace, label_selector, None, transform, False, field_selector)

    def _list_pages(
        self, res: Resource, namespace: str | None, label_selector: str | None, limit: int | None,
        transform: Callable[[Obj], Obj] | None, any_version: bool, field_selector: str | None = None,
    ) -> tuple[builtins.list[Obj], str]:
        def each(item: Obj) -> Obj:
            item.setdefault("apiVersion", res.api_version)
            item.setdefault("kind", res.kind)
            return transform(item) if transform is not None else item

        items: list[Obj] = []
        token = ""
        while True:
            query: dict[str, str | int] = {}
            if label_selector:
                query["labelSelector"] = label_selector
            if field_selector:
                query["fieldSelector"] = field_selector
            if limit:
                query["limit"] = limit
            if token:
                query["continue"] = token
            elif any_version:
                query["resourceVersion"] = "0"
            body = self._request("list", res, "GET", res.path(namespace), query=query)
            try:
                page, meta = lists.decode(body, each)
            except ValueError as exc:
                raise errors.TransientError(f"list {res.plural}: the answer is not a JSON list: {exc}") from exc
            items.extend(page)
            token = meta.get("continue") or ""
            if not token:
                return items, str(meta.get("resourceVersion", ""))

    def watch(
        self,
        kind: str,
        resource_version: str,
        namespace: str | None = None,
        label_selector: str | None = None,
        timeout_seconds: int = WATCH_TIMEOUT_SECONDS,
        allow_bookmarks: bool = True,
        field_selector: str | None = None,
        idle_timeout: float | None = None,
    ) -> Watch:
        """Start a watch from ``resource_version``; events stream as they arrive.

        Raises ``GoneError`` (at start or while iterating) when the version is
        too old; iteration ends when the server closes the watch. When nothing
        arrives (no event, no bookmark, no byte) for ``idle_timeout`` seconds,
        or for the server timeout plus a margin, iteration raises
        ``IdleWatchError``.
        """
        res = resource(kind, "watch")
        query: dict[str, str | int] = {
            "watch": "true",
            "resourceVersion": resource_version,
            "timeoutSeconds": timeout_seconds,
        }
        if allow_bookmarks:
            query["allowWatchBookmarks"] = "true"
        if label_selector:
            query["labelSelector"] = label_selector
        if field_selector:
            query["fieldSelector"] = field_selector
        silence = timeout_seconds + WATCH_READ_MARGIN
        if idle_timeout is not None:
            silence = min(silence, idle_timeout)
        # No in-call retry: the reflector owns the backoff for watches.
        response = self._stream(res, res.path(namespace), query, (self._timeout[0], silence))
        return Watch(response, res.kind, res.api_version, silence)

    # -- writes ------------------------------------------------------------

    def create(self, obj: Obj) -> Obj:
        """POST ``obj`` (field manager ``disvc-controller``).

        Unlike an apply, it fails with ``ConflictError`` (409 AlreadyExists)
        whenever the name is taken, whatever the existing object holds.
        Strict field validation: a field the schema does not know (a typo in
        a DISVC's ISVC template) fails the create with ``PermanentError``
        naming it, instead of being dropped without a word.
        """
        res = resource(obj["kind"], "create")
        return self._call(
            "create", res, "POST", res.path(obj["metadata"].get("namespace"), None),
            query={"fieldManager": names.FIELD_MANAGER, "fieldValidation": "Strict"}, body=obj,
        )

    def apply(self, obj: Obj, subresource: str | None = None, *, force: bool = True) -> Obj:
        """Server-side apply ``obj`` (field manager ``disvc-controller``).

        ``force`` takes over fields other managers set (drift repair on
        objects we control). Without it, an object someone else wrote that
        differs in any field we set makes the apply fail with ``ConflictError``
        and leaves the object untouched.
        """
        res = resource(obj["kind"], "patch", subresource)
        meta = obj["metadata"]
        query = {"fieldManager": names.FIELD_MANAGER}
        if force:
            query["force"] = "true"
        return self._call(
            "patch", res, "PATCH", res.path(meta.get("namespace"), meta["name"], subresource),
            query=query, body=obj, content_type="application/apply-patch+yaml",
        )

    def delete(
        self, kind: str, namespace: str | None, name: str,
        uid: str | None = None, resource_version: str | None = None,
    ) -> None:
        """Delete with uid/resourceVersion preconditions; already gone is fine.

        A failed precondition (somebody replaced or changed it) raises
        ``ConflictError``.
        """
        res = resource(kind, "delete")
        preconditions = {k: v for k, v in (("uid", uid), ("resourceVersion", resource_version)) if v}
        body: Obj = {"apiVersion": "v1", "kind": "DeleteOptions", "propagationPolicy": "Background"}
        if preconditions:
            body["preconditions"] = preconditions
        try:
            self._call("delete", res, "DELETE", res.path(namespace, name), body=body)
        except errors.NotFoundError:
            return

    def create_event(self, event: Obj) -> Obj:
        """Create a core/v1 Event (in the namespace of its ``metadata``)."""
        res = resource(EVENT_KIND, "create")
        return self._call("create", res, "POST", res.path(event["metadata"]["namespace"]), body=event)

    def patch_event(self, namespace: str, name: str, patch: Obj) -> Obj:
        """Merge-patch an Event: how a repeat updates ``count`` and ``lastTimestamp``.

        ``NotFoundError`` when the Event is gone (expired by the API's TTL).
        """
        res = resource(EVENT_KIND, "patch")
        return self._call(
            "patch", res, "PATCH", res.path(namespace, name),
            body=patch, content_type="application/merge-patch+json",
        )

    def get_lease(self, namespace: str, name: str) -> Obj | None:
        return self.get(LEASE_KIND, namespace, name)

    def create_lease(self, namespace: str, name: str, body: Obj) -> Obj:
        """Create the Lease; ``ConflictError`` when another candidate was first."""
        res = resource(LEASE_KIND, "create")
        return self._call("create", res, "POST", res.path(namespace), body=_lease_body(body, namespace, name))

    def update_lease(self, namespace: str, name: str, body: Obj) -> Obj:
        """Replace the Lease; ``ConflictError`` when ``body``'s resourceVersion is stale."""
        res = resource(LEASE_KIND, "update")
        return self._call("update", res, "PUT", res.path(namespace, name), body=_lease_body(body, namespace, name))

    # -- reviews: the secure /metrics endpoint asks who a caller is and what it may do

    def create_token_review(self, token: str) -> Obj:
        """The API server's verdict on a bearer token: ``status.authenticated``, ``status.user``."""
        return self._review(TOKEN_REVIEW_KIND, {"token": token})

    def create_subject_access_review(self, spec: Obj) -> Obj:
        """Whether the user in ``spec`` may do what ``spec`` asks: ``status.allowed``."""
        return self._review(SUBJECT_ACCESS_REVIEW_KIND, spec)

    def _review(self, kind: str, spec: Obj) -> Obj:
        res = resource(kind, "create")
        body: Obj = {"apiVersion": res.api_version, "kind": res.kind, "spec": spec}
        return self._call("create", res, "POST", res.path(), body=body)

    def server_version(self) -> Obj:
        """``GET /version``: the API server's build (``major``, ``minor``, ``gitVersion``)."""
        headers = self._headers("application/json")

        def attempt() -> bytes:
            try:
                response = self._connections.request("GET", "/version", headers, None, self._timeout)
            except responses.TRANSPORT_ERRORS as exc:
                raise responses.transport_error("get /version", exc, "GET") from exc
            if not 200 <= response.status < 300:
                raise responses.status_error(
                    response.status, responses.decode_status(response.body), response.headers, "get /version",
                    verb="get", kind="",
                )
            return response.body

        decoded: Obj = json.loads(self._retrying(attempt))
        return decoded

    # -- transport ---------------------------------------------------------

    def _call(
        self, verb: Verb, res: Resource, method: str, path: str,
        query: Mapping[str, str | int] | None = None, body: Obj | None = None,
        content_type: str = "application/json",
    ) -> Obj:
        """One request/response call, retried as ``retry`` says; the decoded JSON answer."""
        decoded: Obj = json.loads(self._request(verb, res, method, path, query, body, content_type))
        return decoded

    def _request(
        self, verb: Verb, res: Resource, method: str, path: str,
        query: Mapping[str, str | int] | None = None, body: Obj | None = None,
        content_type: str = "application/json",
    ) -> bytes:
        """One request/response call, retried as ``retry`` says; the 2xx answer's body."""
        what = f"{verb} {res.plural}"
        target = path + "?" + urlencode(query) if query else path
        headers = self._headers(content_type)
        data = json.dumps(body, separators=(",", ":")).encode() if body is not None else None

        def attempt() -> bytes:
            try:
                response = self._connections.request(method, target, headers, data, self._timeout)
            except ValueError as exc:
                raise errors.PermanentError(f"{what}: {exc}") from exc  # refused before sending
            except responses.TRANSPORT_ERRORS as exc:
                self._count(verb, res, NO_RESPONSE)
                raise responses.transport_error(what, exc, method) from exc
            for _ in range(response.sends - 1):
                self._count(verb, res, NO_RESPONSE)  # a read that went out on a connection the server had closed
            self._count(verb, res, str(response.status))
            if not 200 <= response.status < 300:
                raise responses.status_error(
                    response.status, responses.decode_status(response.body), response.headers, what,
                    verb=verb, kind=res.kind,
                )
            return response.body

        # An apply, a merge patch or a delete with preconditions lands the
        # same way twice; a second create or resourceVersion-guarded update
        # after a first that landed fails with 409.
        retrying = self._retrying_once_only if method in ("POST", "PUT") else self._retrying
        result: bytes = retrying(attempt)
        return result

    def _headers(self, content_type: str | None) -> dict[str, str]:
        headers = {"Accept": "application/json", "User-Agent": self._user_agent}
        if content_type:
            headers["Content-Type"] = content_type
        authorization = self._authorization()
        if authorization:
            headers["Authorization"] = authorization
        return headers

    def _stream(
        self, res: Resource, path: str, query: Mapping[str, str | int], timeout: tuple[float, float]
    ) -> transport.Stream:
        """A watch's GET, its body left to stream as it arrives; the unread
        stream on 2xx, a mapped error otherwise."""
        what = f"watch {res.plural}"
        try:
            stream = self._connections.stream("GET", f"{path}?{urlencode(query)}", self._headers(None), timeout)
        except ValueError as exc:
            raise errors.PermanentError(f"{what}: {exc}") from exc
        except responses.TRANSPORT_ERRORS as exc:
            self._count("watch", res, NO_RESPONSE)
            raise responses.transport_error(what, exc, "GET") from exc
        for _ in range(stream.sends - 1):
            self._count("watch", res, NO_RESPONSE)
        self._count("watch", res, str(stream.status))
        return responses.check(stream, what)

    def _authorization(self) -> str | None:
        """The ``Authorization`` header, looked up at most once a second:
        the lookup runs the kubeconfig's token refresh (an expiring or exec
        token), which is too slow for every request and needed far less often."""
        now = time.monotonic()
        if now >= self._auth_checked + AUTH_RECHECK_SECONDS:
            # What param_serialize would add: the client's BearerToken setting.
            setting = self._api.configuration.auth_settings().get("BearerToken") or {}
            value = setting.get("value") if setting.get("in") == "header" else None
            # A token file's trailing newline is not part of the token (and
            # would make the header malformed).
            self._auth_value, self._auth_checked = (value or "").strip() or None, now
        return self._auth_value

    def _count(self, verb: Verb, res: Resource, code: str) -> None:
        if self.on_request is not None:
            self.on_request(verb, res.kind, code)

    def _waited(self, error: errors.TransientError, seconds: float) -> None:
        if self.on_retry_after is not None:
            self.on_retry_after(error.verb or "", error.kind or "", seconds)


def _lease_body(body: Obj, namespace: str, name: str) -> Obj:
    res = RESOURCES[LEASE_KIND]
    meta = {**(body.get("metadata") or {}), "namespace": namespace, "name": name}
    return {**body, "apiVersion": res.api_version, "kind": res.kind, "metadata": meta}

