"""Where runs stand while they train: ``python -m histvq.report DIR --progress``.

One row per run folder under ``DIR``: finished (it has its metrics) or not, and from the
last epoch line its training log holds (:class:`histvq.callbacks.progress.EpochSummary`)
the epochs done, how long that epoch took, the time left it estimated and how long ago it
was written: a run whose last line is much older than its epochs take has stopped, and
``ckpt_path=last`` continues it.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from histvq.callbacks.progress import EPOCH_LINE_PATTERN, format_duration
from histvq.report.render import csv_text, markdown_table
from histvq.report.runs import Run

HEADER = ("run", "state", "epochs done", "last epoch took", "time left", "last epoch ended")
# Hydra's log line prefix: [2026-12-07 05:02:47,685][histvq.callbacks.progress][INFO] - ...
LOG_LINE = re.compile(
    r"^\[(?P<time>\d{4}-\d\d-\d\d \d\d:\d\d:\d\d)[,.]\d+\]\[histvq\.callbacks\.progress\]"
    r"\[INFO\] - (?P<text>.*)$"
)


@dataclass
class Progress:
    """The progress table: one row per run (cells as text)."""

    rows: list[list[str]]

    def to_markdown(self) -> str:
        return markdown_table(HEADER, self.rows)

    def to_csv(self) -> str:
        return csv_text(HEADER, self.rows)


def last_epoch_line(log_file: Path) -> tuple[datetime, re.Match[str]] | None:
    """When the last epoch line of a training log was written, and the line's parts; None
    when the log is missing or has none."""
    try:
        text = log_file.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None
    for line in reversed(text.splitlines()):
        logged = LOG_LINE.match(line)
        parts = EPOCH_LINE_PATTERN.match(logged.group("text")) if logged else None
        if logged and parts:
            return datetime.strptime(logged.group("time"), "%Y-%m-%d %H:%M:%S"), parts
    return None


def progress_row(run: Run, root: Path, now: datetime) -> list[str]:
    """One run's row of the table (``now`` in the log's clock: this machine's local time)."""
    name = run.path.relative_to(root).as_posix() if run.path != root else run.path.name
    state = "finished" if run.metrics is not None else "unfinished"
    found = last_epoch_line(run.path / f"{run.task or 'train'}.log")
    if found is None:  # no epoch ended yet, or a log from before epoch lines were written
        return [name, state, "", "", "", ""]
    written, parts = found
    of = f"/{parts.group('epochs')}" if parts.group("epochs") else ""
    left = "" if parts.group("done") else (parts.group("left") or "")
    ago = f"{format_duration((now - written).total_seconds())} ago"
    return [name, state, f"{parts.group('epoch')}{of}", parts.group("took"), left, ago]


def progress(runs: Sequence[Run], root: Path, now: datetime | None = None) -> Progress:
    """The progress of every run in ``runs`` (found under ``root``)."""
    now = now or datetime.now()
    return Progress([progress_row(run, Path(root), now) for run in runs])
