"""Services: a ClusterIP allocated on create and immutable afterwards.

The API server hands each Service (except ExternalName and headless ones
that ask for ``None``) an address from the service CIDR, refuses an update
that changes it, and fills the IP family fields. Here the CIDR is
10.96.0.0/16, allocated in order. Service names are DNS-1035 labels, and a
deleted Service is answered with the object, as kube-apiserver does.
"""

from __future__ import annotations

from typing import ClassVar

from disvc.testing.apiserver import errors
from disvc.testing.apiserver.resources import ResourceType
from disvc.testing.apiserver.storage import Obj
from disvc.testing.apiserver.strategies.base import Strategy
from disvc.testing.apiserver.validation import Cause


class ServiceStrategy(Strategy):
    return_deleted_object: ClassVar[bool] = True
    dns1035_name: ClassVar[bool] = True

    def __init__(self, rt: ResourceType) -> None:
        super().__init__(rt)
        self._next_ip = 10

    def prepare_for_create(self, obj: Obj) -> None:
        obj["status"] = {"loadBalancer": {}}
        self._cluster_ip(obj, None)

    def prepare_for_update(self, new: Obj, old: Obj) -> None:
        self._cluster_ip(new, old)

    def _cluster_ip(self, new: Obj, old: Obj | None) -> None:
        spec = new.setdefault("spec", {})
        if spec.get("type") == "ExternalName":
            return
        old_spec = (old.get("spec") or {}) if old is not None else {}
        old_ip = old_spec.get("clusterIP")
        wanted = spec.get("clusterIP")
        if old_ip:
            if wanted and wanted != old_ip:
                raise errors.invalid(self.rt, new["metadata"].get("name", ""), [Cause(
                    "FieldValueInvalid", "spec.clusterIPs[0]",
                    f'Invalid value: []string{{"{wanted}"}}: may not change once set',
                )])
            spec["clusterIP"] = old_ip
            spec["clusterIPs"] = old_spec.get("clusterIPs") or [old_ip]
        else:
            if not wanted:
                wanted = self._allocate_ip()
            spec["clusterIP"] = wanted
            spec["clusterIPs"] = [wanted]
        if spec["clusterIP"] != "None":
            spec.setdefault("ipFamilies", ["IPv4"])
        spec.setdefault("ipFamilyPolicy", "SingleStack")
        spec.setdefault("internalTrafficPolicy", "Cluster")

    def _allocate_ip(self) -> str:
        index = self._next_ip
        self._next_ip += 1
        return f"10.96.{(index // 254) % 256}.{index % 254 + 1}"
