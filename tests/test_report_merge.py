"""A paper table completed from an earlier table's CSV: ``--paper TABLE --merge FILE``."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from conftest import ROOT
from test_report import make_run, scores, table_lines

from histvq.errors import ConfigError
from histvq.report import collect_runs, main, paper_summary, paper_table, report
from histvq.report.earlier import merge_earlier, read_paper_csv
from histvq.report.paper import PAPER_TABLES
from histvq.report.summary import Cell

TABLE9 = PAPER_TABLES[9]


def input_run(root: Path, name: str, spatial_input: str, seed: int, mof: float) -> None:
    overrides = ["dataset=hugadb", f"model.spatial_input={spatial_input}", f"seed={seed}"]
    make_run(root, name, overrides, scores(mof, edit=30.0 + seed), dataset="hugadb")


def earlier_runs(root: Path) -> None:
    """What an earlier sweep measured: Q^Z over two seeds, Q^A over one."""
    input_run(root, "first0", "first", 0, 46.0)
    input_run(root, "first1", "first", 1, 50.0)
    input_run(root, "top0", "top", 0, 48.0)


def later_runs(root: Path) -> None:
    """The row the earlier sweep lacked: Both over two seeds."""
    input_run(root, "both0", "both", 0, 44.0)
    input_run(root, "both2", "both", 2, 47.0)


def test_merged_table_equals_the_table_of_all_runs(tmp_path: Path) -> None:
    earlier_runs(tmp_path / "all" / "earlier")
    later_runs(tmp_path / "all" / "later")
    earlier_csv = tmp_path / "table9.csv"
    earlier = collect_runs(tmp_path / "all" / "earlier")
    earlier_csv.write_text(paper_table(earlier, "table9", as_csv=True, published=True))
    merged = paper_summary(collect_runs(tmp_path / "all" / "later"), "table9", published=True)
    merge_earlier(merged, earlier_csv)
    together = paper_summary(collect_runs(tmp_path / "all"), "table9", published=True)
    assert merged.to_csv() == together.to_csv()
    assert merged.to_markdown() == together.to_markdown()
    _, *rows = table_lines(merged.to_markdown())
    assert [row[0] for row in rows] == ["Q^Z", "Q^A", "Both"]
    assert rows[0][1:3] == ["48.0 ± 2.8", "30.5 ± 0.7"] and rows[0][6] == "2"
    assert rows[2][1:3] == ["45.5 ± 2.1", "31.0 ± 1.4"]
    assert merged.notes == [
        f"from {earlier_csv} (mean, std and n as written there): Q^Z on HuGaDB, Q^A on HuGaDB"
    ]


def test_merged_rows_are_drawn_as_mean_and_std_without_seeds(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    earlier_runs(tmp_path / "earlier")
    later_runs(tmp_path / "later")
    earlier_csv = tmp_path / "table9.csv"
    earlier_csv.write_text(paper_table(collect_runs(tmp_path / "earlier"), "9", as_csv=True))
    drawn = {}

    def capture(panels, path, title=None, reference_label="reference"):
        drawn.update(panels=panels)
        return Path(path)

    monkeypatch.setattr("histvq.evaluation.plotting.plot_score_columns", capture)
    _, notes = report(tmp_path / "later", paper="table9", merge=[earlier_csv],
                      plot=tmp_path / "unused.png")  # fmt: skip
    assert notes[0].startswith(f"from {earlier_csv}")
    mof = {column.label: column for column in drawn["panels"]["HuGaDB MoF"]}
    assert tuple(mof["Both"].values) == (44.0, 47.0)
    assert tuple(mof["Q^Z"].values) == ()
    assert mof["Q^Z"].summary == pytest.approx((48.0, 2.8284))
    assert mof["Q^A"].summary == (48.0, None) and mof["Q^A"].reference == 48.2


def test_the_runs_win_over_the_file_and_say_so(tmp_path: Path) -> None:
    earlier_runs(tmp_path / "earlier")
    earlier_csv = tmp_path / "table9.csv"
    earlier_csv.write_text(paper_table(collect_runs(tmp_path / "earlier"), "9", as_csv=True))
    input_run(tmp_path / "new", "top1", "top", 1, 40.0)
    summary = paper_summary(collect_runs(tmp_path / "new"), "table9")
    merge_earlier(summary, earlier_csv)
    assert summary.cells["Q^A"]["hugadb"]["mof"] == Cell(40.0, None, 1)
    assert summary.cells["Q^Z"]["hugadb"]["mof"].mean == pytest.approx(48.0)
    assert summary.notes[-1] == f"rows of {earlier_csv} the runs replace: Q^A on HuGaDB"


def test_the_committed_subset_table_reads_back() -> None:
    table9 = ROOT / "docs" / "results" / "hugadb_v1_every10_table9.csv"
    cells = read_paper_csv(table9, TABLE9)
    assert set(cells) <= {"Q^Z", "Q^A", "Both"} and {"Q^Z", "Q^A"} <= set(cells)
    assert cells["Q^Z"]["hugadb"]["mof"] == Cell(49.0915, 2.6991, 3)
    assert cells["Q^A"]["hugadb"]["edit"] == Cell(39.8412, 0.7101, 3)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "the file is empty"),
        (
            "α,HuGaDB MoF,HuGaDB n\n1,40,1\n",
            "first column is 'α', not 'Input': not a CSV of Table 9",
        ),
        ("Input,HuGaDB Speed,HuGaDB n\nQ^Z,40,1\n", "column 'HuGaDB Speed' is no"),
        ("Input,HuGaDB MoF,HuGaDB n\nQ^Z,forty,1\n", "row 'Q^Z', column 'HuGaDB MoF': 'forty' is"),
        ("Input,HuGaDB MoF,HuGaDB n\nQ^Z,40,\n", "row 'Q^Z': HuGaDB has scores but no run count"),
        ("Input,HuGaDB MoF,HuGaDB n\nQ^Z,40\n", "line 2: 2 fields, the header has 3"),
    ],
)
def test_a_file_that_is_no_paper_csv_is_a_clear_error(
    tmp_path: Path, text: str, message: str
) -> None:
    path = tmp_path / "earlier.csv"
    path.write_text(text)
    with pytest.raises(ConfigError, match="--merge .*earlier.csv.*" + re.escape(message)):
        read_paper_csv(path, TABLE9)


def test_merge_needs_a_paper_table_and_a_readable_file(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    later_runs(tmp_path)
    with pytest.raises(ConfigError, match=r"--merge: .* name the TABLE"):
        report(tmp_path, merge=[tmp_path / "x.csv"])
    with pytest.raises(SystemExit) as stop:
        main([str(tmp_path), "--paper", "9", "--merge", str(tmp_path / "absent.csv")])
    assert stop.value.code == 2
    error = capsys.readouterr().err
    assert error.startswith("error: --merge ") and "absent.csv: cannot read it" in error
    assert len(error.strip().splitlines()) == 1
