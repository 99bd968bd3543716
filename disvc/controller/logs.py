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
    """What both our structlog calls and foreign stdlib records go through."""
    return [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        _default_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True, key="ts"),
        structlog.stdlib.ExtraAdder(),
    ]


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


def configure(log_format: LogFormat = "json", log_level: LogLevel = "info", stream: TextIO | None = None) -> None:
    """Send every log line (ours and libraries') to ``stream`` (stderr) in ``log_format``.

    Idempotent: calling it again replaces the previous handler, so tests and
    ``main`` may call it more than once.
    """
    shared = _shared_processors()
    structlog.configure(
        processors=[
            *shared,
            structlog.processors.StackInfoRenderer(),
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=False,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared,
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, *_renderer(log_format)],
    )
    handler = logging.StreamHandler(stream if stream is not None else sys.stderr)
    handler.setFormatter(formatter)
    handler.set_name("disvc")
    root = logging.getLogger()
    for old in [h for h in root.handlers if h.get_name() == "disvc"]:
        root.removeHandler(old)
    root.addHandler(handler)
    # --log-level debug is for our own reconcile details; libraries' debug
    # output (every HTTP request, every CEL step) stays off.
    root.setLevel(max(logging.INFO, _LEVELS[log_level]))
    logging.getLogger("disvc").setLevel(_LEVELS[log_level])
    for name in _NOISY_LIBRARIES:
        logging.getLogger(name).setLevel(max(logging.WARNING, _LEVELS[log_level]))

