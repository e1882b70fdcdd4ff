"""python -m histvq.report DIR --history GROUP: what runs logged while they trained."""

from __future__ import annotations

from pathlib import Path

import pytest
from test_report import make_run, scores, table_lines

from histvq.errors import ConfigError, HistvqError
from histvq.report import collect_runs, main, report
from histvq.report.history import history, plot_history, read_log, value_text

HEADER = (
    "codebook/level1/perplexity,codebook/level1/used_codes,codebook/level2/used_codes,epoch,"
    "eval/global/edit,eval/global/mof,step,train/loss_step"
)


def write_log(run: Path, lines: list[str], header: str = HEADER) -> None:
    (run / "csv").mkdir()
    (run / "csv" / "metrics.csv").write_text("\n".join([header, *lines]) + "\n")


def two_runs(root: Path) -> None:
    """Two models, one seed each; the CSV logger's habit of writing one step over two lines
    (step metrics, then epoch-end metrics) included."""
    smq = make_run(root, "b_smq", ["model=smq", "seed=1"], scores(40))
    write_log(smq, [
        "2.5,3.0,,0,,,4,10.0",
        ",,,0,30.25,41.5,4,",
        "3.125,4.0,,1,,,9,8.0",
        ",,,,35.0,44.0,10,",
    ])  # fmt: skip
    histvq = make_run(root, "a_histvq", ["model=histvq", "seed=0"], scores(50))
    write_log(histvq, [
        "1.0,1.0,1.0,0,,,4,12.0",
        "4.0,6.0,3.0,1,,,9,9.0",
    ])  # fmt: skip


def test_codebook_history_merges_lines_of_a_step_and_orders_runs_by_their_values(
    tmp_path: Path,
) -> None:
    two_runs(tmp_path)
    logged = history(collect_runs(tmp_path), "codebook")
    assert logged.columns == ["model", "seed"]
    assert logged.metrics == ["level1_perplexity", "level1_used_codes", "level2_used_codes"]
    assert logged.rows == [
        ["histvq", "0", "0", "4", "1", "1", "1", str(tmp_path / "a_histvq")],
        ["histvq", "0", "1", "9", "4", "6", "3", str(tmp_path / "a_histvq")],
        ["smq", "1", "0", "4", "2.5", "3", "", str(tmp_path / "b_smq")],
        ["smq", "1", "1", "9", "3.125", "4", "", str(tmp_path / "b_smq")],
    ]
    assert logged.notes == []


def test_evaluation_history_in_the_reports_metric_order_and_runs_without_it_noted(
    tmp_path: Path,
) -> None:
    two_runs(tmp_path)
    logged = history(collect_runs(tmp_path), "eval/global/")
    assert logged.columns == []  # one run left: nothing differs
    assert logged.metrics == ["MoF", "Edit"]
    # the step-4 lines merged; the final evaluation (logged after training) has no epoch
    assert [row[:-1] for row in logged.rows] == [
        ["0", "4", "41.5", "30.25"],
        ["", "10", "44", "35"],
    ]
    assert logged.notes == [f"{tmp_path / 'a_histvq'}: logged nothing under eval/global/, left out"]
    text, notes = report(tmp_path, history_group="eval/global")
    assert table_lines(text) == [["epoch", "step", "MoF", "Edit"], ["0", "4", "41.5", "30.25"],
                                 ["", "10", "44", "35"]]  # fmt: skip
    assert notes == logged.notes


def test_runs_still_training_and_runs_without_a_log(tmp_path: Path) -> None:
    running = make_run(tmp_path, "running", ["seed=0"], None)  # no metrics.json yet
    write_log(running, ["2.0,2.0,,0,,,4,1.0"])
    make_run(tmp_path, "no_log", ["seed=1"], scores(30))
    logged = history(collect_runs(tmp_path), "codebook")
    assert [row[:-1] for row in logged.rows] == [["0", "4", "2", "2"]]
    assert logged.notes == [f"{tmp_path / 'no_log'}: no csv/metrics.csv, left out"]


def test_a_group_no_run_logged_names_the_groups_there_are(tmp_path: Path, capsys) -> None:
    two_runs(tmp_path)
    with pytest.raises(HistvqError, match="groups logged: codebook/level1, codebook/level2, "
                       "eval/global, train"):  # fmt: skip
        history(collect_runs(tmp_path), "eval/local")
    with pytest.raises(SystemExit) as exit_info:
        main([str(tmp_path), "--history", "eval/local"])
    assert exit_info.value.code == 2
    assert "--history eval/local: no run" in capsys.readouterr().err
    with pytest.raises(HistvqError, match="name a metric group"):
        history(collect_runs(tmp_path), " / ")


