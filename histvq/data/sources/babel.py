"""BABEL subset pickles -> (3, T, 25, 1) sequences in millimetres.

The Skeleton-Temporal-Action-Localization pipeline builds three 4-action subsets of
BABEL (AMASS motions rendered as NTU-style 25-joint skeletons, root-centred, metres, 30 fps)
and writes ``train_split{N}.pkl`` and ``val_split{N}.pkl``: a dict with ``sid`` (sequence
ids), ``X`` (per sequence a (C=3, T, V=25, M=1) array), ``L`` (per sequence T integer
labels: 0..3 the subset's actions, 4 none/other) and ``Y`` (unused here).

Preparation follows SMQ's reference: both pickles together form the dataset; a sequence
whose share of ``none`` frames exceeds ``none_threshold`` percent (default 50) is dropped
(kept when the share is at most the threshold); coordinates are scaled from metres to
millimetres (x1000, computed in the array's own precision, then stored as float32); the
sequence is named ``str(sid)`` and its frames get the subset's label names (mapping ids
0..4).

Stricter than the reference: missing keys, ``sid``/``X``/``L`` of different lengths, a
sequence that is not (3, T, 25, 1) or not finite, labels that are not T integers in 0..4,
and sids that cannot be file names raise :class:`~histvq.errors.RawFormatError` naming the
pickle and the sequence (index and sid). A sid appearing twice (in one or both pickles) is
an error unless both copies are identical, in which case the second is skipped with a note
(the reference silently let the later one overwrite the earlier). Empty sequences are
skipped with a note. The pickles are loaded with an unpickler that only accepts numpy
arrays and plain Python containers, so a pickle cannot run arbitrary code.
"""

from __future__ import annotations

import pickle
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from histvq.data.sources import Discovery, RawSequence, Skipped, Source, split_inputs
from histvq.errors import ConfigError, RawFormatError

SUBSET_ACTIONS: dict[int, tuple[str, str, str, str]] = {
    1: ("walk", "stand", "turn", "jump"),
    2: ("sit", "run", "stand_up", "kick"),
    3: ("jog", "wave", "dance", "gesture"),
}
NONE_LABEL = 4
NONE_NAME = "none"
CHANNELS = 3
JOINTS = 25
PERSONS = 1
METRES_TO_MM = 1000.0
REQUIRED_KEYS = ("sid", "X", "L")

_SAFE_NAME = re.compile(r"^[^/\\\x00]+$")


def subset_mapping(subset: int) -> dict[int, str]:
    """``{0: action, ..., 3: action, 4: 'none'}`` of BABEL subset 1, 2 or 3."""
    if subset not in SUBSET_ACTIONS:
        raise ConfigError(f"babel subset must be 1, 2 or 3, got {subset!r}")
    return {**dict(enumerate(SUBSET_ACTIONS[subset])), NONE_LABEL: NONE_NAME}


@dataclass(frozen=True)
class BabelOptions:
    """Options of ``prepare babel``: the subset (1, 2, 3) and the 'none' share limit (%)."""

    subset: int | None = None
    none_threshold: float = 50.0

    def __post_init__(self) -> None:
        if self.subset is None:
            raise ConfigError("babel needs a subset (1, 2 or 3)")
        subset_mapping(self.subset)
        threshold = self.none_threshold
        if isinstance(threshold, bool) or not isinstance(threshold, int | float):
            raise ConfigError(f"babel none_threshold must be a number, got {threshold!r}")
        if not 0 <= threshold <= 100:
            raise ConfigError(f"babel none_threshold is a percentage 0..100, got {threshold}")


class _SafeUnpickler(pickle.Unpickler):
    """Unpickles numpy arrays/scalars and builtin containers, nothing that can run code."""

    _NUMPY = frozenset({"_reconstruct", "ndarray", "dtype", "scalar", "_frombuffer"})
    _BUILTINS = frozenset(
        {"list", "dict", "tuple", "set", "frozenset", "int", "float", "str", "bytes",
         "bool", "complex", "bytearray", "slice", "range"}
    )  # fmt: skip

    def find_class(self, module: str, name: str) -> Any:
        numpy_module = module == "numpy" or module.startswith(("numpy.core", "numpy._core"))
        if (numpy_module and name in self._NUMPY) or (
            module == "builtins" and name in self._BUILTINS
        ):
            return super().find_class(module, name)
        if module == "collections" and name == "OrderedDict":
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refusing to load {module}.{name}")


def load_pickle(path: Path) -> dict[str, Any]:
    """Load a subset pickle and check its top-level structure."""
    try:
        with path.open("rb") as handle:
            data = _SafeUnpickler(handle).load()
    except (
        pickle.UnpicklingError, EOFError, AttributeError, ImportError, IndexError, TypeError,
        ValueError,
    ) as error:  # fmt: skip
        raise RawFormatError(f"{path}: not a readable BABEL subset pickle ({error})") from None
    if not isinstance(data, dict):
        raise RawFormatError(
            f"{path}: expected a dict with keys {list(REQUIRED_KEYS)}, got {type(data).__name__}"
        )
    missing = [key for key in REQUIRED_KEYS if key not in data]
    if missing:
        raise RawFormatError(f"{path}: missing key(s) {missing}; found {sorted(map(str, data))}")
    lengths = {key: _length(path, key, data[key]) for key in REQUIRED_KEYS}
    if len(set(lengths.values())) != 1:
        raise RawFormatError(
            f"{path}: sid, X and L must have one entry per sequence, found lengths "
            + ", ".join(f"{k}={n}" for k, n in lengths.items())
        )
    return data


