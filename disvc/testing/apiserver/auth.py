"""Who a token belongs to and what RBAC lets them do, as the loopback API answers it.

The loopback server does not check the requests it serves (every client is
trusted), but it answers the two questions a component that guards its own
endpoint puts to Kubernetes, the way kube-apiserver answers them for the
tokens and RBAC objects it holds:

- ``POST /api/v1/namespaces/NS/serviceaccounts/NAME/token`` (TokenRequest,
  what ``kubectl create token`` calls) issues a token for an existing
  ServiceAccount, valid until it expires or the account is deleted;
- ``POST /apis/authentication.k8s.io/v1/tokenreviews`` says whose token it
  is: ``system:serviceaccount:NS:NAME`` in groups ``system:serviceaccounts``,
  ``system:serviceaccounts:NS`` and ``system:authenticated``, or the admin
  of the server's own kubeconfig (group ``system:masters``);
- ``POST /apis/authorization.k8s.io/v1/subjectaccessreviews`` evaluates the
  stored ClusterRoles, ClusterRoleBindings, Roles and RoleBindings with
  RBAC's matching rules (verbs, groups, ``resource/subresource`` and
  ``*/subresource``, resourceNames, ``nonResourceURLs`` with a trailing
  ``*``; a RoleBinding grants only inside its namespace and never grants
  non-resource URLs), with ``system:masters`` always allowed.

The server starts with the bootstrap roles a real one has and the reviews
depend on: ``cluster-admin`` (bound to ``system:masters``),
``system:discovery`` and ``system:public-info-viewer``.
"""

from __future__ import annotations

import secrets
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final, Protocol

from disvc.testing.apiserver import errors
from disvc.testing.apiserver.resources import ResourceType
from disvc.testing.apiserver.storage import Obj, Storage
from disvc.testing.apiserver.validation import Cause

RBAC_GROUP: Final = "rbac.authorization.k8s.io"
AUTHENTICATION_GROUP: Final = "authentication.k8s.io"
AUTHORIZATION_GROUP: Final = "authorization.k8s.io"
SERVICE_ACCOUNTS: Final = "/serviceaccounts"
CLUSTER_ROLES: Final = f"{RBAC_GROUP}/clusterroles"
CLUSTER_ROLE_BINDINGS: Final = f"{RBAC_GROUP}/clusterrolebindings"
ROLES: Final = f"{RBAC_GROUP}/roles"
ROLE_BINDINGS: Final = f"{RBAC_GROUP}/rolebindings"
"""Storage keys (``group/plural``) of the types RBAC reads."""

ADMIN_USER: Final = "loopback-admin"
MASTERS: Final = "system:masters"
AUTHENTICATED: Final = "system:authenticated"
UNAUTHENTICATED: Final = "system:unauthenticated"
API_AUDIENCE: Final = "https://kubernetes.default.svc.cluster.local"
"""The audience tokens get when a TokenRequest names none, and the one a
TokenReview checks when it names none (kube-apiserver's ``--api-audiences``)."""
DEFAULT_EXPIRATION: Final = 3600
MIN_EXPIRATION: Final = 600

TOKEN_REQUEST: Final = ResourceType(AUTHENTICATION_GROUP, "v1", "tokenrequests", "TokenRequest", True)
"""Only named in errors: a TokenRequest is the ``token`` subresource of a ServiceAccount."""
TOKEN_REVIEW: Final = ResourceType(AUTHENTICATION_GROUP, "v1", "tokenreviews", "TokenReview", False)
SUBJECT_ACCESS_REVIEW: Final = ResourceType(
    AUTHORIZATION_GROUP, "v1", "subjectaccessreviews", "SubjectAccessReview", False
)

RESOURCE_TYPES: Final[tuple[ResourceType, ...]] = (
    ResourceType("", "v1", "serviceaccounts", "ServiceAccount", True, "serviceaccount", ("sa",)),
    ResourceType(RBAC_GROUP, "v1", "clusterroles", "ClusterRole", False, "clusterrole"),
    ResourceType(RBAC_GROUP, "v1", "clusterrolebindings", "ClusterRoleBinding", False, "clusterrolebinding"),
    ResourceType(RBAC_GROUP, "v1", "roles", "Role", True, "role"),
    ResourceType(RBAC_GROUP, "v1", "rolebindings", "RoleBinding", True, "rolebinding"),
    TOKEN_REVIEW,
    SUBJECT_ACCESS_REVIEW,
)
"""What this module adds to the served types: the objects RBAC reads, and the
two reviews (answered by ``Authority.create``, never stored)."""


