"""TokenRequest, TokenReview and SubjectAccessReview, through the plain client.

A component that guards its own endpoint (the controller's secure
``/metrics``) asks the API server who a bearer token belongs to and whether
RBAC lets that identity do something. These tests pin down the answers a
real kube-apiserver gives, so the loopback API gives the same ones.
"""

from __future__ import annotations

import pytest
from kubernetes.client.exceptions import ApiException

from disvc.testing.accounts import Accounts
from disvc.testing.fixtures import KubeEnv, eventually

METRICS_READER_RULES = [{"nonResourceURLs": ["/metrics"], "verbs": ["get"]}]


def test_a_service_account_token_reviews_as_that_account(accounts: Accounts) -> None:
    account = accounts.service_account("scraper")
    review = accounts.token_review(accounts.token("scraper"))

    status = review["status"]
    assert review["kind"] == "TokenReview"
    assert status["authenticated"] is True
    assert status["user"]["username"] == f"system:serviceaccount:{accounts.namespace}:scraper"
    assert status["user"]["uid"] == account["metadata"]["uid"]
    assert set(status["user"]["groups"]) == {
        "system:serviceaccounts", f"system:serviceaccounts:{accounts.namespace}", "system:authenticated",
    }


def test_an_unknown_token_is_not_authenticated(accounts: Accounts) -> None:
    status = accounts.token_review("not-a-token-anyone-issued")["status"]
    assert not status.get("authenticated")
    assert not status.get("user", {}).get("username")
    assert status.get("error")


def test_a_token_stops_authenticating_once_its_account_is_deleted(accounts: Accounts) -> None:
    accounts.service_account("gone")
    token = accounts.token("gone")
    accounts.call("DELETE", f"/api/v1/namespaces/{accounts.namespace}/serviceaccounts/gone")

    def refused() -> None:
        assert not accounts.token_review(token)["status"].get("authenticated")

    # kube-apiserver looks the account up in its own informer's cache first,
    # so for a moment after the delete the token may still pass
    eventually(refused, timeout=15)


def test_a_token_for_another_audience_is_not_authenticated(accounts: Accounts) -> None:
    accounts.service_account("elsewhere")
    token = accounts.token("elsewhere", audiences=["https://vault.example"])

    assert not accounts.token_review(token)["status"].get("authenticated")
    matching = accounts.token_review(token, audiences=["https://vault.example"])["status"]
    assert matching["authenticated"] is True
    assert matching["audiences"] == ["https://vault.example"]


def test_a_token_cannot_be_requested_for_a_missing_account(accounts: Accounts) -> None:
    with pytest.raises(ApiException) as raised:
        accounts.token("nobody")
    assert raised.value.status == 404


def test_a_token_review_needs_a_token(accounts: Accounts) -> None:
    with pytest.raises(ApiException) as raised:
        accounts.token_review("")
    assert raised.value.status == 400


def test_the_clients_own_token_reviews_as_an_authenticated_user(kube: KubeEnv, accounts: Accounts) -> None:
    header = kube.api_client.configuration.api_key.get("BearerToken") or ""
    token = header.removeprefix("Bearer ").strip()
    if not token:
        pytest.skip("this kubeconfig authenticates without a bearer token")
    status = accounts.token_review(token)["status"]
    assert status["authenticated"] is True
    assert "system:authenticated" in status["user"]["groups"]


def test_a_cluster_role_binding_grants_a_non_resource_url(accounts: Accounts) -> None:
    accounts.service_account("reader")
    accounts.service_account("stranger")
    accounts.bind_cluster_role(accounts.cluster_role("metrics-reader", METRICS_READER_RULES), "reader")

    assert accounts.may("reader", path="/metrics", verb="get")
    assert not accounts.may("reader", path="/metrics", verb="post")
    assert not accounts.may("reader", path="/metrics/extra", verb="get")
    assert not accounts.may("stranger", path="/metrics", verb="get")


def test_a_trailing_star_matches_every_url_below_it(accounts: Accounts) -> None:
    accounts.service_account("prefix")
    accounts.bind_cluster_role(accounts.cluster_role("below", [{"nonResourceURLs": ["/debug/*"], "verbs": ["get"]}]), "prefix")

    assert accounts.may("prefix", path="/debug/pprof/heap", verb="get")
    assert not accounts.may("prefix", path="/metrics", verb="get")


def test_a_role_binding_never_grants_a_non_resource_url(accounts: Accounts) -> None:
    accounts.service_account("namespaced")
    role = accounts.cluster_role("ns-metrics", METRICS_READER_RULES)
    accounts.bind_role("ClusterRole", role, "namespaced")

    assert not accounts.may("namespaced", path="/metrics", verb="get")


def test_a_role_binding_grants_resources_in_its_namespace_only(accounts: Accounts) -> None:
    accounts.service_account("lister")
    accounts.role("pod-reader", [
        {"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list"]},
        {"apiGroups": ["apps"], "resources": ["*/scale"], "verbs": ["update"]},
        {"apiGroups": [""], "resources": ["configmaps"], "resourceNames": ["settings"], "verbs": ["get"]},
    ])
    accounts.bind_role("Role", "pod-reader", "lister")
    ns = accounts.namespace

    assert accounts.may("lister", namespace=ns, verb="list", resource="pods")
    assert not accounts.may("lister", namespace="default", verb="list", resource="pods")
    assert not accounts.may("lister", namespace=ns, verb="delete", resource="pods")
    assert not accounts.may("lister", namespace=ns, verb="get", group="apps", resource="deployments")
    assert accounts.may("lister", namespace=ns, verb="update", group="apps", resource="deployments", subresource="scale")
    assert accounts.may("lister", namespace=ns, verb="get", resource="configmaps", name="settings")
    assert not accounts.may("lister", namespace=ns, verb="get", resource="configmaps", name="other")


def test_every_authenticated_user_may_read_the_health_urls(accounts: Accounts) -> None:
    accounts.service_account("anyone")
    assert accounts.may("anyone", path="/healthz", verb="get")
    assert accounts.may("anyone", path="/version", verb="get")


def test_system_masters_may_do_anything(accounts: Accounts) -> None:
    review = accounts.access_review({
        "user": "somebody", "groups": ["system:masters"],
        "nonResourceAttributes": {"path": "/metrics", "verb": "get"},
    })
    assert review["status"]["allowed"] is True


def test_an_access_review_names_a_user_or_group_and_one_kind_of_attributes(accounts: Accounts) -> None:
    for spec in (
        {"nonResourceAttributes": {"path": "/metrics", "verb": "get"}},
        {"user": "someone"},
        {"user": "someone", "nonResourceAttributes": {"path": "/metrics", "verb": "get"},
         "resourceAttributes": {"verb": "get", "resource": "pods"}},
    ):
        with pytest.raises(ApiException) as raised:
            accounts.access_review(spec)
        assert raised.value.status == 422, spec