def _length(path: Path, key: str, value: Any) -> int:
    try:
        return len(value)
    except TypeError:
        raise RawFormatError(
            f"{path}: {key!r} must be a sequence, got {type(value).__name__}"
        ) from None


def iter_babel_pickle(
    path: Path, subset: int, none_threshold: float = 50.0
) -> Iterator[RawSequence | Skipped]:
    """Validated sequences of one pickle, with the 'none'-heavy and empty ones skipped."""
    names = np.array(list(subset_mapping(subset).values()), dtype=object)
    data = load_pickle(path)
    for index, (sid, x, labels) in enumerate(zip(data["sid"], data["X"], data["L"], strict=True)):
        where = f"{path}: sequence {index} (sid {sid!r})"
        name = _sequence_name(where, sid)
        features = _check_features(where, x)
        ids = _check_labels(where, labels, features.shape[1])
        num_frames = features.shape[1]
        if num_frames == 0:
            yield Skipped(f"{path.name}:{name}", "empty sequence (0 frames)")
            continue
        # Same arithmetic as the reference, so a share at the threshold is decided alike.
        none_share = (float(np.count_nonzero(ids == NONE_LABEL)) / num_frames) * 100.0
        if none_share > none_threshold:
            yield Skipped(f"{path.name}:{name}", f"'none' share above {none_threshold:g}%")
            continue
        scaled = np.asarray(features * METRES_TO_MM, dtype=np.float32)
        yield RawSequence(name=name, features=scaled, labels=names[ids].tolist())


def _sequence_name(where: str, sid: Any) -> str:
    if isinstance(sid, np.ndarray) and sid.ndim == 0:
        sid = sid.item()
    if isinstance(sid, np.generic):
        sid = sid.item()
    if isinstance(sid, bytes):
        sid = sid.decode("utf-8", errors="replace")
    name = str(sid)
    if not isinstance(sid, int | str) or not _SAFE_NAME.match(name) or name in {".", ".."}:
        raise RawFormatError(f"{where}: sid cannot be used as a sequence name")
    return name


def _check_features(where: str, x: Any) -> np.ndarray:
    array = np.asarray(x)
    if not (np.issubdtype(array.dtype, np.integer) or np.issubdtype(array.dtype, np.floating)):
        raise RawFormatError(f"{where}: X must be a numeric array, got dtype {array.dtype}")
    expected = f"({CHANNELS}, T, {JOINTS}, {PERSONS})"
    if array.ndim != 4 or array.shape[0] != CHANNELS or array.shape[2:] != (JOINTS, PERSONS):
        raise RawFormatError(f"{where}: X must be {expected}, got shape {tuple(array.shape)}")
    if not np.isfinite(array).all():
        raise RawFormatError(f"{where}: X contains NaN or inf")
    return array


def _check_labels(where: str, labels: Any, num_frames: int) -> np.ndarray:
    array = np.asarray(labels)
    if array.ndim != 1:
        raise RawFormatError(
            f"{where}: L must be 1-d (one label per frame), got shape {array.shape}"
        )
    if array.shape[0] != num_frames:
        raise RawFormatError(f"{where}: {array.shape[0]} labels but X has {num_frames} frames")
    if array.size == 0:
        return array.astype(np.int64)
    if not (np.issubdtype(array.dtype, np.integer) or np.issubdtype(array.dtype, np.floating)):
        raise RawFormatError(
            f"{where}: L must hold integers 0..{NONE_LABEL}, got dtype {array.dtype}"
        )
    valid = np.isfinite(array) & (array == np.round(array)) & (array >= 0) & (array <= NONE_LABEL)
    if not valid.all():
        frame = int(np.argmin(valid))
        raise RawFormatError(
            f"{where}: label {array[frame].item()!r} at frame {frame} is not an integer "
            f"0..{NONE_LABEL}"
        )
    return array.astype(np.int64)


def discover(inputs: list[Path], options: BabelOptions) -> Discovery:
    """The given pickles, in the given order (folders contribute their ``*.pkl``)."""
    pickles, others = split_inputs(inputs, "*.pkl", recursive=False)
    return Discovery(files=pickles, skipped=[Skipped(p.name, "not a .pkl file") for p in others])


def read(path: Path, options: BabelOptions) -> Iterator[RawSequence | Skipped]:
    assert options.subset is not None
    return iter_babel_pickle(path, options.subset, options.none_threshold)


SOURCE = Source(
    kind="babel",
    description="BABEL subset pickles from Skeleton-Temporal-Action-Localization",
    options_type=BabelOptions,
    default_name=lambda options: f"babel{options.subset}",
    mapping=lambda options: subset_mapping(options.subset),
    discover=discover,
    read=read,
    predict_options={"none_threshold": 100.0},
)
