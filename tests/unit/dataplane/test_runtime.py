"""The predictor container KServe would merge for an InferenceService."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import pytest

from disvc.testing.dataplane.pods import ContainerPort
from disvc.testing.dataplane.runtime import UnsupportedRuntime, predictor_container


def _isvc(name: str = "iris-v1-0", **model: Any) -> dict[str, Any]:
    return {
        "metadata": {"name": name, "namespace": "ns"},
        "spec": {"predictor": {"model": {"modelFormat": {"name": "sklearn"}, **model}}},
    }


def test_runtime_args_come_first_with_the_isvc_name_then_the_models() -> None:
    container = predictor_container(_isvc(runtime="kserve-sklearnserver", args=["--model_name=iris"]))
    assert container.args == (
        "--model_name=iris-v1-0",
        "--model_dir=/mnt/models",
        "--http_port=8080",
        "--model_name=iris",
    )


def test_sklearn_without_a_runtime_gets_the_sklearn_server() -> None:
    container = predictor_container(_isvc())
    assert container.runtime == "kserve-sklearnserver"
    assert container.args[0] == "--model_name=iris-v1-0"


def test_ports_are_the_models_else_the_default_http_port() -> None:
    assert predictor_container(_isvc()).ports == (ContainerPort(8080),)
    grpc = predictor_container(_isvc(ports=[{"name": "h2c", "containerPort": 8081, "protocol": "TCP"}]))
    assert grpc.ports == (ContainerPort(8081, "h2c"),)


def test_env_is_the_models() -> None:
    container = predictor_container(_isvc(env=[{"name": "DISVC_IRIS_CRASH", "value": "1"}]))
    assert container.env == {"DISVC_IRIS_CRASH": "1"}


@pytest.mark.parametrize(
    ("model", "reason"),
    [
        ({"runtime": "kserve-tritonserver"}, "RuntimeNotRecognized"),
        ({"modelFormat": {"name": "onnx"}}, "NoSupportingRuntime"),
        ({"modelFormat": {"name": "onnx"}, "runtime": "kserve-sklearnserver"}, "NoSupportingRuntime"),
    ],
)
def test_what_no_runtime_serves_is_refused_with_kserves_reason(model: dict[str, Any], reason: str) -> None:
    with pytest.raises(UnsupportedRuntime) as refused:
        predictor_container(_isvc(**model))
    assert refused.value.reason == reason


def test_kserves_parser_lets_the_last_model_name_win() -> None:
    pytest.importorskip("kserve")
    args = predictor_container(_isvc(args=["--model_name=iris"])).args
    # kserve parses sys.argv when imported: ask a fresh interpreter, as the pod would.
    code = (
        "import sys; sys.argv = sys.argv[:1]\n"
        "from kserve.model_server import parser\n"
        "print(parser.parse_known_args(sys.stdin.read().split())[0].model_name)"
    )
    answer = subprocess.run(
        [sys.executable, "-c", code], input=" ".join(args), capture_output=True, text=True, check=True
    )
    assert answer.stdout.strip() == "iris"
