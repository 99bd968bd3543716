"""The object store of the loopback API server: etcd's role, in memory.

Every object version lives in a :class:`Stored` holder that is never mutated
once written, so watch history, LIST results and GET responses can share it
and its JSON encoding (computed once, lazily).  All versions are stamped from
one global, monotonically increasing ``resourceVersion`` counter, as etcd's
revision is shared by every resource in a real cluster.

The store also owns selector matching (labels and fields), because selection
is what LIST and WATCH ask of the store.  The server module decides *what*
to write (validation, defaulting, subresources); this module only keeps
versions and announces every change to a sink (the watch hub).

Concurrency: the store is used from the server's event-loop thread only, so
it takes no lock.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, Final

Obj = dict[str, Any]

_ENCODER: Final = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False)


ETCD_MAX_REQUEST_BYTES: Final = 1536 * 1024
"""etcd's default ``--max-request-bytes``: a bigger write is refused by etcd."""
ETCD_CLIENT_MAX_SEND_BYTES: Final = 2 * 1024 * 1024
"""kube-apiserver's etcd client refuses to send a bigger message at all."""


class TooLarge(Exception):
    """The object is bigger than etcd takes; the message is the one kube-apiserver passes on."""


def _check_size(size: int) -> None:
    # kube-apiserver v1.28.7 answers both with a 500 Status without a reason
    # (checked against a real one): the first from etcd, the second from its client
    if size > ETCD_CLIENT_MAX_SEND_BYTES:
        raise TooLarge(
            "rpc error: code = ResourceExhausted desc = trying to send message larger than max "
            f"({size} vs. {ETCD_CLIENT_MAX_SEND_BYTES})"
        )
    if size > ETCD_MAX_REQUEST_BYTES:
        raise TooLarge("etcdserver: request is too large")


class Stored:
    """One immutable version of one object, with its cached JSON encoding."""

    __slots__ = ("_raw", "obj", "rv")

    def __init__(self, obj: Obj, rv: int) -> None:
        self.obj = obj
        """The object; never mutated after it is stored."""
        self.rv = rv
        """Its resourceVersion as an integer (for comparisons)."""
        self._raw: bytes | None = None

    def raw(self) -> bytes:
        """The object as compact JSON, encoded on first use."""
        if self._raw is None:
            self._raw = _ENCODER.encode(self.obj).encode()
        return self._raw

    def copy(self) -> Obj:
        """A deep, mutable copy (decoding the cached JSON beats ``deepcopy``)."""
        copied: Obj = json.loads(self.raw())
        return copied

    @property
    def labels(self) -> dict[str, str]:
        meta = self.obj.get("metadata") or {}
        labels: dict[str, str] = meta.get("labels") or {}
        return labels


@dataclass(frozen=True, slots=True)
class Change:
    """One committed change, as announced to the watch hub."""

    type: str
    """ADDED, MODIFIED or DELETED."""
    resource: str
    """Storage key of the resource type (``group/plural``)."""
    namespace: str
    stored: Stored
    """The new version (for DELETED: the last state, at the deletion's rv)."""
    previous: Stored | None
    """The version it replaced (MODIFIED and DELETED only)."""


ChangeSink = Callable[[Change], None]


