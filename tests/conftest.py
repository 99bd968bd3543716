"""Test-suite wiring: the ``kube`` fixture, ``eventually`` and the
``substrate_only`` marker come from the ``disvc.testing.fixtures`` plugin."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest
import structlog

if TYPE_CHECKING:
    from disvc.testing.accounts import Accounts
    from disvc.testing.fixtures import KubeEnv

pytest_plugins = ["disvc.testing.fixtures"]


def pytest_configure(config: pytest.Config) -> None:
    # In-process controllers log from their own threads, often after the test
    # that started them has moved on. Through stdlib logging, pytest captures
    # those lines (and shows them with a failure) instead of printing them
    # between the progress dots.
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.dev.ConsoleRenderer(colors=False),
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        cache_logger_on_first_use=False,
    )


@pytest.fixture
def accounts(kube: KubeEnv) -> Iterator[Accounts]:
    """ServiceAccounts, tokens and RBAC for this test (``disvc.testing.accounts``)."""
    # Imported here: the fixtures plugin must be loaded (and assert-rewritten) first.
    from disvc.testing.accounts import Accounts

    made = Accounts(kube.api_client, kube.namespace)
    yield made
    made.cleanup()
