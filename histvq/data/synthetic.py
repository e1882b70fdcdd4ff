"""The embedded default dataset: synthetic 25-joint skeleton recordings of everyday actions.

histvq must train out of the box, with no download, so the default dataset is generated on
first use from a seed. Each sequence is one person performing 3-10 actions in a row (walk,
run, jump, wave, squat, idle), each lasting 1-8 s at 30 fps, with smooth 0.7 s transitions.
Poses are produced by forward kinematics from a bone-length template, driven by parametric
joint-angle patterns, so the data look like (simplified) human motion rather than noise.

Every sequence varies in body size and proportions, tempo, facing direction, sensor noise and
slow postural drift, and every action instance in amplitude, frequency and phase: a model must
learn what a motion *is*, not memorise one trajectory.

Like real actions, each one has a characteristic posture as well as its motion: walk is
upright with the arms hanging and swinging; run leans forward on bent knees, elbows bent and
pumping; jump is a series of rebound jumps with both arms raised; wave raises the right arm
above the head; squat stays low with the arms held forward; idle stands still with the hands
clasped behind the head. Motion within an action is kept moderate next to these posture
differences because SMQ / HiST-VQ compare 1 s patches frame by frame: two patches of one
action at different phases of its cycle (left leg forward, right leg forward) must stay closer
than patches of two actions. The postures differ mostly in joint *heights* (and forward
positions), not only left-right: the learned per-joint latents of HiST-VQ turn out to be
dominated by one mostly vertical direction of each joint's position.

Coordinates are millimetres, NTU RGB+D joint order, channels (x, y, z) = (the person's left,
up, forward). Like the root-centred BABEL subsets, the spine base stays at x = z = 0; the
vertical coordinate is kept relative to the standing height of the spine base, so jumps and
squats show as vertical motion of the whole body.

The output is the SMQ-compatible layout of :mod:`histvq.data.layout` plus a
``generator.json`` holding the generator version and spec, so that
:func:`ensure_synthetic_dataset` can tell whether a folder on disk matches the requested data.
The same spec always yields byte-identical files.
"""

from __future__ import annotations

import json
import logging
import math
import os
import tempfile
from collections.abc import Callable, Iterator, Mapping
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np

from histvq.data.layout import FEATURES_DIR, LABELS_DIR, MAPPING_DIR, MAPPING_FILE, LayoutWriter
from histvq.errors import ConfigError

log = logging.getLogger(__name__)

SYNTHETIC_ACTIONS: tuple[str, ...] = ("walk", "run", "jump", "wave", "squat", "idle")
"""Label names; the mapping file gives them ids 0..n-1 in this order."""

GENERATOR_VERSION = 7
"""Bump whenever the generated data change for an unchanged spec (invalidates cached folders)."""

GENERATOR_FILE = "generator.json"
NUM_JOINTS = 25

