"""Sequences and datasets from a :class:`~histvq.data.synthetic.spec.SyntheticSpec`, in
memory and on disk.

:func:`generate_sequence` draws a sequence's body, tempo, facing direction, noise and
action plan from a generator seeded by ``(spec.seed, index)``, blends the actions' joint
angles (:mod:`.motions`) across smooth transitions, adds slow postural drift and runs the
forward kinematics (:mod:`.kinematics`); a sequence depends on ``(spec, index)`` only, so
sequences can be made in any order. :func:`write_synthetic_dataset` writes the
SMQ-compatible layout of :mod:`histvq.data.layout` plus ``generator.json`` (generator
version and spec), which :func:`ensure_synthetic_dataset` compares to decide whether a
folder on disk can be reused.
"""

from __future__ import annotations

import json
import logging
import math
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from histvq.data.layout import FEATURES_DIR, LABELS_DIR, MAPPING_DIR, MAPPING_FILE, LayoutWriter
from histvq.data.synthetic.kinematics import _BONES, _floor_offset, _forward_kinematics, _rot
from histvq.data.synthetic.motions import _ACTION_PATTERNS, _NUM_ANGLES, _P, _PARAMS, _REST, _TAU
from histvq.data.synthetic.spec import SyntheticSpec
from histvq.errors import ConfigError

GENERATOR_NAME = "histvq.data.synthetic"
"""The generator's name in ``generator.json`` and its logger's name: the package, as when it
was a single module, so files stay byte-identical and existing folders are reused."""

log = logging.getLogger(GENERATOR_NAME)

GENERATOR_VERSION = 7
"""Bump whenever the generated data change for an unchanged spec (invalidates cached folders)."""

GENERATOR_FILE = "generator.json"

_DEFAULT_SPEC = SyntheticSpec()
"""The embedded default dataset (a module-level default: specs are frozen)."""

# --------------------------------------------------------------------------------------------
# Sequences
# --------------------------------------------------------------------------------------------


def _smoothstep(x: np.ndarray) -> np.ndarray:
    x = np.clip(x, 0.0, 1.0)
    return x * x * (3.0 - 2.0 * x)


def _sample_plan(rng: np.random.Generator, spec: SyntheticSpec) -> list[tuple[str, int]]:
    """The (action, frames) list of one sequence; consecutive actions always differ."""
    count = int(rng.integers(spec.min_actions, spec.max_actions + 1))
    low = math.ceil(spec.min_seconds * spec.fps)
    high = math.floor(spec.max_seconds * spec.fps)
    plan: list[tuple[str, int]] = []
    previous = -1
    for _ in range(count):
        choices = [i for i in range(len(spec.actions)) if i != previous]
        previous = choices[int(rng.integers(len(choices)))]
        seconds = rng.uniform(spec.min_seconds, spec.max_seconds)
        frames = int(np.clip(round(seconds * spec.fps), low, high))
        plan.append((spec.actions[previous], frames))
    return plan


def _sequence_rng(spec: SyntheticSpec, index: int) -> np.random.Generator:
    return np.random.default_rng([spec.seed, index])


def generate_sequence(spec: SyntheticSpec, index: int) -> tuple[np.ndarray, list[str]]:
    """Sequence ``index`` of the dataset ``spec`` describes.

    Returns float32 features (3, T, 25, 1) in millimetres and one label name per frame.
    The result depends only on ``(spec, index)``, so sequences can be made in any order.
    """
    if index < 0:
        raise ConfigError(f"synthetic dataset: sequence index must be >= 0, got {index}")
    rng = _sequence_rng(spec, index)
    scale = rng.uniform(*spec.scale_range)
    bones = {k: v * scale * rng.uniform(0.96, 1.04) for k, v in _BONES.items()}
    speed = rng.uniform(*spec.speed_range)
    noise_mm = rng.uniform(*spec.noise_mm_range)
    yaw = rng.uniform(-spec.max_yaw_degrees, spec.max_yaw_degrees)
    plan = _sample_plan(rng, spec)

    lengths = np.array([frames for _, frames in plan])
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    total = int(lengths.sum())
    t = np.arange(total) / spec.fps
    half = spec.blend_seconds / 2

    def ramp(boundary_frame: int) -> np.ndarray:
        """0 before the transition at ``boundary_frame``, 1 after it, smooth in between."""
        centre = (boundary_frame - 0.5) / spec.fps
        if half == 0:
            return (t >= centre).astype(float)
        return _smoothstep((t - centre + half) / (2 * half))

    # Partition of unity: each action's weight rises across its start transition and falls
    # across its end transition; transitions are centred on the label switch.
    ramps = [np.ones(total)] + [ramp(int(s)) for s in starts[1:]] + [np.zeros(total)]
    q = np.zeros((total, len(_PARAMS)))
    labels: list[str] = []
    for i, (action, frames) in enumerate(plan):
        weight = ramps[i] - ramps[i + 1]
        active = np.flatnonzero(weight > 0)
        lo, hi = int(active[0]), int(active[-1]) + 1
        pattern = _ACTION_PATTERNS[action](t[lo:hi] - starts[i] / spec.fps, rng, speed)
        q[lo:hi] += weight[lo:hi, None] * pattern
        labels.extend([action] * frames)

    # Slow postural drift: a few small random sinusoids per joint angle.
    amplitude = rng.normal(0.0, 1.2, size=(3, _NUM_ANGLES))
    frequency = rng.uniform(0.05, 0.5, size=(3, _NUM_ANGLES))
    phase = rng.uniform(0.0, _TAU, size=(3, _NUM_ANGLES))
    q[:, :_NUM_ANGLES] += np.einsum(
        "kp,tkp->tp", amplitude, np.sin(_TAU * frequency * t[:, None, None] + phase)
    )

    joints = _forward_kinematics(q, bones)
    rest = _forward_kinematics(_REST[None, :].copy(), bones)
    height = _floor_offset(joints, bones, scale) + scale * q[:, _P["air"]]
    joints[:, :, 1] += (height - _floor_offset(rest, bones, scale)[0])[:, None]
    joints = joints @ _rot(1, np.array([yaw]))[0].T
    joints += rng.normal(0.0, noise_mm, size=joints.shape)
    features = np.ascontiguousarray(joints.transpose(2, 0, 1)[..., None], dtype=np.float32)
    return features, labels


