"""``--version`` on every entry point prints the package metadata's version
(``setup.cfg``), the same number the image label and the install file carry."""

from __future__ import annotations

import os
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest

from disvc import version

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    ("module", "program"),
    [("disvc", "disvc"), ("disvc.controller", "disvc-controller"), ("disvc.cli", "kubectl-disvc")],
)
def test_every_entry_point_prints_the_package_version(module: str, program: str) -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    done = subprocess.run(
        [sys.executable, "-m", module, "--version"], capture_output=True, text=True, env=env, check=False, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == f"{program} {metadata.version('disvc')}\n"


def test_the_metadata_version_is_setup_cfgs() -> None:
    setup = (REPO / "setup.cfg").read_text(encoding="utf-8")
    assert f"\nversion = {version.version()}\n" in setup


def test_a_tree_never_installed_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    def missing(_name: str) -> str:
        raise metadata.PackageNotFoundError(_name)

    monkeypatch.setattr(metadata, "version", missing)
    assert version.line("disvc") == "disvc unknown (not installed)"
