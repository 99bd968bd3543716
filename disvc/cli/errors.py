"""What a verb raises instead of printing a traceback."""

from __future__ import annotations


class CliError(Exception):
    """The command could not run (no such DISVC, no connection, a refused
    write); ``str()`` is the one line printed after ``error:``. Exit code 1."""


class NothingToDo(CliError):
    """The verb would change nothing (no rollout to promote, the spec already
    runs that template); ``str()`` says why. Exit code 1, nothing written."""
