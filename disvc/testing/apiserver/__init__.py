"""An in-memory Kubernetes API server for tests, benchmarks and the demo.

``ApiServer().start()`` serves the Kubernetes REST API (the resource types
disvc touches, plus any CRD created through it) on an ephemeral loopback
port, counts every request, and fails requests on demand (``FaultRule``).
It shares no code with the controller it judges.
"""

from disvc.testing.apiserver.faults import FaultRule
from disvc.testing.apiserver.server import ApiServer, RequestRecord

__all__ = ["ApiServer", "FaultRule", "RequestRecord"]
