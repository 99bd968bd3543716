"""Substrate conformance: the same tests pass on a real kube-apiserver."""
