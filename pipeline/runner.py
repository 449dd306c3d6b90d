"""``extract`` over a folder of videos: resumable, per-video failures as data, optional workers.

For each video: decode -> (background model) -> detect every frame -> one track -> segment and
estimate depth on the track's crops -> one cache file (``pipeline.extract_cache``). A finished
cache whose fingerprint matches the settings and the video is skipped, so a killed run resumes
where it stopped and a rerun does no work; ``overwrite`` redoes everything. One bad video is one
row in ``errors.jsonl`` and never stops the batch. Models are loaded once per process.
"""
from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from pipeline.detect import BackgroundModel, background_sample, find_background_file, make_detector, select_track
from pipeline.extract_cache import (
    CANVAS,
    VideoCache,
    append_error,
    cache_path,
    fingerprint,
    pack_mask,
    prune_errors,
    read_fingerprint,
    write_video_cache,
)  # fmt: skip
from pipeline.manifest import Manifest, ManifestError, SequenceId, identify_by_folders, load_manifest, read_identity_csv
from pipeline.video import VideoReader
from pipeline.weights import resolve_hf_model, resolve_sam_checkpoint, resolve_yolo_weights

MIN_FRAMES = 5  # fewer frames than this cannot make a gait sequence (align drops them)


@dataclass(frozen=True)
class ExtractSettings:
    detector: str = "bgsub"  # bgsub | yolo
    detector_weights: str = "yolo11n.pt"
    segmenter: str = "bgsub"  # bgsub | sam | yolo-seg
    sam: str = "vit_b"
    seg_weights: str = "yolo11n-seg.pt"
    depth: str = "depth-anything/Depth-Anything-V2-Small-hf"
    device: str = "cpu"
    batch_size: int = 16
    margin: float = 0.1  # share of the box's width/height added on each side of the crop
    depth_input_height: int | None = None  # None: the depth model's own size, at most 266 (pipeline.depth)
    depth_input_aspect: float = 0.6  # width / height of the depth model's input
    background_frames: int = 64  # frames sampled for the median background

    def __post_init__(self) -> None:
        if self.detector not in ("bgsub", "yolo"):
            raise ValueError(f"unknown detector {self.detector!r} (choose bgsub or yolo)")
        if self.segmenter not in ("bgsub", "sam", "yolo-seg"):
            raise ValueError(f"unknown segmenter {self.segmenter!r} (choose bgsub, sam or yolo-seg)")
        if self.batch_size < 1:
            raise ValueError(f"batch size must be >= 1, got {self.batch_size}")
        if not 0 <= self.margin <= 1:
            raise ValueError(f"margin must be in [0, 1], got {self.margin}")

    @property
    def needs_background(self) -> bool:
        return "bgsub" in (self.detector, self.segmenter)

    def recorded(self) -> dict[str, Any]:
        """What shapes the output (stored in the cache and fingerprinted); device and batch size do not."""
        rec: dict[str, Any] = {"detector": self.detector, "segmenter": self.segmenter, "depth_model": self.depth}
        if self.detector == "yolo":
            rec["detector_weights"] = self.detector_weights
        if self.segmenter == "sam":
            rec["sam"] = self.sam
        if self.segmenter == "yolo-seg":
            rec["seg_weights"] = self.seg_weights
        if self.needs_background:
            rec["background_frames"] = self.background_frames
        rec.update(
            margin=self.margin, canvas=list(CANVAS), depth_input_height=self.depth_input_height,
            depth_input_aspect=self.depth_input_aspect,
        )  # fmt: skip
        return rec

    def check_weights(self) -> None:
        """Resolve every weight without loading it: a missing one fails before any video is touched."""
        resolve_hf_model(self.depth)
        if self.detector == "yolo":
            resolve_yolo_weights(self.detector_weights)
        if self.segmenter == "sam":
            resolve_sam_checkpoint(self.sam)
        if self.segmenter == "yolo-seg":
            resolve_yolo_weights(self.seg_weights)


@dataclass
class Models:
    detector: Any
    segmenter: Any
    depth: Any


_MODELS: dict[ExtractSettings, Models] = {}  # one set per process (joblib workers keep theirs)


