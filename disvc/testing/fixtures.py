"""pytest plumbing: one Kubernetes API per session, one namespace per test.

Every integration and conformance test asks for the ``kube`` fixture and
talks to Kubernetes through the plain ``kubernetes`` client, so the same test
runs against three backends, picked once per session:

1. ``DISVC_TEST_KUBECONFIG`` set: the cluster that kubeconfig names;
2. else ``KUBEBUILDER_ASSETS`` set: etcd + kube-apiserver started by
   ``disvc.testing.envtest``;
3. else the in-process loopback API (``disvc.testing.apiserver.ApiServer``),
   "the substrate", which alone can count requests and inject faults.

Once per session the DISVC CRD (``config/crd/bases``) and KServe's
InferenceService CRD are installed and waited for. Each test gets a fresh
namespace, deleted afterwards with all it holds (on envtest by
``namespace_controller``, standing in for kube-controller-manager). Tests
marked ``substrate_only`` are skipped on the first two backends.
``eventually`` is the poller tests use instead of sleeping.

Registered as a plugin by ``tests/conftest.py``.
"""

from __future__ import annotations

import os
import re
import secrets
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, Literal

import pytest
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

from disvc.testing import namespace_controller
from disvc.testing.crds import (
    CRD_PATH,
    KSERVE_CRD_MISSING,
    crds_to_install,
    install_crds,
    kserve_crd_file,
    load_yaml_documents,
)
from disvc.testing.polling import eventually
from disvc.testing.rawapi import request_json, status_of

if TYPE_CHECKING:
    from disvc.testing.apiserver import ApiServer

# Tests import their plumbing from this one module.
__all__ = [
    "CRD_PATH",
    "KubeEnv",
    "crds_to_install",
    "eventually",
    "kserve_crd_or_skip",
    "kube",
    "kube_session",
    "needs_kserve_schema",
    "request_json",
    "status_of",
]


KUBECONFIG_ENV: Final = "DISVC_TEST_KUBECONFIG"
ASSETS_ENV: Final = "KUBEBUILDER_ASSETS"
SUBSTRATE_ONLY: Final = "substrate_only"
TEST_FIELD_MANAGER: Final = "test"
"""Field manager of objects tests apply with ``KubeEnv.apply_yaml``."""


Backend = Literal["kubeconfig", "envtest", "substrate"]

JsonObject = dict[str, Any]


def selected_backend() -> Backend:
    """Which API the session runs against, from the environment alone (so
    collection can skip substrate-only tests without starting anything)."""
    if os.environ.get(KUBECONFIG_ENV):
        return "kubeconfig"
    if os.environ.get(ASSETS_ENV):
        return "envtest"
    return "substrate"


@dataclass(frozen=True, slots=True)
class ResourceInfo:
    """How to reach one kind over HTTP."""

    plural: str
    namespaced: bool


# Used only when discovery is unavailable; discovery is the truth.
_KNOWN_CLUSTER_SCOPED: Final = frozenset(
    {"Namespace", "Node", "CustomResourceDefinition", "ClusterRole", "ClusterRoleBinding"}
)


def _guess_plural(kind: str) -> str:
    lower = kind.lower()
    if lower.endswith(("s", "x", "ch", "sh")):
        return lower + "es"
    if lower.endswith("y") and lower[-2:-1] not in "aeiou":
        return lower[:-1] + "ies"
    return lower + "s"


def resource_path(api_version: str, info: ResourceInfo, namespace: str | None, name: str) -> str:
    """The URL path of one object, e.g. ``/api/v1/namespaces/ns/services/n``."""
    prefix = f"/api/{api_version}" if "/" not in api_version else f"/apis/{api_version}"
    scope = f"/namespaces/{namespace}" if info.namespaced and namespace else ""
    return f"{prefix}{scope}/{info.plural}/{name}"


# --- the session backend ---------------------------------------------------


