"""Bad input across prepare, train, evaluate and predict: each case exits with status 2 and
one line naming the file or key and what is wrong, no traceback, prepared data intact.

The cases run through the entry points' own error reporting (``run_reporting_errors`` /
``preflight``) in-process; two of them also go through the real command line.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
from _raw_fixtures import hugadb_lines, hugadb_values, write_hugadb, write_text
from conftest import ROOT, TINY, compose_config, run_script

from histvq.cli import preflight
from histvq.data.layout import write_layout
from histvq.errors import run_reporting_errors
from histvq.pipeline import evaluate_checkpoint, train_and_evaluate
from histvq.predict import predict
from histvq.prepare import main as prepare_main


def _fingerprint(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def _one_line_exit(run: Callable[[], object], capsys: pytest.CaptureFixture[str]) -> str:
    """Run an entry point's body; return its single error line (exit status 2 checked).

    Log records are switched off meanwhile: the command line sends them to stdout (Hydra's
    job logging), and in-process a handler from an earlier test may hold a closed stream.
    """
    capsys.readouterr()
    logging.disable(logging.CRITICAL)
    try:
        with pytest.raises(SystemExit) as exited:
            run_reporting_errors(run)
    finally:
        logging.disable(logging.NOTSET)
    assert exited.value.code == 2
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert "Traceback" not in err
    return lines[0]


def _layout(root: Path, name: str = "toy", **change: object) -> Path:
    """A prepared 2-sequence dataset (C=3, V=5, M=1) under root/name, optionally broken."""
    rng = np.random.default_rng(0)
    features = {f"s{i}": rng.normal(size=(3, 40, 5, 1)).astype(np.float32) for i in range(2)}
    labels = {s: ["a"] * 20 + ["b"] * 20 for s in features}
    write_layout(root, name, {0: "a", 1: "b"}, [(s, features[s], labels[s]) for s in features])
    folder = root / name
    if change.get("nan"):
        array = np.load(folder / "features" / "s1.npy")
        array[1, 7, 2, 0] = np.nan
        np.save(folder / "features" / "s1.npy", array)
    if change.get("short_labels"):
        write_text(folder / "groundTruth" / "s0.txt", ["a"] * 39)
    if change.get("unknown_label"):
        write_text(folder / "groundTruth" / "s0.txt", ["a"] * 39 + ["jump"])
    return folder


def _train_cfg(tmp_path: Path, *overrides: str):
    return compose_config(
        "train",
        [
            f"paths.data_dir={tmp_path / 'data'}",
            f"paths.output_dir={tmp_path / 'run'}",
            *(o for o in TINY if not o.startswith("dataset.")),
            *overrides,
        ],
    )


# ----------------------------------------------------------------------------- prepare


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("short row", ":5: expected 39 tab-separated columns, found 38"),
        ("text in a number field", ":6: column 4 (gyro_rf_x) is not a finite number: 'x'"),
        ("unknown activity id", ":7: unknown activity id '99'"),
        ("empty file", ": empty file"),
        ("missing header", ":3: expected header line 3 of 3 starting with '#'"),
    ],
)
def test_prepare_malformed_raw_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], case: str, message: str
) -> None:
    raw, out = tmp_path / "raw", tmp_path / "out"
    write_hugadb(raw / "HuGaDB_v1_various_01_00.txt", hugadb_values(4), [1, 1, 2, 2])
    prepare_main(["hugadb", "--input", str(raw), "--output", str(out), "--no-progress"])
    before = _fingerprint(out)
    lines = hugadb_lines(hugadb_values(3), [1, 1, 2])
    if case == "short row":
        lines[4] = lines[4].rsplit("\t", 1)[0]
    elif case == "text in a number field":
        fields = lines[5].split("\t")
        fields[3] = "x"
        lines[5] = "\t".join(fields)
    elif case == "unknown activity id":
        lines = hugadb_lines(hugadb_values(3), [1, 1, 99])
    elif case == "empty file":
        lines = []
    else:
        lines = lines[1:]
    bad = write_text(raw / "HuGaDB_v1_various_02_00.txt", lines)
    line = _one_line_exit(
        lambda: prepare_main(
            ["hugadb", "--input", str(raw), "--output", str(out), "--no-progress"]
        ),
        capsys,
    )
    assert str(bad) in line and message in line, line
    assert _fingerprint(out) == before


# ----------------------------------------------------------------------------- train


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ("nan", "s1.npy: contains NaN or inf (first at channel 1, frame 7, joint 2, person 0)"),
        ("short_labels", "s0.txt: 39 labels but s0.npy has 40 frames"),
        ("unknown_label", "s0.txt:40: label 'jump' is not in mapping/mapping.txt"),
    ],
)
def test_train_on_a_broken_prepared_dataset(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], change: str, message: str
) -> None:
    folder = _layout(tmp_path / "data", **{change: True})
    before = _fingerprint(folder)
    cfg = _train_cfg(tmp_path, "dataset=folder", "dataset.name=toy", "dataset.patch_size=5")
    line = _one_line_exit(lambda: train_and_evaluate(cfg), capsys)
    assert message in line, line
    assert _fingerprint(folder) == before


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["dataset=nope"], "dataset=nope: no such config (choose from babel, babel1, babel2"),
        (["model=nope"], "model=nope: no such config (choose from histvq, smq)"),
        (["model.nope=1"], "model.nope: unknown config key (to add a new key write +model.nope"),
        (["dataset.bucket=1"], "dataset.bucket: unknown config key"),
    ],
)
def test_unknown_config_value_or_key(
    capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    line = _one_line_exit(lambda: preflight(argv, ROOT, "train"), capsys)
    assert message in line, line


def test_unknown_config_value_on_the_command_line(tmp_path: Path) -> None:
    result = run_script(["train.py", "dataset=nope", f"hydra.run.dir={tmp_path}"])
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "error: dataset=nope: no such config (choose from babel, babel1, babel2, babel3, folder, "
        "hugadb, lara, ntu, pkummd, synthetic)"
    ]


def test_config_value_of_the_wrong_kind(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _layout(tmp_path / "data")
    cfg = _train_cfg(
        tmp_path, "dataset=folder", "dataset.name=toy", "dataset.patch_size=5",
        "model.spatial_loss_normalization=frames",
    )  # fmt: skip
    line = _one_line_exit(lambda: train_and_evaluate(cfg), capsys)
    assert "model.spatial_loss_normalization: unknown value 'frames'" in line


# ----------------------------------------------------------------------------- evaluate


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A checkpoint trained for one epoch on a tiny prepared dataset (C=3, V=5)."""
    tmp = tmp_path_factory.mktemp("trained")
    _layout(tmp / "data")
    cfg = _train_cfg(
        tmp, "dataset=folder", "dataset.name=toy", "dataset.patch_size=5", "trainer.max_epochs=1",
        "eval.plots=false",
    )  # fmt: skip
    train_and_evaluate(cfg)
    return tmp / "run" / "checkpoints" / "last.ckpt"


