"""A server URL with a path prefix, end to end: the API is served only under
``/k8s/clusters/c-x`` (as behind Rancher's proxy), by the loopback API
itself, and by a proxy in front of the session's API (loopback or
kube-apiserver); the real controller converges the PoC samples through it,
reads, writes and watches alike. Before issue 24's fix every call but the
watches lost the prefix."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from kubernetes import config

from disvc.controller.manager import Manager
from disvc.controller.options import BindAddress, Options
from disvc.testing.api_proxy import ApiProxy
from disvc.testing.apiserver import ApiServer
from disvc.testing.crds import install_crds
from disvc.testing.fixtures import KubeEnv, eventually
from disvc.testing.kserve_stub import KServeStub
from disvc.testing.rawapi import request_json

from .harness import POC1, STARTUP_TIMEOUT, Cluster, StartController, condition

PREFIX = "/k8s/clusters/c-x"
NAMESPACE = "prefixed"


@pytest.fixture
def prefixed_server(tmp_path: Path) -> Iterator[tuple[ApiServer, str]]:
    server = ApiServer(path_prefix=PREFIX).start()
    try:
        yield server, server.write_kubeconfig(str(tmp_path / "kubeconfig"))
    finally:
        server.stop()


def test_the_controller_converges_through_a_path_prefix(prefixed_server: tuple[ApiServer, str]) -> None:
    server, kubeconfig = prefixed_server
    api_client = config.new_client_from_config(config_file=kubeconfig)  # type: ignore[no-untyped-call]
    install_crds(api_client)
    request_json(api_client, "POST", "/api/v1/namespaces", body={"metadata": {"name": NAMESPACE}})
    manager = Manager(Options(
        kubeconfig=kubeconfig, namespace=NAMESPACE, workers=1, resync_period=0.0,
        metrics_bind_address=BindAddress("127.0.0.1", 0), health_probe_bind_address=BindAddress("127.0.0.1", 0),
    ))  # fmt: skip
    stop = threading.Event()
    thread = threading.Thread(target=manager.run, args=(stop,), daemon=True)
    thread.start()
    try:
        assert manager.wait_until_ready(STARTUP_TIMEOUT), "caches never synced"
        disvc = yaml.safe_load(POC1.read_text())
        disvc["metadata"]["namespace"] = NAMESPACE
        request_json(
            api_client, "POST",
            f"/apis/serving.kserve.io/v1alpha1/namespaces/{NAMESPACE}/distributedinferenceservices", body=disvc,
        )  # fmt: skip
        name = disvc["metadata"]["name"]

        def children_exist() -> None:
            isvcs = request_json(
                api_client, "GET", f"/apis/serving.kserve.io/v1beta1/namespaces/{NAMESPACE}/inferenceservices"
            )
            assert [i["metadata"]["name"] for i in isvcs["items"]] == [f"{name}-v1-0"]
            ingresses = request_json(api_client, "GET", f"/apis/networking.k8s.io/v1/namespaces/{NAMESPACE}/ingresses")
            assert [i["metadata"]["name"] for i in ingresses["items"]] == [name]

        eventually(children_exist, timeout=30)
        controller_requests = [r for r in server.requests if r.user_agent.startswith("disvc-controller")]
        assert controller_requests and all(r.code < 400 for r in controller_requests if r.verb != "get")
    finally:
        stop.set()
        thread.join(30)
        api_client.close()  # type: ignore[no-untyped-call]


POC_SAMPLES = (POC1, POC1.with_name("serving_v1alpha1_distributedinferenceservice_grpc.yaml"))


def test_the_poc_samples_converge_through_a_path_prefixing_proxy(
    kube: KubeEnv, tmp_path: Path, start_controller: StartController, cluster: Cluster, kserve: KServeStub
) -> None:
    with ApiProxy(kube.kubeconfig, tmp_path, path_prefix=PREFIX) as proxy:
        controller = start_controller(kubeconfig=proxy.kubeconfig)
        names = []
        for sample in POC_SAMPLES:
            names += [doc["metadata"]["name"] for doc in kube.apply_yaml(sample)]

        def ready() -> None:
            for name in names:
                disvc = cluster.disvc(name)
                assert (condition(disvc, "Ready") or {}).get("status") == "True", disvc.get("status")
            assert set(cluster.isvcs()) == {f"{name}-v1-0" for name in names}

        eventually(ready, timeout=60)
        assert proxy.strays == [], "the controller sent requests outside the server URL's path"
        assert proxy.forwarded > 0
        assert controller.metric_sum("disvc_api_requests_total", code="404") == 0
