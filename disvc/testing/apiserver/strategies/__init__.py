"""Per-type behaviour of the loopback API server, one strategy per type.

The generic store (:mod:`disvc.testing.apiserver.store`) writes every type
the same way and asks the type's strategy (:mod:`.base`) what differs:

- :mod:`.service`: ClusterIP allocation;
- :mod:`.namespace`: fixed label and finalizer, deletion by emptying;
- :mod:`.ingress`: the empty load-balancer status;
- :mod:`.crd`: CRDs accepted, established and served on write;
- :mod:`.custom`: custom resources checked against their schema;
- :class:`.base.Strategy`: every other built-in kind.

:class:`Strategies` hands out one strategy per served type; it belongs to
one server, as some strategies keep state (the Service IP allocator).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final

from disvc.testing.apiserver.resources import Registry, ResourceType
from disvc.testing.apiserver.strategies import crd, namespace
from disvc.testing.apiserver.strategies.base import Strategy
from disvc.testing.apiserver.strategies.custom import CompiledSchemas, CustomResourceStrategy
from disvc.testing.apiserver.strategies.ingress import IngressStrategy
from disvc.testing.apiserver.strategies.service import ServiceStrategy

_BUILTIN: Final[dict[str, Callable[[ResourceType, CompiledSchemas], Strategy]]] = {
    "/services": lambda rt, _: ServiceStrategy(rt),
    namespace.KEY: lambda rt, _: namespace.NamespaceStrategy(rt),
    "networking.k8s.io/ingresses": lambda rt, _: IngressStrategy(rt),
    crd.KEY: crd.CustomResourceDefinitionStrategy,
}


class Strategies:
    """The strategy of each served type, made on first use."""

    def __init__(self, registry: Registry) -> None:
        self._registry = registry
        self._schemas = CompiledSchemas()
        self._builtin: dict[str, Strategy] = {}
        self._custom: dict[tuple[str, str], Strategy] = {}

    def for_type(self, rt: ResourceType) -> Strategy:
        if rt.custom:
            # a CRD update serves a new ResourceType: its strategy is made afresh
            strategy = self._custom.get((rt.key, rt.version))
            if strategy is None or strategy.rt is not rt:
                strategy = CustomResourceStrategy(rt, self._schemas)
                self._custom[(rt.key, rt.version)] = strategy
            return strategy
        strategy = self._builtin.get(rt.key)
        if strategy is None:
            make = _BUILTIN.get(rt.key)
            strategy = make(rt, self._schemas) if make is not None else Strategy(rt)
            self._builtin[rt.key] = strategy
        return strategy

    def for_key(self, key: str) -> Strategy | None:
        """The strategy of a built-in type by storage key; None for custom resources."""
        rt = self._registry.builtin(key)
        return self.for_type(rt) if rt is not None else None

    def forget(self, key: str) -> None:
        """Drop the strategies of a custom resource type no longer served."""
        for cached in [k for k in self._custom if k[0] == key]:
            del self._custom[cached]


__all__ = ["Strategies", "Strategy"]
