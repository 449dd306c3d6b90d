"""Synthetic walkers: where a subject's body parts are in every frame of a recording.

The body is a set of 3-D primitives (capsules for limbs, ellipsoids for trunk, head, feet and bags)
built in a body frame (x forward along the walk, y to the subject's left, z up, ground at z = 0) and
then placed on a straight walking path in the world. Everything is vectorised over the frames of a
sequence. Who the subject is comes from ``pipeline.synthetic.people``.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

from pipeline.synthetic.people import BAG, COAT, FPS, HAIR, SHIRT, SHOES, SKIN, TROUSERS, SequenceParams, SubjectParams


@dataclass
class Shapes:
    """Primitives of one sequence, per frame, in one coordinate frame.

    Capsules: segment ``cap_a`` -> ``cap_b`` [T, Nc, 3] with radius ``cap_r`` [Nc].
    Ellipsoids: centre ``ell_c`` [T, Ne, 3], orientation ``ell_R`` [T, Ne, 3, 3] (columns are the
    local axes) and semi-axes ``ell_s`` [Ne, 3]. ``*_mat`` are material indices.
    ``joints`` maps a joint name to its position [T, 3], for tests and analysis.
    """

    cap_a: np.ndarray
    cap_b: np.ndarray
    cap_r: np.ndarray
    cap_mat: np.ndarray
    ell_c: np.ndarray
    ell_R: np.ndarray
    ell_s: np.ndarray
    ell_mat: np.ndarray
    joints: dict[str, np.ndarray] = field(default_factory=dict)

    def transformed(self, R: np.ndarray, t: np.ndarray) -> Shapes:
        """Apply p -> R p + t, with R [T, 3, 3] (or [3, 3]) and t [T, 3] (or [3])."""
        R = np.broadcast_to(R, (self.cap_a.shape[0], 3, 3))
        t = np.broadcast_to(t, (self.cap_a.shape[0], 3))

        def points(p: np.ndarray) -> np.ndarray:  # [T, N, 3] -> [T, N, 3]
            return np.einsum("tij,tnj->tni", R, p) + t[:, None, :]

        return Shapes(
            cap_a=points(self.cap_a),
            cap_b=points(self.cap_b),
            cap_r=self.cap_r,
            cap_mat=self.cap_mat,
            ell_c=points(self.ell_c),
            ell_R=np.einsum("tij,tnjk->tnik", R, self.ell_R),
            ell_s=self.ell_s,
            ell_mat=self.ell_mat,
            joints={k: points(v[:, None, :])[:, 0] for k, v in self.joints.items()},
        )


def _rot_y(angle: np.ndarray) -> np.ndarray:
    """Rotation about the body's y (left) axis; positive pitches +z towards +x. [T] -> [T, 3, 3]."""
    c, s = np.cos(angle), np.sin(angle)
    z, o = np.zeros_like(angle), np.ones_like(angle)
    return np.stack([np.stack([c, z, s], -1), np.stack([z, o, z], -1), np.stack([-s, z, c], -1)], -2)


def _rot_z(angle: np.ndarray) -> np.ndarray:
    """Rotation about the vertical; positive turns +x towards +y. [T] -> [T, 3, 3]."""
    c, s = np.cos(angle), np.sin(angle)
    z, o = np.zeros_like(angle), np.ones_like(angle)
    return np.stack([np.stack([c, -s, z], -1), np.stack([s, c, z], -1), np.stack([z, z, o], -1)], -2)


def _bump(phi: np.ndarray, centre: float, kappa: float) -> np.ndarray:
    """A smooth periodic bump (von Mises shape) peaking at 1 when phi == centre."""
    return np.exp(kappa * (np.cos(phi - centre) - 1.0))


def _apply(R: np.ndarray, v: np.ndarray) -> np.ndarray:
    """[T, 3, 3] x [T, 3] (or [3]) -> [T, 3]."""
    return np.einsum("tij,tj->ti", R, np.broadcast_to(v, (R.shape[0], 3)))


class _Builder:
    """Collects primitives frame-vectorised, then stacks them into ``Shapes``."""

    def __init__(self, frames: int) -> None:
        self.T = frames
        self.caps: list[tuple[np.ndarray, np.ndarray, float, int]] = []
        self.ells: list[tuple[np.ndarray, np.ndarray, np.ndarray, int]] = []

    def capsule(self, a: np.ndarray, b: np.ndarray, r: float, mat: int) -> None:
        self.caps.append((a, b, float(r), mat))

    def ellipsoid(self, c: np.ndarray, R: np.ndarray, s: tuple[float, float, float], mat: int) -> None:
        self.ells.append((c, np.broadcast_to(R, (self.T, 3, 3)), np.asarray(s, float), mat))

    def build(self, joints: dict[str, np.ndarray]) -> Shapes:
        return Shapes(
            cap_a=np.stack([c[0] for c in self.caps], 1),
            cap_b=np.stack([c[1] for c in self.caps], 1),
            cap_r=np.array([c[2] for c in self.caps]),
            cap_mat=np.array([c[3] for c in self.caps]),
            ell_c=np.stack([e[0] for e in self.ells], 1),
            ell_R=np.stack([e[1] for e in self.ells], 1),
            ell_s=np.stack([e[2] for e in self.ells]),
            ell_mat=np.array([e[3] for e in self.ells]),
            joints=joints,
        )