@dataclass(slots=True)
class Session:
    """The API the whole test session talks to."""

    backend: Backend
    api_client: client.ApiClient
    kubeconfig: str
    server: ApiServer | None
    close: Callable[[], None]
    _discovery: dict[tuple[str, str], ResourceInfo] = field(default_factory=dict)

    @property
    def is_substrate(self) -> bool:
        return self.server is not None

    def delete_namespace(self, name: str) -> list[str]:
        """Delete a namespace, and its content, as a cluster would; what it
        left behind (``plural/name``), empty when it is gone or going.

        envtest runs no namespace controller: without one, a deleted
        namespace and everything in it stay for the rest of the session."""
        try:
            client.CoreV1Api(self.api_client).delete_namespace(name)
        except ApiException as error:
            if error.status != 404:
                raise
        if self.backend != "envtest":
            return []
        return namespace_controller.finish_deletion(self.api_client, name)

    def resource_info(self, api_version: str, kind: str) -> ResourceInfo:
        """Plural and scope of a kind, by API discovery (cached)."""
        key = (api_version, kind)
        if key not in self._discovery:
            self._discovery[key] = self._discover(api_version, kind)
        return self._discovery[key]

    def _discover(self, api_version: str, kind: str) -> ResourceInfo:
        path = f"/api/{api_version}" if "/" not in api_version else f"/apis/{api_version}"
        try:
            listing = request_json(self.api_client, "GET", path)
        except ApiException:
            listing = {}
        for resource in listing.get("resources", []):
            if resource.get("kind") == kind and "/" not in resource.get("name", ""):
                return ResourceInfo(resource["name"], bool(resource.get("namespaced")))
        return ResourceInfo(_guess_plural(kind), kind not in _KNOWN_CLUSTER_SCOPED)


def _start_substrate(tmp_dir: Path) -> Session:
    from disvc.testing.apiserver import ApiServer  # the substrate is optional on a real cluster

    server = ApiServer().start()
    kubeconfig = server.write_kubeconfig(str(tmp_dir / "kubeconfig"))
    api_client = config.new_client_from_config(config_file=kubeconfig)  # type: ignore[no-untyped-call]

    def close() -> None:
        api_client.close()
        server.stop()

    return Session("substrate", api_client, kubeconfig, server, close)


def _start_envtest(assets: str) -> Session:
    from disvc.testing.envtest import Environment

    environment = Environment(assets).start()
    api_client = config.new_client_from_config(config_file=environment.kubeconfig)  # type: ignore[no-untyped-call]

    def close() -> None:
        api_client.close()
        environment.stop()

    return Session("envtest", api_client, environment.kubeconfig, None, close)


def _connect(kubeconfig: str) -> Session:
    api_client = config.new_client_from_config(config_file=kubeconfig)  # type: ignore[no-untyped-call]
    return Session("kubeconfig", api_client, kubeconfig, None, api_client.close)


def start_session(tmp_dir: Path) -> Session:
    """Connect to or start the selected backend and install both CRDs."""
    backend = selected_backend()
    if backend == "kubeconfig":
        session = _connect(os.environ[KUBECONFIG_ENV])
    elif backend == "envtest":
        session = _start_envtest(os.environ[ASSETS_ENV])
    else:
        session = _start_substrate(tmp_dir)
    try:
        install_crds(session.api_client)
    except BaseException:
        session.close()
        raise
    return session


# --- CRDs --------------------------------------------------------------------


# --- per-test environment ----------------------------------------------------


@dataclass(slots=True)
class KubeEnv:
    """What a test gets from the ``kube`` fixture."""

    api_client: client.ApiClient
    kubeconfig: str
    """Path of a kubeconfig for the session's API (to start the controller with)."""
    namespace: str
    """A namespace created for this test alone."""
    server: ApiServer | None
    """The loopback API server, or None on a real control plane."""
    session: Session

    @property
    def is_substrate(self) -> bool:
        return self.server is not None

    @property
    def core(self) -> client.CoreV1Api:
        return client.CoreV1Api(self.api_client)

    @property
    def custom(self) -> client.CustomObjectsApi:
        return client.CustomObjectsApi(self.api_client)

    @property
    def networking(self) -> client.NetworkingV1Api:
        return client.NetworkingV1Api(self.api_client)

    def apply_yaml(self, source: str | Path, namespace: str | None = None) -> list[JsonObject]:
        """Server-side apply every object in a YAML file (or YAML text).

        Namespaced objects land in ``namespace`` (default: this test's),
        whatever the YAML says, so seed manifests apply unchanged. Field
        manager ``test``, forced: the test is the author of these objects.
        Returns the objects as the server stored them.
        """
        text = _read_source(source)
        target = namespace or self.namespace
        applied = []
        for obj in load_yaml_documents(text):
            info = self.session.resource_info(obj["apiVersion"], obj["kind"])
            metadata = obj.setdefault("metadata", {})
            if info.namespaced:
                metadata["namespace"] = target
            path = resource_path(obj["apiVersion"], info, target, metadata["name"])
            applied.append(
                request_json(
                    self.api_client,
                    "PATCH",
                    path,
                    body=obj,
                    query=[("fieldManager", TEST_FIELD_MANAGER), ("force", "true")],
                    content_type="application/apply-patch+yaml",
                )
            )
        return applied


