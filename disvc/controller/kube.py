"""The controller's only door to the Kubernetes API: raw JSON over one ApiClient.

Every request the controller makes goes through ``Kube``. It speaks JSON
dicts, never the ``kubernetes`` package's typed models: deserializing
thousands of ``V1*`` objects costs far more than ``json.loads``, and our
objects (SSA bodies, both CRDs) are dicts anyway. The client package is used
for what it is good at — kubeconfig/in-cluster auth, TLS and a pooled
``urllib3`` connection — and nothing else imports it.

Three things live here once so nothing above has to repeat them:

- the API surface: ``RESOURCES`` (kind -> where it is served) and
  ``API_CALLS`` (every group/resource/verb a method may call). A method can
  only make a call listed in ``_PERMITTED``, and ``API_CALLS`` is derived
  from that table, so the RBAC test that compares the ClusterRole against it
  cannot drift from the code;
- error mapping: HTTP statuses and connection failures become
  ``disvc.controller.errors`` types, chained with ``raise ... from``;
- a brief in-call retry (``tenacity``) for transient failures. Conflicts
  are not retried here: the workqueue requeues the key and the reconcile
  reads again, which is what resolves a conflict.
"""

from __future__ import annotations

import builtins
import json
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Final, Literal, Self, TypeAlias
from urllib.parse import quote

import tenacity
import urllib3
from kubernetes import client as k8s_client
from kubernetes import config as k8s_config

from disvc import __version__
from disvc.builders import names
from disvc.builders.types import (
    DISVC_KIND,
    HTTPROUTE_KIND,
    INGRESS_KIND,
    ISVC_KIND,
    SERVICE_KIND,
    Obj,
)
from disvc.controller import errors

Verb: TypeAlias = Literal["get", "list", "watch", "create", "update", "patch", "delete"]
WriteHook: TypeAlias = Callable[[str, str], None]
"""``on_write(verb, kind)``: called once for every write request sent."""

LEASE_KIND: Final = "Lease"
EVENT_KIND: Final = "Event"
TOKEN_REVIEW_KIND: Final = "TokenReview"
SUBJECT_ACCESS_REVIEW_KIND: Final = "SubjectAccessReview"

DEFAULT_USER_AGENT: Final = f"disvc-controller/{__version__}"
REQUEST_TIMEOUT: Final = (5.0, 30.0)
"""(connect, read) seconds for every call but watches."""
WATCH_TIMEOUT_SECONDS: Final = 300
"""Server-side watch timeout; the reflector re-watches when it ends."""
WATCH_READ_MARGIN: Final = 30.0
"""A watch read that stays silent this long past its server timeout is dead."""
LIST_PAGE_SIZE: Final = 500

RETRY_ATTEMPTS: Final = 4
RETRY_MAX_WAIT: Final = 1.0
"""Cap on our own backoff between attempts inside one call."""
RETRY_AFTER_CAP: Final = 2.0
"""Longest Retry-After we wait out inside one call. A longer one ends the
call at once: the error carries ``retry_after`` and the queue waits instead,
without holding a worker."""


@dataclass(frozen=True, slots=True)
class Resource:
    """Where a kind is served."""

    group: str
    """API group; ``""`` for the core group."""
    version: str
    plural: str
    """The resource name in URLs and RBAC rules."""
    kind: str
    namespaced: bool

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    def path(self, namespace: str | None = None, name: str | None = None, subresource: str | None = None) -> str:
        """The URL path of the collection, or of one object (and subresource)."""
        prefix = f"/apis/{self.group}/{self.version}" if self.group else f"/api/{self.version}"
        parts = [prefix]
        if self.namespaced and namespace:
            parts.append(f"namespaces/{quote(namespace, safe='')}")
        parts.append(self.plural)
        if name is not None:
            parts.append(quote(name, safe=""))
            if subresource:
                parts.append(subresource)
        return "/".join(parts)


@dataclass(frozen=True, slots=True, order=True)
class ApiCall:
    """One permission the controller needs: an RBAC rule's group, resource, verb."""

    group: str
    resource: str
    """Plural, with ``/subresource`` when the call targets one."""
    verb: str


RESOURCES: Final[Mapping[str, Resource]] = {
    r.kind: r
    for r in (
        Resource("serving.kserve.io", "v1alpha1", "distributedinferenceservices", DISVC_KIND, True),
        Resource("serving.kserve.io", "v1beta1", "inferenceservices", ISVC_KIND, True),
        Resource("", "v1", "services", SERVICE_KIND, True),
        Resource("networking.k8s.io", "v1", "ingresses", INGRESS_KIND, True),
        Resource("gateway.networking.k8s.io", "v1", "httproutes", HTTPROUTE_KIND, True),
        Resource("coordination.k8s.io", "v1", "leases", LEASE_KIND, True),
        # core/v1 Events: the form `kubectl describe` shows and the
        # EventRecorder contract names.
        Resource("", "v1", "events", EVENT_KIND, True),
        # Reviews are never stored: a create asks the API server a question
        # (who holds this token, may they do that) and the answer comes back.
        Resource("authentication.k8s.io", "v1", "tokenreviews", TOKEN_REVIEW_KIND, False),
        Resource("authorization.k8s.io", "v1", "subjectaccessreviews", SUBJECT_ACCESS_REVIEW_KIND, False),
    )
}

