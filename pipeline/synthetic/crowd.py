"""Synthetic crowds: several different subjects walking through one scene at once, with exact truth.

A single-walker video cannot test a tracker. Here N subjects (the same ``subject_params`` people as
``synth --subjects``, so a gallery made from those identifies them) walk on straight lines in
different directions and at their own speeds, enter and leave the picture, and cross and hide each
other. Each body is ray-cast on its own; the nearest hit per pixel wins, exactly what one z-buffer
over all bodies gives, and it names the person seen at every pixel.

Scene geometry (world: x right, y away from the camera, z up). In view ``090`` (the reference, as
CASIA-B's "across") walkers cross the picture, each heading within 40 degrees of across, left to
right or right to left, passing a point 5.5 .. 9.8 m from the camera at a random moment of the clip.
Another view turns the whole scene about the vertical through its centre by (view - 90) degrees:
every view of a scene shows the same walks from another side (in ``000`` they mostly come towards
the camera or go away).

Output of ``generate_crowds``: ``OUT/scene-<k>-<view>.avi`` and ``OUT/truth/scene-<k>-<view>.h5``
with ``person`` uint8 [T, H, W] (0 background, p+1 where walker p is the nearest surface),
``boxes`` float32 [P, T, 4] (x0 y0 x1 y1 of walker p's visible pixels, exclusive ends; NaN where
none is visible), ``full_boxes`` float32 [P, T, 4] (the same box ignoring the other walkers),
``visible`` int32 [P, T] (visible pixels) and ``depth`` float32 [T, H, W] (camera-frame Z in m of the
nearest person, 0 elsewhere); attribute ``subjects`` (JSON list of the walkers' subject indices).
"""
from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import h5py
import numpy as np
from joblib import Parallel, delayed

from pipeline.errors import InputError
from pipeline.formats.h5_writer import atomic_h5
from pipeline.progress import progress
from pipeline.synthetic.body import body_shapes, gait_phase, walk_progress
from pipeline.synthetic.dataset import (
    PATH_DISTANCE,
    SENSOR_NOISE,
    _check_size,
    _is_done,
    check_generation,
    mask_boxes,
    subject_params,
    write_background_video,
    write_video,
)
from pipeline.synthetic.people import (
    FPS,
    SequenceParams,
    SubjectParams,
    sample_sequence,
    sequence_colours,
)
from pipeline.synthetic.render import Camera, background, check_view, render_frame

CROWD_VERSION = 1
CROWD_FORMAT = "depthgait-synth-crowd-truth"
MAX_PEOPLE = 254  # person ids are uint8 with 0 for the background
REFERENCE_VIEW = 90  # walkers mostly cross the picture in this view


@dataclass(frozen=True)
class Walker:
    """One person of a scene: who (subject index and parameters), how (this walk) and where.

    ``heading`` is the walking azimuth in the reference view (CASIA-B convention: 0 towards the
    camera, 90 left to right), ``crossing`` the world point (x, y) passed at ``crossing_time`` s.
    """

    index: int
    subject: SubjectParams
    condition: str
    walk: SequenceParams
    heading: float  # rad
    crossing: tuple[float, float]  # m
    crossing_time: float  # s

    def to_dict(self) -> dict:
        return {"subject": self.index, "condition": self.condition, "walk": self.walk.to_dict(),
                "heading_deg": float(np.rad2deg(self.heading)), "crossing": list(self.crossing),
                "crossing_time": self.crossing_time}


def scene_walkers(scene: int, subjects: Sequence[int], conditions: Sequence[str], frames: int,
                  seed: int = 0) -> list[Walker]:
    """The walkers of scene ``scene``: one per subject index, their walks drawn from (seed, scene, p)."""
    duration = frames / FPS
    walkers = []
    for p, index in enumerate(subjects):
        rng = np.random.default_rng([int(seed), int(scene), p, 0xC40D])
        condition = conditions[int(rng.integers(len(conditions)))]
        walk = sample_sequence(condition, rng)
        # People in a shared space stroll or hurry more than in a lab corridor.
        walk = replace(walk, speed_jitter=float(rng.uniform(0.9, 1.1)))
        across = np.deg2rad(90.0 if rng.random() < 0.5 else 270.0)
        heading = across + np.deg2rad(rng.uniform(-40.0, 40.0))
        crossing = (float(rng.uniform(-1.0, 1.0)), float(PATH_DISTANCE + rng.uniform(-1.8, 2.5)))
        walkers.append(Walker(index=int(index), subject=subject_params(int(index), seed), condition=condition,
                              walk=walk, heading=float(heading), crossing=crossing,
                              crossing_time=float(rng.uniform(0.1, 0.9) * duration)))
    return walkers


def _rot_z(angle: float) -> np.ndarray:
    c, s = np.cos(angle), np.sin(angle)
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


