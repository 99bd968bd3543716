"""The README's InvalidSpec examples get past the CRD and reach the controller.

The Troubleshooting table promises that what only the controller can check
shows up as ``Ready=False`` reason ``InvalidSpec``, naming the field; its
examples are read from the README here, applied through the API (so the
CRD's schema and CEL rules judge them first), and must end in that status.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from disvc.testing.fixtures import KubeEnv, eventually

from .harness import Cluster, RunningController, condition

REPO = Path(__file__).resolve().parents[2]
README = REPO / "README.md"
SAMPLE = REPO / "config" / "samples" / "serving_v1alpha1_distributedinferenceservice.yaml"
MAX_LABEL = 63


def invalid_spec_row() -> str:
    [row] = [line for line in README.read_text().splitlines() if line.startswith("| `Ready` | False | `InvalidSpec` |")]
    return row


def disvc(name: str, **ingress: str) -> dict[str, Any]:
    doc: dict[str, Any] = yaml.safe_load(SAMPLE.read_text())
    doc["metadata"]["name"] = name
    doc["metadata"].pop("namespace", None)
    if ingress:
        doc["spec"]["ingress"] = ingress
    return doc


def assert_invalid_spec(cluster: Cluster, name: str, field: str) -> None:
    ready = condition(cluster.disvc(name), "Ready")
    assert ready is not None
    assert (ready["status"], ready["reason"]) == ("False", "InvalidSpec"), ready
    assert field in ready["message"]
    assert not cluster.isvcs()


def test_a_host_that_is_not_a_dns_name_reaches_invalid_spec(
    kube: KubeEnv, controller: RunningController, cluster: Cluster
) -> None:
    match = re.search(r"`host: ([^`]+)`", invalid_spec_row())
    assert match, "the README's InvalidSpec row shows no host example"

    kube.apply_yaml(yaml.safe_dump(disvc("bad-host", host=match.group(1))))

    eventually(lambda: assert_invalid_spec(cluster, "bad-host", "spec.ingress.host"))


def test_a_default_host_label_over_63_characters_reaches_invalid_spec(
    kube: KubeEnv, controller: RunningController, cluster: Cluster
) -> None:
    assert "`N-NS` is over 63 characters" in invalid_spec_row()
    # a name the CRD accepts (at most 50, DNS-1035) that makes N-NS 64 long
    length = MAX_LABEL + 1 - len(f"-{kube.namespace}")
    assert length <= 50, f"namespace {kube.namespace} too short for this example"
    name = "m" * length

    kube.apply_yaml(yaml.safe_dump(disvc(name)))

    eventually(lambda: assert_invalid_spec(cluster, name, "spec.ingress.host"))
