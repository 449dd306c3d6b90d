"""One video through the stages: decode -> (background) -> detect -> track(s) -> segment + depth.

``stream_video`` is the one pass: it yields the tracks (header and per-frame boxes, known after the
detect pass: one walker, or every person with ``--tracks all``, ``pipeline.extract.track``, whose
tracker follows the detect pass batch by batch so a long video's blob crops are never all held) and
then each batch's masks and float16 depth per track as they are produced. ``extract_to_cache``
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

from pipeline.errors import InputError
from pipeline.extract.bgsub import BackgroundModel, background_sample, find_background_file
from pipeline.extract.detect import BgSubDetector, Track, select_track
from pipeline.extract.models import Models
from pipeline.extract.settings import ExtractSettings
from pipeline.extract.track import BlobMasks, RawTracker, track_people
from pipeline.extract.video import VideoError, VideoReader, frame_sizes, prefetch
from pipeline.formats.storage import StorageError
from pipeline.formats.video_cache import (
    CacheWriter,
    ExtractCacheError,
    VideoCache,
    cache_path,
    fingerprint,
    header_attrs,
)
from pipeline.geometry import CANVAS, MIN_FRAMES, crop_boxes, pack_mask
from pipeline.manifest import SequenceId
from pipeline.progress import progress as progress_bar


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
    track: dict[str, np.ndarray]  # frames, box, score, crop_box (T rows); track_frames, _boxes, _state (N rows)


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


def _find_tracks(candidates: list[np.ndarray], settings: ExtractSettings, info: Any, splits: int,
                 follow: RawTracker | None = None) -> tuple[list[Track], dict]:
    """``longest``: the one walker (``select_track``); ``all``: every person track that passes the filters
    (``follow``: the tracker already fed every frame as it was detected)."""
    if settings.track_mode == "longest":
        track = select_track(candidates)
        return ([] if track is None else [track]), {}
    assert follow is not None, "--tracks all: the tracker follows the detect pass"
    tracks, stats = track_people(candidates, info.width, info.height, info.fps, settings.tracker, raw=follow.raw)
    stats.blobs_split = splits
    return tracks, stats.to_dict()


def track_id(seq: SequenceId, track: int, mode: str) -> SequenceId:
    """The sequence of one track: with ``--tracks all`` the subject is ``<subject>.<track>``."""
    return seq if mode == "longest" else seq._replace(subject=f"{seq.subject}.{track}")


def follow_people(settings: ExtractSettings, detector: Any, info: Any) -> tuple[BlobMasks | None, RawTracker | None]:
    """``--tracks all``: the tracker that follows the detect pass and, over bgsub blobs, the blobs' foreground
    it cuts a shared blob with; ``longest`` needs neither (the one walker is chosen after the pass)."""
    if settings.track_mode != "all":
        return None, None
    masks = BlobMasks() if isinstance(detector, BgSubDetector) else None
    return masks, RawTracker(settings.tracker, info.fps, blobs=settings.detector == "bgsub", masks=masks,
                             size=(info.width, info.height))


def detect_and_follow(frames: np.ndarray, detector: Any, masks: BlobMasks | None, follow: RawTracker | None,
                      path: Path) -> list[np.ndarray]:
    """One batch's candidates; the tracker follows them at once, so the batch's blob crops can be dropped."""
    found = masks.detect(detector, frames) if masks else detector(frames)
    if follow is not None:
        with stage("track", path):
            follow.feed(found)
    return found


def stream_video(
    path: Path, seq: SequenceId, settings: ExtractSettings, models: Models, warnings: list[tuple[str, str]],
    progress: bool = False, heartbeat: Callable[[], None] = lambda: None,
) -> Iterator[list[TrackHead] | tuple[int, Batch]]:
    """Yield the list of ``TrackHead`` (one per kept track), then ``(track index, Batch)`` per frame
    batch and track; warnings ``(stage, message)`` are appended to ``warnings``. ``heartbeat`` is
    called once per batch (a claim stays fresh)."""
    bs = settings.batch_size
    recorded, fp, bg_file = video_settings(settings, path, seq)
    with stage("decode", path):
        reader = VideoReader(path)
        info = reader.info
        _check_size_is_constant(path)
    background = _background(path, bg_file, reader, settings) if settings.needs_background else None
    models.detector.reset(background, split=settings.track_mode == "all")
    models.segmenter.reset(background)

    candidates: list[np.ndarray] = []
    # --tracks all over bgsub blobs: the blobs' foreground, so one that several tracks claim is cut between them;
    # the tracker follows each batch as it is detected, and a frame's crops are dropped once it passed it
    with stage("track", path):
        masks, follow = follow_people(settings, models.detector, info)
    bar = progress_bar(total=info.n_frames_header or None, desc=f"detect {path.name}", unit="frame", leave=False,
               position=1, disable=not progress)
    with stage("detect", path), bar:
        for _, frames in prefetch(reader.batches(bs)):
            candidates.extend(detect_and_follow(frames, models.detector, masks, follow, path))
            bar.update(len(frames))
            heartbeat()
    n = reader.n_decoded or 0
    if reader.truncated:
        warnings.append(("decode", f"{path}: decoded {n} of the {info.n_frames_header} frames the header promises (truncated?)"))
    if n < MIN_FRAMES:
        warnings.append(("decode", f"{path}: only {n} frame(s); a gait sequence needs at least {MIN_FRAMES}"))
    with stage("track", path):
        tracks, dropped = _find_tracks(candidates, settings, info, int(getattr(models.detector, "splits", 0)), follow)
    del candidates, masks, follow
    if not tracks:
        why = "" if not dropped else f" that passes the track filters ({dropped})"
        raise StageError("detect", f"{path}: no person found{why} in any of its {n} frames")
    for track in sorted(tracks, key=lambda tr: len(tr.frames))[-1:]:  # the main walker (a crowd: the longest track)
        if settings.needs_background and bg_file is None and len(track.frames) >= MIN_FRAMES:
            centre = (track.boxes[:, 0] + track.boxes[:, 2]) / 2
            if np.ptp(centre) < np.mean(track.boxes[:, 2] - track.boxes[:, 0]):
                warnings.append(("background", (
                    f"{path}: the person hardly moves across the frame (frontal view?), so a background taken from "
                    f"this video holds them; put a background video {seq.subject}-bkgrd-{seq.view}{path.suffix} beside it"
                )))
                break

    heads, crops = [], []
    for k, track in enumerate(tracks):
        crop = crop_boxes(track.boxes, settings.margin, info.width, info.height)  # int32 [T, 4]
        number = 0 if settings.track_mode == "longest" else k + 1
        tid = track_id(seq, number, settings.track_mode)
        header = dict(
            video=str(path), subject=tid.subject, condition=tid.condition, view=tid.view, fps=info.fps,
            width=info.width, height=info.height, n_frames=n, fingerprint=fp, settings=recorded,
            depth_near_is_large=bool(models.depth.near_is_large), track=number, tracking=dropped,
        )
        arrays = {"frames": track.frames, "box": track.boxes, "score": track.scores, "crop_box": crop}
        followed = getattr(track, "trajectory", None)  # --tracks all: every frame the track follows (track_link)
        if followed is not None:
            arrays.update(track_frames=followed.frames, track_boxes=followed.boxes, track_state=followed.state)
        heads.append(TrackHead(header, arrays))
        crops.append(crop)
    yield heads

    wanted = np.unique(np.concatenate([t.frames for t in tracks]))
    rows = [0] * len(tracks)
    any_mask, peak, lost, overflow = False, 0.0, False, False
    bar = progress_bar(total=len(wanted), desc=f"segment+depth {path.name}", unit="frame", leave=False, position=1,
               disable=not progress)
    with bar:
        for idx, frames in prefetch(reader.batches(bs, keep=wanted)):
            # every track's rows in this batch: (track, rows of the track, positions in the batch)
            parts = []
            for k, track in enumerate(tracks):
                pos = np.searchsorted(idx, track.frames[rows[k]:])
                pos = pos[(pos < len(idx))]
                pos = pos[idx[pos] == track.frames[rows[k]:rows[k] + len(pos)]]
                if len(pos):
                    parts.append((k, slice(rows[k], rows[k] + len(pos)), pos))
            boxes = [np.zeros((0, 4), np.float32) for _ in frames]
            where: list[list[tuple[int, int]]] = [[] for _ in frames]
            for k, sl, pos in parts:
                for r, p in zip(range(sl.start, sl.stop), pos, strict=True):
                    where[p].append((k, r))
                    boxes[p] = np.concatenate([boxes[p], tracks[k].boxes[r][None]])
            with stage("segment", path):
                masks = models.segmenter(frames, boxes)  # list of bool [K_i, H, W]
            out = {k: ([], [], []) for k, _, _ in parts}
            rgb_crops, order = [], []
            for p, frame in enumerate(frames):
                for j, (k, r) in enumerate(where[p]):
                    x0, y0, x1, y1 = crops[k][r]
                    m, size = pack_mask(masks[p][j, y0:y1, x0:x1])
                    out[k][0].append(m)
                    out[k][2].append(size)
                    rgb_crops.append(np.ascontiguousarray(frame[y0:y1, x0:x1, ::-1]))  # RGB [h, w, 3]
                    order.append(k)
            with stage("depth", path):
                depth = models.depth.estimate(rgb_crops) if rgb_crops else np.zeros((0, *CANVAS), np.float32)
            depth16 = depth.astype(np.float16)
            big = float(np.abs(depth).max(initial=0))
            peak = max(peak, big)
            overflow |= bool(np.isinf(depth16).any())
            lost |= big > 0 and not depth16.any()
            for d, k in zip(depth16, order, strict=True):
                out[k][1].append(d)
            for k, sl, _ in parts:
                mask = np.stack(out[k][0]).astype(np.uint8)
                any_mask |= bool(mask.any())
                rows[k] = sl.stop
                yield k, (mask, np.stack(out[k][1]), np.stack(out[k][2]).astype(np.int32))
            bar.update(len(frames))
            heartbeat()
    for k, track in enumerate(tracks):
        if rows[k] != len(track.frames):
            raise StageError("decode", f"{path}: the second pass decoded {rows[k]} of the {len(track.frames)} frames "
                                       "the first one found")
    if not any_mask:
        warnings.append(("segment", f"{path}: every silhouette is empty"))
    if overflow or lost:
        warnings.append(("depth", f"{path}: depth values ({peak:.3g} at most) do not fit float16"))


def extract_tracks(
    path: Path, seq: SequenceId, settings: ExtractSettings, models: Models, progress: bool = False
) -> tuple[list[VideoCache], list[tuple[str, str]]]:
    """Run the stages on one video in memory: one cache record per kept track, and the warnings.

    Runs with ``settings.threads`` threads, as ``run_extract`` does, so each record equals its cache."""
    from pipeline.extract.worker import threads

    warnings: list[tuple[str, str]] = []
    with threads(settings.threads):
        parts = stream_video(path, seq, settings, models, warnings, progress)
        heads = next(parts)
        assert isinstance(heads, list)
        batches: list[list[Batch]] = [[] for _ in heads]
        for k, batch in parts:  # type: ignore[misc]
            batches[k].append(batch)
    caches = []
    for head, got in zip(heads, batches, strict=True):
        joined = [np.concatenate([b[i] for b in got]) if got else None for i in range(3)]
        empty = np.zeros((0, *CANVAS))
        caches.append(VideoCache(
            **head.header, **head.track, mask=empty if joined[0] is None else joined[0],
            depth=empty if joined[1] is None else joined[1],
            crop_size=np.zeros((0, 2)) if joined[2] is None else joined[2],
        ))
    return caches, warnings


def extract_video(
    path: Path, seq: SequenceId, settings: ExtractSettings, models: Models, progress: bool = False
) -> tuple[VideoCache, list[tuple[str, str]]]:
    """One video's first track in memory (its one walker with ``--tracks longest``) and the warnings."""
    caches, warnings = extract_tracks(path, seq, settings, models, progress)
    return caches[0], warnings


