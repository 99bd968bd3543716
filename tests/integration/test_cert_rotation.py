"""Certificate rotation end to end: the controller keeps working when both
CAs are replaced under it, without a restart.

The API server serves a certificate from CA-1 and accepts client
certificates from CA-A; the controller runs as users run it
(``python -m disvc.controller --kubeconfig PATH``), with a kubeconfig that
names its CA, certificate and key as files. Then, as cert-manager or kubeadm
would, the API server restarts (same storage) serving a certificate from
CA-2 and accepting only CA-B, and the kubeconfig's files are rewritten in
place with CA-2 and an admin pair from CA-B. With the old files the
controller could neither verify the server nor be let in; it must pick the
new ones up and converge on a changed DISVC, as the same process.

Needs an API server this test can restart with new certificates:
kube-apiserver from ``KUBEBUILDER_ASSETS`` or the loopback API, each started
here for this test alone; skipped on ``DISVC_TEST_KUBECONFIG``'s cluster.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import pytest
import yaml
from kubernetes import client, config

from disvc.testing import envtest, fixtures, pki
from disvc.testing.crds import install_crds
from disvc.testing.fixtures import eventually, request_json
from disvc.testing.kserve_stub import KServeStub
from disvc.testing.serving_tls import ServingTls

from .harness import Cluster, condition, disvc_manifest

NAME = "model"
REPO = Path(__file__).resolve().parents[2]
SAMPLE = REPO / "config" / "samples" / "serving_v1alpha1_distributedinferenceservice_rolling.yaml"
TEMPLATE = yaml.safe_load(SAMPLE.read_text())["spec"]["inferenceService"]
ADMIN = "rotation-admin"
CONVERGE_TIMEOUT = 120.0
"""Generous: after the restart the controller retries with backoff, and
other test runs share the machine's two cores."""
Obj = dict[str, Any]

pytestmark = pytest.mark.slow


class RestartableApi(Protocol):
    """An API server this test owns: its URL, and a restart with new certificates."""

    @property
    def url(self) -> str: ...

    def restart_with(self, tls: ServingTls) -> None: ...


@dataclass
class Generation:
    """One set of certificates: a server CA and a client CA, and what they signed."""

    server_ca: pki.CertificateAuthority
    client_ca: pki.CertificateAuthority

    @classmethod
    def create(cls, tag: str) -> Generation:
        return cls(pki.CertificateAuthority.create(f"server-ca-{tag}"), pki.CertificateAuthority.create(f"client-ca-{tag}"))

    def serving_tls(self, directory: Path) -> ServingTls:
        """The API server's files, in a directory of their own."""
        directory.mkdir()
        tls = ServingTls(directory / "serving.crt", directory / "serving.key", directory / "ca.crt",
                         directory / "client-ca.crt")
        self.server_ca.serving().write(tls.cert, tls.key)
        tls.ca.write_bytes(self.server_ca.cert_pem)
        tls.client_ca.write_bytes(self.client_ca.cert_pem)
        return tls


@dataclass
class ClientFiles:
    """What the kubeconfig names: the CA to trust, the admin's certificate and key."""

    ca: Path
    cert: Path
    key: Path

    def write(self, generation: Generation) -> None:
        """Rewrite the three files in place (same inodes), CA first, as a
        rotation writes them."""
        self.ca.write_bytes(generation.server_ca.cert_pem)
        generation.client_ca.client(ADMIN, (envtest.ADMIN_GROUP,)).write(self.cert, self.key)

    def kubeconfig(self, server: str, path: Path) -> Path:
        name = "rotation"
        doc = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": name, "cluster": {"server": server, "certificate-authority": str(self.ca)}}],
            "users": [{"name": ADMIN, "user": {"client-certificate": str(self.cert), "client-key": str(self.key)}}],
            "contexts": [{"name": name, "context": {"cluster": name, "user": ADMIN}}],
            "current-context": name,
        }
        path.write_text(yaml.safe_dump(doc, sort_keys=False))
        return path


class _Envtest:
    def __init__(self, assets: str, tls: ServingTls) -> None:
        self.environment = envtest.Environment(assets, tls=tls).start()

    @property
    def url(self) -> str:
        return self.environment.url

    def restart_with(self, tls: ServingTls) -> None:
        self.environment.restart_apiserver(tls)

    def stop(self) -> None:
        self.environment.stop()


class _Loopback:
    def __init__(self, tls: ServingTls) -> None:
        from disvc.testing.apiserver import ApiServer

        self.server = ApiServer(tls=tls).start()

    @property
    def url(self) -> str:
        return self.server.url

    def restart_with(self, tls: ServingTls) -> None:
        self.server.restart(tls)

    def stop(self) -> None:
        self.server.stop()


@dataclass
class Setup:
    api: RestartableApi
    files: ClientFiles
    kubeconfig: Path
    tmp: Path


