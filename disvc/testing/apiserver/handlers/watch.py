"""WATCH: stream a selection's changes as newline-delimited JSON events.

A watch without a resourceVersion starts with an ADDED event per current
object; one with a resourceVersion resumes from the watch window
(:mod:`disvc.testing.apiserver.watch`) or fails the way a real server fails
it: HTTP 200, then one ERROR event with a 410 Status. Bookmarks are sent
when asked for; the stream ends at ``timeoutSeconds``, when the server drops
watches, or when the client goes away.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from aiohttp import web

from disvc.testing.apiserver import errors, tables
from disvc.testing.apiserver.errors import ApiError
from disvc.testing.apiserver.handlers.get import selection
from disvc.testing.apiserver.handlers.response import JSON_HEADERS, dump, encoder
from disvc.testing.apiserver.requestinfo import Call, Query
from disvc.testing.apiserver.resources import ResourceType
from disvc.testing.apiserver.storage import Stored
from disvc.testing.apiserver.store import Store
from disvc.testing.apiserver.watch import Encoder, TooOld, Watcher, bookmark_line, event_line


async def error_stream(request: web.BaseRequest, error: ApiError) -> web.StreamResponse:
    """A watch fails the way real servers fail one: 200, then an ERROR event."""
    response = web.StreamResponse(status=200, headers=JSON_HEADERS)
    await response.prepare(request)
    await response.write(event_line("ERROR", error.body()))
    await response.write_eof()
    return response


async def watch(
    store: Store,
    request: web.BaseRequest,
    call: Call,
    rt: ResourceType,
    query: Query,
    bookmark_interval: float,
    accept: str,
) -> web.StreamResponse:
    """Serve one watch stream (of Tables, when the client asks for them)."""
    chosen = selection(call, rt, query)
    encode = _table_encoder(rt, query) if tables.wants_table(accept) else encoder(rt)
    since = None if query.get("resourceVersion") == "0" else query.resource_version()
    timeout = query.integer("timeoutSeconds")
    bookmarks = query.flag("allowWatchBookmarks")
    current: list[tuple[str, Stored]] = []
    if since is None:
        current = [
            (s.obj["metadata"].get("namespace", ""), s)
            for s in store.storage.objects(rt.key, chosen.namespace)
        ]
    try:
        watcher = store.hub.subscribe(chosen, encode, since=since, current=current)
    except TooOld as exc:
        return await error_stream(request, errors.expired(str(exc)))
    try:
        response = web.StreamResponse(status=200, headers=JSON_HEADERS)
        await response.prepare(request)
        tick = bookmark_interval if bookmarks else 1.0

        async def bookmark() -> None:
            await response.write(bookmark_line(rt.kind, rt.api_version, store.storage.resource_version))

        await _pump(request, response, watcher, timeout, tick, bookmark if bookmarks else None)
        return response
    finally:
        store.hub.unsubscribe(watcher)


def _table_encoder(rt: ResourceType, query: Query) -> Encoder:
    """Each event's object as a one-row Table; column definitions on the first only."""
    chosen = tables.printer(rt)
    include = tables.include_object(query.get("includeObject"))
    first = [True]

    def encode(stored: Stored) -> bytes:
        obj = stored.obj if stored.obj.get("apiVersion") == rt.api_version else dict(stored.obj, apiVersion=rt.api_version)
        doc = tables.table(
            chosen, [obj], include=include, headers=first[0],
            list_meta={"resourceVersion": obj["metadata"].get("resourceVersion", "")},
        )
        first[0] = False
        return dump(doc)

    return encode


async def _pump(
    request: web.BaseRequest,
    response: web.StreamResponse,
    watcher: Watcher,
    timeout: int | None,
    tick: float,
    bookmark: Callable[[], Awaitable[None]] | None,
) -> None:
    """Copy queued events to the client until timeout, close or disconnect."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + (timeout if timeout is not None and timeout > 0 else 1800.0)
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
                if bookmark is not None:
                    await bookmark()
                break
            if bookmark is not None and now >= next_bookmark:
                await bookmark()
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