def _eval_cfg(tmp_path: Path, *overrides: str):
    return compose_config(
        "evaluate", [f"paths.output_dir={tmp_path / 'eval'}", "eval.plots=false", *overrides]
    )


def test_evaluate_without_ckpt_path_on_the_command_line(tmp_path: Path) -> None:
    result = run_script(["evaluate.py", f"hydra.run.dir={tmp_path}"])
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "error: ckpt_path is required: python evaluate.py ckpt_path=<run>/checkpoints/last.ckpt"
    ]


def test_evaluate_missing_and_foreign_checkpoints(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "nope.ckpt"
    line = _one_line_exit(
        lambda: evaluate_checkpoint(_eval_cfg(tmp_path, f"ckpt_path={missing}")), capsys
    )
    assert f"ckpt_path: {missing} does not exist" in line
    foreign = tmp_path / "foreign.ckpt"
    torch.save({"state_dict": {"w": torch.zeros(2)}}, foreign)
    line = _one_line_exit(
        lambda: evaluate_checkpoint(_eval_cfg(tmp_path, f"ckpt_path={foreign}")), capsys
    )
    assert f"ckpt_path: {foreign} was not written by histvq's train.py" in line
    garbage = write_text(tmp_path / "garbage.ckpt", ["not a checkpoint"])
    line = _one_line_exit(
        lambda: evaluate_checkpoint(_eval_cfg(tmp_path, f"ckpt_path={garbage}")), capsys
    )
    assert f"ckpt_path: {garbage} is not a readable checkpoint" in line


def test_evaluate_on_a_dataset_of_another_shape(
    trained: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rng = np.random.default_rng(1)
    other = {"o": rng.normal(size=(3, 40, 7, 1)).astype(np.float32)}
    write_layout(tmp_path / "data", "other", {0: "a"}, [("o", other["o"], ["a"] * 40)])
    cfg = _eval_cfg(
        tmp_path, f"ckpt_path={trained}", "dataset=folder", f"paths.data_dir={tmp_path / 'data'}",
        "dataset.name=other", "dataset.patch_size=5",
    )  # fmt: skip
    line = _one_line_exit(lambda: evaluate_checkpoint(cfg), capsys)
    assert "(C, V, M, patch) = (3, 7, 1, 5) but the checkpoint was trained on (3, 5, 1, 5)" in line


# ----------------------------------------------------------------------------- predict


def test_predict_without_input_and_on_an_input_of_another_shape(
    trained: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = compose_config("predict", [f"ckpt_path={trained}", f"paths.output_dir={tmp_path}"])
    line = _one_line_exit(lambda: predict(cfg), capsys)
    assert "input is required: python -m histvq.predict" in line
    array = tmp_path / "wrong.npy"
    np.save(array, np.zeros((3, 30, 7, 1), dtype=np.float32))
    cfg = compose_config(
        "predict", [f"ckpt_path={trained}", f"input={array}", f"paths.output_dir={tmp_path}"]
    )
    line = _one_line_exit(lambda: predict(cfg), capsys)
    assert f"{array}: (C, V, M) = (3, 7, 1) but the checkpoint {trained} was trained on " in line
    assert line.endswith("(C, V, M) = (3, 5, 1)"), line


def test_output_cut_short_by_the_reader_ends_quietly(tmp_path: Path) -> None:
    """`histvq-report ... | head` must not end in a BrokenPipeError traceback."""
    import subprocess
    import sys

    script = (
        "from histvq.errors import run_reporting_errors\n"
        "def main():\n"
        "    for i in range(200000):\n"
        "        print('row', i)\n"
        "    return 0\n"
        "raise SystemExit(run_reporting_errors(main) or 0)\n"
    )
    (tmp_path / "emit.py").write_text(script)
    pipeline = f'"{sys.executable}" emit.py | head -n 1; echo "writer=${{PIPESTATUS[0]}}" >&2'
    result = subprocess.run(
        ["bash", "-c", pipeline], cwd=tmp_path, capture_output=True, text=True, timeout=60,
        env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"},
    )  # fmt: skip
    assert result.stdout == "row 0\n"
    assert "Traceback" not in result.stderr
    assert "writer=0" in result.stderr
