"""A LIST answer decoded item by item equals ``json.loads`` of it, and each
item meets the transform before the next one is decoded."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from disvc.builders.types import Obj
from disvc.controller.kube import lists

scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8)
values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3), max_leaves=12)
items = st.lists(st.dictionaries(st.text(max_size=6), values, max_size=4), max_size=5)


@settings(max_examples=200, deadline=None)
@given(
    items=items,
    metadata=st.dictionaries(st.sampled_from(["resourceVersion", "continue", "remainingItemCount"]), scalars),
    others=st.dictionaries(st.sampled_from(["kind", "apiVersion", "extra"]), values),
    items_first=st.booleans(),
    indent=st.sampled_from([None, 1, "\t"]),
)
def test_item_by_item_equals_json_loads(
    items: list[Obj], metadata: Obj, others: Obj, items_first: bool, indent: Any
) -> None:
    doc: Obj = {"items": items, "metadata": metadata, **others} if items_first else {**others, "metadata": metadata, "items": items}
    body = json.dumps(doc, indent=indent).encode()
    decoded, meta = lists.decode(body, lambda item: item)
    assert decoded == json.loads(body)["items"]
    assert meta == metadata


def test_each_item_goes_through_the_transform_in_order() -> None:
    body = b'{"kind":"ServiceList","apiVersion":"v1","metadata":{"resourceVersion":"7"},"items":[{"n":1},{"n":2}]}'
    seen: list[int] = []

    def shrink(item: Obj) -> Obj:
        seen.append(item["n"])
        return {"kept": item["n"] * 10}

    decoded, meta = lists.decode(body, shrink)
    assert decoded == [{"kept": 10}, {"kept": 20}]
    assert seen == [1, 2]
    assert meta == {"resourceVersion": "7"}


@pytest.mark.parametrize("body", [b'{"items": null, "metadata": {}}', b"{}", b' { "items" : [ ] } '])
def test_empty_and_null_item_lists(body: bytes) -> None:
    assert lists.decode(body, lambda item: item)[0] == []


@pytest.mark.parametrize("body", [b"", b"[]", b'{"items":[{"a":1} {"b":2}]}', b'{"items":[1,2', b'{"metadata":{}'])
def test_a_body_that_is_not_a_json_object_is_refused(body: bytes) -> None:
    with pytest.raises(ValueError):
        lists.decode(body, lambda item: item)
