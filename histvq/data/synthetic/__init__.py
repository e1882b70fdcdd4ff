"""The embedded default dataset: synthetic 25-joint skeleton recordings of everyday actions.

histvq must train out of the box, with no download, so the default dataset is generated on
first use from a seed. Each sequence is one person performing 3-10 actions in a row (walk,
run, jump, wave, squat, idle), each lasting 1-8 s at 30 fps, with smooth 0.7 s transitions.
Poses are produced by forward kinematics from a bone-length template, driven by parametric
joint-angle patterns, so the data look like (simplified) human motion rather than noise.

Every sequence varies in body size and proportions, tempo, facing direction, sensor noise and
slow postural drift, and every action instance in amplitude, frequency and phase: a model must
learn what a motion *is*, not memorise one trajectory.

Like real actions, each one has a characteristic posture as well as its motion, and motion
within an action stays moderate next to the posture differences, so that 1 s patches of one
action stay closer than patches of two actions (see :mod:`.motions`).

Coordinates are millimetres, NTU RGB+D joint order, channels (x, y, z) = (the person's left,
up, forward). Like the root-centred BABEL subsets, the spine base stays at x = z = 0; the
vertical coordinate is kept relative to the standing height of the spine base, so jumps and
squats show as vertical motion of the whole body.

The output is the SMQ-compatible layout of :mod:`histvq.data.layout` plus a
``generator.json`` holding the generator version and spec, so that
:func:`ensure_synthetic_dataset` can tell whether a folder on disk matches the requested data.
The same spec always yields byte-identical files.

The package is split by job: :mod:`.spec` (what to generate, validated), :mod:`.motions`
(the actions' joint-angle patterns), :mod:`.kinematics` (skeleton and forward kinematics)
and :mod:`.generate` (sequences, datasets, the folder on disk). Every public name is
re-exported here.
"""

from __future__ import annotations

from histvq.data.synthetic.generate import (
    GENERATOR_FILE,
    GENERATOR_NAME,
    GENERATOR_VERSION,
    ensure_synthetic_dataset,
    generate_dataset,
    generate_sequence,
    sequence_name,
    write_synthetic_dataset,
)
from histvq.data.synthetic.kinematics import NUM_JOINTS
from histvq.data.synthetic.motions import ActionPattern
from histvq.data.synthetic.spec import SYNTHETIC_ACTIONS, SyntheticSpec

__all__ = [
    "GENERATOR_FILE",
    "GENERATOR_NAME",
    "GENERATOR_VERSION",
    "NUM_JOINTS",
    "SYNTHETIC_ACTIONS",
    "ActionPattern",
    "SyntheticSpec",
    "ensure_synthetic_dataset",
    "generate_dataset",
    "generate_sequence",
    "sequence_name",
    "write_synthetic_dataset",
]