def load_models(settings: ExtractSettings) -> Models:
    """Load (once per process) the detector, segmenter and depth model the settings name."""
    if settings not in _MODELS:
        from pipeline.depth import DepthEstimator
        from pipeline.segment import make_segmenter

        _MODELS[settings] = Models(
            detector=make_detector(settings.detector, settings.detector_weights, device=settings.device),
            segmenter=make_segmenter(settings.segmenter, settings.sam, settings.seg_weights, device=settings.device),
            depth=DepthEstimator(
                settings.depth, settings.device, settings.depth_input_height, settings.batch_size,
                settings.depth_input_aspect,
            ),  # fmt: skip
        )
    return _MODELS[settings]


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


def crop_boxes(boxes: np.ndarray, margin: float, width: int, height: int) -> np.ndarray:
    """Boxes [T, 4] grown by ``margin`` of their size on each side, rounded outward, clipped: int32 [T, 4]."""
    size = np.concatenate([boxes[:, 2:] - boxes[:, :2]] * 2, axis=1)  # [T, 4] (w, h, w, h)
    grown = boxes + margin * size * np.array([-1, -1, 1, 1], np.float32)
    out = np.concatenate([np.floor(grown[:, :2]), np.ceil(grown[:, 2:])], axis=1)
    out = np.clip(out, 0, [width, height, width, height]).astype(np.int32)
    out[:, 2:] = np.maximum(out[:, 2:], out[:, :2] + 1)  # never empty
    return out


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
                raise ValueError(f"{bg_file}: {sample.shape[2]}x{sample.shape[1]}, the video is {info.width}x{info.height}")
            background = BackgroundModel(sample)
    models.detector.reset(background)
    models.segmenter.reset(background)

    candidates: list[np.ndarray] = []
    bar = tqdm(total=info.n_frames_header or None, desc=f"detect {path.name}", unit="frame", leave=False,
               position=1, disable=not progress)  # fmt: skip
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
            )))  # fmt: skip

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
    )  # fmt: skip
    return cache, warnings


# ---- finding and naming videos -------------------------------------------------------------------
def find_videos(root: str | Path, manifest: Manifest) -> list[Path]:
    """Video files under ``root`` (recursively, the manifest's extensions, skip tokens honoured), sorted."""
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: no such folder of videos")
    exts = {e.lower() for e in manifest.extensions}
    return sorted(
        p for p in root.rglob("*")
        if p.is_file() and p.suffix.lower() in exts and not manifest.is_skipped(p) and not p.name.startswith(".")
    )  # fmt: skip


def identify(videos: list[Path], root: Path, manifest: Manifest, layout: str) -> tuple[list[tuple[Path, SequenceId]], list[tuple[Path, str]]]:
    """``(identified videos, [(video, why not)])`` by the manifest naming, folders, or a CSV file."""
    table = None
    if layout not in ("names", "folders"):
        if not Path(layout).is_file():
            raise ValueError(f"--layout {layout!r}: give names, folders or an existing CSV file (path,subject,condition,view)")
        table = read_identity_csv(layout)
    found: list[tuple[Path, SequenceId]] = []
    bad: list[tuple[Path, str]] = []
    seen: dict[SequenceId, Path] = {}
    for video in videos:
        try:
            if table is not None:
                seq = table.get(video.resolve())
                if seq is None:
                    raise ManifestError(f"{video}: not listed in {layout}")
            elif layout == "folders":
                seq = identify_by_folders(video, root)
            else:
                seq = manifest.identify(video, root)
        except ManifestError as exc:
            bad.append((video, str(exc)))
            continue
        if seq in seen:
            bad.append((video, f"{video}: same sequence {seq.key} as {seen[seq]}; skipped"))
            continue
        seen[seq] = video
        found.append((video, seq))
    return found, bad


# ---- the batch ------------------------------------------------------------------------------------
@dataclass
class ExtractSummary:
    found: int = 0
    done: int = 0
    skipped: int = 0
    failed: int = 0
    warnings: int = 0
    frames: int = 0  # frames with a person, in the videos done now
    seconds: float = 0.0
    rows: list[dict[str, Any]] = field(default_factory=list)

    def line(self, cache_dir: Path) -> str:
        rate = f", {self.frames / self.seconds:.1f} frames/s" if self.seconds > 0 and self.frames else ""
        text = (f"{self.found} videos: {self.done} extracted, {self.skipped} already done, {self.failed} failed, "
                f"{self.warnings} warnings; {self.frames} frames{rate}")  # fmt: skip
        if self.failed or self.warnings:
            text += f" (see {Path(cache_dir) / 'errors.jsonl'})"
        return text


