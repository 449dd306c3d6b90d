"""Draw each person's box, track id and identity on a copy of the video (``identify --save-video``).

What ultralytics users expect from ``predict``: every input frame written, in order, at the
source frame rate, with the tracked people marked. The writer is OpenCV's (codec ``mp4v`` in an
.mp4), so no extra dependency; the file appears only when complete (``pipeline.atomic``).
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from pipeline.atomic import atomic_path
from pipeline.errors import DepthgaitError, InputError

FONT = cv2.FONT_HERSHEY_SIMPLEX
CODECS = {".mp4": "mp4v", ".avi": "MJPG"}


@dataclass
class AnnotatedTrack:
    """What to draw for one track: its source frames, its box in each, and one label."""

    track_id: int
    frames: np.ndarray  # int [N]
    boxes: np.ndarray  # float [N, 4] x0 y0 x1 y1
    label: str

    def __post_init__(self) -> None:
        self.frames = np.asarray(self.frames, dtype=np.int64).reshape(-1)
        self.boxes = np.asarray(self.boxes, dtype=np.float64).reshape(-1, 4)
        if len(self.frames) != len(self.boxes):
            raise InputError(f"track {self.track_id}: {len(self.frames)} frames but {len(self.boxes)} boxes")


def track_colour(track_id: int) -> tuple[int, int, int]:
    """A distinct, bright BGR colour per track id (golden-angle hues)."""
    hue = int((track_id * 137.508) % 180)
    bgr = cv2.cvtColor(np.array([[[hue, 220, 255]]], np.uint8), cv2.COLOR_HSV2BGR)[0, 0]
    return int(bgr[0]), int(bgr[1]), int(bgr[2])


def draw_tracks(image: np.ndarray, items: Sequence[tuple[int, np.ndarray, str]]) -> None:
    """Draw (track id, box, label) items onto a BGR frame in place."""
    for track_id, box, label in items:
        colour = track_colour(track_id)
        x0, y0, x1, y1 = (int(round(v)) for v in box)
        cv2.rectangle(image, (x0, y0), (x1, y1), colour, 2)
        text = f"#{track_id} {label}"
        (w, h), base = cv2.getTextSize(text, FONT, 0.45, 1)
        top = max(0, y0 - h - base - 2)
        cv2.rectangle(image, (x0, top), (x0 + w + 4, top + h + base + 2), colour, -1)
        cv2.putText(image, text, (x0 + 2, top + h + 1), FONT, 0.45, (0, 0, 0), 1, cv2.LINE_AA)


def annotate_video(video: str | Path, out: str | Path, tracks: Sequence[AnnotatedTrack]) -> int:
    """Write ``video`` with ``tracks`` drawn to ``out`` (.mp4 or .avi); returns the frames written."""
    video, out = Path(video), Path(out)
    codec = CODECS.get(out.suffix.lower())
    if codec is None:
        raise InputError(f"{out}: the annotated video must end in {' or '.join(CODECS)}")
    capture = cv2.VideoCapture(str(video))
    if not capture.isOpened():
        raise InputError(f"{video}: cannot open the video")
    fps = capture.get(cv2.CAP_PROP_FPS)
    fps = fps if np.isfinite(fps) and fps > 0 else 25.0
    by_frame: dict[int, list[tuple[int, np.ndarray, str]]] = {}
    for track in tracks:
        for f, box in zip(track.frames, track.boxes, strict=True):
            by_frame.setdefault(int(f), []).append((track.track_id, box, track.label))
    written = 0
    try:
        with atomic_path(out) as tmp:
            writer = None
            try:
                while True:
                    ok, image = capture.read()
                    if not ok:
                        break
                    if writer is None:
                        size = (image.shape[1], image.shape[0])
                        writer = cv2.VideoWriter(str(tmp), cv2.VideoWriter_fourcc(*codec), fps, size)
                        if not writer.isOpened():
                            raise DepthgaitError(f"{out}: OpenCV cannot open a {codec} video writer here")
                    draw_tracks(image, by_frame.get(written, []))
                    writer.write(image)
                    written += 1
            finally:
                if writer is not None:
                    writer.release()
            if written == 0:
                raise InputError(f"{video}: no frame could be decoded")
    finally:
        capture.release()
    return written
