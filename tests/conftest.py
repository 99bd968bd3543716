"""Test-suite wiring: the ``kube`` fixture, ``eventually`` and the
``substrate_only`` marker come from the ``disvc.testing.fixtures`` plugin."""

pytest_plugins = ["disvc.testing.fixtures"]
