"""Server-side printing: objects as a ``meta.k8s.io/v1 Table``.

``kubectl get`` asks for ``application/json;as=Table;g=meta.k8s.io;v=v1``
and prints the columns the server chose, so what a user sees is the
server's decision: a custom resource gets its CRD version's
``additionalPrinterColumns`` (or Age when it has none) after Name; the
built-in kinds disvc touches get the columns kube-apiserver's printers give
them (Services: type, cluster IP, ports; Events: last seen, type, reason,
object, message; Namespaces: status; ...); any other
kind gets Name and Created At. A custom resource's date columns and the
built-in printers' Age are sent as an age (``5m``), as the real printers
send them; the default Created At column carries the timestamp. Rows carry
the object's metadata, or the whole object with ``includeObject=Object``. A watch sends one single-row Table per event,
with the column definitions on the first only.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

from disvc.testing.apiserver import errors, jsonpath
from disvc.testing.apiserver.resources import ResourceType
from disvc.testing.apiserver.storage import Obj

TABLE_MEDIA_TYPE: Final = "application/json;as=Table;v=v1;g=meta.k8s.io"
_NAME_DOC: Final = "Name must be unique within a namespace."
_CREATED_DOC: Final = (
    "CreationTimestamp is a timestamp representing the server time when this object was created."
)


def wants_table(accept: str) -> bool:
    """Whether the first media type of ``accept`` this server can produce is a Table."""
    for entry in accept.split(","):
        media, *raw_params = (part.strip() for part in entry.split(";"))
        params = dict(p.split("=", 1) for p in raw_params if "=" in p)
        if media not in ("application/json", "*/*", "application/*"):
            continue
        if params.get("as") == "Table" and params.get("g") == "meta.k8s.io" and params.get("v") in ("v1", "v1beta1"):
            return True
        if "as" not in params:
            return False
    return False


def include_object(value: str | None) -> str:
    choice = value or "Metadata"
    if choice not in ("Object", "Metadata", "None"):
        raise errors.bad_request(f'unrecognized includeObject value: "{choice}"')
    return choice


def human_age(timestamp: str | None, now: datetime | None = None) -> str:
    """An object's age as kubectl and the API server print it (``45s``, ``5m30s``, ``3d4h``)."""
    if not timestamp:
        return "<unknown>"
    created = datetime.fromisoformat(timestamp)
    seconds = int(((now or datetime.now(UTC)) - created).total_seconds())
    if seconds < -1:
        return "<invalid>"
    if seconds < 120:
        return f"{max(seconds, 0)}s"
    minutes, hours, days = seconds // 60, seconds // 3600, seconds // 86400
    if minutes < 10:
        return f"{minutes}m{seconds % 60}s" if seconds % 60 else f"{minutes}m"
    if minutes < 180:
        return f"{minutes}m"
    if hours < 8:
        return f"{hours}h{minutes % 60}m" if minutes % 60 else f"{hours}h"
    if hours < 48:
        return f"{hours}h"
    if hours < 24 * 8:
        return f"{days}d{hours % 24}h" if hours % 24 else f"{days}d"
    if days < 365 * 2:
        return f"{days}d"
    if days < 365 * 8:
        return f"{days // 365}y{days % 365}d" if days % 365 else f"{days // 365}y"
    return f"{days // 365}y"


Cells = Callable[[Obj], list[Any]]


@dataclass(frozen=True, slots=True)
class Printer:
    """The columns of one type and how to fill them from an object."""

    columns: tuple[Obj, ...]
    cells: Cells


def _column(name: str, kind: str = "string", description: str = "", *, fmt: str = "", priority: int = 0) -> Obj:
    return {"name": name, "type": kind, "format": fmt, "description": description, "priority": priority}


_NAME_COLUMN: Final = _column("Name", description=_NAME_DOC, fmt="name")


def _meta(obj: Obj) -> Obj:
    meta: Obj = obj.get("metadata") or {}
    return meta


def _age(obj: Obj) -> str:
    return human_age(_meta(obj).get("creationTimestamp"))


