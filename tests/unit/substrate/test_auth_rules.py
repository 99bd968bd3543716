"""RBAC rule matching of the loopback API's SubjectAccessReview, as a table."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from disvc.testing.apiserver.auth import rule_allows


@dataclass(frozen=True)
class Case:
    id: str
    rule: dict[str, Any]
    attributes: dict[str, str]
    allowed: bool

    @property
    def resource_request(self) -> bool:
        return "path" not in self.attributes


URL = {"nonResourceURLs": ["/metrics"], "verbs": ["get"]}
PODS = {"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list"]}

CASES = [
    Case("exact url", URL, {"path": "/metrics", "verb": "get"}, True),
    Case("other verb on url", URL, {"path": "/metrics", "verb": "post"}, False),
    Case("url below an exact rule", URL, {"path": "/metrics/x", "verb": "get"}, False),
    Case("star suffix covers below", {"nonResourceURLs": ["/metrics*"], "verbs": ["get"]},
         {"path": "/metrics/slis", "verb": "get"}, True),
    Case("star alone covers all", {"nonResourceURLs": ["*"], "verbs": ["*"]}, {"path": "/x", "verb": "put"}, True),
    Case("resource rule never grants a url", {"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]},
         {"path": "/metrics", "verb": "get"}, False),
    Case("url rule never grants a resource", {"nonResourceURLs": ["*"], "verbs": ["*"]},
         {"verb": "get", "resource": "pods"}, False),
    Case("resource", PODS, {"verb": "list", "resource": "pods"}, True),
    Case("resource in another group", PODS, {"verb": "list", "group": "apps", "resource": "pods"}, False),
    Case("subresource needs its own grant", PODS, {"verb": "get", "resource": "pods", "subresource": "log"}, False),
    Case("star slash subresource", {"apiGroups": [""], "resources": ["*/status"], "verbs": ["get"]},
         {"verb": "get", "resource": "services", "subresource": "status"}, True),
    Case("star slash subresource is not the main resource",
         {"apiGroups": [""], "resources": ["*/status"], "verbs": ["get"]},
         {"verb": "get", "resource": "services"}, False),
    Case("resourceNames limit", {**PODS, "resourceNames": ["a"]}, {"verb": "get", "resource": "pods", "name": "b"},
         False),
    Case("resourceNames match", {**PODS, "resourceNames": ["a"]}, {"verb": "get", "resource": "pods", "name": "a"},
         True),
    Case("resourceNames never match a list", {**PODS, "resourceNames": ["a"]}, {"verb": "list", "resource": "pods"},
         False),
]


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_rule_matching(case: Case) -> None:
    assert rule_allows(case.rule, case.attributes, case.resource_request) is case.allowed
