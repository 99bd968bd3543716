"""The loopback API server validates, defaults and prunes as kube-apiserver does."""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

import pytest
import yaml

from disvc.testing.apiserver.validation import (
    Cause,
    SchemaValidator,
    default_builtin,
    validate_builtin,
    validate_metadata,
)
from disvc.testing.fixtures import kserve_crd_or_skip


def spec_schema(**properties: Any) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": {"spec": {"type": "object", "properties": properties}},
    }


def with_spec(**spec: Any) -> dict[str, Any]:
    return {"apiVersion": "x/v1", "kind": "X", "metadata": {"name": "a"}, "spec": spec}


@dataclass(frozen=True)
class Case:
    id: str
    schema: dict[str, Any]
    value: Any
    want: list[Cause]


def invalid(field: str, message: str) -> Cause:
    return Cause("FieldValueInvalid", field, message)


KEYWORD_CASES = [
    Case(
        "minimum",
        {"type": "integer", "minimum": 0},
        -1,
        [invalid("spec.v", "Invalid value: -1: spec.v in body should be greater than or equal to 0")],
    ),
    Case(
        "exclusiveMinimum",
        {"type": "integer", "minimum": 0, "exclusiveMinimum": True},
        0,
        [invalid("spec.v", "Invalid value: 0: spec.v in body should be greater than 0")],
    ),
    Case(
        "maximum",
        {"type": "number", "maximum": 1.5},
        2.5,
        [invalid("spec.v", "Invalid value: 2.5: spec.v in body should be less than or equal to 1.5")],
    ),
    Case(
        "exclusiveMaximum",
        {"type": "integer", "maximum": 10, "exclusiveMaximum": True},
        10,
        [invalid("spec.v", "Invalid value: 10: spec.v in body should be less than 10")],
    ),
    Case(
        "type",
        {"type": "integer"},
        "three",
        [
            Cause(
                "FieldValueTypeInvalid",
                "spec.v",
                'Invalid value: "string": spec.v in body must be of type integer: "string"',
            )
        ],
    ),
    Case("integral float is an integer", {"type": "integer"}, 3.0, []),
    Case(
        "enum",
        {"type": "string", "enum": ["A", "B"]},
        "C",
        [Cause("FieldValueNotSupported", "spec.v", 'Unsupported value: "C": supported values: "A", "B"')],
    ),
    Case(
        "maxLength",
        {"type": "string", "maxLength": 3},
        "abcd",
        [Cause("FieldValueTooLong", "spec.v", "Too long: may not be more than 3 bytes")],
    ),
    Case(
        "minLength",
        {"type": "string", "minLength": 2},
        "a",
        [invalid("spec.v", 'Invalid value: "a": spec.v in body should be at least 2 chars long')],
    ),
    Case(
        "pattern",
        {"type": "string", "pattern": "^[a-z]+$"},
        "A1",
        [invalid("spec.v", "Invalid value: \"A1\": spec.v in body should match '^[a-z]+$'")],
    ),
    Case(
        "maxItems",
        {"type": "array", "maxItems": 1, "items": {"type": "string"}},
        ["a", "b"],
        [Cause("FieldValueTooMany", "spec.v", "Too many: 2: must have at most 1 item")],
    ),
    Case(
        "minItems",
        {"type": "array", "minItems": 2, "items": {"type": "string"}},
        ["a"],
        [invalid("spec.v", "Invalid value: 1: spec.v in body should have at least 2 items")],
    ),
    Case(
        "maxProperties",
        {"type": "object", "maxProperties": 1, "additionalProperties": {"type": "string"}},
        {"a": "1", "b": "2"},
        [Cause("FieldValueTooMany", "spec.v", "Too many: 2: must have at most 1 item")],
    ),
    Case(
        "minProperties",
        {"type": "object", "minProperties": 1, "additionalProperties": {"type": "string"}},
        {},
        [invalid("spec.v", "Invalid value: 0: spec.v in body should have at least 1 properties")],
    ),
    Case(
        "required",
        {"type": "object", "required": ["name"], "properties": {"name": {"type": "string"}}},
        {},
        [Cause("FieldValueRequired", "spec.v.name", "Required value")],
    ),
    Case("int-or-string accepts a string", {"x-kubernetes-int-or-string": True}, "80%", []),
    Case("int-or-string accepts an int", {"x-kubernetes-int-or-string": True}, 80, []),
    Case(
        "int-or-string rejects a bool",
        {"x-kubernetes-int-or-string": True},
        True,
        [
            Cause(
                "FieldValueTypeInvalid",
                "spec.v",
                'Invalid value: "boolean": spec.v in body must be of type integer,string: "boolean"',
            )
        ],
    ),
    Case("nullable accepts null", {"type": "string", "nullable": True}, None, []),
    Case(
        "list items get indexed paths",
        {"type": "array", "items": {"type": "integer", "minimum": 1}},
        [1, 0],
        [invalid("spec.v[1]", "Invalid value: 0: spec.v[1] in body should be greater than or equal to 1")],
    ),
    Case(
        "anyOf",
        {
            "x-kubernetes-int-or-string": True,
            "anyOf": [{"type": "integer"}, {"type": "string", "pattern": "^[0-9]+%$"}],
        },
        "ten",
        [invalid("spec.v", 'Invalid value: "ten": spec.v in body must validate at least one schema (anyOf)')],
    ),
    Case(
        "set lists reject duplicates",
        {"type": "array", "x-kubernetes-list-type": "set", "items": {"type": "string"}},
        ["a", "a"],
        [Cause("FieldValueDuplicate", "spec.v[1]", 'Duplicate value: "a"')],
    ),
]


