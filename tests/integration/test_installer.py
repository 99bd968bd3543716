"""``hack/build-installer.sh IMAGE``: one install file naming the image, and
nothing under ``config/`` edited; applied to a real kube-apiserver it gives
the controller Deployment with that image, the CRD and the RBAC."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from disvc.testing.fixtures import KubeEnv, selected_backend

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "hack" / "build-installer.sh"
IMAGE = "registry.example.com:5000/team/disvc-controller:0.1.0"
KUBECTL = shutil.which("kubectl")
CLUSTER_RBAC = [
    ("clusterrole", "disvc-manager-role"),
    ("clusterrole", "disvc-metrics-reader"),
    ("clusterrolebinding", "disvc-manager-rolebinding"),
]

pytestmark = pytest.mark.skipif(KUBECTL is None, reason="kubectl renders config/ (kubectl kustomize)")


def build(out: Path, *args: str) -> list[dict[str, Any]]:
    done = subprocess.run(
        [str(SCRIPT), IMAGE, "--out", str(out), *args], capture_output=True, text=True, check=False, timeout=120
    )
    assert done.returncode == 0, done.stderr
    return [doc for doc in yaml.safe_load_all(out.read_text()) if doc]


def deployment(objects: list[dict[str, Any]]) -> dict[str, Any]:
    (found,) = [obj for obj in objects if obj["kind"] == "Deployment"]
    return found


def test_the_install_file_names_the_image_and_nothing_under_config_changes(tmp_path: Path) -> None:
    before = {path: path.read_bytes() for path in (REPO / "config").rglob("*") if path.is_file()}
    objects = build(tmp_path / "install.yaml", "--ingress-domain", "models.example.org", "--ingress-class", "nginx")

    after = {path: path.read_bytes() for path in (REPO / "config").rglob("*") if path.is_file()}
    assert after == before
    container = deployment(objects)["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == IMAGE
    assert container["args"][:2] == ["--ingress-domain=models.example.org", "--ingress-class=nginx"]
    kinds = sorted(obj["kind"] for obj in objects)
    assert {"CustomResourceDefinition", "ClusterRole", "ClusterRoleBinding", "Namespace", "Deployment"} <= set(kinds)
    assert not list((REPO / "dist").glob(".build-installer.*")), "the overlay it rendered through is left behind"


def test_a_registry_port_a_digest_and_no_tag_are_read_as_a_container_engine_reads_them(tmp_path: Path) -> None:
    digest = "ghcr.io/org/disvc@sha256:" + "a" * 64
    for image, named in (
        ("localhost:5000/disvc-controller", "localhost:5000/disvc-controller:latest"),
        (digest, digest),
    ):
        done = subprocess.run(
            [str(SCRIPT), image, "--out", str(tmp_path / "i.yaml")], capture_output=True, text=True, check=False
        )
        assert done.returncode == 0, done.stderr
        objects = [doc for doc in yaml.safe_load_all((tmp_path / "i.yaml").read_text()) if doc]
        assert deployment(objects)["spec"]["template"]["spec"]["containers"][0]["image"] == named


def test_no_image_is_a_usage_error() -> None:
    done = subprocess.run([str(SCRIPT)], capture_output=True, text=True, check=False)
    assert done.returncode == 2
    assert "IMAGE is required" in done.stderr


@pytest.mark.skipif(
    selected_backend() != "kubeconfig",
    reason="applies cluster-wide objects: only against a real server (set DISVC_TEST_KUBECONFIG)",
)
def test_the_install_file_applied_to_a_real_server_gives_the_deployment_crd_and_rbac(
    kube: KubeEnv, tmp_path: Path
) -> None:
    def kubectl(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(KUBECTL), "--kubeconfig", kube.kubeconfig, *args], capture_output=True, text=True, check=False
        )

    # in the test's namespace, so nothing is left in disvc-system; the
    # cluster-wide RBAC goes afterwards unless it was there before
    existed = {ref for ref in CLUSTER_RBAC if kubectl("get", *ref).returncode == 0}
    out = tmp_path / "install.yaml"
    build(out, "--namespace", kube.namespace)
    try:
        applied = kubectl("apply", "-f", str(out))
        assert applied.returncode == 0, applied.stderr

        got = kubectl("-n", kube.namespace, "get", "deployment", "disvc-controller-manager", "-o", "json")
        assert got.returncode == 0, got.stderr
        pod = json.loads(got.stdout)["spec"]["template"]["spec"]
        assert pod["containers"][0]["image"] == IMAGE
        assert pod["serviceAccountName"] == "disvc-controller-manager"
        crd = kubectl("get", "crd", "distributedinferenceservices.serving.kserve.io", "-o", "name")
        assert crd.returncode == 0, crd.stderr
        binding = json.loads(kubectl("get", "clusterrolebinding", "disvc-manager-rolebinding", "-o", "json").stdout)
        assert binding["roleRef"]["name"] == "disvc-manager-role"
        assert binding["subjects"] == [
            {"kind": "ServiceAccount", "name": "disvc-controller-manager", "namespace": kube.namespace}
        ]
        can = kubectl(
            "auth",
            "can-i",
            "patch",
            "distributedinferenceservices.serving.kserve.io",
            "--subresource=status",
            f"--as=system:serviceaccount:{kube.namespace}:disvc-controller-manager",
            "-A",
        )
        assert can.stdout.strip() == "yes", can.stderr
        lease = kubectl(
            "auth",
            "can-i",
            "update",
            "leases.coordination.k8s.io",
            "-n",
            kube.namespace,
            f"--as=system:serviceaccount:{kube.namespace}:disvc-controller-manager",
        )
        assert lease.stdout.strip() == "yes", lease.stderr
    finally:
        for kind, name in CLUSTER_RBAC:
            if (kind, name) not in existed:
                kubectl("delete", kind, name, "--ignore-not-found")
