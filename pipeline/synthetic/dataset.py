"""Synthetic CASIA-B-style walking videos with exact ground truth (mask, depth, box).

No real gait data can be downloaded here, so tests, the demo and the benchmarks use people
rendered by ``pipeline.synthetic.people`` (who walks), ``pipeline.synthetic.body`` (how) and ``pipeline.synthetic.render`` (ray-casting).
Output of ``generate_dataset``: ``OUT/001-nm-01-090.avi`` (FFV1, lossless, 25 fps, readable by the
bundled OpenCV) and ``OUT/truth/001-nm-01-090.h5`` with ``box`` float32 [T, 4] (x0 y0 x1 y1 px,
x1/y1 exclusive, zeros when the person is out of frame), ``mask`` bool [T, H, W] and ``depth``
float32 [T, H, W] (camera-frame Z in metres on the person, 0 elsewhere). Everything is seeded:
subject i depends only on (seed, i), so the same seed gives the same bytes, and a larger set
contains a smaller one's subjects unchanged.
"""
from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import h5py
import numpy as np
from joblib import Parallel, delayed

from pipeline.atomic import atomic_path
from pipeline.errors import DepthgaitError, InputError
from pipeline.formats.h5_writer import atomic_h5
from pipeline.progress import progress
from pipeline.synthetic.body import body_shapes, gait_phase, walk_placement
from pipeline.synthetic.people import (
    FPS,
    SubjectParams,
    parse_condition,
    sample_sequence,
    sample_subject,
    sequence_colours,
)
from pipeline.synthetic.render import Camera, background, check_view, render_frame

__all__ = [
    "CONDITIONS", "VIEWS", "SubjectParams", "SyntheticSequence", "background", "generate_dataset",
    "render_sequence", "sample_subject", "subject_params", "video_name", "write_truth", "write_video",
]

VIEWS = ("000", "018", "036", "054", "072", "090", "108", "126", "144", "162", "180")
CONDITIONS = ("nm-01", "nm-02", "nm-03", "nm-04", "nm-05", "nm-06", "bg-01", "bg-02", "cl-01", "cl-02")
# Codecs the bundled OpenCV writes and reads: FFV1 is lossless (decoded frames equal the rendered ones,
# ~115 KB per 320x240 frame); MJPG is ~10x smaller but blurs edges and colours (4:2:0 chroma).
CODECS = {"ffv1": "FFV1", "mjpg": "MJPG"}
PATH_DISTANCE = 7.3  # m from the camera to the middle of the walking path
SENSOR_NOISE = 2.0  # grey levels, standard deviation
GENERATOR_VERSION = 1
TRUTH_FORMAT = "depthgait-synth-truth"


@dataclass
class SyntheticSequence:
    """One rendered walk: ``rgb`` uint8 [T, H, W, 3] (RGB), ``mask`` bool [T, H, W],
    ``depth`` float32 [T, H, W] (m, 0 off the person), ``box`` float32 [T, 4] (x0 y0 x1 y1),
    ``phase`` float32 [T] (gait phase, 0 = right heel strike) and ``joints`` float32 [T, J, 3]
    (camera frame, names in ``joint_names``)."""

    rgb: np.ndarray
    mask: np.ndarray
    depth: np.ndarray
    box: np.ndarray
    phase: np.ndarray
    joints: np.ndarray
    joint_names: tuple[str, ...]
    camera: Camera
    meta: dict


def _check_size(size: Sequence[int]) -> tuple[int, int]:
    width, height = (int(v) for v in size)
    if width < 16 or height < 16:
        raise InputError(f"frame size {width}x{height} is too small (at least 16x16)")
    return width, height


def subject_params(index: int, seed: int = 0) -> SubjectParams:
    """Subject ``index`` (1-based) of the set made with ``seed``; depends on nothing else."""
    return sample_subject(np.random.default_rng([int(seed), int(index), 0x5B1EC7]))


