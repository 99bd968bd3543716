"""OpenAPI schemas of the built-in kinds the loopback API serves, and of ObjectMeta.

A real API server publishes the schema of every type it serves, generated
from its Go types; ``kubectl`` reads them to explain fields and to find
which kinds exist. These are written by hand, trimmed to the fields of the
kinds served here, in OpenAPI v3 form (references to
``#/components/schemas/``); :mod:`.documents` turns them into v2 when a
client asks for that. Names follow the real ones
(``io.k8s.api.core.v1.Service``), so a definition means the same thing on
both servers.
"""

from __future__ import annotations

from typing import Any, Final

Obj = dict[str, Any]

META: Final = "io.k8s.apimachinery.pkg.apis.meta.v1."
OBJECT_META: Final = META + "ObjectMeta"
LIST_META: Final = META + "ListMeta"
INT_OR_STRING: Final = "io.k8s.apimachinery.pkg.util.intstr.IntOrString"


def ref(name: str, description: str = "") -> Obj:
    """A reference to another definition (v3 wraps it in allOf to carry a description)."""
    target: Obj = {"$ref": f"#/components/schemas/{name}"}
    if not description:
        return target
    return {"allOf": [target], "description": description}


def string(description: str = "", **extra: Any) -> Obj:
    return {"type": "string", "description": description, **extra}


def integer(description: str = "", fmt: str = "int32") -> Obj:
    return {"type": "integer", "format": fmt, "description": description}


def boolean(description: str = "") -> Obj:
    return {"type": "boolean", "description": description}


def array(items: Obj, description: str = "", **extra: Any) -> Obj:
    return {"type": "array", "items": items, "description": description, **extra}


def string_map(description: str = "") -> Obj:
    return {"type": "object", "additionalProperties": {"type": "string", "default": ""}, "description": description}


def struct(description: str, properties: dict[str, Obj], required: tuple[str, ...] = (), **extra: Any) -> Obj:
    schema: Obj = {"type": "object", "description": description, "properties": properties, **extra}
    if required:
        schema["required"] = list(required)
    return schema


def gvk(group: str, version: str, kind: str) -> list[Obj]:
    return [{"group": group, "version": version, "kind": kind}]


def type_meta(description: str, properties: dict[str, Obj], group: str, version: str, kind: str,
              *, required: tuple[str, ...] = ()) -> Obj:
    """A top-level kind: apiVersion, kind, metadata, then its own fields."""
    fields: dict[str, Obj] = {
        "apiVersion": string("The versioned schema of this representation of an object."),
        "kind": string("The REST resource this object represents, in CamelCase."),
        "metadata": ref(OBJECT_META, "Standard object's metadata."),
    }
    fields.update(properties)
    schema = struct(description, fields, required)
    schema["x-kubernetes-group-version-kind"] = gvk(group, version, kind)
    return schema


def list_of(item: str, description: str, group: str, version: str, kind: str) -> Obj:
    """The ``<Kind>List`` of a kind."""
    return {
        "type": "object",
        "description": description,
        "required": ["items"],
        "properties": {
            "apiVersion": string("The versioned schema of this representation of an object."),
            "kind": string("The REST resource this object represents, in CamelCase."),
            "items": array(ref(item), "The objects of the list."),
            "metadata": ref(LIST_META, "Standard list metadata."),
        },
        "x-kubernetes-group-version-kind": gvk(group, version, kind + "List"),
    }


_TIME: Final = {"type": "string", "format": "date-time", "description": "An RFC 3339 time, in seconds."}


