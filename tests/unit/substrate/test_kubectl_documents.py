"""What kubectl reads before it acts: discovery, OpenAPI documents, Tables.

The end-to-end proof is tests/conformance/test_kubectl.py (the real kubectl
on both backends); these pin the pieces it relies on, quickly and without
the binary: every reference in an OpenAPI document resolves, every served
kind is findable by its group-version-kind, the protobuf v2 document holds
what the JSON one does, printer columns and ages read as kubectl prints them.
"""

from __future__ import annotations

import copy
import http.client
import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import pytest

from disvc.testing.apiserver import ApiServer, auth, discovery, jsonpath, tables
from disvc.testing.apiserver.openapi import documents, protobuf
from disvc.testing.apiserver.resources import Registry, crd_types

Obj = dict[str, Any]

WIDGET_CRD: Obj = {
    "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
    "metadata": {"name": "widgets.example.com"},
    "spec": {
        "group": "example.com", "scope": "Namespaced",
        "names": {"plural": "widgets", "singular": "widget", "kind": "Widget", "shortNames": ["wdg"]},
        "versions": [
            {"name": "v1beta1", "served": True, "storage": False,
             "schema": {"openAPIV3Schema": {"type": "object"}}},
            {"name": "v1", "served": True, "storage": True,
             "subresources": {"status": {}, "scale": {"specReplicasPath": ".spec.size",
                                                      "statusReplicasPath": ".status.size"}},
             "additionalPrinterColumns": [
                 {"name": "Size", "type": "integer", "jsonPath": ".spec.size"},
                 {"name": "Ready", "type": "string", "jsonPath": '.status.conditions[?(@.type=="Ready")].status'},
             ],
             "schema": {"openAPIV3Schema": {"type": "object", "properties": {
                 "spec": {"type": "object", "properties": {
                     "size": {"type": "integer"},
                     "port": {"x-kubernetes-int-or-string": True},
                     "tags": {"type": "array", "items": {"type": "string"}},
                     "extra": {"type": "object", "x-kubernetes-preserve-unknown-fields": True,
                               "properties": {"known": {"type": "string"}}},
                 }},
                 "status": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
             }}}},
        ],
    },
}


@pytest.fixture
def registry() -> Registry:
    served = Registry(auth.RESOURCE_TYPES)
    served.serve_crd(copy.deepcopy(WIDGET_CRD))
    return served


def _refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        own = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
        return own + [r for value in node.values() for r in _refs(value)]
    if isinstance(node, list):
        return [r for value in node for r in _refs(value)]
    return []


def test_discovery_prefers_ga_over_beta_over_alpha() -> None:
    versions = ["v1alpha1", "v2", "v1beta2", "v1", "v1beta1", "v2alpha1"]
    assert sorted(versions, key=discovery.version_priority) == [
        "v2", "v1", "v1beta2", "v1beta1", "v2alpha1", "v1alpha1",
    ]


def test_discovery_lists_a_crd_with_its_subresources_and_forgets_it(registry: Registry) -> None:
    group = discovery.api_group(registry, "example.com")
    assert group is not None and group["preferredVersion"]["version"] == "v1"
    listing = discovery.resource_list(registry, "example.com", "v1")
    assert listing is not None
    names = {r["name"]: r for r in listing["resources"]}
    assert names["widgets"]["shortNames"] == ["wdg"]
    assert names["widgets/scale"]["kind"] == "Scale"
    assert set(names) == {"widgets", "widgets/status", "widgets/scale"}
    registry.unserve_crd("widgets.example.com")
    assert discovery.api_group(registry, "example.com") is None
    assert "example.com" not in [g["name"] for g in discovery.api_group_list(registry)["groups"]]


def test_every_v3_reference_resolves(registry: Registry) -> None:
    for key in documents.group_version_keys(registry):
        doc = documents.v3_group_version(registry, key, "v1.30.0")
        assert doc is not None
        for ref in _refs(doc):
            assert ref.removeprefix("#/components/schemas/") in doc["components"]["schemas"], f"{key}: {ref}"


