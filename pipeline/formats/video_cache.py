"""All per-video extract cache I/O (format ``depthgait-extract``, version 2; see docs/CONTRACTS.md).

One HDF5 file per video at ``<cache>/videos/<subject>/<condition>/<view>.h5`` holds everything
align needs without rerunning a model: per-frame box, score, crop region, and the silhouette and
raw depth of the person crop packed on a 128x96 canvas (``pipeline.geometry.pack_canvas``).

``CacheWriter`` streams: the per-frame masks and depth of each batch are appended to resizable,
chunked datasets as they are produced, so memory is bounded by the batch, not the video. The file
is written under a ``.tmp-`` name through ``GuardedFile`` (a failed write never leaves HDF5
half-closed) and renamed into place only when complete. Each file carries a fingerprint of the
settings and the source video (size and a hash of its head and tail, so a copied dataset is not
redone); ``check_cache`` tells finished work from stale or damaged work by opening every dataset.
Version 2 adds the ``compute`` attribute and streamed writing; version-1 files read the same.
A track's cache may hold its trajectory (``track_*``, every frame first to last); absent: its frames.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from pipeline.errors import DepthgaitError
from pipeline.formats.storage import GuardedFile, StorageError, is_storage_error, storage_error
from pipeline.geometry import CANVAS
from pipeline.manifest import SequenceId

FORMAT = "depthgait-extract"
VERSION = 2
READABLE = (1, 2)  # version 1: the same datasets, written whole at the end of a video
_DATASETS = ("frames", "box", "score", "crop_box", "crop_size", "mask", "depth")
_TRACK = ("frames", "box", "score", "crop_box")  # known after the detect pass, written first
_STREAMED = ("crop_size", "mask", "depth")  # appended batch by batch
_TRAJECTORY = ("track_frames", "track_boxes", "track_state")  # optional: every frame of a track, first to last
TRACK_STATES = ("kept", "merged", "border", "small", "interpolated")  # the codes 0-4 of track_state
# dtype and per-row shape of each dataset
_LAYOUT: dict[str, tuple[str, tuple[int, ...]]] = {
    "frames": ("int32", ()), "box": ("float32", (4,)), "score": ("float32", ()), "crop_box": ("int32", (4,)),
    "crop_size": ("int32", (2,)), "mask": ("uint8", CANVAS), "depth": ("float16", CANVAS),
    "track_frames": ("int32", ()), "track_boxes": ("float32", (4,)), "track_state": ("uint8", ()),
}
NO_CACHE, STALE = "no cache yet", "made with other settings or from another video"  # check_cache's two benign answers
HEAD_TAIL_BYTES = 1 << 16  # bytes of a video's start and of its end hashed into its fingerprint (64 KiB each)


class ExtractCacheError(DepthgaitError, ValueError):
    """A cache file is missing, of another format or version, or damaged; the message names it."""


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
    track: int = 0  # which person track of the video (0: the one person of a dataset video)
    tracking: dict[str, int] = field(default_factory=dict)  # frames and tracks the tracker's filters dropped
    track_frames: np.ndarray | None = None  # int32 [N]: the trajectory, every frame first to last (None: `frames`)
    track_boxes: np.ndarray | None = None  # float32 [N, 4]: detected where clean, interpolated where not
    track_state: np.ndarray | None = None  # uint8 [N]: TRACK_STATES codes

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
        for name in _TRAJECTORY if self.track_frames is not None else ():
            setattr(self, name, np.asarray(getattr(self, name), _LAYOUT[name][0]).reshape(-1, *_LAYOUT[name][1]))
            if len(getattr(self, name)) != len(self.track_frames):  # type: ignore[arg-type]
                raise ExtractCacheError(f"{where}: {name} and track_frames differ in length")

    def trajectory(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(frames, boxes, state)`` of every frame the track follows; a cache without them: its kept frames."""
        if self.track_frames is None:
            return self.frames, self.box, np.zeros(len(self.frames), np.uint8)
        return self.track_frames, self.track_boxes, self.track_state  # type: ignore[return-value]

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