class CallLike(Protocol):
    """The parts of a parsed request path this module reads (``server.Call``)."""

    @property
    def method(self) -> str: ...
    @property
    def group(self) -> str: ...
    @property
    def plural(self) -> str: ...
    @property
    def namespace(self) -> str: ...
    @property
    def name(self) -> str: ...
    @property
    def subresource(self) -> str: ...


@dataclass(frozen=True, slots=True)
class UserInfo:
    username: str
    uid: str
    groups: tuple[str, ...]

    def as_status(self) -> Obj:
        return {"username": self.username, "uid": self.uid, "groups": list(self.groups)}


@dataclass(frozen=True, slots=True)
class _IssuedToken:
    namespace: str
    name: str
    account_uid: str
    audiences: tuple[str, ...]
    expires: datetime


def service_account_username(namespace: str, name: str) -> str:
    return f"system:serviceaccount:{namespace}:{name}"


def _rfc3339(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _cluster_role(name: str, rules: list[Obj]) -> Obj:
    return {"apiVersion": f"{RBAC_GROUP}/v1", "kind": "ClusterRole", "metadata": {"name": name}, "rules": rules}


def _cluster_role_binding(name: str, groups: list[str]) -> Obj:
    return {
        "apiVersion": f"{RBAC_GROUP}/v1",
        "kind": "ClusterRoleBinding",
        "metadata": {"name": name},
        "roleRef": {"apiGroup": RBAC_GROUP, "kind": "ClusterRole", "name": name},
        "subjects": [{"apiGroup": RBAC_GROUP, "kind": "Group", "name": g} for g in groups],
    }


_PUBLIC_INFO: Final = ["/livez", "/readyz", "/healthz", "/version", "/version/"]


def bootstrap_objects() -> list[tuple[str, Obj]]:
    """(storage key, object) of the bootstrap RBAC a real API server creates
    that matters to reviews (kube-apiserver's bootstrap policy)."""
    return [
        (CLUSTER_ROLES, _cluster_role("cluster-admin", [
            {"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]},
            {"nonResourceURLs": ["*"], "verbs": ["*"]},
        ])),
        (CLUSTER_ROLES, _cluster_role("system:discovery", [{"nonResourceURLs": [
            *_PUBLIC_INFO, "/openapi", "/openapi/*", "/api", "/api/*", "/apis", "/apis/*",
        ], "verbs": ["get"]}])),
        (CLUSTER_ROLES, _cluster_role("system:public-info-viewer", [
            {"nonResourceURLs": _PUBLIC_INFO, "verbs": ["get"]},
        ])),
        (CLUSTER_ROLE_BINDINGS, _cluster_role_binding("cluster-admin", [MASTERS])),
        (CLUSTER_ROLE_BINDINGS, _cluster_role_binding("system:discovery", [AUTHENTICATED])),
        (CLUSTER_ROLE_BINDINGS, _cluster_role_binding("system:public-info-viewer", [AUTHENTICATED, UNAUTHENTICATED])),
    ]  # fmt: skip


# --- RBAC rule matching -------------------------------------------------------------


def _has(values: Any, wanted: str, wildcard: str = "*") -> bool:
    return any(v == wildcard or v == wanted for v in values or ())


def _resource_matches(rule: Obj, resource: str, subresource: str) -> bool:
    combined = f"{resource}/{subresource}" if subresource else resource
    for candidate in rule.get("resources") or ():
        if candidate in ("*", combined):
            return True
        if subresource and candidate == f"*/{subresource}":
            return True
    return False


def _url_matches(rule: Obj, path: str) -> bool:
    for pattern in rule.get("nonResourceURLs") or ():
        if pattern in ("*", path):
            return True
        if pattern.endswith("*") and path.startswith(pattern.rstrip("*")):
            return True
    return False


def rule_allows(rule: Obj, attributes: Obj, resource_request: bool) -> bool:
    """Whether one PolicyRule covers the request ``attributes`` describe."""
    if not _has(rule.get("verbs"), attributes.get("verb") or ""):
        return False
    if not resource_request:
        return _url_matches(rule, attributes.get("path") or "")
    names = rule.get("resourceNames")
    return (
        _has(rule.get("apiGroups"), attributes.get("group") or "")
        and _resource_matches(rule, attributes.get("resource") or "", attributes.get("subresource") or "")
        and (not names or (attributes.get("name") or "") in names)
    )


def _subject_matches(subject: Obj, user: str, groups: list[str], binding_namespace: str) -> bool:
    kind = subject.get("kind")
    if kind == "User":
        return bool(subject.get("name") == user)
    if kind == "Group":
        return subject.get("name") in groups
    if kind == "ServiceAccount":
        # A RoleBinding may leave its ServiceAccount's namespace implicit.
        namespace = subject.get("namespace") or binding_namespace
        return bool(namespace) and user == service_account_username(namespace, subject.get("name") or "")
    return False


# --- the authority ------------------------------------------------------------------


class Authority:
    """Issues tokens and answers reviews against ``storage``; runs on the server's loop."""

    def __init__(self, storage: Storage) -> None:
        self._storage = storage
        self.admin_token = secrets.token_urlsafe(32)
        """Presented by the server's own kubeconfig; reviews say it is ``system:masters``."""
        self._issued: dict[str, _IssuedToken] = {}
        now = _rfc3339(datetime.now(UTC))
        for key, obj in bootstrap_objects():
            obj["metadata"].update(uid=str(uuid.uuid4()), creationTimestamp=now)
            obj["metadata"]["labels"] = {"kubernetes.io/bootstrapping": "rbac-defaults"}
            storage.put(key, "", obj)

    @staticmethod
    def handles(call: CallLike) -> bool:
        """Whether ``call`` is one of the requests this module answers."""
        if (call.group, call.plural) == ("", "serviceaccounts"):
            return call.subresource == "token"
        return (call.group, call.plural) in (
            (AUTHENTICATION_GROUP, TOKEN_REVIEW.plural), (AUTHORIZATION_GROUP, SUBJECT_ACCESS_REVIEW.plural),
        )

    def create(self, call: CallLike, body: Obj) -> Obj:
        """The answer (201) to a request ``handles`` accepted; raises ``ApiError``."""
        if call.method != "POST" or call.name and call.plural != "serviceaccounts":
            raise errors.method_not_allowed()
        if call.plural == "serviceaccounts":
            return self._token_request(call.namespace, call.name, body)
        if call.namespace:
            raise errors.bad_request(f"namespace is not allowed on this type: {call.namespace}")
        if call.plural == TOKEN_REVIEW.plural:
            return self._token_review(body)
        return self._subject_access_review(body)

    # --- tokens ---------------------------------------------------------------------

    def _token_request(self, namespace: str, name: str, body: Obj) -> Obj:
        account = self._storage.get(SERVICE_ACCOUNTS, namespace, name)
        if account is None:
            raise errors.ApiError(
                404, "NotFound", f'serviceaccounts "{name}" not found', {"name": name, "kind": "serviceaccounts"}
            )
        spec = dict(body.get("spec") or {})
        seconds = spec.get("expirationSeconds") or DEFAULT_EXPIRATION
        if not isinstance(seconds, int) or seconds < MIN_EXPIRATION:
            raise errors.invalid(TOKEN_REQUEST, "", [Cause(
                "FieldValueInvalid", "spec.expirationSeconds",
                f"Invalid value: {seconds}: may not specify a duration less than 10 minutes",
            )])
        audiences = tuple(spec.get("audiences") or (API_AUDIENCE,))
        issued_at = datetime.now(UTC).replace(microsecond=0)
        expires = issued_at + timedelta(seconds=seconds)
        token = secrets.token_urlsafe(48)
        self._issued[token] = _IssuedToken(namespace, name, account.obj["metadata"]["uid"], audiences, expires)
        return {
            "apiVersion": f"{AUTHENTICATION_GROUP}/v1",
            "kind": "TokenRequest",
            "metadata": {"name": name, "namespace": namespace, "creationTimestamp": _rfc3339(issued_at)},
            "spec": {"audiences": list(audiences), "expirationSeconds": seconds, "boundObjectRef": None},
            "status": {"token": token, "expirationTimestamp": _rfc3339(expires)},
        }

    def authenticate(self, token: str, audiences: tuple[str, ...]) -> tuple[UserInfo | None, tuple[str, ...], str]:
        """(user, accepted audiences, error) for a bearer token."""
        if secrets.compare_digest(token, self.admin_token):
            return UserInfo(ADMIN_USER, ADMIN_USER, (MASTERS, AUTHENTICATED)), audiences, ""
        issued = self._issued.get(token)
        if issued is None:
            return None, (), "invalid bearer token"
        if datetime.now(UTC) >= issued.expires:
            self._issued.pop(token, None)
            return None, (), "invalid bearer token, service account token has expired"
        accepted = tuple(a for a in audiences if a in issued.audiences)
        if not accepted:
            return None, (), (
                f"invalid bearer token, token audiences {list(issued.audiences)} "
                f"is invalid for the target audiences {list(audiences)}"
            )
        account = self._storage.get(SERVICE_ACCOUNTS, issued.namespace, issued.name)
        if account is None or account.obj["metadata"].get("uid") != issued.account_uid:
            return None, (), (
                f'invalid bearer token, service account {issued.namespace}/{issued.name} '
                "has been deleted or recreated"
            )
        groups = ("system:serviceaccounts", f"system:serviceaccounts:{issued.namespace}", AUTHENTICATED)
        user = UserInfo(service_account_username(issued.namespace, issued.name), issued.account_uid, groups)
        return user, accepted, ""

    def _token_review(self, body: Obj) -> Obj:
        spec = dict(body.get("spec") or {})
        token = spec.get("token")
        if not token or not isinstance(token, str):
            raise errors.bad_request("token is required for TokenReview in authentication")
        user, audiences, error = self.authenticate(token, tuple(spec.get("audiences") or (API_AUDIENCE,)))
        status: Obj = {"user": {}}
        if user is not None:
            status = {"authenticated": True, "user": user.as_status(), "audiences": list(audiences)}
        if error:
            status["error"] = error
        return {**_review_shell(body, TOKEN_REVIEW), "status": status}

    # --- RBAC -----------------------------------------------------------------------

    def _subject_access_review(self, body: Obj) -> Obj:
        spec: Obj = dict(body.get("spec") or {})
        resource_attributes = spec.get("resourceAttributes")
        non_resource_attributes = spec.get("nonResourceAttributes")
        causes: list[Cause] = []
        if resource_attributes is not None and non_resource_attributes is not None:
            causes.append(Cause(
                "FieldValueInvalid", "spec.nonResourceAttributes",
                "Invalid value: cannot be specified in combination with resourceAttributes",
            ))
        if resource_attributes is None and non_resource_attributes is None:
            causes.append(Cause(
                "FieldValueInvalid", "spec.resourceAttributes",
                "Invalid value: exactly one of nonResourceAttributes or resourceAttributes must be specified",
            ))
        if not spec.get("user") and not spec.get("groups"):
            causes.append(Cause(
                "FieldValueInvalid", "spec.user", "Invalid value: at least one of user or group must be specified",
            ))
        if causes:
            raise errors.invalid(SUBJECT_ACCESS_REVIEW, "", causes)
        resource_request = resource_attributes is not None
        attributes: Obj = dict((resource_attributes if resource_request else non_resource_attributes) or {})
        allowed, reason = self.authorize(
            spec.get("user") or "", list(spec.get("groups") or ()), attributes, resource_request
        )
        status: Obj = {"allowed": allowed}
        if reason:
            status["reason"] = reason
        return {**_review_shell(body, SUBJECT_ACCESS_REVIEW), "status": status}

    def authorize(self, user: str, groups: list[str], attributes: Obj, resource_request: bool) -> tuple[bool, str]:
        """(allowed, reason) for ``user`` in ``groups`` doing what ``attributes`` say.

        RoleBindings are consulted only for a resource in their namespace, so
        they never grant non-resource URLs."""
        if MASTERS in groups:
            return True, ""
        namespace = (attributes.get("namespace") or "") if resource_request else ""
        for binding in self._storage.objects(CLUSTER_ROLE_BINDINGS, ""):
            reason = self._binding_allows(binding.obj, user, groups, attributes, resource_request, "")
            if reason:
                return True, reason
        if namespace:
            for binding in self._storage.objects(ROLE_BINDINGS, namespace):
                reason = self._binding_allows(binding.obj, user, groups, attributes, resource_request, namespace)
                if reason:
                    return True, reason
        return False, ""

    def _binding_allows(
        self, binding: Obj, user: str, groups: list[str], attributes: Obj, resource_request: bool, namespace: str
    ) -> str:
        """The RBAC reason when ``binding`` grants the request, else ``""``."""
        subjects = binding.get("subjects") or ()
        subject = next((s for s in subjects if _subject_matches(s, user, groups, namespace)), None)
        if subject is None:
            return ""
        ref = binding.get("roleRef") or {}
        if ref.get("kind") == "ClusterRole":
            role = self._storage.get(CLUSTER_ROLES, "", ref.get("name") or "")
        elif ref.get("kind") == "Role" and namespace:
            role = self._storage.get(ROLES, namespace, ref.get("name") or "")
        else:
            role = None
        if role is None:
            return ""
        if not any(rule_allows(rule, attributes, resource_request) for rule in role.obj.get("rules") or ()):
            return ""
        where = f' in namespace "{namespace}"' if namespace else ""
        who = subject.get("name")
        if subject.get("kind") == "ServiceAccount":
            who = f"{subject.get('namespace') or namespace}/{who}"
        return (
            f'RBAC: allowed by {binding["kind"]} "{binding["metadata"]["name"]}" of {ref["kind"]} '
            f'"{ref.get("name")}" to {subject.get("kind")} "{who}"{where}'
        )


def _review_shell(body: Obj, rt: ResourceType) -> Obj:
    """A review echoes what was asked: its metadata and spec."""
    return {
        "apiVersion": rt.api_version,
        "kind": rt.kind,
        "metadata": {**(body.get("metadata") or {}), "creationTimestamp": None},
        "spec": body.get("spec") or {},
    }
