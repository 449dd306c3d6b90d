"""Synthetic walkers: who a subject is (shape, gait, clothes) and what one recording changes.

Identity must be recoverable from gait and shape but not trivially: every parameter is drawn from
a realistic, overlapping distribution (height N(1.70, 0.08) m, cadence N(1.85, 0.09) steps/s, ...),
so two subjects differ as subtly as two real people do. A recording (``SequenceParams``) adds what
changes between walks of one person: a bag (bg), a coat (cl), brightness, small speed changes.
"""
from __future__ import annotations

import re
from dataclasses import asdict, dataclass

import numpy as np

from pipeline.errors import InputError

# Materials: indices into a sequence's colour table (see ``sequence_colours``).
SKIN, HAIR, SHIRT, TROUSERS, SHOES, BAG, COAT = range(7)
N_MATERIALS = 7

FPS = 25.0  # CASIA-B's frame rate
CONDITION_RE = re.compile(r"^(nm|bg|cl)-(\d{2})$")

# Clothing palettes (RGB, 0..1): plausible garments, none exactly matching the muted backgrounds.
SHIRT_PALETTE = np.array(
    [[0.85, 0.15, 0.15], [0.15, 0.30, 0.75], [0.95, 0.95, 0.92], [0.10, 0.10, 0.12], [0.20, 0.55, 0.25],
     [0.95, 0.75, 0.10], [0.55, 0.20, 0.55], [0.95, 0.50, 0.15], [0.30, 0.70, 0.80], [0.60, 0.10, 0.20]]
)
TROUSER_PALETTE = np.array(
    [[0.08, 0.10, 0.25], [0.10, 0.10, 0.10], [0.20, 0.25, 0.45], [0.35, 0.22, 0.12], [0.15, 0.18, 0.15],
     [0.55, 0.10, 0.10], [0.05, 0.25, 0.30]]
)
COAT_PALETTE = np.array(
    [[0.05, 0.05, 0.08], [0.30, 0.15, 0.08], [0.10, 0.20, 0.10], [0.60, 0.05, 0.10], [0.08, 0.12, 0.35],
     [0.85, 0.85, 0.80]]
)
SKIN_TONES = np.array([[0.95, 0.80, 0.68], [0.85, 0.65, 0.50], [0.65, 0.45, 0.32], [0.40, 0.26, 0.18]])


@dataclass(frozen=True)
class SubjectParams:
    """One synthetic person: body shape, gait style and clothing (SI units, radians).

    ``key`` is a per-subject integer that seeds the subject's sequence-level noise, so the same
    subject renders the same way whatever else is in the data set.
    """

    key: int
    # --- shape
    height: float  # m, floor to top of head
    leg_ratio: float  # hip-joint height / height (~0.53)
    shoulder_width: float  # m, outer shoulder breadth
    hip_width: float  # m, outer hip breadth
    chest_depth: float  # m, front-to-back body thickness at the chest
    belly_depth: float  # m, front-to-back thickness at the waist
    girth: float  # limb thickness scale (1 = average)
    head_scale: float  # head size scale (1 = average)
    arm_ratio: float  # shoulder-to-wrist length / height (~0.33)
    # --- gait
    cadence: float  # steps per second
    step_length: float  # m per step (a stride is two steps)
    hip_amp: float  # hip flexion amplitude around the mean
    hip_offset: float  # mean hip flexion
    knee_amp: float  # peak knee flexion in swing
    knee_stance: float  # knee flexion at loading response
    arm_swing: float  # shoulder flexion amplitude
    elbow_bend: float  # resting elbow flexion
    bounce: float  # m, extra vertical oscillation of the body (twice per stride)
    lean: float  # forward trunk lean
    phase: float  # arm-swing phase lag behind the legs (the start phase is drawn per sequence)
    pelvis_yaw: float  # pelvis rotation amplitude about the vertical
    sway: float  # m, lateral sway amplitude
    arm_abduction: float  # how far the arms hang out from the trunk
    # --- looks (RGB 0..1)
    skin: tuple[float, float, float] = (0.9, 0.75, 0.6)
    hair: tuple[float, float, float] = (0.1, 0.07, 0.05)
    shirt: tuple[float, float, float] = (0.2, 0.3, 0.7)
    trousers: tuple[float, float, float] = (0.1, 0.1, 0.2)
    shoes: tuple[float, float, float] = (0.1, 0.1, 0.1)
    coat: tuple[float, float, float] = (0.1, 0.1, 0.1)
    bag: tuple[float, float, float] = (0.3, 0.2, 0.1)

    @property
    def speed(self) -> float:
        """Walking speed in m/s: cadence x step length."""
        return self.cadence * self.step_length

    def to_dict(self) -> dict:
        return asdict(self)


