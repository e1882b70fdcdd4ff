"""Segment new recordings with a trained checkpoint: ``python -m histvq.predict``.

::

    python -m histvq.predict ckpt_path=<run>/checkpoints/last.ckpt input=<file or folder>
    python -m histvq.predict ckpt_path=... input=rec.csv kind=lara output_dir=out/

``input`` is a raw recording (or a folder of them) in the format the checkpoint was trained on
(HuGaDB ``.txt``, LARa ``.csv`` with or without its ``_labels.csv``, BABEL ``.pkl``; ``kind=``
picks another), a prepared layout folder (``features/`` required, ``groundTruth/`` optional),
or ``.npy`` arrays of shape (C, T, V, M). For every sequence the output folder receives
``<name>.frames.csv``, ``<name>.segments.csv``, ``<name>.segments.json`` and ``<name>.png``
(prediction bar, above it the ground truth when the input has labels), plus one
``summary.json``. Clusters are named through the run's ``cluster_mapping.json`` (the global
Hungarian matching of its evaluation); a cluster it does not name is ``cluster_<id>``.
"""

from __future__ import annotations

import csv
import json
import logging
import os
import sys
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from histvq.errors import ConfigError, HistvqError, LayoutError
from histvq.evaluation import CLUSTER_MAPPING_FILE

log = logging.getLogger(__name__)

INPUT_KINDS = ("hugadb", "lara", "babel", "layout", "npy")
SUMMARY_FILE = "summary.json"

_DATAMODULE_KINDS = {
    "HuGaDBDataModule": "hugadb",
    "LARaDataModule": "lara",
    "BABELDataModule": "babel",
}
_DEFAULT_PATTERNS = {"hugadb": "HuGaDB_v*_*.txt", "lara": "*.csv", "babel": "*.pkl", "npy": "*.npy"}


class PredictInputError(HistvqError):
    """The recordings handed to ``predict`` cannot be read or do not fit the checkpoint."""


# ----------------------------------------------------------------------------- inputs


@dataclass(frozen=True)
class InputSequence:
    """One recording to segment: (C, T, V, M) float32 features, ground-truth names or None."""

    name: str
    features: np.ndarray
    labels: list[str] | None = None
    source: str = ""

    @property
    def num_frames(self) -> int:
        return int(self.features.shape[1])


def training_kind(run_config: dict[str, Any]) -> str | None:
    """The raw format the run was trained on (``hugadb``/``lara``/``babel``), if any."""
    target = str((run_config.get("dataset") or {}).get("_target_", ""))
    return _DATAMODULE_KINDS.get(target.rsplit(".", 1)[-1])


def detect_kind(path: Path, run_config: dict[str, Any]) -> str:
    """Prepared data is recognised by its shape on disk; raw files take the training format."""
    if path.is_file() and path.suffix == ".npy":
        return "npy"
    if path.is_dir() and (path / "features").is_dir():
        return "layout"
    kind = training_kind(run_config)
    if kind is not None:
        return kind
    if path.is_dir() and any(path.glob("*.npy")):
        return "npy"
    raise PredictInputError(
        f"input={path}: not a prepared layout folder (features/) or .npy, and the checkpoint "
        f"was not trained on a raw format; give kind= (one of {', '.join(INPUT_KINDS)})"
    )


def reader_options(kind: str, run_config: dict[str, Any], overrides: dict[str, Any]) -> dict:
    """Options of the raw reader: the run's preparation options when the kind matches the
    training data, then the user's ``options.*`` on top."""
    options: dict[str, Any] = {}
    dataset = run_config.get("dataset") or {}
    if training_kind(run_config) == kind:
        options.update(dataset.get("prepare_options") or {})
        if kind == "babel" and dataset.get("subset") is not None:
            options["subset"] = dataset["subset"]
    if kind == "babel":
        options["none_threshold"] = 100.0  # predict every sequence, whatever its labels
    options.update(overrides)
    return options