def compute_record(settings: ExtractSettings) -> dict[str, Any]:
    """What the bytes (not the meaning) of a cache depend on; stored in each file, not fingerprinted."""
    half = settings.half and settings.device.startswith("cuda")
    return {"device": settings.device, "threads": settings.threads, "batch_size": settings.batch_size, "half": half}


def extract_to_cache(
    path: Path, seq: SequenceId, settings: ExtractSettings, models: Models, target: Path, progress: bool = False,
    heartbeat: Callable[[], None] = lambda: None,
) -> tuple[int, list[tuple[str, str]]]:
    """Stream one video into its cache file at ``target``; returns ``(rows, warnings)``.

    With ``--tracks all`` ``target`` is the video's track list (``pipeline.extract.track_index``):
    each track goes to the cache of its own sequence, and the list is written last."""
    from pipeline.extract.track_index import cache_root, write_index

    warnings: list[tuple[str, str]] = []
    parts = stream_video(path, seq, settings, models, warnings, progress, heartbeat)
    heads = next(parts)
    assert isinstance(heads, list)
    several = settings.track_mode == "all"
    targets = [cache_path(cache_root(target), SequenceId(h.header["subject"], h.header["condition"], h.header["view"]))
               if several else target for h in heads]
    where = target
    writers: dict[int, CacheWriter] = {}

    def start(k: int, stack: contextlib.ExitStack) -> contextlib.ExitStack:
        own = stack.enter_context(contextlib.ExitStack())  # closed early (done) or with the outer stack (failed)
        writers[k] = own.enter_context(CacheWriter(targets[k], header_attrs(heads[k].header, compute_record(settings)),
                                                   heads[k].track))
        return own

    try:
        with contextlib.ExitStack() as stack:
            # a track's file is opened at its first batch and finished after its last: a long video with many
            # people holds the HDF5 buffers of the tracks under way, not of every track of the video
            open_: dict[int, contextlib.ExitStack] = {}
            for k, (mask, depth, crop_size) in parts:  # type: ignore[misc]
                where = targets[k]
                if k not in writers:
                    open_[k] = start(k, stack)
                writers[k].append(mask, depth, crop_size)
                if writers[k].rows == writers[k].total:
                    open_.pop(k).close()  # all its rows came: renamed into place
            for k in range(len(heads)):  # a track no batch came for: its writer says what is missing
                if k not in writers:
                    where = targets[k]
                    start(k, stack).close()
        if several:
            where = target
            write_index(target, heads[0].header["fingerprint"], targets)
    except (StageError, StorageError):
        raise
    except (ExtractCacheError, OSError) as exc:  # an I/O error of this file only (not a full or read-only folder)
        raise StageError("write", f"{path}: {where}: {exc}") from exc
    return sum(w.rows for w in writers.values()), warnings
