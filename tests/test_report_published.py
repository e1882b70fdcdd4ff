"""The paper's published values beside a reproduction: ``--paper TABLE --published`` and
``--paper TABLE --plot FILE``."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from conftest import ROOT
from test_report import make_run, scores, table_lines

from histvq.errors import ConfigError
from histvq.evaluation.plotting import PlotInputError, ScoreColumn, plot_score_columns
from histvq.report import collect_runs, main, paper_summary, paper_table, report
from histvq.report.paper import PAPER_TABLES
from histvq.report.published import PUBLISHED, published_scores

PAPER_TEXT = ROOT.parent / "shared" / "papers" / "histvq_paper.txt"
METRICS = ["MoF", "Edit", "F1@10", "F1@25", "F1@50"]


def alpha_runs(root: Path) -> None:
    """Table 5 on HuGaDB: alpha 1 over two seeds, alpha 4 (not in the paper) over one."""
    for name, overrides, mof in [
        ("a", ["dataset=hugadb", "model.alpha=1", "seed=0"], 46.0),
        ("b", ["dataset=hugadb", "model.alpha=1", "seed=1"], 50.0),
        ("c", ["dataset=hugadb", "model.alpha=4"], 40.0),
    ]:
        make_run(root, name, overrides, scores(mof, edit=41.0), dataset="hugadb")


# ----------------------------------------------------------------------------- the values


def test_published_scores_by_metric_key() -> None:
    assert published_scores(1, "HiST-VQ", "hugadb") == {
        "mof": 48.2, "edit": 44.3, "f1@10": 49.4, "f1@25": 39.8, "f1@50": 28.3,
    }  # fmt: skip
    assert published_scores(3, "SMQ", "lara") == {"jsd": 74.2}
    assert published_scores(8, "2", "hugadb")["mof"] == 39.6
    assert published_scores(5, "4", "hugadb") == {}  # a row the paper does not have
    assert published_scores(5, "1", "lara") == {}  # a dataset the table does not have
    assert published_scores(11, "1", "hugadb") == {}


def test_every_published_row_is_a_row_of_its_table() -> None:
    for number, rows in PUBLISHED.items():
        table = PAPER_TABLES[number]
        assert set(rows) == set(table.rows), number
        for row, datasets in rows.items():
            assert set(datasets) <= set(table.datasets), (number, row)
            assert all(len(v) == (1 if table.jsd else 5) for v in datasets.values())


def test_the_default_rows_of_the_hugadb_ablations_are_table_1s_hist_vq_row() -> None:
    main_row = PUBLISHED[1]["HiST-VQ"]["hugadb"]
    defaults = {4: "All", 5: "2", 6: "2", 7: "0.001", 8: "0.2", 9: "Q^A", 10: "Q^Z"}
    for number, row in defaults.items():
        assert PUBLISHED[number][row]["hugadb"] == main_row, number


def _paper_rows(text: str, number: int) -> dict[str, list[float]]:
    """The numeric rows of Table ``number`` in the paper's text: row label -> numbers."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(f"Table {number}:"))
    rows: dict[str, list[float]] = {}
    for line in lines[start + 1 :]:
        if line.startswith("Table ") or len(line) > 300:
            break
        match = re.fullmatch(r"\s*(.*?)((?:\s+[\d.]+|\s+-)+)\s*", line)
        if not match or not match.group(1):
            continue
        label = re.sub(r"\[.*?\]|\(Ours\)", "", match.group(1)).strip()
        for symbol in ("Z", "A"):
            if f"Q}}^{{{symbol}}}" in label:
                label = f"Q^{symbol}"
        rows[label] = [float(v) for v in match.group(2).split() if v != "-"]
    return rows


@pytest.mark.skipif(not PAPER_TEXT.is_file(), reason="the paper's text is not beside the repo")
@pytest.mark.parametrize("number", sorted(PUBLISHED))
def test_published_values_match_the_papers_text(number: int) -> None:
    printed = _paper_rows(PAPER_TEXT.read_text(encoding="utf-8"), number)
    table = PAPER_TABLES[number]
    for row, datasets in PUBLISHED[number].items():
        numbers = printed[row]
        if table.jsd:
            numbers = numbers[:-1]  # the printed average
        expected = [v for d in table.datasets for v in datasets[d]]
        assert numbers == expected, (number, row)


# ----------------------------------------------------------------------------- the tables


