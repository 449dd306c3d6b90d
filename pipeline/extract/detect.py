"""Find the walking person: per-frame candidate boxes, then one track per video.

Two detectors give candidates ``float32 [K, 5]`` (x0, y0, x1, y1, score) per frame:
- ``bgsub``: the blobs of a static camera's frozen background model (``pipeline.extract.bgsub``);
  no weights needed.
- ``yolo``: ultralytics YOLO, person class only, one batched call per frame batch.
``select_track`` links candidates over frames by box overlap and keeps one track, so a bystander
never takes over a frame in the middle of a sequence.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from pipeline.errors import InputError
from pipeline.extract.bgsub import EMPTY, BackgroundModel
from pipeline.extract.weights import resolve_yolo_weights
from pipeline.geometry import box_iou


class BgSubDetector:
    """Candidates from a video's ``BackgroundModel`` (set with ``reset`` before each video)."""

    name = "bgsub"

    def __init__(self) -> None:
        self.model: BackgroundModel | None = None
        self.split = False  # split blobs wider than a person (pipeline.extract.track.split_blobs)
        self.splits = 0  # blobs split since the last reset

    def reset(self, background: BackgroundModel, split: bool = False) -> None:
        self.model, self.split, self.splits = background, split, 0

    def __call__(self, frames: np.ndarray) -> list[np.ndarray]:
        if self.model is None:
            raise RuntimeError("BgSubDetector needs reset(BackgroundModel) before a video")
        out = []
        for f in frames:
            fg = self.model.foreground(f)
            cand = self.model.blobs(fg)
            if self.split:
                from pipeline.extract.track import split_blobs

                cand, n = split_blobs(fg, cand)
                self.splits += n
            out.append(cand)
        return out


# ---- YOLO -------------------------------------------------------------------------------------------


class YoloDetector:
    """ultralytics YOLO restricted to the person class (COCO id 0); one predict call per batch."""

    name = "yolo"

    def __init__(
        self, weights: str = "yolo11n.pt", device: str = "cpu", conf: float = 0.25, imgsz: int = 640, half: bool = False
    ) -> None:
        """``half``: fp16 inference (CUDA only; ignored on a CPU)."""
        from ultralytics import YOLO

        self.weights = resolve_yolo_weights(weights)
        self.model: Any = YOLO(self.weights)
        self.device, self.conf, self.imgsz = device, conf, imgsz
        self.half = half and str(device).startswith("cuda")

    def reset(self, background: Any = None, split: bool = False) -> None:
        """Stateless across videos (YOLO boxes one person each: nothing to split)."""

    def __call__(self, frames: np.ndarray) -> list[np.ndarray]:
        results = self.model.predict(
            list(frames), classes=[0], conf=self.conf, imgsz=self.imgsz, device=self.device, verbose=False,
            **({"quantize": 16} if self.half else {}),  # fp16 (ultralytics >= 8.4; earlier: half=True)
        )
        out = []
        for r in results:
            xyxy = r.boxes.xyxy.cpu().numpy().astype(np.float32)  # [K, 4]
            conf = r.boxes.conf.cpu().numpy().astype(np.float32)  # [K]
            out.append(np.concatenate([xyxy, conf[:, None]], axis=1) if len(conf) else EMPTY)
        return out


# ---- one track per video -----------------------------------------------------------------------------


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
    raise InputError(f"unknown detector {name!r} (choose bgsub or yolo)")
