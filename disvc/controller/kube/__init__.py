"""The Kubernetes API client, the only code that imports the ``kubernetes`` package.

One concept per module, as kopf's ``_cogs/clients``:

- ``resources``: the API surface, which kinds live where and exactly which
  calls the controller may make (``API_CALLS``, what RBAC must grant);
- ``auth``: where the connection settings come from (as kubectl finds
  them) and the connections made from them;
- ``api``: ``Kube``, raw JSON requests; it counts every request
  (``on_request``) and every ``Retry-After`` it waits out
  (``on_retry_after``), and maps failures;
- ``transport``: kept-alive HTTP/1.1 connections for every call, watches
  included; answers parsed by llhttp (``httptools``), requests written and
  checked here;
- ``lists``: a LIST answer decoded item by item, each item transformed at once;
- ``responses``: an HTTP status and ``Status`` body to a controller error;
- ``retry``: the brief in-call retry of transient failures;
- ``watching``: a watch response decoded into events as they arrive.

Everything above the client imports the names re-exported here.
"""

from disvc.controller.kube.api import DEFAULT_USER_AGENT, Kube, RequestHook, RetryAfterHook
from disvc.controller.kube.auth import load_api_client
from disvc.controller.kube.resources import API_CALLS, EVENT_KIND, LEASE_KIND, RESOURCES, ApiCall, Resource
from disvc.controller.kube.watching import Watch

__all__ = [
    "API_CALLS",
    "DEFAULT_USER_AGENT",
    "EVENT_KIND",
    "LEASE_KIND",
    "RESOURCES",
    "ApiCall",
    "Kube",
    "RequestHook",
    "Resource",
    "RetryAfterHook",
    "Watch",
    "load_api_client",
]