def file_signature(path: str | Path) -> tuple[str, int, str]:
    """``(name, size, sha256 of the first and last 64 KiB)``: cheap, and unchanged by ``cp -r`` (new mtimes)."""
    path = Path(path)
    if path.is_dir():  # a folder of frames: every frame's name and size, and the first and last frame's bytes
        from pipeline.extract.video import image_frames

        frames = image_frames(path)
        digest = hashlib.sha256(json.dumps([(f.name, f.stat().st_size) for f in frames]).encode())
        for f in frames[:1] + frames[-1:]:
            digest.update(f.read_bytes())
        return path.name, sum(f.stat().st_size for f in frames), digest.hexdigest()
    size = path.stat().st_size
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        digest.update(f.read(HEAD_TAIL_BYTES))
        if size > HEAD_TAIL_BYTES:
            f.seek(max(HEAD_TAIL_BYTES, size - HEAD_TAIL_BYTES))
            digest.update(f.read())
    return path.name, size, digest.hexdigest()


def fingerprint(settings: dict[str, Any], video: str | Path, extra_files: tuple[str | Path, ...] = ()) -> str:
    """Hash of the settings and the signature of the video (and of other inputs such as a background
    video): equal means the cache is up to date."""
    files = [file_signature(f) for f in (video, *extra_files)]
    blob = json.dumps({"settings": settings, "files": files, "scheme": 2}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:32]


HEADER = ("video", "subject", "condition", "view", "fps", "width", "height", "n_frames", "fingerprint", "settings",
          "depth_near_is_large", "track", "tracking")


def header_attrs(header: dict[str, Any], compute: dict[str, Any] | None = None) -> dict[str, Any]:
    """The root attributes of a cache file from its ``HEADER`` fields; ``compute`` (device, threads,
    batch size: what the bytes, not the meaning, depend on) is stored for the record."""
    h = header
    return {
        "format": FORMAT, "version": VERSION, "video": str(h["video"]), "subject": str(h["subject"]),
        "condition": str(h["condition"]), "view": str(h["view"]), "fps": float(h["fps"]), "width": int(h["width"]),
        "height": int(h["height"]), "n_frames": int(h["n_frames"]), "fingerprint": str(h["fingerprint"]),
        "settings": json.dumps(h["settings"], sort_keys=True), "depth_near_is_large": bool(h["depth_near_is_large"]),
        "compute": json.dumps(compute or {}, sort_keys=True), "track": int(h.get("track", 0) or 0),
        "tracking": json.dumps(h.get("tracking") or {}, sort_keys=True),
    }


