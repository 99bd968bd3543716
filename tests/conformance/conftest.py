"""Conformance-test fixtures: a guard for tests that need the DISVC CRD.

The ``kube`` session installs the CRDs of ``config/crd/bases``; against a
cluster where that did not happen, the tests that need the DISVC CRD skip
and say so instead of failing on a missing resource type."""

from __future__ import annotations

import pytest
from kubernetes.client.exceptions import ApiException

from disvc.testing.fixtures import CRD_PATH, KubeEnv, request_json

from .objects import DISVCS, KSERVE


@pytest.fixture
def disvc_crd(kube: KubeEnv) -> None:
    """Skip unless the DISVC CRD from config/crd/bases is installed."""
    try:
        request_json(kube.api_client, "GET", f"{CRD_PATH}/{DISVCS}.{KSERVE}")
    except ApiException as error:
        if error.status == 404:
            pytest.skip("DISVC CRD not installed in this cluster")
        raise