def _silence_model_loading() -> None:
    """No "Loading weights" bars from transformers: in --quiet runs and in worker processes."""
    with contextlib.suppress(ImportError):
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()


def _process(
    video: Path, seq: SequenceId, target: Path, settings: ExtractSettings, models: Models | None, progress: bool,
    threads: int | None = None,
) -> dict[str, Any]:
    """One video in this process (or a joblib worker): write the cache, report rows as data."""
    if threads:
        import torch

        torch.set_num_threads(threads)
    if not progress:
        _silence_model_loading()
    try:
        cache, warnings = extract_video(video, seq, settings, models or load_models(settings), progress)
        with stage("write", video):
            write_video_cache(target, cache)
        return {"video": str(video), "ok": True, "frames": len(cache), "warnings": warnings}
    except StageError as exc:
        return {"video": str(video), "ok": False, "stage": exc.stage, "error": str(exc), "warnings": []}


def run_extract(
    videos_dir: str | Path,
    cache_dir: str | Path = "cache",
    settings: ExtractSettings | None = None,
    manifest: str | Path = "casia-b",
    layout: str = "names",
    workers: int = 1,
    overwrite: bool = False,
    quiet: bool = False,
    models: Models | None = None,
    scheduler: str | None = None,
) -> ExtractSummary:
    """Extract every video under ``videos_dir`` into ``cache_dir``; see the module docstring."""
    import time

    settings = settings or ExtractSettings()
    root, cache_dir = Path(videos_dir), Path(cache_dir)
    man = load_manifest(manifest)
    videos = find_videos(root, man)
    if not videos:
        raise ValueError(f"{root}: no videos ({', '.join(man.extensions)}) found, recursively")
    found, bad = identify(videos, root, man, layout)
    summary = ExtractSummary(found=len(videos))
    todo = []
    for video, seq in found:
        target = cache_path(cache_dir, seq)
        if not overwrite and read_fingerprint(target) == video_settings(settings, video, seq)[1]:
            summary.skipped += 1
        else:
            todo.append((video, seq, target))
    prune_errors(cache_dir, {str(v) for v, *_ in todo} | {str(v) for v, _ in bad})
    for video, why in bad:
        summary.rows.append(append_error(cache_dir, video, "identify", why))
        summary.failed += 1
    if not todo:
        return summary
    settings.check_weights()
    if quiet:
        _silence_model_loading()
    start = time.perf_counter()
    bar = tqdm(total=len(todo), desc="extract", unit="video", disable=quiet)
    with contextlib.ExitStack() as stack:
        if scheduler:  # several machines: joblib's Dask backend (pipeline.cluster)
            from pipeline.cluster import dask_backend

            workers = stack.enter_context(dask_backend(scheduler))
        if workers <= 1 and not scheduler:
            models = models or load_models(settings)
            results: Any = (_process(v, s, t, settings, models, not quiet) for v, s, t in todo)
        else:
            from joblib import Parallel, delayed

            threads = None if scheduler else max(1, (os.cpu_count() or 1) // workers)
            n_jobs = -1 if scheduler else workers  # a cluster: every Dask worker thread
            results = Parallel(n_jobs=n_jobs, return_as="generator_unordered")(
                delayed(_process)(v, s, t, settings, None, False, threads) for v, s, t in todo
            )
        with bar:
            for res in results:
                for where, message in res["warnings"]:
                    summary.rows.append(append_error(cache_dir, res["video"], where, message, level="warning"))
                    summary.warnings += 1
                if res["ok"]:
                    summary.done += 1
                    summary.frames += res["frames"]
                else:
                    summary.rows.append(append_error(cache_dir, res["video"], res["stage"], res["error"]))
                    summary.failed += 1
                bar.update(1)
                bar.set_postfix(failed=summary.failed, refresh=False)
    summary.seconds = time.perf_counter() - start
    return summary