def _meta_definitions() -> dict[str, Obj]:
    return {
        META + "Time": _TIME,
        META + "MicroTime": {"type": "string", "format": "date-time", "description": "An RFC 3339 time, in microseconds."},
        INT_OR_STRING: {"format": "int-or-string", "oneOf": [{"type": "integer"}, {"type": "string"}],
                        "description": "An int32 or a string, such as a port number or name."},
        META + "FieldsV1": {"type": "object", "description": "The set of fields a manager owns, as a trie."},
        META + "OwnerReference": struct(
            "Names an object this one belongs to; it is garbage-collected once every owner is gone.",
            {
                "apiVersion": string("API version of the owner."),
                "kind": string("Kind of the owner."),
                "name": string("Name of the owner."),
                "uid": string("UID of the owner."),
                "controller": boolean("Whether the owner is the managing controller."),
                "blockOwnerDeletion": boolean("Whether the owner cannot be deleted before this object."),
            },
            ("apiVersion", "kind", "name", "uid"),
            **{"x-kubernetes-map-type": "atomic"},
        ),
        META + "ManagedFieldsEntry": struct(
            "The fields one manager owns, and how it last wrote them.",
            {
                "apiVersion": string("The version of the fields' schema."),
                "fieldsType": string("The format of fieldsV1: always FieldsV1."),
                "fieldsV1": ref(META + "FieldsV1", "The owned fields."),
                "manager": string("The manager's name."),
                "operation": string("Apply or Update."),
                "subresource": string("The subresource written, if any."),
                "time": ref(META + "Time", "When the manager last changed its fields."),
            },
        ),
        OBJECT_META: struct(
            "Metadata every persisted object has.",
            {
                "annotations": string_map("Unstructured key-value data tools may set and read."),
                "creationTimestamp": ref(META + "Time", "When the server created the object."),
                "deletionGracePeriodSeconds": integer("Seconds allowed for graceful deletion.", "int64"),
                "deletionTimestamp": ref(META + "Time", "When the object was asked to be deleted."),
                "finalizers": array(string(), "Must be empty before the object is deleted.",
                                    **{"x-kubernetes-list-type": "set", "x-kubernetes-patch-strategy": "merge"}),
                "generateName": string("Prefix of a name the server generates when name is empty."),
                "generation": integer("Sequence number of the desired state.", "int64"),
                "labels": string_map("Key-value pairs to select and group objects by."),
                "managedFields": array(ref(META + "ManagedFieldsEntry"), "Which manager owns which fields."),
                "name": string("Name, unique within a namespace."),
                "namespace": string("The namespace the object lives in."),
                "ownerReferences": array(ref(META + "OwnerReference"), "The objects this one belongs to.",
                                         **{"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["uid"],
                                            "x-kubernetes-patch-merge-key": "uid",
                                            "x-kubernetes-patch-strategy": "merge"}),
                "resourceVersion": string("The version of the object, for optimistic concurrency and watches."),
                "selfLink": string("Deprecated; not set."),
                "uid": string("Unique in time and space."),
            },
        ),
        LIST_META: struct(
            "Metadata of a list.",
            {
                "continue": string("Token to fetch the next page."),
                "remainingItemCount": integer("Items not yet returned.", "int64"),
                "resourceVersion": string("The version the list was read at."),
                "selfLink": string("Deprecated; not set."),
            },
        ),
    }


def _core(name: str) -> str:
    return "io.k8s.api.core.v1." + name


