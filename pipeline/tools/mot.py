"""Multi-person tracking figures against synthetic crowd truth.

The CLEAR-MOT and identity figures (ID switches, MOTA, IDF1) come from ``motmetrics``, the
reference implementation the MOT benchmarks use; only the box IoU is computed here (motmetrics'
own ``iou_matrix`` calls a NumPy function that NumPy 2 removed). On top of those, what a gait
pipeline needs from a track: does one track follow each walker (share of the walker's frames with
box IoU >= 0.6), how many tracks follow nobody (spare), and how well the track's silhouette
matches the walker's visible pixels (mask IoU).

Conventions: truth boxes [P, T, 4] x0 y0 x1 y1 (exclusive ends) with NaN where walker p is absent;
a track is frames [N] with boxes [N, 4] and optional full-frame masks [N, H, W]. A tracked cache
gives two tracks to score: its *trajectory* (every frame from first to last, what tracking follows)
and its *kept* frames (the clean ones its gait sequence is made of).
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

import cv2
import numpy as np

from pipeline.errors import DepthgaitError, InputError
from pipeline.formats.video_cache import VideoCache
from pipeline.geometry import box_iou, unpack_canvas

HIT_IOU = 0.6  # a frame is followed when the track's box has at least this IoU with the walker's
MATCH_IOU = 0.5  # the MOT benchmarks' matching threshold for MOTA / IDF1


@dataclass
class Track:
    """One predicted track: the frames it covers, its box in each, and optionally its silhouette."""

    track_id: int
    frames: np.ndarray  # int [N], frame indices into the video
    boxes: np.ndarray  # float [N, 4] x0 y0 x1 y1
    masks: np.ndarray | None = None  # bool [N, H, W], full-frame

    def __post_init__(self) -> None:
        self.frames = np.asarray(self.frames, dtype=np.int64).reshape(-1)
        self.boxes = np.asarray(self.boxes, dtype=np.float64).reshape(-1, 4)
        if len(self.boxes) != len(self.frames):
            raise InputError(f"track {self.track_id}: {len(self.frames)} frames but {len(self.boxes)} boxes")
        if len(np.unique(self.frames)) != len(self.frames):
            raise InputError(f"track {self.track_id}: a frame appears twice")
        if self.masks is not None and len(self.masks) != len(self.frames):
            raise InputError(f"track {self.track_id}: {len(self.frames)} frames but {len(self.masks)} masks")


def track_from_cache(cache: VideoCache, track_id: int = 0, masks: bool = True, trajectory: bool = False) -> Track:
    """A cache's kept frames as a track, its canvas silhouettes pasted back into full frames; or
    (``trajectory``) every frame its trajectory covers, clean or not, without silhouettes (a cache
    without a trajectory: its kept frames)."""
    if trajectory:
        frames, boxes, _ = cache.trajectory()
        return Track(track_id, frames, boxes)
    full = None
    if masks:
        full = np.zeros((len(cache), cache.height, cache.width), bool)
        for i, (packed, size, (x0, y0, x1, y1)) in enumerate(zip(cache.mask, cache.crop_size, cache.crop_box,
                                                                 strict=True)):
            crop = unpack_canvas(packed, size)
            if crop.size:
                full[i, y0:y1, x0:x1] = cv2.resize(crop, (x1 - x0, y1 - y0), interpolation=cv2.INTER_NEAREST) > 127
    return Track(track_id, cache.frames, cache.box, full)


@dataclass
class TrackFigures:
    track_id: int
    frames: int
    walker: int | None  # 0-based truth walker this track is assigned to; None for a spare track
    hit_rate: float  # share of the walker's present frames where this track's box has IoU >= HIT_IOU
    mask_iou: float | None  # mean per-frame mask IoU over the track's frames where its walker is visible


@dataclass
class MotReport:
    """Figures of a set of tracks against one video's truth."""

    num_switches: int
    mota: float
    idf1: float
    num_false_positives: int
    num_misses: int
    num_truth: int  # truth (walker, frame) entries evaluated
    tracks: list[TrackFigures] = field(default_factory=list)
    walker_hit_rate: list[float] = field(default_factory=list)  # per walker, of its assigned track (0: none)
    spare_tracks: list[int] = field(default_factory=list)

    def to_dict(self) -> dict:
        return asdict(self)


def _motmetrics():
    try:
        import motmetrics
    except ImportError as exc:  # an optional dependency: say how to get it
        raise DepthgaitError("tracking figures need motmetrics: pip install 'depthgait[mot]'") from exc
    return motmetrics


