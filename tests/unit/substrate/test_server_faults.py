"""Fault injection: make chosen requests fail the ways a real API can."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from kubernetes import client, watch
from kubernetes.client.exceptions import ApiException
from substrate_http import call, config_map

from disvc.testing.apiserver import ApiServer, FaultRule

CMS = "/api/v1/namespaces/default/configmaps"


@pytest.fixture
def server() -> Iterator[ApiServer]:
    with ApiServer() as running:
        call(running.url, "POST", CMS, config_map("a", k="v"))
        yield running


def test_a_counted_fault_fails_that_many_matching_requests_then_stops(server: ApiServer) -> None:
    rule = server.add_fault(FaultRule(verb="get", resource="configmaps", count=2, code=500))

    codes = [call(server.url, "GET", f"{CMS}/a")[0] for _ in range(3)]

    assert codes == [500, 500, 200]
    assert rule.hits == 2


def test_internal_error_is_a_kubernetes_status(server: ApiServer) -> None:
    server.add_fault(FaultRule(verb="get", code=500, message="etcd is sad"))

    code, _, body = call(server.url, "GET", f"{CMS}/a")

    assert (code, body["kind"], body["reason"]) == (500, "Status", "InternalError")
    assert body["message"] == "Internal error occurred: etcd is sad"


def test_too_many_requests_carries_retry_after_in_header_and_details(server: ApiServer) -> None:
    server.add_fault(FaultRule(verb="patch", resource="configmaps", code=429, retry_after=7))

    code, headers, body = call(server.url, "PATCH", f"{CMS}/a", {"data": {"k": "w"}},
                               content_type="application/merge-patch+json")

    assert (code, body["reason"]) == (429, "TooManyRequests")
    assert headers["Retry-After"] == "7"
    assert body["details"]["retryAfterSeconds"] == 7


def test_faults_match_only_their_verb_resource_namespace_and_name(server: ApiServer) -> None:
    server.add_fault(FaultRule(verb="get", resource="configmaps", namespace="default", name="other", count=None, code=409))

    assert call(server.url, "GET", f"{CMS}/a")[0] == 200
    assert call(server.url, "GET", CMS)[0] == 200
    assert call(server.url, "GET", f"{CMS}/other")[0] == 409
    assert call(server.url, "GET", f"{CMS}/other")[0] == 409


def test_unlimited_fault_lasts_until_cleared(server: ApiServer) -> None:
    server.add_fault(FaultRule(verb="list", count=None, code=503))
    assert [call(server.url, "GET", CMS)[0] for _ in range(3)] == [503, 503, 503]

    server.clear_faults()

    assert call(server.url, "GET", CMS)[0] == 200


def test_a_delay_only_fault_still_answers(server: ApiServer) -> None:
    rule = server.add_fault(FaultRule(verb="get", code=None, delay=0.05))

    code, _, body = call(server.url, "GET", f"{CMS}/a")

    assert (code, body["data"]) == (200, {"k": "v"})
    assert rule.hits == 1


def test_failed_writes_change_nothing(server: ApiServer) -> None:
    server.add_fault(FaultRule(verb="delete", code=500))

    assert call(server.url, "DELETE", f"{CMS}/a")[0] == 500
    assert call(server.url, "GET", f"{CMS}/a")[0] == 200


def test_watch_fault_410_arrives_as_an_error_event_the_client_raises(server: ApiServer) -> None:
    server.add_fault(FaultRule(verb="watch", resource="configmaps", code=410))
    configuration = client.Configuration()
    configuration.host = server.url
    core = client.CoreV1Api(client.ApiClient(configuration))

    with pytest.raises(ApiException) as caught:
        for _ in watch.Watch().stream(core.list_namespaced_config_map, "default",
                                      resource_version="1", timeout_seconds=5):
            pass

    assert caught.value.status == 410


def test_injected_conflict_looks_like_a_status(server: ApiServer) -> None:
    server.add_fault(FaultRule(verb="update", code=409, message="injected conflict"))

    code, _, body = call(server.url, "PUT", f"{CMS}/a", config_map("a"))

    assert code == 409
    assert json.dumps(body["reason"]) == '"Conflict"'
