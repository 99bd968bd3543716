"""Trust through failovers, relists and re-created objects (issue 23): each
test makes one fault happen at the wrong moment, on the loopback API and on
a real one where the fault can be made there."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import yaml

from disvc.controller import errors
from disvc.controller.client import ApiWriter
from disvc.controller.kube import Kube, load_api_client
from disvc.controller.mutation_cache import MutationCache
from disvc.controller.store import Store
from disvc.testing.fixtures import KubeEnv

from .harness import POC1, Cluster

Obj = dict[str, Any]
NAME = "sklearn-v2-iris-rest"


@pytest.fixture
def api(kube: KubeEnv) -> Iterator[Kube]:
    client = load_api_client(kube.kubeconfig)
    try:
        yield Kube(client)
    finally:
        client.close()  # type: ignore[no-untyped-call]


def create_poc1(kube: KubeEnv) -> Obj:
    doc: Obj = yaml.safe_load(POC1.read_text())
    (created,) = kube.apply_yaml(yaml.safe_dump(doc))
    return dict(created)


# -- row 9: a status worked out for one object never lands on another ----------


def test_a_status_for_a_deleted_disvc_never_lands_on_its_same_named_successor(
    kube: KubeEnv, api: Kube, cluster: Cluster
) -> None:
    old = create_poc1(kube)
    cluster.raw("DELETE", cluster.disvcs_path(NAME))
    new = create_poc1(kube)  # `kubectl replace --force`: same name, new uid
    assert new["metadata"]["uid"] != old["metadata"]["uid"]

    writer = ApiWriter(api, {"DistributedInferenceService": MutationCache(Store())})
    with pytest.raises(errors.ConflictError):
        writer.apply_status(old, {"observedGeneration": 1, "activeGeneration": "v7"})

    assert "activeGeneration" not in (cluster.disvc(NAME).get("status") or {})


def test_a_status_worked_out_from_an_older_version_is_refused(
    kube: KubeEnv, api: Kube, cluster: Cluster
) -> None:
    read = create_poc1(kube)
    cluster.merge_patch_disvc(NAME, {"spec": {"replicas": 3}})  # the user's change we have not seen

    writer = ApiWriter(api, {"DistributedInferenceService": MutationCache(Store())})
    with pytest.raises(errors.ConflictError):
        writer.apply_status(read, {"observedGeneration": 1, "replicas": 1})
    current = cluster.disvc(NAME)
    writer.apply_status(current, {"observedGeneration": 2, "replicas": 1})  # from what is there: written
    assert cluster.disvc(NAME)["status"]["observedGeneration"] == 2