def test_every_served_kind_has_its_schema_and_a_patch_operation_taking_field_validation(
    registry: Registry,
) -> None:
    for rt in registry.types():
        key = f"apis/{rt.group}/{rt.version}" if rt.group else f"api/{rt.version}"
        doc = documents.v3_group_version(registry, key, "v1.30.0")
        assert doc is not None
        gvk = {"group": rt.group, "version": rt.version, "kind": rt.kind}
        assert [s for s in doc["components"]["schemas"].values()
                if gvk in s.get("x-kubernetes-group-version-kind", [])], f"no schema for {rt.kind}"
        patches = [item["patch"] for item in doc["paths"].values()
                   if item.get("patch", {}).get("x-kubernetes-group-version-kind") == gvk]
        assert patches, f"no PATCH operation for {rt.kind}"
        assert all("fieldValidation" in [p["name"] for p in op["parameters"]] for op in patches)


def test_a_crd_schema_is_published_with_object_meta_and_its_kind(registry: Registry) -> None:
    doc = documents.v3_group_version(registry, "apis/example.com/v1", "v1.30.0")
    assert doc is not None
    widget = doc["components"]["schemas"]["com.example.v1.Widget"]
    assert widget["x-kubernetes-group-version-kind"] == [{"group": "example.com", "version": "v1", "kind": "Widget"}]
    assert widget["properties"]["metadata"]["allOf"] == [
        {"$ref": "#/components/schemas/io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"}
    ]
    assert widget["properties"]["spec"]["properties"]["size"] == {"type": "integer"}
    assert "com.example.v1.WidgetList" in doc["components"]["schemas"]


def test_the_v3_index_hash_changes_with_the_crd(registry: Registry) -> None:
    publisher = documents.Publisher(registry, "v1.30.0")
    before = json.loads(publisher.v3_index())["paths"]["apis/example.com/v1"]["serverRelativeURL"]
    changed = copy.deepcopy(WIDGET_CRD)
    changed["spec"]["versions"][1]["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]["color"] = {
        "type": "string"
    }
    registry.serve_crd(changed)
    after = json.loads(publisher.v3_index())["paths"]["apis/example.com/v1"]["serverRelativeURL"]
    assert before != after
    assert b'"color"' in (publisher.v3_group_version("apis/example.com/v1") or b"")


def _fields(data: bytes) -> list[tuple[int, bytes | int]]:
    """Decode one protobuf message level: (field number, payload) pairs."""
    out: list[tuple[int, bytes | int]] = []
    position = 0

    def varint() -> int:
        nonlocal position
        shift = value = 0
        while True:
            byte = data[position]
            position += 1
            value |= (byte & 0x7F) << shift
            shift += 7
            if not byte & 0x80:
                return value

    while position < len(data):
        key = varint()
        number, wire = key >> 3, key & 7
        if wire == 0:
            out.append((number, varint()))
        elif wire == 2:
            length = varint()
            out.append((number, data[position:position + length]))
            position += length
        else:
            raise AssertionError(f"unexpected wire type {wire}")
    return out


def test_the_protobuf_v2_document_names_the_same_definitions_as_the_json_one(registry: Registry) -> None:
    swagger = documents.v2(registry, "v1.30.0")
    message = _fields(protobuf.document(swagger))
    assert (1, b"2.0") in message
    definitions = next(payload for number, payload in message if number == 9)
    assert isinstance(definitions, bytes)
    names = []
    for _, named in _fields(definitions):
        assert isinstance(named, bytes)
        names.append(next(p for n, p in _fields(named) if n == 1))
    assert [n.decode() for n in names if isinstance(n, bytes)] == list(swagger["definitions"])


def test_the_v2_document_has_no_schema_kubectl_would_refuse(registry: Registry) -> None:
    # kubectl's v2 parser refuses arrays without items, references with a
    # type, and properties a schema that keeps unknown fields would not check
    definitions = documents.v2(registry, "v1.30.0")["definitions"]

    def check(node: Any, path: str) -> None:
        if not isinstance(node, dict):
            return
        if node.get("type") == "array":
            assert isinstance(node.get("items"), dict), f"{path}: array without items"
        if "$ref" in node:
            assert "type" not in node and "properties" not in node, f"{path}: $ref with a type"
            assert node["$ref"].startswith("#/definitions/") and node["$ref"][14:] in definitions, path
        for key in ("oneOf", "anyOf", "nullable"):
            assert key not in node, f"{path}: {key}"
        for name, sub in (node.get("properties") or {}).items():
            check(sub, f"{path}.{name}")
        check(node.get("items"), f"{path}[]")
        check(node.get("additionalProperties"), f"{path}{{}}")

    for name, schema in definitions.items():
        check(schema, name)
    extra = definitions["com.example.v1.Widget"]["properties"]["spec"]["properties"]["extra"]
    assert "properties" not in extra


