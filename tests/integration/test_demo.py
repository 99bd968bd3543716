"""The README's first command works, with and without a cluster.

``hack/demo.py`` is what ``hack/demo.sh`` runs once ``.venv`` exists.
Without ``--kubeconfig`` it brings its own loopback API (so that test is
``substrate_only``: on a real control plane it would test nothing that
backend selects). With ``--kubeconfig`` it borrows a cluster: the tests run
it against the session's API (the loopback one, or a real kube-apiserver
with ``KUBEBUILDER_ASSETS``) and check it leaves the cluster as it was,
and against fresh loopback servers for a missing CRD and for a controller
that is already installed.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from kubernetes import client, config

from disvc.controller.manager import Manager
from disvc.controller.options import Options
from disvc.testing.apiserver import ApiServer
from disvc.testing.crds import CRD_PATH, crds_to_install, install_crd, install_crds
from disvc.testing.fixtures import KubeEnv, request_json
from disvc.testing.kserve_stub import KServeStub
from disvc.testing.polling import eventually

from .harness import STARTUP_TIMEOUT, RunningController

REPO = Path(__file__).resolve().parents[2]
DEMO_TIMEOUT = 120.0
DEMO_NAMESPACE = re.compile(r"namespace (disvc-demo-[0-9a-f]{6}) created")
NAME = "sklearn-v2-iris-rest"
KUBECONFIG_PRINTED = re.compile(r"\(kubeconfig: (\S+)\)")
CONTROLLER_PID = re.compile(r"controller started \(pid (\d+),")
CONTROLLER_LOG = re.compile(r"controller started \(pid \d+, log: (\S+)\)")


def run_demo(*args: str) -> tuple[int, str]:
    result = subprocess.run(
        [sys.executable, "hack/demo.py", *args],
        cwd=REPO, capture_output=True, text=True, timeout=DEMO_TIMEOUT, check=False,
    )  # fmt: skip
    return result.returncode, result.stdout + result.stderr


def assert_shows_the_walk_through(output: str, ns: str) -> None:
    for expected in (
        f"InferenceService  {ns}/{NAME}-v1-0 ",
        f"Service           {ns}/{NAME} ",
        f"Service           {ns}/{NAME}-v1 ",
        f"host={NAME}-{ns}.example.com",
        "ready=True",
        f"url: http://{NAME}-{ns}.example.com\n",
        f"address:\n      url: http://{NAME}-v1.{ns}.svc.cluster.local\n",
    ):
        assert expected in output, f"{expected!r} missing from the demo's output:\n{output}"


def namespaces(api: client.ApiClient) -> dict[str, dict]:  # type: ignore[type-arg]
    items = request_json(api, "GET", "/api/v1/namespaces")["items"]
    return {ns["metadata"]["name"]: ns for ns in items}


def crd_versions(api: client.ApiClient) -> dict[str, str]:
    items = request_json(api, "GET", CRD_PATH)["items"]
    return {crd["metadata"]["name"]: crd["metadata"]["resourceVersion"] for crd in items}


def is_leader(controller: RunningController) -> None:
    elector = controller.manager.elector
    assert elector is not None and elector.is_leader()


@pytest.fixture
def loopback(tmp_path: Path) -> Iterator[tuple[ApiServer, str, client.ApiClient]]:
    """A fresh, empty loopback API: a cluster of the demo's own to judge."""
    with ApiServer() as server:
        kubeconfig = server.write_kubeconfig(str(tmp_path / "kubeconfig"))
        api = config.new_client_from_config(config_file=kubeconfig)
        yield server, kubeconfig, api
        api.close()


@pytest.mark.substrate_only
@pytest.mark.slow
def test_demo_prints_the_children_and_the_urls_of_the_sample_disvc() -> None:
    code, output = run_demo()

    assert code == 0, output
    assert_shows_the_walk_through(output, "kserve-demo")
    # it ends where the seed ends: the seed's request answered through both host names
    for host in (f"{NAME}.kserve-demo.svc.cluster.local", f"{NAME}-kserve-demo.example.com"):
        assert f"POST http://{host}/v2/models/{NAME}/infer -> 200 prediction [1, 1] from {NAME}-v1-0" in output, output
    kept = re.findall(r"client 127\.0\.0\.1\d: 5 requests to \S+ answered by (\S+)$", output, re.MULTILINE)
    assert len(kept) == 3 and all(name.startswith(f"{NAME}-v1-") for name in kept), output
    assert "controller stopped (exit code 0)" in output
    kubeconfig = Path(KUBECONFIG_PRINTED.findall(output)[0])
    assert not kubeconfig.parent.exists(), "the folder with the kubeconfig (a token) is left behind"


