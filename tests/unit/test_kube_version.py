"""The oldest Kubernetes the controller starts against (issue 23 row 10)."""

from __future__ import annotations

import pytest

from disvc.controller import kube_version
from disvc.controller.errors import ConfigError


@pytest.mark.parametrize(
    ("info", "version"),
    [
        ({"major": "1", "minor": "28", "gitVersion": "v1.28.7"}, (1, 28)),
        ({"major": "1", "minor": "27+", "gitVersion": "v1.27.3-eks-a5565ad"}, (1, 27)),
        ({"major": "", "minor": "", "gitVersion": "v1.25.0-gke.1"}, (1, 25)),
    ],
)
def test_supported_versions_start(info: dict[str, str], version: tuple[int, int]) -> None:
    assert kube_version.check(info) == version


@pytest.mark.parametrize("minor", ["22", "24"])
def test_older_versions_are_refused_with_one_clear_line(minor: str) -> None:
    with pytest.raises(ConfigError, match=rf"Kubernetes 1\.{minor} .*needs 1\.25 or newer"):
        kube_version.check({"major": "1", "minor": minor, "gitVersion": f"v1.{minor}.3"})


def test_an_unreadable_version_is_refused() -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        kube_version.check({"gitVersion": "weird"})