@pytest.mark.parametrize("case", KEYWORD_CASES, ids=lambda c: c.id)
def test_schema_keyword_produces_kubernetes_cause(case: Case) -> None:
    validator = SchemaValidator(spec_schema(v=case.schema))
    assert validator.validate(with_spec(v=case.value)) == case.want


CEL_CASES = [
    Case(
        "rule passes",
        {"type": "object", "x-kubernetes-validations": [{"rule": "self.min <= self.max"}]},
        {"min": 1, "max": 2},
        [],
    ),
    Case(
        "rule fails with its message",
        {"type": "object", "x-kubernetes-validations": [{"rule": "self.min <= self.max", "message": "min above max"}]},
        {"min": 3, "max": 2},
        [invalid("spec.v", 'Invalid value: "object": min above max')],
    ),
    Case(
        "rule fails without a message",
        {"type": "object", "x-kubernetes-validations": [{"rule": "!(has(self.a) && has(self.b))"}]},
        {"a": 1, "b": 2},
        [invalid("spec.v", 'Invalid value: "object": failed rule: !(has(self.a) && has(self.b))')],
    ),
    Case(
        "fieldPath and reason",
        {
            "type": "object",
            "x-kubernetes-validations": [
                {
                    "rule": "size(self.name) < 4",
                    "message": "too long",
                    "fieldPath": ".name",
                    "reason": "FieldValueForbidden",
                }
            ],
        },
        {"name": "abcdef"},
        [Cause("FieldValueForbidden", "spec.v.name", "Forbidden: too long")],
    ),
    Case(
        "messageExpression",
        {
            "type": "integer",
            "x-kubernetes-validations": [{"rule": "self < 10", "messageExpression": "'got ' + string(self)"}],
        },
        12,
        [invalid("spec.v", 'Invalid value: "integer": got 12')],
    ),
    Case(
        "Kubernetes string extensions",
        {
            "type": "string",
            "x-kubernetes-validations": [{"rule": "self.lowerAscii().startsWith('ab') && self.matches('^[A-Za-z]+$')"}],
        },
        "ABc",
        [],
    ),
    Case(
        "missing key is an evaluation error",
        {"type": "object", "x-kubernetes-validations": [{"rule": "self.x == 1"}]},
        {"y": 1},
        [invalid("spec.v", 'Invalid value: "object": no such key: x evaluating rule: self.x == 1')],
    ),
    Case(
        "transition rule skipped on create",
        {"type": "integer", "x-kubernetes-validations": [{"rule": "self >= oldSelf", "message": "may not decrease"}]},
        1,
        [],
    ),
]


@pytest.mark.parametrize("case", CEL_CASES, ids=lambda c: c.id)
def test_cel_validation_rules(case: Case) -> None:
    validator = SchemaValidator(spec_schema(v=case.schema))
    assert validator.validate(with_spec(v=case.value)) == case.want


