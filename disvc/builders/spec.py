"""A DISVC's spec, read once into a typed value, or ``InvalidSpec`` naming the field.

Every other builder works from ``DisvcSpec`` rather than from the raw dict, so
the checks (and the ``inferenservice`` alias the seed manifests use) live in
one place. The CRD's schema and CEL rules reject most of these mistakes at
admission; this module is the controller's own guard for objects that got in
anyway (an older CRD, a client that skipped validation), because a bad spec
must never crash a reconcile.

Reads the input, never mutates it: the DISVC comes from a shared cache.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final, Literal, TypeAlias

from disvc.builders import names
from disvc.builders.types import Obj

TEMPLATE_FIELD: Final = "inferenceService"
"""The documented spelling of the ISVC template field."""

TEMPLATE_ALIAS: Final = "inferenservice"
"""The seed manifests' spelling, accepted as an alias."""

StrategyName: TypeAlias = Literal["BlueGreen", "Rolling"]
AffinityType: TypeAlias = Literal["ClientIP", "Cookie", "None"]
AFFINITY_TYPES: Final[tuple[AffinityType, ...]] = ("ClientIP", "Cookie", "None")
DEFAULT_AFFINITY_TIMEOUT_SECONDS: Final = 10800
"""Three hours: Kubernetes' default for a Service's ClientIP affinity."""
MAX_AFFINITY_TIMEOUT_SECONDS: Final = 86400
"""A day: the most a Service's ``sessionAffinityConfig`` accepts."""
DEFAULT_AFFINITY_COOKIE: Final = "disvc-affinity"
"""The cookie a router hands out for ``type: Cookie`` unless ``cookieName`` says otherwise."""
_COOKIE_NAME: Final = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]{1,64}")
STRATEGIES: Final[tuple[StrategyName, ...]] = ("BlueGreen", "Rolling")

DEFAULT_PROGRESS_DEADLINE_SECONDS: Final = 600
DEFAULT_SCALE_DOWN_DELAY_SECONDS: Final = 30
"""How long a generation traffic left stays up: long enough for an ingress
controller or a cloud load balancer to apply the route change (Argo Rollouts
waits the same 30 s by default)."""

DEFAULT_ANALYSIS_INTERVAL: Final = "1m"
ANALYSIS_PLACEHOLDERS: Final = frozenset({"namespace", "name", "generation", "service", "interval"})
"""What ``{{ ... }}`` in an analysis query may name (``analysis.render`` fills them in)."""
PLACEHOLDER: Final = re.compile(r"\{\{\s*([A-Za-z_]+)\s*\}\}")
_DURATION: Final = re.compile(r"(?:[0-9]+(?:ms|s|m|h))+")
_DURATION_PART: Final = re.compile(r"([0-9]+)(ms|s|m|h)")
_DURATION_UNITS: Final = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
_METRIC_NAME: Final = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
RETRY_ANNOTATION: Final = "disvc.serving.kserve.io/analysis-retry"
"""On the DISVC: changing it retries an aborted analysis (``kubectl disvc retry``)."""
_PERCENT: Final = re.compile(r"(100|[1-9]?[0-9])%")
_DNS_1035_LABEL: Final = re.compile(r"[a-z]([-a-z0-9]*[a-z0-9])?")
_DNS_1123_LABEL: Final = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")


class InvalidSpec(Exception):
    """The DISVC cannot be built; retrying cannot help until the user edits it."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        """JSON path of the offending field, e.g. ``spec.replicas``."""
        self.reason = reason
        """What is wrong with it, in words a user can act on."""


@dataclass(frozen=True, slots=True)
class GatewayRef:
    """``spec.ingress.gateway``: the Gateway API Gateway an HTTPRoute attaches to."""

    name: str
    namespace: str | None = None
    """None: the DISVC's namespace."""
    section_name: str | None = None
    """One listener of the Gateway; None: every listener that allows the route."""


@dataclass(frozen=True, slots=True)
class IngressSpec:
    """``spec.ingress`` with its defaults applied."""

    enabled: bool = True
    host: str | None = None
    """Host override; None means ``N-NS.<domain>``."""
    class_name: str | None = None
    tls_secret_name: str | None = None
    annotations: Mapping[str, str] | None = None
    gateway: GatewayRef | None = None
    """When set, an HTTPRoute replaces the Ingress(es)."""


