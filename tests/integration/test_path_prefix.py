"""A server URL with a path prefix, end to end: the loopback API serves only
under ``/k8s/clusters/c-x`` (as behind Rancher's proxy) and the real
controller converges the PoC sample through it, reads, writes and watches
alike. Before issue 24's fix every call but the watches lost the prefix."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from kubernetes import config

from disvc.controller.manager import Manager
from disvc.controller.options import BindAddress, Options
from disvc.testing.apiserver import ApiServer
from disvc.testing.crds import install_crds
from disvc.testing.fixtures import eventually
from disvc.testing.rawapi import request_json

from .harness import POC1, STARTUP_TIMEOUT

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