class CacheWriter:
    """Stream one video's cache: ``with CacheWriter(path, attrs, track) as w: w.append(...)`` per batch.

    ``track`` holds ``frames``, ``box``, ``score`` and ``crop_box`` of all T rows (known after the
    detect pass), optionally the trajectory's ``track_*``; ``append`` adds the next rows of
    ``crop_size``, ``mask`` and ``depth``. Leaving the block normally checks that all T rows came and renames the file into place; leaving it by an
    exception closes the file and removes it. A full or read-only folder raises ``StorageError``.
    """

    def __init__(self, path: str | Path, attrs: dict[str, Any], track: dict[str, np.ndarray]) -> None:
        self.path = Path(path)
        self.attrs = attrs
        self.track = {n: np.asarray(v, _LAYOUT[n][0]) for n in (*_TRACK, *_TRAJECTORY) if (v := track.get(n)) is not None}
        self.total = len(self.track["frames"])
        self.rows = 0
        self.tmp: Path | None = None
        self._guard: GuardedFile | None = None
        self._h5: h5py.File | None = None

    def _fail(self, exc: OSError) -> StorageError | OSError:
        return storage_error(exc, self.path.parent) if is_storage_error(exc) else exc

    def __enter__(self) -> CacheWriter:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd, name = tempfile.mkstemp(prefix=f".tmp-{self.path.stem}-", suffix=self.path.suffix, dir=self.path.parent)
            os.close(fd)
            self.tmp = Path(name)
            self._guard = GuardedFile(self.tmp)
            self._h5 = h5py.File(self._guard, "w")
            self._h5.attrs.update(self.attrs)
            for name in (*_DATASETS, *(n for n in _TRAJECTORY if n in self.track)):
                dtype, row = _LAYOUT[name]
                chunks = (1, *row) if len(row) == 2 else (1024, *row)  # a frame per chunk for the images
                kwargs: dict[str, Any] = dict(chunks=chunks, maxshape=(None, *row), compression="gzip",
                                              compression_opts=4, shuffle=True)
                if name in self.track:
                    self._h5.create_dataset(name, data=self.track[name].reshape(-1, *row), **kwargs)
                else:
                    self._h5.create_dataset(name, shape=(0, *row), dtype=dtype, **kwargs)
            self._check()
        except BaseException as exc:
            self._abort()
            if isinstance(exc, OSError):
                raise self._fail(exc) from exc
            raise
        return self

    def _check(self) -> None:
        if self._guard is not None and self._guard.error is not None:
            raise storage_error(self._guard.error, self.path.parent)

    def append(self, mask: np.ndarray, depth: np.ndarray, crop_size: np.ndarray) -> None:
        """Add the next ``B`` rows: mask uint8 [B, 128, 96], depth (cast to float16) [B, 128, 96], crop_size [B, 2]."""
        assert self._h5 is not None, "append() outside the with block"
        b = len(mask)
        if self.rows + b > self.total:
            raise ExtractCacheError(f"{self.path}: {self.rows + b} rows appended, the track has {self.total}")
        data = {"mask": np.asarray(mask, np.uint8), "depth": np.asarray(depth, np.float16),
                "crop_size": np.asarray(crop_size, np.int32).reshape(-1, 2)}
        try:
            for name in _STREAMED:
                ds = self._h5[name]
                ds.resize(self.rows + b, axis=0)
                ds[self.rows : self.rows + b] = data[name]
        except OSError as exc:
            raise self._fail(self._guard.error if self._guard and self._guard.error else exc) from exc
        self.rows += b
        self._check()

    def _abort(self) -> None:
        """Close whatever is open (errors here are secondary) and remove the temporary file."""
        with contextlib.suppress(Exception):
            if self._h5 is not None:
                self._h5.close()
        with contextlib.suppress(Exception):
            if self._guard is not None:
                self._guard.close()
        if self.tmp is not None:
            with contextlib.suppress(OSError):
                self.tmp.unlink()
        self._h5 = self._guard = None

    def __exit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> None:
        if exc_type is not None:
            self._abort()
            return
        try:
            if self.rows != self.total:
                raise ExtractCacheError(f"{self.path}: {self.rows} of the track's {self.total} rows were written")
            assert self._h5 is not None and self._guard is not None and self.tmp is not None
            self._h5.close()
            self._guard.flush()
            self._check()
            self._guard.close()
            umask = os.umask(0)
            os.umask(umask)
            os.chmod(self.tmp, 0o666 & ~umask)  # mkstemp makes it private (0600)
            os.replace(self.tmp, self.path)
            self.tmp = None
        except BaseException as exc:
            self._abort()
            if isinstance(exc, OSError):
                raise self._fail(exc) from exc
            raise


def write_video_cache(path: str | Path, cache: VideoCache, compute: dict[str, Any] | None = None) -> Path:
    """Write a whole in-memory record atomically (the streaming writer with one batch)."""
    header = {n: getattr(cache, n) for n in HEADER}
    with CacheWriter(path, header_attrs(header, compute), {n: getattr(cache, n) for n in (*_TRACK, *_TRAJECTORY)}) as writer:
        if len(cache):
            writer.append(cache.mask, cache.depth, cache.crop_size)
    return Path(path)


def _check_version(path: Path, attrs: dict[str, Any]) -> None:
    if attrs.get("format") != FORMAT:
        raise ExtractCacheError(f"{path}: not a {FORMAT} file (format={attrs.get('format')!r})")
    if int(attrs.get("version", -1)) not in READABLE:
        raise ExtractCacheError(f"{path}: {FORMAT} version {attrs.get('version')}, this reader knows {', '.join(map(str, READABLE))}")


