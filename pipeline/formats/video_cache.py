"""All per-video extract cache I/O (format ``depthgait-extract``, version 1; see docs/CONTRACTS.md).

One HDF5 file per video at ``<cache>/videos/<subject>/<condition>/<view>.h5`` holds everything
align needs without rerunning a model: per-frame box, score, crop region, and the silhouette and
raw depth of the person crop packed on a 128x96 canvas. ``pack_canvas`` is the one definition of
that packing (uniform scale to fit, top-left, ``crop_size`` = the valid region), shared with align.
Files are written atomically and carry a fingerprint of the settings and the source video, so a
rerun can tell finished work from stale work. Failures are rows in ``<cache>/errors.jsonl``.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from pipeline.atomic import atomic_path
from pipeline.errors import DepthgaitError
from pipeline.geometry import CANVAS
from pipeline.manifest import SequenceId

FORMAT = "depthgait-extract"
VERSION = 1
_DATASETS = ("frames", "box", "score", "crop_box", "crop_size", "mask", "depth")


class ExtractCacheError(DepthgaitError, ValueError):
    """A cache file is missing, of another format or version, or damaged; the message names it."""


# ---- canvas packing -------------------------------------------------------------------------------


# ---- the cache record ------------------------------------------------------------------------------
@dataclass
class VideoCache:
    """One video's extract results; arrays have one row per frame in which the person was found."""

    video: str
    subject: str
    condition: str
    view: str
    fps: float
    width: int
    height: int
    n_frames: int
    fingerprint: str
    settings: dict[str, Any]
    depth_near_is_large: bool
    frames: np.ndarray  # int32 [T]
    box: np.ndarray  # float32 [T, 4] x0 y0 x1 y1
    score: np.ndarray  # float32 [T]
    crop_box: np.ndarray  # int32 [T, 4]
    crop_size: np.ndarray  # int32 [T, 2] (h, w)
    mask: np.ndarray  # uint8 [T, 128, 96] 0/255
    depth: np.ndarray  # float16 [T, 128, 96]
    path: Path | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        self.frames = np.asarray(self.frames, dtype=np.int32)
        self.box = np.asarray(self.box, dtype=np.float32).reshape(-1, 4)
        self.score = np.asarray(self.score, dtype=np.float32)
        self.crop_box = np.asarray(self.crop_box, dtype=np.int32).reshape(-1, 4)
        self.crop_size = np.asarray(self.crop_size, dtype=np.int32).reshape(-1, 2)
        self.mask = np.asarray(self.mask, dtype=np.uint8)
        self.depth = np.asarray(self.depth, dtype=np.float16)
        t = len(self.frames)
        where = self.path or self.video
        for name in ("box", "score", "crop_box", "crop_size"):
            if len(getattr(self, name)) != t:
                raise ExtractCacheError(f"{where}: {name} has {len(getattr(self, name))} rows, frames has {t}")
        for name in ("mask", "depth"):
            if getattr(self, name).shape != (t, *CANVAS):
                raise ExtractCacheError(f"{where}: {name} must be [{t}, {CANVAS[0]}, {CANVAS[1]}], got {getattr(self, name).shape}")

    @property
    def id(self) -> SequenceId:
        return SequenceId(self.subject, self.condition, self.view)

    def __len__(self) -> int:
        return len(self.frames)


def absolute_video(cache: VideoCache, cwd: str | Path | None = None) -> str:
    """The cache's source video as an absolute path, so later steps work from any folder.

    Older caches (and runs given a relative folder) store the path relative to where extract ran:
    that is taken to be the current folder or, failing that, the folder holding the cache folder
    (``<there>/cache/videos/<subject>/<condition>/<view>.h5``). Neither existing, the current folder wins.
    """
    video = Path(cache.video)
    if video.is_absolute():
        return str(video)
    here = Path(cwd) if cwd is not None else Path.cwd()
    candidates = [here / video]
    stored = Path(cache.path).resolve() if cache.path is not None else None
    if stored is not None and len(stored.parents) > 4:
        candidates.append(stored.parents[4] / video)
    for candidate in candidates:
        if candidate.exists():
            return str(candidate.resolve())
    return str(candidates[0].resolve())


