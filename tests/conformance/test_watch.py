"""Watch: the list-then-watch contract informers are built on.

A watch started from a list's resourceVersion delivers every later change,
in order, and nothing earlier; a label-filtered watch reports objects
entering and leaving the selection; bookmarks carry a resumable version.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client, config, watch
from kubernetes.client.exceptions import ApiException

from disvc.testing.fixtures import KubeEnv

from .objects import ISVC_VERSION, ISVCS, KSERVE, config_map, isvc

SUITE = {"suite": "watch"}
"""On every object these tests make, so a selector hides objects others add
(a real cluster publishes ``kube-root-ca.crt`` into each namespace)."""


def _events(kube: KubeEnv, stop_after: int, timeout: int = 10, **kwargs: Any) -> list[tuple[str, str]]:
    """(type, name) of the first ``stop_after`` events of a config-map watch."""
    kwargs.setdefault("label_selector", "suite=watch")
    stream = watch.Watch()
    seen = []
    for event in stream.stream(kube.core.list_namespaced_config_map, kube.namespace, timeout_seconds=timeout, **kwargs):
        seen.append((event["type"], event["object"].metadata.name))
        if len(seen) >= stop_after:
            stream.stop()
    return seen


def _create(kube: KubeEnv, name: str, **labels: str) -> None:
    kube.core.create_namespaced_config_map(kube.namespace, config_map(name, {**SUITE, **labels}))


def _relabel(kube: KubeEnv, name: str, **labels: str) -> None:
    kube.core.patch_namespaced_config_map(
        name, kube.namespace, {"metadata": {"labels": labels}},
        _content_type="application/merge-patch+json",
    )  # fmt: skip


def _list_version(kube: KubeEnv) -> str:
    version: str = kube.core.list_namespaced_config_map(
        kube.namespace, label_selector="suite=watch"
    ).metadata.resource_version
    return version


def test_watch_from_a_list_version_sees_only_later_changes_in_order(kube: KubeEnv) -> None:
    _create(kube, "a")
    _create(kube, "b")
    version = _list_version(kube)
    _create(kube, "c")
    _relabel(kube, "a", touched="yes")
    kube.core.delete_namespaced_config_map("b", kube.namespace)

    assert _events(kube, 3, resource_version=version) == [
        ("ADDED", "c"),
        ("MODIFIED", "a"),
        ("DELETED", "b"),
    ]


def test_watch_without_a_version_starts_with_the_current_objects(kube: KubeEnv) -> None:
    _create(kube, "a")
    _create(kube, "b")
    assert sorted(_events(kube, 2)) == [("ADDED", "a"), ("ADDED", "b")]


def test_modified_event_carries_the_new_state(kube: KubeEnv) -> None:
    _create(kube, "a")
    version = _list_version(kube)
    _relabel(kube, "a", colour="blue")
    stream = watch.Watch()
    for event in stream.stream(
        kube.core.list_namespaced_config_map, kube.namespace,
        resource_version=version, label_selector="suite=watch", timeout_seconds=10,
    ):  # fmt: skip
        assert event["type"] == "MODIFIED"
        assert event["object"].metadata.labels["colour"] == "blue"
        assert event["object"].metadata.resource_version != version
        stream.stop()


def test_filtered_watch_reports_objects_entering_and_leaving_the_selection(
    kube: KubeEnv,
) -> None:
    _create(kube, "in", sel="yes")
    _create(kube, "out", sel="no")
    version = _list_version(kube)
    _create(kube, "in-too", sel="yes")
    _create(kube, "never-in", sel="no")
    _relabel(kube, "out", sel="yes")  # enters the selection
    _relabel(kube, "in", sel="no")  # leaves it

    events = _events(kube, 3, resource_version=version, label_selector="suite=watch,sel=yes")
    assert events == [("ADDED", "in-too"), ("ADDED", "out"), ("DELETED", "in")]


def test_a_filtered_watch_never_reports_the_deletion_of_an_object_outside_it(kube: KubeEnv) -> None:
    # Why a controller whose watches select its own label must look again by
    # itself for a name a foreign (unlabelled) object gives back.
    _create(kube, "foreign", sel="no")
    version = _list_version(kube)
    kube.core.delete_namespaced_config_map("foreign", kube.namespace)
    _create(kube, "marker", sel="yes")
    events = _events(kube, 1, resource_version=version, label_selector="suite=watch,sel=yes")
    assert events == [("ADDED", "marker")]


def test_watch_of_one_name_by_field_selector(kube: KubeEnv) -> None:
    _create(kube, "a")
    _create(kube, "b")
    version = _list_version(kube)
    _relabel(kube, "a", n="1")
    _relabel(kube, "b", n="1")
    events = _events(kube, 1, resource_version=version, field_selector="metadata.name=b")
    assert events == [("MODIFIED", "b")]


@pytest.mark.substrate_only
def test_bookmark_carries_a_version_to_resume_from(kube: KubeEnv) -> None:
    # Substrate only: a real kube-apiserver sends bookmarks about once a
    # minute (none within a 4 s or a 10 s watch on v1.28), so no test of
    # reasonable length can count on one there. The loopback API sends one
    # before a short watch ends, so the shape and the resume are pinned here.
    _create(kube, "before")
    version = _list_version(kube)
    stream = watch.Watch()
    bookmark: dict[str, Any] = {}
    for event in stream.stream(
        kube.core.list_namespaced_config_map, kube.namespace,
        resource_version=version, label_selector="suite=watch",
        allow_watch_bookmarks=True, timeout_seconds=4,
    ):  # fmt: skip
        if event["type"] == "BOOKMARK":
            bookmark = event["raw_object"]
            stream.stop()
    assert bookmark, "no BOOKMARK event before the watch ended"
    assert bookmark["kind"] == "ConfigMap"
    assert bookmark["metadata"]["resourceVersion"]
    assert "name" not in bookmark["metadata"]  # a bookmark names no object

    _create(kube, "after")
    resumed = _events(kube, 1, resource_version=bookmark["metadata"]["resourceVersion"])
    assert resumed == [("ADDED", "after")]


def test_watch_of_custom_objects_sees_spec_and_status_writes(kube: KubeEnv) -> None:
    created = kube.custom.create_namespaced_custom_object(KSERVE, ISVC_VERSION, kube.namespace, ISVCS, isvc("m"))
    version = created["metadata"]["resourceVersion"]

    def patch(method: Callable[..., Any], body: dict[str, Any]) -> None:
        method(
            KSERVE, ISVC_VERSION, kube.namespace, ISVCS, "m", body,
            _content_type="application/merge-patch+json",
        )  # fmt: skip

    patch(kube.custom.patch_namespaced_custom_object_status, {"status": {"url": "http://m"}})
    patch(kube.custom.patch_namespaced_custom_object, {"spec": {"predictor": {"minReplicas": 2}}})
    stream = watch.Watch()
    seen = []
    for event in stream.stream(
        kube.custom.list_namespaced_custom_object, KSERVE, ISVC_VERSION, kube.namespace, ISVCS,
        resource_version=version, timeout_seconds=10,
    ):  # fmt: skip
        obj = event["object"]
        seen.append((event["type"], obj.get("status", {}).get("url"), obj["metadata"]["generation"]))
        if len(seen) == 2:
            stream.stop()
    assert seen == [("MODIFIED", "http://m", 1), ("MODIFIED", "http://m", 2)]


@pytest.mark.substrate_only
def test_watch_from_a_compacted_version_is_410_expired(tmp_path: Path) -> None:
    # A real server compacts on its own schedule; only the substrate lets a
    # test shrink the history window so that a version is surely gone.
    from disvc.testing.apiserver import ApiServer

    with ApiServer(history=3) as server:
        api_client = config.new_client_from_config(config_file=server.write_kubeconfig(str(tmp_path / "kubeconfig")))
        core = client.CoreV1Api(api_client)
        core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name="old")))
        first = core.create_namespaced_config_map("old", config_map("a"))
        for value in range(6):
            core.patch_namespaced_config_map(
                "a", "old", {"data": {"k": str(value)}},
                _content_type="application/merge-patch+json",
            )  # fmt: skip
        raw = core.list_namespaced_config_map(
            "old", watch=True, resource_version=first.metadata.resource_version,
            timeout_seconds=5, _preload_content=False,
        )  # fmt: skip
        event = json.loads(next(watch.watch.iter_resp_lines(raw)))
        raw.release_conn()
        assert event["type"] == "ERROR"
        assert event["object"]["code"] == 410
        assert event["object"]["reason"] == "Expired"

        stream = watch.Watch().stream(
            core.list_namespaced_config_map, "old",
            resource_version=first.metadata.resource_version, timeout_seconds=5,
        )  # fmt: skip
        with pytest.raises(ApiException) as caught:
            next(stream)
        assert caught.value.status == 410
        api_client.close()