def _spec(obj: Obj) -> Obj:
    spec: Obj = obj.get("spec") or {}
    return spec


def _service_cells(obj: Obj) -> list[Any]:
    spec = _spec(obj)
    kind = spec.get("type") or "ClusterIP"
    ips = spec.get("clusterIPs") or ([spec["clusterIP"]] if spec.get("clusterIP") else [])
    external = ",".join(spec.get("externalIPs") or []) or "<none>"
    if kind == "ExternalName":
        external = spec.get("externalName", "")
    elif kind == "LoadBalancer" and external == "<none>":
        ingress = ((obj.get("status") or {}).get("loadBalancer") or {}).get("ingress") or []
        external = ",".join(i.get("ip") or i.get("hostname") or "" for i in ingress) or "<pending>"
    ports = ",".join(
        f"{p.get('port')}:{p['nodePort']}/{p.get('protocol', 'TCP')}" if p.get("nodePort")
        else f"{p.get('port')}/{p.get('protocol', 'TCP')}"
        for p in spec.get("ports") or []
    ) or "<none>"
    selector = ",".join(f"{k}={v}" for k, v in sorted((spec.get("selector") or {}).items())) or "<none>"
    return [_meta(obj).get("name"), kind, ips[0] if ips else "<none>", external, ports, _age(obj), selector]


def _ingress_cells(obj: Obj) -> list[Any]:
    spec = _spec(obj)
    hosts = ",".join(r["host"] for r in spec.get("rules") or [] if r.get("host")) or "*"
    ingress = ((obj.get("status") or {}).get("loadBalancer") or {}).get("ingress") or []
    address = ",".join(i.get("ip") or i.get("hostname") or "" for i in ingress)
    ports = "80, 443" if spec.get("tls") else "80"
    return [_meta(obj).get("name"), spec.get("ingressClassName") or "<none>", hosts, address, ports, _age(obj)]


def _event_cells(obj: Obj) -> list[Any]:
    """core/v1 and events.k8s.io/v1 Events alike (the API server prints both from one type)."""
    involved = obj.get("involvedObject") or obj.get("regarding") or {}
    source = obj.get("source") or obj.get("deprecatedSource") or {}
    first = obj.get("firstTimestamp") or obj.get("deprecatedFirstTimestamp") or obj.get("eventTime")
    last = obj.get("lastTimestamp") or obj.get("deprecatedLastTimestamp") or first
    series = obj.get("series")
    count = obj.get("count") or obj.get("deprecatedCount") or 1
    if series:
        last, count = series.get("lastObservedTime") or last, series.get("count") or count
    kind, name = str(involved.get("kind", "")).lower(), involved.get("name", "")
    component = source.get("component") or obj.get("reportingComponent") or obj.get("reportingController") or ""
    instance = source.get("host") or obj.get("reportingInstance") or ""
    return [
        human_age(last), obj.get("type", ""), obj.get("reason", ""), f"{kind}/{name}" if name else kind,
        involved.get("fieldPath", ""), f"{component}, {instance}" if instance else component,
        str(obj.get("message") or obj.get("note") or "").strip(), human_age(first), count, _meta(obj).get("name"),
    ]


_AGE_COLUMN: Final = _column("Age", description=_CREATED_DOC)
_EVENT_PRINTER: Final = Printer(
    (_column("Last Seen"), _column("Type"), _column("Reason"), _column("Object"),
     _column("Subobject", priority=1), _column("Source", priority=1), _column("Message"),
     _column("First Seen", priority=1), _column("Count", priority=1),
     _column("Name", description=_NAME_DOC, fmt="name", priority=1)),
    _event_cells,
)

