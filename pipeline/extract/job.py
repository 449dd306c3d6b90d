"""One video through the stages: decode -> (background) -> detect -> one track -> segment + depth.

``stream_video`` is the one pass: it yields the track (header and per-frame boxes, known after the
detect pass) and then each batch's masks and float16 depth as they are produced. ``extract_to_cache``
streams them into the cache file (memory bounded by the batch, not the video); ``extract_video``
gathers them in memory (``depthgait_model.infer``). A failure inside a stage becomes a
``StageError`` naming the stage and the video (one row of ``errors.jsonl``); a full or read-only
cache folder is a ``StorageError`` that stops the run.
"""
from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from pipeline.errors import InputError
from pipeline.extract.bgsub import BackgroundModel, background_sample, find_background_file
from pipeline.extract.detect import select_track
from pipeline.extract.models import Models
from pipeline.extract.settings import ExtractSettings
from pipeline.extract.video import VideoError, VideoReader, frame_sizes, prefetch
from pipeline.formats.h5guard import StorageError
from pipeline.formats.video_cache import CacheWriter, ExtractCacheError, VideoCache, fingerprint, header_attrs
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
    except (StageError, StorageError):
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


@dataclass
class TrackHead:
    """What the detect pass knows: the cache's header fields and the track's per-frame arrays."""

    header: dict[str, Any]  # pipeline.formats.video_cache.HEADER fields
    track: dict[str, np.ndarray]  # frames, box, score, crop_box (T rows)


Batch = tuple[np.ndarray, np.ndarray, np.ndarray]  # mask uint8 [B, 128, 96], depth float16 [B, 128, 96], crop_size [B, 2]


def _check_size_is_constant(path: Path) -> None:
    sizes = frame_sizes(path)
    if sizes and len(sizes) > 1:
        shown = " then ".join(f"{w}x{h}" for w, h in sizes[:4])
        raise VideoError(f"{path}: the frame size changes mid-stream ({shown}); OpenCV would rescale the later frames "
                         "to the first size, so re-encode the video at one size")


def _background(path: Path, bg_file: Path | None, reader: VideoReader, settings: ExtractSettings) -> BackgroundModel:
    info = reader.info
    with stage("background", bg_file or path):
        sample = background_sample(bg_file, settings.background_frames) if bg_file else reader.sample(settings.background_frames)
        if sample.shape[1:3] != (info.height, info.width):
            raise InputError(f"{bg_file}: {sample.shape[2]}x{sample.shape[1]}, the video is {info.width}x{info.height}")
        return BackgroundModel(sample)  # the sample (up to 64 full frames) is freed on return


