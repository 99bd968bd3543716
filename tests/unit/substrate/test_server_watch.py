"""Watch behaviour specific to the substrate: dropped streams, a history
window small enough to force 410, bookmarks on a short interval."""

from __future__ import annotations

import http.client
import json
import threading
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import pytest
from substrate_http import call, config_map

from disvc.testing.apiserver import ApiServer
from disvc.testing.fixtures import eventually

CMS = "/api/v1/namespaces/default/configmaps"


class Stream:
    """A watch read on a background thread, collecting decoded events."""

    def __init__(self, url: str, query: str) -> None:
        parts = urlsplit(url)
        self._conn = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=10)
        self._conn.request("GET", f"{CMS}?watch=true&{query}")
        self._response = self._conn.getresponse()
        self.events: list[dict[str, Any]] = []
        self.ended = threading.Event()
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        try:
            for line in self._response:
                self.events.append(json.loads(line))
        except (OSError, http.client.HTTPException):
            pass
        finally:
            self.ended.set()

    def types(self) -> list[str]:
        return [e["type"] for e in self.events]

    def close(self) -> None:
        self._conn.close()


@pytest.fixture
def server() -> Iterator[ApiServer]:
    with ApiServer(history=3, bookmark_interval=0.05) as running:
        yield running


def test_drop_watches_ends_every_open_stream(server: ApiServer) -> None:
    streams = [Stream(server.url, "timeoutSeconds=30") for _ in range(2)]
    eventually(lambda: assert_watchers(server, 2))

    assert server.drop_watches() == 2

    for stream in streams:
        assert stream.ended.wait(5)
        stream.close()


def assert_watchers(server: ApiServer, expected: int) -> None:
    assert server.watch_count() == expected


def test_resuming_before_the_retained_history_gets_410(server: ApiServer) -> None:
    _, _, created = call(server.url, "POST", CMS, config_map("a", n="0"))
    start = created["metadata"]["resourceVersion"]
    for n in range(1, 6):
        call(server.url, "PATCH", f"{CMS}/a", {"data": {"n": str(n)}},
             content_type="application/merge-patch+json")

    stream = Stream(server.url, f"resourceVersion={start}&timeoutSeconds=5")
    assert stream.ended.wait(5)
    stream.close()

    assert stream.types() == ["ERROR"]
    status = stream.events[0]["object"]
    assert (status["code"], status["reason"]) == (410, "Expired")
    assert status["message"].startswith("too old resource version")


def test_resuming_inside_the_history_replays_only_later_changes(server: ApiServer) -> None:
    call(server.url, "POST", CMS, config_map("a", n="0"))
    _, _, patched = call(server.url, "PATCH", f"{CMS}/a", {"data": {"n": "1"}},
                         content_type="application/merge-patch+json")
    call(server.url, "PATCH", f"{CMS}/a", {"data": {"n": "2"}},
         content_type="application/merge-patch+json")

    stream = Stream(server.url, f"resourceVersion={patched['metadata']['resourceVersion']}&timeoutSeconds=1")
    assert stream.ended.wait(5)
    stream.close()

    assert [(e["type"], e["object"]["data"]["n"]) for e in stream.events] == [("MODIFIED", "2")]


def test_bookmarks_arrive_on_the_configured_interval_with_the_current_version(server: ApiServer) -> None:
    stream = Stream(server.url, "allowWatchBookmarks=true&timeoutSeconds=5")
    eventually(lambda: _assert_bookmark(stream))
    _, _, created = call(server.url, "POST", CMS, config_map("b"))

    def bookmark_after_write() -> None:
        versions = [int(e["object"]["metadata"]["resourceVersion"]) for e in stream.events
                    if e["type"] == "BOOKMARK"]
        assert versions and versions[-1] >= int(created["metadata"]["resourceVersion"])

    eventually(bookmark_after_write)
    server.drop_watches()
    assert stream.ended.wait(5)
    stream.close()


def _assert_bookmark(stream: Stream) -> None:
    assert "BOOKMARK" in stream.types()


def test_stopping_the_server_ends_open_watches() -> None:
    server = ApiServer().start()
    stream = Stream(server.url, "timeoutSeconds=60")
    eventually(lambda: assert_watchers(server, 1))

    server.stop()

    assert stream.ended.wait(5)
    stream.close()
