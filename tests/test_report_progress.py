"""python -m histvq.report DIR --progress: where runs stand, read from their epoch lines."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest
from test_report import make_run, scores

from histvq.callbacks.progress import EPOCH_LINE_PATTERN, epoch_line
from histvq.errors import ConfigError
from histvq.report import collect_runs
from histvq.report.cli import report
from histvq.report.progress import progress

PREFIX = "[{}][histvq.callbacks.progress][INFO] - "


def _log(run: Path, *lines: tuple[str, str]) -> None:
    """train.log with (time, message) lines of the epoch summary's logger."""
    text = "".join(PREFIX.format(when) + message + "\n" for when, message in lines)
    (run / "train.log").write_text("[2026-12-07 03:00:00,000][histvq.pipeline][INFO] - x\n" + text)


def test_epoch_lines_read_back_into_their_parts() -> None:
    line = epoch_line(4, 30, 230, {"loss": 2.0}, 1307.0, 30420.0)
    parts = EPOCH_LINE_PATTERN.match(line)
    assert parts is not None
    assert parts.group("epoch", "epochs", "step", "took", "left", "done") == (
        "5", "30", "230", "21 min 47 s", "8 h 27 min", None,
    )  # fmt: skip
    last = EPOCH_LINE_PATTERN.match(epoch_line(29, 30, 1380, {"loss": 2.0}, 5.0, 0.0))
    assert last is not None and last.group("done") == "done" and last.group("left") is None
    endless = EPOCH_LINE_PATTERN.match(epoch_line(0, -1, 4, {"loss": 2.0}, 5.0, None))
    assert endless is not None and endless.group("epochs") is None


def test_progress_rows_hand_checked(tmp_path: Path) -> None:
    running = make_run(tmp_path, "a", ["seed=0"], None)
    _log(
        running,
        ("2026-12-07 04:41:00,832", epoch_line(3, 30, 184, {"loss": 1.0}, 1130.0, 29340.0)),
        ("2026-12-07 05:02:47,685", epoch_line(4, 30, 230, {"loss": 1.0}, 1307.0, 30420.0)),
    )
    done = make_run(tmp_path, "b", ["seed=1"], scores(50))
    _log(done, ("2026-12-07 05:30:00,000", epoch_line(29, 30, 1380, {"loss": 1.0}, 5.0, 0.0)))
    make_run(tmp_path, "c", ["seed=2"], None)  # no epoch ended yet
    table = progress(collect_runs(tmp_path), tmp_path, now=datetime(2026, 12, 7, 5, 40, 0))
    assert table.rows == [
        ["a", "unfinished", "5/30", "21 min 47 s", "8 h 27 min", "37 min 13 s ago"],
        ["b", "finished", "30/30", "5 s", "", "10 min 0 s ago"],
        ["c", "unfinished", "", "", "", ""],
    ]
    assert table.to_csv().splitlines()[0] == (
        "run,state,epochs done,last epoch took,time left,last epoch ended"
    )


def test_progress_stands_alone(tmp_path: Path) -> None:
    make_run(tmp_path, "a", ["seed=0"], scores(50))
    text, notes = report(tmp_path, show_progress=True)
    assert text.splitlines()[2].startswith("| a   | finished |") and notes == []
    with pytest.raises(ConfigError, match=r"^--progress: lists the runs' state alone"):
        report(tmp_path, show_progress=True, history_group="codebook")
