"""Identities for tests: ServiceAccounts with tokens, and the RBAC that binds them.

A test that checks who may do what needs a caller other than the admin its
kubeconfig holds. ``Accounts`` makes ServiceAccounts in the test's namespace,
asks the API for their tokens (TokenRequest, as ``kubectl create token``),
and creates cluster-scoped roles and bindings under names unique to the test,
deleting them afterwards (a namespace's deletion would not). Everything goes
through the plain client, so it works on the loopback API and on a real one.
"""

from __future__ import annotations

from typing import Any, Final

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from disvc.testing.rawapi import request_json

RBAC: Final = "/apis/rbac.authorization.k8s.io/v1"
AUTHENTICATION: Final = "/apis/authentication.k8s.io/v1"
AUTHORIZATION: Final = "/apis/authorization.k8s.io/v1"

Obj = dict[str, Any]


class Accounts:
    """ServiceAccounts, tokens and RBAC in one test namespace; ``cleanup`` removes the cluster-scoped part."""

    def __init__(self, api_client: client.ApiClient, namespace: str) -> None:
        self.api_client = api_client
        self.namespace = namespace
        self._cluster_scoped: list[str] = []

    def call(self, method: str, path: str, body: object = None) -> Obj:
        return request_json(self.api_client, method, path, body=body)

    def service_account(self, name: str) -> Obj:
        body = {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": name}}
        return self.call("POST", f"/api/v1/namespaces/{self.namespace}/serviceaccounts", body)

    def token(self, account: str, audiences: list[str] | None = None, expiration_seconds: int = 3600) -> str:
        """A token for ``account`` (which must exist), from the TokenRequest subresource."""
        spec: Obj = {"expirationSeconds": expiration_seconds}
        if audiences:
            spec["audiences"] = audiences
        body = {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": spec}
        answer = self.call("POST", f"/api/v1/namespaces/{self.namespace}/serviceaccounts/{account}/token", body)
        token: str = answer["status"]["token"]
        return token

    def user(self, account: str) -> str:
        return f"system:serviceaccount:{self.namespace}:{account}"

    def unique(self, name: str) -> str:
        """A cluster-scoped name that cannot collide with another test's."""
        return f"{self.namespace}-{name}"

    def cluster_role(self, name: str, rules: list[Obj]) -> str:
        """Create a ClusterRole (named ``unique(name)``); returns its name."""
        role = self.unique(name)
        self._create_cluster_scoped(
            "clusterroles", {"kind": "ClusterRole", "metadata": {"name": role}, "rules": rules}
        )
        return role

    def bind_cluster_role(self, role: str, account: str) -> str:
        """A ClusterRoleBinding of ``role`` to the ServiceAccount ``account``."""
        binding = self.unique(f"{account}-{role}")[:253]
        self._create_cluster_scoped("clusterrolebindings", {
            "kind": "ClusterRoleBinding",
            "metadata": {"name": binding},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role},
            "subjects": [{"kind": "ServiceAccount", "name": account, "namespace": self.namespace}],
        })
        return binding

    def role(self, name: str, rules: list[Obj]) -> str:
        body = {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role", "metadata": {"name": name}, "rules": rules}
        self.call("POST", f"{RBAC}/namespaces/{self.namespace}/roles", body)
        return name

    def bind_role(self, role_kind: str, role: str, account: str) -> str:
        """A RoleBinding in this namespace of a Role or ClusterRole to ``account``."""
        name = f"{account}-{role}"[:253]
        body = {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "RoleBinding",
            "metadata": {"name": name},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": role_kind, "name": role},
            # No namespace: a RoleBinding's ServiceAccount defaults to the binding's own.
            "subjects": [{"kind": "ServiceAccount", "name": account}],
        }
        self.call("POST", f"{RBAC}/namespaces/{self.namespace}/rolebindings", body)
        return name

    def token_review(self, token: str, audiences: list[str] | None = None) -> Obj:
        spec: Obj = {"token": token}
        if audiences:
            spec["audiences"] = audiences
        body = {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview", "spec": spec}
        return self.call("POST", f"{AUTHENTICATION}/tokenreviews", body)

    def access_review(self, spec: Obj) -> Obj:
        body = {"apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview", "spec": spec}
        return self.call("POST", f"{AUTHORIZATION}/subjectaccessreviews", body)

    def may(self, account: str, **attributes: str) -> bool:
        """Whether ``account`` may do what ``attributes`` say: ``path=``/``verb=``
        for a URL, else resource attributes (``namespace``, ``verb``, ``group``, ...)."""
        groups = ["system:serviceaccounts", f"system:serviceaccounts:{self.namespace}", "system:authenticated"]
        spec: Obj = {"user": self.user(account), "groups": groups}
        if "path" in attributes:
            spec["nonResourceAttributes"] = attributes
        else:
            spec["resourceAttributes"] = attributes
        return bool(self.access_review(spec)["status"].get("allowed"))

    def _create_cluster_scoped(self, plural: str, body: Obj) -> None:
        body = {"apiVersion": "rbac.authorization.k8s.io/v1", **body}
        self.call("POST", f"{RBAC}/{plural}", body)
        self._cluster_scoped.append(f"{RBAC}/{plural}/{body['metadata']['name']}")

    def cleanup(self) -> None:
        for path in reversed(self._cluster_scoped):
            try:
                self.call("DELETE", path)
            except ApiException as error:
                if error.status != 404:
                    raise
        self._cluster_scoped.clear()
