"""The data plane the substrate lacks: model-server pods and a router.

Real KServe model servers (the ``kserve`` package, serving an iris model
trained at start-up) stand in for predictor pods, and a loopback router
plays kube-proxy, ingress-nginx and a Gateway, so tests and the demo send
the seed's request through the objects the controller made.
Needs the ``dataplane`` extra (``pip install -e '.[dataplane]'``).
"""
