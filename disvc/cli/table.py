"""Columns as kubectl prints them: a header in capitals, cells left-aligned,
two spaces apart, no trailing blanks."""

from __future__ import annotations

from collections.abc import Sequence


def lines(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    """The table's lines; with no rows, one line ``HEADER: none``."""
    if not rows:
        return [f"{header[0]}: none"]
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    return [
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in [header, *rows]
    ]