_WATCHED: Final = frozenset({DISVC_KIND, ISVC_KIND, SERVICE_KIND, INGRESS_KIND, HTTPROUTE_KIND})
_CHILDREN: Final = frozenset({ISVC_KIND, SERVICE_KIND, INGRESS_KIND, HTTPROUTE_KIND})

_PERMITTED: Final[Mapping[Verb, frozenset[tuple[str, str | None]]]] = {
    # (kind, subresource) pairs each verb may be used with. Methods refuse
    # anything else, so this table is exactly what the controller can call.
    "get": frozenset({(k, None) for k in _WATCHED | {LEASE_KIND}}),
    "list": frozenset({(k, None) for k in _WATCHED}),
    "watch": frozenset({(k, None) for k in _WATCHED}),
    "patch": frozenset({(k, None) for k in _CHILDREN} | {(DISVC_KIND, "status"), (EVENT_KIND, None)}),
    "delete": frozenset({(k, None) for k in _CHILDREN}),
    "create": frozenset(
        {(k, None) for k in _CHILDREN | {EVENT_KIND, LEASE_KIND, TOKEN_REVIEW_KIND, SUBJECT_ACCESS_REVIEW_KIND}}
    ),
    "update": frozenset({(LEASE_KIND, None)}),
}

_WRITE_VERBS: Final = frozenset({"create", "update", "patch", "delete"})


def _api_calls() -> frozenset[ApiCall]:
    calls = set()
    for verb, targets in _PERMITTED.items():
        for kind, subresource in targets:
            res = RESOURCES[kind]
            plural = f"{res.plural}/{subresource}" if subresource else res.plural
            calls.add(ApiCall(res.group, plural, verb))
            if verb == "patch" and subresource is None:
                # Server-side apply of an absent object creates it, and the API
                # server authorizes that PATCH as "create" too.
                calls.add(ApiCall(res.group, plural, "create"))
    # Children name their DISVC with blockOwnerDeletion: clusters running the
    # OwnerReferencesPermissionEnforcement admission plugin (OpenShift does)
    # require the writer to be allowed to update the owner's finalizers.
    disvc = RESOURCES[DISVC_KIND]
    calls.add(ApiCall(disvc.group, f"{disvc.plural}/finalizers", "update"))
    return frozenset(calls)


API_CALLS: Final[frozenset[ApiCall]] = _api_calls()
"""Every (group, resource[/subresource], verb) the controller can call."""


def load_api_client(kubeconfig: str | None) -> k8s_client.ApiClient:
    """An ApiClient for the kubeconfig file, or the in-cluster service account when None."""
    configuration = k8s_client.Configuration()
    try:
        if kubeconfig:
            k8s_config.load_kube_config(  # type: ignore[no-untyped-call]
                config_file=kubeconfig, client_configuration=configuration
            )
        else:
            k8s_config.load_incluster_config(  # type: ignore[no-untyped-call]
                client_configuration=configuration
            )
    except Exception as error:
        # Loading only reads and parses files (YAML, base64, URLs): whatever
        # it raises means the settings are unusable, a setup mistake to name
        # in one line rather than a crash with a traceback.
        where = f"kubeconfig {kubeconfig}" if kubeconfig else "the in-cluster service account (no --kubeconfig given)"
        raise errors.ConfigError(f"cannot load Kubernetes connection settings from {where}: {error}") from error
    # Workers, watches and the leader elector share one pool; a pool smaller
    # than that concurrency would open and discard connections per request.
    configuration.connection_pool_maxsize = max(configuration.connection_pool_maxsize or 0, 32)
    # urllib3 would otherwise wait out Retry-After and retry idempotent calls
    # itself, under the tenacity retry here: two back-offs for one failure.
    configuration.retries = False
    return k8s_client.ApiClient(configuration)


