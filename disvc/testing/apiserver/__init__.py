"""An in-memory Kubernetes API server for tests, benchmarks and the demo.

``ApiServer().start()`` serves the Kubernetes REST API (the resource types
disvc touches, plus any CRD created through it) on an ephemeral loopback
port, counts every request, and fails requests on demand (``FaultRule``).
It shares no code with the controller it judges.

Laid out as k8s.io/apiserver is: :mod:`.server` is HTTP only (routing,
accounting, faults); :mod:`.handlers` decode and answer each verb; the
generic :mod:`.store` runs every write through one pipeline and asks the
type's strategy (:mod:`.strategies`) what differs per type. Below them:
:mod:`.storage` (versions, selectors), :mod:`.watch` (history and fan-out),
:mod:`.patch`, :mod:`.apply` with :mod:`.structured`, :mod:`.listtypes` and
:mod:`.fieldpath` (server-side apply), :mod:`.validation`, :mod:`.resources`
(served types), :mod:`.errors` (Status bodies). What ``kubectl`` reads
before it acts: :mod:`.discovery`, :mod:`.openapi`, :mod:`.tables` (with
:mod:`.jsonpath` for printer columns).
"""

from disvc.testing.apiserver.faults import FaultRule
from disvc.testing.apiserver.server import ApiServer, RequestRecord

__all__ = ["ApiServer", "FaultRule", "RequestRecord"]
