"""``kubectl disvc``: watch and steer DISVC rollouts from kubectl.

A kubectl plugin (the ``kubectl-disvc`` console script; kubectl finds it on
``PATH``), one module per verb: ``status`` (with ``-w``), ``promote``,
``abort``, ``rollback``, ``history``. The verbs decide from the DISVC's spec
and status with the same pure builders the controller uses
(``disvc.builders``) and talk to the API through ``kube`` only; they never
import the controller, which need not run where the plugin does.
"""