def load_inputs(
    path: Path,
    kind: str,
    options: dict[str, Any] | None = None,
    pattern: str | None = None,
) -> tuple[list[InputSequence], list[tuple[str, str]]]:
    """Read every sequence of ``path`` as ``kind``: (sequences sorted by name, skipped items
    with the reason)."""
    options = dict(options or {})
    if not path.exists():
        raise PredictInputError(f"input={path}: does not exist")
    if kind not in INPUT_KINDS:
        raise ConfigError(f"kind: unknown value {kind!r} ({' | '.join(INPUT_KINDS)})")
    # hugadb's preparation pattern selects the training set, not which files are recordings:
    # every recording of the input is predicted unless ``pattern`` says otherwise.
    options.pop("pattern", None)
    pattern = pattern or _DEFAULT_PATTERNS.get(kind, "*")
    skipped: list[tuple[str, str]] = []
    if kind == "layout":
        sequences = _read_layout_folder(path)
    elif kind == "npy":
        sequences = [_read_npy(f) for f in _files(path, pattern, recursive=False)]
    elif kind == "hugadb":
        sequences = _read_hugadb(path, options, pattern)
    elif kind == "lara":
        sequences = _read_lara(path, options, pattern)
    else:
        sequences, skipped = _read_babel(path, options, pattern)
    if not sequences:
        raise PredictInputError(f"input={path}: no {kind} sequences found (pattern {pattern!r})")
    names = Counter(s.name for s in sequences)
    twice = sorted(n for n, count in names.items() if count > 1)
    if twice:
        sources = [s.source for s in sequences if s.name == twice[0]]
        raise PredictInputError(
            f"input={path}: sequence name {twice[0]!r} occurs more than once ({', '.join(sources)})"
        )
    return sorted(sequences, key=lambda s: s.name), skipped


def _files(path: Path, pattern: str, recursive: bool) -> list[Path]:
    from histvq.data.sources import split_inputs

    matching, _ = split_inputs([path], pattern, recursive=recursive)
    return matching


def _read_npy(path: Path) -> InputSequence:
    from histvq.data.layout import load_features

    return InputSequence(path.stem, load_features(path), None, str(path))


def _read_layout_folder(root: Path) -> list[InputSequence]:
    from histvq.data.layout import FEATURES_DIR, LABELS_DIR, load_features, read_labels

    files = sorted((root / FEATURES_DIR).glob("*.npy"))
    if not files:
        raise LayoutError(f"{root / FEATURES_DIR}: no .npy feature files")
    sequences = []
    for file in files:
        features = load_features(file)
        labels = None
        label_file = root / LABELS_DIR / f"{file.stem}.txt"
        if label_file.is_file():
            labels = read_labels(label_file)
            if len(labels) != features.shape[1]:
                raise LayoutError(
                    f"{label_file}: {len(labels)} labels but {file.name} has "
                    f"{features.shape[1]} frames"
                )
        sequences.append(InputSequence(file.stem, features, labels, str(file)))
    return sequences


def _read_hugadb(path: Path, options: dict[str, Any], pattern: str) -> list[InputSequence]:
    from histvq.data.sources.hugadb import read_hugadb_file

    _known_options("hugadb", options, {"exclude_corrupted"})  # the user chose the files
    files = _files(path, pattern, recursive=False)
    sequences = []
    for file in files:
        raw = read_hugadb_file(file)
        sequences.append(InputSequence(raw.name, raw.features, raw.labels, str(file)))
    return sequences


def _read_lara(path: Path, options: dict[str, Any], pattern: str) -> list[InputSequence]:
    from histvq.data.sources import lara

    _known_options("lara", options, {"sample_rate", "root_joint"})
    opts = lara.LaraOptions(**options)
    recordings = [
        f for f in _files(path, pattern, recursive=True) if not f.name.endswith(lara.LABELS_SUFFIX)
    ]
    sequences = []
    for file in recordings:
        if lara.labels_path_for(file).is_file():
            raw = lara.read_lara_recording(file, None, opts.sample_rate, opts.root_joint)
            sequences.append(InputSequence(raw.name, raw.features, raw.labels, str(file)))
        else:
            features = lara.motion_to_features(
                lara.read_motion(file), opts.sample_rate, opts.root_joint
            )
            sequences.append(InputSequence(file.stem, features, None, str(file)))
    return sequences


def _read_babel(
    path: Path, options: dict[str, Any], pattern: str
) -> tuple[list[InputSequence], list[tuple[str, str]]]:
    from histvq.data.sources import Skipped
    from histvq.data.sources.babel import BabelOptions, iter_babel_pickle

    _known_options("babel", options, {"subset", "none_threshold"})
    if options.get("subset") is None:
        raise ConfigError(
            "BABEL input needs its subset for the label names: options.subset=1|2|3 "
            "(taken from the checkpoint when it was trained on BABEL)"
        )
    opts = BabelOptions(**options)
    assert opts.subset is not None
    sequences, skipped = [], []
    for file in _files(path, pattern, recursive=False):
        for item in iter_babel_pickle(file, opts.subset, opts.none_threshold):
            if isinstance(item, Skipped):
                skipped.append((item.item, item.reason))
            else:
                sequences.append(InputSequence(item.name, item.features, item.labels, str(file)))
    return sequences, skipped


def _known_options(kind: str, options: dict[str, Any], known: set[str]) -> None:
    unknown = sorted(set(options) - known)
    if unknown:
        raise ConfigError(
            f"options: {unknown} are not options of kind {kind} (valid: {sorted(known)})"
        )


