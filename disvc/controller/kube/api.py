"""``Kube``: the controller's only door to the Kubernetes API, raw JSON over one ApiClient.

Every request the controller makes goes through ``Kube``. It speaks JSON
dicts, never the ``kubernetes`` package's typed models: deserializing
thousands of ``V1*`` objects costs far more than ``json.loads``, and our
objects (SSA bodies, both CRDs) are dicts anyway. Each method checks its call
against the permission table (``resources.resource``), sends one request
through ``_send`` (the transport: it counts the request and maps a failed
response with ``responses``), and retries transient failures (``retry``).
Watches are returned as ``watching.Watch`` streams, not retried.
"""

from __future__ import annotations

import builtins
import json
from collections.abc import Callable, Mapping
from typing import Final, TypeAlias

import urllib3
from kubernetes import client as k8s_client

from disvc import __version__
from disvc.builders import names
from disvc.builders.types import Obj
from disvc.controller import errors
from disvc.controller.kube import responses, retry
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

NO_RESPONSE: Final = "<error>"

DEFAULT_USER_AGENT: Final = f"disvc-controller/{__version__}"
REQUEST_TIMEOUT: Final = (5.0, 30.0)
"""(connect, read) seconds for every call but watches."""
WATCH_TIMEOUT_SECONDS: Final = 300
"""Server-side watch timeout; the reflector re-watches when it ends."""
WATCH_READ_MARGIN: Final = 30.0
"""A watch read that stays silent this long past its server timeout is dead."""
LIST_PAGE_SIZE: Final = 500


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
        request_timeout: tuple[float, float] = REQUEST_TIMEOUT,
        retry_attempts: int = retry.ATTEMPTS,
    ) -> None:
        self._api = api_client
        self._user_agent = user_agent
        self.on_request = on_request
        """Attached by the metrics layer; told of every request sent."""
        self._timeout = request_timeout
        self._retrying = retry.policy(retry_attempts)

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
            request_timeout=(min(self._timeout[0], seconds), seconds),
            retry_attempts=1,
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
        self, kind: str, namespace: str | None = None, label_selector: str | None = None
    ) -> tuple[list[Obj], str]:
        """Every matching object (apiVersion/kind filled in) and the list's resourceVersion."""
        res = resource(kind, "list")
        try:
            return self._list_pages(res, namespace, label_selector, LIST_PAGE_SIZE)
        except errors.GoneError:
            # The continue token expired between pages: one unpaginated list
            # is consistent by construction.
            return self._list_pages(res, namespace, label_selector, None)

    def _list_pages(
        self, res: Resource, namespace: str | None, label_selector: str | None, limit: int | None
    ) -> tuple[builtins.list[Obj], str]:
        items: list[Obj] = []
        token = ""
        while True:
            query: dict[str, str | int] = {}
            if label_selector:
                query["labelSelector"] = label_selector
            if limit:
                query["limit"] = limit
            if token:
                query["continue"] = token
            page = self._call("list", res, "GET", res.path(namespace), query=query)
            for item in page.get("items") or []:
                item.setdefault("apiVersion", res.api_version)
                item.setdefault("kind", res.kind)
                items.append(item)
            meta = page.get("metadata") or {}
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
    ) -> Watch:
        """Start a watch from ``resource_version``; events stream as they arrive.

        Raises ``GoneError`` (at start or while iterating) when the version is
        too old; iteration ends when the server closes the watch.
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
        # No in-call retry: the reflector owns the backoff for watches.
        response = self._send(
            "watch", res, "GET", res.path(namespace), query=query,
            timeout=(self._timeout[0], timeout_seconds + WATCH_READ_MARGIN),
        )
        return Watch(response, res.kind, res.api_version)

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

    # -- transport ---------------------------------------------------------

    def _call(
        self, verb: Verb, res: Resource, method: str, path: str,
        query: Mapping[str, str | int] | None = None, body: Obj | None = None,
        content_type: str = "application/json",
    ) -> Obj:
        def attempt() -> Obj:
            response = self._send(verb, res, method, path, query, body, content_type, self._timeout)
            try:
                data = response.data
            except responses.TRANSPORT_ERRORS as exc:
                raise errors.TransientError(f"{verb} {res.plural}: reading the response: {exc}") from exc
            finally:
                response.release_conn()
            decoded: Obj = json.loads(data)
            return decoded

        result: Obj = self._retrying(attempt)
        return result

    def _send(
        self, verb: Verb, res: Resource, method: str, path: str,
        query: Mapping[str, str | int] | None = None, body: Obj | None = None,
        content_type: str = "application/json", timeout: tuple[float, float] = REQUEST_TIMEOUT,
    ) -> urllib3.BaseHTTPResponse:
        """One HTTP request; returns the unread response on 2xx, raises a mapped error otherwise."""
        what = f"{verb} {res.plural}"
        _, url, headers, _, _ = self._api.param_serialize(
            method, path,
            query_params=list(query.items()) if query else None,
            header_params={"Accept": "application/json", "Content-Type": content_type},
            auth_settings=["BearerToken"],
        )
        headers["User-Agent"] = self._user_agent
        try:
            response = self._api.call_api(method, url, headers, body, None, _request_timeout=timeout)
        except k8s_client.ApiException as exc:
            self._count(verb, res, str(exc.status or NO_RESPONSE))
            body_text = exc.body.encode() if isinstance(exc.body, str) else b""
            raise responses.status_error(
                int(exc.status or 0), responses.decode_status(body_text), exc.headers, what
            ) from exc
        except responses.TRANSPORT_ERRORS as exc:
            self._count(verb, res, NO_RESPONSE)
            raise responses.transport_error(what, exc) from exc
        raw: urllib3.BaseHTTPResponse = response.response
        self._count(verb, res, str(raw.status))
        return responses.check(raw, what)

    def _count(self, verb: Verb, res: Resource, code: str) -> None:
        if self.on_request is not None:
            self.on_request(verb, res.kind, code)


def _lease_body(body: Obj, namespace: str, name: str) -> Obj:
    res = RESOURCES[LEASE_KIND]
    meta = {**(body.get("metadata") or {}), "namespace": namespace, "name": name}
    return {**body, "apiVersion": res.api_version, "kind": res.kind, "metadata": meta}

