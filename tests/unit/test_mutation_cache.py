"""The mutation cache: a reconcile sees our own writes before their watch
events, the store itself never runs ahead of the watch, and only the exact
echo of our own write is not news."""

from __future__ import annotations

from disvc.builders.types import Obj
from disvc.controller import compact, indexes
from disvc.controller.mutation_cache import MutationCache
from disvc.controller.store import Store


def svc(name: str, rv: str, label: str | None = "d", **meta: object) -> Obj:
    metadata: Obj = {"name": name, "namespace": "ns", "resourceVersion": rv, **meta}
    if label:
        metadata["labels"] = {"disvc": label}
    return {"apiVersion": "v1", "kind": "Service", "metadata": metadata}


def cache_over(*objs: Obj, list_version: str = "10") -> tuple[MutationCache, Store]:
    store = Store(indexes.CHILD_INDEXERS, compact.compact)
    store.replace(list(objs), list_version)
    return MutationCache(store), store


def version(obj: Obj | None) -> str | None:
    return None if obj is None else obj["metadata"]["resourceVersion"]


def test_our_write_is_read_before_its_watch_event_and_the_store_is_left_alone() -> None:
    cache, store = cache_over(svc("a", "5"))
    cache.mutation(svc("a", "12"))
    assert version(cache.get("ns/a")) == "12"
    assert version(store.get("ns/a")) == "5"


def test_a_created_object_is_found_through_the_index_before_its_event() -> None:
    cache, _ = cache_over()
    cache.mutation(svc("new", "12"))
    assert [o["metadata"]["name"] for o in cache.by_index(indexes.BY_DISVC_LABEL, "ns/d")] == ["new"]


def test_a_write_that_relabels_moves_the_object_between_index_values() -> None:
    cache, _ = cache_over(svc("a", "5", label="old"))
    cache.mutation(svc("a", "12", label="new"))
    assert cache.by_index(indexes.BY_DISVC_LABEL, "ns/old") == []
    assert [version(o) for o in cache.by_index(indexes.BY_DISVC_LABEL, "ns/new")] == ["12"]


def test_our_write_is_stored_compact_like_the_store() -> None:
    cache, _ = cache_over()
    written = svc("a", "12", managedFields=[{"manager": "disvc-controller"}])
    cache.mutation(written)
    cached = cache.get("ns/a")
    assert cached is not None and "managedFields" not in cached["metadata"]
    assert "managedFields" in written["metadata"]


def test_the_echo_of_our_own_write_is_recognised_once_then_the_store_serves() -> None:
    cache, store = cache_over(svc("a", "5"))
    cache.mutation(svc("a", "12"))
    store.put(svc("a", "12"))
    assert cache.observed(svc("a", "12")) is True
    assert len(cache) == 0
    store.put(svc("a", "13"))
    assert cache.observed(svc("a", "13")) is False
    assert version(cache.get("ns/a")) == "13"


def test_an_event_overtaken_by_our_write_is_news_and_does_not_roll_reads_back() -> None:
    # Someone scaled (rv 11) while we wrote status (rv 12, which contains the
    # scale): the rv 11 event must still trigger a reconcile, and that
    # reconcile must read our rv 12.
    cache, store = cache_over(svc("a", "5"))
    cache.mutation(svc("a", "12"))
    store.put(svc("a", "11"))
    assert cache.observed(svc("a", "11")) is False
    assert version(cache.get("ns/a")) == "12"


def test_a_later_change_by_someone_else_replaces_our_write() -> None:
    cache, store = cache_over(svc("a", "5"))
    cache.mutation(svc("a", "12"))
    store.put(svc("a", "14"))
    assert cache.observed(svc("a", "14")) is False
    assert version(cache.get("ns/a")) == "14"
    assert len(cache) == 0


def test_a_write_whose_event_got_here_first_is_not_recorded() -> None:
    cache, store = cache_over(svc("a", "5"))
    store.put(svc("a", "12"))
    cache.mutation(svc("a", "12"))
    assert len(cache) == 0
    assert version(cache.get("ns/a")) == "12"


def test_a_write_the_store_has_gone_past_is_not_served_again() -> None:
    # Our create (rv 12) was deleted by someone else while the watch was down;
    # the relist at rv 20 does not hold it, and it must not come back as a ghost.
    cache, store = cache_over()
    cache.mutation(svc("a", "12"))
    store.replace([], "20")
    cache.observed_delete("ns/a")
    assert cache.get("ns/a") is None
    assert cache.by_index(indexes.BY_DISVC_LABEL, "ns/d") == []


def test_a_relist_taken_before_our_write_keeps_serving_it() -> None:
    cache, store = cache_over()
    cache.mutation(svc("created-after-list", "20"))
    store.replace([], "15")
    assert version(cache.get("ns/created-after-list")) == "20"


def test_our_delete_hides_the_object_until_its_event_removes_it() -> None:
    cache, store = cache_over(svc("a", "5"))
    cache.deletion("ns/a", "5")
    assert cache.get("ns/a") is None
    assert cache.by_index(indexes.BY_DISVC_LABEL, "ns/d") == []
    store.delete(svc("a", "13"))
    cache.observed_delete("ns/a")
    assert len(cache) == 0 and cache.get("ns/a") is None


def test_an_object_a_finalizer_keeps_shows_again_with_its_deletion_timestamp() -> None:
    cache, store = cache_over(svc("a", "5"))
    cache.deletion("ns/a", "5")
    terminating = svc("a", "13", deletionTimestamp="2026-01-01T00:00:00Z")
    store.put(terminating)
    assert cache.get("ns/a") is not None  # newer than what we deleted, even before observed
    assert cache.observed(terminating) is False
    assert version(cache.get("ns/a")) == "13"


def test_unorderable_versions_let_the_next_event_win() -> None:
    cache, store = cache_over(svc("a", "abc"))
    cache.mutation(svc("a", "abd"))
    assert version(cache.get("ns/a")) == "abd"
    store.put(svc("a", "abe"))
    assert cache.observed(svc("a", "abe")) is False
    assert version(cache.get("ns/a")) == "abe"


def test_writes_the_store_caught_up_with_are_swept_without_their_events() -> None:
    cache, store = cache_over()
    for i in range(100):
        cache.mutation(svc(f"o{i}", str(100 + i), label=None))
    store.replace([], "1000")  # a relist went past every one of them
    for i in range(100):
        cache.mutation(svc(f"later{i}", str(2000 + i), label=None))
    assert len(cache) == 100  # only the writes still ahead of the store


class _EventLandsAfterEachRead(Store):
    """A store whose watch event arrives the instant a reader has read an
    object, the interleaving two separate reads (object, then version) allow."""

    def __init__(self, event: Obj) -> None:
        super().__init__(indexes.CHILD_INDEXERS, compact.compact)
        self.event: Obj | None = event

    def get(self, key: str) -> Obj | None:
        found = super().get(key)
        self._land()
        return found

    def get_at(self, key: str) -> tuple[Obj | None, str]:
        found = super().get_at(key)
        self._land()
        return found

    def _land(self) -> None:
        if self.event is not None:
            event, self.event = self.event, None
            self.put(event)


def test_a_just_created_object_never_reads_as_missing_while_its_event_lands() -> None:
    created = svc("new", "12")
    store = _EventLandsAfterEachRead(created)
    store.replace([], "10")
    cache = MutationCache(store)
    cache.mutation(created)
    # The object and the version the store is at are read as one: either
    # both before the event (our write serves) or both after (the store does).
    assert version(cache.get("ns/new")) == "12"
