"""The loopback Kubernetes API server: HTTP in front of storage and watches.

Tests, benchmarks and the demo need a Kubernetes API that starts in
milliseconds, can be asked how many requests a controller made, and can be
told to fail.  :class:`ApiServer` serves the REST API the official clients
speak (paths, verbs, content types, ``v1 Status`` errors, watch streams) on an
ephemeral port from an asyncio loop in a daemon thread.

Request flow: the path is parsed into a :class:`Call` (verb, resource type,
namespace, name, subresource), injected faults are consulted, the verb's
handler runs against :mod:`storage` on the loop thread (so the store needs no
lock), and the outcome is recorded for :meth:`ApiServer.request_count`.
Writes pass through one pipeline (:meth:`ApiServer._commit`) that applies the
strategy a real API server applies per type: status isolation, defaulting and
validation, managedFields, generation, finalizers, no-op detection.

Patch algorithms and server-side apply live in :mod:`apply`; schema and
built-in validation in :mod:`validation`.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import json
import secrets
import threading
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final, Self

import yaml
from aiohttp import web

from disvc.testing.apiserver import apply, auth, errors, validation
from disvc.testing.apiserver.errors import ApiError
from disvc.testing.apiserver.faults import FaultBook, FaultRule
from disvc.testing.apiserver.resources import (
    VERSION_INFO,
    CrdError,
    Registry,
    ResourceType,
    crd_types,
)
from disvc.testing.apiserver.storage import (
    Change,
    FieldSelector,
    LabelSelector,
    Obj,
    Selection,
    SelectorError,
    Storage,
    Stored,
)
from disvc.testing.apiserver.watch import TooOld, Watcher, WatchHub, bookmark_line, event_line

WRITE_VERBS: Final = frozenset({"create", "update", "patch", "delete", "deletecollection"})
NAMESPACES: Final = "/namespaces"
"""Storage key of the Namespace resource type."""
CRDS: Final = "apiextensions.k8s.io/customresourcedefinitions"
INITIAL_NAMESPACES: Final = ("default", "kube-system", "kube-public", "kube-node-lease")

MERGE_PATCH: Final = "application/merge-patch+json"
JSON_PATCH: Final = "application/json-patch+json"
STRATEGIC_PATCH: Final = "application/strategic-merge-patch+json"
APPLY_PATCH: Final = "application/apply-patch+yaml"

_JSON_HEADERS: Final = {"Content-Type": "application/json"}
_NAME_CHARS: Final = "bcdfghjklmnpqrstvwxz2456789"
"""generateName suffix alphabet: no vowels, so no accidental words."""

try:
    _YAML_LOADER: Any = yaml.CSafeLoader
except AttributeError:  # libyaml not compiled in
    _YAML_LOADER = yaml.SafeLoader


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


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


class _Query:
    """Typed access to query parameters."""

    def __init__(self, query: Any) -> None:
        self._query = query

    def get(self, key: str) -> str | None:
        value = self._query.get(key)
        return None if value is None else str(value)

    def flag(self, key: str) -> bool:
        return (self.get(key) or "").lower() in ("true", "1")

    def integer(self, key: str) -> int | None:
        value = self.get(key)
        if value is None or value == "":
            return None
        try:
            return int(value)
        except ValueError as exc:
            raise errors.bad_request(f"invalid value for {key}: {value!r}") from exc


def _parse_rv(value: str | None) -> int | None:
    if value is None or value == "":
        return None
    try:
        return int(value)
    except ValueError as exc:
        raise errors.bad_request(f"invalid resource version: {value!r}") from exc


def _json_response(body: bytes, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    all_headers = dict(_JSON_HEADERS)
    if headers:
        all_headers.update(headers)
    return web.Response(body=body, status=status, headers=all_headers)


def _dump(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()


def _without_volatile(obj: Obj) -> Obj:
    """The object minus what a no-op write may change (rv, managedFields times)."""
    meta = dict(obj.get("metadata") or {})
    meta.pop("resourceVersion", None)
    managed = meta.get("managedFields")
    if managed:
        meta["managedFields"] = [
            {k: v for k, v in entry.items() if k != "time"} for entry in managed
        ]
    return dict(obj, metadata=meta)


def _content(obj: Obj, with_status: bool) -> Obj:
    """What ``metadata.generation`` tracks: everything but metadata (and status)."""
    excluded = ("metadata", "status") if with_status else ("metadata",)
    return {k: v for k, v in obj.items() if k not in excluded}


def _dropped_fields(before: Any, after: Any, prefix: str) -> list[str]:
    """Field paths present in ``before`` but pruned from ``after``."""
    dropped: list[str] = []
    if isinstance(before, dict) and isinstance(after, dict):
        for key, value in before.items():
            path = f"{prefix}.{key}" if prefix else key
            if key not in after:
                dropped.append(path)
            else:
                dropped.extend(_dropped_fields(value, after[key], path))
    elif isinstance(before, list) and isinstance(after, list):
        for index, (item, kept) in enumerate(zip(before, after, strict=False)):
            dropped.extend(_dropped_fields(item, kept, f"{prefix}[{index}]"))
    return dropped


def _schema_digest(schema: Obj | None) -> str:
    return hashlib.sha1(json.dumps(schema, sort_keys=True).encode()).hexdigest()


def _path_get(obj: Obj, path: str) -> Any:
    node: Any = obj
    for part in path.strip(".").split("."):
        if not isinstance(node, dict):
            return None
        node = node.get(part)
    return node


def _path_set(obj: Obj, path: str, value: Any) -> None:
    parts = path.strip(".").split(".")
    node = obj
    for part in parts[:-1]:
        child = node.get(part)
        if not isinstance(child, dict):
            child = node[part] = {}
        node = child
    node[parts[-1]] = value


class ApiServer:
    """An in-memory Kubernetes API server on 127.0.0.1, in a background thread.

    ``history`` is how many changes per resource type a watch can resume
    across before it gets 410; ``bookmark_interval`` is how often a watch that
    allows bookmarks gets one.  ``garbage_collection`` deletes objects whose
    every ownerReference names a deleted owner, as kube-controller-manager's
    garbage collector would.
    """

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        history: int = 1000,
        bookmark_interval: float = 1.0,
        garbage_collection: bool = True,
    ) -> None:
        self._host = host
        self._port = port
        self._bookmark_interval = bookmark_interval
        self._garbage_collection = garbage_collection
        self._hub = WatchHub(history)
        self._storage = Storage(self._on_change)
        self._registry = Registry(auth.RESOURCE_TYPES)
        self._faults = FaultBook()
        self._records: list[RequestRecord] = []
        self._records_lock = threading.Lock()
        self._uids: dict[str, tuple[str, str, str]] = {}
        """uid -> (resource key, namespace, name), for ownerReference GC."""
        self._validators: dict[tuple[str, str], validation.SchemaValidator] = {}
        self._list_keys: dict[tuple[str, str], apply.ListKeys] = {}
        self._compiled: dict[str, validation.SchemaValidator] = {}
        """Validators compiled while checking a CRD write, by schema digest."""
        self._next_ip = 10
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._web: web.Server | None = None
        self._listener: asyncio.AbstractServer | None = None
        for name in INITIAL_NAMESPACES:
            self._seed_namespace(name)
        self._auth = auth.Authority(self._storage)

    # --- lifecycle -------------------------------------------------------------

    def start(self) -> Self:
        """Serve in a daemon thread; returns once the port is bound."""
        if self._thread is not None:
            return self
        bound = threading.Event()
        failure: list[BaseException] = []

        def serve() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            try:
                loop.run_until_complete(self._open())
            except BaseException as exc:  # noqa: BLE001 - re-raised by start() in the caller's thread
                failure.append(exc)
                bound.set()
                loop.close()
                return
            bound.set()
            try:
                loop.run_forever()
                loop.run_until_complete(self._close())
            finally:
                loop.close()

        self._thread = threading.Thread(target=serve, name="disvc-apiserver", daemon=True)
        self._thread.start()
        bound.wait()
        if failure:
            self._thread = None
            raise failure[0]
        return self

    async def _open(self) -> None:
        self._web = web.Server(self._handle, access_log=None)
        loop = asyncio.get_running_loop()
        self._listener = await loop.create_server(self._web, self._host, self._port)
        self._port = self._listener.sockets[0].getsockname()[1]

    async def _close(self) -> None:
        if self._listener is not None:
            self._listener.close()
        self._hub.close_all()
        if self._web is not None:
            await self._web.shutdown(1.0)
        pending = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)

    def stop(self) -> None:
        """Close every watch and connection, then the loop; idempotent."""
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=10)
        self._thread = None
        self._loop = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        return self._port

    @property
    def url(self) -> str:
        return f"http://{self._host}:{self._port}"

    def kubeconfig(self) -> Obj:
        """A kubeconfig whose current context is this server. Requests are not
        checked; its token is the admin's only to TokenReview."""
        name = "disvc-loopback"
        return {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": name, "cluster": {"server": self.url}}],
            "users": [{"name": name, "user": {"token": self._auth.admin_token}}],
            "contexts": [
                {"name": name, "context": {"cluster": name, "user": name, "namespace": "default"}}
            ],
            "current-context": name,
            "preferences": {},
        }

    def write_kubeconfig(self, path: str) -> str:
        """Write :meth:`kubeconfig` to ``path``; returns the path."""
        with open(path, "w", encoding="utf-8") as handle:
            yaml.safe_dump(self.kubeconfig(), handle, sort_keys=False)
        return path

    # --- accounting and faults (any thread) -------------------------------------

    @property
    def requests(self) -> list[RequestRecord]:
        """A snapshot of every request served since the last reset."""
        with self._records_lock:
            return list(self._records)

    def reset_requests(self) -> None:
        with self._records_lock:
            self._records.clear()

    def request_count(
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
            1 for r in self.requests
            if self._record_matches(r, verb, resource, user_agent, namespace, name, code)
        )

    @staticmethod
    def _record_matches(
        record: RequestRecord,
        verb: str | None,
        resource: str | None,
        user_agent: str | None,
        namespace: str | None,
        name: str | None,
        code: int | None,
    ) -> bool:
        if verb is not None and record.verb != verb:
            return False
        if resource is not None:
            full = f"{record.resource}/{record.subresource}" if record.subresource else record.resource
            if full != resource:
                return False
        if user_agent is not None and not record.user_agent.startswith(user_agent):
            return False
        if namespace is not None and record.namespace != namespace:
            return False
        if name is not None and record.name != name:
            return False
        return code is None or record.code == code

    def write_count(self, user_agent: str | None = None) -> int:
        """Requests that asked to change state (create/update/patch/delete[collection])."""
        return sum(
            1 for r in self.requests
            if r.verb in WRITE_VERBS
            and (user_agent is None or r.user_agent.startswith(user_agent))
        )

    def add_fault(self, rule: FaultRule) -> FaultRule:
        return self._faults.add(rule)

    def remove_fault(self, rule: FaultRule) -> None:
        self._faults.remove(rule)

    def clear_faults(self) -> None:
        self._faults.clear()

    def drop_watches(self, abort: bool = False) -> int:
        """Close every open watch stream (``abort``: cut the connection instead).

        Returns how many streams were open.
        """
        return int(self._on_loop(lambda: self._hub.close_all(abort)))

    def watch_count(self) -> int:
        """How many watch streams are open right now."""
        return int(self._on_loop(lambda: self._hub.watcher_count))

    def object_count(self) -> int:
        """How many objects are stored (all types, all namespaces)."""
        return int(self._on_loop(self._storage.count))

    def _on_loop(self, fn: Callable[[], Any]) -> Any:
        loop = self._loop
        if loop is None:
            return fn()
        done = threading.Event()
        box: list[Any] = []

        def run() -> None:
            try:
                box.append(fn())
            finally:
                done.set()

        loop.call_soon_threadsafe(run)
        done.wait(timeout=10)
        return box[0] if box else None

    # --- storage hooks ----------------------------------------------------------

    def _on_change(self, change: Change) -> None:
        meta = change.stored.obj["metadata"]
        uid = meta.get("uid")
        if uid:
            if change.type == "DELETED":
                self._uids.pop(uid, None)
            else:
                self._uids[uid] = (change.resource, change.namespace, meta["name"])
        self._hub.publish(change)

    def _seed_namespace(self, name: str) -> None:
        obj: Obj = {
            "kind": "Namespace",
            "apiVersion": "v1",
            "metadata": {
                "name": name,
                "uid": str(uuid.uuid4()),
                "creationTimestamp": _now(),
                "labels": {"kubernetes.io/metadata.name": name},
            },
            "spec": {"finalizers": ["kubernetes"]},
            "status": {"phase": "Active"},
        }
        self._storage.put(NAMESPACES, "", obj)

    # --- HTTP entry point -------------------------------------------------------

    async def _handle(self, request: web.BaseRequest) -> web.StreamResponse:
        user_agent = request.headers.get("User-Agent", "")
        call: Call | None = None
        code = 500
        try:
            call = self._route(request.method, request.path, _Query(request.query))
            if call is None:
                response = self._non_resource(request)
            else:
                response = await self._serve(request, call, user_agent)
            code = response.status
            return response
        except ApiError as exc:
            code = exc.code
            return _json_response(exc.body(), exc.code, exc.headers)
        except asyncio.CancelledError:
            code = 499
            raise
        except Exception as exc:  # noqa: BLE001 - a bug here must reach the client as a 500, not a hang
            code = 500
            error = errors.internal(f"{type(exc).__name__}: {exc}")
            return _json_response(error.body(), 500)
        finally:
            self._record(request, call, user_agent, code)

    def _record(self, request: web.BaseRequest, call: Call | None, user_agent: str, code: int) -> None:
        if call is None:
            record = RequestRecord(
                "get" if request.method == "GET" else request.method.lower(),
                "", "", "", "", "", "", user_agent, code, request.method, request.path,
            )
        else:
            record = RequestRecord(
                call.verb, call.group, call.version, call.plural, call.subresource,
                call.namespace, call.name, user_agent, code, call.method, request.path,
            )
        with self._records_lock:
            self._records.append(record)

    def _route(self, method: str, path: str, query: _Query) -> Call | None:
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
        verb = self._verb(method, bool(name), watch)
        return Call(method, verb, group, version, plural, namespace, name, subresource, watch)

    @staticmethod
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

    def _non_resource(self, request: web.BaseRequest) -> web.StreamResponse:
        path = request.path.rstrip("/") or "/"
        if request.method != "GET":
            raise errors.method_not_allowed()
        if path in ("/healthz", "/readyz", "/livez"):
            return web.Response(text="ok", content_type="text/plain")
        if path == "/version":
            return _json_response(_dump(VERSION_INFO))
        if path == "/api":
            return _json_response(_dump(self._registry.api_versions(f"{self._host}:{self._port}")))
        if path == "/apis":
            return _json_response(_dump(self._registry.api_group_list()))
        parts = [p for p in path.split("/") if p]
        doc: Obj | None = None
        if len(parts) == 2 and parts[0] == "api":
            doc = self._registry.resource_list("", parts[1])
        elif len(parts) == 2 and parts[0] == "apis":
            doc = self._registry.api_group(parts[1])
        elif len(parts) == 3 and parts[0] == "apis":
            doc = self._registry.resource_list(parts[1], parts[2])
        if doc is None:
            raise ApiError(404, "NotFound", "the server could not find the requested resource", {})
        return _json_response(_dump(doc))

    # --- dispatch -----------------------------------------------------------------

    async def _serve(self, request: web.BaseRequest, call: Call, user_agent: str) -> web.StreamResponse:
        if self._auth.handles(call):
            return _json_response(_dump(self._auth.create(call, await self._body(request))), 201)
        rt = self._registry.lookup(call.group, call.version, call.plural)
        if rt is None:
            raise errors.unknown_resource()
        if call.namespace and not rt.namespaced:
            raise errors.unknown_resource()
        if rt.namespaced and not call.namespace and call.name:
            raise errors.unknown_resource()
        if call.subresource and call.subresource not in rt.subresources:
            raise errors.unknown_resource()
        fault_resource = f"{call.plural}/{call.subresource}" if call.subresource else call.plural
        fault = self._faults.take(call.verb, fault_resource, call.namespace, call.name)
        if fault is not None:
            if fault.delay > 0:
                await asyncio.sleep(fault.delay)
            if fault.code:
                if call.verb == "watch" and fault.code == 410:
                    return await self._watch_error(request, errors.expired(fault.message or "too old resource version: injected"))
                raise errors.injected(fault.code, fault.retry_after, fault.message)
        query = _Query(request.query)
        method = request.method
        if call.watch:
            if method != "GET":
                raise errors.method_not_allowed()
            return await self._watch(request, call, rt, query)
        if call.subresource == "scale":
            return await self._scale(request, call, rt, query)
        if call.subresource and method not in ("GET", "PUT", "PATCH"):
            raise errors.method_not_allowed()
        if method == "GET":
            if call.name:
                return self._get(call, rt)
            return self._list(call, rt, query)
        if method == "POST" and not call.name:
            return self._create(call, rt, await self._body(request), query, user_agent)
        if method == "PUT" and call.name:
            return self._update(call, rt, await self._body(request), query, user_agent)
        if method == "PATCH" and call.name:
            return self._patch(call, rt, request, await request.read(), query, user_agent)
        if method == "DELETE":
            raw = await request.read()
            options: Obj = {}
            if raw.strip():
                options = self._decode_json(raw)
            if call.name:
                return self._delete(call, rt, options, query)
            return self._delete_collection(call, rt, options, query)
        raise errors.method_not_allowed()

    @staticmethod
    def _decode_json(raw: bytes) -> Obj:
        try:
            body = json.loads(raw)
        except ValueError as exc:
            raise errors.bad_request(f"couldn't get version/kind; json parse error: {exc}") from exc
        if not isinstance(body, dict):
            raise errors.bad_request("the request body must be a JSON object")
        return body

    async def _body(self, request: web.BaseRequest) -> Obj:
        raw = await request.read()
        content_type = request.content_type
        if content_type in ("application/yaml", "application/x-yaml"):
            try:
                loaded = yaml.load(raw, Loader=_YAML_LOADER)
            except yaml.YAMLError as exc:
                raise errors.bad_request(f"error decoding YAML: {exc}") from exc
            if not isinstance(loaded, dict):
                raise errors.bad_request("the request body must be an object")
            return loaded
        return self._decode_json(raw)

    # --- reads --------------------------------------------------------------------

    def _encoder(self, rt: ResourceType) -> Callable[[Stored], bytes]:
        """Encode stored objects as ``rt``'s version (custom resources: rewrite apiVersion)."""
        api_version = rt.api_version

        def encode(stored: Stored) -> bytes:
            if stored.obj.get("apiVersion", api_version) == api_version:
                return stored.raw()
            return _dump(dict(stored.obj, apiVersion=api_version))

        return encode

    def _require(self, rt: ResourceType, namespace: str, name: str) -> Stored:
        stored = self._storage.get(rt.key, namespace, name)
        if stored is None:
            raise errors.not_found(rt, name)
        return stored

    def _get(self, call: Call, rt: ResourceType) -> web.Response:
        stored = self._require(rt, call.namespace, call.name)
        return _json_response(self._encoder(rt)(stored))

    def _selection(self, call: Call, rt: ResourceType, query: _Query) -> Selection:
        try:
            labels = LabelSelector.parse(query.get("labelSelector"))
            fields = FieldSelector.parse(query.get("fieldSelector"), rt.field_labels)
        except SelectorError as exc:
            raise errors.bad_request(str(exc)) from exc
        namespace = call.namespace if rt.namespaced and call.namespace else None
        return Selection(rt.key, namespace, labels, fields)

    def _list(self, call: Call, rt: ResourceType, query: _Query) -> web.Response:
        selection = self._selection(call, rt, query)
        requested_rv = _parse_rv(query.get("resourceVersion"))
        match = query.get("resourceVersionMatch")
        if requested_rv is not None and match in ("NotOlderThan", "Exact"):
            try:
                self._hub.check_not_too_old(rt.key, requested_rv)
            except TooOld as exc:
                raise errors.expired(str(exc)) from exc
        list_rv = self._storage.resource_version
        start_after: tuple[str, str] | None = None
        token = query.get("continue")
        if token:
            list_rv, start_after = self._decode_continue(rt, token)
        limit = query.integer("limit") or 0
        encode = self._encoder(rt)
        items: list[bytes] = []
        next_key: tuple[str, str] | None = None
        remaining = 0
        for stored in self._storage.objects(rt.key, selection.namespace):
            meta = stored.obj["metadata"]
            key = (meta.get("namespace", ""), meta["name"])
            if start_after is not None and key <= start_after:
                continue
            if not selection.matches(key[0], stored):
                continue
            if limit and len(items) >= limit:
                remaining += 1
                continue
            items.append(encode(stored))
            next_key = key
        meta_parts = [b'"resourceVersion":"' + str(list_rv).encode() + b'"']
        if remaining and next_key is not None:
            token_body = _dump({"rv": list_rv, "start": list(next_key)})
            meta_parts.append(b'"continue":"' + base64.urlsafe_b64encode(token_body) + b'"')
            meta_parts.append(b'"remainingItemCount":' + str(remaining).encode())
        body = (
            b'{"kind":"' + rt.list_kind.encode() + b'","apiVersion":"' + rt.api_version.encode()
            + b'","metadata":{' + b",".join(meta_parts) + b'},"items":[' + b",".join(items) + b"]}"
        )
        return _json_response(body)

    def _decode_continue(self, rt: ResourceType, token: str) -> tuple[int, tuple[str, str]]:
        try:
            decoded = json.loads(base64.urlsafe_b64decode(token.encode()))
            rv, start = int(decoded["rv"]), decoded["start"]
        except (ValueError, KeyError, TypeError, binascii.Error) as exc:
            raise errors.bad_request(f"continue key is not valid: {exc}") from exc
        try:
            self._hub.check_not_too_old(rt.key, rv)
        except TooOld as exc:
            raise errors.expired(
                "The provided continue parameter is too old to display a consistent list result. "
                "You can start a new list without the continue parameter, or use the continue "
                "token in this response to retrieve the remainder of the results."
            ) from exc
        return rv, (str(start[0]), str(start[1]))

    # --- watch --------------------------------------------------------------------

    async def _watch_error(self, request: web.BaseRequest, error: ApiError) -> web.StreamResponse:
        """A watch fails the way real servers fail one: 200, then an ERROR event."""
        response = web.StreamResponse(status=200, headers=_JSON_HEADERS)
        await response.prepare(request)
        await response.write(event_line("ERROR", error.body()))
        await response.write_eof()
        return response

    async def _watch(self, request: web.BaseRequest, call: Call, rt: ResourceType, query: _Query) -> web.StreamResponse:
        selection = self._selection(call, rt, query)
        rv_text = query.get("resourceVersion")
        since = None if rv_text in (None, "", "0") else _parse_rv(rv_text)
        timeout = query.integer("timeoutSeconds")
        bookmarks = query.flag("allowWatchBookmarks")
        encode = self._encoder(rt)
        current: list[tuple[str, Stored]] = []
        if since is None:
            current = [
                (s.obj["metadata"].get("namespace", ""), s)
                for s in self._storage.objects(rt.key, selection.namespace)
            ]
        try:
            watcher = self._hub.subscribe(selection, encode, since=since, current=current)
        except TooOld as exc:
            return await self._watch_error(request, errors.expired(str(exc)))
        try:
            response = web.StreamResponse(status=200, headers=_JSON_HEADERS)
            await response.prepare(request)
            await self._pump(request, response, watcher, rt, timeout, bookmarks)
            return response
        finally:
            self._hub.unsubscribe(watcher)

    async def _pump(
        self,
        request: web.BaseRequest,
        response: web.StreamResponse,
        watcher: Watcher,
        rt: ResourceType,
        timeout: int | None,
        bookmarks: bool,
    ) -> None:
        """Copy queued events to the client until timeout, close or disconnect."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + (timeout if timeout is not None and timeout > 0 else 1800.0)
        tick = self._bookmark_interval if bookmarks else 1.0
        next_bookmark = loop.time() + tick
        queue = watcher.queue
        while True:
            wait = min(deadline, next_bookmark) - loop.time()
            line: bytes | None
            try:
                if queue.empty():
                    line = await asyncio.wait_for(queue.get(), max(wait, 0.0))
                else:
                    line = queue.get_nowait()
            except TimeoutError:
                transport = request.transport
                if transport is None or transport.is_closing():
                    return
                now = loop.time()
                if now >= deadline:
                    if bookmarks:
                        await self._bookmark(response, rt)
                    break
                if bookmarks and now >= next_bookmark:
                    await self._bookmark(response, rt)
                next_bookmark = now + tick
                continue
            if line is None:
                if watcher.abort and request.transport is not None:
                    request.transport.abort()
                    return
                break
            chunk = [line]
            while not queue.empty():
                more = queue.get_nowait()
                if more is None:
                    queue.put_nowait(None)
                    break
                chunk.append(more)
            try:
                await response.write(b"".join(chunk))
            except (ConnectionError, RuntimeError):
                return
        try:
            await response.write_eof()
        except (ConnectionError, RuntimeError):
            return

    async def _bookmark(self, response: web.StreamResponse, rt: ResourceType) -> None:
        await response.write(bookmark_line(rt.kind, rt.api_version, self._storage.resource_version))

    # --- write pipeline ---------------------------------------------------------

    def _field_manager(self, query: _Query, user_agent: str) -> str:
        manager = query.get("fieldManager")
        if manager:
            return manager
        # Kubernetes names an unnamed writer after its user agent's product token
        return (user_agent.split("/", 1)[0] or "unknown")[:128]

    def _list_keys_for(self, rt: ResourceType) -> apply.ListKeys:
        cache_key = (rt.key, rt.version)
        keys = self._list_keys.get(cache_key)
        if keys is None:
            if rt.custom:
                keys = apply.schema_list_keys(rt.schema or {})
            else:
                keys = apply.builtin_list_keys(rt.kind)
            self._list_keys[cache_key] = keys
        return keys

    def _validator(self, rt: ResourceType) -> validation.SchemaValidator | None:
        if not rt.custom:
            return None
        cache_key = (rt.key, rt.version)
        validator = self._validators.get(cache_key)
        if validator is None:
            validator = validation.SchemaValidator(rt.schema or {})
            self._validators[cache_key] = validator
        return validator

    def _check_namespace(self, rt: ResourceType, call: Call, obj: Obj) -> None:
        meta = obj["metadata"]
        if not rt.namespaced:
            meta.pop("namespace", None)
            return
        body_ns = meta.get("namespace")
        if body_ns and body_ns != call.namespace:
            raise errors.bad_request(
                "the namespace of the provided object does not match the namespace sent on the request"
            )
        meta["namespace"] = call.namespace

    def _check_type(self, rt: ResourceType, obj: Obj) -> None:
        api_version = obj.get("apiVersion")
        if api_version and api_version != rt.api_version:
            raise errors.bad_request(
                f"the API version in the data ({api_version}) does not match the expected API version ({rt.api_version})"
            )
        kind = obj.get("kind")
        if kind and kind != rt.kind:
            raise errors.bad_request(
                f"the kind in the data ({kind}) does not match the expected kind ({rt.kind})"
            )
        obj["apiVersion"] = rt.api_version
        obj["kind"] = rt.kind
        if not isinstance(obj.get("metadata"), dict):
            obj["metadata"] = {}

    def _require_namespace_open(self, rt: ResourceType, namespace: str, name: str) -> None:
        if not rt.namespaced:
            return
        ns = self._storage.get(NAMESPACES, "", namespace)
        if ns is None:
            raise errors.namespace_not_found(namespace)
        if ns.obj["metadata"].get("deletionTimestamp"):
            raise errors.forbidden(
                rt, name,
                f"unable to create new content in namespace {namespace} because it is being terminated",
            )

    def _reset_status(self, rt: ResourceType, obj: Obj) -> None:
        """What a create leaves of ``.status`` for types with a status subresource."""
        if rt.custom:
            obj.pop("status", None)
        elif rt.kind in ("Service", "Ingress"):
            obj["status"] = {"loadBalancer": {}}
        elif rt.kind == "Namespace":
            obj["status"] = {"phase": "Active"}
        else:
            obj.pop("status", None)

    def _commit(
        self,
        call: Call,
        rt: ResourceType,
        old: Stored | None,
        new: Obj,
        *,
        subresource: str,
        manager: str | None,
        dry_run: bool,
        strict: bool = False,
    ) -> tuple[Obj, bool]:
        """Run the type's write strategy on ``new`` and store it.

        Returns (object to answer with, whether it was created).  ``manager``
        None means managedFields were already computed (server-side apply).
        """
        now = _now()
        meta = new["metadata"]
        name = meta.get("name", "")
        if old is not None:
            old_meta = old.obj["metadata"]
            if subresource == "status":
                managed = meta.get("managedFields")
                status = new.get("status")
                new = old.copy()
                if status is None:
                    new.pop("status", None)
                else:
                    new["status"] = status
                if managed is not None:
                    new["metadata"]["managedFields"] = managed
                meta = new["metadata"]
            for key in ("uid", "creationTimestamp", "deletionTimestamp",
                        "deletionGracePeriodSeconds", "generation"):
                if key in old_meta:
                    meta[key] = old_meta[key]
                else:
                    meta.pop(key, None)
            if subresource == "" and rt.status_subresource:
                if "status" in old.obj:
                    new["status"] = old.obj["status"]
                else:
                    new.pop("status", None)
            added = set(meta.get("finalizers") or []) - set(old_meta.get("finalizers") or [])
            if old_meta.get("deletionTimestamp") and added:
                shown = ", ".join(f'"{f}"' for f in sorted(added))
                raise errors.invalid(rt, name, [_Cause(
                    "FieldValueForbidden", "metadata.finalizers",
                    "Forbidden: no new finalizers can be added if the object is being deleted, "
                    f"found new finalizers []string{{{shown}}}",
                )])
        else:
            for key in ("uid", "creationTimestamp", "deletionTimestamp",
                        "deletionGracePeriodSeconds", "generation", "selfLink"):
                meta.pop(key, None)
            if rt.status_subresource:
                self._reset_status(rt, new)
        meta.pop("resourceVersion", None)
        self._type_hooks(rt, old, new)
        new = self._default_and_validate(rt, old, new, name, strict)
        if manager is not None:
            new = apply.record_update(
                old.obj if old is not None else None, new, manager=manager, now=now,
                subresource=subresource, list_keys=self._list_keys_for(rt),
                status_subresource=rt.status_subresource,
            )
        meta = new["metadata"]
        if old is not None:
            if old.obj["metadata"].get("deletionTimestamp") and not meta.get("finalizers"):
                if dry_run:
                    return new, False
                gone = self._storage.remove(rt.key, call.namespace, name)
                if gone is not None:
                    self._after_removal(rt, gone, "Background")
                    return gone.obj, False
            if _without_volatile(new) == _without_volatile(old.obj):
                return old.obj, False
            if rt.tracks_generation:
                generation = old.obj["metadata"].get("generation", 1)
                if _content(new, rt.status_subresource) != _content(old.obj, rt.status_subresource):
                    generation += 1
                meta["generation"] = generation
        else:
            meta["uid"] = str(uuid.uuid4())
            meta["creationTimestamp"] = now
            if rt.tracks_generation:
                meta["generation"] = 1
        if dry_run:
            if old is not None:
                meta["resourceVersion"] = old.obj["metadata"]["resourceVersion"]
            return new, old is None
        stored = self._storage.put(rt.key, call.namespace, new)
        self._after_store(rt, stored)
        return stored.obj, old is None

    def _default_and_validate(
        self, rt: ResourceType, old: Stored | None, new: Obj, name: str, strict: bool
    ) -> Obj:
        causes: list[validation.Cause] = []
        validator = self._validator(rt)
        if validator is not None:
            pruned = validator.prune(new)
            if strict:
                unknown = _dropped_fields(
                    {k: v for k, v in new.items() if k != "metadata"},
                    {k: v for k, v in pruned.items() if k != "metadata"}, "",
                )
                if unknown:
                    raise errors.bad_request(
                        "strict decoding error: " + ", ".join(f'unknown field "{p}"' for p in unknown)
                    )
            new = validator.default(pruned)
            causes.extend(validation.validate_metadata(new, dns1035=False))
            causes.extend(validator.validate(new, old.obj if old is not None else None))
        elif not rt.custom:
            new = validation.default_builtin(rt.kind, new)
            causes.extend(validation.validate_metadata(new, dns1035=rt.kind == "Service"))
            causes.extend(validation.validate_builtin(rt.kind, new))
        if causes:
            raise errors.invalid(rt, name, causes)
        return new

    def _type_hooks(self, rt: ResourceType, old: Stored | None, new: Obj) -> None:
        """Per-type server behaviour: IP allocation, namespace and CRD bookkeeping."""
        if rt.key == "/services":
            self._service_ips(rt, old, new)
        elif rt.key == NAMESPACES:
            meta = new["metadata"]
            meta.setdefault("labels", {})["kubernetes.io/metadata.name"] = meta.get("name", "")
            new.setdefault("spec", {}).setdefault("finalizers", ["kubernetes"])
        elif rt.key == CRDS:
            self._crd_status(rt, old, new)

    def _service_ips(self, rt: ResourceType, old: Stored | None, new: Obj) -> None:
        spec = new.setdefault("spec", {})
        if spec.get("type") == "ExternalName":
            return
        old_spec = (old.obj.get("spec") or {}) if old is not None else {}
        old_ip = old_spec.get("clusterIP")
        wanted = spec.get("clusterIP")
        name = new["metadata"].get("name", "")
        if old_ip:
            if wanted and wanted != old_ip:
                raise errors.invalid(rt, name, [_Cause(
                    "FieldValueInvalid", "spec.clusterIPs[0]",
                    f'Invalid value: []string{{"{wanted}"}}: may not change once set',
                )])
            spec["clusterIP"] = old_ip
            spec["clusterIPs"] = old_spec.get("clusterIPs") or [old_ip]
        else:
            if not wanted:
                wanted = self._allocate_ip()
            spec["clusterIP"] = wanted
            spec["clusterIPs"] = [wanted]
        if spec["clusterIP"] != "None":
            spec.setdefault("ipFamilies", ["IPv4"])
        spec.setdefault("ipFamilyPolicy", "SingleStack")
        spec.setdefault("internalTrafficPolicy", "Cluster")

    def _allocate_ip(self) -> str:
        index = self._next_ip
        self._next_ip += 1
        return f"10.96.{(index // 254) % 256}.{index % 254 + 1}"

    def _crd_status(self, rt: ResourceType, old: Stored | None, new: Obj) -> None:
        try:
            types = crd_types(new)
        except CrdError as exc:
            raise errors.invalid(
                rt, new["metadata"].get("name", ""),
                [_Cause("FieldValueInvalid", exc.field_path, f"Invalid value: {exc}")],
            ) from exc
        for served in types:
            try:
                digest = _schema_digest(served.schema)
                if digest not in self._compiled:
                    self._compiled[digest] = validation.SchemaValidator(served.schema or {})
            except Exception as exc:  # any schema the validator cannot compile
                raise errors.invalid(
                    rt, new["metadata"].get("name", ""),
                    [_Cause("FieldValueInvalid",
                            f"spec.versions[{served.version}].schema.openAPIV3Schema",
                            f"Invalid value: {exc}")],
                ) from exc
        spec = new["spec"]
        spec.setdefault("conversion", {"strategy": "None"})
        status = dict(new.get("status") or {})
        now = _now()
        old_conditions = {
            c.get("type"): c for c in (status.get("conditions") or []) if isinstance(c, dict)
        }

        def condition(kind: str, reason: str, message: str) -> Obj:
            previous = old_conditions.get(kind)
            since = previous.get("lastTransitionTime", now) if previous and previous.get("status") == "True" else now
            return {"type": kind, "status": "True", "lastTransitionTime": since,
                    "reason": reason, "message": message}

        status["conditions"] = [
            condition("NamesAccepted", "NoConflicts", "no conflicts found"),
            condition("Established", "InitialNamesAccepted", "the initial names have been accepted"),
        ]
        status["acceptedNames"] = dict(spec.get("names") or {})
        storage_version = next(v["name"] for v in spec["versions"] if v.get("storage"))
        stored_versions = list(status.get("storedVersions") or [])
        if storage_version not in stored_versions:
            stored_versions.append(storage_version)
        status["storedVersions"] = stored_versions
        new["status"] = status

    def _after_store(self, rt: ResourceType, stored: Stored) -> None:
        if rt.key == CRDS:
            name = stored.obj["metadata"]["name"]
            before = {t.key for t in self._registry.crd_types(name)}
            types = self._registry.serve_crd(stored.obj)
            for key in before - {t.key for t in types}:
                self._storage.remove_all(key)
                self._hub.close_resource(key)
            for served in types:
                # hand over the validator compiled while checking the CRD
                compiled = self._compiled.pop(_schema_digest(served.schema), None)
                if compiled is None:
                    self._validators.pop((served.key, served.version), None)
                else:
                    self._validators[(served.key, served.version)] = compiled
                self._list_keys.pop((served.key, served.version), None)
            self._compiled.clear()

    # --- create / update / patch ------------------------------------------------

    def _dry_run(self, query: _Query) -> bool:
        value = query.get("dryRun")
        if value is None:
            return False
        if value != "All":
            raise errors.bad_request(f'unsupported dry run option: "{value}"')
        return True

    def _respond_object(self, rt: ResourceType, obj: Obj, code: int = 200) -> web.Response:
        body = _dump(obj) if obj.get("apiVersion") == rt.api_version else _dump(dict(obj, apiVersion=rt.api_version))
        return _json_response(body, code)

    def _create(self, call: Call, rt: ResourceType, body: Obj, query: _Query, user_agent: str) -> web.Response:
        if call.subresource:
            raise errors.method_not_allowed()
        self._check_type(rt, body)
        meta = body["metadata"]
        if not meta.get("name"):
            prefix = meta.get("generateName")
            if not prefix:
                raise errors.invalid(rt, "", [_Cause(
                    "FieldValueRequired", "metadata.name", "Required value: name or generateName is required",
                )])
            meta["name"] = prefix + "".join(secrets.choice(_NAME_CHARS) for _ in range(5))
        name = meta["name"]
        self._check_namespace(rt, call, body)
        self._require_namespace_open(rt, call.namespace, name)
        if self._storage.get(rt.key, call.namespace, name) is not None:
            raise errors.already_exists(rt, name)
        obj, _ = self._commit(
            call, rt, None, body, subresource="",
            manager=self._field_manager(query, user_agent), dry_run=self._dry_run(query),
            strict=_is_strict(query),
        )
        return self._respond_object(rt, obj, 201)

    def _update(self, call: Call, rt: ResourceType, body: Obj, query: _Query, user_agent: str) -> web.Response:
        self._claim_name(rt, call, body)
        old = self._storage.get(rt.key, call.namespace, call.name)
        manager = self._field_manager(query, user_agent)
        dry_run = self._dry_run(query)
        if old is None:
            if not rt.allow_create_on_update or call.subresource:
                raise errors.not_found(rt, call.name)
            self._require_namespace_open(rt, call.namespace, call.name)
            obj, _ = self._commit(
                call, rt, None, body, subresource="", manager=manager, dry_run=dry_run,
                strict=_is_strict(query),
            )
            return self._respond_object(rt, obj, 201)
        self._check_precondition(rt, old, body["metadata"].get("resourceVersion"))
        obj, _ = self._commit(
            call, rt, old, body, subresource=call.subresource, manager=manager, dry_run=dry_run,
            strict=_is_strict(query),
        )
        return self._respond_object(rt, obj)

    def _check_precondition(self, rt: ResourceType, old: Stored, rv: Any) -> None:
        if rv:
            if str(rv) != old.obj["metadata"]["resourceVersion"]:
                raise errors.stale(rt, old.obj["metadata"]["name"])
        elif not rt.allow_unconditional_update:
            raise errors.invalid(rt, old.obj["metadata"]["name"], [_Cause(
                "FieldValueInvalid", "metadata.resourceVersion",
                "Invalid value: 0x0: must be specified for an update",
            )])

    def _patch(
        self, call: Call, rt: ResourceType, request: web.BaseRequest, raw: bytes, query: _Query, user_agent: str
    ) -> web.Response:
        content_type = request.content_type
        accepted = [JSON_PATCH, MERGE_PATCH, APPLY_PATCH]
        if not rt.custom:
            accepted.insert(2, STRATEGIC_PATCH)
        if content_type not in accepted:
            raise errors.unsupported_media_type(content_type, accepted)
        if content_type != APPLY_PATCH and query.get("force") is not None:
            raise _patch_options_invalid("force", "FieldValueForbidden", "Forbidden: may not be specified for non-apply patch")
        dry_run = self._dry_run(query)
        old = self._storage.get(rt.key, call.namespace, call.name)
        if content_type == APPLY_PATCH:
            return self._apply(call, rt, old, raw, query, dry_run)
        if old is None:
            raise errors.not_found(rt, call.name)
        try:
            patch = json.loads(raw)
        except ValueError as exc:
            raise errors.bad_request(f"error decoding patch: {exc}") from exc
        try:
            if content_type == JSON_PATCH:
                if not isinstance(patch, list):
                    raise errors.bad_request("json patch must be a list of operations")
                patched = apply.json_patch(old.copy(), patch)
            elif not isinstance(patch, dict):
                raise errors.bad_request("the patch must be a JSON object")
            elif content_type == MERGE_PATCH:
                patched = apply.merge_patch(old.copy(), patch)
            else:
                patched = apply.strategic_merge_patch(old.copy(), patch, rt.kind)
        except apply.PatchError as exc:
            raise ApiError(422, "Invalid", str(exc), {}) from exc
        if not isinstance(patched, dict) or not isinstance(patched.get("metadata"), dict):
            raise errors.bad_request("the patch removed the object's metadata")
        patched = dict(patched, metadata=dict(patched["metadata"]))
        rv = patched["metadata"].get("resourceVersion")
        if rv and rv != old.obj["metadata"]["resourceVersion"]:
            raise errors.stale(rt, call.name)
        self._check_identity(rt, call, patched)
        obj, _ = self._commit(
            call, rt, old, patched, subresource=call.subresource,
            manager=self._field_manager(query, user_agent), dry_run=dry_run,
            strict=_is_strict(query),
        )
        return self._respond_object(rt, obj)

    def _claim_name(self, rt: ResourceType, call: Call, obj: Obj) -> None:
        """A PUT or apply body names the URL's object, or leaves the name to it."""
        self._check_type(rt, obj)
        meta = obj["metadata"]
        if meta.get("name") and meta["name"] != call.name:
            raise errors.bad_request(
                f"the name of the object ({meta['name']}) does not match the name on the URL ({call.name})"
            )
        meta["name"] = call.name
        self._check_namespace(rt, call, obj)

    def _check_identity(self, rt: ResourceType, call: Call, obj: Obj) -> None:
        self._check_type(rt, obj)
        meta = obj["metadata"]
        if meta.get("name") != call.name:
            raise errors.bad_request(
                f"the name of the object ({meta.get('name')}) does not match the name on the URL ({call.name})"
            )
        self._check_namespace(rt, call, obj)

    def _apply(
        self, call: Call, rt: ResourceType, old: Stored | None, raw: bytes, query: _Query, dry_run: bool
    ) -> web.Response:
        manager = query.get("fieldManager")
        if not manager:
            raise _patch_options_invalid("fieldManager", "FieldValueRequired", "Required value: is required for apply patch")
        try:
            applied = json.loads(raw)
        except ValueError:
            try:
                applied = yaml.load(raw, Loader=_YAML_LOADER)
            except yaml.YAMLError as exc:
                raise errors.bad_request(f"error decoding YAML: {exc}") from exc
        if not isinstance(applied, dict):
            raise errors.bad_request("the apply configuration must be an object")
        if not applied.get("apiVersion") or not applied.get("kind"):
            raise errors.bad_request("apply configurations must set apiVersion and kind")
        self._claim_name(rt, call, applied)
        if old is None:
            if call.subresource:
                raise errors.not_found(rt, call.name)
            self._require_namespace_open(rt, call.namespace, call.name)
        else:
            rv = applied["metadata"].get("resourceVersion")
            if rv and rv != old.obj["metadata"]["resourceVersion"]:
                raise errors.stale(rt, call.name)
        try:
            result = apply.server_side_apply(
                old.copy() if old is not None else None, applied,
                manager=manager, force=query.flag("force"), now=_now(),
                subresource=call.subresource, list_keys=self._list_keys_for(rt),
                status_subresource=rt.status_subresource,
            )
        except apply.ApplyConflict as exc:
            raise self._apply_conflict(rt, call.name, exc.conflicts) from exc
        except apply.PatchError as exc:
            raise ApiError(422, "Invalid", str(exc), {}) from exc
        result = dict(result, metadata=dict(result.get("metadata") or {}))
        result["metadata"]["name"] = call.name
        if rt.namespaced:
            result["metadata"]["namespace"] = call.namespace
        obj, created = self._commit(
            call, rt, old, result, subresource=call.subresource, manager=None, dry_run=dry_run,
            strict=_is_strict(query),
        )
        return self._respond_object(rt, obj, 201 if created else 200)

    @staticmethod
    def _apply_conflict(rt: ResourceType, name: str, conflicts: list[tuple[str, str]]) -> ApiError:
        count = len(conflicts)
        lines = [f'conflict with "{manager}": {path}' for manager, path in conflicts]
        summary = lines[0] if count == 1 else "\n".join(f"- {line}" for line in lines)
        plural = "conflict" if count == 1 else "conflicts"
        details: Obj = {"name": name, "kind": rt.plural, "causes": [
            {"reason": "FieldManagerConflict", "message": f'conflict with "{manager}"', "field": path}
            for manager, path in conflicts
        ]}
        if rt.group:
            details["group"] = rt.group
        return ApiError(409, "Conflict", f"Apply failed with {count} {plural}: {summary}", details)

    # --- scale subresource ----------------------------------------------------------

    def _scale_of(self, rt: ResourceType, obj: Obj) -> Obj:
        assert rt.scale is not None
        meta = obj["metadata"]
        status: Obj = {"replicas": _path_get(obj, rt.scale.status_replicas) or 0}
        if rt.scale.label_selector:
            selector = _path_get(obj, rt.scale.label_selector)
            if selector:
                status["selector"] = selector
        scale_meta = {k: meta[k] for k in ("name", "namespace", "uid", "resourceVersion", "creationTimestamp") if k in meta}
        return {
            "kind": "Scale",
            "apiVersion": "autoscaling/v1",
            "metadata": scale_meta,
            "spec": {"replicas": _path_get(obj, rt.scale.spec_replicas) or 0},
            "status": status,
        }

    async def _scale(self, request: web.BaseRequest, call: Call, rt: ResourceType, query: _Query) -> web.Response:
        assert rt.scale is not None
        old = self._require(rt, call.namespace, call.name)
        if request.method == "GET":
            return _json_response(_dump(self._scale_of(rt, old.obj)))
        user_agent = request.headers.get("User-Agent", "")
        current = self._scale_of(rt, old.obj)
        if request.method == "PUT":
            scale = await self._body(request)
        elif request.method == "PATCH":
            content_type = request.content_type
            raw = await request.read()
            try:
                patch = json.loads(raw)
                if content_type == JSON_PATCH:
                    scale = apply.json_patch(current, patch)
                elif content_type in (MERGE_PATCH, STRATEGIC_PATCH):
                    scale = apply.merge_patch(current, patch)
                else:
                    raise errors.unsupported_media_type(content_type, [JSON_PATCH, MERGE_PATCH])
            except ValueError as exc:
                raise errors.bad_request(f"error decoding patch: {exc}") from exc
            except apply.PatchError as exc:
                raise ApiError(422, "Invalid", str(exc), {}) from exc
        else:
            raise errors.method_not_allowed()
        self._check_precondition_scale(rt, old, scale)
        replicas = (scale.get("spec") or {}).get("replicas")
        if not isinstance(replicas, int) or replicas < 0:
            raise errors.invalid(rt, call.name, [_Cause(
                "FieldValueInvalid", "spec.replicas",
                f"Invalid value: {json.dumps(replicas)}: must be greater than or equal to 0",
            )])
        new = old.copy()
        _path_set(new, rt.scale.spec_replicas, replicas)
        obj, _ = self._commit(
            call, rt, old, new, subresource="",
            manager=self._field_manager(query, user_agent), dry_run=self._dry_run(query),
        )
        return _json_response(_dump(self._scale_of(rt, obj)))

    def _check_precondition_scale(self, rt: ResourceType, old: Stored, scale: Obj) -> None:
        rv = (scale.get("metadata") or {}).get("resourceVersion")
        if rv and str(rv) != old.obj["metadata"]["resourceVersion"]:
            raise errors.stale(rt, old.obj["metadata"]["name"])

    # --- delete -------------------------------------------------------------------

    def _delete(self, call: Call, rt: ResourceType, options: Obj, query: _Query) -> web.Response:
        old = self._require(rt, call.namespace, call.name)
        meta = old.obj["metadata"]
        preconditions = options.get("preconditions") or {}
        uid = preconditions.get("uid")
        if uid and uid != meta.get("uid"):
            raise errors.delete_precondition_failed(rt, call.name, "UID", uid, meta.get("uid", ""))
        rv = preconditions.get("resourceVersion")
        if rv and rv != meta.get("resourceVersion"):
            raise errors.delete_precondition_failed(
                rt, call.name, "ResourceVersion", rv, meta.get("resourceVersion", "")
            )
        dry_run = self._dry_run(query) or options.get("dryRun") == ["All"]
        policy = query.get("propagationPolicy") or options.get("propagationPolicy") or "Background"
        if dry_run:
            return self._respond_object(rt, old.obj)
        obj, finished = self._delete_stored(rt.key, call.namespace, old, policy)
        # Kubernetes answers a finished delete with the object for custom
        # resources and Services, with a Success Status for the other built-ins
        if finished and not rt.custom and rt.key != "/services":
            details: Obj = {"name": call.name, "kind": rt.plural, "uid": meta.get("uid")}
            if rt.group:
                details["group"] = rt.group
            return _json_response(_dump({
                "kind": "Status", "apiVersion": "v1", "metadata": {},
                "status": "Success", "details": details,
            }))
        return self._respond_object(rt, obj)

    def _delete_stored(self, resource: str, namespace: str, old: Stored, policy: str) -> tuple[Obj, bool]:
        """Delete now, or mark for deletion while finalizers remain.

        Returns (object to answer with, whether it is gone).
        """
        meta = old.obj["metadata"]
        if resource == NAMESPACES:
            return self._delete_namespace(old)
        if meta.get("finalizers"):
            if meta.get("deletionTimestamp"):
                return old.obj, False
            marked = old.copy()
            marked["metadata"]["deletionTimestamp"] = _now()
            marked["metadata"]["deletionGracePeriodSeconds"] = 0
            stored = self._storage.put(resource, namespace, marked)
            return stored.obj, False
        gone = self._storage.remove(resource, namespace, meta["name"])
        assert gone is not None
        if resource == CRDS:
            self._drop_crd(gone.obj)
        self._after_removal(None, gone, policy)
        return gone.obj, True

    def _after_removal(self, rt: ResourceType | None, gone: Stored, policy: str) -> None:
        meta = gone.obj["metadata"]
        namespace = meta.get("namespace", "")
        if self._garbage_collection and policy != "Orphan" and self._loop is not None:
            self._loop.call_soon(self._collect_dependents, meta.get("uid", ""), namespace)
        if namespace:
            self._maybe_finish_namespace(namespace)

    def _drop_crd(self, crd: Obj) -> None:
        for served in self._registry.unserve_crd(crd["metadata"]["name"]):
            self._validators.pop((served.key, served.version), None)
            self._list_keys.pop((served.key, served.version), None)
            self._storage.remove_all(served.key)
            self._hub.close_resource(served.key)

    def _collect_dependents(self, owner_uid: str, namespace: str) -> None:
        """Delete objects all of whose owners are gone (the garbage collector's job)."""
        if not owner_uid:
            return
        candidates: Iterable[tuple[str, Stored]] = (
            self._storage.namespace_contents(namespace) if namespace else self._storage.all_namespaced()
        )
        for resource, stored in list(candidates):
            refs = stored.obj["metadata"].get("ownerReferences") or []
            if not any(ref.get("uid") == owner_uid for ref in refs):
                continue
            if any(ref.get("uid") in self._uids for ref in refs):
                continue
            current = self._storage.get(resource, namespace if namespace else stored.obj["metadata"].get("namespace", ""), stored.obj["metadata"]["name"])
            if current is not None and current.rv == stored.rv:
                self._delete_stored(resource, stored.obj["metadata"].get("namespace", ""), current, "Background")

    def _delete_namespace(self, old: Stored) -> tuple[Obj, bool]:
        name = old.obj["metadata"]["name"]
        if not old.obj["metadata"].get("deletionTimestamp"):
            marked = old.copy()
            marked["metadata"]["deletionTimestamp"] = _now()
            marked["metadata"]["deletionGracePeriodSeconds"] = 0
            marked["status"] = {"phase": "Terminating"}
            old = self._storage.put(NAMESPACES, "", marked)
            for resource, stored in list(self._storage.namespace_contents(name)):
                self._delete_stored(resource, name, stored, "Background")
        remaining = self._maybe_finish_namespace(name)
        if remaining is None:
            gone_obj = dict(old.obj)
            return gone_obj, True
        return old.obj, False

    def _maybe_finish_namespace(self, name: str) -> Stored | None:
        """Remove a terminating namespace once it is empty; returns it if it stays."""
        ns = self._storage.get(NAMESPACES, "", name)
        if ns is None or not ns.obj["metadata"].get("deletionTimestamp"):
            return ns
        for _ in self._storage.namespace_contents(name):
            return ns
        self._storage.remove(NAMESPACES, "", name)
        return None

    def _delete_collection(self, call: Call, rt: ResourceType, options: Obj, query: _Query) -> web.Response:
        selection = self._selection(call, rt, query)
        dry_run = self._dry_run(query)
        policy = query.get("propagationPolicy") or options.get("propagationPolicy") or "Background"
        deleted: list[bytes] = []
        for stored in self._storage.objects(rt.key, selection.namespace):
            namespace = stored.obj["metadata"].get("namespace", "")
            if not selection.matches(namespace, stored):
                continue
            if dry_run:
                deleted.append(stored.raw())
                continue
            obj, _ = self._delete_stored(rt.key, namespace, stored, policy)
            deleted.append(_dump(obj))
        body = (
            b'{"kind":"' + rt.list_kind.encode() + b'","apiVersion":"' + rt.api_version.encode()
            + b'","metadata":{"resourceVersion":"' + str(self._storage.resource_version).encode()
            + b'"},"items":[' + b",".join(deleted) + b"]}"
        )
        return _json_response(body)


@dataclass(frozen=True, slots=True)
class _Cause:
    """A validation cause raised by the server itself (same shape as validation.Cause)."""

    type: str
    field: str
    message: str


def _is_strict(query: _Query) -> bool:
    """``fieldValidation=Strict``: unknown fields fail the write instead of being dropped."""
    return query.get("fieldValidation") == "Strict"


def _patch_options_invalid(field_path: str, reason: str, message: str) -> ApiError:
    """PatchOptions are validated as an object of their own, as Kubernetes does."""
    return ApiError(
        422, "Invalid", f'PatchOptions.meta.k8s.io "" is invalid: {field_path}: {message}',
        {"group": "meta.k8s.io", "kind": "PatchOptions",
         "causes": [{"reason": reason, "message": message, "field": field_path}]},
    )


__all__ = ["ApiServer", "Call", "RequestRecord"]
