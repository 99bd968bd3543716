"""ApiWriter: what the server made of our own last write is not written again,
while any later change by someone else still is."""

from __future__ import annotations

import copy
from dataclasses import dataclass, field

from disvc.builders import names
from disvc.builders.types import Obj
from disvc.controller.client import ApiWriter
from disvc.controller.mutation_cache import MutationCache
from disvc.controller.store import Store

DESIRED: Obj = {
    "apiVersion": "serving.kserve.io/v1beta1",
    "kind": "InferenceService",
    "metadata": {
        "namespace": "ns",
        "name": "iris-v1-0",
        "labels": {"disvc": "iris"},
        "annotations": {names.APPLIED_HASH_ANNOTATION: "abc"},
    },
    "spec": {"predictor": {"sklearn": {"storageUri": "gs://models/iris"}}},
}


def as_defaulted(obj: Obj, generation: int) -> Obj:
    """What an admission webhook like KServe's makes of it: sklearn becomes model."""
    stored = copy.deepcopy(obj)
    framework = stored["spec"]["predictor"].pop("sklearn")
    stored["spec"]["predictor"]["model"] = {"modelFormat": {"name": "sklearn"}, **framework}
    stored["metadata"].update(uid="u-1", generation=generation, resourceVersion=str(10 + generation))
    return stored


@dataclass
class DefaultingKube:
    applies: list[Obj] = field(default_factory=list)
    generation: int = 1

    def apply(self, obj: Obj, subresource: str | None = None, *, force: bool = True) -> Obj:
        self.applies.append(obj)
        return as_defaulted(obj, self.generation)


@dataclass
class Cache:
    """One kind's informer cache, fed by hand."""

    store: Store = field(default_factory=Store)

    def __post_init__(self) -> None:
        self.reads = MutationCache(self.store)

    def get(self, key: str) -> Obj | None:
        return self.reads.get(key)

    def watch_event(self, obj: Obj) -> None:
        """Someone else's change arrives through the watch."""
        self.store.put(obj)
        self.reads.observed(obj)


def writer_with(kube: DefaultingKube) -> tuple[ApiWriter, Cache]:
    cache = Cache()
    return ApiWriter(kube, {"InferenceService": cache.reads}), cache  # type: ignore[arg-type]


def test_the_servers_rewrite_of_our_last_write_is_not_sent_again() -> None:
    kube = DefaultingKube()
    writer, store = writer_with(kube)

    writer.apply(DESIRED)
    writer.apply(DESIRED)

    assert len(kube.applies) == 1
    cached = store.get("ns/iris-v1-0")
    assert cached is not None and "model" in cached["spec"]["predictor"]


def test_a_spec_change_by_someone_else_is_written_back() -> None:
    kube = DefaultingKube()
    writer, store = writer_with(kube)
    writer.apply(DESIRED)
    edited = as_defaulted(DESIRED, generation=2)  # a hand edit bumps the generation
    store.watch_event(edited)

    kube.generation = 3
    writer.apply(DESIRED)

    assert len(kube.applies) == 2


def test_a_label_removed_by_someone_else_is_written_back() -> None:
    kube = DefaultingKube()
    writer, store = writer_with(kube)
    writer.apply(DESIRED)
    relabelled = as_defaulted(DESIRED, generation=1)
    relabelled["metadata"]["labels"] = {}
    relabelled["metadata"]["resourceVersion"] = "99"
    store.watch_event(relabelled)

    writer.apply(DESIRED)

    assert len(kube.applies) == 2


def test_a_changed_desired_body_is_written() -> None:
    kube = DefaultingKube()
    writer, _ = writer_with(kube)
    writer.apply(DESIRED)
    changed = copy.deepcopy(DESIRED)
    changed["metadata"]["annotations"][names.APPLIED_HASH_ANNOTATION] = "def"

    writer.apply(changed)

    assert len(kube.applies) == 2
