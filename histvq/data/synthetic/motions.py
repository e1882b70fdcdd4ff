"""Joint-angle patterns of the six synthetic actions: what each action looks like over time.

A pattern maps time (s, from the start of the action), a random generator and the
sequence's tempo to a (T, len(_PARAMS)) array of joint angles in degrees (plus the height of
the feet above the ground), which :mod:`.kinematics` turns into joint positions. Amplitude,
frequency and phase are drawn per action instance, so no two instances are the same.

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

Every random draw here is part of the generated data: changing the order or number of draws
changes the output and needs a new ``GENERATOR_VERSION`` (see :mod:`.generate`).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from histvq.data.synthetic.spec import SYNTHETIC_ACTIONS

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