def read_video_cache(path: str | Path) -> VideoCache:
    """Read a cache file back; wrong format, version or shapes raise ``ExtractCacheError`` naming it."""
    path = Path(path)
    if not path.is_file():
        raise ExtractCacheError(f"{path}: no such extract cache file")
    try:
        with h5py.File(path, "r") as h5:
            attrs = dict(h5.attrs)
            _check_version(path, attrs)
            missing = [n for n in _DATASETS if n not in h5]
            if missing:
                raise ExtractCacheError(f"{path}: missing dataset(s) {', '.join(missing)}")
            arrays = {n: h5[n][()] for n in (*_DATASETS, *_TRAJECTORY) if n in h5}
    except OSError as exc:
        raise ExtractCacheError(f"{path}: cannot read as HDF5 ({exc})") from exc
    return VideoCache(
        video=str(attrs["video"]), subject=str(attrs["subject"]), condition=str(attrs["condition"]),
        view=str(attrs["view"]), fps=float(attrs["fps"]), width=int(attrs["width"]), height=int(attrs["height"]),
        n_frames=int(attrs["n_frames"]), fingerprint=str(attrs["fingerprint"]), settings=json.loads(attrs["settings"]),
        depth_near_is_large=bool(attrs["depth_near_is_large"]), path=path, track=int(attrs.get("track", 0)),
        tracking=json.loads(attrs.get("tracking", "{}")), **arrays,
    )


def check_cache(path: str | Path, expected: str | None = None) -> str | None:
    """``None`` when ``path`` is a complete cache (of fingerprint ``expected`` when given), else why not.

    Cheap enough for every skip: attributes, every dataset's presence, shape and dtype, the small
    per-frame arrays, and the first and last chunk of mask and depth (a cut file fails there).
    """
    path = Path(path)
    if not path.is_file():
        return NO_CACHE
    try:
        with h5py.File(path, "r") as h5:
            _check_version(path, dict(h5.attrs))
            if expected is not None and str(h5.attrs.get("fingerprint")) != expected:
                return STALE
            if "frames" not in h5:
                return "dataset frames missing"
            t = h5["frames"].shape[0] if h5["frames"].ndim == 1 else -1
            n = h5["track_frames"].shape[0] if "track_frames" in h5 else None  # the optional trajectory
            for name in (*_DATASETS, *(_TRAJECTORY if n is not None else ())):
                dtype, row = _LAYOUT[name]
                rows = n if name in _TRAJECTORY else t
                if name not in h5:
                    return f"dataset {name} missing"
                ds = h5[name]
                if ds.shape != (rows, *row) or ds.dtype != np.dtype(dtype):
                    return f"dataset {name} is {ds.dtype} {ds.shape}, expected {dtype} {(rows, *row)}"
                if name in (*_TRACK, *_TRAJECTORY) or name == "crop_size":
                    ds[()]
                elif t:
                    ds[0], ds[t - 1]
    except ExtractCacheError as exc:
        return str(exc)
    except (OSError, KeyError, ValueError, RuntimeError) as exc:
        return f"unreadable ({str(exc).splitlines()[0] if str(exc) else type(exc).__name__})"
    return None


def read_fingerprint(path: str | Path) -> str | None:
    """The stored fingerprint, or None when the file is missing or unreadable (then it is redone)."""
    try:
        with h5py.File(path, "r") as h5:
            if h5.attrs.get("format") != FORMAT or int(h5.attrs.get("version", -1)) not in READABLE:
                return None
            return str(h5.attrs["fingerprint"])
    except (OSError, KeyError):
        return None


def list_caches(cache_dir: str | Path) -> list[Path]:
    """Finished cache files under ``<cache>/videos`` (temporary ``.tmp-`` files excluded), sorted."""
    root = Path(cache_dir) / "videos"
    return sorted(p for p in root.glob("*/*/*.h5") if not p.name.startswith(".tmp-"))


def temp_files(cache_dir: str | Path) -> list[Path]:
    """``.tmp-`` files of unfinished writes in the cache (per-video folders and the root), sorted."""
    root = Path(cache_dir)
    return sorted([*root.glob(".tmp-*"), *(root / "videos").glob("*/*/.tmp-*")])