def gait_phase(subject: SubjectParams, seq: SequenceParams, frames: int, fps: float = FPS) -> np.ndarray:
    """Gait phase per frame [T] in radians (0 = right heel strike; one stride = 2 pi)."""
    t = np.arange(frames) / fps
    return seq.start_phase + 2 * np.pi * (subject.cadence * seq.speed_jitter / 2) * t


def body_shapes(subject: SubjectParams, seq: SequenceParams, phase: np.ndarray) -> Shapes:
    """The articulated body in the body frame (x forward, y left, z up, feet on z = 0) per frame."""
    # This walk's own small deviations: longer steps swing the legs further, arms and lean vary a little.
    p = replace(subject, hip_amp=subject.hip_amp * seq.speed_jitter, arm_swing=subject.arm_swing * seq.arm_jitter,
                lean=subject.lean + seq.lean_jitter)
    T = len(phase)
    H, size = p.height, p.height / 1.70
    g = p.girth * size
    b = _Builder(T)
    zeros = np.zeros(T)

    # Segment lengths (Drillis & Contini proportions, scaled by the subject's ratios).
    leg = p.leg_ratio * H  # hip joint to floor
    ankle_h = 0.039 * H
    thigh = 0.49 * (leg - ankle_h)
    shank = 0.51 * (leg - ankle_h)
    arm = p.arm_ratio * H
    upper_arm, fore_arm = 0.56 * arm, 0.44 * arm
    foot_len = 0.152 * H
    head_h = 0.125 * H * p.head_scale
    neck_len = 0.045 * H
    trunk = H - leg - head_h - neck_len  # hip joint to neck base

    # Joint angles over the gait cycle; the left leg runs half a cycle behind the right.
    def leg_angles(phi: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        hip = p.hip_offset + p.hip_amp * np.cos(phi + 0.25)
        knee = np.deg2rad(4.0) + p.knee_stance * _bump(phi, 0.95, 8.0) + p.knee_amp * _bump(phi, 4.45, 4.5)
        # Foot pitch against the floor: toes up at heel strike, flat in mid-stance, heel up at push-off.
        pitch = np.deg2rad(14.0) * _bump(phi, 0.0, 12.0) - np.deg2rad(40.0) * _bump(phi, 3.65, 9.0)
        return hip, knee, pitch

    yaw = p.pelvis_yaw * np.cos(phase)  # the pelvis turns with the forward leg
    R_pelvis = _rot_z(yaw)
    lean = p.lean + np.deg2rad(1.5) * np.cos(2 * phase)
    R_trunk = _rot_z(-0.6 * yaw) @ _rot_y(lean)  # the thorax counter-rotates
    pelvis = np.stack([zeros, -p.sway * np.sin(phase), np.full(T, leg)], -1)  # hip-joint centre

    joints: dict[str, np.ndarray] = {"pelvis": pelvis}
    hip_sep = 0.55 * p.hip_width
    feet_bottom = []
    for side, sign, phi in (("right", -1.0, phase), ("left", 1.0, phase + np.pi)):
        hip_a, knee_a, pitch = leg_angles(phi)
        hip_j = pelvis + _apply(R_pelvis, np.array([0.0, sign * hip_sep / 2, 0.0]))
        thigh_dir = np.stack([np.sin(hip_a), zeros, -np.cos(hip_a)], -1)
        knee_j = hip_j + thigh * thigh_dir
        shank_a = hip_a - knee_a
        ankle_j = knee_j + shank * np.stack([np.sin(shank_a), zeros, -np.cos(shank_a)], -1)
        f_dir = np.stack([np.cos(pitch), zeros, np.sin(pitch)], -1)
        f_down = np.stack([np.sin(pitch), zeros, -np.cos(pitch)], -1)
        heel = ankle_j - 0.18 * foot_len * f_dir + 0.4 * ankle_h * f_down
        toe = ankle_j + 0.72 * foot_len * f_dir + 0.4 * ankle_h * f_down
        r_foot = 0.5 * ankle_h + 0.012
        b.capsule(hip_j, knee_j, 0.068 * g, TROUSERS)
        b.capsule(hip_j + 0.03 * H * np.array([0.0, 0.0, 1.0]), hip_j + 0.5 * (knee_j - hip_j), 0.082 * g, TROUSERS)
        b.capsule(knee_j, ankle_j, 0.05 * g, TROUSERS)
        b.capsule(heel, toe, r_foot * size, SHOES)
        feet_bottom.append(np.minimum(heel[:, 2], toe[:, 2]) - r_foot * size)
        joints.update({f"{side}_hip": hip_j, f"{side}_knee": knee_j, f"{side}_ankle": ankle_j,
                       f"{side}_heel": heel, f"{side}_toe": toe})

    # Trunk: pelvis, waist and chest ellipsoids stacked along the (leaning) spine.
    spine = _apply(R_trunk, np.array([0.0, 0.0, 1.0]))
    rot_pelvis = R_pelvis @ _rot_y(0.5 * lean)
    b.ellipsoid(pelvis + np.array([0, 0, 0.03 * H]), rot_pelvis,
                (0.5 * p.belly_depth, 0.5 * p.hip_width, 0.085 * H), TROUSERS)
    b.ellipsoid(pelvis + (0.33 * trunk) * spine, R_trunk,
                (0.5 * p.belly_depth, 0.40 * p.shoulder_width * (0.75 + 0.2 * p.girth), 0.16 * trunk * 1.2), SHIRT)
    chest = pelvis + (0.66 * trunk) * spine
    b.ellipsoid(chest, R_trunk, (0.5 * p.chest_depth, 0.46 * p.shoulder_width, 0.30 * trunk), SHIRT)
    neck_base = pelvis + trunk * spine
    head_c = neck_base + (neck_len + 0.5 * head_h) * spine
    b.capsule(neck_base - 0.04 * H * spine, neck_base + neck_len * spine, 0.055 * size * p.head_scale, SKIN)
    R_head = _rot_y(np.full(T, -0.5 * p.lean))
    b.ellipsoid(head_c, R_head, (0.105 * size * p.head_scale, 0.08 * size * p.head_scale, 0.5 * head_h), SKIN)
    b.ellipsoid(head_c + np.array([-0.015, 0.0, 0.03]) * size, R_head,
                (0.1 * size * p.head_scale, 0.083 * size * p.head_scale, 0.47 * head_h), HAIR)
    joints.update({"neck": neck_base, "head": head_c, "chest": chest})

    # Arms swing opposite to the same-side leg, lagging by the subject's phase.
    shoulder_sep = 0.80 * p.shoulder_width
    sleeve = COAT if seq.coat else SHIRT
    for side, sign, phi in (("right", -1.0, phase), ("left", 1.0, phase + np.pi)):
        swing = -p.arm_swing * np.cos(phi - p.phase)
        elbow_a = p.elbow_bend + 0.6 * (swing + p.arm_swing)
        shoulder = neck_base - 0.035 * H * spine + _apply(R_trunk, np.array([0.0, sign * shoulder_sep / 2, 0.0]))
        ab = p.arm_abduction
        up_dir = np.stack([np.sin(swing) * np.cos(ab), np.full(T, sign * np.sin(ab)), -np.cos(swing) * np.cos(ab)], -1)
        elbow = shoulder + upper_arm * up_dir
        fa = swing + elbow_a
        fore_dir = np.stack([np.sin(fa) * np.cos(ab), np.full(T, sign * np.sin(ab)), -np.cos(fa) * np.cos(ab)], -1)
        wrist = elbow + fore_arm * fore_dir
        b.capsule(shoulder, elbow, 0.046 * g * (1.25 if seq.coat else 1.0), sleeve)
        b.capsule(elbow, wrist, 0.036 * g * (1.2 if seq.coat else 1.0), sleeve if seq.coat else SKIN)
        b.capsule(wrist, wrist + 0.07 * H * fore_dir, 0.03 * size, SKIN)  # hand
        joints.update({f"{side}_shoulder": shoulder, f"{side}_elbow": elbow, f"{side}_wrist": wrist})

    if seq.coat:  # a coat widens torso and thighs and hides the upper legs
        b.ellipsoid(pelvis + (0.45 * trunk) * spine, R_trunk,
                    (0.55 * p.chest_depth + 0.025, 0.5 * p.shoulder_width + 0.01, 0.6 * trunk), COAT)
        for side in ("right", "left"):
            hip_j, knee_j = joints[f"{side}_hip"], joints[f"{side}_knee"]
            b.capsule(hip_j + 0.05 * H * spine, hip_j + 0.6 * (knee_j - hip_j), 0.1 * g + 0.01, COAT)
    if seq.bag == "backpack":
        back = -_apply(R_trunk, np.array([1.0, 0.0, 0.0]))
        b.ellipsoid(chest + (0.5 * p.chest_depth + 0.06) * back - 0.03 * spine, R_trunk, (0.09, 0.16, 0.2), BAG)
    elif seq.bag.startswith("shoulder"):
        sign = 1.0 if seq.bag.endswith("left") else -1.0
        swing_x = 0.03 * np.sin(phase + 0.5)
        centre = pelvis + _apply(R_pelvis, np.array([0.02, sign * (0.5 * p.hip_width + 0.07), 0.02]))
        centre = centre + np.stack([swing_x, zeros, zeros], -1)
        b.ellipsoid(centre, R_pelvis, (0.13, 0.05, 0.12), BAG)
        strap_top = neck_base + _apply(R_trunk, np.array([0.0, -sign * 0.12, 0.0]))
        b.capsule(strap_top, centre + np.array([0, 0, 0.1]), 0.012, BAG)

    shapes = b.build(joints)
    # Ground contact: the lowest foot touches the floor; plus the subject's own bounce.
    lift = -np.minimum(*feet_bottom) - p.bounce * np.cos(2 * phase)
    return shapes.transformed(np.eye(3), np.stack([zeros, zeros, lift], -1))


SWEEP_GRID = np.linspace(0.0, 2 * np.pi, 97)[:-1]  # one stride


def _foot_sweep(subject: SubjectParams, seq: SequenceParams) -> np.ndarray:
    """Body speed per unit of phase [G] (m/rad) that would keep the lowest heel or toe still."""
    step = SWEEP_GRID[1] - SWEEP_GRID[0]
    joints = body_shapes(subject, seq, SWEEP_GRID).joints
    points = np.stack([joints[k] for k in ("right_heel", "right_toe", "left_heel", "left_toe")], 1)  # [G, 4, 3]
    lowest = points[:, :, 2].argmin(1)  # [G] the foot point on the floor
    dx = (np.roll(points[:, :, 0], -1, 0) - np.roll(points[:, :, 0], 1, 0)) / (2 * step)  # [G, 4] dx / dphase
    return np.clip(-dx[np.arange(len(SWEEP_GRID)), lowest], 1e-3, None)


def walk_progress(subject: SubjectParams, seq: SequenceParams, phase: np.ndarray) -> np.ndarray:
    """Metres walked at each phase [T], relative to the first frame; the mean speed is cadence x step.

    A constant speed would make the stance foot skate; following the stance foot exactly would make
    the body surge with our simple joint curves. The body speed is half constant, half what keeps the
    lowest heel or toe still (clipped), which removes most of the skating and keeps a real gait's
    modest speed fluctuation over the stride.
    """
    grid = np.linspace(0.0, 2 * np.pi, len(SWEEP_GRID) + 1)
    follow = _foot_sweep(subject, seq)
    follow = np.clip(follow / follow.mean(), 0.4, 1.6)
    rate = 0.5 + 0.5 * follow / follow.mean()  # [G], mean 1
    step = grid[1]
    cumulative = np.concatenate([[0.0], np.cumsum(rate) * step])  # at grid points 0 .. 2 pi

    def integral(phi: np.ndarray) -> np.ndarray:  # integral of the rate from 0 to phi
        turns, rest = np.divmod(phi, 2 * np.pi)
        return turns * 2 * np.pi + np.interp(rest, grid, cumulative)

    speed = subject.speed * seq.speed_jitter ** 2  # the jitter scales cadence and step length
    omega = np.pi * subject.cadence * seq.speed_jitter  # rad of gait phase per second
    return speed / omega * (integral(phase) - integral(phase[:1]))


def walk_placement(subject: SubjectParams, seq: SequenceParams, view: str, frames: int,
                   path_centre: tuple[float, float], fps: float = FPS) -> tuple[np.ndarray, np.ndarray]:
    """Body frame -> world (x right, y away from the camera, z up) per frame: (R [T,3,3], t [T,3]).

    The view is the azimuth of the walking direction relative to the camera (CASIA-B): 000 walks
    towards the camera, 090 across it (left to right), 180 away from it. The path is centred so
    that the middle frame is at ``path_centre`` (plus the sequence's small offsets).
    """
    theta = np.deg2rad(float(view)) + seq.heading_jitter
    direction = np.array([np.sin(theta), -np.cos(theta), 0.0])
    across = np.array([np.cos(theta), np.sin(theta), 0.0])
    walked = walk_progress(subject, seq, gait_phase(subject, seq, frames, fps))  # [T]
    duration = (frames - 1) / fps
    mid = subject.speed * seq.speed_jitter ** 2 * duration / 2
    s = walked - mid + seq.start_offset  # [T] m along the path, about centred on the middle frame
    centre = np.array([path_centre[0], path_centre[1], 0.0]) + seq.lateral_offset * across
    t = centre[None, :] + s[:, None] * direction[None, :]
    heading = np.arctan2(direction[1], direction[0])
    R = _rot_z(np.full(frames, heading))
    return R, t
