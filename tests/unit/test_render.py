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


SAMPLES = Path(__file__).resolve().parents[2] / "config" / "samples"


def _bumped(tmp_path: Path, sample: str, **spec: object) -> tuple[str, str]:
    old = SAMPLES / sample
    manifest = yaml.safe_load(old.read_text())
    manifest["spec"]["annotations"] = {"version": "v2"}
    manifest["spec"].update(spec)
    new = tmp_path / "new.yaml"
    new.write_text(yaml.safe_dump(manifest))
    return str(old), str(new)


@pytest.mark.parametrize(
    ("sample", "step", "isvcs", "backends", "active"),
    [
        # blue/green: the whole new generation beside the old, traffic still on v1
        ("serving_v1alpha1_distributedinferenceservice_replicas3.yaml", 1, ["v1-0", "v1-1", "v1-2", "v2-0", "v2-1", "v2-2"], {"": "v1"}, "v1"),
        # the switch: v2 serves, v1 stays up for the scale-down delay (30 s)...
        ("serving_v1alpha1_distributedinferenceservice_replicas3.yaml", 2, ["v1-0", "v1-1", "v1-2", "v2-0", "v2-1", "v2-2"], {"": "v2"}, "v2"),
        # ...and the next step is that reconcile, 30 s later: v1 is gone
        ("serving_v1alpha1_distributedinferenceservice_replicas3.yaml", 3, ["v2-0", "v2-1", "v2-2"], {"": "v2"}, "v2"),
        # rolling, 4 replicas, surge 1: one new ISVC at a time behind the DISVC-level Service
        ("serving_v1alpha1_distributedinferenceservice_rolling.yaml", 1, ["v1-0", "v1-1", "v1-2", "v1-3", "v2-0"], {"": None}, "v1"),
        ("serving_v1alpha1_distributedinferenceservice_rolling.yaml", 3, ["v1-0", "v1-1", "v1-2", "v2-0", "v2-1"], {"": None}, "v1"),
        # canary: once v2 is Ready a second Ingress sends it 10%
        ("serving_v1alpha1_distributedinferenceservice_canary.yaml", 2, ["v1-0", "v1-1", "v2-0", "v2-1"], {"": "v1", "-canary": "v2"}, "v1"),
    ],
)
def test_render_shows_each_strategy_at_a_given_step(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, sample: str, step: int,
    isvcs: list[str], backends: dict[str, str | None], active: str,
) -> None:
    old, new = _bumped(tmp_path, sample)
    code, docs, err = _run(capsys, "render", "-f", new, "--from", old, "--step", str(step), "--status")
    assert (code, err) == (0, "")
    name = docs[-1]["metadata"]["name"]
    assert [d["metadata"]["name"].removeprefix(name + "-") for d in docs if d["kind"] == "InferenceService"] == isvcs
    routed = {
        d["metadata"]["name"].removeprefix(name): d["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]["name"]
        for d in docs if d["kind"] == "Ingress"
    }
    assert routed == {suffix: f"{name}-{g}" if g else name for suffix, g in backends.items()}
    assert docs[-1]["status"]["activeGeneration"] == active


def test_render_shows_the_scale_down_delay_as_a_step_of_its_own(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    old, new = _bumped(tmp_path, "serving_v1alpha1_distributedinferenceservice_replicas3.yaml")
    code, docs, _ = _run(capsys, "render", "-f", new, "--from", old, "--step", "2", "--status")
    assert code == 0
    status = docs[-1]["status"]
    progressing = next(c for c in status["conditions"] if c["type"] == "Progressing")
    assert (progressing["status"], progressing["reason"]) == ("True", "ScaleDownDelay")
    assert "generation v1 takes no traffic and is deleted at 1970-01-01T00:00:30Z" in progressing["message"]
    assert [(g["name"], g["trafficPercent"]) for g in status["generations"]] == [("v1", 0), ("v2", 100)]

    code, docs, _ = _run(capsys, "render", "-f", new, "--from", old, "--step", "3", "--status")
    assert code == 0
    progressing = next(c for c in docs[-1]["status"]["conditions"] if c["type"] == "Progressing")
    assert progressing["reason"] == "Converged"
    assert "generations" not in docs[-1]["status"]


def test_rollback_prints_the_disvc_with_the_previous_template(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    old, new = _bumped(tmp_path, "serving_v1alpha1_distributedinferenceservice_replicas3.yaml")
    code, docs, _ = _run(capsys, "render", "-f", new, "--from", old, "--step", "2", "--status")
    assert code == 0
    served = yaml.safe_load(Path(new).read_text())
    served["metadata"]["resourceVersion"] = "42"
    served["status"] = docs[-1]["status"]
    current = tmp_path / "current.yaml"
    revisions = [doc for doc in docs if doc.get("kind") == "ControllerRevision"]
    assert revisions and "template" not in served["status"]["history"][0]
    # as `kubectl get disvc N -o yaml; kubectl get controllerrevisions -l disvc=N -o yaml` print them
    current.write_text(yaml.safe_dump(served) + "---\n" + yaml.safe_dump({"apiVersion": "v1", "kind": "List", "items": revisions}))

    code, (restored,), err = _run(capsys, "rollback", "-f", str(current))
    assert (code, err) == (0, "")
    assert restored["spec"]["annotations"] == {"version": "v1"}
    assert restored["metadata"]["resourceVersion"] == "42"
    assert "status" not in restored

    code, _, err = _run(capsys, "rollback", "-f", str(current), "--to", "v9")
    assert code == 1 and "no kept template for generation v9" in err


def test_render_reads_a_folder_as_kubectl_does(capsys: pytest.CaptureFixture[str]) -> None:
    code, docs, err = _run(capsys, "render", "-f", str(SAMPLES))
    assert (code, err) == (0, "")
    # every sample (kustomization.yaml is kustomize's, not an object), in file-name order
    samples = sorted(p for p in SAMPLES.glob("*.yaml") if p.name != "kustomization.yaml")
    owners = [d["metadata"]["labels"]["disvc"] for d in docs]
    expected = [yaml.safe_load(p.read_text())["metadata"]["name"] for p in samples]
    assert list(dict.fromkeys(owners)) == expected


def test_render_of_a_folder_without_manifests_names_it(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, _, err = _run(capsys, "render", "-f", str(tmp_path))
    assert code == 1
    assert err == f"disvc render: {tmp_path}: no .yaml, .yml, .json files in the folder\n"


def test_step_without_from_is_an_error_not_ignored(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = _run(capsys, "render", "-f", str(SEED), "--step", "2")
    assert code == 2
    assert "--step needs --from" in err
