"""The benchmark's workload: N DISVCs and the objects the controller makes for them.

Both sides of every comparison must create exactly the same objects, so the
DISVC manifests and their children come from one place. Children are built
with the controller's own builders (``disvc.builders.desired``), the single
entry point ``disvc render`` uses too: same names, same bodies, same
``applied-hash`` annotation, so a controller that finds them already there
has nothing to write.
"""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

REPO_ROOT: Final = Path(__file__).resolve().parents[2]
if str(REPO_ROOT) not in sys.path:  # run as `python hack/bench/<name>.py` from anywhere
    sys.path.insert(0, str(REPO_ROOT))

from disvc.builders import desired, history, names
from disvc.builders.types import DISVC_API_VERSION, DISVC_KIND

Obj = dict[str, Any]

NAMESPACE: Final = "bench"
GROUP: Final = "serving.kserve.io"
DISVC_VERSION: Final = "v1alpha1"
DISVC_PLURAL: Final = "distributedinferenceservices"
ISVC_VERSION: Final = "v1beta1"
ISVC_PLURAL: Final = "inferenceservices"
FIRST_GENERATION: Final = 1
"""A freshly created DISVC serves generation ``v1``."""


def disvc_name(index: int) -> str:
    return f"bench-{index:04d}"


def disvc_manifest(index: int, replicas: int, namespace: str = NAMESPACE) -> Obj:
    """A DISVC shaped like the seed's REST PoC (sklearn, v2 protocol, RawDeployment)."""
    return {
        "apiVersion": DISVC_API_VERSION,
        "kind": DISVC_KIND,
        "metadata": {
            "name": disvc_name(index),
            "namespace": namespace,
            "annotations": {
                "serving.kserve.io/autoscalerClass": "none",
                "serving.kserve.io/deploymentMode": "RawDeployment",
            },
        },
        "spec": {
            "replicas": replicas,
            "inferenceService": {
                "predictor": {
                    "model": {
                        "modelFormat": {"name": "sklearn"},
                        "protocolVersion": "v2",
                        "runtime": "kserve-sklearnserver",
                        "storageUri": "gs://kfserving-examples/models/sklearn/1.0/model",
                    }
                }
            },
        },
    }


def children(created_disvc: Obj) -> list[Obj]:
    """The R+3 children of a DISVC as the API returned it on create (its uid
    goes into the ownerReferences), in the controller's creation order."""
    return desired.children(created_disvc, FIRST_GENERATION, desired.BuildOptions())


def revisions(created_disvc: Obj, live_children: list[Obj]) -> list[Obj]:
    """The ControllerRevision the controller writes once its children exist:
    generation v1 serves, and its template is kept there."""
    built = desired.state(created_disvc, live_children, desired.BuildOptions(now=_now()))
    return [obj for obj in built.plan.create if obj["kind"] == "ControllerRevision"]


def converged_status(created_disvc: Obj, live_children: list[Obj]) -> Obj:
    """The status the controller computes for ``created_disvc`` once its
    children exist (no ISVC Ready: nothing plays KServe in the benchmark)."""
    return desired.state(created_disvc, live_children, desired.BuildOptions(now=_now())).status


def child_names(name: str, replicas: int) -> list[tuple[str, str]]:
    """(kind, name) of every child of DISVC ``name`` at generation v1."""
    kinds = [("InferenceService", names.isvc_name(name, FIRST_GENERATION, i)) for i in range(replicas)]
    return [
        *kinds,
        ("Service", names.generation_name(name, FIRST_GENERATION)),
        ("Service", names.top_service_name(name)),
        ("Ingress", names.ingress_name(name)),
        ("ControllerRevision", history.revision_name(name, 1)),
    ]


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