_BUILTIN: Final[dict[str, Printer]] = {
    "/namespaces": Printer(
        (_NAME_COLUMN, _column("Status", description="The status of the namespace"), _AGE_COLUMN),
        lambda o: [_meta(o).get("name"), (o.get("status") or {}).get("phase", ""), _age(o)],
    ),
    "/services": Printer(
        (_NAME_COLUMN, _column("Type"), _column("Cluster-IP"), _column("External-IP"),
         _column("Port(s)"), _AGE_COLUMN, _column("Selector", priority=1)),
        _service_cells,
    ),
    "/configmaps": Printer(
        (_NAME_COLUMN, _column("Data"), _AGE_COLUMN),
        lambda o: [_meta(o).get("name"), len(o.get("data") or {}) + len(o.get("binaryData") or {}), _age(o)],
    ),
    "/secrets": Printer(
        (_NAME_COLUMN, _column("Type"), _column("Data"), _AGE_COLUMN),
        lambda o: [_meta(o).get("name"), o.get("type", ""), len(o.get("data") or {}), _age(o)],
    ),
    "coordination.k8s.io/leases": Printer(
        (_NAME_COLUMN, _column("Holder"), _AGE_COLUMN),
        lambda o: [_meta(o).get("name"), _spec(o).get("holderIdentity", ""), _age(o)],
    ),
    "/events": _EVENT_PRINTER,
    "events.k8s.io/events": _EVENT_PRINTER,
    "networking.k8s.io/ingresses": Printer(
        (_NAME_COLUMN, _column("Class"), _column("Hosts"), _column("Address"), _column("Ports"), _AGE_COLUMN),
        _ingress_cells,
    ),
}

_DEFAULT: Final = Printer(
    (_NAME_COLUMN, _column("Created At", "date", _CREATED_DOC)),
    lambda o: [_meta(o).get("name"), _meta(o).get("creationTimestamp")],
)


def _custom_printer(rt: ResourceType) -> Printer:
    definitions = list(rt.printer_columns) or [
        {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp", "description": _CREATED_DOC}
    ]
    columns = [_NAME_COLUMN]
    paths = []
    for definition in definitions:
        path = str(definition.get("jsonPath", ""))
        paths.append((jsonpath.parse(path), str(definition.get("type", "string"))))
        columns.append(_column(
            str(definition.get("name", "")), str(definition.get("type", "string")),
            str(definition.get("description") or f"Custom resource definition column (in JSONPath format): {path}"),
            fmt=str(definition.get("format", "")), priority=int(definition.get("priority", 0)),
        ))

    def cells(obj: Obj) -> list[Any]:
        row: list[Any] = [_meta(obj).get("name")]
        for steps, kind in paths:
            found = jsonpath.find(steps, obj)
            row.append(_cell(kind, found[0]) if found else None)
        return row

    return Printer(tuple(columns), cells)


def _cell(kind: str, value: Any) -> Any:
    """A column value of the declared type (None when it is of another)."""
    if value is None:
        return None
    if kind == "string":
        if isinstance(value, str):
            return value
        return json.dumps(value, separators=(",", ":")) if isinstance(value, (dict, list)) else _go_text(value)
    if kind == "integer":
        return int(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None
    if kind == "number":
        return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None
    if kind == "boolean":
        return value if isinstance(value, bool) else None
    if kind == "date" and isinstance(value, str):
        try:
            return human_age(value)
        except ValueError:
            return "<invalid>"
    return None


def _go_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def printer(rt: ResourceType) -> Printer:
    if rt.custom:
        return _custom_printer(rt)
    return _BUILTIN.get(rt.key, _DEFAULT)


def _row(chosen: Printer, obj: Obj, include: str) -> Obj:
    row: Obj = {"cells": chosen.cells(obj)}
    if include == "Object":
        row["object"] = obj
    elif include == "Metadata":
        row["object"] = {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": _meta(obj)}
    else:
        row["object"] = None
    return row


def table(
    chosen: Printer,
    objects: Sequence[Obj],
    *,
    include: str,
    headers: bool = True,
    list_meta: Obj | None = None,
) -> Obj:
    """A Table of ``objects``; ``list_meta`` is the list's metadata (rv, continue)."""
    return {
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": list_meta or {},
        "columnDefinitions": list(chosen.columns) if headers else None,
        "rows": [_row(chosen, obj, include) for obj in objects],
    }
