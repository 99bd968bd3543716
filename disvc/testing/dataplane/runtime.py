"""The predictor container KServe would run for an InferenceService.

Pure functions of the ISVC object. KServe picks a serving runtime (the one
``predictor.model.runtime`` names, or the auto-selected runtime for the
model format) and merges its container with the ISVC's model container
(KServe ``MergeRuntimeContainers``: a strategic merge patch, except that
``args`` are concatenated, runtime's first):

- args: the runtime's, with ``{{.Name}}`` replaced by the ISVC's name, then
  the model's ``args``;
- env: the runtime's, then the model's (a model entry replaces a runtime
  entry of the same name, as the strategic merge keys env by name);
- ports: the model's ``ports`` merged over the runtime's by container port;
  with none declared on either, the server's default HTTP port 8080.

Only ``kserve-sklearnserver`` exists here, with the args of KServe's shipped
ClusterServingRuntime (``config/runtimes/kserve-sklearnserver.yaml``). Any
other runtime or model format raises :class:`UnsupportedRuntime` with the
reason KServe reports (``RuntimeNotRecognized``, ``NoSupportingRuntime``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from disvc.testing.dataplane.pods import ContainerPort

SKLEARN_RUNTIME: Final = "kserve-sklearnserver"
DEFAULT_HTTP_PORT: Final = 8080


@dataclass(frozen=True, slots=True)
class ServingRuntime:
    """The parts of a ClusterServingRuntime's container that shape the pod."""

    name: str
    model_formats: frozenset[str]
    args: tuple[str, ...]
    env: tuple[tuple[str, str], ...] = ()
    ports: tuple[ContainerPort, ...] = ()


RUNTIMES: Final[Mapping[str, ServingRuntime]] = {
    SKLEARN_RUNTIME: ServingRuntime(
        name=SKLEARN_RUNTIME,
        model_formats=frozenset({"sklearn"}),
        args=("--model_name={{.Name}}", "--model_dir=/mnt/models", "--http_port=8080"),
    ),
}


@dataclass(frozen=True, slots=True)
class Container:
    """The merged predictor container: what the model-server process gets."""

    runtime: str
    args: tuple[str, ...]
    env: Mapping[str, str] = field(default_factory=dict)
    ports: tuple[ContainerPort, ...] = ()


class UnsupportedRuntime(Exception):
    """KServe would find no runtime for this ISVC: it never becomes Ready."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


def _model(isvc: Mapping[str, Any]) -> Mapping[str, Any]:
    predictor = (isvc.get("spec") or {}).get("predictor") or {}
    model = predictor.get("model")
    return model if isinstance(model, Mapping) else {}


def select_runtime(isvc: Mapping[str, Any]) -> ServingRuntime:
    """The runtime KServe would use, or :class:`UnsupportedRuntime`."""
    model = _model(isvc)
    model_format = str((model.get("modelFormat") or {}).get("name") or "")
    named = model.get("runtime")
    if named:
        runtime = RUNTIMES.get(str(named))
        if runtime is None:
            raise UnsupportedRuntime(
                "RuntimeNotRecognized", f"No ServingRuntimes or ClusterServingRuntimes with the name: {named}"
            )
        if model_format not in runtime.model_formats:
            raise UnsupportedRuntime(
                "NoSupportingRuntime", f"Specified runtime {named} does not support model format {model_format!r}"
            )
        return runtime
    for runtime in RUNTIMES.values():
        if model_format in runtime.model_formats:
            return runtime
    raise UnsupportedRuntime(
        "NoSupportingRuntime", f"No runtime found to support predictor with model type: {model_format!r}"
    )


def _ports(declared: Any) -> tuple[ContainerPort, ...]:
    if not isinstance(declared, list):
        return ()
    return tuple(
        ContainerPort(int(p["containerPort"]), p.get("name"))
        for p in declared
        if isinstance(p, Mapping) and isinstance(p.get("containerPort"), int)
    )


def predictor_container(isvc: Mapping[str, Any]) -> Container:
    """The predictor container for ``isvc`` (raises :class:`UnsupportedRuntime`)."""
    runtime = select_runtime(isvc)
    model = _model(isvc)
    name = str((isvc.get("metadata") or {}).get("name", ""))
    # KServe renders the runtime container as a Go template over the ISVC's metadata.
    args = [arg.replace("{{.Name}}", name) for arg in runtime.args]
    args += [str(arg) for arg in model.get("args") or []]
    env = dict(runtime.env)
    for entry in model.get("env") or []:
        if isinstance(entry, Mapping) and "name" in entry:
            env[str(entry["name"])] = str(entry.get("value", ""))
    by_port = {p.port: p for p in runtime.ports}
    by_port.update({p.port: p for p in _ports(model.get("ports"))})
    ports = tuple(by_port.values()) or (ContainerPort(DEFAULT_HTTP_PORT),)
    return Container(runtime=runtime.name, args=tuple(args), env=env, ports=ports)