def _per_frame(tracks: Sequence[Track], n_frames: int) -> list[dict[int, np.ndarray]]:
    """frame -> {track id: box}."""
    table: list[dict[int, np.ndarray]] = [{} for _ in range(n_frames)]
    for track in tracks:
        for f, box in zip(track.frames, track.boxes, strict=True):
            if not 0 <= f < n_frames:
                raise InputError(f"track {track.track_id}: frame {f} outside the video's {n_frames} frames")
            table[f][track.track_id] = box
    return table


def _mask_iou(track: Track, walker: int, person: np.ndarray) -> float | None:
    if track.masks is None:
        return None
    scores = []
    for f, mask in zip(track.frames, track.masks, strict=True):
        truth = person[f] == walker + 1
        union = (truth | mask).sum()
        if truth.any():
            scores.append((truth & mask).sum() / union)
    return float(np.mean(scores)) if scores else None


def evaluate_tracks(truth_boxes: np.ndarray, tracks: Sequence[Track], person: np.ndarray | None = None,
                    present: np.ndarray | None = None, hit_iou: float = HIT_IOU,
                    match_iou: float = MATCH_IOU) -> MotReport:
    """Score ``tracks`` against truth boxes [P, T, 4]; ``person`` [T, H, W] (0 background, p+1 walker
    p) enables mask IoU; ``present`` bool [P, T] restricts which truth entries count (default: not NaN).

    Each walker is assigned at most one track and each track at most one walker, maximising the
    frames followed (IoU >= ``hit_iou``); tracks left over are spare.
    """
    from scipy.optimize import linear_sum_assignment

    mm = _motmetrics()
    truth_boxes = np.asarray(truth_boxes, np.float64)
    if truth_boxes.ndim != 3 or truth_boxes.shape[2] != 4:
        raise InputError(f"truth boxes must be [P, T, 4], got {truth_boxes.shape}")
    P, T, _ = truth_boxes.shape
    if present is None:
        present = ~np.isnan(truth_boxes).any(2)
    present = np.asarray(present, bool)
    if len({t.track_id for t in tracks}) != len(tracks):
        raise InputError("two tracks share one track id")
    by_frame = _per_frame(tracks, T)

    acc = mm.MOTAccumulator(auto_id=False)
    index = {t.track_id: j for j, t in enumerate(tracks)}
    hits = np.zeros((P, len(tracks)), np.int64)  # frames where track j follows walker p
    for f in range(T):
        walkers = np.flatnonzero(present[:, f])
        ids = list(by_frame[f])
        boxes = np.array([by_frame[f][i] for i in ids]).reshape(-1, 4)
        iou = box_iou(truth_boxes[walkers, f].astype(np.float64), boxes.astype(np.float64))  # [p, h]
        acc.update(walkers.tolist(), ids, np.where(iou >= match_iou, 1.0 - iou, np.nan), frameid=f)
        for a, p in enumerate(walkers):
            for b, track_id in enumerate(ids):
                if iou[a, b] >= hit_iou:
                    hits[p, index[track_id]] += 1
    summary = mm.metrics.create().compute(
        acc, metrics=["num_switches", "mota", "idf1", "num_false_positives", "num_misses"], name="all")
    row = summary.loc["all"]

    rows, cols = linear_sum_assignment(-hits) if tracks else (np.zeros(0, int), np.zeros(0, int))
    walker_of: dict[int, int] = {int(c): int(r) for r, c in zip(rows, cols, strict=True) if hits[r, c] > 0}
    frames_of = present.sum(1)
    figures, walker_rate = [], [0.0] * P
    for j, track in enumerate(tracks):
        p = walker_of.get(j)
        rate = float(hits[p, j] / frames_of[p]) if p is not None and frames_of[p] else 0.0
        if p is not None:
            walker_rate[p] = rate
        mask_iou = _mask_iou(track, p, person) if p is not None and person is not None else None
        figures.append(TrackFigures(track_id=track.track_id, frames=len(track.frames), walker=p, hit_rate=rate,
                                    mask_iou=mask_iou))

    def number(key: str) -> float:
        value = float(row[key])
        return value if np.isfinite(value) else 0.0

    return MotReport(
        num_switches=int(row["num_switches"]), mota=number("mota"), idf1=number("idf1"),
        num_false_positives=int(row["num_false_positives"]), num_misses=int(row["num_misses"]),
        num_truth=int(present.sum()), tracks=figures, walker_hit_rate=walker_rate,
        spare_tracks=[f.track_id for f in figures if f.walker is None],
    )