class Watch(Iterator[Obj]):
    """A running watch: iterates ``{"type", "object"}`` events as they arrive.

    ``close()`` may be called from another thread: it shuts the socket down
    so a reader blocked on it returns promptly (the reflector's stop path).
    """

    def __init__(self, response: urllib3.BaseHTTPResponse, kind: str, api_version: str) -> None:
        self._response = response
        self._kind = kind
        self._api_version = api_version
        self._closed = threading.Event()
        self._events = self._read_events()

    def __next__(self) -> Obj:
        return next(self._events)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def closed(self) -> bool:
        return self._closed.is_set()

    def close(self) -> None:
        if self._closed.is_set():
            return
        self._closed.set()
        raw = self._response
        try:
            raw.shutdown()
        except (ValueError, RuntimeError, OSError):
            pass  # already released or never had a socket: close() suffices
        raw.close()
        raw.release_conn()

    def _chunks(self) -> Iterator[bytes]:
        raw = self._response
        if isinstance(raw, urllib3.HTTPResponse) and raw.chunked and raw.supports_chunked_reads():
            # amt=None yields each HTTP chunk as it arrives: the API server
            # sends one event per chunk, so nothing waits for a full buffer.
            yield from raw.read_chunked(None, decode_content=True)
        else:
            while data := raw.read1(65536):
                yield data

    def _read_events(self) -> Iterator[Obj]:
        pending = b""
        try:
            for chunk in self._chunks():
                pending += chunk
                *lines, pending = pending.split(b"\n")
                for line in lines:
                    if line.strip():
                        yield self._event(line)
            if pending.strip():
                yield self._event(pending)
        except urllib3.exceptions.HTTPError as exc:
            if self._closed.is_set():
                return
            raise errors.TransientError(f"watch {self._kind} broken: {exc}") from exc
        except OSError as exc:
            if self._closed.is_set():
                return
            raise errors.TransientError(f"watch {self._kind} broken: {exc}") from exc
        finally:
            self.close()

    def _event(self, line: bytes) -> Obj:
        event: Obj = json.loads(line)
        obj = event.get("object") or {}
        if event.get("type") == "ERROR":
            raise _status_error(int(obj.get("code") or 500), obj, None, f"watch {self._kind}")
        obj.setdefault("apiVersion", self._api_version)
        obj.setdefault("kind", self._kind)
        return event


def _retry_after_seconds(status: Obj, headers: Mapping[str, str] | None) -> float | None:
    header = headers.get("Retry-After") if headers else None
    if header:
        try:
            return float(header)
        except ValueError:
            pass  # an HTTP-date: fall back to the Status details
    seconds = (status.get("details") or {}).get("retryAfterSeconds")
    return float(seconds) if seconds else None


def _status_error(code: int, status: Obj, headers: Mapping[str, str] | None, what: str) -> errors.ControllerError:
    """The controller error for an HTTP status and its ``Status`` body."""
    reason = status.get("reason") or ""
    message = f"{what}: {code} {reason}: {status.get('message', '')}".rstrip(": ")
    if code == 404:
        return errors.NotFoundError(message)
    if code == 409:
        return errors.ConflictError(message, status=code)
    if code == 410:
        return errors.GoneError(message)
    if code == 429:
        return errors.TooManyRequestsError(message, status=code, retry_after=_retry_after_seconds(status, headers))
    if code >= 500 or code == 0:
        return errors.TransientError(message, status=code, retry_after=_retry_after_seconds(status, headers))
    return errors.PermanentError(message, status=code, reason=reason or None)


def _decode_status(body: bytes) -> Obj:
    try:
        decoded = json.loads(body) if body else {}
    except ValueError:
        return {"message": body[:200].decode("utf-8", "replace")}
    return decoded if isinstance(decoded, dict) else {}


def _is_retryable(exc: BaseException) -> bool:
    if not isinstance(exc, errors.TransientError) or isinstance(exc, errors.ConflictError):
        return False
    return exc.retry_after is None or exc.retry_after <= RETRY_AFTER_CAP


def _retry_wait(state: tenacity.RetryCallState) -> float:
    exc = state.outcome.exception() if state.outcome else None
    retry_after = getattr(exc, "retry_after", None)
    if retry_after:
        return float(retry_after)
    jittered: float = tenacity.wait_random_exponential(multiplier=0.05, max=RETRY_MAX_WAIT)(state)
    return jittered


