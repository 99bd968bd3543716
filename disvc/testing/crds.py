"""The CRDs a DISVC needs, and installing them on any API server.

Our DistributedInferenceService CRD (``config/crd/bases``) and KServe's
InferenceService CRD, looked for in the order :func:`kserve_crd_file` states
(a schema-less stand-in when none is found: everything but the checks
against KServe's real schema still runs). Used by the test session, the demo
and the benchmarks, on the loopback API or a real cluster.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Final

import yaml
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from disvc.testing.polling import eventually
from disvc.testing.rawapi import request_json

JsonObject = dict[str, Any]

REPO_ROOT: Final = Path(__file__).resolve().parents[2]
DISVC_CRD_DIR: Final = REPO_ROOT / "config" / "crd" / "bases"
EXTERNAL_CRD_DIRNAME: Final = "external"
"""Beside the bases: minimal CRDs of other projects the tests need (Gateway
API's HTTPRoute), installed only where the real one is not."""
ISVC_CRD_BASENAME: Final = "serving.kserve.io_inferenceservices.yaml"
ISVC_CRD_ENV: Final = "DISVC_KSERVE_CRD"
CRD_CACHE_ENV: Final = "DISVC_CRD_CACHE"
DEFAULT_CRD_CACHE: Final = REPO_ROOT / ".cache" / "kserve"
"""Where ``hack/fetch-kserve-crd.sh VERSION`` puts KServe's released CRD
(git-ignored; ``$DISVC_CRD_CACHE`` moves it, for the script and this module alike)."""

GATEWAY_API_DIR: Final = REPO_ROOT / "hack" / "testdata" / "gateway-api"
"""The real Gateway API CRDs (v1.6.1, both channels), kept unchanged as test data."""
GATEWAY_API_KINDS: Final = ("gatewayclasses", "gateways", "httproutes", "grpcroutes")
BUNDLE_VERSION_ANNOTATION: Final = "gateway.networking.k8s.io/bundle-version"
CHANNEL_ANNOTATION: Final = "gateway.networking.k8s.io/channel"

ISVC_CRD_NAME: Final = "inferenceservices.serving.kserve.io"
CRD_PATH: Final = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions"


def load_yaml_documents(text: str) -> list[JsonObject]:
    # libyaml: the KServe CRD is 2 MB, the pure-Python loader takes seconds.
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    return [doc for doc in yaml.load_all(text, Loader=loader) if doc]


def minimal_isvc_crd() -> JsonObject:
    """An InferenceService CRD that accepts anything and has a status
    subresource: a stand-in when KServe's real CRD file is missing."""
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": ISVC_CRD_NAME},
        "spec": {
            "group": "serving.kserve.io",
            "scope": "Namespaced",
            "names": {
                "plural": "inferenceservices",
                "singular": "inferenceservice",
                "kind": "InferenceService",
                "listKind": "InferenceServiceList",
                "shortNames": ["isvc"],
            },
            "versions": [
                {
                    "name": "v1beta1",
                    "served": True,
                    "storage": True,
                    "subresources": {"status": {}},
                    "schema": {
                        "openAPIV3Schema": {
                            "type": "object",
                            "x-kubernetes-preserve-unknown-fields": True,
                        }
                    },
                }
            ],
        },
    }


def kserve_crd_file() -> Path | None:
    """KServe's InferenceService CRD file, or None when none is at hand.

    Looked for, in order: the file ``$DISVC_KSERVE_CRD`` names; the copy
    ``hack/fetch-kserve-crd.sh`` downloads (``$DISVC_CRD_CACHE``, else
    ``.cache/kserve/``); the
    reference copy a development checkout may have beside it
    (``../shared/kserve/``). A named file that is missing is an error, not a
    silent fallback: the user asked for that file.
    """
    named = os.environ.get(ISVC_CRD_ENV)
    if named:
        path = Path(named)
        if not path.is_file():
            raise FileNotFoundError(f"{ISVC_CRD_ENV}={named}: no such file")
        return path
    fetched = Path(os.environ.get(CRD_CACHE_ENV) or DEFAULT_CRD_CACHE) / ISVC_CRD_BASENAME
    beside = REPO_ROOT.parent / "shared" / "kserve" / ISVC_CRD_BASENAME
    return next((path for path in (fetched, beside) if path.is_file()), None)


KSERVE_CRD_MISSING: Final = (
    "KServe's InferenceService CRD not found: run hack/fetch-kserve-crd.sh "
    f"(or set {ISVC_CRD_ENV}) to check against its real schema"
)


