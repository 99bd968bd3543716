"""Fixtures for the builder tests."""

from __future__ import annotations

from typing import Any

import jsonschema
import pytest
import yaml

from disvc.testing.fixtures import kserve_crd_or_skip


@pytest.fixture(scope="session")
def isvc_validator() -> Any:
    """A validator for KServe's InferenceService openAPIV3Schema (large: built once)."""
    crd = yaml.load(kserve_crd_or_skip().read_text(), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    (version,) = [v for v in crd["spec"]["versions"] if v["name"] == "v1beta1"]
    schema = version["schema"]["openAPIV3Schema"]
    return jsonschema.Draft7Validator(schema)
