"""``python -m histvq.report`` over ``evaluate.py`` folders: each evaluation is tabulated
under the configuration of the training run its checkpoint came from."""

from __future__ import annotations

from pathlib import Path

import yaml
from test_report import make_run, scores, table_lines

from histvq.report import collect_runs, main, summarize


def trained(root: Path, model: str, seed: int) -> Path:
    """A training run of ``model`` and ``seed`` with its last checkpoint's folder."""
    run = make_run(root, f"{model}{seed}", [f"model={model}", f"seed={seed}"], scores(50 + seed))
    (run / "checkpoints").mkdir()
    return run


def evaluation(root: Path, name: str, checkpoint: str, mof: float, *, cwd: Path | None = None):
    """An evaluate.py folder for ``checkpoint`` on another prepared dataset."""
    overrides = [f"ckpt_path={checkpoint}", "dataset=hugadb", "paths.data_dir=/other"]
    run = make_run(root, name, overrides, scores(mof), task="evaluate", dataset="hugadb")
    if cwd is not None:
        choices = {"dataset": "hugadb", "paths": "default"}
        hydra = {"hydra": {"runtime": {"choices": choices, "cwd": str(cwd)}}}
        (run / ".hydra" / "hydra.yaml").write_text(yaml.safe_dump(hydra))
    return run


def test_evaluations_take_the_trained_runs_configuration_and_aggregate_over_seeds(
    tmp_path: Path, capsys
) -> None:
    for model in ("smq", "histvq"):
        for seed in (0, 1):
            trained(tmp_path / "sweep", model, seed)
    checkpoints = {
        (model, seed): tmp_path / "sweep" / f"{model}{seed}" / "checkpoints" / "last.ckpt"
        for model in ("smq", "histvq")
        for seed in (0, 1)
    }
    evaluations = tmp_path / "evaluations"
    evaluation(evaluations, "a", str(checkpoints["smq", 0]), 70.0)
    evaluation(evaluations, "b", str(checkpoints["smq", 1]), 74.0)
    evaluation(evaluations, "c", str(checkpoints["histvq", 0]), 60.0)
    # written as evaluate.py was given it: relative to the folder it ran in
    evaluation(evaluations, "d", "sweep/histvq1/checkpoints/last.ckpt", 66.0, cwd=tmp_path)

    runs = collect_runs(evaluations)
    assert [r.value("seed") for r in runs] == ["0", "1", "0", "1"]
    assert [r.value("model") for r in runs] == ["smq", "smq", "histvq", "histvq"]
    assert [r.value("dataset") for r in runs] == ["hugadb"] * 4
    assert [r.value("ckpt_path") for r in runs] == ["last.ckpt"] * 4

    summary = summarize(runs)
    rows = {row.values["model"]: row for row in summary.rows}
    assert set(rows) == {"smq", "histvq"}
    assert rows["smq"].n == 2 and rows["histvq"].n == 2
    assert rows["smq"].cells["mof"].mean == 72.0
    assert rows["histvq"].cells["mof"].mean == 63.0

    assert main([str(evaluations), "--no-aggregate"]) == 0
    header, *body = table_lines(capsys.readouterr().out)
    assert header[:2] == ["model", "seed"]
    assert [(line[0], line[1], line[2]) for line in body] == [
        ("histvq", "0", "60.0"),
        ("histvq", "1", "66.0"),
        ("smq", "0", "70.0"),
        ("smq", "1", "74.0"),
    ]


def test_two_checkpoints_of_one_run_are_two_rows_not_two_seeds(tmp_path: Path) -> None:
    run = trained(tmp_path / "sweep", "histvq", 0)
    evaluation(tmp_path / "evaluations", "a", str(run / "checkpoints" / "last.ckpt"), 60.0)
    evaluation(tmp_path / "evaluations", "b", str(run / "checkpoints" / "epoch009.ckpt"), 40.0)
    summary = summarize(collect_runs(tmp_path / "evaluations"))
    assert [(row.values, row.n, row.cells["mof"].mean) for row in summary.rows] == [
        ({"ckpt_path": "epoch009.ckpt"}, 1, 40.0),
        ({"ckpt_path": "last.ckpt"}, 1, 60.0),
    ]


def test_training_runs_win_over_evaluations_in_the_same_tree(tmp_path: Path) -> None:
    run = trained(tmp_path, "smq", 0)
    evaluation(tmp_path / "evaluations", "a", str(run / "checkpoints" / "last.ckpt"), 99.0)
    [only] = collect_runs(tmp_path)
    assert only.path == run and only.scores()["mof"] == 50.0


def test_an_evaluation_outside_any_training_run_keeps_its_own_overrides(tmp_path: Path) -> None:
    evaluation(tmp_path, "a", "/elsewhere/one.ckpt", 40.0)
    evaluation(tmp_path, "b", "/elsewhere/two.ckpt", 44.0)
    summary = summarize(collect_runs(tmp_path))
    assert [row.values for row in summary.rows] == [
        {"ckpt_path": "/elsewhere/one.ckpt"},
        {"ckpt_path": "/elsewhere/two.ckpt"},
    ]