def test_history_and_paper_layout_are_refused_together(tmp_path: Path) -> None:
    two_runs(tmp_path)
    with pytest.raises(ConfigError, match="--history and --paper"):
        report(tmp_path, history_group="codebook", paper="levels")


def test_csv_output_names_each_rows_run(tmp_path: Path, capsys) -> None:
    two_runs(tmp_path)
    assert main([str(tmp_path), "--history", "codebook", "--csv"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == (
        "model,seed,epoch,step,level1_perplexity,level1_used_codes,level2_used_codes,run"
    )
    assert lines[3] == f"smq,1,0,4,2.5,3,,{tmp_path / 'b_smq'}"


def test_a_malformed_log_is_an_error_naming_the_file(tmp_path: Path) -> None:
    run = make_run(tmp_path, "bad", ["seed=0"], scores(30))
    write_log(run, ["1,2,3,0,,,4,5,6,7"])
    path = run / "csv" / "metrics.csv"
    with pytest.raises(HistvqError, match=f"{path}: a line has more cells than the header"):
        read_log(path)
    path.write_bytes(b"epoch,step\n\xff\xfe,1\n")
    with pytest.raises(HistvqError, match=f"{path}: unreadable"):
        read_log(path)


@pytest.mark.parametrize(
    ("text", "expected"),
    [("3.0", "3"), ("2.50000", "2.5"), ("0.123456", "0.1235"), ("", ""), ("nan", "nan"),
     ("x", "x"), ("-1.0", "-1")],
)  # fmt: skip
def test_value_text(text: str, expected: str) -> None:
    assert value_text(text) == expected


def test_plot_draws_one_panel_per_metric_one_line_per_run(tmp_path: Path, monkeypatch) -> None:
    two_runs(tmp_path / "runs")
    logged = history(collect_runs(tmp_path / "runs"), "codebook")
    assert logged.run_names() == {
        str(tmp_path / "runs" / "a_histvq"): "model=histvq seed=0",
        str(tmp_path / "runs" / "b_smq"): "model=smq seed=1",
    }
    drawn = {}

    def capture(panels, path, x_label, title):
        drawn.update(panels=panels, title=title)
        return path

    monkeypatch.setattr("histvq.evaluation.plotting.plot_metric_curves", capture)
    plot_history(logged, tmp_path / "unused.png")
    assert drawn["title"] == "codebook during training"
    assert drawn["panels"] == {
        "level1_perplexity": {
            "model=histvq seed=0": ([4.0, 9.0], [1.0, 4.0]),
            "model=smq seed=1": ([4.0, 9.0], [2.5, 3.125]),
        },
        "level1_used_codes": {
            "model=histvq seed=0": ([4.0, 9.0], [1.0, 6.0]),
            "model=smq seed=1": ([4.0, 9.0], [3.0, 4.0]),
        },
        "level2_used_codes": {"model=histvq seed=0": ([4.0, 9.0], [1.0, 3.0])},  # SMQ: 1 level
    }


def test_plot_writes_a_png_and_is_named_in_the_notes(tmp_path: Path) -> None:
    from matplotlib.image import imread

    two_runs(tmp_path / "runs")
    out = tmp_path / "figures" / "codebook.png"
    _, notes = report(tmp_path / "runs", history_group="codebook", plot=out)
    assert notes == [f"curves written to {out}"]
    image = imread(out)
    assert image.ndim == 3 and image.shape[0] > 200 and image.shape[1] > 600
    with pytest.raises(ConfigError, match="--plot: draws a --history GROUP"):
        report(tmp_path / "runs", plot=out)


def test_metric_curves_refuse_bad_input(tmp_path: Path) -> None:
    from histvq.evaluation.plotting import PlotInputError, plot_metric_curves

    with pytest.raises(PlotInputError, match="no metrics"):
        plot_metric_curves({}, tmp_path / "x.png")
    with pytest.raises(PlotInputError, match="mof of run: 2 x values, 1 y values"):
        plot_metric_curves({"mof": {"run": ([1, 2], [3.0])}}, tmp_path / "x.png")