def check_against_spec(sequences: Iterable[InputSequence], spec: Any, ckpt: Path) -> None:
    """Every sequence must have the (C, V, M) the checkpoint was trained on."""
    expected = (spec.num_channels, spec.num_joints, spec.num_persons)
    for seq in sequences:
        c, _, v, m = seq.features.shape
        if (c, v, m) != expected:
            raise PredictInputError(
                f"{seq.source or seq.name}: (C, V, M) = {(c, v, m)} but the checkpoint {ckpt} "
                f"was trained on (C, V, M) = {expected}"
            )


# ----------------------------------------------------------------------------- naming


@dataclass(frozen=True)
class ClusterNames:
    """Cluster id -> label name (and label id) from a run's ``cluster_mapping.json``."""

    names: dict[int, str]
    label_ids: dict[int, int]
    source: Path | None = None

    def label(self, cluster: int) -> str:
        return self.names.get(int(cluster), f"cluster_{int(cluster)}")


def load_cluster_names(path: Path | None, label_names: dict[int, str]) -> ClusterNames:
    """Read ``cluster_mapping.json``; ``path`` None (or missing file) names every cluster
    ``cluster_<id>``. ``label_names`` (the checkpoint's ``{id: name}``) fills in label ids when
    the file lacks them."""
    if path is None or not path.is_file():
        return ClusterNames({}, {}, None)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        clusters = {int(c): str(n) for c, n in data["clusters"].items()}
        ids_by_name = {n: i for i, n in label_names.items()}
        raw_ids = data.get("label_ids") or {}
        label_ids = {int(c): int(i) for c, i in raw_ids.items()}
    except (ValueError, KeyError, TypeError, AttributeError) as error:
        raise PredictInputError(
            f"{path}: not a cluster mapping written by histvq (expected {{'clusters': "
            f"{{id: label}}, 'label_ids': {{id: label id}}}}; {type(error).__name__}: {error})"
        ) from None
    for cluster, name in clusters.items():
        if cluster not in label_ids and name in ids_by_name:
            label_ids[cluster] = ids_by_name[name]
    return ClusterNames(clusters, label_ids, path)


# ----------------------------------------------------------------------------- outputs


@dataclass(frozen=True)
class Segment:
    """A run of one cluster: frames ``start`` .. ``end - 1``."""

    start: int
    end: int
    cluster: int
    label: str

    @property
    def length(self) -> int:
        return self.end - self.start

    def to_dict(self) -> dict[str, Any]:
        return {
            "start": self.start,
            "end": self.end,
            "length": self.length,
            "cluster": self.cluster,
            "label": self.label,
        }


def segments_of(codes: np.ndarray, names: ClusterNames) -> list[Segment]:
    """Maximal runs of equal cluster ids, in time order (they tile the sequence)."""
    from histvq.metrics import segment_bounds

    clusters, starts, ends = segment_bounds(np.asarray(codes))
    return [
        Segment(int(s), int(e), int(c), names.label(int(c)))
        for c, s, e in zip(clusters, starts, ends, strict=True)
    ]


def write_sequence(
    output_dir: Path,
    seq: InputSequence,
    codes: np.ndarray,
    names: ClusterNames,
    label_names: dict[int, str],
    plot: bool,
) -> dict[str, Any]:
    """Write the per-frame CSV, the segment CSV/JSON and the plot of one sequence; return its
    entry of ``summary.json``."""
    segments = segments_of(codes, names)
    labels = [names.label(int(c)) for c in codes]
    files = {
        "frames": f"{seq.name}.frames.csv",
        "segments_csv": f"{seq.name}.segments.csv",
        "segments_json": f"{seq.name}.segments.json",
    }
    with (output_dir / files["frames"]).open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(["frame", "cluster", "label"])
        writer.writerows(zip(range(len(codes)), codes.tolist(), labels, strict=True))
    with (output_dir / files["segments_csv"]).open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(["start", "end", "length", "cluster", "label"])
        writer.writerows([s.start, s.end, s.length, s.cluster, s.label] for s in segments)
    (output_dir / files["segments_json"]).write_text(
        json.dumps(
            {
                "sequence": seq.name,
                "num_frames": len(codes),
                "segments": [s.to_dict() for s in segments],
            },
            indent=2,
        )
        + "\n",
        encoding="utf-8",
    )
    entry: dict[str, Any] = {
        "name": seq.name,
        "source": seq.source,
        "num_frames": len(codes),
        "num_segments": len(segments),
        "ground_truth": seq.labels is not None,
    }
    if seq.labels is not None and names.source is not None:
        agree = sum(p == t for p, t in zip(labels, seq.labels, strict=True))
        entry["agreement"] = 100.0 * agree / len(labels)
    if plot:
        files["plot"] = f"{seq.name}.png"
        _plot(output_dir / files["plot"], seq, codes, names, label_names)
    entry["files"] = files
    return entry