# --------------------------------------------------------------------------------------------
# Specification
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SyntheticSpec:
    """Everything that determines the generated dataset; equal specs give identical files."""

    num_sequences: int = 40
    fps: int = 30
    min_actions: int = 3
    max_actions: int = 10
    min_seconds: float = 1.0
    max_seconds: float = 8.0
    seed: int = 0
    actions: tuple[str, ...] = SYNTHETIC_ACTIONS
    scale_range: tuple[float, float] = (0.85, 1.15)
    """Body-size factor of a sequence relative to a ~1.7 m adult."""
    speed_range: tuple[float, float] = (0.8, 1.25)
    """Tempo factor of a sequence (multiplies every action's frequency)."""
    noise_mm_range: tuple[float, float] = (2.0, 6.0)
    """Standard deviation of a sequence's per-coordinate Gaussian jitter, in millimetres."""
    max_yaw_degrees: float = 8.0
    """A sequence faces a direction drawn uniformly within +-this angle about the vertical."""
    blend_seconds: float = 0.7
    """Duration of the smooth transition between consecutive actions (label switches midway).

    Long enough that changing posture (say from a deep squat to standing with the hands behind
    the head) is no faster than the fastest motion within an action."""

    def __post_init__(self) -> None:
        def fail(message: str) -> None:
            raise ConfigError(f"synthetic dataset spec: {message}")

        for name in ("num_sequences", "fps", "min_actions", "max_actions", "seed"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int):
                fail(f"{name} must be an integer, got {value!r}")
        if self.num_sequences < 1:
            fail(f"num_sequences must be >= 1, got {self.num_sequences}")
        if self.fps < 1:
            fail(f"fps must be >= 1, got {self.fps}")
        if self.seed < 0:
            fail(f"seed must be >= 0, got {self.seed}")
        if not 1 <= self.min_actions <= self.max_actions:
            fail(
                f"need 1 <= min_actions <= max_actions, got {self.min_actions}, {self.max_actions}"
            )
        if not 0 < self.min_seconds <= self.max_seconds:
            fail(f"need 0 < min_seconds <= max_seconds, got {self.min_seconds}, {self.max_seconds}")
        if math.ceil(self.min_seconds * self.fps) > math.floor(self.max_seconds * self.fps):
            fail(f"no whole number of frames lies in [{self.min_seconds}, {self.max_seconds}] s")
        if not self.actions or len(set(self.actions)) != len(self.actions):
            fail(f"actions must be a non-empty list without repeats, got {list(self.actions)}")
        unknown = [a for a in self.actions if a not in SYNTHETIC_ACTIONS]
        if unknown:
            fail(f"unknown actions {unknown}; choose from {list(SYNTHETIC_ACTIONS)}")
        if len(self.actions) < 2 and self.max_actions > 1:
            fail("consecutive actions must differ, so more than one action is needed")
        for name in ("scale_range", "speed_range", "noise_mm_range"):
            pair = getattr(self, name)
            if len(pair) != 2 or not all(isinstance(x, int | float) for x in pair):
                fail(f"{name} must be a pair of numbers (low, high), got {pair!r}")
            low, high = pair
            if not 0 <= low <= high:
                fail(f"{name} must be (low, high) with 0 <= low <= high, got {(low, high)}")
        if self.scale_range[0] <= 0 or self.speed_range[0] <= 0:
            fail("scale_range and speed_range must be positive")
        if not 0 <= self.max_yaw_degrees <= 180:
            fail(f"max_yaw_degrees must be in [0, 180], got {self.max_yaw_degrees}")
        if not 0 <= self.blend_seconds <= self.min_seconds:
            fail(
                f"blend_seconds must be in [0, min_seconds={self.min_seconds}], "
                f"got {self.blend_seconds}"
            )

    @property
    def mapping(self) -> dict[int, str]:
        """``{id: label name}`` of the layout's mapping file."""
        return dict(enumerate(self.actions))

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (tuples as lists)."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> SyntheticSpec:
        """Build a spec from a config mapping (e.g. Hydra's), rejecting unknown keys."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ConfigError(
                f"synthetic dataset spec: unknown keys {unknown}; known keys are {sorted(known)}"
            )
        converted: dict[str, Any] = {}
        for key, value in values.items():
            if isinstance(value, str | bytes) or not hasattr(value, "__iter__"):
                converted[key] = value
            else:
                converted[key] = tuple(value)
        try:
            return cls(**converted)
        except (TypeError, ValueError) as error:
            raise ConfigError(f"synthetic dataset spec: {error}") from None


# --------------------------------------------------------------------------------------------
# Joint-angle patterns of the actions
# --------------------------------------------------------------------------------------------

_PARAMS = (
    "trunk_pitch",  # forward lean of the upper body (deg)
    "trunk_roll",  # sideways lean, positive towards the person's right (deg)
    "trunk_yaw",  # upper-body twist (deg)
    "pelvis_yaw",  # pelvis twist, carries the legs (deg)
    "neck_pitch",  # head nod forward (deg)
    "l_sh_flex",  # shoulder flexion: arm forward / up in front (deg)
    "l_sh_abd",  # shoulder abduction: arm out to the side (deg)
    "l_sh_twist",  # humeral rotation; 90 turns the elbow bend upwards when the arm is out (deg)
    "l_elbow",
    "r_sh_flex",
    "r_sh_abd",
    "r_sh_twist",
    "r_elbow",
    "l_hip_flex",  # thigh forward (deg)
    "l_hip_abd",  # thigh out to the side (deg)
    "l_knee",  # knee flexion (deg)
    "l_ankle",  # dorsiflexion, toes up (deg)
    "r_hip_flex",
    "r_hip_abd",
    "r_knee",
    "r_ankle",
    "air",  # height of the feet above the ground (mm, before body scaling)
)
_P = {name: i for i, name in enumerate(_PARAMS)}
_NUM_ANGLES = len(_PARAMS) - 1  # every parameter but "air" is an angle

_REST = np.zeros(len(_PARAMS))
for _name, _value in {
    "l_sh_abd": 7.0,
    "r_sh_abd": 7.0,
    "l_elbow": 12.0,
    "r_elbow": 12.0,
    "l_hip_abd": 3.0,
    "r_hip_abd": 3.0,
    "l_knee": 3.0,
    "r_knee": 3.0,
}.items():
    _REST[_P[_name]] = _value

_TAU = 2.0 * math.pi

ActionPattern = Callable[[np.ndarray, np.random.Generator, float], np.ndarray]


def _rest(t: np.ndarray) -> np.ndarray:
    return np.tile(_REST, (t.shape[0], 1))


def _peak(x: np.ndarray, sharpness: float) -> np.ndarray:
    """A smooth periodic bump in [0, 1], maximal at x = 0 (mod 2 pi)."""
    return ((1.0 + np.cos(x)) / 2.0) ** sharpness


def _bump(phase: np.ndarray, centre: float, width: float) -> np.ndarray:
    """Raised cosine of half-width ``width`` around ``centre`` on the unit circle of ``phase``."""
    d = np.mod(phase - centre + 0.5, 1.0) - 0.5
    return np.where(np.abs(d) < width, 0.5 * (1.0 + np.cos(np.pi * d / width)), 0.0)


def _cycle(t: np.ndarray, rng: np.random.Generator, speed: float, period: float) -> np.ndarray:
    """Phase angle of a periodic action: tempo and start phase vary per instance."""
    frequency = speed * rng.uniform(0.93, 1.07) / period
    return _TAU * frequency * t + rng.uniform(0.0, _TAU)


def _set(q: np.ndarray, **values: np.ndarray | float) -> None:
    for name, value in values.items():
        q[:, _P[name]] = value


def _walk(t: np.ndarray, rng: np.random.Generator, speed: float) -> np.ndarray:
    """Upright walking in place: alternating leg swing, relaxed arms hanging and swinging."""
    q, a = _rest(t), rng.uniform(0.85, 1.15)
    phi = _cycle(t, rng, speed, period=1.1)
    s = np.sin(phi)
    _set(
        q,
        r_hip_flex=4 + 16 * a * s,
        l_hip_flex=4 - 16 * a * s,
        r_knee=6 + 42 * a * _peak(phi + 0.2 * np.pi, 2),
        l_knee=6 + 42 * a * _peak(phi + 1.2 * np.pi, 2),
        r_ankle=6 * np.sin(phi + 0.5),
        l_ankle=6 * np.sin(phi + np.pi + 0.5),
        r_sh_flex=2 - 14 * a * s,
        l_sh_flex=2 + 14 * a * s,
        r_elbow=14 + 8 * a * np.maximum(-s, 0),
        l_elbow=14 + 8 * a * np.maximum(s, 0),
        pelvis_yaw=5 * a * s,
        trunk_yaw=-3 * a * s,
        trunk_roll=2 * np.cos(phi),
        trunk_pitch=2 + 1.5 * np.cos(2 * phi),
    )
    return q


def _run(t: np.ndarray, rng: np.random.Generator, speed: float) -> np.ndarray:
    """Running in place: trunk leaned forward, knees bent and high, elbows bent and pumping."""
    q, a = _rest(t), rng.uniform(0.85, 1.15)
    phi = _cycle(t, rng, speed, period=0.7)
    s = np.sin(phi)
    _set(
        q,
        r_hip_flex=30 + 18 * a * s,
        l_hip_flex=30 - 18 * a * s,
        r_knee=55 + 45 * a * _peak(phi + 0.25 * np.pi, 2),
        l_knee=55 + 45 * a * _peak(phi + 1.25 * np.pi, 2),
        r_ankle=10 * np.sin(phi + 0.8),
        l_ankle=10 * np.sin(phi + np.pi + 0.8),
        r_sh_flex=15 - 16 * a * s,
        l_sh_flex=15 + 16 * a * s,
        r_sh_abd=14.0,
        l_sh_abd=14.0,
        r_sh_twist=-15.0,
        l_sh_twist=-15.0,
        r_elbow=95 + 8 * s,
        l_elbow=95 - 8 * s,
        pelvis_yaw=8 * a * s,
        trunk_yaw=-6 * a * s,
        trunk_pitch=rng.uniform(15, 19) + 2 * np.cos(2 * phi),
        neck_pitch=-10.0,
        air=40 * a * _peak(2 * phi - 0.5 * np.pi, 3),
    )
    return q


def _jump(t: np.ndarray, rng: np.random.Generator, speed: float) -> np.ndarray:
    """Rebound jumps reaching up with both arms (as in cheering or a volleyball block).

    A short crouch on each landing, a flight of about 0.4 s; the arms stay raised and stretch
    further up in the air.
    """
    q, a = _rest(t), rng.uniform(0.85, 1.15)
    phase = np.mod(_cycle(t, rng, speed, period=0.8) / _TAU, 1.0)
    crouch = _bump(phase, 0.2, 0.2)
    flight_x = np.clip((phase - 0.45) / 0.5, 0.0, 1.0)
    flight = 4 * flight_x * (1 - flight_x)
    arms = rng.uniform(135, 150) - 25 * crouch + 20 * flight
    knees = 10 + 40 * a * crouch + 12 * np.sin(np.pi * flight_x)
    hips = 8 + 30 * a * crouch + 6 * flight
    _set(
        q,
        r_hip_flex=hips,
        l_hip_flex=hips,
        r_knee=knees,
        l_knee=knees,
        r_ankle=12 * crouch - 25 * flight,
        l_ankle=12 * crouch - 25 * flight,
        trunk_pitch=4 + 12 * a * crouch,
        neck_pitch=-8.0,
        r_sh_flex=arms,
        l_sh_flex=arms,
        r_sh_abd=-20.0,
        l_sh_abd=-20.0,
        r_elbow=30 + 20 * crouch - 15 * flight,
        l_elbow=30 + 20 * crouch - 15 * flight,
        air=110 * a * flight,
    )
    return q


def _squat(t: np.ndarray, rng: np.random.Generator, speed: float) -> np.ndarray:
    """Squat pulses: the body stays low, bobbing near full depth, arms held forward."""
    q, a = _rest(t), rng.uniform(0.92, 1.05)
    phi = _cycle(t, rng, speed, period=1.3)
    depth = a * (0.7 + 0.3 * (1 - np.cos(phi)) / 2)
    arms = rng.uniform(80, 95) + 5 * depth
    _set(
        q,
        r_hip_flex=5 + 95 * depth,
        l_hip_flex=5 + 95 * depth,
        r_knee=5 + 115 * depth,
        l_knee=5 + 115 * depth,
        r_hip_abd=5 + 12 * depth,
        l_hip_abd=5 + 12 * depth,
        r_ankle=20 * depth,
        l_ankle=20 * depth,
        trunk_pitch=4 + 35 * depth,
        neck_pitch=-25 * depth,
        r_sh_flex=arms,
        l_sh_flex=arms,
        r_sh_abd=5.0,
        l_sh_abd=5.0,
        r_elbow=12.0,
        l_elbow=12.0,
    )
    return q


def _standing(t: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Standing still: slow weight shifts, breathing and a little head motion."""
    q = _rest(t)
    sway = _TAU * rng.uniform(0.15, 0.3) * t + rng.uniform(0.0, _TAU)
    shift = rng.uniform(1.5, 3.0) * np.sin(sway)
    _set(
        q,
        trunk_roll=shift,
        r_hip_abd=3 + shift,
        l_hip_abd=3 - shift,
        trunk_pitch=1.5 * np.sin(_TAU * rng.uniform(0.2, 0.35) * t + rng.uniform(0.0, _TAU)),
        neck_pitch=rng.uniform(-5, 10) + 3 * np.sin(_TAU * 0.1 * t + rng.uniform(0.0, _TAU)),
        r_knee=3 + rng.uniform(0.0, 6.0),
        l_knee=3 + rng.uniform(0.0, 6.0),
    )
    return q