def test_published_column_beside_ours_in_markdown(tmp_path: Path) -> None:
    alpha_runs(tmp_path)
    header, *rows = table_lines(paper_table(collect_runs(tmp_path), "table5", published=True))
    assert header == ["α", *(f"HuGaDB {m}" for m in METRICS), "HuGaDB n", "HuGaDB paper"]
    assert rows[0] == ["1", "48.0 ± 2.8", "41.0 ± 0.0", "20.0 ± 0.0", "30.0 ± 0.0",
                       "40.0 ± 0.0", "2", "47.1 / 42.8 / 47.9 / 40.0 / 28.6"]  # fmt: skip
    assert rows[1][1] == "-" and rows[1][-1] == "48.2 / 44.3 / 49.4 / 39.8 / 28.3"
    assert rows[3][0] == "4" and rows[3][-1] == "-"  # our extra row: no paper value
    plain = table_lines(paper_table(collect_runs(tmp_path), "table5"))[0]
    assert "HuGaDB paper" not in plain


def test_published_columns_in_csv(tmp_path: Path) -> None:
    alpha_runs(tmp_path)
    header, first, _, _, extra = paper_table(
        collect_runs(tmp_path), "alpha", as_csv=True, published=True
    ).splitlines()
    assert header.split(",")[:4] == ["α", "HuGaDB MoF", "HuGaDB MoF_std", "HuGaDB MoF paper"]
    assert header.split(",")[-2:] == ["HuGaDB F1@50 paper", "HuGaDB n"]
    assert first.split(",")[:7] == ["1", "48.0000", "2.8284", "47.1000", "41.0000", "0.0000",
                                     "42.8000"]  # fmt: skip
    assert extra.split(",")[:4] == ["4", "40.0000", "", ""]


def test_published_jsd_table(tmp_path: Path) -> None:
    make_run(tmp_path, "0", ["dataset=hugadb", "model=smq"], scores(1, jsd=86.0),
             dataset="hugadb", model={"name": "smq"})  # fmt: skip
    header, *rows = table_lines(paper_table(collect_runs(tmp_path), "table3", published=True))
    assert header == ["Method", "HuGaDB", "HuGaDB paper", "Avg."]
    assert rows == [["SMQ", "86.0", "87.1", "86.0"], ["HiST-VQ", "-", "89.0", "-"]]


# ----------------------------------------------------------------------------- the plot


def test_plot_has_one_panel_per_metric_with_every_seed_and_the_papers_value(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    alpha_runs(tmp_path)
    drawn = {}

    def capture(panels, path, title=None, reference_label="reference"):
        drawn.update(panels=panels, title=title, label=reference_label)
        return Path(path)

    monkeypatch.setattr("histvq.evaluation.plotting.plot_score_columns", capture)
    paper_summary(collect_runs(tmp_path), "table5").plot(tmp_path / "unused.png")
    assert list(drawn["panels"]) == [f"HuGaDB {m}" for m in METRICS]
    assert drawn["label"] == "paper" and drawn["title"].startswith("Table 5: impact of α")
    mof = drawn["panels"]["HuGaDB MoF"]
    assert [(c.label, tuple(c.values), c.reference) for c in mof] == [
        ("1", (46.0, 50.0), 47.1), ("2", (), 48.2), ("3", (), 44.8), ("4", (40.0,), None),
    ]  # fmt: skip


def test_plot_of_a_paper_table_writes_a_png_named_in_the_notes(tmp_path: Path) -> None:
    from matplotlib.image import imread

    alpha_runs(tmp_path / "runs")
    out = tmp_path / "figures" / "table5.png"
    _, notes = report(tmp_path / "runs", paper="table5", plot=out)
    assert notes == [f"scores per seed drawn to {out}"]
    image = imread(out)
    assert image.ndim == 3 and image.shape[0] > 200 and image.shape[1] > 600
    assert main([str(tmp_path / "runs"), "--paper", "5", "--published", "--csv"]) == 0


def test_published_needs_a_paper_table(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    alpha_runs(tmp_path)
    with pytest.raises(ConfigError, match=r"--published: .* --paper TABLE"):
        report(tmp_path, published=True)
    with pytest.raises(SystemExit) as stop:
        main([str(tmp_path), "--published"])
    assert stop.value.code == 2
    assert capsys.readouterr().err.startswith("error: --published")


def test_score_columns_refuse_an_empty_figure(tmp_path: Path) -> None:
    with pytest.raises(PlotInputError, match="no metrics"):
        plot_score_columns({}, tmp_path / "x.png")
    path = plot_score_columns(
        {"MoF": [ScoreColumn("a", [1.0, 2.0, 3.0], 2.5), ScoreColumn("b", [], 1.0)]},
        tmp_path / "one.png",
    )
    assert path.stat().st_size > 1000
