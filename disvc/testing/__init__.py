"""Test substrate for disvc: a loopback Kubernetes API and its helpers.

Nothing here imports the controller or the builders: the substrate judges
them, so it must not share their mistakes.
"""
