"""NTU RGB+D ``.skeleton`` clips, concatenated into long sequences with known boundaries.

NTU RGB+D (60 actions) and NTU RGB+D 120 are trimmed clips of one action each, captured by
Kinect v2 at 30 fps. A clip is ``SsssCcccPpppRrrrAaaa.skeleton`` (setup, camera, performer,
replication, action; e.g. ``S001C001P001R001A001.skeleton`` is action 1). Its text format:

- line 1: the frame count T;
- per frame: a line with the body count B (0 when nobody is tracked), then per body a line of
  10 body values (tracking id, clipped edges, hand states, restriction, lean x, y, tracking
  state), a line with the joint count (always 25), and 25 joint lines of 12 values each whose
  first three are the camera-space x, y, z in metres (then depth/colour pixel coordinates,
  orientation quaternion, tracking state). Joints are in Kinect v2 order (0 = spine base).

One clip becomes (3, T, 25, M) float32: each body centred on its own spine base per frame and
scaled to millimetres, exactly as :mod:`histvq.data.sources.pkummd` does for PKU-MMD. Body
slot m of a frame holds the m-th body listed in that frame (tracking ids are not followed
across frames); ``bodies=2`` (default) keeps the first two, ``bodies=1`` only the first;
slots of frames with fewer bodies (including frames with none) stay zero.

Because every clip is one action, concatenating clips gives a segmentation benchmark whose
boundaries are known exactly (command ``python -m histvq.prepare ntu --concat N``):

1. the clips are the ``*.skeleton`` files of the inputs, ordered by file name (so the result
   does not depend on folder order); a name without the ``SsssCcccPpppRrrrAaaa`` pattern is
   skipped with a note;
2. a random permutation of that order, drawn by ``numpy.random.default_rng(seed)``, is cut
   into consecutive groups of N clips: group i is sequence ``concat_<i>`` (zero-padded to at
   least 5 digits). Each clip is used at most once. By default as many sequences as the clips
   fill (``floor(clips / N)``); ``sequences=K`` takes the first K groups and must not ask for
   more clips than there are. Clips no group uses are listed as skipped;
3. a sequence is its clips' frames one after the other, every frame labelled with its clip's
   action. Two neighbouring clips of the same action form one segment (their boundary
   cannot be seen in the labels), as in any concatenation of random draws;
4. a clip with zero frames, or in which no frame has a body (NTU's "samples with missing
   skeletons"), is skipped with a note and its sequence is built from its remaining clips,
   so the plan itself never depends on file contents. A sequence left with no clip is
   skipped.

The same inputs, N, seed, K and bodies always give the same files. Labels are the 120
official action names (from the dataset's README) written as lower-case tokens, e.g. action 1
``drink_water``, 120 ``finger_guessing_game_playing_rock_paper_scissors``; ``mapping.txt``
lists all 120 (NTU-60 clips use ids 1..60), K counts the ones present.

Errors (:class:`~histvq.errors.RawFormatError`, one line naming the file and line): a file
that ends early (truncated), a frame count or body count line that is not one integer
>= 0, a body line without 10 numbers, a joint count other than 25, a joint line without 12
finite numbers, content after the last frame, and an action id outside 1..120.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np

from histvq.data.sources import (
    read_text_lines,
    Discovery,
    FileGroup,
    RawSequence,
    Skipped,
    Source,
    parse_numeric_rows,
    split_inputs,
)
from histvq.errors import ConfigError, RawFormatError

JOINTS = 25
CHANNELS = 3  # x, y, z
BODY_VALUES = 10
JOINT_VALUES = 12
ROOT_JOINT = 0  # spine base
METRES_TO_MM = 1000.0
CLIP_PATTERN = "*.skeleton"
SEQUENCE_PREFIX = "concat_"

# The official action names of NTU RGB+D 120 (A1..A60 are NTU RGB+D), as the dataset's
# README lists them (github.com/shahroudy/NTURGB-D), without their final full stops and with
# plain apostrophes.
ACTION_NAMES: tuple[str, ...] = (
    "drink water", "eat meal/snack", "brushing teeth", "brushing hair", "drop", "pickup",
    "throw", "sitting down", "standing up (from sitting position)", "clapping", "reading",
    "writing", "tear up paper", "wear jacket", "take off jacket", "wear a shoe",
    "take off a shoe", "wear on glasses", "take off glasses", "put on a hat/cap",
    "take off a hat/cap", "cheer up", "hand waving", "kicking something",
    "put something inside pocket / take out something from pocket",
    "hopping (one foot jumping)", "jump up", "make a phone call/answer phone",
    "playing with phone/tablet", "typing on a keyboard", "pointing to something with finger",
    "taking a selfie", "check time (from watch)", "rub two hands together", "nod head/bow",
    "shake head", "wipe face", "salute", "put the palms together",
    "cross hands in front (say stop)", "sneeze/cough", "staggering", "falling",
    "touch head (headache)", "touch chest (stomachache/heart pain)", "touch back (backache)",
    "touch neck (neckache)", "nausea or vomiting condition",
    "use a fan (with hand or paper)/feeling warm", "punching/slapping other person",
    "kicking other person", "pushing other person", "pat on back of other person",
    "point finger at the other person", "hugging other person",
    "giving something to other person", "touch other person's pocket", "handshaking",
    "walking towards each other", "walking apart from each other",
    # NTU RGB+D 120 only
    "put on headphone", "take off headphone", "shoot at the basket", "bounce ball",
    "tennis bat swing", "juggling table tennis balls", "hush (quite)", "flick hair",
    "thumb up", "thumb down", "make ok sign", "make victory sign", "staple book",
    "counting money", "cutting nails", "cutting paper (using scissors)", "snapping fingers",
    "open bottle", "sniff (smell)", "squat down", "toss a coin", "fold paper",
    "ball up paper", "play magic cube", "apply cream on face", "apply cream on hand back",
    "put on bag", "take off bag", "put something into a bag", "take something out of a bag",
    "open a box", "move heavy objects", "shake fist", "throw up cap/hat",
    "hands up (both hands)", "cross arms", "arm circles", "arm swings",
    "running on the spot", "butt kicks (kick backward)", "cross toe touch", "side kick",
    "yawn", "stretch oneself", "blow nose", "hit other person with something",
    "wield knife towards other person", "knock over other person (hit with body)",
    "grab other person's stuff", "shoot at other person with a gun", "step on foot",
    "high-five", "cheers and drink", "carry something with other person",
    "take a photo of other person", "follow other person",
    "whisper in other person's ear", "exchange things with other person",
    "support somebody with one's hand (someone is sick, help him to walk)",
    "finger-guessing game (playing rock-paper-scissors)",
)  # fmt: skip


def label_token(name: str) -> str:
    """An action name as a label token: ``"eat meal/snack"`` -> ``"eat_meal_snack"``."""
    return re.sub(r"[^0-9a-z]+", "_", name.lower().replace("'", "")).strip("_")


ACTIONS: dict[int, str] = {i: label_token(name) for i, name in enumerate(ACTION_NAMES, start=1)}

_CLIP_NAME = re.compile(r"^S\d{3}C\d{3}P\d{3}R\d{3}A(\d{3})$")
_COUNT = re.compile(r"^\d+$")


@dataclass(frozen=True)
class NtuOptions:
    """Options of ``prepare ntu``: ``concat`` clips per sequence (required), the ``seed`` of
    the draw, ``bodies`` kept (2 or 1) and how many ``sequences`` (default: as many as the
    clips fill)."""

    concat: int | None = None
    seed: int = 0
    bodies: int = 2
    sequences: int | None = None

    def __post_init__(self) -> None:
        if self.concat is None:
            raise ConfigError("ntu needs concat: how many clips make one sequence (--concat N)")
        for key, minimum in (("concat", 1), ("seed", 0), ("sequences", 1)):
            value = getattr(self, key)
            if value is None:
                continue
            if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
                raise ConfigError(f"ntu {key} must be an integer >= {minimum}, got {value!r}")
        if isinstance(self.bodies, bool) or self.bodies not in (1, 2):
            raise ConfigError(f"ntu bodies must be 1 or 2, got {self.bodies!r}")


class Clip(NamedTuple):
    """One parsed clip: features (3, T, 25, bodies) float32 and the body count of each frame."""

    features: np.ndarray
    body_counts: np.ndarray


def action_of(path: Path) -> int | None:
    """The action id of an NTU clip file name (``...A013.skeleton`` -> 13), or None."""
    match = _CLIP_NAME.match(path.stem)
    return int(match.group(1)) if match else None


def read_ntu_clip(path: Path, bodies: int = 2) -> Clip:
    """Parse one ``.skeleton`` file (format in the module docstring)."""
    lines = read_text_lines(path)
    end = len(lines)

    def need(position: int, count: int, what: str) -> None:
        if position + count > end:
            raise RawFormatError(
                f"{path}:{end + 1}: file ends early (truncated): expected {what} after line {end}"
            )

    def count_at(position: int, what: str) -> int:
        need(position, 1, what)
        line = lines[position].strip()
        if not _COUNT.match(line):
            raise RawFormatError(
                f"{path}:{position + 1}: expected {what} (one integer >= 0), got {line[:40]!r}"
            )
        return int(line)

    num_frames = count_at(0, "the frame count")
    position = 1
    body_counts = np.zeros(num_frames, dtype=np.int64)
    body_rows: list[str] = []
    body_lines: list[int] = []
    joint_rows: list[str] = []
    joint_first_lines: list[int] = []  # 0-based line of each body's first joint line
    slots: list[tuple[int, int]] = []  # (frame, slot) of each body
    for frame in range(num_frames):
        where = f"frame {frame + 1} of {num_frames}"
        body_counts[frame] = count = count_at(position, f"the body count of {where}")
        position += 1
        for body in range(count):
            what = f"{where}, body {body + 1} of {count}"
            need(position, 1, f"the {BODY_VALUES} body values of {what}")
            body_rows.append(lines[position])
            body_lines.append(position)
            joints = count_at(position + 1, f"the joint count of {what}")
            if joints != JOINTS:
                raise RawFormatError(
                    f"{path}:{position + 2}: joint count {joints} ({what}), expected {JOINTS}"
                )
            position += 2
            need(position, JOINTS, f"{JOINTS} joint lines of {what}")
            joint_rows.extend(lines[position : position + JOINTS])
            joint_first_lines.append(position)
            slots.append((frame, body))
            position += JOINTS
    if position < end:
        raise RawFormatError(
            f"{path}:{position + 1}: unexpected content after the last frame "
            f"({num_frames} frames): {lines[position].strip()[:40]!r}"
        )

    _parse(path, body_rows, body_lines, BODY_VALUES, "body values")
    values = _parse(
        path,
        joint_rows,
        [first + j for first in joint_first_lines for j in range(JOINTS)],
        JOINT_VALUES,
        "joint values",
    )
    xyz = values[:, :CHANNELS].reshape(len(slots), JOINTS, CHANNELS)
    out = np.zeros((num_frames, bodies, JOINTS, CHANNELS), dtype=np.float64)
    keep = [i for i, (_, slot) in enumerate(slots) if slot < bodies]
    if keep:
        frames = np.array([slots[i][0] for i in keep])
        slot_ids = np.array([slots[i][1] for i in keep])
        kept = xyz[keep]
        out[frames, slot_ids] = (kept - kept[:, ROOT_JOINT : ROOT_JOINT + 1]) * METRES_TO_MM
    features = np.ascontiguousarray(out.transpose(3, 0, 2, 1), dtype=np.float32)
    return Clip(features=features, body_counts=body_counts)


def _parse(path: Path, rows: list[str], lines: list[int], columns: int, what: str) -> np.ndarray:
    """(rows, columns) float64; the first malformed row raises with its line (1-based)."""
    normalised = [" ".join(row.split()) for row in rows]
    values = parse_numeric_rows(normalised, " ", columns)
    if values is not None:
        return values
    for line, row in zip(lines, normalised, strict=True):
        tokens = row.split()
        if len(tokens) != columns:
            raise RawFormatError(
                f"{path}:{line + 1}: expected {columns} {what}, found {len(tokens)}: {row[:40]!r}"
            )
        for index, token in enumerate(tokens, start=1):
            try:
                finite = bool(np.isfinite(float(token)))
            except ValueError:
                finite = False
            if not finite:
                raise RawFormatError(
                    f"{path}:{line + 1}: value {index} of the {what} is not a finite number: "
                    f"{token!r}"
                )
    raise RawFormatError(f"{path}: could not parse the {what} as numbers")


# ----------------------------------------------------------------------------- the plan


def plan_sequences(
    clips: Sequence[Path], concat: int, seed: int = 0, sequences: int | None = None
) -> tuple[list[FileGroup], list[Path]]:
    """Draw the concatenated sequences: (groups of ``concat`` clips, clips left unused).

    Deterministic given the clip names, ``concat``, ``seed`` and ``sequences`` (see the
    module docstring).
    """
    ordered = sorted(clips, key=lambda p: (p.name, str(p)))
    available = len(ordered) // concat
    count = available if sequences is None else sequences
    if count < 1 or count > available:
        wanted = max(count, 1)
        raise ConfigError(
            f"ntu: {wanted} sequence(s) of {concat} clips need {wanted * concat} clips, but "
            f"the inputs have {len(ordered)}"
        )
    order = np.random.default_rng(seed).permutation(len(ordered)).tolist()
    width = max(5, len(str(count - 1)))
    groups = [
        FileGroup(
            f"{SEQUENCE_PREFIX}{i:0{width}d}",
            tuple(ordered[j] for j in order[i * concat : (i + 1) * concat]),
        )
        for i in range(count)
    ]
    unused = [ordered[j] for j in order[count * concat :]]
    return groups, unused


def discover(inputs: list[Path], options: NtuOptions) -> Discovery:
    """The ``*.skeleton`` clips of the inputs, drawn into groups of ``concat`` clips."""
    assert options.concat is not None
    files, others = split_inputs(inputs, CLIP_PATTERN, recursive=False)
    discovery = Discovery(mapping=dict(ACTIONS))
    discovery.skipped.extend(Skipped(p.name, "not a .skeleton file") for p in others)
    clips: list[Path] = []
    by_name: dict[str, Path] = {}
    for path in files:
        action = action_of(path)
        if action is None:
            discovery.skipped.append(Skipped(path.name, "name is not SsssCcccPpppRrrrAaaa"))
            continue
        if action not in ACTIONS:
            raise RawFormatError(
                f"{path}: action A{action:03d} is not an NTU RGB+D action (A001..A120)"
            )
        if path.name in by_name:
            raise ConfigError(
                f"{path}: clip {path.name} is also in {by_name[path.name].parent}; give each "
                f"clip once"
            )
        by_name[path.name] = path
        clips.append(path)
    if not clips:
        return discovery
    groups, unused = plan_sequences(clips, options.concat, options.seed, options.sequences)
    discovery.files.extend(groups)
    discovery.skipped.extend(Skipped(p.name, "not drawn into any sequence") for p in unused)
    return discovery


def read_group(group: FileGroup, bodies: int = 2) -> Iterator[RawSequence | Skipped]:
    """One concatenated sequence (and a skip for each unusable clip in it)."""
    features: list[np.ndarray] = []
    labels: list[str] = []
    for path in group.files:
        action = action_of(path)
        if action is None or action not in ACTIONS:
            raise RawFormatError(f"{path}: not an NTU clip name with an action A001..A120")
        clip = read_ntu_clip(path, bodies)
        if len(clip.body_counts) == 0:
            yield Skipped(path.name, "clip has no frames")
            continue
        if not clip.body_counts.any():
            yield Skipped(path.name, "no body in any frame")
            continue
        features.append(clip.features)
        labels.extend([ACTIONS[action]] * len(clip.body_counts))
    if not features:
        yield Skipped(group.name, "no usable clip (all its clips were skipped)")
        return
    yield RawSequence(name=group.name, features=np.concatenate(features, axis=1), labels=labels)


def read(group: FileGroup, options: NtuOptions) -> Iterator[RawSequence | Skipped]:
    return read_group(group, options.bodies)


SOURCE = Source(
    kind="ntu",
    description="NTU RGB+D (60/120) .skeleton clips concatenated into long sequences",
    options_type=NtuOptions,
    default_name=lambda options: "ntu",
    mapping=lambda options: dict(ACTIONS),
    discover=discover,
    read=read,
    predict_options={"concat": 1},
)
