"""The replica InferenceServices: ``N-v<g>-<i>``, one per replica of a generation.

Each is the user's template passed through verbatim except that the model is
served under the DISVC's name (``--model_name=N``) so clients call
``/v2/models/N/infer`` whichever replica answers, plus our labels, the
propagated annotations and the template hash that identifies the generation.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from disvc.builders import names, ownership
from disvc.builders.spec import DisvcSpec
from disvc.builders.types import ISVC_API_VERSION, ISVC_KIND, Obj

MODEL_NAME_ARG: Final = "--model_name"


def template_hash(spec: DisvcSpec) -> str:
    """Hash of everything that shapes an ISVC; a new value means a new generation.

    Replicas are left out on purpose: scaling never starts a rollout."""
    return names.content_hash({"template": spec.template, "annotations": spec.isvc_annotations})


def isvc_spec(spec: DisvcSpec) -> dict[str, Any]:
    """The ``spec`` every replica ISVC gets: a copy of the template with the
    model name argument set (unless the user set one, or runs custom containers)."""
    body: dict[str, Any] = copy_json(spec.template)
    predictor = body["predictor"]
    model = predictor.get("model")
    if isinstance(model, dict):
        args = model.get("args")
        if args is None:
            model["args"] = [f"{MODEL_NAME_ARG}={spec.name}"]
        elif isinstance(args, list) and not has_model_name_arg(args):
            args.append(f"{MODEL_NAME_ARG}={spec.name}")
    return body


def has_model_name_arg(args: list[Any]) -> bool:
    """True when ``args`` already names the model (``--model_name=x`` or ``--model_name x``)."""
    return any(
        isinstance(arg, str) and (arg == MODEL_NAME_ARG or arg.startswith(MODEL_NAME_ARG + "="))
        for arg in args
    )


def isvc(
    spec: DisvcSpec, generation: int, index: int, body: Mapping[str, Any], hash_: str
) -> Obj:
    """Replica ``index`` of ``generation``; ``body`` comes from ``isvc_spec`` (copied here)."""
    annotations = dict(spec.isvc_annotations)
    annotations[names.TEMPLATE_HASH_ANNOTATION] = hash_
    return {
        "apiVersion": ISVC_API_VERSION,
        "kind": ISVC_KIND,
        "metadata": ownership.child_metadata(
            spec.name,
            spec.uid,
            names.isvc_name(spec.name, generation, index),
            spec.namespace,
            names.generation_labels(spec.name, generation),
            annotations,
        ),
        "spec": copy_json(body),
    }


def copy_json(value: Any) -> Any:
    """A deep copy of a JSON value; several times faster than ``copy.deepcopy``
    because it knows only dicts, lists and immutable scalars can occur."""
    if isinstance(value, Mapping):
        return {key: copy_json(item) for key, item in value.items()}
    if isinstance(value, list):
        return [copy_json(item) for item in value]
    return value
