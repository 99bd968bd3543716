"""Validation, defaulting and pruning as kube-apiserver does them.

The controller's tests must see the same 422 Invalid responses a real
control plane gives, or a builder that emits a bad ISVC would pass here and
fail in production. One module per source of rules:

- :mod:`schema`: a CRD version's structural schema (pruning, ``default``s,
  OpenAPI v3 value validation), with :mod:`keywords` for each node's
  keywords and :mod:`cel` for its ``x-kubernetes-validations`` rules;
- :mod:`builtin`: the built-in kinds the controller writes (Service,
  Ingress, Lease, Event, Namespace);
- :mod:`metadata`: every object's name, labels, annotations and
  ownerReferences;
- :mod:`causes`: how a failure is worded (:class:`Cause`).

Which rules apply to which type is each type's strategy's choice
(:mod:`disvc.testing.apiserver.strategies`). Everything here is pure:
inputs are never mutated.
"""

from disvc.testing.apiserver.validation.builtin import default_builtin, validate_builtin
from disvc.testing.apiserver.validation.causes import Cause
from disvc.testing.apiserver.validation.metadata import validate_metadata
from disvc.testing.apiserver.validation.schema import SchemaValidator

__all__ = [
    "Cause",
    "SchemaValidator",
    "default_builtin",
    "validate_builtin",
    "validate_metadata",
]
