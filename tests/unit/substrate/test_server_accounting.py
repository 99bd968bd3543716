"""Request accounting: what the integration tests use to count API calls."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from substrate_http import call, config_map

from disvc.testing.apiserver import ApiServer

CMS = "/api/v1/namespaces/default/configmaps"


@pytest.fixture
def server() -> Iterator[ApiServer]:
    with ApiServer() as running:
        yield running


def test_each_request_is_recorded_with_verb_resource_and_outcome(server: ApiServer) -> None:
    call(server.url, "POST", CMS, config_map("a"), user_agent="writer/2.0")
    call(server.url, "GET", f"{CMS}/a")
    call(server.url, "GET", f"{CMS}/missing")
    call(server.url, "GET", CMS)

    records = [(r.verb, r.resource, r.namespace, r.name, r.code) for r in server.requests]
    assert records == [
        ("create", "configmaps", "default", "", 201),
        ("get", "configmaps", "default", "a", 200),
        ("get", "configmaps", "default", "missing", 404),
        ("list", "configmaps", "default", "", 200),
    ]
    assert server.requests[0].user_agent == "writer/2.0"


def test_counts_filter_by_verb_resource_and_user_agent_prefix(server: ApiServer) -> None:
    call(server.url, "POST", CMS, config_map("a"), user_agent="controller/1")
    call(server.url, "POST", CMS, config_map("b"), user_agent="test/1")
    call(server.url, "PATCH", f"{CMS}/a", {"data": {"k": "v"}},
         content_type="application/merge-patch+json", user_agent="controller/1")
    call(server.url, "DELETE", f"{CMS}/b", user_agent="controller/1")
    call(server.url, "GET", f"{CMS}/a", user_agent="controller/1")

    assert server.request_count() == 5
    assert server.request_count(verb="create") == 2
    assert server.request_count(resource="configmaps", user_agent="controller") == 4
    assert server.write_count() == 4
    assert server.write_count(user_agent="controller") == 3
    assert server.request_count(verb="get", name="a", code=200) == 1


def test_subresources_are_counted_apart_from_their_resource_as_rbac_names_them(server: ApiServer) -> None:
    ns = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "counted"}}
    call(server.url, "POST", "/api/v1/namespaces", ns)
    call(server.url, "PUT", "/api/v1/namespaces/counted/status", ns)

    assert server.request_count(resource="namespaces") == 1
    assert server.request_count(verb="update", resource="namespaces/status") == 1


def test_reset_forgets_earlier_requests(server: ApiServer) -> None:
    call(server.url, "GET", CMS)
    server.reset_requests()
    call(server.url, "GET", "/version")

    assert server.request_count(verb="list") == 0
    assert [r.path for r in server.requests] == ["/version"]
    assert server.write_count() == 0