def test_cel_transition_rule_compares_with_the_old_object() -> None:
    schema = {
        "type": "integer",
        "x-kubernetes-validations": [{"rule": "self >= oldSelf", "message": "may not decrease"}],
    }
    validator = SchemaValidator(spec_schema(v=schema))
    assert validator.validate(with_spec(v=2), old=with_spec(v=1)) == []
    assert validator.validate(with_spec(v=1), old=with_spec(v=2)) == [
        invalid("spec.v", 'Invalid value: "integer": may not decrease')
    ]


# ----------------------------------------------------------- prune / default


PRUNE_SCHEMA = {
    "type": "object",
    "properties": {
        "spec": {
            "type": "object",
            "properties": {
                "known": {"type": "string"},
                "free": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
                "labels": {"type": "object", "additionalProperties": {"type": "string"}},
                "template": {
                    "type": "object",
                    "x-kubernetes-embedded-resource": True,
                    "properties": {"spec": {"type": "object"}},
                },
            },
        }
    },
}


def test_prune_drops_unknown_fields_and_keeps_declared_ones() -> None:
    obj = {
        "apiVersion": "x/v1",
        "kind": "X",
        "metadata": {"name": "a", "bogus": 1},
        "extra": 1,
        "spec": {
            "known": "k",
            "unknown": "u",
            "free": {"anything": {"deep": 1}},
            "labels": {"a": "1"},
            "template": {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": {}, "junk": 1},
        },
    }
    original = copy.deepcopy(obj)
    assert SchemaValidator(PRUNE_SCHEMA).prune(obj) == {
        "apiVersion": "x/v1",
        "kind": "X",
        "metadata": {"name": "a"},
        "spec": {
            "known": "k",
            "free": {"anything": {"deep": 1}},
            "labels": {"a": "1"},
            "template": {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": {}},
        },
    }
    assert obj == original


DEFAULT_SCHEMA = spec_schema(
    replicas={"type": "integer", "default": 1},
    ingress={
        "type": "object",
        "properties": {"enabled": {"type": "boolean", "default": True}, "host": {"type": "string"}},
    },
    items={"type": "array", "items": {"type": "object", "properties": {"port": {"type": "integer", "default": 80}}}},
)


@pytest.mark.parametrize(
    ("spec", "want"),
    [
        ({}, {"replicas": 1}),
        ({"replicas": 3}, {"replicas": 3}),
        ({"ingress": {}}, {"replicas": 1, "ingress": {"enabled": True}}),
        ({"ingress": {"enabled": False}}, {"replicas": 1, "ingress": {"enabled": False}}),
        ({"replicas": None}, {"replicas": 1}),
        ({"ingress": {"host": None}}, {"replicas": 1, "ingress": {"enabled": True}}),
        ({"items": [{}, {"port": 81}]}, {"replicas": 1, "items": [{"port": 80}, {"port": 81}]}),
    ],
    ids=["absent", "set", "parent exists", "explicit false", "null replaced", "null dropped", "list items"],
)
def test_defaults_apply_where_the_parent_exists(spec: dict[str, Any], want: dict[str, Any]) -> None:
    assert SchemaValidator(DEFAULT_SCHEMA).default(with_spec(**spec))["spec"] == want


# ------------------------------------------------------------ KServe ISVC CRD


@pytest.fixture(scope="module")
def isvc_validator() -> SchemaValidator:
    crd = yaml.load(kserve_crd_or_skip().read_text(), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    version = next(v for v in crd["spec"]["versions"] if v["name"] == "v1beta1")
    return SchemaValidator(version["schema"]["openAPIV3Schema"])


TYPICAL_ISVC: dict[str, Any] = {
    "apiVersion": "serving.kserve.io/v1beta1",
    "kind": "InferenceService",
    "metadata": {
        "name": "m-v1-0",
        "namespace": "ns",
        "annotations": {"serving.kserve.io/deploymentMode": "RawDeployment"},
    },
    "spec": {
        "predictor": {
            "minReplicas": 1,
            "model": {
                "modelFormat": {"name": "sklearn"},
                "storageUri": "gs://kfserving-examples/models/sklearn/1.0/model",
                "args": ["--model_name=m"],
                "ports": [{"containerPort": 8080, "name": "h2c"}],
            },
        }
    },
}


def test_kserve_schema_accepts_a_typical_isvc(isvc_validator: SchemaValidator) -> None:
    obj = isvc_validator.default(isvc_validator.prune(TYPICAL_ISVC))
    assert isvc_validator.validate(obj) == []
    assert obj["spec"]["predictor"]["model"]["args"] == ["--model_name=m"]


def test_kserve_schema_rejects_a_wrong_type(isvc_validator: SchemaValidator) -> None:
    bad = copy.deepcopy(TYPICAL_ISVC)
    bad["spec"]["predictor"]["model"]["args"] = "--model_name=m"
    assert isvc_validator.validate(bad) == [
        Cause(
            "FieldValueTypeInvalid",
            "spec.predictor.model.args",
            'Invalid value: "string": spec.predictor.model.args in body must be of type array: "string"',
        )
    ]


def test_kserve_schema_requires_container_port(isvc_validator: SchemaValidator) -> None:
    bad = copy.deepcopy(TYPICAL_ISVC)
    bad["spec"]["predictor"]["model"]["ports"] = [{"name": "h2c"}]
    assert Cause(
        "FieldValueRequired", "spec.predictor.model.ports[0].containerPort", "Required value"
    ) in isvc_validator.validate(bad)


# ------------------------------------------------------------- metadata


@pytest.mark.parametrize(
    ("metadata", "dns1035", "want"),
    [
        ({"name": "web-1"}, False, []),
        ({"generateName": "web-"}, False, []),
        ({}, False, [Cause("FieldValueRequired", "metadata.name", "Required value: name or generateName is required")]),
        (
            {"name": "Web"},
            False,
            [
                invalid(
                    "metadata.name",
                    'Invalid value: "Web": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric '
                    "characters, '-' or '.', and must start and end with an alphanumeric character (e.g. "
                    "'example.com', regex used for validation is "
                    "'[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')",
                )
            ],
        ),
        (
            {"name": "1web"},
            True,
            [
                invalid(
                    "metadata.name",
                    'Invalid value: "1web": a DNS-1035 label must consist of lower case alphanumeric characters '
                    "or '-', start with an alphabetic character, and end with an alphanumeric character (e.g. "
                    "'my-name',  or 'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')",
                )
            ],
        ),
        (
            {"name": "a" * 64},
            True,
            [invalid("metadata.name", f'Invalid value: "{"a" * 64}": must be no more than 63 characters')],
        ),
        ({"name": "a", "labels": {"disvc": "x", "example.com/group": "x-v1"}}, False, []),
        (
            {"name": "a", "labels": {"k": "bad value"}},
            False,
            [
                invalid(
                    "metadata.labels",
                    'Invalid value: "bad value": a valid label must be an empty string or consist of alphanumeric '
                    "characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. "
                    "'MyValue',  or 'my_value',  or '12345', regex used for validation is "
                    "'(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')",
                )
            ],
        ),
        (
            {"name": "a", "annotations": {"bad key!": "v"}},
            False,
            [
                invalid(
                    "metadata.annotations",
                    "Invalid value: \"bad key!\": name part must consist of alphanumeric characters, '-', '_' or '.', "
                    "and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or "
                    "'123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')",
                )
            ],
        ),
    ],
    ids=[
        "valid",
        "generateName",
        "no name",
        "uppercase",
        "dns1035 digit",
        "too long",
        "labels ok",
        "label value",
        "annotation key",
    ],
)
def test_metadata_validation_messages(metadata: dict[str, Any], dns1035: bool, want: list[Cause]) -> None:
    assert validate_metadata({"metadata": metadata}, dns1035=dns1035) == want


# ------------------------------------------------------------- built-ins


def svc(**spec: Any) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web", "namespace": "ns"}, "spec": spec}


def ingress_path(**entry: Any) -> dict[str, Any]:
    return {"spec": {"rules": [{"host": "a.example.com", "http": {"paths": [entry]}}]}}


GOOD_BACKEND = {"service": {"name": "web-v1", "port": {"number": 80}}}

BUILTIN_CASES: list[tuple[str, dict[str, Any], list[Cause]]] = [
    ("Service", svc(ports=[{"port": 80, "targetPort": 8080}], selector={"disvc": "a"}, sessionAffinity="ClientIP"), []),
    ("Service", svc(), [Cause("FieldValueRequired", "spec.ports", "Required value")]),
    (
        "Service",
        svc(ports=[{"port": 0}]),
        [invalid("spec.ports[0].port", "Invalid value: 0: must be between 1 and 65535, inclusive")],
    ),
    (
        "Service",
        svc(ports=[{"port": 80, "targetPort": 70000}]),
        [invalid("spec.ports[0].targetPort", "Invalid value: 70000: must be between 1 and 65535, inclusive")],
    ),
    (
        "Service",
        svc(ports=[{"port": 80}], type="Magic"),
        [
            Cause(
                "FieldValueNotSupported",
                "spec.type",
                'Unsupported value: "Magic": supported values: "ClusterIP", "ExternalName", "LoadBalancer", "NodePort"',
            )
        ],
    ),
    (
        "Service",
        svc(ports=[{"port": 80}], sessionAffinity="Sticky"),
        [
            Cause(
                "FieldValueNotSupported",
                "spec.sessionAffinity",
                'Unsupported value: "Sticky": supported values: "ClientIP", "None"',
            )
        ],
    ),
    (
        "Service",
        svc(ports=[{"port": 80}, {"port": 81}]),
        [
            Cause("FieldValueRequired", "spec.ports[0].name", "Required value"),
            Cause("FieldValueRequired", "spec.ports[1].name", "Required value"),
        ],
    ),
    ("Ingress", ingress_path(path="/", pathType="Prefix", backend=GOOD_BACKEND), []),
    (
        "Ingress",
        ingress_path(path="/", backend=GOOD_BACKEND),
        [
            Cause(
                "FieldValueRequired",
                "spec.rules[0].http.paths[0].pathType",
                "Required value: pathType must be specified",
            )
        ],
    ),
    (
        "Ingress",
        ingress_path(path="/", pathType="Glob", backend=GOOD_BACKEND),
        [
            Cause(
                "FieldValueNotSupported",
                "spec.rules[0].http.paths[0].pathType",
                'Unsupported value: "Glob": supported values: "Exact", "ImplementationSpecific", "Prefix"',
            )
        ],
    ),
    (
        "Ingress",
        ingress_path(path="/", pathType="Prefix", backend={"service": {"port": {"number": 80}}}),
        [Cause("FieldValueRequired", "spec.rules[0].http.paths[0].backend.service.name", "Required value")],
    ),
    (
        "Lease",
        {"spec": {"holderIdentity": "a", "leaseDurationSeconds": 0}},
        [invalid("spec.leaseDurationSeconds", "Invalid value: 0: must be greater than 0")],
    ),
    ("Event", {"metadata": {"namespace": "ns"}}, [Cause("FieldValueRequired", "involvedObject", "Required value")]),
    (
        "Namespace",
        {"metadata": {"name": "a.b"}},
        [
            invalid(
                "metadata.name",
                "Invalid value: \"a.b\": a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')",
            )
        ],
    ),
]


@pytest.mark.parametrize(
    ("kind", "obj", "want"), BUILTIN_CASES, ids=[f"{i}-{c[0]}" for i, c in enumerate(BUILTIN_CASES)]
)
def test_builtin_validation(kind: str, obj: dict[str, Any], want: list[Cause]) -> None:
    assert validate_builtin(kind, obj) == want


def test_service_defaults() -> None:
    given = svc(ports=[{"port": 80}], sessionAffinity="ClientIP")
    defaulted = default_builtin("Service", given)
    assert defaulted["spec"] == {
        "ports": [{"port": 80, "protocol": "TCP", "targetPort": 80}],
        "sessionAffinity": "ClientIP",
        "sessionAffinityConfig": {"clientIP": {"timeoutSeconds": 10800}},
        "type": "ClusterIP",
        "internalTrafficPolicy": "Cluster",
        "ipFamilyPolicy": "SingleStack",
        "ipFamilies": ["IPv4"],
    }
    assert given == svc(ports=[{"port": 80}], sessionAffinity="ClientIP")


def test_ingress_path_type_is_not_defaulted() -> None:
    given = ingress_path(path="/", backend=GOOD_BACKEND)
    assert default_builtin("Ingress", given) == given
