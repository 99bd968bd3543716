"""What only the loopback API server offers: request accounting and faults.

Integration tests assert "a converged resync makes no writes" by counting
requests, and drive the controller's error paths by spoiling requests on
purpose. These tests check that instrument itself, still talking through
the plain client, so a miscount or a fault that does not fire cannot make a
controller test pass for the wrong reason.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest
from kubernetes import client, watch
from kubernetes.client.exceptions import ApiException

from disvc.testing.apiserver import ApiServer, FaultRule
from disvc.testing.fixtures import KubeEnv, eventually, status_of

from .objects import config_map

pytestmark = pytest.mark.substrate_only


@pytest.fixture
def server(kube: KubeEnv) -> ApiServer:
    assert kube.server is not None
    return kube.server


@pytest.fixture
def agent(kube: KubeEnv) -> Iterator[client.CoreV1Api]:
    """A CoreV1Api whose requests carry user agent ``conformance-agent/1.0``."""
    api_client = client.ApiClient(configuration=kube.api_client.configuration)
    api_client.user_agent = "conformance-agent/1.0"
    yield client.CoreV1Api(api_client)
    api_client.close()


# --- accounting ------------------------------------------------------------------


def test_requests_are_counted_by_verb_and_resource(kube: KubeEnv, server: ApiServer, agent: client.CoreV1Api) -> None:
    agent.create_namespaced_config_map(kube.namespace, config_map("a"))
    agent.create_namespaced_config_map(kube.namespace, config_map("b"))
    agent.read_namespaced_config_map("a", kube.namespace)
    agent.list_namespaced_config_map(kube.namespace)
    agent.list_namespaced_service(kube.namespace)
    assert server.request_count(verb="create", resource="configmaps") == 2
    assert server.request_count(verb="get", resource="configmaps") == 1
    assert server.request_count(verb="list", resource="configmaps") == 1
    assert server.request_count(verb="list") == 2
    assert server.request_count(resource="configmaps", user_agent="conformance-agent") == 4


def test_requests_are_told_apart_by_user_agent(kube: KubeEnv, server: ApiServer, agent: client.CoreV1Api) -> None:
    agent.create_namespaced_config_map(kube.namespace, config_map("a"))
    kube.core.read_namespaced_config_map("a", kube.namespace)
    assert server.request_count(user_agent="conformance-agent") == 1
    assert server.request_count(verb="get", user_agent="conformance-agent") == 0


def test_write_count_counts_only_state_changing_verbs(
    kube: KubeEnv, server: ApiServer, agent: client.CoreV1Api
) -> None:
    agent.create_namespaced_config_map(kube.namespace, config_map("a"))
    agent.patch_namespaced_config_map(
        "a", kube.namespace, {"data": {"k": "2"}}, _content_type="application/merge-patch+json"
    )
    live = agent.read_namespaced_config_map("a", kube.namespace)
    agent.replace_namespaced_config_map("a", kube.namespace, live)
    agent.list_namespaced_config_map(kube.namespace)
    agent.delete_namespaced_config_map("a", kube.namespace)
    assert server.write_count(user_agent="conformance-agent") == 4


def test_request_records_describe_each_request(kube: KubeEnv, server: ApiServer, agent: client.CoreV1Api) -> None:
    with pytest.raises(ApiException):
        agent.read_namespaced_config_map("missing", kube.namespace)
    [record] = [r for r in server.requests if r.user_agent.startswith("conformance-agent")]
    assert (record.verb, record.group, record.version, record.resource) == ("get", "", "v1", "configmaps")
    assert (record.namespace, record.name, record.subresource) == (kube.namespace, "missing", "")
    assert record.code == 404


def test_subresource_requests_are_recorded_as_such(kube: KubeEnv, server: ApiServer) -> None:
    from .objects import ISVC_VERSION, ISVCS, KSERVE, isvc

    kube.custom.create_namespaced_custom_object(KSERVE, ISVC_VERSION, kube.namespace, ISVCS, isvc("m"))
    kube.custom.patch_namespaced_custom_object_status(
        KSERVE, ISVC_VERSION, kube.namespace, ISVCS, "m", {"status": {"url": "http://m"}},
        _content_type="application/merge-patch+json",
    )  # fmt: skip
    assert server.request_count(verb="patch", resource="inferenceservices/status") == 1
    assert server.request_count(verb="patch", resource="inferenceservices") == 0
    status_write = next(r for r in server.requests if r.subresource == "status")
    assert status_write.group == KSERVE


def test_reset_requests_starts_the_count_afresh(kube: KubeEnv, server: ApiServer) -> None:
    kube.core.create_namespaced_config_map(kube.namespace, config_map("a"))
    server.reset_requests()
    assert server.requests == []
    kube.core.read_namespaced_config_map("a", kube.namespace)
    assert server.request_count() == 1


def test_the_kube_fixture_hands_over_an_empty_request_log(server: ApiServer) -> None:
    assert server.request_count(verb="create", resource="namespaces") == 0


# --- faults ------------------------------------------------------------------------


def test_fault_500_fails_the_matching_request_once(kube: KubeEnv, server: ApiServer) -> None:
    rule = server.add_fault(FaultRule(verb="create", resource="configmaps", count=1, code=500))
    with pytest.raises(ApiException) as caught:
        kube.core.create_namespaced_config_map(kube.namespace, config_map("a"))
    assert caught.value.status == 500
    assert status_of(caught.value)["kind"] == "Status"
    with pytest.raises(ApiException) as missing:  # the failed create stored nothing
        kube.core.read_namespaced_config_map("a", kube.namespace)
    assert missing.value.status == 404
    kube.core.create_namespaced_config_map(kube.namespace, config_map("a"))
    assert rule.hits == 1


def test_fault_leaves_other_verbs_and_resources_alone(kube: KubeEnv, server: ApiServer) -> None:
    server.add_fault(FaultRule(verb="patch", resource="services", count=None, code=500))
    kube.core.create_namespaced_config_map(kube.namespace, config_map("a"))
    kube.core.patch_namespaced_config_map(
        "a", kube.namespace, {"data": {"k": "2"}}, _content_type="application/merge-patch+json"
    )
    kube.core.list_namespaced_service(kube.namespace)


def test_fault_429_carries_retry_after(kube: KubeEnv, server: ApiServer) -> None:
    # On a create: urllib3 itself waits out Retry-After and retries a GET.
    server.add_fault(FaultRule(verb="create", resource="configmaps", code=429, retry_after=3))
    with pytest.raises(ApiException) as caught:
        kube.core.create_namespaced_config_map(kube.namespace, config_map("a"))
    assert caught.value.status == 429
    assert caught.value.headers["Retry-After"] == "3"
    assert status_of(caught.value)["reason"] == "TooManyRequests"


def test_fault_409_looks_like_a_conflict(kube: KubeEnv, server: ApiServer) -> None:
    kube.core.create_namespaced_config_map(kube.namespace, config_map("a"))
    server.add_fault(FaultRule(verb="update", resource="configmaps", code=409))
    live = kube.core.read_namespaced_config_map("a", kube.namespace)
    with pytest.raises(ApiException) as caught:
        kube.core.replace_namespaced_config_map("a", kube.namespace, live)
    assert caught.value.status == 409
    assert status_of(caught.value)["reason"] == "Conflict"


def test_fault_on_one_name_spares_its_neighbours(kube: KubeEnv, server: ApiServer) -> None:
    server.add_fault(FaultRule(verb="get", resource="configmaps", name="bad", count=None, code=503))
    kube.core.create_namespaced_config_map(kube.namespace, config_map("bad"))
    kube.core.create_namespaced_config_map(kube.namespace, config_map("good"))
    kube.core.read_namespaced_config_map("good", kube.namespace)
    with pytest.raises(ApiException) as caught:
        kube.core.read_namespaced_config_map("bad", kube.namespace)
    assert caught.value.status == 503


def test_fault_without_a_count_lasts_until_cleared(kube: KubeEnv, server: ApiServer) -> None:
    server.add_fault(FaultRule(verb="list", resource="configmaps", count=None, code=500))
    for _ in range(3):
        with pytest.raises(ApiException):
            kube.core.list_namespaced_config_map(kube.namespace)
    server.clear_faults()
    kube.core.list_namespaced_config_map(kube.namespace)


def test_fault_410_on_a_watch_arrives_as_an_expired_error_event(kube: KubeEnv, server: ApiServer) -> None:
    server.add_fault(FaultRule(verb="watch", resource="configmaps", code=410))
    version = kube.core.list_namespaced_config_map(kube.namespace).metadata.resource_version
    with pytest.raises(ApiException) as caught:
        for _ in watch.Watch().stream(
            kube.core.list_namespaced_config_map, kube.namespace,
            resource_version=version, timeout_seconds=5,
        ):  # fmt: skip
            pass
    assert caught.value.status == 410


def test_fault_delay_stalls_then_answers(kube: KubeEnv, server: ApiServer) -> None:
    rule = server.add_fault(FaultRule(verb="list", resource="configmaps", code=None, delay=0.2))
    started = time.monotonic()
    kube.core.list_namespaced_config_map(kube.namespace)
    assert time.monotonic() - started >= 0.2  # a lower bound: never flaky
    assert rule.hits == 1


# --- watches ---------------------------------------------------------------------


def test_drop_watches_ends_open_watch_streams(kube: KubeEnv, server: ApiServer) -> None:
    version = kube.core.list_namespaced_config_map(kube.namespace).metadata.resource_version
    seen: list[str] = []
    ended = threading.Event()

    def follow() -> None:
        for event in watch.Watch().stream(
            kube.core.list_namespaced_config_map, kube.namespace,
            resource_version=version, timeout_seconds=60,
        ):  # fmt: skip
            seen.append(event["object"].metadata.name)
        ended.set()

    follower = threading.Thread(target=follow, daemon=True)
    follower.start()
    kube.core.create_namespaced_config_map(kube.namespace, config_map("before-drop"))

    def delivered() -> None:
        assert seen == ["before-drop"]

    eventually(delivered)
    assert server.drop_watches() >= 1

    def stream_ended() -> None:
        assert ended.is_set()

    eventually(stream_ended)
    follower.join(1)
