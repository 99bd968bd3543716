"""Ingresses: a create starts with an empty load-balancer status.

Everything else an Ingress needs (generation tracking, the status
subresource, validation of rules and backends) is generic or in
:mod:`disvc.testing.apiserver.validation.builtin`.
"""

from __future__ import annotations

from disvc.testing.apiserver.storage import Obj
from disvc.testing.apiserver.strategies.base import Strategy


class IngressStrategy(Strategy):
    def prepare_for_create(self, obj: Obj) -> None:
        obj["status"] = {"loadBalancer": {}}
