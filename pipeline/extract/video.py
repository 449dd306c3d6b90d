"""Decode videos in frame batches with OpenCV, with one clear error per kind of bad file.

A video is a file, or a folder of image frames (``img_0001.png`` ..., as CASIA-B frames, OU-MVLP
and SUSTech1K RAW come), read in natural name order at 25 frames/s (``ImageSequence``).

Every later stage works on batches ``uint8 [B, H, W, 3]`` (BGR, as OpenCV decodes), so a grayscale
video is widened to three channels here and odd sizes pass through untouched. A zero-byte,
non-video or undecodable file raises ``VideoError`` naming the file; a file that stops decoding
before the frame count its header promised is reported by ``VideoReader.truncated`` so the runner
can write a warning row and keep the frames it got. OpenCV silently rescales the frames of a video
whose size changes mid-stream to the first size; ``frame_sizes`` (PyAV, key frames only) finds that.
"""
from __future__ import annotations

import contextlib
import queue
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import cv2
import numpy as np

from pipeline.errors import DepthgaitError, InputError

T = TypeVar("T")


class VideoError(DepthgaitError, ValueError):
    """A video cannot be read; the message names the file and the problem."""


@dataclass(frozen=True)
class VideoInfo:
    path: Path
    fps: float
    width: int
    height: int
    n_frames_header: int  # what the container claims; 0 when it does not say


IMAGE_EXTS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")
IMAGE_FPS = 25.0  # a folder of frames says no rate; CASIA-B's were filmed at 25 frames/s


def image_frames(folder: Path) -> list[Path]:
    """The image files of a folder of frames (``img_0001.png`` ...), in natural order (``2`` before ``10``)."""
    import re

    def key(p: Path) -> list[Any]:
        return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", p.name)]

    return sorted((p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_EXTS
                   and not p.name.startswith(".")), key=key)


class ImageSequence:
    """A folder of frames behind the ``cv2.VideoCapture`` calls ``VideoReader`` makes (read, grab, get)."""

    def __init__(self, folder: Path) -> None:
        self.folder, self.files, self.pos = folder, image_frames(folder), 0

    def isOpened(self) -> bool:  # noqa: N802 - OpenCV's name
        return bool(self.files)

    def grab(self) -> bool:
        if self.pos >= len(self.files):
            return False
        self.pos += 1
        return True

    def read(self) -> tuple[bool, np.ndarray | None]:
        if self.pos >= len(self.files):
            return False, None
        path = self.files[self.pos]
        self.pos += 1
        image = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
        if image is None:
            raise VideoError(f"{path}: not a readable image (frame {self.pos - 1} of {self.folder})")
        if image.dtype != np.uint8:  # 16-bit PNG / TIFF
            image = (image / 257).astype(np.uint8) if image.dtype == np.uint16 else image.astype(np.uint8)
        return True, image

    def get(self, prop: int) -> float:
        if prop == cv2.CAP_PROP_FPS:
            return IMAGE_FPS
        if prop == cv2.CAP_PROP_FRAME_COUNT:
            return float(len(self.files))
        return 0.0

    def release(self) -> None:
        self.pos = len(self.files)


def _open(path: Path) -> cv2.VideoCapture | ImageSequence:
    if path.is_dir():
        seq = ImageSequence(path)
        if not seq.isOpened():
            raise VideoError(f"{path}: a folder with no image frames ({', '.join(IMAGE_EXTS)})")
        return seq
    if not path.is_file():
        raise VideoError(f"{path}: no such file")
    if path.stat().st_size == 0:
        raise VideoError(f"{path}: empty file (0 bytes)")
    cap = cv2.VideoCapture(str(path))
    if not cap.isOpened():
        cap.release()
        raise VideoError(f"{path}: not a video OpenCV can open (unknown or damaged container)")
    return cap


def _as_bgr(frame: np.ndarray) -> np.ndarray:
    """Grayscale (H, W) or (H, W, 1) and BGRA frames become (H, W, 3) BGR."""
    if frame.ndim == 2 or frame.shape[2] == 1:
        return cv2.cvtColor(frame, cv2.COLOR_GRAY2BGR)
    if frame.shape[2] == 4:
        return cv2.cvtColor(frame, cv2.COLOR_BGRA2BGR)
    return frame


