"""Watch machinery of the loopback API server: history, fan-out, resume.

A real API server keeps a window of recent changes (the watch cache over
etcd's compacted history).  A watch that asks to resume from a
resourceVersion inside the window gets every later change; one that asks for
a version older than the window gets ``410 Expired`` ("too old resource
version") and must relist — the path client-go's reflector takes.  Here the
window is a ring of the last ``history`` changes of each resource type.

Every change is fanned out synchronously (on the event-loop thread) into the
queue of each matching :class:`Watcher`; the HTTP handler drains that queue
into the response.  Label selectors are applied as the real watch cache does:
an object that stops matching arrives as DELETED, one that starts matching as
ADDED.
"""

from __future__ import annotations

import asyncio
import json
from collections import deque
from collections.abc import Callable
from typing import Final

from disvc.testing.apiserver.storage import Change, Selection, Stored

_CLOSE: Final = None
"""Queue sentinel: end the stream."""

Encoder = Callable[[Stored], bytes]
"""Encodes an object for one watcher (rewrites apiVersion for other versions)."""


class TooOld(Exception):
    """The requested resourceVersion fell out of the retained window."""

    def __init__(self, requested: int, oldest: int) -> None:
        super().__init__(f"too old resource version: {requested} ({oldest})")


def event_line(kind: str, raw_object: bytes) -> bytes:
    return b'{"type":"' + kind.encode() + b'","object":' + raw_object + b"}\n"


class Watcher:
    """One open watch: a selection, an encoder, and a queue of lines to send."""

    __slots__ = ("abort", "closed", "encode", "queue", "selection", "sent_rv")

    def __init__(self, selection: Selection, encode: Encoder) -> None:
        self.selection = selection
        self.encode = encode
        self.queue: asyncio.Queue[bytes | None] = asyncio.Queue()
        self.closed = False
        self.abort = False
        """When closed: drop the connection instead of ending the stream."""
        self.sent_rv = 0
        """The rv of the last change queued (a bookmark may carry it)."""

    def offer(self, change: Change) -> None:
        """Queue the change if this watcher selects it (with transitions)."""
        selection = self.selection
        if change.resource != selection.resource or self.closed:
            return
        matches_now = selection.matches(change.namespace, change.stored)
        kind = change.type
        if change.type == "MODIFIED" and change.previous is not None:
            matched_before = selection.matches(change.namespace, change.previous)
            if not matched_before and not matches_now:
                return
            if not matched_before:
                kind = "ADDED"
            elif not matches_now:
                kind = "DELETED"
        elif not matches_now:
            return
        self.sent_rv = change.stored.rv
        self.queue.put_nowait(event_line(kind, self.encode(change.stored)))

    def close(self, abort: bool = False) -> None:
        if not self.closed:
            self.closed = True
            self.abort = abort
            self.queue.put_nowait(_CLOSE)


class WatchHub:
    """The retained change windows (one per resource type) and open watchers.

    Windows are per resource type, as the real watch cache is, so a busy
    resource does not expire the history of a quiet one.
    """

    def __init__(self, history: int) -> None:
        self._capacity = max(1, history)
        self._history: dict[str, deque[Change]] = {}
        self._compacted: dict[str, int] = {}
        """Per resource: highest rv that fell out of the window."""
        self._watchers: dict[str, set[Watcher]] = {}

    def publish(self, change: Change) -> None:
        """Record a committed change and fan it out (the storage's sink)."""
        history = self._history.get(change.resource)
        if history is None:
            history = self._history[change.resource] = deque()
        if len(history) >= self._capacity:
            self._compacted[change.resource] = history.popleft().stored.rv
        history.append(change)
        for watcher in self._watchers.get(change.resource, ()):
            watcher.offer(change)

    def check_not_too_old(self, resource: str, rv: int) -> None:
        """Raise :class:`TooOld` if changes after ``rv`` are no longer known."""
        compacted = self._compacted.get(resource, 0)
        if rv < compacted:
            raise TooOld(rv, compacted + 1)

    def subscribe(
        self,
        selection: Selection,
        encode: Encoder,
        *,
        since: int | None,
        current: list[tuple[str, Stored]],
    ) -> Watcher:
        """Open a watch.

        ``since`` None starts with synthetic ADDED events for ``current``
        (namespace, object) pairs; otherwise replays retained changes after
        ``since`` (raising :class:`TooOld` when the window no longer reaches
        back that far).  Either way, later changes follow without a gap,
        because registration happens in the same loop step.
        """
        watcher = Watcher(selection, encode)
        if since is None:
            for namespace, stored in current:
                if selection.matches(namespace, stored):
                    watcher.queue.put_nowait(event_line("ADDED", encode(stored)))
                    watcher.sent_rv = max(watcher.sent_rv, stored.rv)
        else:
            self.check_not_too_old(selection.resource, since)
            for change in self._history.get(selection.resource, ()):
                if change.stored.rv > since:
                    watcher.offer(change)
        self._watchers.setdefault(selection.resource, set()).add(watcher)
        return watcher

    def unsubscribe(self, watcher: Watcher) -> None:
        self._watchers.get(watcher.selection.resource, set()).discard(watcher)

    def close_all(self, abort: bool = False) -> int:
        """Close every open watch; returns how many were open."""
        watchers = [w for group in self._watchers.values() for w in group]
        for watcher in watchers:
            watcher.close(abort)
        self._watchers.clear()
        return len(watchers)

    def close_resource(self, resource: str) -> None:
        """Close the watches of a resource type that stopped being served."""
        for watcher in self._watchers.pop(resource, set()):
            watcher.close()
        self._history.pop(resource, None)

    @property
    def watcher_count(self) -> int:
        return sum(len(group) for group in self._watchers.values())


def bookmark_line(kind: str, api_version: str, rv: int) -> bytes:
    body = {"kind": kind, "apiVersion": api_version, "metadata": {"resourceVersion": str(rv)}}
    return event_line("BOOKMARK", json.dumps(body, separators=(",", ":")).encode())