@dataclass(frozen=True, slots=True)
class SessionAffinity:
    """``spec.sessionAffinity`` with its defaults applied: how each client
    keeps reaching one replica (``affinity`` turns it into each router's terms)."""

    type: AffinityType = "ClientIP"
    timeout_seconds: int = DEFAULT_AFFINITY_TIMEOUT_SECONDS
    cookie_name: str = DEFAULT_AFFINITY_COOKIE


@dataclass(frozen=True, slots=True)
class MetricSpec:
    """One entry of ``spec.rollout.analysis.metrics``: a PromQL query and its bounds."""

    name: str
    query: str
    """PromQL with ``{{ placeholders }}`` (see ``ANALYSIS_PLACEHOLDERS``)."""
    max: float | None = None
    """The value must not be above this (None: no upper bound)."""
    min: float | None = None
    """The value must not be below this (None: no lower bound)."""


@dataclass(frozen=True, slots=True)
class AnalysisSpec:
    """``spec.rollout.analysis``: the canary weights to walk and what each step must pass."""

    steps: tuple[int, ...]
    """Increasing canary weights (1-99); after the last step passes, the canary is promoted."""
    interval: str
    """As written (``30s``): how often metrics are measured and how long a step lasts at least."""
    interval_seconds: float
    failure_limit: int
    """Failed measurements tolerated within one step; one more aborts."""
    metrics: tuple[MetricSpec, ...]
    retry: str = ""
    """The DISVC's ``RETRY_ANNOTATION``: a new value starts an aborted analysis over."""


@dataclass(frozen=True, slots=True)
class RolloutSpec:
    """``spec.rollout`` with its defaults applied: how a new generation
    replaces the serving one (the strategies live in ``builders.strategies``)."""

    strategy: StrategyName = "BlueGreen"
    max_surge: int | str = 1
    """ISVCs allowed above ``replicas`` during a rolling rollout (count or ``"N%"``)."""
    max_unavailable: int | str = 0
    """ISVCs allowed below ``replicas`` Ready during a rolling rollout."""
    canary_traffic_percent: int | None = None
    """Share of external traffic for a new generation once it is Ready; None
    (or 100) promotes it."""
    progress_deadline_seconds: int = DEFAULT_PROGRESS_DEADLINE_SECONDS
    scale_down_delay_seconds: int = DEFAULT_SCALE_DOWN_DELAY_SECONDS
    """Seconds a generation stays up after traffic moved away from it (0: it
    goes in the reconcile that moves the route)."""
    analysis: AnalysisSpec | None = None
    """Automated analysis of a canary (``builders.analysis``); only with a canary."""

    @property
    def is_canary(self) -> bool:
        return self.canary_traffic_percent is not None and self.canary_traffic_percent < 100

    def surge(self, replicas: int) -> int:
        """``maxSurge`` as a count; a percentage rounds up, as a Deployment's does."""
        return _resolve(self.max_surge, replicas, round_up=True)

    def unavailable(self, replicas: int) -> int:
        """``maxUnavailable`` as a count; a percentage rounds down, as a Deployment's does.

        When both bounds come to 0 (small percentages of few replicas) it is 1,
        as for a Deployment: otherwise no ISVC could ever be replaced."""
        count = _resolve(self.max_unavailable, replicas, round_up=False)
        if count == 0 and self.surge(replicas) == 0 and replicas > 0:
            return 1
        return count


