"""Property-based: any valid spec gives valid, unique names and exact selectors."""

from __future__ import annotations

from typing import Any

from disvc_world import OPTIONS, disvc
from hypothesis import given, settings
from hypothesis import strategies as st

from disvc.builders import desired, names
from disvc.builders.spec import InvalidSpec

DISVC_NAMES = st.from_regex(r"[a-z]([-a-z0-9]{0,48}[a-z0-9])?", fullmatch=True)
GENERATIONS = st.integers(min_value=1, max_value=10**6)
REPLICAS = st.integers(min_value=0, max_value=12)


def _matches(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return all(labels.get(key) == value for key, value in selector.items())


@settings(max_examples=60, deadline=None)
@given(name=DISVC_NAMES, generation=GENERATIONS, replicas=REPLICAS)
def test_child_names_fit_the_dns_limit_and_are_unique(name: str, generation: int, replicas: int) -> None:
    try:
        children = desired.children(disvc(name=name, namespace="ns", replicas=replicas), generation, OPTIONS)
    except InvalidSpec as problem:
        # only a huge generation number on a maximal name can overflow
        assert problem.field == "spec.replicas"
        assert len(names.isvc_name(name, generation, max(replicas - 1, 0))) > names.MAX_NAME_LENGTH
        return
    ids = [(c["kind"], c["metadata"]["name"]) for c in children]
    assert len(set(ids)) == len(ids)
    assert all(len(n) <= names.MAX_NAME_LENGTH for _, n in ids)
    assert sum(kind == "InferenceService" for kind, _ in ids) == replicas


@settings(max_examples=40, deadline=None)
@given(
    disvcs=st.lists(
        st.tuples(DISVC_NAMES.filter(lambda n: len(n) <= 40), st.integers(1, 30), st.integers(0, 4)),
        min_size=1,
        max_size=4,
        unique_by=lambda t: t[0],
    )
)
def test_selectors_match_exactly_the_intended_isvcs(disvcs: list[tuple[str, int, int]]) -> None:
    built: list[tuple[str, int, dict[str, Any]]] = []
    for name, generation, replicas in disvcs:
        for child in desired.children(disvc(name=name, replicas=replicas), generation, OPTIONS):
            built.append((name, generation, child))
    isvcs = [(n, g, c) for n, g, c in built if c["kind"] == "InferenceService"]
    isvc_names = [c["metadata"]["name"] for _, _, c in isvcs]
    assert len(set(isvc_names)) == len(isvc_names), "ISVC names collide across DISVCs"
    for owner, generation, child in built:
        if child["kind"] != "Service":
            continue
        selected = {c["metadata"]["name"] for _, _, c in isvcs if _matches(child["spec"]["selector"], c["metadata"]["labels"])}
        if child["metadata"]["name"] == owner:
            intended = {c["metadata"]["name"] for n, _, c in isvcs if n == owner}
        else:
            intended = {c["metadata"]["name"] for n, g, c in isvcs if n == owner and g == generation}
        assert selected == intended
    for name, _, _ in disvcs:
        status_selector = names.selector(name)
        key, value = status_selector.split("=")
        assert {c["metadata"]["name"] for _, _, c in isvcs if c["metadata"]["labels"].get(key) == value} == {
            c["metadata"]["name"] for n, _, c in isvcs if n == name
        }