class Storage:
    """Keyed versions of every object, grouped by resource type and namespace."""

    def __init__(self, sink: ChangeSink) -> None:
        self._sink = sink
        self._rv = 1
        # resource key -> namespace ("" for cluster-scoped) -> name -> version
        self._objects: dict[str, dict[str, dict[str, Stored]]] = {}

    @property
    def resource_version(self) -> int:
        """The latest resourceVersion handed out."""
        return self._rv

    def get(self, resource: str, namespace: str, name: str) -> Stored | None:
        return self._objects.get(resource, {}).get(namespace, {}).get(name)

    def objects(self, resource: str, namespace: str | None) -> list[Stored]:
        """Current versions sorted by (namespace, name), as etcd's key order."""
        buckets = self._objects.get(resource, {})
        if namespace is not None:
            bucket = buckets.get(namespace, {})
            return [bucket[n] for n in sorted(bucket)]
        return [
            buckets[ns][n] for ns in sorted(buckets) for n in sorted(buckets[ns])
        ]

    def namespace_contents(self, namespace: str) -> Iterator[tuple[str, Stored]]:
        """Every (resource key, object) stored in one namespace."""
        for resource, buckets in list(self._objects.items()):
            for stored in list(buckets.get(namespace, {}).values()):
                yield resource, stored

    def all_namespaced(self) -> Iterator[tuple[str, Stored]]:
        for resource, buckets in list(self._objects.items()):
            for ns, bucket in list(buckets.items()):
                if ns:
                    for stored in list(bucket.values()):
                        yield resource, stored

    def put(self, resource: str, namespace: str, obj: Obj) -> Stored:
        """Store a new version of ``obj``, stamping the next resourceVersion.

        ``obj`` becomes owned by the store: the caller must not touch it again.
        """
        rv = self._rv + 1
        obj["metadata"]["resourceVersion"] = str(rv)
        stored = Stored(obj, rv)
        _check_size(len(stored.raw()))
        self._rv = rv
        name = obj["metadata"]["name"]
        bucket = self._objects.setdefault(resource, {}).setdefault(namespace, {})
        previous = bucket.get(name)
        bucket[name] = stored
        kind = "ADDED" if previous is None else "MODIFIED"
        self._sink(Change(kind, resource, namespace, stored, previous))
        return stored

    def remove(self, resource: str, namespace: str, name: str) -> Stored | None:
        """Delete the object; returns its final state at the deletion's rv."""
        bucket = self._objects.get(resource, {}).get(namespace)
        if bucket is None or name not in bucket:
            return None
        previous = bucket.pop(name)
        if not bucket:
            del self._objects[resource][namespace]
        self._rv += 1
        final = dict(previous.obj)
        final["metadata"] = dict(final["metadata"], resourceVersion=str(self._rv))
        stored = Stored(final, self._rv)
        self._sink(Change("DELETED", resource, namespace, stored, previous))
        return stored

    def remove_all(self, resource: str) -> list[Stored]:
        """Delete every object of one resource type (its CRD went away)."""
        removed: list[Stored] = []
        for stored in self.objects(resource, None):
            meta = stored.obj["metadata"]
            gone = self.remove(resource, meta.get("namespace", ""), meta["name"])
            if gone is not None:
                removed.append(gone)
        self._objects.pop(resource, None)
        return removed

    def count(self) -> int:
        return sum(
            len(bucket) for buckets in self._objects.values() for bucket in buckets.values()
        )


# --- selectors ---------------------------------------------------------------


class SelectorError(ValueError):
    """A selector string that does not parse (the server answers 400)."""


@dataclass(frozen=True, slots=True)
class Requirement:
    key: str
    operator: str
    """One of: =, !=, in, notin, exists, !exists."""
    values: frozenset[str] = frozenset()

    def matches(self, labels: dict[str, str]) -> bool:
        op = self.operator
        if op == "exists":
            return self.key in labels
        if op == "!exists":
            return self.key not in labels
        if op in ("=", "in"):
            return self.key in labels and labels[self.key] in self.values
        # != and notin also match objects that lack the key, as Kubernetes does
        return self.key not in labels or labels[self.key] not in self.values


_SET_TERM: Final = re.compile(r"^\s*(!?)\s*([^\s!=(),]+)\s*(?:(in|notin)\s*\(([^)]*)\))?\s*$")
_LABEL_KEY: Final = re.compile(r"^([a-z0-9]([-a-z0-9.]*[a-z0-9])?/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$")


