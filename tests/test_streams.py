"""Skeleton trees and input streams: bones, motion and their channel stacking, checked by hand."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from histvq.data.streams import (
    NTU_PARENTS,
    bones,
    check_parents,
    compose_streams,
    motion,
    parse_streams,
    skeleton_tree,
)
from histvq.errors import ConfigError

CHAIN = (-1, 0, 1)  # root -> joint 1 -> joint 2


def _chain() -> np.ndarray:
    """(C=2, T=2, V=3, M=1): joint positions of a 3-joint chain in two frames."""
    x = np.zeros((2, 2, 3, 1), dtype=np.float32)
    x[:, 0, :, 0] = [[1.0, 3.0, 6.0], [0.0, 2.0, 2.0]]  # frame 0: (1,0) (3,2) (6,2)
    x[:, 1, :, 0] = [[1.0, 4.0, 4.0], [1.0, 1.0, 5.0]]  # frame 1: (1,1) (4,1) (4,5)
    return x


def test_bones_of_a_three_joint_chain() -> None:
    b = bones(_chain(), CHAIN)
    assert b.shape == (2, 2, 3, 1) and b.dtype == np.float32
    assert b[:, 0, :, 0].tolist() == [[0.0, 2.0, 3.0], [0.0, 2.0, 0.0]]  # root bone is zero
    assert b[:, 1, :, 0].tolist() == [[0.0, 3.0, 0.0], [0.0, 0.0, 4.0]]


def test_bones_follow_the_parent_table_not_the_joint_order() -> None:
    x = _chain()
    reordered = bones(x[:, :, [2, 0, 1]], (2, -1, 1))  # same chain, joints stored 2, 0, 1
    np.testing.assert_array_equal(reordered, bones(x, CHAIN)[:, :, [2, 0, 1]])


def test_motion_of_a_constant_skeleton_is_zero_and_of_a_moving_one_exact() -> None:
    still = np.repeat(_chain()[:, :1], 5, axis=1)
    assert np.count_nonzero(motion(still)) == 0
    m = motion(_chain())
    assert m[:, 0, :, 0].tolist() == [[0.0, 0.0, 0.0], [0.0, 0.0, 0.0]]  # first frame
    assert m[:, 1, :, 0].tolist() == [[0.0, 1.0, -2.0], [1.0, -1.0, 3.0]]


def test_streams_stack_in_the_order_given() -> None:
    x = _chain()
    out = compose_streams(x, "motion+joint+bone", parents=CHAIN)
    assert out.shape == (6, 2, 3, 1)
    np.testing.assert_array_equal(out[0:2], motion(x))
    np.testing.assert_array_equal(out[2:4], x)
    np.testing.assert_array_equal(out[4:6], bones(x, CHAIN))
    assert out[:, 1, 2, 0].tolist() == [-2.0, 3.0, 4.0, 5.0, 0.0, 4.0]
    default = compose_streams(x)  # joint+motion
    assert default[:, 1, 1, 0].tolist() == [4.0, 1.0, 1.0, -1.0]
    bone_motion = compose_streams(x, ["bone_motion"], parents=CHAIN)
    assert bone_motion[:, 1, 2, 0].tolist() == [-3.0, 4.0]  # bone (0, 4) minus bone (3, 0)


def test_torch_batches_match_numpy() -> None:
    x = np.stack([_chain(), _chain() * 2])  # (N=2, C, T, V, M)
    out = compose_streams(torch.from_numpy(x), "joint+bone+motion", parents=CHAIN)
    assert isinstance(out, torch.Tensor) and out.shape == (2, 6, 2, 3, 1)
    for n in range(2):
        expected = compose_streams(x[n], "joint+bone+motion", parents=CHAIN)
        np.testing.assert_array_equal(out[n].numpy(), expected)


def test_ntu_tree() -> None:
    assert check_parents(NTU_PARENTS, 25) == NTU_PARENTS
    assert NTU_PARENTS[0] == -1
    # neck -> spine shoulder -> spine mid -> spine base; hand tip -> hand; thumb -> wrist
    assert (NTU_PARENTS[2], NTU_PARENTS[20], NTU_PARENTS[1]) == (20, 1, 0)
    assert (NTU_PARENTS[21], NTU_PARENTS[22], NTU_PARENTS[23], NTU_PARENTS[24]) == (7, 6, 11, 10)
    assert (NTU_PARENTS[12], NTU_PARENTS[16], NTU_PARENTS[15], NTU_PARENTS[19]) == (0, 0, 14, 18)
    for kind in ("ntu", "pkummd", "babel2", "synthetic"):
        assert skeleton_tree(kind) == NTU_PARENTS
    assert skeleton_tree("hugadb") is None and skeleton_tree("lara") is None


def test_unknown_stream_and_bone_without_tree_are_config_errors() -> None:
    x = _chain()
    with pytest.raises(ConfigError) as caught:
        compose_streams(x, "joint+velocity")
    assert str(caught.value) == (
        "unknown input stream 'velocity' in 'joint+velocity'; known streams: joint, bone, "
        "motion, bone_motion"
    )
    hugadb = np.zeros((6, 4, 6, 1), dtype=np.float32)
    with pytest.raises(ConfigError) as caught:
        compose_streams(hugadb, "joint+bone", parents=skeleton_tree("hugadb"), dataset="hugadb")
    assert str(caught.value).startswith("input stream 'bone' needs a skeleton tree, and hugadb ")
    with pytest.raises(ConfigError, match=r"'joint' is listed twice"):
        parse_streams("joint+motion+joint")
    with pytest.raises(ConfigError, match=r"expected names joined by '\+'"):
        parse_streams("joint++motion")
    with pytest.raises(ConfigError, match=r"skeleton tree has 3 joints but the data has 25"):
        bones(np.zeros((3, 2, 25, 1)), CHAIN)
    with pytest.raises(ConfigError, match=r"exactly one root"):
        check_parents((-1, -1, 0))
    with pytest.raises(ConfigError, match=r"cycle"):
        check_parents((-1, 2, 1))
    with pytest.raises(ConfigError, match=r"joint 1 has parent 7"):
        check_parents((-1, 7))
