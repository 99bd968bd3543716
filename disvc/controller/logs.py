"""Log output of the controller: structlog on top of the stdlib ``logging`` tree.

Every module logs through ``structlog.get_logger(__name__)`` with a constant
message and key/value fields. This module decides, once at start-up
in ``__main__``, how those lines look: JSON objects one per line for a log
pipeline (keys ``ts``, ``level``, ``logger``, ``msg`` and the fields, all
lowerCamelCase), or coloured console lines for a person. Records from
third-party libraries that use plain ``logging`` (urllib3, kubernetes) go
through the same renderer, so the output is uniformly one format.

Fields bound with ``structlog.contextvars.bind_contextvars`` (the worker binds
``controller``, ``namespace``, ``name``, ``reconcileID`` per reconcile) are
merged into every line logged on that thread.
"""

from __future__ import annotations

import logging
import sys
from typing import TextIO

import structlog
from structlog.typing import EventDict, Processor, WrappedLogger

from disvc.controller.options import LogFormat, LogLevel

_LEVELS: dict[LogLevel, int] = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warning": logging.WARNING,
    "error": logging.ERROR,
}

_NOISY_LIBRARIES = ("urllib3", "kubernetes")
"""Libraries whose info lines (connection pool chatter) drown ours; kept at warning."""


def camel_case(key: str) -> str:
    """``reconcile_id`` -> ``reconcileId``; keys without ``_`` are left as written."""
    head, *rest = key.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


def _camel_case_keys(_: WrappedLogger, __: str, event_dict: EventDict) -> EventDict:
    # Call sites may pass snake_case keywords; the JSON schema is lowerCamelCase.
    return {camel_case(k) if "_" in k and not k.startswith("_") else k: v for k, v in event_dict.items()}


_LEADING_KEYS = ("ts", "level", "logger", "msg")


def _leading_keys_first(_: WrappedLogger, __: str, event_dict: EventDict) -> EventDict:
    # Readers scan the fixed keys first; fields follow in the order they were given.
    ordered = {k: event_dict.pop(k) for k in _LEADING_KEYS if k in event_dict}
    ordered.update(event_dict)
    return ordered


def _default_logger_name(_: WrappedLogger, __: str, event_dict: EventDict) -> EventDict:
    event_dict.setdefault("logger", "disvc")
    return event_dict


def _shared_processors() -> list[Processor]:
    """What foreign stdlib records go through before rendering."""
    return [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        _default_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True, key="ts"),
        structlog.stdlib.ExtraAdder(),
    ]


def _own_processors() -> list[Processor]:
    """What our own lines go through before rendering: the same keys as
    ``_shared_processors`` gives a foreign record, without a LogRecord."""
    return [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        _add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True, key="ts"),
        structlog.processors.StackInfoRenderer(),
    ]


def _add_logger_name(logger: WrappedLogger, _: str, event_dict: EventDict) -> EventDict:
    event_dict.setdefault("logger", getattr(logger, "name", None) or "disvc")
    return event_dict


def _renderer(log_format: LogFormat) -> list[Processor]:
    if log_format == "json":
        return [
            structlog.processors.format_exc_info,
            structlog.processors.EventRenamer("msg"),
            _camel_case_keys,
            _leading_keys_first,
            structlog.processors.JSONRenderer(sort_keys=False, default=str),
        ]
    return [_camel_case_keys, structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty(), timestamp_key="ts")]


class _LineWriter:
    """Where our rendered lines go: the stream of the stdlib handler, under
    its lock, so our lines and libraries' records never interleave."""

    def __init__(self, handler: logging.StreamHandler[TextIO], name: str) -> None:
        self._handler = handler
        self.name = name

    def msg(self, message: str) -> None:
        handler = self._handler
        handler.acquire()
        try:
            handler.stream.write(message + "\n")
            handler.stream.flush()
        finally:
            handler.release()

    debug = info = warning = warn = error = critical = exception = fatal = log = msg


class _LineWriterFactory:
    def __init__(self, handler: logging.StreamHandler[TextIO]) -> None:
        self._handler = handler

    def __call__(self, *args: object) -> _LineWriter:
        # structlog.get_logger(__name__) passes the module name here.
        return _LineWriter(self._handler, str(args[0]) if args else "disvc")


def configure(log_format: LogFormat = "json", log_level: LogLevel = "info", stream: TextIO | None = None) -> None:
    """Send every log line (ours and libraries') to ``stream`` (stderr) in ``log_format``.

    Our lines are rendered by structlog and written straight to the stream:
    through stdlib ``logging`` each cost two LogRecords and a second pass of
    processors, a sixth of the controller's CPU when converging 1000 DISVCs
    (hack/bench/README.md). Lines below ``log_level`` are dropped before any
    processor runs. Records from libraries that use stdlib ``logging`` go
    through a handler on the same stream with the same renderer.

    Idempotent: calling it again replaces the previous handler, so tests and
    ``main`` may call it more than once.
    """
    handler = logging.StreamHandler(stream if stream is not None else sys.stderr)
    structlog.configure(
        processors=[*_own_processors(), *_renderer(log_format)],
        logger_factory=_LineWriterFactory(handler),
        wrapper_class=structlog.make_filtering_bound_logger(_LEVELS[log_level]),
        cache_logger_on_first_use=False,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=_shared_processors(),
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, *_renderer(log_format)],
    )
    handler.setFormatter(formatter)
    handler.set_name("disvc")
    root = logging.getLogger()
    for old in [h for h in root.handlers if h.get_name() == "disvc"]:
        root.removeHandler(old)
    root.addHandler(handler)
    # --log-level debug is for our own reconcile details; libraries' debug
    # output (every HTTP request, every CEL step) stays off.
    root.setLevel(max(logging.INFO, _LEVELS[log_level]))
    for name in _NOISY_LIBRARIES:
        logging.getLogger(name).setLevel(max(logging.WARNING, _LEVELS[log_level]))
