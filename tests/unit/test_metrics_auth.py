"""Who may read /metrics: the verdicts, and how long they are trusted.

A fake reviewer plays the API server and counts the reviews it is asked
for; a hand-stepped clock moves the cache TTLs without sleeping.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any

import pytest

from disvc.controller import errors, options
from disvc.controller.metrics_auth import ALLOW_TTL, DENY_TTL, TOKEN_TTL, MetricsAuth, bearer_token

READER = "reader-token"
TENANT = "tenant-token"


@dataclass
class FakeApi:
    """Knows two tokens; only the reader may get /metrics."""

    token_reviews: list[str] = field(default_factory=list)
    access_reviews: list[dict[str, Any]] = field(default_factory=list)
    down: bool = False

    def create_token_review(self, token: str) -> dict[str, Any]:
        self.token_reviews.append(token)
        if self.down:
            raise errors.TransientError("connection refused")
        users = {
            READER: {"username": "system:serviceaccount:monitoring:prometheus", "uid": "u-1",
                     "groups": ["system:serviceaccounts", "system:authenticated"],
                     "extra": {"authentication.kubernetes.io/pod-name": ["prometheus-0"]}},
            TENANT: {"username": "system:serviceaccount:tenant:app", "uid": "u-2", "groups": ["system:authenticated"]},
        }
        if token in users:
            return {"status": {"authenticated": True, "user": users[token]}}
        return {"status": {"user": {}, "error": "invalid bearer token"}}

    def create_subject_access_review(self, spec: dict[str, Any]) -> dict[str, Any]:
        self.access_reviews.append(spec)
        if self.down:
            raise errors.TransientError("connection refused")
        allowed = spec["user"].endswith(":prometheus") and spec["nonResourceAttributes"] == {
            "path": "/metrics", "verb": "get",
        }
        return {"status": {"allowed": allowed}}


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def api() -> FakeApi:
    return FakeApi()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def auth(api: FakeApi, clock: Clock) -> MetricsAuth:
    return MetricsAuth(api, clock=clock)


def check(auth: MetricsAuth, token: str | None, path: str = "/metrics") -> HTTPStatus:
    return auth.check(f"Bearer {token}" if token is not None else None, "get", path)


def test_no_token_is_401_without_asking_the_api(auth: MetricsAuth, api: FakeApi) -> None:
    assert check(auth, None) == HTTPStatus.UNAUTHORIZED
    assert auth.check("Basic dXNlcjpwYXNz", "get", "/metrics") == HTTPStatus.UNAUTHORIZED
    assert auth.check("Bearer ", "get", "/metrics") == HTTPStatus.UNAUTHORIZED
    assert api.token_reviews == [] and api.access_reviews == []


def test_a_rejected_token_is_401_and_never_reaches_authorization(auth: MetricsAuth, api: FakeApi) -> None:
    assert check(auth, "forged") == HTTPStatus.UNAUTHORIZED
    assert api.access_reviews == []


def test_a_reader_gets_200_and_the_review_asks_for_get_on_the_path(auth: MetricsAuth, api: FakeApi) -> None:
    assert check(auth, READER) == HTTPStatus.OK
    (spec,) = api.access_reviews
    assert spec == {
        "user": "system:serviceaccount:monitoring:prometheus",
        "uid": "u-1",
        "groups": ["system:serviceaccounts", "system:authenticated"],
        "extra": {"authentication.kubernetes.io/pod-name": ["prometheus-0"]},
        "nonResourceAttributes": {"path": "/metrics", "verb": "get"},
    }


def test_an_identity_rbac_does_not_allow_is_403(auth: MetricsAuth) -> None:
    assert check(auth, TENANT) == HTTPStatus.FORBIDDEN
    assert check(auth, READER, "/other") == HTTPStatus.FORBIDDEN


def test_repeated_scrapes_reuse_the_answers_until_they_expire(auth: MetricsAuth, api: FakeApi, clock: Clock) -> None:
    for _ in range(5):
        assert check(auth, READER) == HTTPStatus.OK
    assert (len(api.token_reviews), len(api.access_reviews)) == (1, 1)

    clock.now += TOKEN_TTL
    assert check(auth, READER) == HTTPStatus.OK
    assert (len(api.token_reviews), len(api.access_reviews)) == (2, 1), "the token is reviewed again"

    clock.now += ALLOW_TTL
    assert check(auth, READER) == HTTPStatus.OK
    assert (len(api.token_reviews), len(api.access_reviews)) == (3, 2), "and the allow decision"


def test_denials_are_trusted_briefly_so_a_new_binding_takes_effect_soon(
    auth: MetricsAuth, api: FakeApi, clock: Clock
) -> None:
    assert check(auth, TENANT) == HTTPStatus.FORBIDDEN
    assert check(auth, "forged") == HTTPStatus.UNAUTHORIZED
    assert check(auth, TENANT) == HTTPStatus.FORBIDDEN
    assert check(auth, "forged") == HTTPStatus.UNAUTHORIZED
    assert (len(api.token_reviews), len(api.access_reviews)) == (2, 1)

    clock.now += DENY_TTL
    check(auth, TENANT)
    check(auth, "forged")
    # The tenant's identity is still known (token TTL); its denial and the forged token are asked again.
    assert (len(api.token_reviews), len(api.access_reviews)) == (3, 2)
    assert DENY_TTL < ALLOW_TTL


def test_an_unreachable_api_is_503_and_not_remembered(auth: MetricsAuth, api: FakeApi) -> None:
    api.down = True
    assert check(auth, READER) == HTTPStatus.SERVICE_UNAVAILABLE
    api.down = False
    assert check(auth, READER) == HTTPStatus.OK
    assert len(api.token_reviews) == 2


def test_caches_are_bounded_and_hold_no_raw_tokens(api: FakeApi, clock: Clock) -> None:
    auth = MetricsAuth(api, clock=clock, max_entries=3)
    for number in range(50):
        check(auth, f"forged-{number}")
    assert len(auth.tokens) == 3
    assert not any("forged" in key for key in auth.tokens._entries)


def test_bearer_token_parsing() -> None:
    assert bearer_token("Bearer abc") == "abc"
    assert bearer_token("bearer   abc ") == "abc"
    assert bearer_token("Token abc") is None
    assert bearer_token(None) is None


def test_secure_metrics_is_off_for_local_runs_and_can_be_turned_on_and_off() -> None:
    assert options.parse([]).metrics_secure is False
    assert options.parse([]).metrics_cert_dir is None
    parsed = options.parse(["--metrics-secure", "--metrics-cert-dir", "/certs"])
    assert parsed.metrics_secure and parsed.metrics_cert_dir == "/certs"
    assert options.parse(["--metrics-secure", "--no-metrics-secure"]).metrics_secure is False
