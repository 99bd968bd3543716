"""The loopback router: kube-proxy, ingress-nginx and a Gateway on one port.

:class:`~disvc.testing.dataplane.router.server.Router` listens on
127.0.0.1 and routes HTTP/1.1 and h2c by ``Host`` (``:authority``), reading
the objects through a :class:`~disvc.testing.dataplane.router.view.ClusterView`
and the pods through the :class:`~disvc.testing.dataplane.pods.PodRegistry`.
"""
