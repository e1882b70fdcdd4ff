"""python -m histvq.report: run discovery, differing overrides, seed aggregation, paper tables."""

from __future__ import annotations

import json
import statistics
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import TINY, run_script

from histvq.errors import ConfigError, HistvqError
from histvq.report import (
    canonical,
    collect_runs,
    find_run_dirs,
    main,
    paper_summary,
    paper_table,
    summarize,
    summary_table,
)
from histvq.report.history import history, value_text

KEYS = ("mof", "edit", "f1@10", "f1@25", "f1@50", "jsd")
MODEL = {
    "name": "histvq",
    "levels": 2,
    "alpha": 2,
    "lambda_commit": 1.0,
    "lambda_spat": 0.001,
    "lambda_temp": "${dataset.lambda_temp}",
    "spatial_input": "top",
    "temporal_input": "first",
}


def scores(mof: float, local_mof: float | None = None, **others: float) -> dict[str, Any]:
    """metrics.json content: MoF as given, the other metrics 10, 20, ... unless given."""
    block = {k: float(others.get(k.replace("@", "_"), 10.0 * i)) for i, k in enumerate(KEYS)}
    block["mof"] = float(mof)
    local = dict(block, mof=float(local_mof if local_mof is not None else mof))
    return {"global": block, "local": local, "num_sequences": 2, "num_frames": 100}


def make_run(
    root: Path,
    name: str,
    overrides: list[str],
    metrics: dict[str, Any] | str | None,
    *,
    task: str = "train",
    dataset: str = "synthetic",
    model: dict[str, Any] | None = None,
) -> Path:
    """A run folder as train.py leaves it: .hydra/{overrides,config,hydra}.yaml + metrics.json.

    ``metrics``: a dict (written as JSON), a string (written as is) or None (no file).
    """
    run = root / name
    (run / ".hydra").mkdir(parents=True)
    (run / ".hydra" / "overrides.yaml").write_text(yaml.safe_dump(overrides))
    config = {
        "task_name": task,
        "seed": 0,
        "paths": {"output_dir": "${hydra:runtime.output_dir}"},
        "dataset": {"name": dataset, "lambda_temp": 0.02 if dataset == "babel3" else 0.2},
        "model": dict(MODEL, **(model or {})),
    }
    (run / ".hydra" / "config.yaml").write_text(yaml.safe_dump(config))
    hydra = {"hydra": {"runtime": {"choices": {"dataset": dataset, "model": "histvq"}}}}
    (run / ".hydra" / "hydra.yaml").write_text(yaml.safe_dump(hydra))
    if isinstance(metrics, dict):
        (run / "metrics.json").write_text(json.dumps(metrics))
    elif isinstance(metrics, str):
        (run / "metrics.json").write_text(metrics)
    return run


def cells(line: str) -> list[str]:
    return [c.strip() for c in line.strip().strip("|").split("|")]


def table_lines(text: str) -> list[list[str]]:
    """Header and body rows of the markdown table in ``text`` (rule line dropped)."""
    rows = [cells(line) for line in text.splitlines() if line.startswith("|")]
    return [rows[0], *rows[2:]]


# ----------------------------------------------------------------------------- plain reports


def test_only_differing_overrides_become_columns_in_numeric_order(tmp_path: Path) -> None:
    for i, alpha in enumerate(["10", "2", "1"]):
        make_run(
            tmp_path / "sweep",
            str(i),
            [f"paths.data_dir=/data/{i}", f"hydra.job.num={i}", "trainer.max_epochs=5",
             f"model.alpha={alpha}"],
            scores(40 + i),
        )  # fmt: skip
    text = summary_table(collect_runs(tmp_path))
    assert text.splitlines() == [
        "| model.alpha |  MoF | Edit | F1@10 | F1@25 | F1@50 |  JSD |",
        "| ----------- | ---: | ---: | ----: | ----: | ----: | ---: |",
        "| 1           | 42.0 | 10.0 |  20.0 |  30.0 |  40.0 | 50.0 |",
        "| 2           | 41.0 | 10.0 |  20.0 |  30.0 |  40.0 | 50.0 |",
        "| 10          | 40.0 | 10.0 |  20.0 |  30.0 |  40.0 | 50.0 |",
    ]