def _plot(
    path: Path,
    seq: InputSequence,
    codes: np.ndarray,
    names: ClusterNames,
    label_names: dict[int, str],
) -> None:
    """Prediction bar (mapped clusters in their label's colour), with ground truth above when
    the sequence has labels."""
    from histvq.metrics import unmatched_id

    label_names = dict(label_names)
    ids_by_name = {n: i for i, n in label_names.items()}
    target = None
    if seq.labels is not None:
        for name in dict.fromkeys(seq.labels):
            if name not in ids_by_name:
                ids_by_name[name] = max(label_names, default=-1) + 1
                label_names[ids_by_name[name]] = name
        target = np.array([ids_by_name[n] for n in seq.labels], dtype=np.int64)
    if names.source is None:
        # No mapping: every cluster gets its own colour, after the label ids.
        offset = max(label_names, default=-1) + 1
        mapped = codes.astype(np.int64) + offset
        for cluster in np.unique(codes):
            label_names[int(cluster) + offset] = f"cluster_{int(cluster)}"
    else:
        lookup = {c: i for c, i in names.label_ids.items()}
        mapped = np.array(
            [lookup.get(int(c), int(unmatched_id(int(c)))) for c in codes], dtype=np.int64
        )
    from histvq.plotting import plot_segmentation

    plot_segmentation(target, mapped, label_names, path, title=seq.name)


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
    from omegaconf import OmegaConf

    from histvq.data.datamodules import DataSpec
    from histvq.inference import segment_sequences
    from histvq.models import build_model
    from histvq.pipeline import load_checkpoint, resolve_device

    ckpt = Path(ckpt_path).expanduser()
    source = Path(input_path).expanduser()
    checkpoint = load_checkpoint(ckpt)
    run_config: dict[str, Any] = checkpoint["histvq"]["config"]
    spec = DataSpec.from_dict(checkpoint["histvq"]["data_spec"])
    kind = kind or detect_kind(source, run_config)
    sequences, skipped = load_inputs(
        source, kind, reader_options(kind, run_config, dict(options or {})), pattern
    )
    check_against_spec(sequences, spec, ckpt)

    mapping_path = (
        Path(cluster_mapping).expanduser()
        if cluster_mapping
        else ckpt.parent.parent / CLUSTER_MAPPING_FILE
    )
    if cluster_mapping and not mapping_path.is_file():
        raise PredictInputError(f"cluster_mapping={mapping_path}: file does not exist")
    names = load_cluster_names(mapping_path, spec.label_names)
    if names.source is None:
        log.warning("no %s next to the checkpoint: labels are cluster_<id>", CLUSTER_MAPPING_FILE)

    target = resolve_device(device)
    model = build_model(OmegaConf.create(run_config["model"]), spec, target.type)
    model.load_state_dict(checkpoint["state_dict"])
    model.to(target)
    codes = segment_sequences(model, [s.features for s in sequences], batch_size=batch_size)

    out = Path(output_dir).expanduser()
    out.mkdir(parents=True, exist_ok=True)
    entries = [
        write_sequence(out, seq, seq_codes, names, spec.label_names, plots)
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
    from histvq.config import required

    usage = "python -m histvq.predict ckpt_path=<run>/checkpoints/last.ckpt input=<recordings>"
    ckpt_path, input_path = required(cfg, "ckpt_path", usage), required(cfg, "input", usage)
    output_dir = cfg.get("output_dir") or cfg.paths.output_dir
    options = cfg.get("options") or {}
    from omegaconf import OmegaConf

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
    import hydra

    from histvq.errors import run_reporting_errors

    os.environ.setdefault("PROJECT_ROOT", str(Path(__file__).resolve().parents[1]))
    conf = str(Path(os.environ["PROJECT_ROOT"]) / "conf")
    from histvq.cli import preflight

    preflight(sys.argv[1:], Path(os.environ["PROJECT_ROOT"]), "predict")

    @hydra.main(config_path=conf, config_name="predict", version_base="1.3")
    def app(cfg: Any) -> None:
        run_reporting_errors(lambda: predict(cfg) and None)

    app()


__all__ = [
    "INPUT_KINDS",
    "ClusterNames",
    "InputSequence",
    "PredictInputError",
    "Segment",
    "check_against_spec",
    "detect_kind",
    "load_cluster_names",
    "load_inputs",
    "predict",
    "predict_recordings",
    "reader_options",
    "segments_of",
    "training_kind",
]

if __name__ == "__main__":
    main()