def _kinds() -> dict[str, Obj]:
    defs: dict[str, Obj] = {}
    service_port = struct(
        "One port a Service exposes.",
        {
            "name": string("Name of the port, unique within the Service."),
            "protocol": string("TCP, UDP or SCTP.", default="TCP"),
            "appProtocol": string("The application protocol of the port."),
            "port": integer("The port the Service exposes."),
            "targetPort": ref(INT_OR_STRING, "The port (number or name) to reach on the selected pods."),
            "nodePort": integer("The port on each node, for NodePort and LoadBalancer Services."),
        },
        ("port",),
    )
    defs[_core("ServicePort")] = service_port
    defs[_core("ServiceSpec")] = struct(
        "What a Service exposes and how.",
        {
            "ports": array(ref(_core("ServicePort")), "The ports the Service exposes.",
                           **{"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["port", "protocol"],
                              "x-kubernetes-patch-merge-key": "port", "x-kubernetes-patch-strategy": "merge"}),
            "selector": {**string_map("Pods with these labels receive the traffic."), "x-kubernetes-map-type": "atomic"},
            "clusterIP": string("The address the Service is reached at inside the cluster."),
            "clusterIPs": array(string(), "The addresses of the Service, one per IP family.",
                                **{"x-kubernetes-list-type": "atomic"}),
            "type": string("ClusterIP, NodePort, LoadBalancer or ExternalName.",
                           enum=["ClusterIP", "ExternalName", "LoadBalancer", "NodePort"]),
            "externalIPs": array(string(), "Extra addresses the Service accepts traffic on."),
            "externalName": string("The DNS name an ExternalName Service points at."),
            "sessionAffinity": string("ClientIP or None.", enum=["ClientIP", "None"]),
            "ipFamilies": array(string(), "IPv4 and/or IPv6.", **{"x-kubernetes-list-type": "atomic"}),
            "ipFamilyPolicy": string("SingleStack, PreferDualStack or RequireDualStack."),
            "internalTrafficPolicy": string("Cluster or Local."),
            "publishNotReadyAddresses": boolean("Whether not-ready pods are published too."),
        },
    )
    defs[_core("LoadBalancerStatus")] = struct(
        "The addresses of a load balancer.",
        {"ingress": array({"type": "object", "properties": {"ip": string("IP address."),
                                                            "hostname": string("DNS name.")}},
                          "Ingress points of the load balancer.")},
    )
    defs[_core("ServiceStatus")] = struct(
        "The observed state of a Service.",
        {"loadBalancer": ref(_core("LoadBalancerStatus"), "The load balancer, if any.")},
    )
    defs[_core("Service")] = type_meta(
        "A named set of pods reached at one address, and the policy to reach them.",
        {"spec": ref(_core("ServiceSpec"), "What the Service exposes."),
         "status": ref(_core("ServiceStatus"), "The observed state of the Service.")},
        "", "v1", "Service",
    )
    defs[_core("NamespaceSpec")] = struct(
        "What a Namespace needs.", {"finalizers": array(string(), "Must be empty before the Namespace goes.")}
    )
    defs[_core("NamespaceStatus")] = struct(
        "The observed state of a Namespace.", {"phase": string("Active or Terminating.", enum=["Active", "Terminating"])}
    )
    defs[_core("Namespace")] = type_meta(
        "A scope for names.",
        {"spec": ref(_core("NamespaceSpec"), "What the Namespace needs."),
         "status": ref(_core("NamespaceStatus"), "The observed state of the Namespace.")},
        "", "v1", "Namespace",
    )
    defs[_core("ConfigMap")] = type_meta(
        "Non-secret configuration data.",
        {"data": string_map("UTF-8 values by key."),
         "binaryData": {"type": "object", "additionalProperties": {"type": "string", "format": "byte"},
                        "description": "Binary values by key."},
         "immutable": boolean("Whether the data may no longer change.")},
        "", "v1", "ConfigMap",
    )
    defs[_core("Secret")] = type_meta(
        "Secret data.",
        {"data": {"type": "object", "additionalProperties": {"type": "string", "format": "byte"},
                  "description": "Base64-encoded values by key."},
         "stringData": string_map("Plain values by key, merged into data on write."),
         "type": string("What the secret is for."),
         "immutable": boolean("Whether the data may no longer change.")},
        "", "v1", "Secret",
    )
    defs[_core("ObjectReference")] = struct(
        "Names an object.",
        {"apiVersion": string("API version."), "kind": string("Kind."), "name": string("Name."),
         "namespace": string("Namespace."), "uid": string("UID."), "fieldPath": string("A field of the object."),
         "resourceVersion": string("The version referred to.")},
        (), **{"x-kubernetes-map-type": "atomic"},
    )
    defs[_core("EventSource")] = struct(
        "Who reported an Event.", {"component": string("The component."), "host": string("The node.")}
    )
    event_fields: dict[str, Obj] = {
        "involvedObject": ref(_core("ObjectReference"), "The object the Event is about."),
        "reason": string("Short, machine-readable reason."),
        "message": string("Human-readable description."),
        "type": string("Normal or Warning."),
        "count": integer("How many times it happened."),
        "firstTimestamp": ref(META + "Time", "When it first happened."),
        "lastTimestamp": ref(META + "Time", "When it last happened."),
        "eventTime": ref(META + "MicroTime", "When it happened, precisely."),
        "source": ref(_core("EventSource"), "Who reported it."),
        "reportingComponent": string("The controller that reported it."),
        "reportingInstance": string("The instance of that controller."),
        "action": string("What was done."),
    }
    defs[_core("Event")] = type_meta(
        "Something that happened to an object.", event_fields, "", "v1", "Event",
        required=("metadata", "involvedObject"),
    )
    defs["io.k8s.api.events.v1.Event"] = type_meta(
        "Something that happened to an object.",
        {"regarding": ref(_core("ObjectReference"), "The object the Event is about."),
         "reason": string("Short, machine-readable reason."),
         "note": string("Human-readable description."),
         "type": string("Normal or Warning."),
         "eventTime": ref(META + "MicroTime", "When it happened."),
         "reportingController": string("The controller that reported it."),
         "reportingInstance": string("The instance of that controller."),
         "action": string("What was done.")},
        "events.k8s.io", "v1", "Event", required=("eventTime",),
    )
    backend = struct(
        "Where an Ingress sends traffic.",
        {"service": struct("A Service backend.", {
            "name": string("The Service's name."),
            "port": struct("The Service's port.", {"name": string("Port name."), "number": integer("Port number.")}),
        }, ("name",))},
    )
    defs["io.k8s.api.networking.v1.IngressBackend"] = backend
    defs["io.k8s.api.networking.v1.IngressSpec"] = struct(
        "How an Ingress routes traffic.",
        {
            "ingressClassName": string("The IngressClass that implements this Ingress."),
            "defaultBackend": ref("io.k8s.api.networking.v1.IngressBackend", "Where unmatched traffic goes."),
            "rules": array(struct("Routes for one host.", {
                "host": string("The host name matched."),
                "http": struct("HTTP routes.", {"paths": array(struct("One path route.", {
                    "path": string("The path matched."),
                    "pathType": string("Exact, Prefix or ImplementationSpecific."),
                    "backend": ref("io.k8s.api.networking.v1.IngressBackend", "Where matching traffic goes."),
                }, ("pathType", "backend")), "The path routes.", **{"x-kubernetes-list-type": "atomic"})},
                    ("paths",)),
            }), "Routes by host.", **{"x-kubernetes-list-type": "atomic"}),
            "tls": array(struct("TLS for some hosts.", {
                "hosts": array(string(), "Hosts covered.", **{"x-kubernetes-list-type": "atomic"}),
                "secretName": string("The Secret holding the certificate."),
            }), "TLS configuration.", **{"x-kubernetes-list-type": "atomic"}),
        },
    )
    defs["io.k8s.api.networking.v1.Ingress"] = type_meta(
        "Routes HTTP traffic from outside the cluster to Services.",
        {"spec": ref("io.k8s.api.networking.v1.IngressSpec", "How the Ingress routes traffic."),
         "status": struct("The observed state.", {
             "loadBalancer": struct("The load balancer.", {"ingress": array(
                 {"type": "object", "properties": {"ip": string("IP."), "hostname": string("Host name.")}},
                 "Ingress points.")})})},
        "networking.k8s.io", "v1", "Ingress",
    )
    defs["io.k8s.api.coordination.v1.Lease"] = type_meta(
        "A lease, as leader election uses it.",
        {"spec": struct("The lease.", {
            "holderIdentity": string("Who holds the lease."),
            "leaseDurationSeconds": integer("How long a holder may go without renewing."),
            "acquireTime": ref(META + "MicroTime", "When the current holder acquired it."),
            "renewTime": ref(META + "MicroTime", "When the holder last renewed it."),
            "leaseTransitions": integer("How many times it changed hands."),
        })},
        "coordination.k8s.io", "v1", "Lease",
    )
    defs["io.k8s.api.autoscaling.v1.Scale"] = type_meta(
        "The replica count of a scalable resource.",
        {"spec": struct("The wanted size.", {"replicas": integer("The wanted number of replicas.")}),
         "status": struct("The observed size.", {
             "replicas": integer("The observed number of replicas."),
             "selector": string("Label selector of the replicas, as a string."),
         }, ("replicas",))},
        "autoscaling", "v1", "Scale",
    )
    crd_prefix = "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1."
    defs[crd_prefix + "CustomResourceDefinition"] = type_meta(
        "A new resource type, served by the API server once established.",
        {"spec": struct("The type: group, names, scope and versions.", {
            "group": string("The API group of the type."),
            "names": struct("How the type is named.", {
                "plural": string("The resource name in paths."), "singular": string("Singular name."),
                "kind": string("The kind."), "listKind": string("The kind of its lists."),
                "shortNames": array(string(), "Short names kubectl accepts."),
                "categories": array(string(), "Groups of resources it belongs to (all)."),
            }, ("plural", "kind")),
            "scope": string("Namespaced or Cluster."),
            "versions": array({"type": "object", "x-kubernetes-preserve-unknown-fields": True,
                               "description": "One served version, its schema and subresources."},
                              "The versions of the type."),
            "conversion": {"type": "object", "x-kubernetes-preserve-unknown-fields": True,
                           "description": "How versions convert."},
            "preserveUnknownFields": boolean("Deprecated; keep false."),
        }, ("group", "names", "scope", "versions")),
         "status": {"type": "object", "x-kubernetes-preserve-unknown-fields": True,
                    "description": "Conditions, accepted names and stored versions."}},
        "apiextensions.k8s.io", "v1", "CustomResourceDefinition", required=("spec",),
    )
    return defs


DEFINITIONS: Final[dict[str, Obj]] = {**_meta_definitions(), **_kinds()}
"""Every built-in definition by name."""

BUILTIN_KINDS: Final[dict[tuple[str, str, str], str]] = {
    (entry["group"], entry["version"], entry["kind"]): name
    for name, schema in DEFINITIONS.items()
    for entry in schema.get("x-kubernetes-group-version-kind", [])
}
"""(group, version, kind) -> definition name."""