def sequence_name(index: int, name: str = "synthetic") -> str:
    return f"{name}_{index:03d}"


def generate_dataset(
    spec: SyntheticSpec = _DEFAULT_SPEC, name: str = "synthetic"
) -> Iterator[tuple[str, np.ndarray, list[str]]]:
    """Yield ``(sequence name, features (3, T, 25, 1), frame labels)`` for every sequence."""
    for index in range(spec.num_sequences):
        features, labels = generate_sequence(spec, index)
        yield sequence_name(index, name), features, labels


# --------------------------------------------------------------------------------------------
# On disk
# --------------------------------------------------------------------------------------------


def _generator_record(spec: SyntheticSpec) -> dict[str, Any]:
    return {"generator": GENERATOR_NAME, "version": GENERATOR_VERSION, "spec": spec.to_dict()}


def write_synthetic_dataset(
    root: str | os.PathLike[str], name: str = "synthetic", spec: SyntheticSpec = _DEFAULT_SPEC
) -> Path:
    """Generate the dataset as ``<root>/<name>`` (atomically) and return that folder.

    ``generator.json`` is written last, so a folder without it (an interrupted write) is never
    mistaken for a finished one by :func:`ensure_synthetic_dataset`.
    """
    with LayoutWriter(root, name, spec.mapping) as writer:
        for seq_name, features, labels in generate_dataset(spec, name):
            writer.add(seq_name, features, labels)
    destination = writer.destination
    text = json.dumps(_generator_record(spec), indent=2, sort_keys=True) + "\n"
    handle, tmp = tempfile.mkstemp(prefix=f".{GENERATOR_FILE}.", dir=destination)
    with os.fdopen(handle, "w", encoding="utf-8") as stream:
        stream.write(text)
    os.replace(tmp, destination / GENERATOR_FILE)
    return destination


def _mismatch(folder: Path, spec: SyntheticSpec) -> str | None:
    """Why ``folder`` cannot be reused for ``spec``, or None when it can."""
    if not folder.exists():
        return "it does not exist"
    record_path = folder / GENERATOR_FILE
    try:
        record = json.loads(record_path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return f"{GENERATOR_FILE} is missing (not made by this generator, or interrupted)"
    except (OSError, ValueError) as error:
        return f"{GENERATOR_FILE} is unreadable ({error})"
    expected = json.loads(json.dumps(_generator_record(spec)))
    if record != expected:
        if not isinstance(record, dict):
            return f"{GENERATOR_FILE} is not a JSON object"
        if record.get("version") != expected["version"]:
            return f"it was made by generator version {record.get('version')!r}"
        old = record.get("spec")
        old = old if isinstance(old, dict) else {}
        changed = sorted(k for k in expected["spec"] if old.get(k) != expected["spec"][k])
        return f"its spec differs in {changed or 'format'}"
    if not (folder / MAPPING_DIR / MAPPING_FILE).is_file():
        return f"{MAPPING_DIR}/{MAPPING_FILE} is missing"
    for sub, suffix in ((FEATURES_DIR, ".npy"), (LABELS_DIR, ".txt")):
        found = len(list((folder / sub).glob(f"*{suffix}")))
        if found != spec.num_sequences:
            return f"{sub}/ holds {found} files, expected {spec.num_sequences}"
    return None


def ensure_synthetic_dataset(
    root: str | os.PathLike[str], name: str = "synthetic", spec: SyntheticSpec = _DEFAULT_SPEC
) -> Path:
    """Return ``<root>/<name>``, generating it first unless it already matches ``spec``."""
    folder = Path(root).expanduser() / name
    reason = _mismatch(folder, spec)
    if reason is None:
        log.info("reusing synthetic dataset %s", folder)
        return folder
    log.info("generating synthetic dataset %s: %s", folder, reason)
    return write_synthetic_dataset(root, name, spec)
