"""The oldest Kubernetes the controller runs against, checked once at start.

1.25 is the oldest with everything the controller and its manifests rely on
enabled by default: CEL validation rules in the DISVC CRD
(``x-kubernetes-validations``), strict field validation of writes
(``fieldValidation=Strict``, so a typo in a template is refused, not
dropped), server-side apply that treats a ``resourceVersion`` in the body as
a precondition on an object that exists and ignores it on one that does not
(the create-only apply of ``reconciler.ABSENT``; 1.22 and older fail it
with a 500), and ``coordination.k8s.io/v1`` Leases. Below it the controller
refuses to start with one line saying so (exit code 2), rather than failing
one request at a time forever.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Final

from disvc.controller.errors import ConfigError

MINIMUM: Final = (1, 25)


def parse(info: Mapping[str, Any]) -> tuple[int, int] | None:
    """(major, minor) from a ``/version`` answer; None when it cannot be read.

    Managed clusters write the minor with a suffix (``"27+"``), so only its
    leading digits count; ``gitVersion`` (``v1.28.7-gke.100``) is the fallback."""
    major = re.match(r"\d+", str(info.get("major") or ""))
    minor = re.match(r"\d+", str(info.get("minor") or ""))
    if major and minor:
        return int(major.group()), int(minor.group())
    git = re.match(r"v?(\d+)\.(\d+)", str(info.get("gitVersion") or ""))
    return (int(git.group(1)), int(git.group(2))) if git else None


def check(info: Mapping[str, Any]) -> tuple[int, int]:
    """The server's version; ``ConfigError`` when it is older than ``MINIMUM``
    or says nothing readable."""
    version = parse(info)
    wanted = ".".join(map(str, MINIMUM))
    if version is None:
        raise ConfigError(f"cannot read the API server's version from /version ({dict(info)}); Kubernetes {wanted} or newer is required")
    if version < MINIMUM:
        raise ConfigError(
            f"the API server is Kubernetes {version[0]}.{version[1]} ({info.get('gitVersion', '?')}); "
            f"the controller needs {wanted} or newer"
        )
    return version