@dataclass(frozen=True, slots=True)
class Age:
    seconds: int
    shown: str


@pytest.mark.parametrize("case", [
    Age(0, "0s"), Age(45, "45s"), Age(119, "119s"), Age(120, "2m"), Age(330, "5m30s"), Age(600, "10m"),
    Age(3 * 3600, "3h"), Age(3 * 3600 + 60, "3h1m"), Age(30 * 3600, "30h"), Age(3 * 86400 + 4 * 3600, "3d4h"),
    Age(30 * 86400, "30d"), Age(3 * 365 * 86400, "3y"), Age(3 * 365 * 86400 + 86400, "3y1d"),
], ids=lambda c: c.shown)
def test_ages_read_as_kubectl_prints_them(case: Age) -> None:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    created = (now - timedelta(seconds=case.seconds)).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert tables.human_age(created, now) == case.shown


def test_kubectls_accept_header_asks_for_a_table_and_a_plain_one_does_not() -> None:
    kubectl = ("application/json;as=Table;v=v1;g=meta.k8s.io,"
               "application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json")
    assert tables.wants_table(kubectl)
    assert not tables.wants_table("application/json")
    assert not tables.wants_table("application/json, application/json;as=Table;v=v1;g=meta.k8s.io")


def test_printer_columns_follow_the_crd(registry: Registry) -> None:
    rt = next(t for t in crd_types(WIDGET_CRD) if t.version == "v1")
    printer = tables.printer(rt)
    assert [c["name"] for c in printer.columns] == ["Name", "Size", "Ready"]
    ready = {"metadata": {"name": "a"}, "spec": {"size": 3},
             "status": {"conditions": [{"type": "Synced", "status": "False"}, {"type": "Ready", "status": "True"}]}}
    assert printer.cells(ready) == ["a", 3, "True"]
    assert printer.cells({"metadata": {"name": "b"}}) == ["b", None, None]
    older = next(t for t in crd_types(WIDGET_CRD) if t.version == "v1beta1")
    assert [c["name"] for c in tables.printer(older).columns] == ["Name", "Age"]


@pytest.mark.parametrize(("path", "want"), [
    (".spec.size", [3]),
    (".spec.tags[1]", ["b"]),
    (".spec.tags[*]", ["a", "b"]),
    ("{.metadata['name']}", ["w"]),
    ('.status.conditions[?(@.type=="Ready")].status', ["True"]),
    (".spec.missing", []),
])
def test_jsonpath_reaches_what_printer_columns_name(path: str, want: list[Any]) -> None:
    obj = {"metadata": {"name": "w"}, "spec": {"size": 3, "tags": ["a", "b"]},
           "status": {"conditions": [{"type": "Ready", "status": "True"}]}}
    assert jsonpath.find(jsonpath.parse(path), obj) == want


def _raw(url: str, method: str, path: str, headers: dict[str, str], body: bytes = b"") -> tuple[int, str, bytes]:
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=10)
    try:
        conn.request(method, path, body=body or None, headers=headers)
        response = conn.getresponse()
        return response.status, response.getheader("Content-Type", ""), response.read()
    finally:
        conn.close()


def test_openapi_v2_in_protobuf_is_labelled_with_a_media_type_go_can_parse() -> None:
    with ApiServer() as server:
        for asked in protobuf.REQUESTED_MEDIA_TYPES:
            status, content_type, body = _raw(server.url, "GET", "/openapi/v2", {"Accept": asked})
            assert status == 200
            assert content_type == "application/com.github.proto-openapi.spec.v2.v1.0+protobuf"
            assert (1, b"2.0") in _fields(body)


def test_a_protobuf_body_is_refused_with_415_naming_what_is_accepted() -> None:
    with ApiServer() as server:
        status, _, body = _raw(
            server.url, "POST", "/api/v1/namespaces/default/configmaps",
            {"Content-Type": "application/vnd.kubernetes.protobuf"}, b"k8s\x00\x0a\x0f",
        )
    assert status == 415
    assert "application/json" in json.loads(body)["message"]
