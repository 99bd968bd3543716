"""``disvc render``: what a user sees on stdout and stderr."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from disvc.__main__ import main

SEED = Path(__file__).resolve().parents[2] / "config" / "samples" / "serving_v1alpha1_distributedinferenceservice.yaml"
N = "sklearn-v2-iris-rest"


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, list[dict], str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, [d for d in yaml.safe_load_all(out) if d] if code == 0 else [], err


def test_render_prints_every_child_of_the_seed(capsys: pytest.CaptureFixture[str]) -> None:
    code, docs, err = _run(capsys, "render", "-f", str(SEED))
    assert (code, err) == (0, "")
    assert [(d["kind"], d["metadata"]["name"]) for d in docs] == [
        ("InferenceService", f"{N}-v1-0"),
        ("Service", f"{N}-v1"),
        ("Service", N),
        ("Ingress", N),
    ]
    owner = docs[0]["metadata"]["ownerReferences"][0]
    assert owner["uid"] == "00000000-0000-0000-0000-000000000000"


def test_render_generation_and_domain(capsys: pytest.CaptureFixture[str]) -> None:
    code, docs, _ = _run(capsys, "render", "-f", str(SEED), "--generation", "3", "--ingress-domain", "ai.corp")
    assert code == 0
    assert docs[0]["metadata"]["name"] == f"{N}-v3-0"
    assert docs[-1]["spec"]["rules"][0]["host"] == f"{N}-kserve-demo.ai.corp"


def test_render_status_once_ready(capsys: pytest.CaptureFixture[str]) -> None:
    code, docs, _ = _run(capsys, "render", "-f", str(SEED), "--status")
    assert code == 0
    status = docs[-1]["status"]
    assert status["url"] == f"http://{N}-kserve-demo.example.com"
    assert status["address"]["url"] == f"http://{N}-v1.kserve-demo.svc.cluster.local"


def test_render_reads_several_disvcs_from_stdin(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    import io

    second = SEED.read_text().replace(f"name: {N}", "name: other")
    monkeypatch.setattr("sys.stdin", io.StringIO(SEED.read_text() + "---\n" + second))
    code, docs, _ = _run(capsys, "render", "-f", "-")
    assert code == 0 and len(docs) == 8


@dataclass(frozen=True)
class BadInput:
    id: str
    text: str
    words: tuple[str, ...]


BAD = [
    BadInput("not-yaml", "a: [b", ("not valid YAML",)),
    BadInput("empty", "", ("no DistributedInferenceService",)),
    BadInput("wrong-kind", "apiVersion: v1\nkind: Service\nmetadata: {name: x}\n", ("v1/Service", "expected")),
    BadInput("not-an-object", "- a\n- b\n", ("not a Kubernetes object",)),
    BadInput(
        "invalid-spec",
        "apiVersion: serving.kserve.io/v1alpha1\nkind: DistributedInferenceService\n"
        "metadata: {name: m, namespace: ns}\nspec: {replicas: -2, inferenceService: {predictor: {}}}\n",
        ("DistributedInferenceService ns/m", "spec.replicas", "negative"),
    ),
]


@pytest.mark.parametrize("case", BAD, ids=lambda c: c.id)
def test_bad_input_exits_non_zero_with_one_line_naming_file_and_problem(
    case: BadInput, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    manifest = tmp_path / "in.yaml"
    manifest.write_text(case.text)
    code, _, err = _run(capsys, "render", "-f", str(manifest))
    assert code != 0
    assert err.count("\n") == 1 and str(manifest) in err
    for word in case.words:
        assert word in err


def test_missing_file_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = _run(capsys, "render", "-f", str(tmp_path / "nope.yaml"))
    assert code == 1 and err.count("\n") == 1 and "nope.yaml" in err


def test_module_entry_point_runs(tmp_path: Path) -> None:
    import subprocess
    import sys

    result = subprocess.run(
        [sys.executable, "-m", "disvc", "render", "-f", str(SEED)],
        capture_output=True, text=True, check=False, cwd=Path(__file__).resolve().parents[2],
    )
    assert result.returncode == 0 and f"name: {N}-v1-0" in result.stdout
