"""The loopback Kubernetes API server: HTTP in front of the generic store.

Tests, benchmarks and the demo need a Kubernetes API that starts in
milliseconds, can be asked how many requests a controller made, and can be
told to fail. :class:`ApiServer` serves the REST API the official clients
and ``kubectl`` speak (paths, verbs, content types, ``v1 Status`` errors,
watch streams) on an ephemeral port from an asyncio loop in a daemon thread.

This module is the HTTP side only. A request path is parsed into a
:class:`~requestinfo.Call`; injected faults (:mod:`faults`) are consulted;
the verb's handler (:mod:`handlers`) runs on the loop thread against the
generic store (:mod:`store`, with one strategy per type in
:mod:`strategies`), so nothing below needs a lock; the outcome is recorded
(:mod:`accounting`). Paths that name no resource (health, version,
discovery, OpenAPI) are served from :attr:`ApiServer.routes`, a table other
modules may add to; the reviews of :mod:`auth` (TokenReview,
SubjectAccessReview, TokenRequest) are answered before the store is asked.

Given a ``ServingTls`` the server speaks HTTPS and asks clients for a
certificate signed by its client CA (``ServingTls.server_context`` says how
that differs from kube-apiserver). :meth:`ApiServer.restart` stands for a
restart of kube-apiserver, optionally with new certificates: every
connection and watch is cut and the port served again, the stored objects
kept, as etcd keeps them.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable
from typing import Any, Final, Self, TypeVar

import yaml
from aiohttp import web

from disvc.testing.apiserver import auth, discovery, errors, requestinfo
from disvc.testing.apiserver.accounting import WRITE_VERBS, RequestLog, RequestRecord
from disvc.testing.apiserver.errors import ApiError
from disvc.testing.apiserver.faults import FaultBook, FaultRule
from disvc.testing.apiserver.handlers import delete, get, patch, scale, watch, write
from disvc.testing.apiserver.handlers import request as req
from disvc.testing.apiserver.handlers.response import dump, json_response
from disvc.testing.apiserver.openapi import documents as openapi_documents
from disvc.testing.apiserver.openapi import protobuf
from disvc.testing.apiserver.requestinfo import Call, Query
from disvc.testing.apiserver.resources import VERSION_INFO, Registry, ResourceType
from disvc.testing.apiserver.storage import Obj, Storage
from disvc.testing.apiserver.store import Store
from disvc.testing.apiserver.watch import WatchHub
from disvc.testing.running import Running
from disvc.testing.serving_tls import ServingTls

MAX_REQUEST_BODY_BYTES: Final = 3 * 1024 * 1024
"""kube-apiserver's limit on a request body (a 413 past it)."""

T = TypeVar("T")
Route = Callable[[web.BaseRequest], Awaitable[web.StreamResponse]]
"""A handler for one non-resource path (GET only)."""


