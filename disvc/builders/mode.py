"""KServe's deployment mode of a DISVC's InferenceServices: Standard or Knative.

KServe (``pkg/constants/constants.go``, ``ParseDeploymentMode``) knows the
modes ``Standard`` and ``Knative``, and still accepts their names before
v0.16, ``RawDeployment`` and ``Serverless``; it compares them case-sensitively
and ignores an unknown value. An InferenceService's mode is, in KServe's order
(``GetDeploymentMode``): its ``status.deploymentMode`` once set (the mode
sticks), else the ``serving.kserve.io/deploymentMode`` annotation, else the
cluster default in the ``inferenceservice-config`` ConfigMap.

A DISVC asks for a mode with the same annotation (copied to every ISVC like
every ``serving.kserve.io/`` annotation); without one, the controller's
``--default-deployment-mode`` flag, when set, is stamped on the ISVCs so
KServe and the controller agree. Either way the annotation is part of the
template hash, so a changed mode is a new generation, rolled out like any
template change: a live generation's mode never flips under it.

KServe's word is final: once a generation's ISVCs report a mode in
``status.deploymentMode``, the generation's Services are built for it
(``knative`` holds the Knative-mode shape). ``problem`` names what a user
must hear about: children that disagree with the annotation or with each
other, and a Knative mode KServe could not honour (``ServerlessModeRejected``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import replace
from typing import Final, Literal, TypeAlias

from disvc.builders import names
from disvc.builders.spec import DisvcSpec, InvalidSpec
from disvc.builders.types import Obj, find_condition

Mode: TypeAlias = Literal["Standard", "Knative"]

ANNOTATION: Final = "serving.kserve.io/deploymentMode"
STANDARD: Final[Mode] = "Standard"
KNATIVE: Final[Mode] = "Knative"

SPELLINGS: Final[Mapping[str, Mode]] = {
    "Standard": "Standard",
    "RawDeployment": "Standard",
    "Knative": "Knative",
    "Serverless": "Knative",
}
"""Every value of the annotation a DISVC may use, with the mode it means."""

ASSUMED: Final[Mode] = STANDARD
"""The mode assumed for a generation nobody named a mode for, until its ISVCs
report one (KServe's own built-in default, ``DefaultDeployment``)."""


def parse(value: object) -> Mode | None:
    """The mode ``value`` spells (either name), or None for anything else."""
    return SPELLINGS.get(value) if isinstance(value, str) else None


def requested(spec: DisvcSpec) -> Mode | None:
    """The mode the DISVC's annotation asks for (None: it names none).

    Raises ``InvalidSpec`` for a value KServe would ignore without a word."""
    value = spec.isvc_annotations.get(ANNOTATION)
    if value is None:
        return None
    mode = parse(value)
    if mode is None:
        raise InvalidSpec(
            f"metadata.annotations[{ANNOTATION}]",
            f"{value!r} is not a deployment mode a DistributedInferenceService supports; "
            f"use one of {', '.join(SPELLINGS)} (KServe silently ignores other values)",
        )
    return mode


def with_default(spec: DisvcSpec, default: Mode | None) -> DisvcSpec:
    """``spec`` with the controller's default mode stamped on its ISVCs when
    the DISVC names none (and the flag names one)."""
    if default is None or ANNOTATION in spec.isvc_annotations:
        return spec
    return replace(spec, isvc_annotations={**spec.isvc_annotations, ANNOTATION: default})


def reported(isvc: Obj) -> Mode | None:
    """The mode KServe recorded in the ISVC's ``status.deploymentMode``."""
    status = isvc.get("status")
    return parse(status.get("deploymentMode")) if isinstance(status, Mapping) else None


def is_knative(isvc: Obj) -> bool:
    return reported(isvc) == KNATIVE


def of_generation(requested_mode: Mode | None, isvcs: Iterable[Obj]) -> Mode:
    """The mode to build a generation's Services for: the one its ISVCs
    report when they agree, else the one asked for, else ``ASSUMED``."""
    modes = {mode for mode in (reported(obj) for obj in isvcs) if mode is not None}
    if len(modes) == 1:
        return next(iter(modes))
    return requested_mode or ASSUMED


def is_rejected(isvc: Obj) -> bool:
    """True when KServe recorded mode Knative but built nothing: what its
    ``ServerlessModeRejected`` leaves behind (the mode in the status, no
    conditions), because the Knative Service CRD is not installed."""
    status = isvc.get("status")
    if not isinstance(status, Mapping) or parse(status.get("deploymentMode")) != KNATIVE:
        return False
    return find_condition(status, "Ready") is None and not status.get("components")


def problem(requested_mode: Mode | None, isvcs: Mapping[str, Obj]) -> tuple[str, str] | None:
    """``(reason, message)`` when the ISVCs' modes are not what was asked
    for, disagree, or could not be honoured; None when all is well."""
    rejected = sorted(name for name, obj in isvcs.items() if is_rejected(obj))
    if rejected:
        return (
            "ServerlessModeRejected",
            (
                f"KServe refused Knative mode for InferenceService {', '.join(rejected)} "
                "(ServerlessModeRejected: Knative Serving is not installed); install it, or set "
                f"{ANNOTATION}: Standard on the DistributedInferenceService"
            ),
        )
    by_mode: dict[Mode, list[str]] = {}
    for name in sorted(isvcs):
        mode = reported(isvcs[name])
        if mode is not None:
            by_mode.setdefault(mode, []).append(name)
    if len(by_mode) > 1:
        listed = "; ".join(f"{mode}: {', '.join(found)}" for mode, found in sorted(by_mode.items()))
        return (
            "DeploymentModeMismatch",
            (
                f"the InferenceServices of one generation run in different modes ({listed}): "
                "their Services cannot reach both; delete the odd ones so they are recreated"
            ),
        )
    if requested_mode is not None and by_mode and requested_mode not in by_mode:
        actual = next(iter(by_mode))
        return (
            "DeploymentModeMismatch",
            (
                f"KServe runs InferenceService {', '.join(by_mode[actual])} in {actual} mode "
                f"(status.deploymentMode) though {requested_mode} was asked for: a KServe "
                "older than v0.16 knows only RawDeployment and Serverless and ignores other "
                f"values of {ANNOTATION}; the Services follow KServe"
            ),
        )
    return None


def generation_isvcs(disvc_name: str, isvcs: Mapping[int, Obj], number: int) -> dict[str, Obj]:
    """``isvcs`` (by replica index) keyed by name, for ``problem``'s messages."""
    return {names.isvc_name(disvc_name, number, index): obj for index, obj in isvcs.items()}
