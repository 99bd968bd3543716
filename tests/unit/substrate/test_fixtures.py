"""The pure parts of the pytest plugin: the poller, backend choice, names,
and which CRDs a session installs."""

from __future__ import annotations

from pathlib import Path

import pytest

from disvc.testing import crds, fixtures


def test_eventually_returns_the_value_once_the_assertion_holds() -> None:
    calls = []

    def settles_on_third_call() -> str:
        calls.append(1)
        assert len(calls) >= 3, "not yet"
        return "done"

    assert fixtures.eventually(settles_on_third_call, timeout=5.0, interval=0.0) == "done"
    assert len(calls) == 3


def test_eventually_reraises_the_last_assertion_at_the_deadline() -> None:
    attempts = []

    def never() -> None:
        attempts.append(1)
        raise AssertionError(f"attempt {len(attempts)}")

    with pytest.raises(AssertionError) as caught:
        fixtures.eventually(never, timeout=0.05, interval=0.01)
    assert str(caught.value) == f"attempt {len(attempts)}"


def test_eventually_does_not_swallow_other_errors() -> None:
    def broken() -> None:
        raise KeyError("bug")

    with pytest.raises(KeyError):
        fixtures.eventually(broken, timeout=5.0)


@pytest.mark.parametrize(
    ("environment", "expected"),
    [
        ({}, "substrate"),
        ({"KUBEBUILDER_ASSETS": "/assets"}, "envtest"),
        ({"DISVC_TEST_KUBECONFIG": "/kc"}, "kubeconfig"),
        ({"DISVC_TEST_KUBECONFIG": "/kc", "KUBEBUILDER_ASSETS": "/assets"}, "kubeconfig"),
    ],
)
def test_backend_selection(monkeypatch: pytest.MonkeyPatch, environment: dict[str, str], expected: str) -> None:
    monkeypatch.delenv("DISVC_TEST_KUBECONFIG", raising=False)
    monkeypatch.delenv("KUBEBUILDER_ASSETS", raising=False)
    for key, value in environment.items():
        monkeypatch.setenv(key, value)
    assert fixtures.selected_backend() == expected


def test_namespace_names_are_valid_unique_and_name_the_test() -> None:
    long_name = "test_something_quite_long[with-params and spaces]" * 3
    first, second = fixtures.namespace_name(long_name), fixtures.namespace_name(long_name)
    assert first != second
    for name in (first, second):
        assert len(name) <= 2 + fixtures.NAMESPACE_SLUG_LENGTH + 7
        assert name.startswith("t-something-quite-long")
        assert all(c.isalnum() or c == "-" for c in name) and name == name.lower()
        assert "--" not in name


def test_without_the_kserve_crd_file_a_minimal_crd_is_installed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(crds, "kserve_crd_file", lambda: None)
    [(crd, replace)] = fixtures.crds_to_install(tmp_path)
    assert crd["metadata"]["name"] == "inferenceservices.serving.kserve.io"
    assert crd["spec"]["versions"][0]["subresources"] == {"status": {}}
    assert replace is False


def test_without_our_crd_folder_installing_is_an_error_not_a_silent_gap(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="source checkout"):
        crds.crds_to_install(tmp_path / "no-such-folder")


def test_the_kserve_crd_fetched_into_the_cache_is_found(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(crds.ISVC_CRD_ENV, raising=False)
    monkeypatch.setenv(crds.CRD_CACHE_ENV, str(tmp_path))
    fetched = tmp_path / crds.ISVC_CRD_BASENAME
    fetched.write_text("kind: CustomResourceDefinition\n")
    assert crds.kserve_crd_file() == fetched


def test_the_kserve_crd_named_by_the_environment_comes_first(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    named = tmp_path / "isvc.yaml"
    named.write_text("kind: CustomResourceDefinition\n")
    monkeypatch.setenv(crds.ISVC_CRD_ENV, str(named))
    assert crds.kserve_crd_file() == named


def test_a_missing_kserve_crd_named_by_the_environment_is_an_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(crds.ISVC_CRD_ENV, str(tmp_path / "absent.yaml"))
    with pytest.raises(FileNotFoundError, match="DISVC_KSERVE_CRD"):
        crds.kserve_crd_file()


def test_our_crds_are_replaced_and_kserves_left_alone(tmp_path: Path) -> None:
    bases = tmp_path / "bases"
    bases.mkdir()
    (bases / "ours.yaml").write_text(
        "apiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\nmetadata: {name: a.example.com}\n"
    )
    (bases / "kustomization.yaml").write_text("resources: [ours.yaml]\n")
    kserve = tmp_path / "isvc.yaml"
    kserve.write_text(
        "apiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\nmetadata: {name: b.example.com}\n"
    )
    wanted = [(crd["metadata"]["name"], replace) for crd, replace in fixtures.crds_to_install(bases, kserve)]
    assert wanted == [("a.example.com", True), ("b.example.com", False)]


@pytest.mark.parametrize(
    ("kind", "plural"),
    [("Service", "services"), ("Ingress", "ingresses"), ("Policy", "policies"), ("Gateway", "gateways")],
)
def test_plural_guess_for_when_discovery_is_missing(kind: str, plural: str) -> None:
    assert fixtures._guess_plural(kind) == plural


def test_resource_path() -> None:
    core = fixtures.ResourceInfo("services", namespaced=True)
    crd = fixtures.ResourceInfo("customresourcedefinitions", namespaced=False)
    assert fixtures.resource_path("v1", core, "ns", "s") == "/api/v1/namespaces/ns/services/s"
    assert (
        fixtures.resource_path("apiextensions.k8s.io/v1", crd, "ns", "x")
        == "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/x"
    )