class VideoReader:
    """One pass over a video in batches; ``n_decoded`` and ``truncated`` are known after the pass.

    Reading again (a second pass) reopens the file: decoding is cheap next to the models, and it
    keeps memory bounded for long videos.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        cap = _open(self.path)
        try:
            ok, first = cap.read()
            if not ok or first is None:
                raise VideoError(f"{self.path}: opens as a video but no frame decodes (truncated or damaged)")
            first = _as_bgr(first)
            fps = float(cap.get(cv2.CAP_PROP_FPS) or 0.0)
            count = int(cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
        finally:
            cap.release()
        self.info = VideoInfo(self.path, fps if np.isfinite(fps) else 0.0, first.shape[1], first.shape[0], max(count, 0))
        self.n_decoded: int | None = None

    @property
    def truncated(self) -> bool:
        """True when the last full pass decoded fewer frames than the header promised."""
        return self.n_decoded is not None and 0 < self.n_decoded < self.info.n_frames_header

    def batches(self, batch_size: int, keep: np.ndarray | None = None) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """Yield ``(indices int64 [B], frames uint8 [B, H, W, 3])`` in order.

        ``keep`` (sorted frame indices) limits the yield to those frames; the others are grabbed
        without being converted, and decoding stops after the last wanted frame.
        """
        if batch_size < 1:
            raise InputError(f"batch size must be >= 1, got {batch_size}")
        wanted = None if keep is None else set(int(i) for i in keep)
        last = None if keep is None else (int(keep[-1]) if len(keep) else -1)
        cap = _open(self.path)
        h, w = self.info.height, self.info.width
        idx: list[int] = []
        buf = np.empty((batch_size, h, w, 3), np.uint8)  # a fresh buffer per batch: the caller may keep it
        n = 0
        try:
            while last is None or n <= last:
                if wanted is not None and n not in wanted:
                    if not cap.grab():
                        break
                    n += 1
                    continue
                ok, frame = cap.read()
                if not ok or frame is None:
                    break
                frame = _as_bgr(frame)
                if frame.shape[:2] != (h, w):
                    raise VideoError(f"{self.path}: frame {n} is {frame.shape[1]}x{frame.shape[0]}, the first was {w}x{h}")
                buf[len(idx)] = frame
                idx.append(n)
                n += 1
                if len(idx) == batch_size:
                    yield np.asarray(idx, dtype=np.int64), buf  # [B, H, W, 3]
                    idx, buf = [], np.empty((batch_size, h, w, 3), np.uint8)
            if idx:
                yield np.asarray(idx, dtype=np.int64), buf[: len(idx)]
        finally:
            cap.release()
        if keep is None:
            self.n_decoded = n

    def sample(self, max_frames: int) -> np.ndarray:
        """Up to ``max_frames`` frames spread evenly over the video, ``uint8 [S, H, W, 3]``."""
        total = self.info.n_frames_header
        if total <= 0 and self.n_decoded is None:
            self.n_decoded = sum(len(i) for i, _ in self.batches(64))
        total = self.n_decoded or total
        keep = np.unique(np.linspace(0, max(total - 1, 0), num=min(max_frames, max(total, 1))).round().astype(np.int64))
        out = [f for _, f in self.batches(len(keep), keep=keep)]  # one batch: no copy
        if not out:
            raise VideoError(f"{self.path}: no frame decodes")
        return out[0] if len(out) == 1 else np.concatenate(out)


def frame_sizes(path: str | Path) -> list[tuple[int, int]] | None:
    """Distinct ``(width, height)`` of the video's key frames in order (a size can only change at a
    key frame); None when PyAV is not installed or cannot read the file (OpenCV's checks still run)."""
    if Path(path).is_dir():  # a folder of frames: each image is read whole, its size checked per frame
        return None
    try:
        import av
    except ImportError:
        return None
    sizes: list[tuple[int, int]] = []
    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                return None
            stream = container.streams.video[0]
            stream.codec_context.skip_frame = "NONKEY"
            stream.thread_type = "AUTO"
            for frame in container.decode(stream):
                if not sizes or sizes[-1] != (frame.width, frame.height):
                    sizes.append((frame.width, frame.height))
    except (av.FFmpegError, OSError, ValueError):
        return sizes or None
    return sizes


def prefetch(items: Iterator[T], depth: int = 1) -> Iterator[T]:
    """Run ``items`` (frame batches) in a background thread, ``depth`` ahead, so decoding overlaps
    the models (OpenCV releases the GIL while it decodes). Order and content are unchanged; an
    exception of the producer is raised here; closing this generator stops the producer."""
    done = object()
    q: queue.Queue[Any] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def put(item: Any) -> bool:
        while not stop.is_set():
            try:
                q.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for item in items:
                if not put((None, item)):
                    return
            put((None, done))
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer
            put((exc, None))
        finally:
            close = getattr(items, "close", None)
            if close is not None and stop.is_set():
                with contextlib.suppress(Exception):
                    close()

    thread = threading.Thread(target=produce, name="decode", daemon=True)
    thread.start()
    try:
        while True:
            exc, item = q.get()
            if exc is not None:
                raise exc
            if item is done:
                return
            yield item
    finally:
        stop.set()
        thread.join()