def crds_to_install(
    disvc_dir: Path = DISVC_CRD_DIR, isvc_file: Path | None = None, *, with_external: bool = True
) -> list[tuple[JsonObject, bool]]:
    """(CRD, replace-if-present) for every CRD the suite needs.

    Ours are replaced when present, so a session always tests the CRD in the
    tree. KServe's, and the other projects' minimal ones in
    ``config/crd/external`` (Gateway API's HTTPRoute), are left alone when
    present: on a real cluster they belong to those installations. Without
    KServe's file a schema-less stand-in is installed
    (:data:`KSERVE_CRD_MISSING` says how to get the real one).
    ``with_external=False`` leaves out the minimal copies: on someone's
    cluster they would pass for the real thing.
    """
    isvc_file = isvc_file or kserve_crd_file()
    if not disvc_dir.is_dir():
        # disvc.testing reads our CRDs from the source tree: an installed
        # wheel alone has no config/ to read them from.
        raise FileNotFoundError(f"{disvc_dir}: no CRD folder here (disvc.testing needs a source checkout)")
    wanted: list[tuple[JsonObject, bool]] = [(crd, True) for crd in _crds_in(sorted(disvc_dir.glob("*.yaml")))]
    external_dir = disvc_dir.parent / EXTERNAL_CRD_DIRNAME
    if with_external and external_dir.is_dir():
        wanted.extend((crd, False) for crd in _crds_in(sorted(external_dir.glob("*.yaml"))))
    if isvc_file is not None:
        wanted.extend((crd, False) for crd in _crds_in([isvc_file]))
    else:
        wanted.append((minimal_isvc_crd(), False))
    return wanted


def _crds_in(files: list[Path]) -> list[JsonObject]:
    docs = (doc for path in files for doc in load_yaml_documents(path.read_text()))
    return [doc for doc in docs if doc.get("kind") == "CustomResourceDefinition"]


def _is_established(crd: JsonObject) -> bool:
    conditions = crd.get("status", {}).get("conditions") or []
    return any(c.get("type") == "Established" and c.get("status") == "True" for c in conditions)


def install_crd(api_client: client.ApiClient, crd: JsonObject, replace: bool, timeout: float = 60.0) -> None:
    """Create (or replace) a CRD, then wait until it is Established and its
    resource answers a list: only then can tests create objects of it."""
    name = crd["metadata"]["name"]
    try:
        request_json(api_client, "POST", CRD_PATH, body=crd)
    except ApiException as error:
        if error.status != 409:
            raise
        if replace:
            live = request_json(api_client, "GET", f"{CRD_PATH}/{name}")
            metadata = {**crd["metadata"], "resourceVersion": live["metadata"]["resourceVersion"]}
            body = {**crd, "metadata": metadata}
            request_json(api_client, "PUT", f"{CRD_PATH}/{name}", body=body)

    def established() -> None:
        live = request_json(api_client, "GET", f"{CRD_PATH}/{name}")
        assert _is_established(live), f"CRD {name} not Established: {live.get('status')}"

    eventually(established, timeout=timeout, interval=0.1)
    spec = crd["spec"]
    served = next(v["name"] for v in spec["versions"] if v.get("served", True))
    list_path = f"/apis/{spec['group']}/{served}/{spec['names']['plural']}"

    def served_now() -> None:
        try:
            request_json(api_client, "GET", list_path, query=[("limit", "1")])
        except ApiException as error:
            assert error.status != 404, f"{list_path} not served yet"
            raise

    eventually(served_now, timeout=timeout, interval=0.1)


def install_crds(api_client: client.ApiClient) -> None:
    for crd, replace in crds_to_install():
        install_crd(api_client, crd, replace)


def install_gateway_api(api_client: client.ApiClient, channel: str = "experimental") -> None:
    """Install the real Gateway API CRDs of ``channel`` (GatewayClass, Gateway,
    HTTPRoute, GRPCRoute). A CRD of that name that is not the same release
    and channel (our minimal HTTPRoute, the other channel) is replaced."""
    for plural in GATEWAY_API_KINDS:
        path = GATEWAY_API_DIR / channel / f"gateway.networking.k8s.io_{plural}.yaml"
        (crd,) = _crds_in([path])
        annotations = crd["metadata"].get("annotations") or {}
        try:
            live = request_json(api_client, "GET", f"{CRD_PATH}/{crd['metadata']['name']}")
        except ApiException as error:
            if error.status != 404:
                raise
            live = None
        live_annotations = (live or {}).get("metadata", {}).get("annotations") or {}
        same = all(
            live_annotations.get(key) == annotations.get(key) for key in (BUNDLE_VERSION_ANNOTATION, CHANNEL_ANNOTATION)
        )
        install_crd(api_client, crd, replace=live is not None and not same)
