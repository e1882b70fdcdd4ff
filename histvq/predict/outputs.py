"""What ``histvq.predict`` writes per sequence: frame and segment tables, a plot; and how
clusters are named (the run's ``cluster_mapping.json``, else ``cluster_<id>``)."""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from histvq.evaluation.plotting import plot_segmentation
from histvq.metrics import segment_bounds
from histvq.metrics.names import cluster_name, unmatched_id
from histvq.predict.readers import InputSequence, PredictInputError


@dataclass(frozen=True)
class ClusterNames:
    """Cluster id -> label name (and label id) from a run's ``cluster_mapping.json``."""

    names: dict[int, str]
    label_ids: dict[int, int]
    source: Path | None = None

    def label(self, cluster: int) -> str:
        return self.names.get(int(cluster), cluster_name(cluster))


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
    segments_json = {
        "sequence": seq.name,
        "num_frames": len(codes),
        "segments": [s.to_dict() for s in segments],
    }
    (output_dir / files["segments_json"]).write_text(
        json.dumps(segments_json, indent=2) + "\n", encoding="utf-8"
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
            label_names[int(cluster) + offset] = cluster_name(cluster)
    else:
        lookup = dict(names.label_ids)
        mapped = np.array([lookup.get(int(c), unmatched_id(int(c))) for c in codes], dtype=np.int64)
    plot_segmentation(target, mapped, label_names, path, title=seq.name)
