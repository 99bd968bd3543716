"""The controller behind an API server that pushes back: a throttling proxy
(``disvc.testing.api_proxy``) answers every third request that is not
a watch ``429`` with ``Retry-After: 3``, as API Priority and Fairness does
when it cannot seat a request, and relays the rest to the session's API
(loopback or kube-apiserver). What a user sees must be what they see
without it: the DISVC converges with each child written once; and what an
operator sees must say why it was slower: the Retry-After metrics and the
log."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import structlog
import yaml

from disvc.testing.api_proxy import ApiProxy
from disvc.testing.fixtures import KubeEnv, eventually
from disvc.testing.kserve_stub import KServeStub

from .harness import POC1, Cluster, RunningController, StartController, condition

NAME = "sklearn-v2-iris-rest"
REPLICAS = 3
RETRY_AFTER = 3
CONVERGE_TIMEOUT = 180.0
"""Every refused write costs its key the full Retry-After, and the machine is shared."""

WAITS = "disvc_api_retry_after_waits_total"
WAIT_SECONDS = "disvc_api_retry_after_wait_seconds_total"
REQUESTS = "disvc_api_requests_total"

Obj = dict[str, Any]


@pytest.fixture
def proxy(kube: KubeEnv, tmp_path: Path) -> Iterator[ApiProxy]:
    with ApiProxy(kube.kubeconfig, tmp_path, throttle_every=3, retry_after=RETRY_AFTER) as running:
        yield running


def converged(cluster: Cluster) -> None:
    disvc = cluster.disvc(NAME)
    assert (condition(disvc, "Ready") or {}).get("status") == "True", disvc.get("status")
    assert (disvc.get("status") or {}).get("readyReplicas") == REPLICAS
    assert set(cluster.isvcs()) == {f"{NAME}-v1-{i}" for i in range(REPLICAS)}
    assert {NAME, f"{NAME}-v1"} <= set(cluster.services())
    assert NAME in cluster.ingresses()


def test_under_429s_on_every_third_request_the_controller_waits_as_asked_and_converges(
    proxy: ApiProxy, start_controller: StartController, kube: KubeEnv, cluster: Cluster, kserve: KServeStub
) -> None:
    doc: Obj = yaml.safe_load(POC1.read_text())
    doc["spec"]["replicas"] = REPLICAS

    with structlog.testing.capture_logs() as logs:
        controller: RunningController = start_controller(kubeconfig=proxy.kubeconfig)
        kube.apply_yaml(yaml.safe_dump(doc))  # the user's own kubectl goes straight to the API
        eventually(lambda: converged(cluster), timeout=CONVERGE_TIMEOUT)

    # The API server really pushed back, on writes among the rest.
    refused = proxy.refused
    assert refused, "the proxy refused nothing"
    assert {r.method for r in refused} & {"POST", "PATCH", "PUT"}, refused
    # Each ISVC was created once: no create lost to a 429, none sent twice
    # (a create resent after it landed would meet 409 AlreadyExists).
    assert controller.metric_sum(REQUESTS, verb="create", kind="InferenceService", code="201") == REPLICAS
    assert controller.metric_sum(REQUESTS, code="409") == 0

    def every_429_counted_and_each_wait_as_long_as_asked() -> None:
        # The controller saw each refusal (/version, never refused here, is the only request it does not count).
        assert controller.metric_sum(REQUESTS, code="429") == len(proxy.refused)
        waits = controller.metric_sum(WAITS)
        assert waits >= 1
        assert controller.metric_sum(WAIT_SECONDS) == waits * RETRY_AFTER

    eventually(every_429_counted_and_each_wait_as_long_as_asked, timeout=30)
    waited = [e for e in logs if e.get("retryAfter") == RETRY_AFTER]
    assert waited, "no log line says the controller waited as asked"
    assert {e["event"] for e in waited} <= {"Reconcile failed and will be retried", "Waiting as the API server asked"}