def walker_placement(walker: Walker, view: str, frames: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Gait phase [T] and body frame -> world (R [3, 3], t [T, 3]) of one walker in one view."""
    turn = np.deg2rad(int(view) - REFERENCE_VIEW)
    theta = walker.heading + turn
    direction = np.array([np.sin(theta), -np.cos(theta), 0.0])
    centre = np.array([0.0, PATH_DISTANCE, 0.0])
    crossing = centre + _rot_z(turn) @ (np.array([*walker.crossing, 0.0]) - centre)
    phase = gait_phase(walker.subject, walker.walk, frames)
    walked = walk_progress(walker.subject, walker.walk, phase)  # [T] m since frame 0
    speed = walker.subject.speed * walker.walk.speed_jitter ** 2
    s = walked - speed * walker.crossing_time
    t = crossing[None, :] + s[:, None] * direction[None, :]
    return phase, _rot_z(np.arctan2(direction[1], direction[0])), t


@dataclass
class CrowdScene:
    """One rendered view of a scene: ``rgb`` uint8 [T, H, W, 3], ``person`` uint8 [T, H, W],
    ``depth`` float32 [T, H, W], ``boxes`` / ``full_boxes`` float32 [P, T, 4] (NaN: absent),
    ``visible`` int32 [P, T] and the walkers."""

    rgb: np.ndarray
    person: np.ndarray
    depth: np.ndarray
    boxes: np.ndarray
    full_boxes: np.ndarray
    visible: np.ndarray
    walkers: list[Walker]
    camera: Camera
    meta: dict


def _nan_absent(box: np.ndarray, present: np.ndarray) -> np.ndarray:
    return np.where(present[:, None], box, np.nan).astype(np.float32)


def render_crowd(walkers: Sequence[Walker], view: str, frames: int = 80, size: tuple[int, int] = (320, 240),
                 seed: int = 0, scene: int = 1) -> CrowdScene:
    """Render every walker of a scene into one video; the nearest surface owns each pixel."""
    check_view(view)
    width, height = _check_size(size)
    if frames < 1:
        raise InputError(f"frames must be at least 1, got {frames}")
    if not 1 <= len(walkers) <= MAX_PEOPLE:
        raise InputError(f"a scene holds 1 to {MAX_PEOPLE} people, got {len(walkers)}")
    camera = Camera.for_size((width, height))
    bodies, albedos = [], []
    for walker in walkers:
        phase, R, t = walker_placement(walker, view, frames)
        body = body_shapes(walker.subject, walker.walk, phase).transformed(R, t)
        bodies.append(camera.world_to_camera(body))
        albedos.append(sequence_colours(walker.subject, walker.walk).astype(np.float32))

    bg = background(view, (width, height), seed).astype(np.float32)
    noise_rng = np.random.default_rng([int(seed), int(scene), int(view), 0xC40D])
    P = len(walkers)
    rgb = np.empty((frames, height, width, 3), np.uint8)
    person = np.zeros((frames, height, width), np.uint8)
    depth = np.zeros((frames, height, width), np.float32)
    full = np.full((P, frames, 4), np.nan, np.float32)  # each walker's box ignoring the others
    for f in range(frames):
        nearest = np.full((height, width), np.inf, np.float32)
        frame = bg.copy()
        for p in range(P):
            d, colour, box = render_frame(camera, bodies[p], f, albedos[p])
            if box is None:
                continue
            hit = d > 0
            if hit.any():
                full[p, f] = mask_boxes(hit[None])[0]
            wins = hit & (d < nearest)
            nearest[wins] = d[wins]
            person[f][wins] = p + 1
            frame[wins] = colour[wins] * 255.0
        depth[f] = np.where(np.isfinite(nearest), nearest, 0.0)
        frame += noise_rng.standard_normal(frame.shape, dtype=np.float32) * SENSOR_NOISE
        rgb[f] = np.clip(np.rint(frame), 0, 255)

    boxes = np.empty((P, frames, 4), np.float32)
    visible = np.empty((P, frames), np.int32)
    for p in range(P):
        seen = person == p + 1
        visible[p] = seen.sum((1, 2))
        boxes[p] = _nan_absent(mask_boxes(seen), visible[p] > 0)
    meta = {"walkers": [w.to_dict() for w in walkers], "view": view, "scene": int(scene), "seed": int(seed),
            "fps": FPS, "reference_view": f"{REFERENCE_VIEW:03d}"}
    return CrowdScene(rgb=rgb, person=person, depth=depth, boxes=boxes, full_boxes=full, visible=visible,
                      walkers=list(walkers), camera=camera, meta=meta)


def scene_name(scene: int, view: str) -> str:
    return f"scene-{scene}-{view}"


def write_crowd_truth(path: str | Path, crowd: CrowdScene, fingerprint: str = "") -> Path:
    """Write the truth of one scene view as compressed HDF5, atomically."""
    path = Path(path)
    T, H, W = crowd.person.shape
    with atomic_h5(path) as h5:
        h5.attrs.update({
            "format": CROWD_FORMAT, "version": CROWD_VERSION, "fps": FPS, "fingerprint": fingerprint,
            "width": W, "height": H, "n_frames": T, "n_people": len(crowd.walkers),
            "subjects": json.dumps([w.index for w in crowd.walkers]), "depth_unit": "m (camera-frame Z)",
            "person_convention": "0 background, p+1 where walker p (0-based, order of subjects) is nearest",
            "box_convention": "x0 y0 x1 y1 pixels, x1/y1 exclusive; NaN where the walker is not visible",
            "camera_K": crowd.camera.K, "camera_height": crowd.camera.cam_height,
            "camera_tilt": crowd.camera.tilt, "meta": json.dumps(crowd.meta, sort_keys=True),
        })
        chunks = (1, H, W)
        h5.create_dataset("person", data=crowd.person, chunks=chunks, compression="gzip", compression_opts=4)
        h5.create_dataset("depth", data=crowd.depth, chunks=chunks, compression="gzip", compression_opts=4,
                          shuffle=True)
        h5.create_dataset("boxes", data=crowd.boxes)
        h5.create_dataset("full_boxes", data=crowd.full_boxes)
        h5.create_dataset("visible", data=crowd.visible)
    return path


@dataclass
class CrowdTruth:
    """What a tracking evaluation reads back from a truth file."""

    person: np.ndarray  # uint8 [T, H, W]
    boxes: np.ndarray  # float32 [P, T, 4], NaN where absent
    visible: np.ndarray  # int32 [P, T]
    subjects: list[int]


def read_crowd_truth(path: str | Path, masks: bool = True) -> CrowdTruth:
    """Read a crowd truth file; a file of another kind is a clear error."""
    with h5py.File(path, "r") as h5:
        if h5.attrs.get("format") != CROWD_FORMAT:
            raise InputError(f"{path}: not a synthetic crowd truth file (format {h5.attrs.get('format')!r})")
        person = h5["person"][()] if masks else np.zeros((0,), np.uint8)
        return CrowdTruth(person=person, boxes=h5["boxes"][()], visible=h5["visible"][()],
                          subjects=json.loads(h5.attrs["subjects"]))


def _fingerprint(scene: int, subjects: Sequence[int], conditions: Sequence[str], view: str, frames: int,
                 size: tuple[int, int], seed: int, codec: str) -> str:
    spec = [CROWD_VERSION, scene, list(subjects), list(conditions), view, frames, list(size), seed, codec]
    return hashlib.sha1(json.dumps(spec).encode()).hexdigest()[:16]


def _make_scene(out_dir: Path, scene: int, subjects: list[int], conditions: list[str], view: str, frames: int,
                size: tuple[int, int], seed: int, codec: str, overwrite: bool) -> Path:
    name = scene_name(scene, view)
    video, truth = out_dir / f"{name}.avi", out_dir / "truth" / f"{name}.h5"
    fingerprint = _fingerprint(scene, subjects, conditions, view, frames, size, seed, codec)
    if not overwrite and _is_done(video, truth, fingerprint):
        return video
    crowd = render_crowd(scene_walkers(scene, subjects, conditions, frames, seed), view, frames, size, seed, scene)
    write_video(video, crowd.rgb, codec=codec)
    write_crowd_truth(truth, crowd, fingerprint)  # written last: its presence marks the pair finished
    return video


def generate_crowds(out_dir: str | Path, people: int = 3, scenes: int = 1, views: Sequence[str] = ("090",),
                    conditions: Sequence[str] = ("nm-01",), frames: int = 80, size: tuple[int, int] = (320, 240),
                    seed: int = 0, workers: int = 1, quiet: bool = False, overwrite: bool = False,
                    codec: str = "ffv1", backgrounds: bool = True) -> list[Path]:
    """Write every (scene, view) crowd video and truth; return the video paths in order.

    Scene k (1-based) holds subjects (k-1)*people+1 .. k*people, each walking under a condition drawn
    from ``conditions``. Finished pairs made with the same settings are skipped unless ``overwrite``.
    """
    out_dir = Path(out_dir)
    if not 1 <= people <= MAX_PEOPLE:
        raise InputError(f"people must be between 1 and {MAX_PEOPLE}, got {people}")
    if scenes < 1 or scenes * people > 999:
        raise InputError(f"scenes x people must be between 1 and 999 subjects, got {scenes} x {people}")
    size = check_generation(out_dir, views, conditions, size, frames, codec)
    if backgrounds:
        for view in views:
            write_background_video(out_dir, view, size, seed, codec, overwrite)
    jobs = [(k, v) for k in range(1, scenes + 1) for v in views]
    tasks = (delayed(_make_scene)(out_dir, k, list(range((k - 1) * people + 1, k * people + 1)), list(conditions),
                                  v, frames, size, seed, codec, overwrite) for k, v in jobs)
    results = Parallel(n_jobs=max(1, workers), return_as="generator")(tasks)
    return list(progress(results, total=len(jobs), desc="synth crowds", unit="video", disable=quiet))
