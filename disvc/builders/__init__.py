"""Pure builders: a DistributedInferenceService in, desired children and status out.

Nothing here performs I/O, reads a clock, logs or imports a Kubernetes client:
the reconciler (``disvc.controller.reconciler``) and ``disvc render`` both call
``desired.state``, which returns the plan already diffed against the live
children, and do the I/O themselves.
"""