@pytest.fixture
def setup(tmp_path: Path) -> Iterator[Setup]:
    """An API server of this test's own serving CA-1's certificate to CA-A's
    clients, and a kubeconfig naming files for CA-A's admin."""
    backend = fixtures.selected_backend()
    if backend == "kubeconfig":
        pytest.skip(
            f"restarts the API server with new certificates: {fixtures.KUBECONFIG_ENV}'s cluster is not this test's; "
            f"runs with {fixtures.ASSETS_ENV} or on the loopback API"
        )
    first = Generation.create("1")
    tls = first.serving_tls(tmp_path / "server-1")
    api: _Envtest | _Loopback
    api = _Envtest(os.environ[fixtures.ASSETS_ENV], tls) if backend == "envtest" else _Loopback(tls)
    try:
        files = ClientFiles(tmp_path / "ca.crt", tmp_path / "admin.crt", tmp_path / "admin.key")
        files.write(first)
        yield Setup(api, files, files.kubeconfig(api.url, tmp_path / "kubeconfig"), tmp_path)
    finally:
        api.stop()


class Controller:
    """``python -m disvc.controller --kubeconfig PATH``, its log in a file."""

    def __init__(self, kubeconfig: Path, namespace: str, log: Path) -> None:
        self.log = log
        with log.open("wb") as out:
            self.popen = subprocess.Popen(
                [sys.executable, "-m", "disvc.controller", "--kubeconfig", str(kubeconfig), "--namespace", namespace,
                 "--metrics-bind-address", "0", "--health-probe-bind-address", "0", "--log-format", "json"],
                stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
            )  # fmt: skip

    def tail(self, lines: int = 30) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])

    def refused_by_the_new_server(self) -> None:
        """Assert: the controller failed to verify a server certificate (its
        reflectors log each failed watch with the ``ssl`` error)."""
        self.assert_running()
        assert "CERTIFICATE_VERIFY_FAILED" in self.log.read_text(errors="replace"), self.tail()

    def started(self) -> int:
        """How many times the controller loaded its settings (once per start)."""
        return self.log.read_text(errors="replace").count('"msg": "Loaded connection settings"')

    def assert_running(self) -> None:
        assert self.popen.poll() is None, f"controller exited with {self.popen.returncode}:\n{self.tail()}"

    def stop(self) -> None:
        if self.popen.poll() is None:
            self.popen.terminate()
            try:
                self.popen.wait(30)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait()


class User:
    """A kubectl user: reads the kubeconfig's files afresh for each session,
    and plays KServe (every ISVC Ready) while connected."""

    def __init__(self, kubeconfig: Path, namespace: str) -> None:
        self.api_client = config.new_client_from_config(config_file=str(kubeconfig))  # type: ignore[no-untyped-call]
        # Cluster reads only the client and the namespace of a KubeEnv.
        env = fixtures.KubeEnv(self.api_client, str(kubeconfig), namespace, None, None)  # type: ignore[arg-type]
        self.cluster = Cluster(env)
        self.kserve = KServeStub(self.api_client, mode="ready", namespace=namespace).start()

    def close(self) -> None:
        self.kserve.stop()
        self.api_client.close()


def converged(cluster: Cluster, replicas: int, controller: Controller) -> dict[str, Obj]:
    controller.assert_running()
    disvc = cluster.disvc(NAME)
    status = disvc.get("status") or {}
    assert status.get("observedGeneration") == disvc["metadata"]["generation"], status
    assert (condition(disvc, "Ready") or {}).get("status") == "True", status
    assert status.get("readyReplicas") == replicas, status
    isvcs = cluster.isvcs()
    assert len(isvcs) == replicas, sorted(isvcs)
    return isvcs


def test_controller_follows_a_rotation_of_both_cas_without_a_restart(setup: Setup) -> None:
    namespace = fixtures.namespace_name("cert-rotation")
    user = User(setup.kubeconfig, namespace)
    install_crds(user.api_client)
    client.CoreV1Api(user.api_client).create_namespace({"metadata": {"name": namespace}})
    controller = Controller(setup.kubeconfig, namespace, setup.tmp / "controller.log")
    try:
        path = user.cluster.disvcs_path(NAME)
        request_json(user.api_client, "PATCH", path, body=disvc_manifest(NAME, TEMPLATE, 2, "v1"),
                     query=[("fieldManager", "test"), ("force", "true")], content_type="application/apply-patch+yaml")
        eventually(lambda: converged(user.cluster, 2, controller), timeout=CONVERGE_TIMEOUT, interval=0.2)

        user.close()
        second = Generation.create("2")
        setup.api.restart_with(second.serving_tls(setup.tmp / "server-2"))
        # Files rewritten only once the controller was turned away with the
        # old ones: it must recover from failing, not merely reconnect.
        eventually(lambda: controller.refused_by_the_new_server(), timeout=CONVERGE_TIMEOUT, interval=0.2)
        setup.files.write(second)

        user = User(setup.kubeconfig, namespace)
        before = user.cluster.isvcs()
        deleted = min(before)
        user.cluster.merge_patch_disvc(NAME, {"spec": {"replicas": 3}})
        request_json(user.api_client, "DELETE", user.cluster.isvcs_path(deleted))

        after = eventually(lambda: converged(user.cluster, 3, controller), timeout=CONVERGE_TIMEOUT, interval=0.2)
        assert before[deleted]["metadata"]["uid"] not in {i["metadata"]["uid"] for i in after.values()}
        assert deleted in after, "the deleted child is made again"
        controller.assert_running()
        assert controller.started() == 1, "one process that never restarted its manager"
    finally:
        controller.stop()
        user.close()