def _idle(t: np.ndarray, rng: np.random.Generator, speed: float) -> np.ndarray:
    """Standing at rest, nearly still, hands clasped behind the head and elbows out.

    (Arms crossed in front of the chest would be the other common rest pose, but at the
    height of running's pumping hands it is hard to tell from running frame by frame.)
    """
    q = _standing(t, rng)
    breath = 3 * np.sin(_TAU * rng.uniform(0.2, 0.3) * t + rng.uniform(0.0, _TAU))
    _set(
        q,
        l_sh_flex=rng.uniform(-15, -5),
        r_sh_flex=rng.uniform(-15, -5),
        l_sh_abd=rng.uniform(120, 130) + breath,
        r_sh_abd=rng.uniform(120, 130) + breath,
        l_sh_twist=100.0,
        r_sh_twist=100.0,
        l_elbow=rng.uniform(140, 148),
        r_elbow=rng.uniform(140, 148),
    )
    return q


def _wave(t: np.ndarray, rng: np.random.Generator, speed: float) -> np.ndarray:
    """Standing, the right arm raised above the head waving side to side, the left arm down."""
    q, a = _standing(t, rng), rng.uniform(0.85, 1.15)
    phi = _TAU * speed * rng.uniform(1.7, 2.3) * t + rng.uniform(0.0, _TAU)
    _set(
        q,
        r_sh_abd=rng.uniform(130, 145) + 5 * np.sin(phi - 0.6),
        r_sh_flex=rng.uniform(5, 20),
        r_sh_twist=85.0,
        r_elbow=40 + 28 * a * np.sin(phi),
    )
    q[:, _P["trunk_roll"]] -= 3.0
    return q


