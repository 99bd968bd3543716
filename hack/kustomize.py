"""Render a kustomization directory to multi-document YAML, without kustomize.

Kustomize is the way ``config/`` is meant to be applied (``kubectl apply -k``),
but neither it nor kubectl can be installed where the tests run. This renderer
understands exactly the subset of the Kustomization format our ``config/``
trees use, so tests and ``hack/verify-manifests.sh`` see the same objects
``kubectl apply -k`` would create:

- ``resources``: files (one or more YAML documents) and directories holding a
  ``kustomization.yaml``, resolved recursively, in order;
- ``namespace``: set on every namespaced object, and on the ServiceAccount
  subjects of (Cluster)RoleBindings, as kustomize's namespace transformer does;
- ``labels`` (``pairs``, ``includeSelectors``, ``includeTemplates``) and the
  older ``commonLabels`` (which always reaches selectors and templates);
- ``commonAnnotations``.

Any other field is an error rather than being silently ignored: a
kustomization that needs more than this must not render differently here than
under real kustomize.

Usage: ``python hack/kustomize.py config/default > all.yaml``.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, Final

import yaml

Obj = dict[str, Any]

KUSTOMIZATION_FILES: Final = ("kustomization.yaml", "kustomization.yml", "Kustomization")

SUPPORTED_FIELDS: Final = frozenset(
    {"apiVersion", "kind", "resources", "namespace", "labels", "commonLabels", "commonAnnotations"}
)

CLUSTER_SCOPED_KINDS: Final = frozenset(
    {
        "Namespace",
        "ClusterRole",
        "ClusterRoleBinding",
        "CustomResourceDefinition",
        "PersistentVolume",
        "StorageClass",
        "PriorityClass",
        "ValidatingWebhookConfiguration",
        "MutatingWebhookConfiguration",
        "APIService",
        "IngressClass",
    }
)
"""Kinds the namespace transformer leaves alone (no CRD of ours is cluster scoped)."""

WORKLOAD_KINDS: Final = frozenset({"Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job"})
"""Kinds with ``spec.selector.matchLabels`` and ``spec.template.metadata.labels``."""


class KustomizeError(Exception):
    """The kustomization uses something this renderer does not implement, or is malformed."""


def kustomization_file(directory: Path) -> Path:
    for name in KUSTOMIZATION_FILES:
        candidate = directory / name
        if candidate.is_file():
            return candidate
    raise KustomizeError(f"{directory}: no kustomization.yaml")


def load_documents(path: Path) -> list[Obj]:
    """Every non-empty YAML document in ``path``; each must be a Kubernetes object."""
    with path.open(encoding="utf-8") as stream:
        documents = [doc for doc in yaml.safe_load_all(stream) if doc is not None]
    for doc in documents:
        if not isinstance(doc, dict) or "kind" not in doc or "apiVersion" not in doc:
            raise KustomizeError(f"{path}: a document is not a Kubernetes object")
    return documents


def render(directory: Path) -> list[Obj]:
    """The objects the kustomization in ``directory`` produces, in resource order."""
    path = kustomization_file(directory)
    with path.open(encoding="utf-8") as stream:
        kustomization = yaml.safe_load(stream) or {}
    if not isinstance(kustomization, dict):
        raise KustomizeError(f"{path}: not a mapping")
    unsupported = set(kustomization) - SUPPORTED_FIELDS
    if unsupported:
        raise KustomizeError(f"{path}: fields not supported by hack/kustomize.py: {sorted(unsupported)}")

    objects: list[Obj] = []
    for entry in kustomization.get("resources") or []:
        target = (directory / str(entry)).resolve()
        if target.is_dir():
            objects.extend(render(target))
        elif target.is_file():
            objects.extend(load_documents(target))
        else:
            raise KustomizeError(f"{path}: resource {entry!r} does not exist")

    namespace = kustomization.get("namespace")
    if namespace:
        for obj in objects:
            apply_namespace(obj, str(namespace))
    for label_set in kustomization.get("labels") or []:
        pairs = {str(k): str(v) for k, v in (label_set.get("pairs") or {}).items()}
        include_selectors = bool(label_set.get("includeSelectors", False))
        # Selectors and the pod templates they select always change together.
        include_templates = include_selectors or bool(label_set.get("includeTemplates", False))
        for obj in objects:
            apply_labels(obj, pairs, selectors=include_selectors, templates=include_templates)
    common_labels = {str(k): str(v) for k, v in (kustomization.get("commonLabels") or {}).items()}
    if common_labels:
        for obj in objects:
            apply_labels(obj, common_labels, selectors=True, templates=True)
    common_annotations = {str(k): str(v) for k, v in (kustomization.get("commonAnnotations") or {}).items()}
    if common_annotations:
        for obj in objects:
            obj.setdefault("metadata", {}).setdefault("annotations", {}).update(common_annotations)
    return objects


def resource_files(directory: Path) -> set[Path]:
    """Every manifest file the kustomization in ``directory`` reads, recursively."""
    path = kustomization_file(directory)
    with path.open(encoding="utf-8") as stream:
        kustomization = yaml.safe_load(stream) or {}
    files: set[Path] = set()
    for entry in kustomization.get("resources") or []:
        target = (directory / str(entry)).resolve()
        files.update(resource_files(target) if target.is_dir() else {target})
    return files


def apply_namespace(obj: Obj, namespace: str) -> None:
    kind = obj["kind"]
    if kind not in CLUSTER_SCOPED_KINDS:
        obj.setdefault("metadata", {})["namespace"] = namespace
    if kind in ("RoleBinding", "ClusterRoleBinding"):
        # A binding's ServiceAccount subject moves with the ServiceAccount.
        for subject in obj.get("subjects") or []:
            if subject.get("kind") == "ServiceAccount":
                subject["namespace"] = namespace


def apply_labels(obj: Obj, labels: Mapping[str, str], *, selectors: bool, templates: bool) -> None:
    obj.setdefault("metadata", {}).setdefault("labels", {}).update(labels)
    kind = obj["kind"]
    spec = obj.get("spec")
    if not isinstance(spec, dict):
        return
    if kind in WORKLOAD_KINDS:
        if selectors:
            spec.setdefault("selector", {}).setdefault("matchLabels", {}).update(labels)
        if templates:
            spec.setdefault("template", {}).setdefault("metadata", {}).setdefault("labels", {}).update(labels)
    elif kind == "Service" and selectors:
        spec.setdefault("selector", {}).update(labels)


def dump(objects: Iterable[Obj]) -> str:
    return "---\n".join(yaml.safe_dump(obj, sort_keys=False) for obj in objects)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("directory", type=Path, help="a directory holding kustomization.yaml")
    args = parser.parse_args(argv)
    try:
        objects = render(args.directory)
    except KustomizeError as error:
        print(f"kustomize.py: {error}", file=sys.stderr)
        return 1
    sys.stdout.write(dump(objects))
    return 0


if __name__ == "__main__":
    sys.exit(main())