def test_seeds_are_aggregated_with_exact_mean_and_std(tmp_path: Path) -> None:
    for i, (seed, mof) in enumerate([(0, 40.0), (1, 42.0), (2, 47.0)]):
        make_run(tmp_path, f"a{i}", [f"seed={seed}", "model.alpha=1"], scores(mof, edit=seed))
    make_run(tmp_path, "b", ["seed=0", "model.alpha=3"], scores(50.0))
    runs = collect_runs(tmp_path)
    summary = summarize(runs)
    assert summary.columns == ["model.alpha"]
    first, second = summary.rows
    assert (first.values, first.n, second.values, second.n) == (
        {"model.alpha": "1"}, 3, {"model.alpha": "3"}, 1,
    )  # fmt: skip
    assert first.cells["mof"].mean == pytest.approx(43.0)
    assert first.cells["mof"].std == pytest.approx(statistics.stdev([40.0, 42.0, 47.0]))
    assert first.cells["edit"].std == pytest.approx(1.0)
    assert second.cells["mof"].std is None
    body = table_lines(summary.to_markdown())
    assert body[0] == ["model.alpha", "MoF", "Edit", "F1@10", "F1@25", "F1@50", "JSD", "n"]
    assert body[1][:3] == ["1", "43.0 ± 3.6", "1.0 ± 1.0"] and body[1][-1] == "3"
    assert body[2][:2] == ["3", "50.0"] and body[2][-1] == "1"
    lines = summary.to_csv().splitlines()
    assert lines[0] == (
        "model.alpha,MoF,MoF_std,Edit,Edit_std,F1@10,F1@10_std,F1@25,F1@25_std,"
        "F1@50,F1@50_std,JSD,JSD_std,n,runs"
    )
    assert lines[1].startswith("1,43.0000,3.6056,1.0000,1.0000,20.0000,0.0000,")
    assert lines[1].split(",")[-2:] == [
        "3", ";".join(str(tmp_path / f"a{i}") for i in range(3)),
    ]  # fmt: skip
    assert lines[2].startswith("3,50.0000,,10.0000,,20.0000,,")
    unaggregated = summarize(runs, aggregate=False)
    assert unaggregated.columns == ["seed", "model.alpha"]
    assert [list(r.values.values()) for r in unaggregated.rows] == [
        ["0", "1"], ["0", "3"], ["1", "1"], ["2", "1"],
    ]  # fmt: skip


def test_values_missing_from_an_override_come_from_the_saved_config(tmp_path: Path) -> None:
    make_run(tmp_path, "a", ["model.lambda_spat=1e-3"], scores(10))
    make_run(tmp_path, "b", [], scores(20))  # config says 0.001: the same setting
    make_run(tmp_path, "c", ["model.lambda_spat=0.002", "dataset=hugadb"], scores(30),
             dataset="hugadb")  # fmt: skip
    summary = summarize(collect_runs(tmp_path))
    assert summary.columns == ["model.lambda_spat", "dataset"]
    assert [(r.values, r.n) for r in summary.rows] == [
        ({"model.lambda_spat": "0.001", "dataset": "synthetic"}, 2),
        ({"model.lambda_spat": "0.002", "dataset": "hugadb"}, 1),
    ]
    assert summary.rows[0].cells["mof"].mean == 15.0
    assert [canonical(v) for v in ("2.0", 2, "1e-3", True, "False", None, "null", "abc")] == [
        "2", "2", "0.001", "true", "false", "null", "null", "abc",
    ]  # fmt: skip
    # "none" is a choice of its own (dataset.normalize=none), not a spelling of null.
    assert canonical("none") == "none"


def test_local_matching(tmp_path: Path) -> None:
    make_run(tmp_path, "a", ["seed=0"], scores(10, local_mof=70))
    make_run(tmp_path, "b", ["seed=1"], scores(20, local_mof=90))
    assert summarize(collect_runs(tmp_path), "local").rows[0].cells["mof"].mean == 80.0
    assert summarize(collect_runs(tmp_path), "global").rows[0].cells["mof"].mean == 15.0
    with pytest.raises(ConfigError, match="matching"):
        summarize(collect_runs(tmp_path), "both")