def _normal(rng: np.random.Generator, mean: float, sd: float, lo: float, hi: float) -> float:
    """A normal draw clipped to a plausible range (no negative limbs, no 3 m people)."""
    return float(np.clip(rng.normal(mean, sd), lo, hi))


def _colour(rng: np.random.Generator, palette: np.ndarray, jitter: float = 0.06) -> tuple[float, float, float]:
    base = palette[rng.integers(len(palette))]
    return tuple(float(c) for c in np.clip(base + rng.normal(0, jitter, 3), 0.02, 0.98))


def sample_subject(rng: np.random.Generator) -> SubjectParams:
    """Draw one subject; shape and gait parameters are correlated the way they are in people."""
    d = np.deg2rad
    height = _normal(rng, 1.70, 0.08, 1.45, 1.98)
    size = height / 1.70
    girth = _normal(rng, 1.0, 0.09, 0.75, 1.35)
    cadence = _normal(rng, 1.85, 0.09, 1.55, 2.15)
    # Taller people take longer steps; faster cadence goes with slightly longer steps; wider hip swing too.
    stride_drive = _normal(rng, 1.0, 0.055, 0.83, 1.17) * (1 + 0.25 * (cadence - 1.85))
    return SubjectParams(
        key=int(rng.integers(2**62)),
        height=height,
        leg_ratio=_normal(rng, 0.53, 0.012, 0.49, 0.57),
        shoulder_width=size * _normal(rng, 0.43, 0.025, 0.36, 0.51) * (0.85 + 0.15 * girth),
        hip_width=size * _normal(rng, 0.34, 0.02, 0.28, 0.41) * (0.8 + 0.2 * girth),
        chest_depth=size * _normal(rng, 0.23, 0.018, 0.18, 0.30) * (0.7 + 0.3 * girth),
        belly_depth=size * _normal(rng, 0.21, 0.022, 0.16, 0.32) * (0.55 + 0.45 * girth),
        girth=girth,
        head_scale=_normal(rng, 1.0, 0.04, 0.88, 1.12),
        arm_ratio=_normal(rng, 0.335, 0.01, 0.30, 0.37),
        cadence=cadence,
        step_length=height * 0.41 * stride_drive,
        hip_amp=d(_normal(rng, 24.0, 2.0, 18.0, 30.0)) * stride_drive,
        hip_offset=d(_normal(rng, 8.0, 2.5, 1.0, 15.0)),
        knee_amp=d(_normal(rng, 60.0, 4.5, 48.0, 72.0)),
        knee_stance=d(_normal(rng, 14.0, 4.0, 4.0, 25.0)),
        arm_swing=d(_normal(rng, 18.0, 5.0, 5.0, 32.0)),
        elbow_bend=d(_normal(rng, 18.0, 6.0, 4.0, 40.0)),
        bounce=_normal(rng, 0.012, 0.004, 0.0, 0.025),
        lean=d(_normal(rng, 4.0, 2.0, -2.0, 10.0)),
        phase=d(_normal(rng, 10.0, 8.0, -15.0, 35.0)),
        pelvis_yaw=d(_normal(rng, 5.0, 1.5, 1.0, 9.0)),
        sway=_normal(rng, 0.025, 0.006, 0.01, 0.045),
        arm_abduction=d(_normal(rng, 8.0, 2.0, 3.0, 14.0)),
        skin=_colour(rng, SKIN_TONES, 0.04),
        hair=_colour(rng, np.array([[0.08, 0.06, 0.05], [0.35, 0.22, 0.12], [0.75, 0.62, 0.35]]), 0.03),
        shirt=_colour(rng, SHIRT_PALETTE),
        trousers=_colour(rng, TROUSER_PALETTE, 0.04),
        shoes=_colour(rng, np.array([[0.08, 0.08, 0.08], [0.9, 0.9, 0.9], [0.35, 0.2, 0.1]]), 0.03),
        coat=_colour(rng, COAT_PALETTE, 0.04),
        bag=_colour(rng, np.array([[0.1, 0.1, 0.1], [0.45, 0.25, 0.1], [0.1, 0.2, 0.5], [0.7, 0.1, 0.1]]), 0.04),
    )


