"""``python -m disvc.controller`` and the ``disvc-controller`` console script.

Parses the flags, configures logging, and runs the ``Manager`` until SIGTERM
(the kubelet stopping the pod) or SIGINT (Ctrl-C). A signal only sets the stop
event: the manager then stops watching, lets in-flight reconciles finish,
releases its leader Lease and returns, so a clean shutdown exits 0.
"""

from __future__ import annotations

import signal
import sys
import threading
from collections.abc import Sequence
from types import FrameType

import structlog

from disvc.controller import logs, malloc, options
from disvc.controller.errors import ConfigError
from disvc.controller.manager import Manager

log = structlog.get_logger(__name__)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the controller; returns the process exit code."""
    opts = options.parse(argv)
    logs.configure(opts.log_format, opts.log_level)
    malloc.map_large_blocks()
    stop = threading.Event()

    def request_stop(signum: int, _frame: FrameType | None) -> None:
        if stop.is_set():
            # A second signal means "now": the operator does not want to wait.
            log.warning("Second signal, exiting at once", signal=signal.Signals(signum).name)
            raise SystemExit(1)
        log.info("Shutdown requested", signal=signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    try:
        return Manager(opts).run(stop)
    except ConfigError as error:
        # A setup mistake, not a crash: one line that says what to fix.
        log.error("Cannot start", error=str(error))
        return 2
    except Exception:
        log.exception("Controller failed")
        return 1


if __name__ == "__main__":
    sys.exit(main())
