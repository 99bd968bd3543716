"""The timestamps the API server stamps (creationTimestamp, managedFields time, ...).

Kubernetes writes ``metav1.Time`` as RFC 3339 in UTC with whole seconds.
"""

from __future__ import annotations

from datetime import UTC, datetime


def now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
