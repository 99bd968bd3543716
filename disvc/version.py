"""The installed package's version, for every entry point's ``--version``.

Read from the package metadata (``setup.cfg`` ``version``), so the number is
written in one place; a source tree that was never installed says so instead
of guessing.
"""

from __future__ import annotations

from importlib import metadata
from typing import Final

DISTRIBUTION: Final = "disvc"


def version() -> str:
    try:
        return metadata.version(DISTRIBUTION)
    except metadata.PackageNotFoundError:
        return "unknown (not installed)"


def line(program: str) -> str:
    """What ``PROGRAM --version`` prints."""
    return f"{program} {version()}"