class Kube:
    """Raw-JSON access to the resources in ``RESOURCES``; thread-safe.

    Every method maps failures onto ``disvc.controller.errors`` and retries
    transient ones (5xx, 429, resets) a few times with a short jittered
    backoff before giving up.
    """

    def __init__(
        self,
        api_client: k8s_client.ApiClient,
        user_agent: str = DEFAULT_USER_AGENT,
        *,
        on_write: WriteHook | None = None,
        request_timeout: tuple[float, float] = REQUEST_TIMEOUT,
        retry_attempts: int = RETRY_ATTEMPTS,
    ) -> None:
        self._api = api_client
        self._user_agent = user_agent
        self.on_write = on_write
        """Attached by the metrics layer; counts every write request sent."""
        self._timeout = request_timeout
        self._retrying = tenacity.Retrying(
            retry=tenacity.retry_if_exception(_is_retryable),
            wait=_retry_wait,
            stop=tenacity.stop_after_attempt(retry_attempts),
            reraise=True,
        )

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
            on_write=self.on_write,
            request_timeout=(min(self._timeout[0], seconds), seconds),
            retry_attempts=1,
        )

    # -- reads -------------------------------------------------------------

    def get(self, kind: str, namespace: str | None, name: str) -> Obj | None:
        """The object, or None when it does not exist."""
        res = _resource(kind, "get")
        try:
            return self._call("get", res, "GET", res.path(namespace, name))
        except errors.NotFoundError:
            return None

    def list(
        self, kind: str, namespace: str | None = None, label_selector: str | None = None
    ) -> tuple[list[Obj], str]:
        """Every matching object (apiVersion/kind filled in) and the list's resourceVersion."""
        res = _resource(kind, "list")
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
        res = _resource(kind, "watch")
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
        res = _resource(obj["kind"], "create")
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
        res = _resource(obj["kind"], "patch", subresource)
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
        res = _resource(kind, "delete")
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
        res = _resource(EVENT_KIND, "create")
        return self._call("create", res, "POST", res.path(event["metadata"]["namespace"]), body=event)

    def patch_event(self, namespace: str, name: str, patch: Obj) -> Obj:
        """Merge-patch an Event: how a repeat updates ``count`` and ``lastTimestamp``.

        ``NotFoundError`` when the Event is gone (expired by the API's TTL).
        """
        res = _resource(EVENT_KIND, "patch")
        return self._call(
            "patch", res, "PATCH", res.path(namespace, name),
            body=patch, content_type="application/merge-patch+json",
        )

    def get_lease(self, namespace: str, name: str) -> Obj | None:
        return self.get(LEASE_KIND, namespace, name)

    def create_lease(self, namespace: str, name: str, body: Obj) -> Obj:
        """Create the Lease; ``ConflictError`` when another candidate was first."""
        res = _resource(LEASE_KIND, "create")
        return self._call("create", res, "POST", res.path(namespace), body=_lease_body(body, namespace, name))

    def update_lease(self, namespace: str, name: str, body: Obj) -> Obj:
        """Replace the Lease; ``ConflictError`` when ``body``'s resourceVersion is stale."""
        res = _resource(LEASE_KIND, "update")
        return self._call("update", res, "PUT", res.path(namespace, name), body=_lease_body(body, namespace, name))

    # -- reviews: the secure /metrics endpoint asks who a caller is and what it may do

    def create_token_review(self, token: str) -> Obj:
        """The API server's verdict on a bearer token: ``status.authenticated``, ``status.user``."""
        return self._review(TOKEN_REVIEW_KIND, {"token": token})

    def create_subject_access_review(self, spec: Obj) -> Obj:
        """Whether the user in ``spec`` may do what ``spec`` asks: ``status.allowed``."""
        return self._review(SUBJECT_ACCESS_REVIEW_KIND, spec)

    def _review(self, kind: str, spec: Obj) -> Obj:
        res = _resource(kind, "create")
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
            except (urllib3.exceptions.HTTPError, OSError) as exc:
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
        if verb in _WRITE_VERBS and self.on_write is not None:
            self.on_write(verb, res.kind)
        try:
            response = self._api.call_api(method, url, headers, body, None, _request_timeout=timeout)
        except k8s_client.ApiException as exc:
            body_text = exc.body.encode() if isinstance(exc.body, str) else b""
            raise _status_error(int(exc.status or 0), _decode_status(body_text), exc.headers, what) from exc
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            raise errors.TransientError(f"{what}: {type(exc).__name__}: {exc}") from exc
        raw: urllib3.BaseHTTPResponse = response.response
        if 200 <= raw.status < 300:
            return raw
        try:
            data = raw.data
        except (urllib3.exceptions.HTTPError, OSError):
            data = b""
        finally:
            raw.release_conn()
        raise _status_error(raw.status, _decode_status(data), raw.headers, what)


def _resource(kind: str, verb: Verb, subresource: str | None = None) -> Resource:
    """The kind's Resource, if ``verb`` on it is a call the controller may make."""
    if (kind, subresource) not in _PERMITTED[verb]:
        raise ValueError(f"the controller does not {verb} {kind}{'/' + subresource if subresource else ''}")
    return RESOURCES[kind]


def _lease_body(body: Obj, namespace: str, name: str) -> Obj:
    res = RESOURCES[LEASE_KIND]
    meta = {**(body.get("metadata") or {}), "namespace": namespace, "name": name}
    return {**body, "apiVersion": res.api_version, "kind": res.kind, "metadata": meta}