def _read_source(source: str | Path) -> str:
    if isinstance(source, Path):
        return source.read_text()
    if "\n" not in source and Path(source).is_file():
        return Path(source).read_text()
    return source


NAMESPACE_SLUG_LENGTH: Final = 24
"""Namespaces stay short: names built from them (an Ingress host
``<name>-<namespace>.<domain>``) must fit a 63-character DNS label."""


def namespace_name(test_name: str) -> str:
    """``t-<test name slug>-<random>``: unique, and says which test made it."""
    slug = re.sub(r"[^a-z0-9]+", "-", test_name.lower().removeprefix("test_")).strip("-")
    return f"t-{slug[:NAMESPACE_SLUG_LENGTH].rstrip('-')}-{secrets.token_hex(3)}"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        f"{SUBSTRATE_ONLY}: needs the loopback API server (fault rules, request counts); "
        "skipped against a real control plane",
    )


def pytest_report_header(config: pytest.Config) -> list[str]:
    kserve = kserve_crd_file()
    return [
        f"disvc backend: {selected_backend()}",
        f"KServe CRD: {kserve}" if kserve else f"KServe CRD: schema-less stand-in ({KSERVE_CRD_MISSING})",
    ]


needs_kserve_schema: Final = pytest.mark.skipif(
    kserve_crd_file() is None, reason=f"needs KServe's real ISVC schema: {KSERVE_CRD_MISSING}"
)
"""For a test whose outcome rests on KServe's ISVC schema refusing something
(the stand-in CRD admits anything)."""


def kserve_crd_or_skip() -> Path:
    """KServe's CRD file for a test that checks against its real schema;
    skips that test, saying how to get the file, where there is none."""
    path = kserve_crd_file()
    if path is None:
        pytest.skip(KSERVE_CRD_MISSING)
    return path


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if selected_backend() == "substrate":
        return
    reason = f"substrate_only: needs the loopback API server, not {selected_backend()}"
    skip = pytest.mark.skip(reason=reason)
    for item in items:
        if item.get_closest_marker(SUBSTRATE_ONLY):
            item.add_marker(skip)


@pytest.fixture(scope="session")
def kube_session(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Session]:
    session = start_session(tmp_path_factory.mktemp("kube"))
    yield session
    session.close()


@pytest.fixture
def kube(kube_session: Session, request: pytest.FixtureRequest) -> Iterator[KubeEnv]:
    """A fresh namespace on the session's API, removed after the test.

    On the substrate the request log is reset after the namespace exists, so
    request counts a test reads are its own, and fault rules a test added are
    cleared afterwards so they cannot leak into the next test.
    """
    if request.node.get_closest_marker(SUBSTRATE_ONLY) and not kube_session.is_substrate:
        pytest.skip("substrate_only: needs the loopback API server")
    core = client.CoreV1Api(kube_session.api_client)
    namespace = namespace_name(request.node.name)
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=namespace)))
    server = kube_session.server
    if server is not None:
        server.reset_requests()
    try:
        yield KubeEnv(
            api_client=kube_session.api_client,
            kubeconfig=kube_session.kubeconfig,
            namespace=namespace,
            server=server,
            session=kube_session,
        )
    finally:
        if server is not None:
            server.clear_faults()
        # best effort: what a test leaves (an object with a finalizer of its
        # own) is reported, not failed on
        try:
            left = kube_session.delete_namespace(namespace)
        except ApiException as error:
            warnings.warn(f"could not delete namespace {namespace}: {error.status}", stacklevel=1)
        else:
            if left:
                warnings.warn(f"namespace {namespace} stays Terminating, held by {', '.join(left)}", stacklevel=1)
