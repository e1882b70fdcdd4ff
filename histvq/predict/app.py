"""Segment new recordings with a trained checkpoint: ``python -m histvq.predict``.

::

    python -m histvq.predict ckpt_path=<run>/checkpoints/last.ckpt input=<file or folder>
    python -m histvq.predict ckpt_path=... input=rec.csv kind=lara output_dir=out/

``input`` is a raw recording (or a folder of them) in the format the checkpoint was trained on
(``kind=`` picks another registered format), a prepared layout folder (``features/``
required, ``groundTruth/`` optional), or ``.npy`` arrays of shape (C, T, V, M). For every
sequence the output folder receives ``<name>.frames.csv``, ``<name>.segments.csv``,
``<name>.segments.json`` and ``<name>.png`` (prediction bar, above it the ground truth when
the input has labels), plus one ``summary.json``. Clusters are named through the run's
``cluster_mapping.json`` (the global Hungarian matching of its evaluation); a cluster it does
not name is ``cluster_<id>``.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from collections import Counter
from dataclasses import replace
from pathlib import Path
from typing import Any

from histvq.config import required
from histvq.data.normalize import standardize
from histvq.data.streams import apply_streams
from histvq.evaluation.segment import segment_arrays
from histvq.metrics.names import CLUSTER_MAPPING_FILE
from histvq.models.checkpoint import load_trained
from histvq.predict.outputs import load_cluster_names, write_sequence
from histvq.predict.readers import (
    PredictInputError,
    check_against_spec,
    detect_kind,
    load_inputs,
    reader_options,
)

log = logging.getLogger(__name__)

SUMMARY_FILE = "summary.json"


def predict_recordings(
    ckpt_path: str | os.PathLike[str],
    input_path: str | os.PathLike[str],
    output_dir: str | os.PathLike[str],
    *,
    kind: str | None = None,
    options: dict[str, Any] | None = None,
    pattern: str | None = None,
    cluster_mapping: str | os.PathLike[str] | None = None,
    device: str = "auto",
    batch_size: int = 8,
    plots: bool = True,
) -> dict[str, Any]:
    """Segment every sequence of ``input_path`` with the checkpoint and write the outputs
    under ``output_dir``; return the content of ``summary.json``.

    ``cluster_mapping`` defaults to ``<run dir>/cluster_mapping.json`` for a checkpoint at
    ``<run dir>/checkpoints/<file>``.
    """
    trained = load_trained(ckpt_path, device)
    ckpt, source = trained.path, Path(input_path).expanduser()
    kind = kind or detect_kind(source, trained.kind)
    read_options = reader_options(kind, trained.run_config, trained.kind, dict(options or {}))
    sequences, skipped = load_inputs(source, kind, read_options, pattern)
    stream = str((trained.run_config.get("dataset") or {}).get("stream", "joint"))
    sequences = [
        replace(s, features=apply_streams(s.features, stream, trained.kind or kind, s.name))
        for s in sequences
    ]
    stats = trained.spec.input_stats
    if stats:
        sequences = [
            replace(s, features=standardize(s.features, stats["mean"], stats["std"]))
            for s in sequences
        ]
    check_against_spec(sequences, trained.spec, ckpt)

    mapping_path = (
        Path(cluster_mapping).expanduser()
        if cluster_mapping
        else ckpt.parent.parent / CLUSTER_MAPPING_FILE
    )
    if cluster_mapping and not mapping_path.is_file():
        raise PredictInputError(f"cluster_mapping={mapping_path}: file does not exist")
    names = load_cluster_names(mapping_path, trained.spec.label_names)
    if names.source is None:
        log.warning("no %s next to the checkpoint: labels are cluster_<id>", CLUSTER_MAPPING_FILE)
    codes = segment_arrays(trained.model, [s.features for s in sequences], batch_size=batch_size)

    out = Path(output_dir).expanduser()
    out.mkdir(parents=True, exist_ok=True)
    entries = [
        write_sequence(out, seq, seq_codes, names, trained.spec.label_names, plots)
        for seq, seq_codes in zip(sequences, codes, strict=True)
    ]
    frames = Counter(names.label(int(c)) for seq_codes in codes for c in seq_codes)
    summary: dict[str, Any] = {
        "checkpoint": str(ckpt),
        "input": str(source),
        "kind": kind,
        "cluster_mapping": str(names.source) if names.source else None,
        "output_dir": str(out),
        "num_sequences": len(entries),
        "num_frames": sum(e["num_frames"] for e in entries),
        "label_frames": dict(sorted(frames.items())),
        "skipped": [{"item": item, "reason": reason} for item, reason in skipped],
        "sequences": entries,
    }
    (out / SUMMARY_FILE).write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    print(
        f"segmented {summary['num_sequences']} sequence(s), {summary['num_frames']:,} frames "
        f"({kind}) -> {out}"
    )
    return summary


def predict(cfg: Any) -> dict[str, Any]:
    """``python -m histvq.predict`` on its composed config (conf/predict.yaml)."""
    from omegaconf import OmegaConf

    usage = "python -m histvq.predict ckpt_path=<run>/checkpoints/last.ckpt input=<recordings>"
    ckpt_path, input_path = required(cfg, "ckpt_path", usage), required(cfg, "input", usage)
    output_dir = cfg.get("output_dir") or cfg.paths.output_dir
    options = cfg.get("options") or {}
    if not isinstance(options, dict):
        options = OmegaConf.to_container(options, resolve=True)
    return predict_recordings(
        ckpt_path,
        input_path,
        output_dir,
        kind=cfg.get("kind"),
        options=options,
        pattern=cfg.get("pattern"),
        cluster_mapping=cfg.get("cluster_mapping"),
        device=str(cfg.get("device", "auto")),
        batch_size=int(cfg.get("batch_size", 8)),
        plots=bool(cfg.get("plots", True)),
    )


def main() -> None:
    """The ``python -m histvq.predict`` / ``histvq-predict`` entry point."""
    import hydra

    from histvq.cli import preflight
    from histvq.errors import run_reporting_errors

    os.environ.setdefault("PROJECT_ROOT", str(Path(__file__).resolve().parents[2]))
    root = Path(os.environ["PROJECT_ROOT"])
    preflight(sys.argv[1:], root, "predict")

    @hydra.main(config_path=str(root / "conf"), config_name="predict", version_base="1.3")
    def app(cfg: Any) -> None:
        run_reporting_errors(lambda: predict(cfg) and None)

    app()