def cache_path(cache_dir: str | Path, seq: SequenceId) -> Path:
    return Path(cache_dir) / "videos" / seq.subject / seq.condition / f"{seq.view}.h5"


def fingerprint(settings: dict[str, Any], video: str | Path, extra_files: tuple[str | Path, ...] = ()) -> str:
    """Hash of the settings and the video's size and mtime (and of other inputs such as a background
    video): equal means the cache is up to date."""
    stats = [(Path(f).name, Path(f).stat().st_size, Path(f).stat().st_mtime_ns) for f in (video, *extra_files)]
    blob = json.dumps({"settings": settings, "files": stats, "v": VERSION}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:32]


def write_video_cache(path: str | Path, cache: VideoCache) -> Path:
    """Write atomically: a killed run leaves a ``.tmp-`` file at most, never a half file under ``path``."""
    path = Path(path)
    with atomic_path(path) as tmp, h5py.File(tmp, "w") as h5:
        attrs = {
            "format": FORMAT, "version": VERSION, "video": str(cache.video), "subject": cache.subject,
            "condition": cache.condition, "view": cache.view, "fps": float(cache.fps), "width": int(cache.width),
            "height": int(cache.height), "n_frames": int(cache.n_frames), "fingerprint": cache.fingerprint,
            "settings": json.dumps(cache.settings, sort_keys=True), "depth_near_is_large": bool(cache.depth_near_is_large),
        }
        h5.attrs.update(attrs)
        t = len(cache)
        for name in _DATASETS:
            data = getattr(cache, name)
            chunks = (1, *data.shape[1:]) if t else None  # one frame per chunk; an empty set cannot be chunked
            h5.create_dataset(
                name, data=data, chunks=chunks, compression="gzip" if t else None, shuffle=bool(t),
                compression_opts=4 if t else None,
            )
    return path


def read_video_cache(path: str | Path) -> VideoCache:
    """Read a cache file back; wrong format, version or shapes raise ``ExtractCacheError`` naming it."""
    path = Path(path)
    if not path.is_file():
        raise ExtractCacheError(f"{path}: no such extract cache file")
    try:
        with h5py.File(path, "r") as h5:
            attrs = dict(h5.attrs)
            if attrs.get("format") != FORMAT:
                raise ExtractCacheError(f"{path}: not a {FORMAT} file (format={attrs.get('format')!r})")
            if int(attrs.get("version", -1)) != VERSION:
                raise ExtractCacheError(f"{path}: {FORMAT} version {attrs.get('version')}, this reader knows {VERSION}")
            missing = [n for n in _DATASETS if n not in h5]
            if missing:
                raise ExtractCacheError(f"{path}: missing dataset(s) {', '.join(missing)}")
            arrays = {n: h5[n][()] for n in _DATASETS}
    except OSError as exc:
        raise ExtractCacheError(f"{path}: cannot read as HDF5 ({exc})") from exc
    return VideoCache(
        video=str(attrs["video"]), subject=str(attrs["subject"]), condition=str(attrs["condition"]),
        view=str(attrs["view"]), fps=float(attrs["fps"]), width=int(attrs["width"]), height=int(attrs["height"]),
        n_frames=int(attrs["n_frames"]), fingerprint=str(attrs["fingerprint"]), settings=json.loads(attrs["settings"]),
        depth_near_is_large=bool(attrs["depth_near_is_large"]), path=path, **arrays,
    )


def read_fingerprint(path: str | Path) -> str | None:
    """The stored fingerprint, or None when the file is missing or unreadable (then it is redone)."""
    try:
        with h5py.File(path, "r") as h5:
            if h5.attrs.get("format") != FORMAT or int(h5.attrs.get("version", -1)) != VERSION:
                return None
            return str(h5.attrs["fingerprint"])
    except (OSError, KeyError):
        return None


def list_caches(cache_dir: str | Path) -> list[Path]:
    """Finished cache files under ``<cache>/videos`` (temporary ``.tmp-`` files excluded), sorted."""
    root = Path(cache_dir) / "videos"
    return sorted(p for p in root.glob("*/*/*.h5") if not p.name.startswith(".tmp-"))


# ---- errors.jsonl ----------------------------------------------------------------------------------


