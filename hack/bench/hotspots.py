"""Where the controller's time goes, from a ``py-spy record --format raw`` profile.

``converge.py --profile DIR`` records one; this reads the collapsed stacks
(one line per distinct stack: ``frame;frame;...;frame count``, outermost
first, idle threads already left out by py-spy) and prints:

Samples spent importing modules (start-up, before ``/readyz``) are left
out unless ``--include-imports``; ``converge.py`` records with ``--gil`` so
only the thread holding the GIL is sampled: the profile is of CPU, not of
time spent waiting for the API server.

- self time: the innermost frame of each sample, grouped per function;
- inclusive time per function of this project (``disvc/``): how much of the
  busy time passes through it, so a costly call is charged to the project
  code that makes it;
- inclusive time per library (the top-level package of each frame, counted
  once per sample).

Shares are of all kept samples of the controller process.

Usage: ``python hack/bench/hotspots.py PROFILE [--top 20]``.
"""

from __future__ import annotations

import argparse
import collections
import re
import sys
from pathlib import Path

_FRAME = re.compile(r"^(?P<function>.*?) \((?P<file>[^()]*?)(?::(?P<line>\d+))?\)$")
_SITE = re.compile(r".*/(?:site|dist)-packages/")
_STDLIB = re.compile(r".*/lib/python3\.\d+/")


def _where(path: str) -> str:
    """A short, stable file name: ``disvc/...``, ``<package>/...`` or ``stdlib:<file>``."""
    if "/disvc/" in path:
        return "disvc/" + path.split("/disvc/", 1)[1]
    site = _SITE.match(path)
    if site:
        return path[site.end():]
    stdlib = _STDLIB.match(path)
    if stdlib:
        return "stdlib:" + path[stdlib.end():]
    return path


def _function(frame: str) -> str:
    found = _FRAME.match(frame.strip())
    if not found:
        return frame.strip()
    return f"{_where(found.group('file'))}:{found.group('function')}"


def _library(function: str) -> str:
    where = function.split(":", 1)[0]
    if where.startswith("stdlib"):
        return "stdlib:" + function.split(":", 2)[1].split("/", 1)[0]
    return where.split("/", 1)[0]


def load(path: Path) -> list[tuple[list[str], int]]:
    stacks: list[tuple[list[str], int]] = []
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        stacks.append(([_function(frame) for frame in stack.split(";")], int(count)))
    return stacks


def _is_import(frames: list[str]) -> bool:
    return any("importlib" in frame for frame in frames)


def summary(path: Path, top: int = 20, include_imports: bool = False) -> str:
    everything = load(path)
    stacks = [(f, c) for f, c in everything if include_imports or not _is_import(f)]
    total = sum(count for _, count in stacks)
    imports = sum(count for _, count in everything) - total
    if not total:
        return f"{path}: no samples"
    self_time: collections.Counter[str] = collections.Counter()
    inclusive: collections.Counter[str] = collections.Counter()
    libraries: collections.Counter[str] = collections.Counter()
    for frames, count in stacks:
        self_time[frames[-1]] += count
        for function in set(frames):
            if function.startswith("disvc/"):
                inclusive[function] += count
        for library in {_library(f) for f in frames}:
            libraries[library] += count

    def table(title: str, counts: collections.Counter[str]) -> list[str]:
        rows = [title]
        rows += [f"  {100 * n / total:5.1f}%  {what}" for what, n in counts.most_common(top)]
        return rows

    lines = [f"Where the controller's time goes ({total} samples holding the GIL, {path})"]
    if imports:
        lines.append(f"  ({imports} more samples spent importing modules at start-up are left out)")
    lines += table("self time (innermost frame):", self_time)
    lines += table("inclusive time, project functions:", inclusive)
    lines += table("inclusive time, by package:", libraries)
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("profile", type=Path)
    parser.add_argument("--top", type=int, default=20)
    parser.add_argument("--include-imports", action="store_true", help="keep start-up import samples")
    args = parser.parse_args(argv)
    print(summary(args.profile, args.top, args.include_imports))
    return 0


if __name__ == "__main__":
    sys.exit(main())