def test_broken_runs_are_noted_not_fatal(tmp_path: Path, capsys) -> None:
    make_run(tmp_path, "good", ["model.levels=1"], scores(33))
    make_run(tmp_path, "good2", ["model.levels=2"], scores(44))
    make_run(tmp_path, "missing", ["model.levels=3"], None)
    make_run(tmp_path, "garbled", ["model.levels=3"], "{not json")
    incomplete = scores(1)
    del incomplete["global"]["jsd"]
    make_run(tmp_path, "incomplete", ["model.levels=3"], incomplete)
    make_run(tmp_path, "evaluation", ["ckpt_path=x"], scores(99), task="evaluate")
    summary = summarize(collect_runs(tmp_path))
    assert [r.values for r in summary.rows] == [{"model.levels": "1"}, {"model.levels": "2"}]
    [note] = summary.notes
    assert note.startswith("3 run(s) without usable metrics, left out:")
    for name, reason in [("missing", "metrics.json missing"), ("garbled", "metrics.json unreadable"),
                         ("incomplete", "metrics.json has no number global.jsd")]:  # fmt: skip
        assert f"{tmp_path / name} ({reason}" in note
    assert "evaluation" not in note
    assert main([str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "| 1            | 33.0 |" in out and "\nNote: 3 run(s) without usable metrics" in out
    assert main([str(tmp_path), "--csv"]) == 0
    captured = capsys.readouterr()
    assert captured.out.splitlines()[0].startswith("model.levels,MoF,MoF_std")
    assert len(captured.out.splitlines()) == 3 and "note: 3 run(s)" in captured.err


def test_no_runs_is_a_one_line_error(tmp_path: Path, capsys) -> None:
    (tmp_path / "empty" / "sub").mkdir(parents=True)
    for target in (tmp_path / "empty", tmp_path / "nowhere"):
        with pytest.raises(SystemExit) as exit_info:
            main([str(target)])
        assert exit_info.value.code == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith(f"error: {target}:") and "\n" not in err
    make_run(tmp_path / "broken", "0", ["seed=0"], None)
    with pytest.raises(HistvqError, match="none of the 1 run"):
        summarize(collect_runs(tmp_path / "broken"))


def test_run_discovery(tmp_path: Path) -> None:
    make_run(tmp_path / "multirun" / "a", "0", [], scores(1))
    make_run(tmp_path / "multirun" / "a", "1", [], scores(1))
    make_run(tmp_path / "runs", "x", [], scores(1))
    (tmp_path / "multirun" / "a" / "0" / "nested").mkdir()
    (tmp_path / "multirun" / "a" / "multirun.yaml").write_text("{}")
    found = find_run_dirs(tmp_path)
    assert found == [tmp_path / "multirun/a/0", tmp_path / "multirun/a/1", tmp_path / "runs/x"]
    assert [r.path for r in collect_runs(tmp_path / "runs" / "x")] == [tmp_path / "runs/x"]


def test_run_discovery_follows_links_once(tmp_path: Path) -> None:
    make_run(tmp_path / "store" / "smq", "s0", [], scores(1))
    make_run(tmp_path / "store" / "histvq", "s0", [], scores(2))
    table = tmp_path / "table"
    table.mkdir()
    (table / "a").symlink_to(tmp_path / "store" / "smq")
    (table / "b").symlink_to(tmp_path / "store" / "histvq" / "s0")
    (table / "loop").symlink_to(table)  # a link back up must not recurse forever
    assert find_run_dirs(table) == [table / "a/s0", table / "b"]


# ----------------------------------------------------------------------------- paper tables


def _ablation_runs(root: Path, grid: list[tuple[str, list[str], float]]) -> None:
    """``(dataset, overrides, MoF)`` per run, numbered in order."""
    for i, (dataset, overrides, mof) in enumerate(grid):
        make_run(root, f"{i:02d}", [f"dataset={dataset}", *overrides], scores(mof),
                 dataset=dataset)  # fmt: skip


def test_paper_table4_components(tmp_path: Path) -> None:
    _ablation_runs(
        tmp_path,
        [
            ("hugadb", ["seed=0"], 48.0),
            ("hugadb", ["seed=1"], 50.0),
            ("babel3", [], 44.0),
            ("hugadb", ["model.lambda_spat=0"], 28.5),
            ("babel3", ["model.lambda_spat=0"], 36.7),
            ("hugadb", ["model.lambda_commit=0"], 45.8),
            ("hugadb", ["model.lambda_temp=0"], 45.6),
            ("babel3", ["model.lambda_temp=0.0"], 45.8),
            ("babel3", ["model.lambda_temp=0", "model.lambda_spat=0"], 1.0),  # fits no row
        ],
    )
    summary = paper_summary(collect_runs(tmp_path), "table4")
    text = summary.to_markdown()
    assert text.splitlines()[0] == "Table 4: impact of model components (global matching)"
    metrics = ["MoF", "Edit", "F1@10", "F1@25", "F1@50"]
    header, *rows = table_lines(text)
    assert header == [
        "Method",
        *(f"HuGaDB {m}" for m in metrics), "HuGaDB n",
        *(f"BABEL Subset-3 {m}" for m in metrics), "BABEL Subset-3 n",
    ]  # fmt: skip
    assert [r[0] for r in rows] == [
        "All", "w/o Spatial Recon. Loss", "w/o Commitment Loss", "w/o Temporal Recon. Loss",
    ]  # fmt: skip
    assert rows[0][1] == "49.0 ± 1.4" and rows[0][6] == "2" and rows[0][7] == "44.0"
    assert rows[1][1] == "28.5" and rows[1][7] == "36.7"
    assert rows[2][7:] == ["-"] * 6
    assert rows[3][1] == "45.6" and rows[3][7] == "45.8"
    assert len(summary.notes) == 1 and "fit no row of Table 4" in summary.notes[0]
    csv_lines = paper_table(collect_runs(tmp_path), "components", as_csv=True).splitlines()
    assert csv_lines[0].startswith("Method,HuGaDB MoF,HuGaDB MoF_std,HuGaDB Edit,")
    assert csv_lines[1].startswith("All,49.0000,1.4142,")
    assert csv_lines[3].split(",")[0] == "w/o Commitment Loss"
    assert csv_lines[3].endswith(",,,,,,,,,,,")  # no BABEL run: empty cells and n


def test_paper_table5_alpha_rows_in_paper_order(tmp_path: Path) -> None:
    _ablation_runs(
        tmp_path,
        [
            ("hugadb", ["model.alpha=3"], 44.8),
            ("hugadb", [], 48.2),  # alpha from the saved config: 2
            ("hugadb", ["model.alpha=1"], 47.1),
            ("hugadb", ["model.alpha=4"], 40.0),  # not in the paper: appended
        ],
    )
    text = paper_table(collect_runs(tmp_path), "alpha")
    assert text.splitlines()[0] == "Table 5: impact of α (global matching)"
    header, *rows = table_lines(text)
    assert header == ["α", "HuGaDB MoF", "HuGaDB Edit", "HuGaDB F1@10", "HuGaDB F1@25",
                      "HuGaDB F1@50"]  # fmt: skip
    assert [r[:2] for r in rows] == [["1", "47.1"], ["2", "48.2"], ["3", "44.8"], ["4", "40.0"]]
    assert paper_table(collect_runs(tmp_path), "table5") == text
    assert paper_table(collect_runs(tmp_path), "5") == text


def test_paper_table9_spatial_input(tmp_path: Path) -> None:
    _ablation_runs(
        tmp_path,
        [
            ("babel3", ["model.spatial_input=both"], 44.0),
            ("hugadb", ["model.spatial_input=first"], 46.2),
            ("hugadb", [], 48.2),
            ("babel3", ["model.spatial_input=first"], 45.6),
        ],
    )
    header, *rows = table_lines(paper_table(collect_runs(tmp_path), "table9"))
    assert header[0] == "Input" and header[1] == "HuGaDB MoF" and header[6] == "BABEL Subset-3 MoF"
    assert [(r[0], r[1], r[6]) for r in rows] == [
        ("Q^Z", "46.2", "45.6"), ("Q^A", "48.2", "-"), ("Both", "-", "44.0"),
    ]  # fmt: skip
    assert paper_table(collect_runs(tmp_path), "spatial_input").splitlines()[0] == (
        "Table 9: impact of the input to the spatial decoder (global matching)"
    )


def test_paper_table3_jsd_with_average(tmp_path: Path) -> None:
    for i, (dataset, model, jsd) in enumerate(
        [("hugadb", "smq", 87.0), ("lara", "smq", 74.0), ("hugadb", "histvq", 89.0)]
    ):
        make_run(tmp_path, str(i), [f"dataset={dataset}", f"model={model}"], scores(1, jsd=jsd),
                 dataset=dataset, model={"name": model})  # fmt: skip
    header, *rows = table_lines(paper_table(collect_runs(tmp_path), "table3"))
    assert header == ["Method", "HuGaDB", "LARa", "Avg."]
    assert rows == [["SMQ", "87.0", "74.0", "80.5"], ["HiST-VQ", "89.0", "-", "-"]]


def test_paper_table_refuses_to_mix_configurations(tmp_path: Path) -> None:
    _ablation_runs(
        tmp_path,
        [("hugadb", ["model.lambda_temp=0.2"], 1.0), ("hugadb", ["model.lambda_temp=2"], 2.0)],
    )
    with pytest.raises(
        HistvqError, match=r"α = 2 on HuGaDB differ in model.lambda_temp \(0.2, 2\)"
    ):
        paper_table(collect_runs(tmp_path), "table5")
    _, *rows = table_lines(paper_table(collect_runs(tmp_path), "lambda_temp"))
    assert [r[:2] for r in rows] == [["0.02", "-"], ["0.2", "1.0"], ["2", "2.0"], ["20", "-"]]
    with pytest.raises(ConfigError, match="unknown table"):
        paper_table(collect_runs(tmp_path), "table11")


# ----------------------------------------------------------------------------- real runs


def test_real_multirun_sweep(tmp_path: Path) -> None:
    """train.py -m over a 2 x 2 grid, then the report of the sweep folder (about a minute)."""
    sweep = tmp_path / "sweep"
    tiny = [o for o in TINY if not o.startswith(("trainer.max_epochs", "callbacks."))]
    result = run_script(
        ["train.py", "-m", f"paths.data_dir={tmp_path / 'data'}", f"hydra.sweep.dir={sweep}",
         "logger=csv", *tiny, "trainer.max_epochs=1", "callbacks.segmentation_evaluation.plots=false",
         "model.levels=1,2", "model.lambda_temp=0.1,0.2"],
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    runs = collect_runs(sweep)
    assert [r.path for r in runs] == [sweep / str(i) for i in range(4)]
    assert all((r.path / "csv" / "metrics.csv").is_file() for r in runs)
    summary = summarize(runs)
    assert summary.columns == ["model.levels", "model.lambda_temp"]
    assert [tuple(r.values.values()) for r in summary.rows] == [
        ("1", "0.1"), ("1", "0.2"), ("2", "0.1"), ("2", "0.2"),
    ]  # fmt: skip
    for row in summary.rows:
        [run] = row.runs
        saved = json.loads((run.path / "metrics.json").read_text())["global"]
        assert {k: c.mean for k, c in row.cells.items()} == saved
    # The final evaluation is also in each run's CSV log: --history reads it back.
    logged = history(runs, "eval/global")
    assert logged.metrics == ["MoF", "Edit", "F1@10", "F1@25", "F1@50", "JSD"]
    for run in runs:
        saved = json.loads((run.path / "metrics.json").read_text())["global"]
        [row] = [r for r in logged.rows if r[-1] == str(run.path)]
        assert row[-7:-1] == [value_text(str(saved[k])) for k in KEYS]
    cli = run_script(["-m", "histvq.report", str(sweep), "--csv"])
    assert cli.returncode == 0, cli.stderr
    lines = cli.stdout.splitlines()
    assert len(lines) == 5 and lines[0].startswith("model.levels,model.lambda_temp,MoF,")
    paper = run_script(["-m", "histvq.report", str(sweep), "--paper", "levels"])
    assert paper.returncode == 2 and "differ in model.lambda_temp" in paper.stderr
