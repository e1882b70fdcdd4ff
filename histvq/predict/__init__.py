"""Segment new recordings with a trained checkpoint (``python -m histvq.predict``): readers
(:mod:`.readers`), per-sequence outputs (:mod:`.outputs`) and the entry point (:mod:`.app`)."""

from histvq.predict.app import SUMMARY_FILE, main, predict, predict_recordings
from histvq.predict.outputs import (
    ClusterNames,
    Segment,
    load_cluster_names,
    segments_of,
    write_sequence,
)
from histvq.predict.readers import (
    INPUT_KINDS,
    InputSequence,
    PredictInputError,
    check_against_spec,
    detect_kind,
    load_inputs,
    reader_options,
)

__all__ = [
    "INPUT_KINDS",
    "SUMMARY_FILE",
    "ClusterNames",
    "InputSequence",
    "PredictInputError",
    "Segment",
    "check_against_spec",
    "detect_kind",
    "load_cluster_names",
    "load_inputs",
    "main",
    "predict",
    "predict_recordings",
    "reader_options",
    "segments_of",
    "write_sequence",
]