def render_sequence(subject: SubjectParams, view: str, condition: str, frames: int = 60,
                    size: tuple[int, int] = (320, 240), seed: int = 0) -> SyntheticSequence:
    """Render ``subject`` walking in ``view`` under ``condition`` (nm-NN, bg-NN, cl-NN).

    The walk itself (start phase, offsets, speed jitter, bag) depends on (seed, subject, condition)
    but not on the view: like CASIA-B's 11 cameras, all views of one recording see the same walk.
    """
    check_view(view)
    width, height = _check_size(size)
    if frames < 1:
        raise InputError(f"frames must be at least 1, got {frames}")
    kind, number = parse_condition(condition)
    walk_rng = np.random.default_rng([int(seed), subject.key, "nmbgcl".index(kind), number])
    seq = sample_sequence(condition, walk_rng)
    camera = Camera.for_size((width, height))

    phase = gait_phase(subject, seq, frames)  # [T]
    body = body_shapes(subject, seq, phase)
    R, t = walk_placement(subject, seq, view, frames, (0.0, PATH_DISTANCE))
    shapes = camera.world_to_camera(body.transformed(R, t))
    albedo = sequence_colours(subject, seq).astype(np.float32)

    bg = background(view, (width, height), seed).astype(np.float32)  # [H, W, 3]
    noise_rng = np.random.default_rng([int(seed), subject.key, "nmbgcl".index(kind), number, int(view)])
    rgb = np.empty((frames, height, width, 3), np.uint8)
    depth = np.zeros((frames, height, width), np.float32)
    for f in range(frames):
        depth[f], colour, _ = render_frame(camera, shapes, f, albedo)
        hit = depth[f] > 0
        frame = np.where(hit[..., None], colour * 255.0, bg)  # [H, W, 3]
        frame += noise_rng.standard_normal(frame.shape, dtype=np.float32) * SENSOR_NOISE
        rgb[f] = np.clip(np.rint(frame), 0, 255)
    mask = depth > 0
    names = tuple(shapes.joints)
    joints = np.stack([shapes.joints[k] for k in names], 1).astype(np.float32)  # [T, J, 3]
    meta = {"subject": subject.to_dict(), "sequence": seq.to_dict(), "view": view, "condition": condition,
            "seed": int(seed), "fps": FPS, "path_distance": PATH_DISTANCE}
    return SyntheticSequence(rgb=rgb, mask=mask, depth=depth, box=mask_boxes(mask), phase=phase.astype(np.float32),
                             joints=joints, joint_names=names, camera=camera, meta=meta)


def mask_boxes(mask: np.ndarray) -> np.ndarray:
    """Tight boxes of masks [T, H, W] -> float32 [T, 4] (x0 y0 x1 y1, exclusive ends; zeros if empty)."""
    cols, rows = mask.any(1), mask.any(2)  # [T, W], [T, H]
    has = cols.any(1)
    x0, x1 = cols.argmax(1), mask.shape[2] - cols[:, ::-1].argmax(1)
    y0, y1 = rows.argmax(1), mask.shape[1] - rows[:, ::-1].argmax(1)
    return np.where(has[:, None], np.stack([x0, y0, x1, y1], 1), 0).astype(np.float32)


def video_name(subject: int, condition: str, view: str) -> str:
    """CASIA-B naming: ``001-nm-01-090``."""
    return f"{subject:03d}-{condition}-{view}"


def write_video(path: str | Path, rgb: np.ndarray, fps: float = FPS, codec: str = "ffv1") -> Path:
    """Write RGB frames [T, H, W, 3] as an .avi (lossless FFV1 by default), atomically."""
    path = Path(path)
    if codec not in CODECS:
        raise InputError(f"codec {codec!r} is not one of {sorted(CODECS)}")
    _, height, width, _ = rgb.shape
    with atomic_path(path) as tmp:
        writer = cv2.VideoWriter(str(tmp), cv2.VideoWriter_fourcc(*CODECS[codec]), fps, (width, height))
        if not writer.isOpened():
            raise DepthgaitError(f"{path}: OpenCV cannot open a {CODECS[codec]} video writer here")
        try:
            for frame in rgb:
                writer.write(np.ascontiguousarray(frame[..., ::-1]))  # OpenCV wants BGR
        finally:
            writer.release()
    return path


def write_truth(path: str | Path, seq: SyntheticSequence, fingerprint: str = "") -> Path:
    """Write the ground truth of one sequence as compressed HDF5, atomically."""
    path = Path(path)
    T, H, W = seq.mask.shape
    with atomic_h5(path) as h5:
        h5.attrs.update({
            "format": TRUTH_FORMAT, "version": GENERATOR_VERSION, "fps": FPS, "fingerprint": fingerprint,
            "width": W, "height": H, "n_frames": T, "depth_unit": "m (camera-frame Z)",
            "box_convention": "x0 y0 x1 y1 pixels, x1/y1 exclusive; zeros when out of frame",
            "camera_K": seq.camera.K, "camera_height": seq.camera.cam_height, "camera_tilt": seq.camera.tilt,
            "meta": json.dumps(seq.meta, sort_keys=True), "joint_names": json.dumps(list(seq.joint_names)),
        })
        h5.create_dataset("box", data=seq.box)
        h5.create_dataset("mask", data=seq.mask, chunks=(1, H, W), compression="gzip", compression_opts=4)
        h5.create_dataset("depth", data=seq.depth, chunks=(1, H, W), compression="gzip", compression_opts=4,
                          shuffle=True)
        h5.create_dataset("phase", data=seq.phase)
        h5.create_dataset("joints", data=seq.joints)
    return path


def _fingerprint(index: int, condition: str, view: str, frames: int, size: tuple[int, int], seed: int,
                 codec: str) -> str:
    spec = [GENERATOR_VERSION, index, condition, view, frames, list(size), seed, codec]
    return hashlib.sha1(json.dumps(spec).encode()).hexdigest()[:16]


