"""Validation and defaulting of the built-in kinds disvc writes.

Service, Ingress, Lease, Event and Namespace get the checks and defaults of
kubernetes ``pkg/apis/*/validation`` that a controller could trip over,
trimmed to those kinds and fields; metadata is :mod:`metadata`'s job.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable
from typing import Any, Final

from disvc.testing.apiserver.validation.causes import Cause, duplicate, invalid, not_supported, required
from disvc.testing.apiserver.validation.metadata import (
    dns1035_errors,
    dns_label_errors,
    dns_subdomain_errors,
    validate_labels,
)

_SERVICE_TYPES: Final = ["ClusterIP", "ExternalName", "LoadBalancer", "NodePort"]
_PROTOCOLS: Final = ["SCTP", "TCP", "UDP"]
_PATH_TYPES: Final = ["Exact", "ImplementationSpecific", "Prefix"]
_PORT_RANGE_MSG: Final = "must be between 1 and 65535, inclusive"


def _port_name_errors(name: str) -> list[str]:
    errors: list[str] = []
    if len(name) > 15:
        errors.append("must be no more than 15 characters")
    if not re.fullmatch("[-a-z0-9]+", name):
        errors.append("must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)")
    if not re.search("[a-z]", name):
        errors.append("must contain at least one letter (a-z)")
    if "--" in name:
        errors.append("must not contain consecutive hyphens")
    if name.startswith("-") or name.endswith("-"):
        errors.append("must not begin or end with a hyphen")
    return errors


def _validate_port_number(port: Any, path: str) -> list[Cause]:
    if isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535:
        return [invalid(path, port, _PORT_RANGE_MSG)]
    return []


def _validate_service(obj: dict[str, Any]) -> list[Cause]:
    spec = obj.get("spec")
    if not isinstance(spec, dict):
        return [required("spec")]
    causes: list[Cause] = []
    service_type = spec.get("type", "ClusterIP")
    if service_type not in _SERVICE_TYPES:
        causes.append(not_supported("spec.type", service_type, _SERVICE_TYPES))
    affinity = spec.get("sessionAffinity", "None")
    if affinity not in ("ClientIP", "None"):
        causes.append(not_supported("spec.sessionAffinity", affinity, ["ClientIP", "None"]))
    timeout = (((spec.get("sessionAffinityConfig") or {}).get("clientIP")) or {}).get("timeoutSeconds")
    if affinity == "ClientIP" and timeout is not None and not (isinstance(timeout, int) and 0 < timeout <= 86400):
        causes.append(
            invalid(
                "spec.sessionAffinityConfig.clientIP.timeoutSeconds",
                timeout,
                "must be greater than 0 and less than 86400",
            )
        )
    ports = spec.get("ports")
    if service_type != "ExternalName" and not ports:
        causes.append(required("spec.ports"))
    if ports is not None and not isinstance(ports, list):
        causes.append(invalid("spec.ports", ports, "must be a list"))
        ports = []
    names: set[str] = set()
    pairs: set[tuple[Any, Any]] = set()
    ports = ports or []
    for index, port in enumerate(ports):
        path = f"spec.ports[{index}]"
        if not isinstance(port, dict):
            causes.append(invalid(path, port, "must be an object"))
            continue
        name = port.get("name", "")
        if len(ports) > 1 and not name:
            causes.append(required(f"{path}.name"))
        elif name:
            causes.extend(invalid(f"{path}.name", name, m) for m in dns_label_errors(name))
            if name in names:
                causes.append(duplicate(f"{path}.name", name))
            names.add(name)
        causes.extend(_validate_port_number(port.get("port"), f"{path}.port"))
        protocol = port.get("protocol", "TCP")
        if protocol not in _PROTOCOLS:
            causes.append(not_supported(f"{path}.protocol", protocol, _PROTOCOLS))
        if (port.get("port"), protocol) in pairs:
            causes.append(duplicate(path, {"port": port.get("port"), "protocol": protocol}))
        pairs.add((port.get("port"), protocol))
        target = port.get("targetPort")
        if isinstance(target, str):
            causes.extend(invalid(f"{path}.targetPort", target, m) for m in _port_name_errors(target))
        elif target is not None:
            causes.extend(_validate_port_number(target, f"{path}.targetPort"))
    causes.extend(validate_labels(spec.get("selector"), "spec.selector"))
    return causes


def _validate_ingress_backend(backend: Any, path: str) -> list[Cause]:
    if not isinstance(backend, dict):
        return [required(path)]
    service = backend.get("service")
    if service is None and backend.get("resource") is None:
        return [invalid(path, "", "one backend (service or resource) must be specified")]
    if service is None:
        return []
    causes: list[Cause] = []
    if not service.get("name"):
        causes.append(required(f"{path}.service.name"))
    else:
        causes.extend(invalid(f"{path}.service.name", service["name"], m) for m in dns1035_errors(service["name"]))
    port = service.get("port") or {}
    if "name" in port and "number" in port:
        causes.append(invalid(f"{path}.service.port", port, "cannot set both port name & port number"))
    elif "number" in port:
        causes.extend(_validate_port_number(port["number"], f"{path}.service.port.number"))
    elif port.get("name"):
        causes.extend(invalid(f"{path}.service.port.name", port["name"], m) for m in _port_name_errors(port["name"]))
    else:
        causes.append(invalid(f"{path}.service.port", port, "port name or number is required"))
    return causes


def _validate_ingress(obj: dict[str, Any]) -> list[Cause]:
    spec = obj.get("spec")
    if not isinstance(spec, dict):
        return [required("spec")]
    causes: list[Cause] = []
    rules = spec.get("rules") or []
    if not rules and spec.get("defaultBackend") is None:
        causes.append(invalid("spec", spec, "either `defaultBackend` or `rules` must be specified"))
    if spec.get("defaultBackend") is not None:
        causes.extend(_validate_ingress_backend(spec["defaultBackend"], "spec.defaultBackend"))
    for index, rule in enumerate(rules):
        path = f"spec.rules[{index}]"
        host = rule.get("host")
        if host:
            causes.extend(_ingress_host_errors(f"{path}.host", host))
        http = rule.get("http")
        if http is None:
            continue
        paths = http.get("paths")
        if not paths:
            causes.append(required(f"{path}.http.paths"))
            continue
        for p_index, entry in enumerate(paths):
            entry_path = f"{path}.http.paths[{p_index}]"
            path_type = entry.get("pathType")
            if path_type is None:
                causes.append(required(f"{entry_path}.pathType", "pathType must be specified"))
            elif path_type not in _PATH_TYPES:
                causes.append(not_supported(f"{entry_path}.pathType", path_type, _PATH_TYPES))
            text = entry.get("path", "")
            if path_type in {"Exact", "Prefix"} and not str(text).startswith("/"):
                causes.append(invalid(f"{entry_path}.path", text, "must be an absolute path"))
            causes.extend(_validate_ingress_backend(entry.get("backend"), f"{entry_path}.backend"))
    for index, tls in enumerate(spec.get("tls") or []):
        for h_index, host in enumerate(tls.get("hosts") or []):
            causes.extend(_ingress_host_errors(f"spec.tls[{index}].hosts[{h_index}]", host))
    return causes


def _ingress_host_errors(path: str, host: str) -> list[Cause]:
    """An Ingress host is a DNS subdomain, optionally behind one leading wildcard label."""
    return [invalid(path, host, m) for m in dns_subdomain_errors(host.removeprefix("*."))]


def _validate_lease(obj: dict[str, Any]) -> list[Cause]:
    spec = obj.get("spec") or {}
    causes: list[Cause] = []
    for name in ("leaseDurationSeconds", "leaseTransitions"):
        number = spec.get(name)
        if number is None:
            continue
        if name == "leaseDurationSeconds" and (not isinstance(number, int) or number <= 0):
            causes.append(invalid(f"spec.{name}", number, "must be greater than 0"))
        if name == "leaseTransitions" and (not isinstance(number, int) or number < 0):
            causes.append(invalid(f"spec.{name}", number, "must be greater than or equal to 0"))
    return causes


def _validate_event(obj: dict[str, Any]) -> list[Cause]:
    involved = obj.get("involvedObject")
    if not isinstance(involved, dict):
        return [required("involvedObject")]
    causes: list[Cause] = []
    event_namespace = (obj.get("metadata") or {}).get("namespace", "")
    involved_namespace = involved.get("namespace", "")
    if involved_namespace and event_namespace and involved_namespace != event_namespace:
        causes.append(invalid("involvedObject.namespace", involved_namespace, "does not match event.namespace"))
    event_type = obj.get("type")
    if event_type is not None and event_type not in ("Normal", "Warning"):
        causes.append(not_supported("type", event_type, ["Normal", "Warning"]))
    return causes


def _validate_namespace(obj: dict[str, Any]) -> list[Cause]:
    name = (obj.get("metadata") or {}).get("name")
    if not name:
        return []
    # A namespace name is a DNS-1123 label, stricter than other names.
    return [invalid("metadata.name", name, m) for m in dns_label_errors(str(name))]


_BUILTIN_VALIDATORS: Final[dict[str, Callable[[dict[str, Any]], list[Cause]]]] = {
    "Service": _validate_service,
    "Ingress": _validate_ingress,
    "Lease": _validate_lease,
    "Event": _validate_event,
    "Namespace": _validate_namespace,
}


def validate_builtin(kind: str, obj: dict[str, Any]) -> list[Cause]:
    """Kind-specific rules of a built-in kind (metadata: :func:`validate_metadata`)."""
    validator = _BUILTIN_VALIDATORS.get(kind)
    return validator(obj) if validator is not None else []


def default_builtin(kind: str, obj: dict[str, Any]) -> dict[str, Any]:
    """Server-side defaults of a built-in kind (Service; others unchanged)."""
    out = copy.deepcopy(obj)
    if kind != "Service" or not isinstance(out.get("spec"), dict):
        return out
    spec = out["spec"]
    spec.setdefault("type", "ClusterIP")
    spec.setdefault("sessionAffinity", "None")
    if spec["sessionAffinity"] == "ClientIP":
        client_ip = spec.setdefault("sessionAffinityConfig", {}).setdefault("clientIP", {})
        client_ip.setdefault("timeoutSeconds", 10800)
    if spec["type"] != "ExternalName":
        spec.setdefault("internalTrafficPolicy", "Cluster")
        spec.setdefault("ipFamilyPolicy", "SingleStack")
        spec.setdefault("ipFamilies", ["IPv4"])
    for port in spec.get("ports") or []:
        if isinstance(port, dict):
            port.setdefault("protocol", "TCP")
            if "targetPort" not in port and "port" in port:
                port["targetPort"] = port["port"]
    return out