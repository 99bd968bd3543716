"""Starting, stopping and reaching the substrate; the controllers it stands
in for (garbage collector, namespace lifecycle, IP allocation)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from kubernetes import client, config
from substrate_http import call, config_map

from disvc.testing.apiserver import ApiServer
from disvc.testing.fixtures import eventually

CMS = "/api/v1/namespaces/default/configmaps"
REPO = Path(__file__).resolve().parents[3]


@pytest.fixture
def server() -> Iterator[ApiServer]:
    with ApiServer() as running:
        yield running


def test_many_servers_run_side_by_side_with_separate_state() -> None:
    with ApiServer() as first, ApiServer() as second:
        call(first.url, "POST", CMS, config_map("only-in-first"))

        assert first.url != second.url
        assert call(first.url, "GET", f"{CMS}/only-in-first")[0] == 200
        assert call(second.url, "GET", f"{CMS}/only-in-first")[0] == 404


def test_the_written_kubeconfig_works_with_the_official_client(server: ApiServer, tmp_path: Path) -> None:
    path = server.write_kubeconfig(str(tmp_path / "kubeconfig"))
    api_client = config.new_client_from_config(config_file=path)

    names = [ns.metadata.name for ns in client.CoreV1Api(api_client).list_namespace().items]

    assert "default" in names


def test_module_entry_point_prints_url_writes_kubeconfig_and_stops_on_sigterm(tmp_path: Path) -> None:
    kubeconfig = tmp_path / "kubeconfig"
    env = dict(os.environ, PYTHONPATH=str(REPO))
    process = subprocess.Popen(
        [sys.executable, "-m", "disvc.testing.apiserver", "--port", "0", "--kubeconfig-out", str(kubeconfig)],
        stdout=subprocess.PIPE, text=True, env=env,
    )
    try:
        assert process.stdout is not None
        url = process.stdout.readline().strip()
        assert url.startswith("http://127.0.0.1:")
        assert call(url, "GET", "/version")[0] == 200
        assert url in kubeconfig.read_text()
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=10) == 0


def test_deleting_an_owner_garbage_collects_its_dependents(server: ApiServer) -> None:
    _, _, owner = call(server.url, "POST", CMS, config_map("owner"))
    ref = {"apiVersion": "v1", "kind": "ConfigMap", "name": "owner", "uid": owner["metadata"]["uid"], "controller": True}
    child = config_map("child")
    child["metadata"]["ownerReferences"] = [ref]
    call(server.url, "POST", CMS, child)
    call(server.url, "POST", CMS, config_map("bystander"))

    call(server.url, "DELETE", f"{CMS}/owner")

    eventually(lambda: _assert_code(server.url, f"{CMS}/child", 404))
    assert call(server.url, "GET", f"{CMS}/bystander")[0] == 200


def test_orphan_propagation_keeps_dependents(server: ApiServer) -> None:
    _, _, owner = call(server.url, "POST", CMS, config_map("owner"))
    child = config_map("child")
    child["metadata"]["ownerReferences"] = [
        {"apiVersion": "v1", "kind": "ConfigMap", "name": "owner", "uid": owner["metadata"]["uid"]}
    ]
    call(server.url, "POST", CMS, child)

    call(server.url, "DELETE", f"{CMS}/owner?propagationPolicy=Orphan")
    call(server.url, "GET", "/version")  # one more loop turn after the delete

    assert call(server.url, "GET", f"{CMS}/child")[0] == 200


def _assert_code(url: str, path: str, expected: int) -> None:
    assert call(url, "GET", path)[0] == expected


def test_deleting_a_namespace_removes_its_contents(server: ApiServer) -> None:
    call(server.url, "POST", "/api/v1/namespaces", {"metadata": {"name": "doomed"}})
    call(server.url, "POST", "/api/v1/namespaces/doomed/configmaps", config_map("x"))

    call(server.url, "DELETE", "/api/v1/namespaces/doomed")

    assert call(server.url, "GET", "/api/v1/namespaces/doomed/configmaps/x")[0] == 404
    assert call(server.url, "GET", "/api/v1/namespaces/doomed")[0] == 404
    code, _, body = call(server.url, "POST", "/api/v1/namespaces/doomed/configmaps", config_map("y"))
    assert (code, body["message"]) == (404, 'namespaces "doomed" not found')


def test_a_namespace_waits_for_finalized_contents_and_refuses_new_ones(server: ApiServer) -> None:
    call(server.url, "POST", "/api/v1/namespaces", {"metadata": {"name": "slow"}})
    held = config_map("held")
    held["metadata"]["finalizers"] = ["example.com/hold"]
    call(server.url, "POST", "/api/v1/namespaces/slow/configmaps", held)

    call(server.url, "DELETE", "/api/v1/namespaces/slow")

    _, _, ns = call(server.url, "GET", "/api/v1/namespaces/slow")
    assert ns["status"]["phase"] == "Terminating"
    assert call(server.url, "POST", "/api/v1/namespaces/slow/configmaps", config_map("new"))[0] == 403
    call(server.url, "PATCH", "/api/v1/namespaces/slow/configmaps/held", {"metadata": {"finalizers": None}},
         content_type="application/merge-patch+json")
    assert call(server.url, "GET", "/api/v1/namespaces/slow")[0] == 404


def test_services_get_distinct_cluster_ips_that_survive_a_put_without_one(server: ApiServer) -> None:
    svcs = "/api/v1/namespaces/default/services"
    spec = {"ports": [{"port": 80}], "selector": {"app": "x"}}
    _, _, first = call(server.url, "POST", svcs, {"metadata": {"name": "one"}, "spec": spec})
    _, _, second = call(server.url, "POST", svcs, {"metadata": {"name": "two"}, "spec": spec})
    assert first["spec"]["clusterIP"].startswith("10.96.")
    assert first["spec"]["clusterIP"] != second["spec"]["clusterIP"]

    replaced = {"metadata": {"name": "one", "resourceVersion": first["metadata"]["resourceVersion"]},
                "spec": dict(spec, clusterIP="")}
    code, _, updated = call(server.url, "PUT", f"{svcs}/one", replaced)

    assert code == 200
    assert updated["spec"]["clusterIP"] == first["spec"]["clusterIP"]


def test_discovery_lists_a_crd_once_it_is_created(server: ApiServer) -> None:
    crd = {
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": "gadgets.example.com"},
        "spec": {"group": "example.com", "scope": "Namespaced",
                 "names": {"plural": "gadgets", "kind": "Gadget", "singular": "gadget"},
                 "versions": [{"name": "v1", "served": True, "storage": True,
                               "subresources": {"status": {}},
                               "schema": {"openAPIV3Schema": {"type": "object",
                                                              "x-kubernetes-preserve-unknown-fields": True}}}]},
    }
    assert call(server.url, "GET", "/apis/example.com/v1")[0] == 404

    call(server.url, "POST", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions", crd)

    _, _, resources = call(server.url, "GET", "/apis/example.com/v1")
    assert {r["name"] for r in resources["resources"]} == {"gadgets", "gadgets/status"}
    _, _, groups = call(server.url, "GET", "/apis")
    assert "example.com" in [g["name"] for g in groups["groups"]]
