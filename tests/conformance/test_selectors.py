"""Label and field selectors on list: the server filters, so clients (and
the controller's informers, which watch children by the ``disvc`` label)
receive only what they asked for."""

from __future__ import annotations

import pytest
from kubernetes.client.exceptions import ApiException

from disvc.testing.fixtures import KubeEnv, status_of

from .objects import config_map

LABELS = {
    "web-front": {"app": "web", "tier": "front"},
    "web-back": {"app": "web", "tier": "back"},
    "db": {"app": "db"},
    "bare": {},
}


@pytest.fixture
def labelled(kube: KubeEnv) -> KubeEnv:
    for name, labels in LABELS.items():
        kube.core.create_namespaced_config_map(kube.namespace, config_map(name, labels=labels))
    return kube


def _names(kube: KubeEnv, **selectors: str) -> set[str]:
    listed = kube.core.list_namespaced_config_map(kube.namespace, **selectors)
    return {item.metadata.name for item in listed.items} - {"kube-root-ca.crt"}


@pytest.mark.parametrize(
    ("selector", "expected"),
    [
        ("app=web", {"web-front", "web-back"}),
        ("app==web", {"web-front", "web-back"}),
        ("app!=web", {"db", "bare"}),  # != also matches objects without the label
        ("tier in (front,back)", {"web-front", "web-back"}),
        ("tier notin (front)", {"web-back", "db", "bare"}),
        ("tier", {"web-front", "web-back"}),
        ("!tier", {"db", "bare"}),
        ("app=web,tier=back", {"web-back"}),
        ("app in (web,db),!tier", {"db"}),
        ("app=nothing", set()),
    ],
)
def test_label_selector(labelled: KubeEnv, selector: str, expected: set[str]) -> None:
    assert _names(labelled, label_selector=selector) == expected


def test_field_selector_on_metadata_name(labelled: KubeEnv) -> None:
    assert _names(labelled, field_selector="metadata.name=db") == {"db"}
    assert _names(labelled, field_selector="metadata.name!=db") == {"web-front", "web-back", "bare"}


def test_field_and_label_selectors_combine(labelled: KubeEnv) -> None:
    both = _names(labelled, label_selector="app=web", field_selector="metadata.name=web-back")
    assert both == {"web-back"}


def test_field_selector_on_metadata_namespace(labelled: KubeEnv) -> None:
    selected = _names(labelled, field_selector=f"metadata.namespace={labelled.namespace}")
    assert selected == set(LABELS)


def test_malformed_label_selector_is_a_400(labelled: KubeEnv) -> None:
    with pytest.raises(ApiException) as caught:
        _names(labelled, label_selector="tier in front")
    assert caught.value.status == 400
    assert status_of(caught.value)["reason"] == "BadRequest"


def test_unsupported_field_selector_is_a_400(labelled: KubeEnv) -> None:
    with pytest.raises(ApiException) as caught:
        _names(labelled, field_selector="data.k=v")
    assert caught.value.status == 400