def _resolve(value: int | str, replicas: int, round_up: bool) -> int:
    if isinstance(value, int):
        return value
    percent = int(value[:-1])
    scaled = percent * replicas
    return -(-scaled // 100) if round_up else scaled // 100


@dataclass(frozen=True, slots=True)
class DisvcSpec:
    """What the builders need from one DISVC, validated."""

    name: str
    namespace: str
    uid: str
    generation: int
    """``metadata.generation``, reported back as ``status.observedGeneration``."""
    replicas: int
    template: Mapping[str, Any]
    """The ISVC spec template as the user wrote it (shared with the cache: read only)."""
    template_field: str
    """``spec.inferenceService`` or ``spec.inferenservice``, for messages."""
    isvc_annotations: Mapping[str, str]
    """Propagated ``serving.kserve.io/`` metadata annotations overlaid with
    ``spec.annotations``: exactly what every ISVC carries besides our own."""
    ingress: IngressSpec
    rollout: RolloutSpec
    annotations: Mapping[str, str]
    """``spec.annotations`` alone, as the user wrote it (kept in ``status.history``)."""
    affinity: SessionAffinity = SessionAffinity()


def metadata_name(disvc: Obj) -> str:
    """The DISVC's name, or ``""`` when even that is missing."""
    meta = disvc.get("metadata")
    name = meta.get("name") if isinstance(meta, Mapping) else None
    return name if isinstance(name, str) else ""


def is_dns_subdomain(value: str) -> bool:
    """RFC 1123 subdomain, as Kubernetes checks Ingress hosts."""
    return len(value) <= 253 and all(
        len(label) <= names.MAX_NAME_LENGTH and _DNS_1123_LABEL.fullmatch(label)
        for label in value.split(".")
    )


def parse(disvc: Obj) -> DisvcSpec:
    """Read and check ``disvc``; raise ``InvalidSpec`` for the first problem found."""
    meta = disvc.get("metadata")
    if not isinstance(meta, Mapping):
        raise InvalidSpec("metadata", "must be an object")
    name = meta.get("name")
    if not isinstance(name, str) or not name:
        raise InvalidSpec("metadata.name", "required")
    if len(name) > names.MAX_DISVC_NAME_LENGTH:
        raise InvalidSpec(
            "metadata.name",
            f"must be at most {names.MAX_DISVC_NAME_LENGTH} characters "
            f"so that child names N-v<g>-<i> fit in {names.MAX_NAME_LENGTH}",
        )
    if not _DNS_1035_LABEL.fullmatch(name):
        raise InvalidSpec(
            "metadata.name",
            "must be a DNS-1035 label (lowercase letters, digits, '-'; starting with a letter) "
            "because it names InferenceServices",
        )
    namespace = meta.get("namespace")
    generation = meta.get("generation")
    uid = meta.get("uid")

    spec = disvc.get("spec")
    if not isinstance(spec, Mapping):
        raise InvalidSpec("spec", "required and must be an object")
    return DisvcSpec(
        name=name,
        namespace=namespace if isinstance(namespace, str) else "",
        uid=uid if isinstance(uid, str) else "",
        generation=generation if isinstance(generation, int) and _is_int(generation) else 0,
        replicas=_replicas(spec),
        template=_template(spec),
        template_field=f"spec.{TEMPLATE_ALIAS if TEMPLATE_ALIAS in spec else TEMPLATE_FIELD}",
        isvc_annotations={
            **_propagated(meta),
            **_string_map(spec.get("annotations"), "spec.annotations"),
        },
        ingress=_ingress(spec.get("ingress")),
        rollout=_rollout(spec.get("rollout"), _retry(meta)),
        annotations=_string_map(spec.get("annotations"), "spec.annotations"),
        affinity=_affinity(spec.get("sessionAffinity")),
    )


def _is_int(value: object) -> bool:
    # bool is an int subclass, but `replicas: true` is a typo, not a count
    return isinstance(value, int) and not isinstance(value, bool)


def _replicas(spec: Mapping[str, Any]) -> int:
    replicas = spec.get("replicas", 1)
    if replicas is None:
        return 1
    if not _is_int(replicas):
        raise InvalidSpec("spec.replicas", "must be an integer")
    if replicas < 0:
        raise InvalidSpec("spec.replicas", "must not be negative")
    return int(replicas)


def _template(spec: Mapping[str, Any]) -> Mapping[str, Any]:
    if TEMPLATE_FIELD in spec and TEMPLATE_ALIAS in spec:
        raise InvalidSpec(
            f"spec.{TEMPLATE_FIELD}",
            f"set only one of {TEMPLATE_FIELD} and its alias {TEMPLATE_ALIAS}",
        )
    field = TEMPLATE_ALIAS if TEMPLATE_ALIAS in spec else TEMPLATE_FIELD
    template = spec.get(field)
    if template is None:
        raise InvalidSpec(f"spec.{TEMPLATE_FIELD}", "required (the InferenceService spec template)")
    if not isinstance(template, Mapping):
        raise InvalidSpec(f"spec.{field}", "must be an object (an InferenceService spec)")
    if not isinstance(template.get("predictor"), Mapping):
        raise InvalidSpec(f"spec.{field}.predictor", "required and must be an object")
    for component in ("transformer", "explainer"):
        if component in template and not isinstance(template[component], Mapping):
            raise InvalidSpec(f"spec.{field}.{component}", "must be an object")
    return template


def _string_map(value: object, field: str) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise InvalidSpec(field, "must be a map of strings")
    for key, item in value.items():
        if not isinstance(key, str) or not isinstance(item, str):
            raise InvalidSpec(f"{field}.{key}", "must be a string")
    return dict(value)


def _propagated(meta: Mapping[str, Any]) -> dict[str, str]:
    annotations = meta.get("annotations")
    if not isinstance(annotations, Mapping):
        return {}
    return {
        key: value
        for key, value in annotations.items()
        if isinstance(key, str)
        and key.startswith(names.PROPAGATED_ANNOTATION_PREFIX)
        and isinstance(value, str)
    }


def _optional_string(value: object, field: str) -> str | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise InvalidSpec(field, "must be a string")
    return value


def _ingress(value: object) -> IngressSpec:
    if value is None:
        return IngressSpec()
    if not isinstance(value, Mapping):
        raise InvalidSpec("spec.ingress", "must be an object")
    enabled = value.get("enabled", True)
    if not isinstance(enabled, bool):
        raise InvalidSpec("spec.ingress.enabled", "must be true or false")
    host = _optional_string(value.get("host"), "spec.ingress.host")
    if host is not None and not is_dns_subdomain(host):
        raise InvalidSpec("spec.ingress.host", f"{host!r} is not a valid DNS host name")
    tls = value.get("tls")
    if tls is not None and not isinstance(tls, Mapping):
        raise InvalidSpec("spec.ingress.tls", "must be an object")
    annotations = _string_map(value.get("annotations"), "spec.ingress.annotations")
    gateway = _gateway(value.get("gateway"))
    if gateway is not None and value.get("className"):
        raise InvalidSpec(
            "spec.ingress.className",
            "applies to an Ingress; with spec.ingress.gateway the Gateway decides",
        )
    return IngressSpec(
        enabled=enabled,
        host=host,
        class_name=_optional_string(value.get("className"), "spec.ingress.className"),
        tls_secret_name=_optional_string(
            tls.get("secretName") if tls is not None else None, "spec.ingress.tls.secretName"
        ),
        annotations=annotations or None,
        gateway=gateway,
    )


def _gateway(value: object) -> GatewayRef | None:
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise InvalidSpec("spec.ingress.gateway", "must be an object")
    name = value.get("name")
    if not isinstance(name, str) or not is_dns_subdomain(name):
        raise InvalidSpec("spec.ingress.gateway.name", "required: the Gateway's name (a DNS subdomain)")
    namespace = _optional_string(value.get("namespace"), "spec.ingress.gateway.namespace")
    if namespace is not None and not _DNS_1123_LABEL.fullmatch(namespace):
        raise InvalidSpec("spec.ingress.gateway.namespace", f"{namespace!r} is not a namespace name")
    section = _optional_string(value.get("sectionName"), "spec.ingress.gateway.sectionName")
    if section is not None and not is_dns_subdomain(section):
        raise InvalidSpec("spec.ingress.gateway.sectionName", f"{section!r} is not a listener name")
    return GatewayRef(name=name, namespace=namespace, section_name=section)


def _retry(meta: Mapping[str, Any]) -> str:
    annotations = meta.get("annotations")
    token = annotations.get(RETRY_ANNOTATION) if isinstance(annotations, Mapping) else None
    return token if isinstance(token, str) else ""


def _rollout(value: object, retry: str = "") -> RolloutSpec:
    if value is None:
        return RolloutSpec()
    if not isinstance(value, Mapping):
        raise InvalidSpec("spec.rollout", "must be an object")
    strategy = value.get("strategy", "BlueGreen")
    if strategy is None:
        strategy = "BlueGreen"
    if strategy not in STRATEGIES:
        raise InvalidSpec("spec.rollout.strategy", f"must be one of {', '.join(STRATEGIES)}")
    surge = _int_or_percent(value.get("maxSurge", 1), "spec.rollout.maxSurge")
    unavailable = _int_or_percent(value.get("maxUnavailable", 0), "spec.rollout.maxUnavailable")
    if strategy == "Rolling" and _is_zero(surge) and _is_zero(unavailable):
        raise InvalidSpec(
            "spec.rollout.maxSurge",
            "maxSurge and maxUnavailable must not both be 0: the rollout could never replace an ISVC",
        )
    canary = value.get("canaryTrafficPercent")
    if canary is not None:
        if not _is_int(canary) or not 0 <= canary <= 100:
            raise InvalidSpec(
                "spec.rollout.canaryTrafficPercent", "must be an integer from 0 to 100"
            )
        if strategy != "BlueGreen":
            raise InvalidSpec(
                "spec.rollout.canaryTrafficPercent",
                "needs strategy BlueGreen (a canary runs the whole new generation beside the old)",
            )
    deadline = value.get("progressDeadlineSeconds", DEFAULT_PROGRESS_DEADLINE_SECONDS)
    if deadline is None:
        deadline = DEFAULT_PROGRESS_DEADLINE_SECONDS
    if not _is_int(deadline) or deadline < 1:
        raise InvalidSpec("spec.rollout.progressDeadlineSeconds", "must be a positive integer")
    delay = value.get("scaleDownDelaySeconds", DEFAULT_SCALE_DOWN_DELAY_SECONDS)
    if delay is None:
        delay = DEFAULT_SCALE_DOWN_DELAY_SECONDS
    if not _is_int(delay) or delay < 0:
        raise InvalidSpec("spec.rollout.scaleDownDelaySeconds", "must be a non-negative integer")
    analysis = _analysis(value.get("analysis"), retry)
    if analysis is not None and canary is None:
        raise InvalidSpec(
            "spec.rollout.analysis",
            "needs a canary: set spec.rollout.canaryTrafficPercent (the analysis walks its steps' weights)",
        )
    return RolloutSpec(
        strategy=strategy,
        max_surge=surge,
        max_unavailable=unavailable,
        canary_traffic_percent=canary,
        progress_deadline_seconds=deadline,
        scale_down_delay_seconds=delay,
        analysis=analysis,
    )


def duration_seconds(text: str) -> float | None:
    """A Prometheus duration (``30s``, ``1m30s``, ``500ms``) in seconds; None if it is not one."""
    if not _DURATION.fullmatch(text):
        return None
    return sum(int(count) * _DURATION_UNITS[unit] for count, unit in _DURATION_PART.findall(text))


def _analysis(value: object, retry: str) -> AnalysisSpec | None:
    if value is None:
        return None
    field = "spec.rollout.analysis"
    if not isinstance(value, Mapping):
        raise InvalidSpec(field, "must be an object")
    steps = value.get("steps")
    if (
        not isinstance(steps, list)
        or not steps
        or not all(_is_int(step) and 1 <= step <= 99 for step in steps)
        or any(a >= b for a, b in itertools.pairwise(steps))
    ):
        raise InvalidSpec(f"{field}.steps", "must be increasing canary weights from 1 to 99, e.g. [10, 30, 60]")
    interval = value.get("interval", DEFAULT_ANALYSIS_INTERVAL) or DEFAULT_ANALYSIS_INTERVAL
    seconds = duration_seconds(interval) if isinstance(interval, str) else None
    if seconds is None or seconds < 1:
        raise InvalidSpec(f"{field}.interval", "must be a duration of at least 1s, such as 30s, 1m or 1m30s")
    limit = value.get("failureLimit", 0)
    if limit is None:
        limit = 0
    if not _is_int(limit) or limit < 0:
        raise InvalidSpec(f"{field}.failureLimit", "must be a non-negative integer")
    metrics = value.get("metrics")
    if not isinstance(metrics, list) or not metrics:
        raise InvalidSpec(f"{field}.metrics", "required: at least one metric with a query and a bound")
    parsed = tuple(_metric(item, f"{field}.metrics[{index}]") for index, item in enumerate(metrics))
    seen: set[str] = set()
    for metric in parsed:
        if metric.name in seen:
            raise InvalidSpec(f"{field}.metrics", f"two metrics are named {metric.name!r}")
        seen.add(metric.name)
    return AnalysisSpec(
        steps=tuple(steps),
        interval=interval,
        interval_seconds=seconds,
        failure_limit=int(limit),
        metrics=parsed,
        retry=retry,
    )


def _metric(value: object, field: str) -> MetricSpec:
    if not isinstance(value, Mapping):
        raise InvalidSpec(field, "must be an object")
    name = value.get("name")
    if not isinstance(name, str) or not _METRIC_NAME.fullmatch(name):
        raise InvalidSpec(f"{field}.name", "required: lowercase letters, digits and '-'")
    query = value.get("query")
    if not isinstance(query, str) or not query.strip():
        raise InvalidSpec(f"{field}.query", "required: a PromQL query with a single value")
    unknown = sorted(set(PLACEHOLDER.findall(query)) - ANALYSIS_PLACEHOLDERS)
    if unknown:
        raise InvalidSpec(
            f"{field}.query",
            f"unknown placeholder {{{{ {unknown[0]} }}}} (known: {', '.join(sorted(ANALYSIS_PLACEHOLDERS))})",
        )
    bounds: dict[str, float | None] = {}
    for key in ("max", "min"):
        bound = value.get(key)
        if bound is not None and (isinstance(bound, bool) or not isinstance(bound, int | float)):
            raise InvalidSpec(f"{field}.{key}", "must be a number")
        bounds[key] = None if bound is None else float(bound)
    if bounds["max"] is None and bounds["min"] is None:
        raise InvalidSpec(field, "needs a bound: max, min or both")
    if bounds["max"] is not None and bounds["min"] is not None and bounds["min"] > bounds["max"]:
        raise InvalidSpec(f"{field}.min", "must not be above max")
    return MetricSpec(name=name, query=query, max=bounds["max"], min=bounds["min"])


def _int_or_percent(value: object, field: str) -> int | str:
    if _is_int(value):
        assert isinstance(value, int)
        if value < 0:
            raise InvalidSpec(field, "must not be negative")
        return value
    if isinstance(value, str) and _PERCENT.fullmatch(value):
        return value
    raise InvalidSpec(field, "must be a non-negative integer or a percentage from 0% to 100%")


def _is_zero(value: int | str) -> bool:
    return value in (0, "0%")


def _affinity(value: object) -> SessionAffinity:
    if value is None:
        return SessionAffinity()
    if not isinstance(value, Mapping):
        raise InvalidSpec("spec.sessionAffinity", "must be an object")
    kind = value.get("type") or "ClientIP"
    if kind not in AFFINITY_TYPES:
        raise InvalidSpec("spec.sessionAffinity.type", f"must be one of {', '.join(AFFINITY_TYPES)}")
    timeout = value.get("timeoutSeconds", DEFAULT_AFFINITY_TIMEOUT_SECONDS)
    if timeout is None:
        timeout = DEFAULT_AFFINITY_TIMEOUT_SECONDS
    if not _is_int(timeout) or not 1 <= timeout <= MAX_AFFINITY_TIMEOUT_SECONDS:
        raise InvalidSpec(
            "spec.sessionAffinity.timeoutSeconds",
            f"must be an integer from 1 to {MAX_AFFINITY_TIMEOUT_SECONDS}",
        )
    cookie = _optional_string(value.get("cookieName"), "spec.sessionAffinity.cookieName")
    if cookie is not None and not _COOKIE_NAME.fullmatch(cookie):
        raise InvalidSpec(
            "spec.sessionAffinity.cookieName", f"{cookie!r} is not a cookie name (a token of at most 64 characters)"
        )
    return SessionAffinity(type=kind, timeout_seconds=timeout, cookie_name=cookie or DEFAULT_AFFINITY_COOKIE)
