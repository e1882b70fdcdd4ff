"""Skeleton trees and derived input streams (joint, bone, motion) of skeleton sequences.

Skeleton-based models often see more than joint positions: *bones* (each joint minus its
parent joint, i.e. limb vectors) and *motion* (frame-to-frame differences). This module
holds the skeleton trees and pure functions that derive those streams and stack them along
the channel axis. The DataModules apply :func:`apply_streams` to the prepared joints when a
run asks for other streams (``dataset.stream``), and prediction applies the run's streams
to new recordings the same way.

Arrays are numpy arrays or torch tensors shaped ``(..., C, T, V, M)``: a single prepared
sequence (C, T, V, M) or a batch (N, C, T, V, M). Channels, frames and joints are always the
4th-, 3rd- and 2nd-last axes.

Trees are parent tables: ``parents[v]`` is the index of joint v's parent, -1 for the root.

- :data:`NTU_PARENTS`: the 25 Kinect v2 joints of NTU RGB+D, PKU-MMD and the BABEL subsets
  (and the synthetic data), rooted at the spine base (joint 0). Limbs follow the Kinect v2
  SDK's bone list: the hand tip hangs off the hand and the thumb off the wrist. (The
  ST-GCN family of models chains hand tip -> thumb -> hand instead; only those two bones
  per arm differ.)
- LARa is left out on purpose: its 22 "joints" are motion-capture segments with an
  orientation and a position each, and the LARa format description does not establish the
  segment hierarchy (e.g. which segment the collars and the head hang from).
- HuGaDB has no tree: its "joints" are 6 inertial sensors.

A bone stream on data without a tree raises :class:`~histvq.errors.ConfigError` naming the
dataset.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from histvq.errors import ConfigError

# 0 spine base, 1 spine mid, 2 neck, 3 head, 4-7 left shoulder/elbow/wrist/hand, 8-11 right
# shoulder/elbow/wrist/hand, 12-15 left hip/knee/ankle/foot, 16-19 right hip/knee/ankle/foot,
# 20 spine shoulder, 21 left hand tip, 22 left thumb, 23 right hand tip, 24 right thumb.
NTU_PARENTS: tuple[int, ...] = (
    -1, 0, 20, 2,  # spine base (root), spine mid, neck, head
    20, 4, 5, 6,  # left arm
    20, 8, 9, 10,  # right arm
    0, 12, 13, 14,  # left leg
    0, 16, 17, 18,  # right leg
    1,  # spine shoulder
    7, 6,  # left hand tip, left thumb
    11, 10,  # right hand tip, right thumb
)  # fmt: skip

SKELETON_TREES: dict[str, tuple[int, ...]] = {
    "ntu": NTU_PARENTS,
    "pkummd": NTU_PARENTS,
    "babel": NTU_PARENTS,
    "synthetic": NTU_PARENTS,
}
"""Trees by dataset kind; kinds not listed (``hugadb``, ``lara``) have none."""

STREAMS: tuple[str, ...] = ("joint", "bone", "motion", "bone_motion")
"""Known stream names: positions, bones, motion of positions, motion of bones."""

_CHANNEL_AXIS, _TIME_AXIS, _JOINT_AXIS = -4, -3, -2


def skeleton_tree(kind: str) -> tuple[int, ...] | None:
    """The parent table of a dataset kind (``babel1``..``babel3`` count as ``babel``)."""
    if kind.startswith("babel"):
        kind = "babel"
    return SKELETON_TREES.get(kind)


def check_parents(parents: Sequence[int], num_joints: int | None = None) -> tuple[int, ...]:
    """Validate a parent table: one root, every parent a joint, no cycles."""
    table = tuple(int(p) for p in parents)
    size = len(table)
    if num_joints is not None and size != num_joints:
        raise ConfigError(f"skeleton tree has {size} joints but the data has {num_joints}")
    roots = [v for v, p in enumerate(table) if p == -1]
    if len(roots) != 1:
        raise ConfigError(f"skeleton tree must have exactly one root (-1), found {len(roots)}")
    for joint, parent in enumerate(table):
        if parent != -1 and not 0 <= parent < size:
            raise ConfigError(f"skeleton tree: joint {joint} has parent {parent}, not a joint")
    for joint in range(size):
        seen = {joint}
        while table[joint] != -1:
            joint = table[joint]
            if joint in seen:
                raise ConfigError(f"skeleton tree has a cycle through joint {joint}")
            seen.add(joint)
    return table


def bones(x: Any, parents: Sequence[int]) -> Any:
    """Each joint minus its parent joint, per frame and person; the root's bone is zero.

    A zero root bone keeps the stream translation-free (the prepared NTU-style data is
    root-centred, so the root joint itself is zero there anyway).
    """
    table = check_parents(parents, x.shape[_JOINT_AXIS])
    source = [v if p == -1 else p for v, p in enumerate(table)]
    if _is_torch(x):
        import torch

        index = torch.as_tensor(source, device=x.device)
        return x - x.index_select(x.dim() + _JOINT_AXIS, index)
    return x - np.take(x, source, axis=_JOINT_AXIS)


def motion(x: Any) -> Any:
    """Frame-to-frame difference ``x[t] - x[t-1]``; zero at the first frame."""
    if _is_torch(x):
        import torch

        diff = torch.zeros_like(x)
        diff[..., 1:, :, :] = x[..., 1:, :, :] - x[..., :-1, :, :]
        return diff
    diff = np.zeros_like(x)
    diff[..., 1:, :, :] = np.diff(x, axis=_TIME_AXIS)
    return diff


def parse_streams(streams: str | Sequence[str]) -> list[str]:
    """``"joint+motion"`` (or ``["joint", "motion"]``) -> ``["joint", "motion"]``, checked."""
    names = streams.split("+") if isinstance(streams, str) else list(streams)
    names = [str(name).strip() for name in names]
    if not names or any(not name for name in names):
        raise ConfigError(f"streams {streams!r}: expected names joined by '+', e.g. joint+motion")
    unknown = [name for name in names if name not in STREAMS]
    if unknown:
        raise ConfigError(
            f"unknown input stream {unknown[0]!r} in {streams!r}; known streams: "
            f"{', '.join(STREAMS)}"
        )
    twice = sorted({name for name in names if names.count(name) > 1})
    if twice:
        raise ConfigError(f"streams {streams!r}: {twice[0]!r} is listed twice")
    return names


def compose_streams(
    x: Any,
    streams: str | Sequence[str] = "joint+motion",
    parents: Sequence[int] | None = None,
    dataset: str = "this dataset",
) -> Any:
    """The requested streams of ``x`` stacked along the channel axis, in the order given.

    ``x`` (..., C, T, V, M) gives (..., len(streams) x C, T, V, M). ``parents`` is the
    skeleton tree the ``bone`` streams need; ``dataset`` names the data in the error raised
    when a bone stream is asked of data without a tree.
    """
    names = parse_streams(streams)
    needs_tree = [name for name in names if name in ("bone", "bone_motion")]
    if needs_tree and parents is None:
        raise ConfigError(
            f"input stream {needs_tree[0]!r} needs a skeleton tree, and {dataset} has none "
            f"(its joints are not a skeleton, e.g. inertial sensors); use joint and motion"
        )
    parts = []
    bone_stream = None
    for name in names:
        if name == "joint":
            parts.append(x)
        elif name == "motion":
            parts.append(motion(x))
        else:
            if bone_stream is None:
                assert parents is not None
                bone_stream = bones(x, parents)
            parts.append(bone_stream if name == "bone" else motion(bone_stream))
    if _is_torch(x):
        import torch

        return torch.cat(parts, dim=x.dim() + _CHANNEL_AXIS)
    return np.concatenate(parts, axis=_CHANNEL_AXIS)


def check_streams(stream: str, kind: str, dataset: str | None = None) -> list[str]:
    """The stream names of ``stream``, checked against data of ``kind`` (a bone stream needs
    the kind's skeleton tree); the error names ``dataset``."""
    names = parse_streams(stream)
    needs_tree = [name for name in names if name in ("bone", "bone_motion")]
    if needs_tree and skeleton_tree(kind) is None:
        raise ConfigError(
            f"dataset.stream={stream}: {needs_tree[0]!r} needs a skeleton tree, and "
            f"{dataset or kind} has none (its joints are not a skeleton, e.g. inertial sensors, "
            f"or the tree is not known); use joint and motion"
        )
    return names


def apply_streams(features: Any, stream: str, kind: str, dataset: str | None = None) -> Any:
    """``features`` (..., C, T, V, M) as the input streams ``stream`` (``joint``: unchanged)
    of data of ``kind``, whose skeleton tree the bone streams use."""
    if stream == "joint":
        return features
    return compose_streams(features, stream, skeleton_tree(kind), dataset or kind)


def _is_torch(x: Any) -> bool:
    return type(x).__module__.startswith("torch")


__all__ = [
    "NTU_PARENTS",
    "SKELETON_TREES",
    "STREAMS",
    "apply_streams",
    "check_streams",
    "bones",
    "check_parents",
    "compose_streams",
    "motion",
    "parse_streams",
    "skeleton_tree",
]