def _is_done(video: Path, truth: Path, fingerprint: str) -> bool:
    if not (video.exists() and truth.exists()):
        return False
    try:
        with h5py.File(truth, "r") as h5:
            return h5.attrs.get("fingerprint") == fingerprint
    except OSError:
        return False


def _make_one(out_dir: Path, index: int, condition: str, view: str, frames: int, size: tuple[int, int],
              seed: int, codec: str, overwrite: bool) -> tuple[Path, bool]:
    """Render and write one video + truth; skip it when a finished one with the same settings exists."""
    name = video_name(index, condition, view)
    video, truth = out_dir / f"{name}.avi", out_dir / "truth" / f"{name}.h5"
    fingerprint = _fingerprint(index, condition, view, frames, size, seed, codec)
    if not overwrite and _is_done(video, truth, fingerprint):
        return video, False
    seq = render_sequence(subject_params(index, seed), view, condition, frames, size, seed)
    write_video(video, seq.rgb, codec=codec)
    write_truth(truth, seq, fingerprint)  # written last: its presence marks the pair finished
    return video, True


BACKGROUND_FRAMES = 25


def write_background_video(out_dir: Path, view: str, size: tuple[int, int], seed: int, codec: str,
                           overwrite: bool = False) -> Path:
    """``bkgrd-VVV.avi``: the empty scene of one camera, as CASIA-B ships beside its walks.

    Background subtraction needs it where the walker hardly moves across the frame (frontal and
    back views): a background taken from the walk itself would contain the person.
    """
    path = out_dir / f"bkgrd-{view}.avi"
    if path.exists() and not overwrite:
        return path
    width, height = size
    bg = background(view, (width, height), seed).astype(np.float32)  # [H, W, 3]
    rng = np.random.default_rng([int(seed), int(view), 7])
    noise = rng.standard_normal((BACKGROUND_FRAMES, height, width, 3), dtype=np.float32) * SENSOR_NOISE
    frames = np.clip(np.rint(bg[None] + noise), 0, 255).astype(np.uint8)  # [B, H, W, 3]
    return write_video(path, frames, codec=codec)


def check_generation(
    out_dir: Path, views: Sequence[str], conditions: Sequence[str], size: Sequence[int], frames: int, codec: str
) -> tuple[int, int]:
    """Check what a generator run was asked for (one clear error each), make ``out_dir/truth``; returns the size."""
    for view in views:
        check_view(view)
    for condition in conditions:
        parse_condition(condition)
    if not conditions:
        raise InputError("conditions must name at least one condition (e.g. nm-01)")
    checked = _check_size(size)
    if frames < 1:
        raise InputError(f"frames must be at least 1, got {frames}")
    if codec not in CODECS:
        raise InputError(f"codec {codec!r} is not one of {sorted(CODECS)}")
    if out_dir.exists() and not out_dir.is_dir():
        raise InputError(f"{out_dir}: exists and is not a folder")
    (out_dir / "truth").mkdir(parents=True, exist_ok=True)
    return checked


def generate_dataset(out_dir: str | Path, subjects: int | Iterable[int] = 3, views: Sequence[str] = VIEWS,
                     conditions: Sequence[str] = CONDITIONS, frames: int = 60, size: tuple[int, int] = (320, 240),
                     seed: int = 0, workers: int = 1, quiet: bool = False, overwrite: bool = False,
                     codec: str = "ffv1", backgrounds: bool = True) -> list[Path]:
    """Write every (subject, condition, view) video and truth file; return the video paths in order.

    ``subjects`` is a count (subjects 001..N) or explicit 1-based indices. Finished pairs made with
    the same settings are skipped unless ``overwrite``. ``codec``: "ffv1" (lossless) or "mjpg" (small).
    ``backgrounds`` also writes one empty-scene video per view (``bkgrd-VVV.avi``, skipped by the manifests).
    """
    out_dir = Path(out_dir)
    indices = list(range(1, subjects + 1)) if isinstance(subjects, int) else [int(s) for s in subjects]
    if not indices or min(indices) < 1 or max(indices) > 999:
        raise InputError(f"subjects must be between 1 and 999, got {subjects!r}")
    size = check_generation(out_dir, views, conditions, size, frames, codec)

    if backgrounds:
        for view in views:
            write_background_video(out_dir, view, size, seed, codec, overwrite)
    jobs = [(i, c, v) for i in indices for c in conditions for v in views]
    tasks = (delayed(_make_one)(out_dir, i, c, v, frames, size, seed, codec, overwrite) for i, c, v in jobs)
    results = Parallel(n_jobs=max(1, workers), return_as="generator")(tasks)
    paths = []
    for path, _ in progress(results, total=len(jobs), desc="synth", unit="video", disable=quiet):
        paths.append(path)
    return paths