_ACTION_PATTERNS: dict[str, ActionPattern] = {
    "walk": _walk,
    "run": _run,
    "jump": _jump,
    "wave": _wave,
    "squat": _squat,
    "idle": _idle,
}
assert tuple(_ACTION_PATTERNS) == SYNTHETIC_ACTIONS

# --------------------------------------------------------------------------------------------
# Skeleton and forward kinematics
# --------------------------------------------------------------------------------------------

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
    spec: SyntheticSpec = SyntheticSpec(), name: str = "synthetic"
) -> Iterator[tuple[str, np.ndarray, list[str]]]:
    """Yield ``(sequence name, features (3, T, 25, 1), frame labels)`` for every sequence."""
    for index in range(spec.num_sequences):
        features, labels = generate_sequence(spec, index)
        yield sequence_name(index, name), features, labels


# --------------------------------------------------------------------------------------------
# On disk
# --------------------------------------------------------------------------------------------


def _generator_record(spec: SyntheticSpec) -> dict[str, Any]:
    return {"generator": __name__, "version": GENERATOR_VERSION, "spec": spec.to_dict()}


def write_synthetic_dataset(
    root: str | os.PathLike[str], name: str = "synthetic", spec: SyntheticSpec = SyntheticSpec()
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
    root: str | os.PathLike[str], name: str = "synthetic", spec: SyntheticSpec = SyntheticSpec()
) -> Path:
    """Return ``<root>/<name>``, generating it first unless it already matches ``spec``."""
    folder = Path(root).expanduser() / name
    reason = _mismatch(folder, spec)
    if reason is None:
        log.info("reusing synthetic dataset %s", folder)
        return folder
    log.info("generating synthetic dataset %s: %s", folder, reason)
    return write_synthetic_dataset(root, name, spec)
