"""Each generation's template is kept where Kubernetes keeps revisions.

One ``apps/v1`` ControllerRevision per generation that served, owned by the
DISVC, read back with kubectl; ``status.history`` keeps the generation, its
hash and its times only, so a big template can roll out again and again
without the DISVC outgrowing what etcd takes (1.5 MiB an object: on the
loopback API as on a real kube-apiserver). Real controller, both backends.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from disvc.testing.fixtures import KubeEnv, eventually
from disvc.testing.kserve_stub import KServeStub

from .harness import Cluster, RunningController, condition, disvc_manifest

NAME = "model"
REPO = Path(__file__).resolve().parents[2]
SAMPLE = REPO / "config" / "samples" / "serving_v1alpha1_distributedinferenceservice_canary.yaml"
TEMPLATE = yaml.safe_load(SAMPLE.read_text())["spec"]["inferenceService"]
KUBECTL = shutil.which("kubectl")
TIMEOUT = 60.0
HISTORY_FIELDS = {"generation", "templateHash", "servedFrom", "servedUntil"}
Obj = dict[str, Any]

pytestmark = pytest.mark.skipif(KUBECTL is None, reason="kubectl is not on PATH")


def apply(kube: KubeEnv, version: str, template: Obj = TEMPLATE) -> None:
    kube.apply_yaml(yaml.safe_dump(disvc_manifest(NAME, template, 1, version)))


def serving(cluster: Cluster, version: str) -> Obj:
    disvc = cluster.disvc(NAME)
    assert (condition(disvc, "Progressing") or {}).get("reason") == "Converged", disvc.get("status")
    assert (disvc.get("status") or {}).get("activeGeneration") == version, disvc.get("status")
    return disvc


def two_generations_served(kube: KubeEnv, cluster: Cluster) -> Obj:
    """v1 served, then v2 rolled out and serving: the DISVC as it is then."""
    apply(kube, "v1")
    eventually(lambda: serving(cluster, "v1"), TIMEOUT)
    apply(kube, "v2")
    disvc: Obj = eventually(lambda: serving(cluster, "v2"), TIMEOUT)
    return disvc


def kubectl_revisions(kube: KubeEnv) -> dict[str, Obj]:
    listed = subprocess.run(
        [str(KUBECTL), "get", "controllerrevisions", "-l", f"disvc={NAME}", "-n", kube.namespace,
         "--kubeconfig", kube.kubeconfig, "-o", "json"],
        capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    return {item["metadata"]["name"]: item for item in json.loads(listed.stdout)["items"]}


def padded(kib: int) -> Obj:
    """The sample's template with ``kib`` KiB of environment in its predictor."""
    template = json.loads(json.dumps(TEMPLATE))
    chunk = 100 * 1024
    template["predictor"]["model"]["env"] = [
        {"name": f"PAD_{i}", "value": "x" * chunk} for i in range(kib * 1024 // chunk)
    ]
    return template


def test_each_generation_that_served_keeps_its_template_in_a_controller_revision(
    kube: KubeEnv, controller: RunningController, kserve: KServeStub, cluster: Cluster
) -> None:
    disvc = two_generations_served(kube, cluster)

    revisions = eventually(lambda: _exactly(kubectl_revisions(kube), {f"{NAME}-revision-v1", f"{NAME}-revision-v2"}),
                           TIMEOUT)
    for version, number in (("v1", 1), ("v2", 2)):
        revision = revisions[f"{NAME}-revision-{version}"]
        assert revision["revision"] == number
        [owner] = revision["metadata"]["ownerReferences"]
        assert (owner["kind"], owner["uid"], owner["controller"]) == (
            "DistributedInferenceService", disvc["metadata"]["uid"], True,
        )  # fmt: skip
        assert revision["data"]["annotations"] == {"version": version}
        assert revision["data"]["inferenceService"] == TEMPLATE
    history = disvc["status"]["history"]
    assert [entry["generation"] for entry in history] == ["v1", "v2"]
    assert all(set(entry) <= HISTORY_FIELDS for entry in history), history


def test_a_template_of_300_kib_rolls_out_again_and_again(
    kube: KubeEnv, controller: RunningController, kserve: KServeStub, cluster: Cluster
) -> None:
    """Five kept templates of 300 KiB in the status would be 1.5 MiB: from the
    fourth rollout on, every status write would fail and nothing would settle."""
    big = padded(300)
    versions = [f"v{g}" for g in range(1, 8)]
    for version in versions:
        apply(kube, version, big)
        eventually(lambda version=version: serving(cluster, version), TIMEOUT)
    disvc = cluster.disvc(NAME)
    assert len(json.dumps(disvc["status"])) < 16 * 1024
    kept = eventually(
        lambda: _exactly(kubectl_revisions(kube), {f"{NAME}-revision-{v}" for v in versions[-5:]}), TIMEOUT
    )
    assert kept[f"{NAME}-revision-v7"]["data"]["inferenceService"] == big
    assert [entry["generation"] for entry in disvc["status"]["history"]] == versions[-5:]


def _exactly(revisions: dict[str, Obj], names: set[str]) -> dict[str, Obj]:
    assert set(revisions) == names, sorted(revisions)
    return revisions


def test_the_readmes_offline_rollback_pipe_restores_a_template_from_its_revision(
    kube: KubeEnv, controller: RunningController, kserve: KServeStub, cluster: Cluster
) -> None:
    two_generations_served(kube, cluster)
    kubectl = f"{KUBECTL} -n {kube.namespace} --kubeconfig {kube.kubeconfig}"
    pipe = (
        f"{{ {kubectl} get disvc {NAME} -o yaml; echo ---; {kubectl} get controllerrevisions -l disvc={NAME} -o yaml; }}"
        f" | {sys.executable} -m disvc rollback -f - | {kubectl} replace -f -"
    )
    done = subprocess.run(["bash", "-c", "set -o pipefail; " + pipe], capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    eventually(lambda: serving(cluster, "v3"), TIMEOUT)
    assert cluster.disvc(NAME)["spec"]["annotations"] == {"version": "v1"}
