"""One video through the stages: decode -> (background) -> detect -> one track -> segment + depth.

Returns the cache record in memory (``pipeline.formats.video_cache.VideoCache``) and its warnings;
writing it is the batch's job. A failure inside a stage becomes a ``StageError`` naming the stage
and the video, which the batch records as one row of ``errors.jsonl``.
"""
from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from pipeline.errors import InputError
from pipeline.extract.bgsub import BackgroundModel, background_sample, find_background_file
from pipeline.extract.detect import select_track
from pipeline.extract.models import Models
from pipeline.extract.settings import ExtractSettings
from pipeline.extract.video import VideoReader
from pipeline.formats.video_cache import VideoCache, fingerprint
from pipeline.geometry import CANVAS, MIN_FRAMES, crop_boxes, pack_mask
from pipeline.manifest import SequenceId


class StageError(Exception):
    """A failure inside one stage of one video; becomes an ``errors.jsonl`` row."""

    def __init__(self, stage: str, message: str) -> None:
        super().__init__(message)
        self.stage = stage


@contextlib.contextmanager
def stage(name: str, video: Path) -> Iterator[None]:
    try:
        yield
    except StageError:
        raise
    except Exception as exc:  # noqa: BLE001 - every failure of a video is recorded, none stops the batch
        text = str(exc) or type(exc).__name__
        raise StageError(name, text if str(video) in text else f"{video}: {text}") from exc


def video_settings(settings: ExtractSettings, video: Path, seq: SequenceId) -> tuple[dict[str, Any], str, Path | None]:
    """``(recorded settings, fingerprint, background file or None)`` of one video."""
    bg_file = find_background_file(video, seq.subject, seq.view) if settings.needs_background else None
    rec = settings.recorded()
    if settings.needs_background:
        rec["background"] = bg_file.name if bg_file else "median of the video"
    return rec, fingerprint(rec, video, (bg_file,) if bg_file else ()), bg_file


def extract_video(
    path: Path, seq: SequenceId, settings: ExtractSettings, models: Models, progress: bool = False
) -> tuple[VideoCache, list[tuple[str, str]]]:
    """Run the stages on one video; returns the cache record and its warnings ``(stage, message)``."""
    warnings: list[tuple[str, str]] = []
    bs = settings.batch_size
    recorded, fp, bg_file = video_settings(settings, path, seq)
    with stage("decode", path):
        reader = VideoReader(path)
        info = reader.info
    background = None
    if settings.needs_background:
        with stage("background", bg_file or path):
            sample = background_sample(bg_file, settings.background_frames) if bg_file else reader.sample(settings.background_frames)
            if sample.shape[1:3] != (info.height, info.width):
                raise InputError(f"{bg_file}: {sample.shape[2]}x{sample.shape[1]}, the video is {info.width}x{info.height}")
            background = BackgroundModel(sample)
    models.detector.reset(background)
    models.segmenter.reset(background)

    candidates: list[np.ndarray] = []
    bar = tqdm(total=info.n_frames_header or None, desc=f"detect {path.name}", unit="frame", leave=False,
               position=1, disable=not progress)
    with stage("detect", path), bar:
        for _, frames in reader.batches(bs):
            candidates.extend(models.detector(frames))
            bar.update(len(frames))
    n = reader.n_decoded or 0
    if reader.truncated:
        warnings.append(("decode", f"{path}: decoded {n} of the {info.n_frames_header} frames the header promises (truncated?)"))
    if n < MIN_FRAMES:
        warnings.append(("decode", f"{path}: only {n} frame(s); a gait sequence needs at least {MIN_FRAMES}"))
    track = select_track(candidates)
    if track is None:
        raise StageError("detect", f"{path}: no person found in any of its {n} frames")
    if settings.needs_background and bg_file is None and len(track.frames) >= MIN_FRAMES:
        centre = (track.boxes[:, 0] + track.boxes[:, 2]) / 2
        if np.ptp(centre) < np.mean(track.boxes[:, 2] - track.boxes[:, 0]):
            warnings.append(("background", (
                f"{path}: the person hardly moves across the frame (frontal view?), so a background taken from this "
                f"video holds them; put a background video {seq.subject}-bkgrd-{seq.view}{path.suffix} beside it"
            )))

    crops = crop_boxes(track.boxes, settings.margin, info.width, info.height)  # int32 [T, 4]
    t = len(track.frames)
    mask = np.zeros((t, *CANVAS), np.uint8)
    depth = np.zeros((t, *CANVAS), np.float32)
    crop_size = np.zeros((t, 2), np.int32)
    row = 0
    bar = tqdm(total=t, desc=f"segment+depth {path.name}", unit="frame", leave=False, position=1, disable=not progress)
    with bar:
        for _, frames in reader.batches(bs, keep=track.frames):
            rows = slice(row, row + len(frames))
            with stage("segment", path):
                masks = models.segmenter(frames, [b[None] for b in track.boxes[rows]])  # list of bool [1, H, W]
            rgb_crops = []
            for k, (frame, m, (x0, y0, x1, y1)) in enumerate(zip(frames, masks, crops[rows], strict=False)):
                mask[row + k], size = pack_mask(m[0, y0:y1, x0:x1])
                crop_size[row + k] = size
                rgb_crops.append(np.ascontiguousarray(frame[y0:y1, x0:x1, ::-1]))  # RGB [h, w, 3]
            with stage("depth", path):
                depth[rows] = models.depth.estimate(rgb_crops)
            row += len(frames)
            bar.update(len(frames))
    if row != t:
        raise StageError("decode", f"{path}: the second pass decoded {row} of the {t} frames the first one found")
    if not mask.any():
        warnings.append(("segment", f"{path}: every silhouette is empty"))
    depth16 = depth.astype(np.float16)
    if np.isinf(depth16).any() or (np.abs(depth).max(initial=0) > 0 and not depth16.any()):
        warnings.append(("depth", f"{path}: depth values ({np.abs(depth).max():.3g} at most) do not fit float16"))
    cache = VideoCache(
        video=str(path), subject=seq.subject, condition=seq.condition, view=seq.view, fps=info.fps, width=info.width,
        height=info.height, n_frames=n, fingerprint=fp, settings=recorded,
        depth_near_is_large=bool(models.depth.near_is_large), frames=track.frames, box=track.boxes,
        score=track.scores, crop_box=crops, crop_size=crop_size, mask=mask, depth=depth16,
    )
    return cache, warnings