class ApiServer(Running):
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
        path_prefix: str = "",
        tls: ServingTls | None = None,
    ) -> None:
        self._host = host
        self._tls = tls
        self._path_prefix = path_prefix.rstrip("/")
        """Served under this path only, as behind Rancher's proxy
        (``/k8s/clusters/<id>``); the prefix is in :attr:`url`."""
        self._port = port
        self._bookmark_interval = bookmark_interval
        self._registry = Registry(auth.RESOURCE_TYPES)
        self._store = Store(
            self._registry, WatchHub(history), garbage_collection=garbage_collection, defer=self._defer
        )
        self._auth = auth.Authority(self._store.storage)
        self._openapi = openapi_documents.Publisher(self._registry, VERSION_INFO["gitVersion"])
        self._faults = FaultBook()
        self._log = RequestLog()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._web: web.Server | None = None
        self._listener: asyncio.AbstractServer | None = None
        self.routes: dict[str, Route] = {
            "/healthz": self._ok, "/readyz": self._ok, "/livez": self._ok,
            "/version": self._version,
            "/api": self._discovery, "/apis": self._discovery,
            "/openapi/v2": self._openapi_v2, "/openapi/v3": self._openapi_v3,
        }
        """Non-resource GET paths -> handler."""
        self.prefix_routes: dict[str, Route] = {
            "/api/": self._discovery, "/apis/": self._discovery, "/openapi/v3/": self._openapi_v3,
        }
        """Path prefixes -> handler, for paths not in :attr:`routes` (longest prefix wins)."""

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
        self._web = web.Server(self._handle, access_log=None, request_factory=self._request)
        await self._listen()

    async def _listen(self) -> None:
        assert self._web is not None
        context = self._tls.server_context() if self._tls is not None else None
        loop = asyncio.get_running_loop()
        self._listener = await loop.create_server(self._web, self._host, self._port, ssl=context)
        self._port = self._listener.sockets[0].getsockname()[1]

    @staticmethod
    def _request(*parts: Any) -> web.BaseRequest:
        # kube-apiserver reads bodies up to 3 MiB; aiohttp's default stops at 1 MiB
        message, payload, protocol, writer, task = parts
        return web.BaseRequest(
            message, payload, protocol, writer, task, asyncio.get_running_loop(),
            client_max_size=MAX_REQUEST_BODY_BYTES,
        )

    async def _restart(self, tls: ServingTls | None) -> None:
        if self._listener is not None:
            self._listener.close()
        self._store.hub.close_all(abort=True)
        for handler in self._web.connections if self._web is not None else ():
            if handler.transport is not None:
                handler.transport.abort()  # as a process that exits: no goodbye, in-flight answers lost
        if tls is not None:
            self._tls = tls
        await self._listen()

    async def _close(self) -> None:
        if self._listener is not None:
            self._listener.close()
        self._store.hub.close_all()
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


    def restart(self, tls: ServingTls | None = None) -> Self:
        """Cut every connection and watch and serve the same port again, with
        ``tls`` from now on when given; stored objects stay. Returns once the
        port is served again."""
        if self._loop is None:
            raise RuntimeError("restart() before start()")
        asyncio.run_coroutine_threadsafe(self._restart(tls), self._loop).result(timeout=10)
        return self

    @property
    def port(self) -> int:
        return self._port

    @property
    def url(self) -> str:
        scheme = "https" if self._tls is not None else "http"
        return f"{scheme}://{self._host}:{self._port}{self._path_prefix}"

    def kubeconfig(self) -> Obj:
        """A kubeconfig whose current context is this server. Requests are not
        checked; its token is the admin's only to TokenReview."""
        name = "disvc-loopback"
        cluster: Obj = {"server": self.url}
        if self._tls is not None:
            cluster["certificate-authority"] = str(self._tls.ca)
        return {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": name, "cluster": cluster}],
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
        return self._log.snapshot()

    def reset_requests(self) -> None:
        self._log.clear()

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
        """Count recorded requests matching every given filter (:meth:`RequestLog.count`)."""
        return self._log.count(verb, resource, user_agent, namespace=namespace, name=name, code=code)

    def write_count(self, user_agent: str | None = None) -> int:
        """Requests that asked to change state (create/update/patch/delete[collection])."""
        return self._log.write_count(user_agent)

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
        return int(self._on_loop(lambda: self._store.hub.close_all(abort)))

    def watch_count(self) -> int:
        """How many watch streams are open right now."""
        return int(self._on_loop(lambda: self._store.hub.watcher_count))

    def object_count(self) -> int:
        """How many objects are stored (all types, all namespaces)."""
        return int(self._on_loop(self._store.storage.count))

    def snapshot(self, fn: Callable[[Storage], T]) -> T | None:
        """``fn(storage)`` on the server's loop thread: a consistent read of every
        stored object, without a request (benchmarks poll this). ``fn`` must not write."""
        result: T | None = self._on_loop(lambda: fn(self._store.storage))
        return result

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

    def _defer(self, fn: Callable[[], None]) -> None:
        if self._loop is not None:
            self._loop.call_soon(fn)

    # --- HTTP entry point -------------------------------------------------------

    async def _handle(self, request: web.BaseRequest) -> web.StreamResponse:
        if self._path_prefix:
            if not request.path.startswith(self._path_prefix + "/"):
                return web.Response(status=404, text="404 page not found\n")
            unprefixed = request.rel_url.with_path(request.path.removeprefix(self._path_prefix))
            request = request.clone(rel_url=unprefixed.with_query(request.rel_url.query))
        user_agent = request.headers.get("User-Agent", "")
        call: Call | None = None
        code = 500
        try:
            call = requestinfo.parse(request.method, request.path, Query(request.query))
            if call is None:
                response = await self._non_resource(request)
            else:
                response = await self._serve(request, call, user_agent)
            code = response.status
            return response
        except ApiError as exc:
            code = exc.code
            return json_response(exc.body(), exc.code, exc.headers)
        except web.HTTPRequestEntityTooLarge:
            error = errors.request_too_large(MAX_REQUEST_BODY_BYTES)
            code = error.code
            return json_response(error.body(), error.code)
        except asyncio.CancelledError:
            code = 499
            raise
        except Exception as exc:  # noqa: BLE001 - a bug here must reach the client as a 500, not a hang
            code = 500
            error = errors.internal(f"{type(exc).__name__}: {exc}")
            return json_response(error.body(), 500)
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
        self._log.append(record)

    # --- non-resource paths -------------------------------------------------------

    async def _non_resource(self, request: web.BaseRequest) -> web.StreamResponse:
        path = request.path.rstrip("/") or "/"
        if request.method != "GET":
            raise errors.method_not_allowed()
        route = self.routes.get(path)
        if route is None:
            prefixes = [p for p in self.prefix_routes if path.startswith(p)]
            if prefixes:
                route = self.prefix_routes[max(prefixes, key=len)]
        if route is None:
            raise ApiError(404, "NotFound", "the server could not find the requested resource", {})
        return await route(request)

    async def _ok(self, request: web.BaseRequest) -> web.StreamResponse:
        return web.Response(text="ok", content_type="text/plain")

    async def _version(self, request: web.BaseRequest) -> web.StreamResponse:
        return json_response(dump(VERSION_INFO))

    async def _discovery(self, request: web.BaseRequest) -> web.StreamResponse:
        doc = discovery.document(self._registry, request.path, f"{self._host}:{self._port}")
        if doc is None:
            raise ApiError(404, "NotFound", "the server could not find the requested resource", {})
        return json_response(dump(doc))

    async def _openapi_v2(self, request: web.BaseRequest) -> web.StreamResponse:
        accept = request.headers.get("Accept", "")
        if any(media in accept for media in protobuf.REQUESTED_MEDIA_TYPES):
            return web.Response(body=self._openapi.v2_protobuf(), headers={"Content-Type": protobuf.MEDIA_TYPE})
        return json_response(self._openapi.v2_json())

    async def _openapi_v3(self, request: web.BaseRequest) -> web.StreamResponse:
        key = request.path.rstrip("/").removeprefix("/openapi/v3").strip("/")
        body = self._openapi.v3_group_version(key) if key else self._openapi.v3_index()
        if body is None:
            raise ApiError(404, "NotFound", "the server could not find the requested resource", {})
        return json_response(body)

    # --- resource paths -------------------------------------------------------------

    def _resource_type(self, call: Call) -> ResourceType:
        rt = self._registry.lookup(call.group, call.version, call.plural)
        if rt is None:
            raise errors.unknown_resource()
        if call.namespace and not rt.namespaced:
            raise errors.unknown_resource()
        if rt.namespaced and not call.namespace and call.name:
            raise errors.unknown_resource()
        if call.subresource and call.subresource not in rt.subresources:
            raise errors.unknown_resource()
        return rt

    async def _serve(self, request: web.BaseRequest, call: Call, user_agent: str) -> web.StreamResponse:
        if self._auth.handles(call):
            return json_response(dump(self._auth.create(call, await req.body(request))), 201)
        rt = self._resource_type(call)
        fault = self._faults.take(call.verb, call.resource, call.namespace, call.name)
        if fault is not None:
            if fault.delay > 0:
                await asyncio.sleep(fault.delay)
            if fault.code:
                if call.verb == "watch" and fault.code == 410:
                    return await watch.error_stream(
                        request, errors.expired(fault.message or "too old resource version: injected")
                    )
                raise errors.injected(fault.code, fault.retry_after, fault.message)
        query = Query(request.query)
        method = request.method
        accept = request.headers.get("Accept", "")
        store = self._store
        if call.watch:
            if method != "GET":
                raise errors.method_not_allowed()
            return await watch.watch(store, request, call, rt, query, self._bookmark_interval, accept)
        if call.subresource == "scale":
            return await scale.scale(store, request, call, rt, query)
        if call.subresource and method not in ("GET", "PUT", "PATCH"):
            raise errors.method_not_allowed()
        if method == "GET":
            if call.name:
                return get.get(store, call, rt, query, accept)
            return get.list_objects(store, call, rt, query, accept)
        if method == "POST" and not call.name:
            return write.create(store, call, rt, await req.body(request), query, user_agent)
        if method == "PUT" and call.name:
            return write.update(store, call, rt, await req.body(request), query, user_agent)
        if method == "PATCH" and call.name:
            raw = await request.read()
            return patch.patch_object(store, call, rt, request.content_type, raw, query, user_agent)
        if method == "DELETE":
            raw = await request.read()
            options: Obj = req.decode_json(raw) if raw.strip() else {}
            if call.name:
                return delete.delete(store, call, rt, options, query)
            return delete.delete_collection(store, call, rt, options, query)
        raise errors.method_not_allowed()


__all__ = ["WRITE_VERBS", "ApiServer", "Call", "RequestRecord"]
