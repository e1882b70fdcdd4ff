"""What the synthetic dataset is made of: :class:`SyntheticSpec`, validated on construction.

Everything that determines the generated data lives in one frozen dataclass, so equal specs
give byte-identical files and a spec written next to the data (``generator.json``, see
:mod:`.generate`) tells whether a folder on disk can be reused. The spec is checked as it is
built, so a bad setting fails as one :class:`~histvq.errors.ConfigError` before anything is
generated.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from typing import Any

from histvq.errors import ConfigError

SYNTHETIC_ACTIONS: tuple[str, ...] = ("walk", "run", "jump", "wave", "squat", "idle")
"""Label names; the mapping file gives them ids 0..n-1 in this order."""

_SEQUENCE_FIELDS = ("actions", "scale_range", "speed_range", "noise_mm_range")
"""Tuple-valued fields: any other iterable given for them (a list, an OmegaConf ListConfig)
is stored as a tuple, so specs compare, hash and serialise the same however they were made."""


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
        for name in _SEQUENCE_FIELDS:
            value = getattr(self, name)
            if not isinstance(value, tuple | str | bytes) and hasattr(value, "__iter__"):
                object.__setattr__(self, name, tuple(value))

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
