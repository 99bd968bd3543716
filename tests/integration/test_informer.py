"""The controller's source layer against a real API: ``Kube`` calls and error
mapping, informers that list, watch, resume and relist, and leader election
on a real Lease. Runs on the loopback API by default; tests that inject
faults or count requests are ``substrate_only``."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from disvc import __version__
from disvc.builders.types import Obj
from disvc.controller import errors
from disvc.controller.backoff import Backoff
from disvc.controller.compact import compact
from disvc.controller.handler import EnqueueOwner
from disvc.controller.indexes import BY_DISVC_LABEL, CHILD_INDEXERS
from disvc.controller.informer import Informer
from disvc.controller.kube import API_CALLS, ApiCall, Kube, load_api_client, retry
from disvc.controller.leader import LeaderElectionConfig, LeaderElector
from disvc.controller.metrics import Metrics
from disvc.controller.store import DeletedFinalStateUnknown
from disvc.testing.apiserver import FaultRule
from disvc.testing.fixtures import KubeEnv, eventually

USER_AGENT = f"disvc-controller/{__version__}"


def service(namespace: str, name: str, disvc: str | None = "d", port: int = 80) -> Obj:
    labels = {"disvc": disvc} if disvc else {"app": "other"}
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, "namespace": namespace, "labels": labels},
        "spec": {"selector": {"app": name}, "ports": [{"name": "http", "port": port, "targetPort": 8080}]},
    }


class Recorder:
    """Handlers that remember what they were told, by object name."""

    def __init__(self) -> None:
        self.events: list[tuple[str, str]] = []
        self.tombstones: list[str] = []

    def on_add(self, obj: Obj) -> None:
        self.events.append(("add", obj["metadata"]["name"]))

    def on_update(self, old: Obj, new: Obj) -> None:
        self.events.append(("update", new["metadata"]["name"]))

    def on_delete(self, obj: Obj | DeletedFinalStateUnknown) -> None:
        if isinstance(obj, DeletedFinalStateUnknown):
            self.tombstones.append(obj.key)
            obj = obj.obj
        self.events.append(("delete", obj["metadata"]["name"]))


@pytest.fixture
def started() -> Iterator[list[Informer]]:
    informers: list[Informer] = []
    yield informers
    for informer in informers:
        informer.stop()


def start_informer(api: Kube, namespace: str, started: list[Informer], **kwargs: object) -> tuple[Informer, Recorder]:
    informer = Informer(api, "Service", namespace=namespace, label_selector="disvc",
                        indexers=CHILD_INDEXERS, transform=compact,
                        backoff=Backoff(initial=0.01, cap=0.1), **kwargs)  # type: ignore[arg-type]
    recorder = Recorder()
    informer.add_handler(recorder.on_add, recorder.on_update, recorder.on_delete)
    informer.start()
    started.append(informer)
    assert informer.wait_for_sync(10)
    return informer, recorder


def names_in(informer: Informer) -> list[str]:
    return sorted(o["metadata"]["name"] for o in informer.store.list())


# -- Kube ------------------------------------------------------------------


def test_apply_get_list_and_delete_round_trip(api: Kube, kube: KubeEnv) -> None:
    ns = kube.namespace
    applied = api.apply(service(ns, "a"))
    assert applied["metadata"]["uid"] and applied["spec"]["ports"][0]["port"] == 80
    got = api.get("Service", ns, "a")
    assert got is not None and got["metadata"]["uid"] == applied["metadata"]["uid"]
    api.apply(service(ns, "b", disvc=None))
    items, rv = api.list("Service", ns, label_selector="disvc=d")
    assert rv
    assert [(i["apiVersion"], i["kind"], i["metadata"]["name"]) for i in items] == [("v1", "Service", "a")]
    api.delete("Service", ns, "a", uid=applied["metadata"]["uid"])
    assert api.get("Service", ns, "a") is None
    api.delete("Service", ns, "a")  # already gone: fine


def test_a_list_from_the_cache_and_a_paged_one_agree_and_each_item_is_transformed(api: Kube, kube: KubeEnv) -> None:
    ns = kube.namespace
    for index in range(7):
        api.apply(service(ns, f"s{index}"))
    seen: list[str] = []

    def shrink(obj: Obj) -> Obj:
        seen.append(obj["metadata"]["name"])
        return compact(obj)

    consistent, _ = api.list("Service", ns, "disvc=d")

    def all_seven_from_the_cache() -> list[Obj]:
        # resourceVersion=0 may be answered from the watch cache, a moment behind.
        seen.clear()
        items, _ = api.list("Service", ns, "disvc=d", transform=shrink, any_version=True)
        assert sorted(o["metadata"]["name"] for o in items) == sorted(o["metadata"]["name"] for o in consistent)
        return items

    from_cache = eventually(all_seven_from_the_cache, timeout=10)
    assert sorted(o["metadata"]["name"] for o in consistent) == [f"s{i}" for i in range(7)]
    assert sorted(seen) == [f"s{i}" for i in range(7)]
    assert all("managedFields" not in o["metadata"] for o in from_cache)
    assert all("managedFields" in o["metadata"] for o in consistent)


def test_apply_is_server_side_apply_by_our_field_manager(api: Kube, kube: KubeEnv) -> None:
    applied = api.apply(service(kube.namespace, "a"))
    managers = {m["manager"]: m["operation"] for m in applied["metadata"].get("managedFields", [])}
    assert managers.get("disvc-controller") == "Apply"


def test_delete_with_a_stale_precondition_is_a_conflict_and_keeps_the_object(api: Kube, kube: KubeEnv) -> None:
    applied = api.apply(service(kube.namespace, "a"))
    with pytest.raises(errors.ConflictError):
        api.delete("Service", kube.namespace, "a", uid="not-" + applied["metadata"]["uid"])
    assert api.get("Service", kube.namespace, "a") is not None


def test_calls_outside_the_permission_table_are_refused(api: Kube, kube: KubeEnv) -> None:
    with pytest.raises(ValueError):
        api.delete("DistributedInferenceService", kube.namespace, "d")
    with pytest.raises(ValueError):
        api.apply({"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                   "metadata": {"name": "x", "namespace": kube.namespace}})


def test_api_calls_name_every_permission_the_controller_needs() -> None:
    expected = {
        ApiCall("serving.kserve.io", "distributedinferenceservices", "watch"),
        ApiCall("serving.kserve.io", "distributedinferenceservices/status", "patch"),
        ApiCall("serving.kserve.io", "inferenceservices", "delete"),
        ApiCall("", "services", "patch"),
        ApiCall("networking.k8s.io", "ingresses", "list"),
        ApiCall("", "events", "create"),
        ApiCall("coordination.k8s.io", "leases", "update"),
    }
    assert expected <= API_CALLS
    assert ApiCall("serving.kserve.io", "distributedinferenceservices", "delete") not in API_CALLS


@pytest.mark.substrate_only
def test_requests_carry_our_user_agent_and_each_is_told_to_the_hook(kube: KubeEnv) -> None:
    assert kube.server is not None
    requests: list[tuple[str, str, str]] = []
    client = load_api_client(kube.kubeconfig)
    api = Kube(client, on_request=lambda verb, kind, code: requests.append((verb, kind, code)))
    api.apply(service(kube.namespace, "a"))
    api.get("Service", kube.namespace, "a")
    api.delete("Service", kube.namespace, "a")
    client.close()  # type: ignore[no-untyped-call]
    assert kube.server.request_count(user_agent=USER_AGENT) == 3
    assert kube.server.write_count(user_agent=USER_AGENT) == 2
    assert requests == [("patch", "Service", "201"), ("get", "Service", "200"), ("delete", "Service", "200")]


def test_every_request_is_counted_by_verb_kind_and_response_code(kube: KubeEnv) -> None:
    metrics = Metrics()
    client = load_api_client(kube.kubeconfig)
    api = Kube(client, on_request=metrics.count_api_request)
    try:
        assert api.get("Service", kube.namespace, "missing") is None
        api.apply(service(kube.namespace, "a"))
        api.list("Service", kube.namespace)
    finally:
        client.close()  # type: ignore[no-untyped-call]

    def requests(verb: str, code: str) -> float | None:
        labels = {"verb": verb, "kind": "Service", "code": code}
        return metrics.registry.get_sample_value("disvc_api_requests_total", labels)

    assert (requests("get", "404"), requests("patch", "201"), requests("list", "200")) == (1, 1, 1)
    assert metrics.registry.get_sample_value("disvc_api_writes_total", {"verb": "patch", "kind": "Service"}) == 1


@pytest.mark.substrate_only
def test_server_errors_are_retried_within_the_call(api: Kube, kube: KubeEnv) -> None:
    assert kube.server is not None
    kube.server.add_fault(FaultRule(verb="patch", resource="services", count=2, code=500))
    assert api.apply(service(kube.namespace, "a"))["metadata"]["name"] == "a"
    assert kube.server.request_count(verb="patch", resource="services") == 3


@pytest.mark.substrate_only
def test_persistent_server_errors_surface_as_transient(api: Kube, kube: KubeEnv) -> None:
    assert kube.server is not None
    kube.server.add_fault(FaultRule(verb="get", resource="services", count=None, code=503))
    with pytest.raises(errors.TransientError) as raised:
        api.get("Service", kube.namespace, "a")
    assert raised.value.status == 503
    assert kube.server.request_count(verb="get", resource="services") == retry.ATTEMPTS


@pytest.mark.substrate_only
def test_a_long_retry_after_is_left_to_the_queue(api: Kube, kube: KubeEnv) -> None:
    assert kube.server is not None
    kube.server.add_fault(FaultRule(verb="patch", resource="services", count=None, code=429, retry_after=7))
    with pytest.raises(errors.TooManyRequestsError) as raised:
        api.apply(service(kube.namespace, "a"))
    assert raised.value.retry_after == 7
    assert kube.server.request_count(verb="patch", resource="services") == 1


@pytest.mark.substrate_only
def test_a_short_retry_after_is_waited_out_within_the_call(api: Kube, kube: KubeEnv) -> None:
    assert kube.server is not None
    kube.server.add_fault(FaultRule(verb="patch", resource="services", count=1, code=429, retry_after=1))
    assert api.apply(service(kube.namespace, "a"))["metadata"]["name"] == "a"
    assert kube.server.request_count(verb="patch", resource="services") == 2


@pytest.mark.substrate_only
def test_conflicts_are_not_retried_within_the_call(api: Kube, kube: KubeEnv) -> None:
    assert kube.server is not None
    kube.server.add_fault(FaultRule(verb="patch", resource="services", count=1, code=409))
    with pytest.raises(errors.ConflictError):
        api.apply(service(kube.namespace, "a"))
    assert kube.server.request_count(verb="patch", resource="services") == 1


@pytest.mark.substrate_only
@pytest.mark.parametrize("code", [400, 403, 422])
def test_client_errors_are_permanent_with_the_status_reason(api: Kube, kube: KubeEnv, code: int) -> None:
    assert kube.server is not None
    kube.server.add_fault(FaultRule(verb="patch", resource="services", count=1, code=code, message="no way"))
    with pytest.raises(errors.PermanentError) as raised:
        api.apply(service(kube.namespace, "a"))
    assert raised.value.status == code
    assert "no way" in str(raised.value)


# -- Informer --------------------------------------------------------------


def test_informer_lists_existing_objects_then_follows_changes(
    api: Kube, kube: KubeEnv, started: list[Informer]
) -> None:
    ns = kube.namespace
    api.apply(service(ns, "before"))
    api.apply(service(ns, "unlabelled", disvc=None))
    informer, recorder = start_informer(api, ns, started)
    assert names_in(informer) == ["before"]
    assert recorder.events == [("add", "before")]

    api.apply(service(ns, "after"))
    api.apply(service(ns, "before", port=81))
    api.delete("Service", ns, "after")
    eventually(lambda: _assert(recorder.events[1:] == [("add", "after"), ("update", "before"), ("delete", "after")]))
    cached = informer.store.get(f"{ns}/before")
    assert cached is not None and cached["spec"]["ports"][0]["port"] == 81
    assert "managedFields" not in cached["metadata"]
    assert [o["metadata"]["name"] for o in informer.store.by_index(BY_DISVC_LABEL, f"{ns}/d")] == ["before"]


def test_child_informer_feeds_owner_keys_to_a_queue(api: Kube, kube: KubeEnv, started: list[Informer]) -> None:
    keys: list[str] = []

    class Queue:
        def add(self, key: str) -> None:
            keys.append(key)

    informer, _ = start_informer(api, kube.namespace, started)
    enqueue = EnqueueOwner(Queue())
    informer.add_handler(enqueue.on_add, enqueue.on_update, enqueue.on_delete)
    api.apply(service(kube.namespace, "d-v1", disvc="d"))
    eventually(lambda: _assert(keys == [f"{kube.namespace}/d"]))


@pytest.mark.substrate_only
def test_informer_resumes_after_dropped_watches_without_relisting(
    api: Kube, kube: KubeEnv, started: list[Informer]
) -> None:
    assert kube.server is not None
    informer, recorder = start_informer(api, kube.namespace, started)
    api.apply(service(kube.namespace, "a"))
    eventually(lambda: _assert(("add", "a") in recorder.events))
    lists_before = kube.server.request_count(verb="list", resource="services")
    watches_before = kube.server.request_count(verb="watch", resource="services")

    kube.server.drop_watches()
    api.apply(service(kube.namespace, "b"))
    eventually(lambda: _assert(names_in(informer) == ["a", "b"]))
    assert kube.server.request_count(verb="watch", resource="services") > watches_before
    assert kube.server.request_count(verb="list", resource="services") == lists_before
    assert recorder.events.count(("add", "a")) == 1


@pytest.mark.substrate_only
def test_informer_relists_on_gone_and_reports_missed_deletes_as_tombstones(
    api: Kube, kube: KubeEnv, started: list[Informer]
) -> None:
    assert kube.server is not None
    ns = kube.namespace
    api.apply(service(ns, "kept"))
    api.apply(service(ns, "vanishes"))
    informer, recorder = start_informer(api, ns, started)
    # Every new watch fails with 410 until the object is gone, so the delete
    # is never seen as an event: only the relist can find it.
    gone = kube.server.add_fault(FaultRule(verb="watch", resource="services", count=None, code=410))
    kube.server.drop_watches()
    # A refused watch means the dropped one is closed: no open watch can
    # carry the delete as an event any more.
    eventually(lambda: _assert(gone.hits >= 1))
    api.delete("Service", ns, "vanishes")
    eventually(lambda: _assert(recorder.tombstones == [f"{ns}/vanishes"]), timeout=20)
    kube.server.clear_faults()
    eventually(lambda: _assert(names_in(informer) == ["kept"]))
    assert kube.server.request_count(verb="list", resource="services") >= 2


def test_informer_stops_promptly_while_a_watch_is_open(
    api: Kube, kube: KubeEnv, started: list[Informer]
) -> None:
    informer, recorder = start_informer(api, kube.namespace, started)
    api.apply(service(kube.namespace, "a"))
    eventually(lambda: _assert(("add", "a") in recorder.events))  # the watch is open and delivering
    assert informer.stop(timeout=5)


def test_resync_redelivers_cached_objects_without_api_requests(
    api: Kube, kube: KubeEnv, started: list[Informer]
) -> None:
    api.apply(service(kube.namespace, "a"))
    _, recorder = start_informer(api, kube.namespace, started, resync_period=0.02)
    if kube.server is not None:
        kube.server.reset_requests()
    eventually(lambda: _assert(recorder.events.count(("update", "a")) >= 3))
    if kube.server is not None:
        assert kube.server.request_count(verb="list") == 0
        assert kube.server.write_count() == 0


# -- Leader election -------------------------------------------------------


def test_one_leader_at_a_time_and_release_hands_over(api: Kube, kube: KubeEnv) -> None:
    leading: dict[str, bool] = {"a": False, "b": False}

    def elector(identity: str) -> LeaderElector:
        return LeaderElector(
            api, LeaderElectionConfig(kube.namespace, "disvc-leader", identity=identity, retry_period=0.05),
            on_started_leading=lambda: leading.__setitem__(identity, True),
            on_stopped_leading=lambda: leading.__setitem__(identity, False),
        )

    a, b = elector("a"), elector("b")
    stop_a, stop_b = threading.Event(), threading.Event()
    thread_a = threading.Thread(target=a.run, args=(stop_a,), daemon=True)
    thread_a.start()
    eventually(lambda: _assert(leading["a"]))
    thread_b = threading.Thread(target=b.run, args=(stop_b,), daemon=True)
    thread_b.start()
    try:
        eventually(lambda: _assert(b.try_acquire_or_renew() is False))  # b has seen a's lease
        assert not leading["b"]
        stop_a.set()
        thread_a.join(timeout=5)
        eventually(lambda: _assert(leading["b"] and not leading["a"]))
        lease = api.get_lease(kube.namespace, "disvc-leader")
        assert lease is not None
        assert lease["spec"]["holderIdentity"] == "b"
        assert lease["spec"]["leaseTransitions"] == 1
    finally:
        stop_a.set()
        stop_b.set()
        thread_b.join(timeout=5)


def _assert(condition: bool) -> None:
    assert condition
