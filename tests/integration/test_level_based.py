"""Level-based: a change that takes several steps finishes on its own.

A rollout is at least two reconciles (bring up the new generation, then
switch traffic and remove the old one). The second must never depend on the
watch echoing the first one's writes back, and the status written on the
way must never claim the switch before the Ingress has been moved.
"""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from disvc.testing.fixtures import KubeEnv, eventually
from disvc.testing.kserve_stub import KServeStub

from .harness import POC1, Cluster, RunningController

Obj = dict[str, Any]
COUNT = 20


def disvc(name: str, replicas: int, version: str) -> Obj:
    doc: Obj = yaml.safe_load(POC1.read_text())
    doc["metadata"]["name"] = name
    doc["spec"]["replicas"] = replicas
    doc["spec"]["annotations"] = {"version": version}
    return doc


def routed_generation(ingress: Obj) -> str:
    [rule] = ingress["spec"]["rules"]
    [path] = rule["http"]["paths"]
    name: str = path["backend"]["service"]["name"]
    return name


def finished(cluster: Cluster, names: list[str], generation: str) -> None:
    services, ingresses = cluster.services(), cluster.ingresses()
    for name in names:
        status = cluster.disvc(name).get("status") or {}
        assert status.get("activeGeneration") == generation, (name, status)
        assert name in ingresses, name
        assert routed_generation(ingresses[name]) == f"{name}-{generation}", name
        assert not {s for s in services if s.startswith(f"{name}-v") and s != f"{name}-{generation}"}, name


@pytest.mark.parametrize("replicas", [0, 2])
def test_rollouts_finish_without_any_outside_event(
    kube: KubeEnv, controller: RunningController, cluster: Cluster, kserve: KServeStub, replicas: int
) -> None:
    names = [f"m{i:02d}" for i in range(COUNT)]
    for name in names:
        kube.apply_yaml(yaml.safe_dump(disvc(name, replicas, "v1")))
    eventually(lambda: finished(cluster, names, "v1"), timeout=60)

    for name in names:
        kube.apply_yaml(yaml.safe_dump(disvc(name, replicas, "v2")))
    eventually(lambda: finished(cluster, names, "v2"), timeout=60)