def stream_video(
    path: Path, seq: SequenceId, settings: ExtractSettings, models: Models, warnings: list[tuple[str, str]],
    progress: bool = False, heartbeat: Callable[[], None] = lambda: None,
) -> Iterator[TrackHead | Batch]:
    """Yield the ``TrackHead``, then one ``Batch`` per frame batch; warnings ``(stage, message)`` are
    appended to ``warnings``. ``heartbeat`` is called once per batch (a claim stays fresh)."""
    bs = settings.batch_size
    recorded, fp, bg_file = video_settings(settings, path, seq)
    with stage("decode", path):
        reader = VideoReader(path)
        info = reader.info
        _check_size_is_constant(path)
    background = _background(path, bg_file, reader, settings) if settings.needs_background else None
    models.detector.reset(background)
    models.segmenter.reset(background)

    candidates: list[np.ndarray] = []
    bar = tqdm(total=info.n_frames_header or None, desc=f"detect {path.name}", unit="frame", leave=False,
               position=1, disable=not progress)
    with stage("detect", path), bar:
        for _, frames in prefetch(reader.batches(bs)):
            candidates.extend(models.detector(frames))
            bar.update(len(frames))
            heartbeat()
    n = reader.n_decoded or 0
    if reader.truncated:
        warnings.append(("decode", f"{path}: decoded {n} of the {info.n_frames_header} frames the header promises (truncated?)"))
    if n < MIN_FRAMES:
        warnings.append(("decode", f"{path}: only {n} frame(s); a gait sequence needs at least {MIN_FRAMES}"))
    track = select_track(candidates)
    del candidates
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
    header = dict(
        video=str(path), subject=seq.subject, condition=seq.condition, view=seq.view, fps=info.fps, width=info.width,
        height=info.height, n_frames=n, fingerprint=fp, settings=recorded,
        depth_near_is_large=bool(models.depth.near_is_large),
    )
    yield TrackHead(header, {"frames": track.frames, "box": track.boxes, "score": track.scores, "crop_box": crops})

    row, any_mask, peak, lost, overflow = 0, False, 0.0, False, False
    bar = tqdm(total=t, desc=f"segment+depth {path.name}", unit="frame", leave=False, position=1, disable=not progress)
    with bar:
        for _, frames in prefetch(reader.batches(bs, keep=track.frames)):
            rows = slice(row, row + len(frames))
            with stage("segment", path):
                masks = models.segmenter(frames, [b[None] for b in track.boxes[rows]])  # list of bool [1, H, W]
            mask = np.zeros((len(frames), *CANVAS), np.uint8)
            crop_size = np.zeros((len(frames), 2), np.int32)
            rgb_crops = []
            for k, (frame, m, (x0, y0, x1, y1)) in enumerate(zip(frames, masks, crops[rows], strict=False)):
                mask[k], crop_size[k] = pack_mask(m[0, y0:y1, x0:x1])
                rgb_crops.append(np.ascontiguousarray(frame[y0:y1, x0:x1, ::-1]))  # RGB [h, w, 3]
            with stage("depth", path):
                depth = models.depth.estimate(rgb_crops)  # float32 [B, 128, 96]
            depth16 = depth.astype(np.float16)
            big = float(np.abs(depth).max(initial=0))
            peak = max(peak, big)
            overflow |= bool(np.isinf(depth16).any())
            lost |= big > 0 and not depth16.any()
            any_mask |= bool(mask.any())
            row += len(frames)
            bar.update(len(frames))
            heartbeat()
            yield mask, depth16, crop_size
    if row != t:
        raise StageError("decode", f"{path}: the second pass decoded {row} of the {t} frames the first one found")
    if not any_mask:
        warnings.append(("segment", f"{path}: every silhouette is empty"))
    if overflow or lost:
        warnings.append(("depth", f"{path}: depth values ({peak:.3g} at most) do not fit float16"))


def extract_video(
    path: Path, seq: SequenceId, settings: ExtractSettings, models: Models, progress: bool = False
) -> tuple[VideoCache, list[tuple[str, str]]]:
    """Run the stages on one video in memory; returns the cache record and its warnings ``(stage, message)``.

    Runs with ``settings.threads`` threads, as ``run_extract`` does, so the record equals the cache's."""
    from pipeline.extract.worker import threads

    warnings: list[tuple[str, str]] = []
    with threads(settings.threads):
        parts = stream_video(path, seq, settings, models, warnings, progress)
        head = next(parts)
        assert isinstance(head, TrackHead)
        batches = list(parts)
    joined = [np.concatenate([b[i] for b in batches]) if batches else None for i in range(3)]
    empty = np.zeros((0, *CANVAS))
    cache = VideoCache(
        **head.header, **head.track, mask=empty if joined[0] is None else joined[0],
        depth=empty if joined[1] is None else joined[1], crop_size=np.zeros((0, 2)) if joined[2] is None else joined[2],
    )
    return cache, warnings


def compute_record(settings: ExtractSettings) -> dict[str, Any]:
    """What the bytes (not the meaning) of a cache depend on; stored in each file, not fingerprinted."""
    half = settings.half and settings.device.startswith("cuda")
    return {"device": settings.device, "threads": settings.threads, "batch_size": settings.batch_size, "half": half}


def extract_to_cache(
    path: Path, seq: SequenceId, settings: ExtractSettings, models: Models, target: Path, progress: bool = False,
    heartbeat: Callable[[], None] = lambda: None,
) -> tuple[int, list[tuple[str, str]]]:
    """Stream one video into its cache file at ``target``; returns ``(rows, warnings)``."""
    warnings: list[tuple[str, str]] = []
    parts = stream_video(path, seq, settings, models, warnings, progress, heartbeat)
    head = next(parts)
    assert isinstance(head, TrackHead)
    try:
        with CacheWriter(target, header_attrs(head.header, compute_record(settings)), head.track) as writer:
            for mask, depth, crop_size in parts:  # type: ignore[misc]
                writer.append(mask, depth, crop_size)
    except (StageError, StorageError):
        raise
    except (ExtractCacheError, OSError) as exc:  # an I/O error of this file only (not a full or read-only folder)
        raise StageError("write", f"{path}: {target}: {exc}") from exc
    return writer.rows, warnings