@pytest.mark.substrate_only
@pytest.mark.slow
def test_demo_keep_stopped_by_sigterm_stops_its_controller_and_removes_its_folder() -> None:
    demo = subprocess.Popen(
        [sys.executable, "hack/demo.py", "--keep"],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    lines: list[str] = []
    try:
        assert demo.stdout is not None
        for line in demo.stdout:
            lines.append(line)
            if "Ctrl-C stops" in line:
                break
        output = "".join(lines)
        [pid] = [int(p) for p in CONTROLLER_PID.findall(output)]
        workdir = Path(KUBECONFIG_PRINTED.findall(output)[0]).parent
        assert workdir.exists()
        # the README: the log the demo names gives the metrics address
        [log_path] = CONTROLLER_LOG.findall(output)
        [address] = [
            json.loads(line)["address"] for line in Path(log_path).read_text().splitlines()
            if '"Serving metrics"' in line
        ]
        with urllib.request.urlopen(f"http://{address}/metrics", timeout=10) as response:
            assert "controller_runtime_reconcile_total" in response.read().decode()
        demo.send_signal(signal.SIGTERM)
        rest, _ = demo.communicate(timeout=60)
    finally:
        if demo.poll() is None:
            demo.kill()
    assert "controller stopped (exit code 0)" in rest, output + rest
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)  # no orphan: the demo waited for it
    assert not workdir.exists()


@pytest.mark.slow
def test_demo_on_a_cluster_runs_in_a_namespace_of_its_own_and_removes_it(kube: KubeEnv) -> None:
    crds_before = crd_versions(kube.api_client)
    with KServeStub(kube.api_client, mode="ready").start():  # KServe's part, in every namespace
        code, output = run_demo("--kubeconfig", kube.kubeconfig, "--timeout", "60")

    assert code == 0, output
    match = DEMO_NAMESPACE.search(output)
    assert match, output
    ns = match.group(1)
    assert_shows_the_walk_through(output, ns)
    assert "controller stopped (exit code 0)" in output
    # it borrowed the cluster: no CRD touched, its namespace gone or going
    assert crd_versions(kube.api_client) == crds_before
    left = namespaces(kube.api_client).get(ns)
    assert left is None or left["metadata"].get("deletionTimestamp"), left


def test_demo_on_a_cluster_without_the_crds_installs_nothing_unless_asked(
    loopback: tuple[ApiServer, str, client.ApiClient],
) -> None:
    _, kubeconfig, api = loopback
    namespaces_before = set(namespaces(api))

    code, output = run_demo("--kubeconfig", kubeconfig, "--timeout", "1")

    assert code == 1
    assert "not installed" in output and "--install-crds" in output
    assert crd_versions(api) == {}
    assert set(namespaces(api)) == namespaces_before


@pytest.mark.slow
def test_demo_on_a_cluster_needs_only_the_disvc_and_inferenceservice_crds(
    loopback: tuple[ApiServer, str, client.ApiClient],
) -> None:
    _, kubeconfig, api = loopback
    for crd, replace in crds_to_install():
        if crd["spec"]["group"] == "serving.kserve.io":
            install_crd(api, crd, replace)
    installed = crd_versions(api)

    code, output = run_demo("--kubeconfig", kubeconfig, "--timeout", "1")

    assert code == 0, output  # no Gateway API CRD asked for
    assert "not Ready after 1s" in output
    assert crd_versions(api) == installed


@pytest.mark.slow
def test_demo_with_install_crds_installs_the_missing_ones_and_keeps_them(
    loopback: tuple[ApiServer, str, client.ApiClient],
) -> None:
    _, kubeconfig, api = loopback

    code, output = run_demo("--kubeconfig", kubeconfig, "--install-crds", "--timeout", "1")

    assert code == 0, output
    assert "not Ready after 1s" in output  # no KServe here: shown as it stands
    assert {"distributedinferenceservices.serving.kserve.io", "inferenceservices.serving.kserve.io"} <= set(
        crd_versions(api)
    )
    ns = DEMO_NAMESPACE.search(output)
    assert ns and f"InferenceService  {ns.group(1)}/{NAME}-v1-0 " in output


@pytest.mark.slow
def test_demo_leaves_the_work_to_an_installed_controller_and_starts_none(
    loopback: tuple[ApiServer, str, client.ApiClient],
) -> None:
    _, kubeconfig, api = loopback
    install_crds(api)
    request_json(api, "POST", "/api/v1/namespaces", body={"metadata": {"name": "disvc-system"}})
    # the installed controller, as config/manager runs it: every namespace,
    # leader election on disvc-system/disvc-controller-leader
    installed = RunningController(Manager(Options(
        kubeconfig=kubeconfig, leader_elect=True,
        leader_election_namespace="disvc-system", leader_election_id="disvc-controller-leader",
        metrics_bind_address=None, health_probe_bind_address=None, log_format="json",
    ))).start()  # fmt: skip
    try:
        assert installed.manager.wait_until_ready(STARTUP_TIMEOUT)
        eventually(lambda: is_leader(installed), timeout=STARTUP_TIMEOUT)
        with KServeStub(api, mode="ready").start():
            code, output = run_demo("--kubeconfig", kubeconfig, "--timeout", "60")
    finally:
        assert installed.stop() == 0

    assert code == 0, output
    assert "a controller is running (Lease disvc-system/disvc-controller-leader held by" in output
    assert "controller started" not in output
    match = DEMO_NAMESPACE.search(output)
    assert match, output
    assert_shows_the_walk_through(output, match.group(1))
