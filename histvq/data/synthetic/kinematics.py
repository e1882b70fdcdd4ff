"""Skeleton and forward kinematics: joint angles to 25 joint positions of one body.

A bone-length template of a ~1.7 m adult (scaled per sequence by :mod:`.generate`) and the
joint angles of :mod:`.motions` give joint positions in the body frame, with the spine base
at the origin; :func:`_floor_offset` keeps the lower foot on the floor, so jumps and squats
show as vertical motion of the whole body.

Coordinates are millimetres, NTU RGB+D joint order, channels (x, y, z) = (the person's left,
up, forward).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from histvq.data.synthetic.motions import _P

NUM_JOINTS = 25

# Bone lengths and offsets (mm) of a ~1.7 m adult; NTU joints are 1-based in its docs and
# 0-based here: 0 spine base, 1 spine mid, 2 neck, 3 head, 4-7 left shoulder/elbow/wrist/hand,
# 8-11 right, 12-15 left hip/knee/ankle/foot, 16-19 right, 20 spine shoulder,
# 21 left hand tip, 22 left thumb, 23 right hand tip, 24 right thumb.
_BONES: dict[str, float] = {
    "spine_low": 250.0,
    "spine_high": 230.0,
    "neck": 80.0,
    "head": 130.0,
    "shoulder_half_width": 170.0,
    "shoulder_drop": 30.0,
    "upper_arm": 290.0,
    "forearm": 250.0,
    "hand": 80.0,
    "hand_tip": 70.0,
    "thumb": 45.0,
    "hip_half_width": 85.0,
    "hip_drop": 60.0,
    "thigh": 410.0,
    "shin": 400.0,
    "foot_forward": 130.0,
    "foot_drop": 60.0,
    "ankle_height": 75.0,
}
_FOOT_HEIGHT = 15.0  # height of the NTU "foot" joint above the floor when the foot is flat


def _rot(axis: int, degrees: np.ndarray) -> np.ndarray:
    """(T, 3, 3) rotations by ``degrees`` about the x (0), y (1) or z (2) axis."""
    angle = np.deg2rad(degrees)
    c, s = np.cos(angle), np.sin(angle)
    r = np.zeros((angle.shape[0], 3, 3))
    i, j = [(1, 2), (2, 0), (0, 1)][axis]
    r[:, axis, axis] = 1.0
    r[:, i, i] = c
    r[:, j, j] = c
    r[:, i, j] = -s
    r[:, j, i] = s
    return r


def _apply(r: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Rotate a fixed vector (3,) or per-frame vectors (T, 3) by per-frame rotations (T, 3, 3)."""
    return np.einsum("tij,tj->ti", r, np.broadcast_to(v, (r.shape[0], 3)))


def _forward_kinematics(q: np.ndarray, bones: Mapping[str, float]) -> np.ndarray:
    """Joint positions (T, 25, 3) in the body frame, spine base at the origin."""
    n = q.shape[0]
    joints = np.zeros((n, NUM_JOINTS, 3))
    down = np.array([0.0, -1.0, 0.0])

    def angle(name: str) -> np.ndarray:
        return q[:, _P[name]]

    trunk = (
        _rot(1, angle("trunk_yaw")) @ _rot(0, angle("trunk_pitch")) @ _rot(2, angle("trunk_roll"))
    )
    spine_mid = _apply(trunk, np.array([0.0, bones["spine_low"], 0.0]))
    spine_shoulder = spine_mid + _apply(trunk, np.array([0.0, bones["spine_high"], 0.0]))
    neck = spine_shoulder + _apply(trunk, np.array([0.0, bones["neck"], 0.0]))
    head_rot = trunk @ _rot(0, angle("neck_pitch"))
    head = neck + _apply(head_rot, np.array([0.0, bones["head"], 0.15 * bones["head"]]))
    joints[:, 1], joints[:, 20], joints[:, 2], joints[:, 3] = spine_mid, spine_shoulder, neck, head

    for side, prefix, (sh, el, wr, ha, tip, th) in (
        (1.0, "l", (4, 5, 6, 7, 21, 22)),
        (-1.0, "r", (8, 9, 10, 11, 23, 24)),
    ):
        shoulder = spine_shoulder + _apply(
            trunk, np.array([side * bones["shoulder_half_width"], -bones["shoulder_drop"], 0.0])
        )
        upper = (
            trunk
            @ _rot(2, side * angle(f"{prefix}_sh_abd"))
            @ _rot(0, -angle(f"{prefix}_sh_flex"))
            @ _rot(1, side * angle(f"{prefix}_sh_twist"))
        )
        elbow = shoulder + bones["upper_arm"] * _apply(upper, down)
        fore = upper @ _rot(0, -angle(f"{prefix}_elbow"))
        fore_dir = _apply(fore, down)
        wrist = elbow + bones["forearm"] * fore_dir
        hand = wrist + bones["hand"] * fore_dir
        joints[:, sh], joints[:, el], joints[:, wr], joints[:, ha] = shoulder, elbow, wrist, hand
        joints[:, tip] = hand + bones["hand_tip"] * fore_dir
        thumb = np.array([-side * 0.3, -0.5, 0.8]) * bones["thumb"]
        joints[:, th] = wrist + 0.4 * bones["hand"] * fore_dir + _apply(fore, thumb)

    pelvis = _rot(1, angle("pelvis_yaw"))
    for side, prefix, (hp, kn, an, ft) in (
        (1.0, "l", (12, 13, 14, 15)),
        (-1.0, "r", (16, 17, 18, 19)),
    ):
        hip = _apply(pelvis, np.array([side * bones["hip_half_width"], -bones["hip_drop"], 0.0]))
        thigh = (
            pelvis
            @ _rot(2, side * angle(f"{prefix}_hip_abd"))
            @ _rot(0, -angle(f"{prefix}_hip_flex"))
        )
        knee = hip + bones["thigh"] * _apply(thigh, down)
        shin = thigh @ _rot(0, angle(f"{prefix}_knee"))
        ankle = knee + bones["shin"] * _apply(shin, down)
        foot_rot = shin @ _rot(0, -angle(f"{prefix}_ankle"))
        foot = ankle + _apply(foot_rot, np.array([0.0, -bones["foot_drop"], bones["foot_forward"]]))
        joints[:, hp], joints[:, kn], joints[:, an], joints[:, ft] = hip, knee, ankle, foot
    return joints


def _floor_offset(joints: np.ndarray, bones: Mapping[str, float], scale: float) -> np.ndarray:
    """Per-frame height (T,) that puts the lower foot on the floor (body frame: root at 0)."""
    ankles = joints[:, [14, 18], 1] - bones["ankle_height"]
    feet = joints[:, [15, 19], 1] - _FOOT_HEIGHT * scale
    return -np.minimum(ankles, feet).min(axis=1)