@dataclass(frozen=True)
class SequenceParams:
    """What differs between two recordings of one subject: small noise, plus bag or coat."""

    kind: str  # "nm", "bg" or "cl"
    start_phase: float  # gait phase at frame 0 (0 = right heel strike)
    start_offset: float  # m along the path
    lateral_offset: float  # m across the path
    heading_jitter: float  # rad, small deviation of the walking direction
    speed_jitter: float  # factor on cadence and step length
    brightness: float  # factor on clothing albedo (lighting / wash)
    arm_jitter: float = 1.0  # factor on the arm swing of this walk
    lean_jitter: float = 0.0  # rad added to the trunk lean of this walk
    bag: str = "none"  # "none", "backpack", "shoulder-left", "shoulder-right"
    coat: bool = False

    def to_dict(self) -> dict:
        return asdict(self)


def parse_condition(condition: str) -> tuple[str, int]:
    """``"bg-02"`` -> ``("bg", 2)``; anything else is a clear error."""
    match = CONDITION_RE.match(condition)
    if not match:
        raise InputError(f"condition {condition!r} is not nm-NN, bg-NN or cl-NN (e.g. nm-01)")
    return match.group(1), int(match.group(2))


def sample_sequence(condition: str, rng: np.random.Generator) -> SequenceParams:
    """Per-recording noise; ``bg`` adds a bag (backpack or shoulder bag), ``cl`` a coat."""
    kind, _ = parse_condition(condition)
    bag = "none"
    if kind == "bg":
        bag = ["backpack", "shoulder-left", "shoulder-right"][int(rng.integers(3))]
    return SequenceParams(
        kind=kind,
        start_phase=float(rng.uniform(0, 2 * np.pi)),
        start_offset=float(rng.normal(0, 0.15)),
        lateral_offset=float(rng.normal(0, 0.08)),
        heading_jitter=float(np.deg2rad(rng.normal(0, 1.5))),
        speed_jitter=float(np.clip(rng.normal(1.0, 0.02), 0.95, 1.05)),
        brightness=float(np.clip(rng.normal(1.0, 0.05), 0.88, 1.12)),
        arm_jitter=float(np.clip(rng.normal(1.0, 0.08), 0.8, 1.2)),
        lean_jitter=float(np.deg2rad(rng.normal(0, 0.7))),
        bag=bag,
        coat=kind == "cl",
    )


def sequence_colours(subject: SubjectParams, seq: SequenceParams) -> np.ndarray:
    """Albedo table [N_MATERIALS, 3] for this recording (clothes scaled by its brightness)."""
    table = np.array(
        [subject.skin, subject.hair, subject.shirt, subject.trousers, subject.shoes, subject.bag, subject.coat]
    )
    table[[SHIRT, TROUSERS, COAT, BAG]] *= seq.brightness
    return np.clip(table, 0.0, 1.0)