def _split_terms(text: str) -> list[str]:
    """Split on commas that are not inside an ``in (...)`` value set."""
    terms: list[str] = []
    depth = 0
    current: list[str] = []
    for char in text:
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
        if char == "," and depth == 0:
            terms.append("".join(current))
            current = []
        else:
            current.append(char)
    terms.append("".join(current))
    return [t for t in (t.strip() for t in terms) if t]


@dataclass(frozen=True, slots=True)
class LabelSelector:
    """A parsed ``labelSelector`` query parameter (all terms must match)."""

    requirements: tuple[Requirement, ...] = ()

    @classmethod
    def parse(cls, text: str | None) -> LabelSelector:
        if not text:
            return cls()
        requirements: list[Requirement] = []
        for term in _split_terms(text):
            requirements.append(_parse_label_term(term))
        return cls(tuple(requirements))

    def matches(self, labels: dict[str, str]) -> bool:
        return all(r.matches(labels) for r in self.requirements)

    def __bool__(self) -> bool:
        return bool(self.requirements)


def _parse_label_term(term: str) -> Requirement:
    for op in ("!=", "==", "="):
        if op in term:
            key, _, value = term.partition(op)
            key, value = key.strip(), value.strip()
            _check_label_key(key, term)
            return Requirement(key, "!=" if op == "!=" else "=", frozenset([value]))
    match = _SET_TERM.match(term)
    if match is None:
        raise SelectorError(f"unable to parse requirement: {term!r}")
    negated, key, set_op, values = match.groups()
    _check_label_key(key, term)
    if set_op is None:
        return Requirement(key, "!exists" if negated else "exists")
    if negated:
        raise SelectorError(f"unable to parse requirement: {term!r}")
    members = frozenset(v.strip() for v in values.split(",") if v.strip())
    return Requirement(key, set_op, members)


def _check_label_key(key: str, term: str) -> None:
    if not _LABEL_KEY.match(key):
        raise SelectorError(f"unable to parse requirement: invalid label key {key!r} in {term!r}")


def field_value(obj: Obj, path: str) -> str | None:
    """The string value at a dotted ``fieldSelector`` path, or None."""
    node: Any = obj
    for part in path.split("."):
        if not isinstance(node, dict):
            return None
        node = node.get(part)
    if node is None:
        return None
    return node if isinstance(node, str) else json.dumps(node)


@dataclass(frozen=True, slots=True)
class FieldSelector:
    """A parsed ``fieldSelector``: equality terms over supported field paths."""

    terms: tuple[tuple[str, bool, str], ...] = field(default=())
    """(path, wanted equal?, value) triples."""

    @classmethod
    def parse(cls, text: str | None, supported: Iterable[str]) -> FieldSelector:
        if not text:
            return cls()
        allowed = set(supported)
        terms: list[tuple[str, bool, str]] = []
        for term in _split_terms(text):
            for op in ("!=", "==", "="):
                if op in term:
                    path, _, value = term.partition(op)
                    path = path.strip()
                    if path not in allowed:
                        raise SelectorError(f'field label not supported: {path}')
                    terms.append((path, op != "!=", value.strip()))
                    break
            else:
                raise SelectorError(f"invalid selector: '{text}'; can't understand '{term}'")
        return cls(tuple(terms))

    def matches(self, obj: Obj) -> bool:
        for path, equal, value in self.terms:
            actual = field_value(obj, path) or ""
            if (actual == value) != equal:
                return False
        return True

    def __bool__(self) -> bool:
        return bool(self.terms)


@dataclass(frozen=True, slots=True)
class Selection:
    """Everything LIST and WATCH filter on: scope plus both selectors."""

    resource: str
    namespace: str | None
    """None selects every namespace."""
    labels: LabelSelector = LabelSelector()
    fields: FieldSelector = FieldSelector()

    def matches(self, namespace: str, stored: Stored) -> bool:
        if self.namespace is not None and namespace != self.namespace:
            return False
        if self.labels and not self.labels.matches(stored.labels):
            return False
        return not self.fields or self.fields.matches(stored.obj)
