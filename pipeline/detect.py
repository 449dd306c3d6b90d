"""Find the walking person: per-frame candidate boxes, then one track per video.

Two detectors give candidates ``float32 [K, 5]`` (x0, y0, x1, y1, score) per frame:
- ``bgsub``: the camera is static (CASIA-B's silhouettes were made this way), so a background
  model needs no weights. The background is the per-pixel median of frames sampled over the video
  (a walker covers each pixel only briefly), and it primes an OpenCV MOG2 model that is then frozen
  (learning rate 0): the foreground of a frame depends on that frame alone, so the detector and the
  ``bgsub`` segmenter agree, and MOG2 still labels shadows apart from the person.
- ``yolo``: ultralytics YOLO, person class only, one batched call per frame batch.
``select_track`` links candidates over frames by box overlap and keeps one track, so a bystander
never takes over a frame in the middle of a sequence.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from pipeline.weights import resolve_yolo_weights

EMPTY = np.zeros((0, 5), dtype=np.float32)


# ---- background subtraction ------------------------------------------------------------------------
class BackgroundModel:
    """A static camera's background: MOG2 primed on the median of sampled frames, then frozen."""

    def __init__(self, sample: np.ndarray, var_threshold: float = 16.0, min_area_frac: float = 0.002) -> None:
        """``sample`` uint8 [S, H, W, 3]: frames spread over the video (the person moves between them)."""
        if sample.ndim != 4 or len(sample) == 0:
            raise ValueError(f"background sample must be [S, H, W, 3], got {sample.shape}")
        self.background = np.median(sample, axis=0).astype(np.uint8)  # [H, W, 3]
        h, w = self.background.shape[:2]
        self.min_area = max(20, int(min_area_frac * h * w))
        self.mog = cv2.createBackgroundSubtractorMOG2(history=50, varThreshold=var_threshold, detectShadows=True)
        for _ in range(10):
            self.mog.apply(self.background, learningRate=-1)
        # Speckle is removed by component size, not by morphology: an opening erases thin limbs and a
        # closing fills the gap between the legs (both cost IoU on the synthetic truth).
        self.min_speckle = max(4, int(2e-4 * h * w))
        k = max(3, (min(h, w) // 80) | 1)
        self._group = cv2.getStructuringElement(cv2.MORPH_RECT, (2 * k + 1, 4 * k + 1))

    def foreground(self, frame: np.ndarray) -> np.ndarray:
        """bool [H, W]: moving pixels, shadows (MOG2 value 127) excluded, specks dropped."""
        fg = np.where(self.mog.apply(frame, learningRate=0) == 255, np.uint8(1), np.uint8(0))
        n, labels, stats, _ = cv2.connectedComponentsWithStats(fg, connectivity=8)
        keep = stats[:, cv2.CC_STAT_AREA] >= self.min_speckle
        keep[0] = False
        return keep[labels]

    def blobs(self, fg: np.ndarray) -> np.ndarray:
        """Candidates [K, 5] from a foreground mask: pieces close to each other form one blob
        (a body split at the waist is one person); box = extent of its foreground pixels,
        score = share of the box that is foreground. Sorted by area, largest first."""
        grouped = cv2.dilate(fg.astype(np.uint8), self._group)
        n, labels = cv2.connectedComponents(grouped, connectivity=8)
        if n <= 1:
            return EMPTY
        ys, xs = np.nonzero(fg)
        lab = labels[ys, xs]
        x0 = np.full(n, np.iinfo(np.int32).max, np.int64)
        y0 = x0.copy()
        x1 = np.full(n, -1, np.int64)
        y1 = x1.copy()
        np.minimum.at(x0, lab, xs)
        np.minimum.at(y0, lab, ys)
        np.maximum.at(x1, lab, xs)
        np.maximum.at(y1, lab, ys)
        area = np.bincount(lab, minlength=n)
        keep = np.nonzero((area >= self.min_area) & (np.arange(n) > 0))[0]
        if len(keep) == 0:
            return EMPTY
        keep = keep[np.argsort(-area[keep], kind="stable")]
        boxes = np.stack([x0[keep], y0[keep], x1[keep] + 1, y1[keep] + 1], axis=1).astype(np.float32)  # [K, 4]
        box_area = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
        score = area[keep] / np.maximum(box_area, 1)
        return np.concatenate([boxes, score[:, None].astype(np.float32)], axis=1)


BACKGROUND_NAMES = ("{subject}-bkgrd-{view}", "bkgrd-{view}", "background-{view}")
IMAGE_EXTS = (".png", ".jpg", ".jpeg", ".bmp")


def find_background_file(video: Path, subject: str, view: str) -> Path | None:
    """A background-only video or image of the same camera beside ``video`` (CASIA-B ships
    ``001-bkgrd-090.avi``), needed where the walker hardly moves in the frame (frontal views)."""
    for pattern in BACKGROUND_NAMES:
        stem = pattern.format(subject=subject, view=view)
        for path in sorted(video.parent.glob(f"{stem}.*")):
            if path.is_file() and path != video:
                return path
    return None


def background_sample(path: Path, max_frames: int = 64) -> np.ndarray:
    """Frames of a background image or video, uint8 [S, H, W, 3] BGR."""
    from pipeline.video import VideoReader

    if path.suffix.lower() in IMAGE_EXTS:
        image = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if image is None:
            raise ValueError(f"{path}: not a readable background image")
        return image[None]
    return VideoReader(path).sample(max_frames)


class BgSubDetector:
    """Candidates from a video's ``BackgroundModel`` (set with ``reset`` before each video)."""

    name = "bgsub"

    def __init__(self) -> None:
        self.model: BackgroundModel | None = None

    def reset(self, background: BackgroundModel) -> None:
        self.model = background

    def __call__(self, frames: np.ndarray) -> list[np.ndarray]:
        if self.model is None:
            raise RuntimeError("BgSubDetector needs reset(BackgroundModel) before a video")
        return [self.model.blobs(self.model.foreground(f)) for f in frames]


# ---- YOLO -------------------------------------------------------------------------------------------
class YoloDetector:
    """ultralytics YOLO restricted to the person class (COCO id 0); one predict call per batch."""

    name = "yolo"

    def __init__(self, weights: str = "yolo11n.pt", device: str = "cpu", conf: float = 0.25, imgsz: int = 640) -> None:
        from ultralytics import YOLO

        self.weights = resolve_yolo_weights(weights)
        self.model: Any = YOLO(self.weights)
        self.device, self.conf, self.imgsz = device, conf, imgsz

    def reset(self, background: Any = None) -> None:
        """Stateless across videos."""

    def __call__(self, frames: np.ndarray) -> list[np.ndarray]:
        results = self.model.predict(
            list(frames), classes=[0], conf=self.conf, imgsz=self.imgsz, device=self.device, verbose=False
        )
        out = []
        for r in results:
            xyxy = r.boxes.xyxy.cpu().numpy().astype(np.float32)  # [K, 4]
            conf = r.boxes.conf.cpu().numpy().astype(np.float32)  # [K]
            out.append(np.concatenate([xyxy, conf[:, None]], axis=1) if len(conf) else EMPTY)
        return out


# ---- one track per video -----------------------------------------------------------------------------
def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU matrix [len(a), len(b)] of x0 y0 x1 y1 boxes."""
    tl = np.maximum(a[:, None, :2], b[None, :, :2])  # [A, B, 2]
    br = np.minimum(a[:, None, 2:4], b[None, :, 2:4])
    inter = np.prod(np.clip(br - tl, 0, None), axis=2)
    area_a = np.prod(a[:, 2:4] - a[:, :2], axis=1)
    area_b = np.prod(b[:, 2:4] - b[:, :2], axis=1)
    return inter / np.maximum(area_a[:, None] + area_b[None, :] - inter, 1e-9)


@dataclass
class Track:
    frames: np.ndarray  # int64 [T] indices into the candidate list (frame order)
    boxes: np.ndarray  # float32 [T, 4]
    scores: np.ndarray  # float32 [T]

    @property
    def mean_area(self) -> float:
        return float(np.mean(np.prod(self.boxes[:, 2:] - self.boxes[:, :2], axis=1))) if len(self.boxes) else 0.0


def select_track(
    candidates: list[np.ndarray], min_iou: float = 0.2, max_gap: int = 5, length_share: float = 0.8
) -> Track | None:
    """Link per-frame candidates into tracks (greedy, best overlap first, gaps up to ``max_gap``
    frames) and keep the person present longest and largest: among the tracks at least
    ``length_share`` as long as the longest, the one with the largest mean box area."""
    tracks: list[dict[str, list]] = []
    active: list[int] = []  # indices into tracks still open
    for t, cand in enumerate(candidates):
        active = [i for i in active if t - tracks[i]["t"][-1] <= max_gap]
        unused = list(range(len(cand)))
        if active and len(cand):
            last = np.stack([tracks[i]["b"][-1] for i in active])
            iou = box_iou(last, cand[:, :4])  # [A, K]
            for flat in np.argsort(-iou, axis=None):
                a, k = np.unravel_index(flat, iou.shape)
                if iou[a, k] < min_iou:
                    break
                if k in unused and tracks[active[a]]["t"][-1] != t:
                    tracks[active[a]]["t"].append(t)
                    tracks[active[a]]["b"].append(cand[k, :4])
                    tracks[active[a]]["s"].append(cand[k, 4])
                    unused.remove(k)
        for k in unused:
            tracks.append({"t": [t], "b": [cand[k, :4]], "s": [cand[k, 4]]})
            active.append(len(tracks) - 1)
    if not tracks:
        return None
    built = [Track(np.asarray(tr["t"]), np.asarray(tr["b"], np.float32), np.asarray(tr["s"], np.float32)) for tr in tracks]
    longest = max(len(tr.frames) for tr in built)
    eligible = [tr for tr in built if len(tr.frames) >= length_share * longest]
    return max(eligible, key=lambda tr: (tr.mean_area, len(tr.frames)))


def make_detector(name: str, weights: str = "yolo11n.pt", device: str = "cpu", **kwargs: Any) -> BgSubDetector | YoloDetector:
    if name == "bgsub":
        return BgSubDetector()
    if name == "yolo":
        return YoloDetector(weights, device=device, **kwargs)
    raise ValueError(f"unknown detector {name!r} (choose bgsub or yolo)")
