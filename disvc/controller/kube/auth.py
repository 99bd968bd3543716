"""Connection settings: a kubeconfig file or the pod's service account.

The ``kubernetes`` package is used for what it is good at (kubeconfig and
in-cluster auth, TLS, one pooled ``urllib3`` connection) and nothing else;
``api.Kube`` sends raw JSON over the ``ApiClient`` made here.
"""

from __future__ import annotations

from kubernetes import client as k8s_client
from kubernetes import config as k8s_config

from disvc.controller import errors

CONNECTION_POOL_SIZE = 32
"""Workers, watches and the leader elector share one pool; a pool smaller
than that concurrency would open and discard connections per request."""


def load_api_client(kubeconfig: str | None) -> k8s_client.ApiClient:
    """An ApiClient for the kubeconfig file, or the in-cluster service account when None."""
    configuration = k8s_client.Configuration()
    try:
        if kubeconfig:
            k8s_config.load_kube_config(  # type: ignore[no-untyped-call]
                config_file=kubeconfig, client_configuration=configuration
            )
        else:
            k8s_config.load_incluster_config(  # type: ignore[no-untyped-call]
                client_configuration=configuration
            )
    except Exception as error:
        # Loading only reads and parses files (YAML, base64, URLs): whatever
        # it raises means the settings are unusable, a setup mistake to name
        # in one line rather than a crash with a traceback.
        where = f"kubeconfig {kubeconfig}" if kubeconfig else "the in-cluster service account (no --kubeconfig given)"
        raise errors.ConfigError(f"cannot load Kubernetes connection settings from {where}: {error}") from error
    configuration.connection_pool_maxsize = max(configuration.connection_pool_maxsize or 0, CONNECTION_POOL_SIZE)
    # urllib3 would otherwise wait out Retry-After and retry idempotent calls
    # itself, under our own retry (``retry.py``): two back-offs for one failure.
    configuration.retries = False
    return k8s_client.ApiClient(configuration)
