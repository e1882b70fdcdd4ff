"""Text output of the report: markdown pipe tables, CSV and number cells.

Kept apart from what the tables hold (:mod:`.summary`, :mod:`.paper`) so every table is
drawn the same way: padded GitHub-flavoured markdown for reading, CSV with four-decimal
numbers for scripts and spreadsheets.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence


def number_text(value: float | None) -> str:
    """A CSV number cell: four decimals, empty for a missing value (e.g. the std of one run)."""
    return "" if value is None else f"{value:.4f}"


def markdown_table(
    header: Sequence[str], rows: Sequence[Sequence[str]], right: Sequence[bool] | None = None
) -> str:
    """A GitHub-flavoured pipe table with padded columns (``right``: right-aligned ones)."""
    right = list(right) if right is not None else [False] * len(header)
    cells = [list(header), *[list(r) for r in rows]]
    widths = [max(3, *(len(row[i]) for row in cells)) for i in range(len(header))]

    def line(values: Sequence[str]) -> str:
        padded = [
            v.rjust(w) if r else v.ljust(w) for v, w, r in zip(values, widths, right, strict=True)
        ]
        return "| " + " | ".join(padded) + " |"

    rule = "| " + " | ".join(
        ("-" * (w - 1) + ":") if r else "-" * w for w, r in zip(widths, right, strict=True)
    )
    return "\n".join([line(header), rule + " |", *(line(r) for r in rows)])


def csv_text(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """``header`` and ``rows`` as CSV text, ``\\n`` line ends, no trailing newline."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return buffer.getvalue().rstrip("\n")
