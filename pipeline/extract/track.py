"""Every person of a video as its own track: ultralytics' ByteTrack / BoT-SORT over any detector.

``select_track`` (``pipeline.extract.detect``) keeps one walker per video, which is right for a
dataset video and wrong for footage. Here the per-frame candidates ``float32 [K, 5]`` of either
detector (YOLO boxes, background-subtraction blobs) go through a well-kept multi-object tracker
(``ultralytics.trackers``: Kalman filter, two-stage IoU association), and what it returns is
kept only where it is one whole person:

- ``split_blobs``: a background-subtraction blob much wider than a person is split at the
  valleys of its column profile (two people side by side are two boxes, not one);
- frames whose box touches the image border (a person half out of the picture) are dropped;
- frames whose box is below the minimum height are dropped;
- frames where a track's box overlaps another track's box (a blob holding two people: they
  merged; or one hides part of the other) are dropped for both, rather than keep a two-person
  silhouette; a person hidden for a while is placed on the line between where it was last and first seen;
- with the blobs' foreground and colours (``BlobMasks``), a blob that several tracks' predicted boxes
  lie in is split between them by each track's clothing colours (``split_by_colour``), or else cut at a
  column (``share_blob``), so the tracker keeps both; those frames are merged (never in a gait sequence);
- a raw track is cut at merged frames (colour-split ones excepted: those pixels are its walker's) and
  where it missed more than ``cut_gap`` frames, and the pieces are re-linked by motion
  (``pipeline.extract.track_link``); a walker swallowed by another's blob is carried on (``coast``),
  and one coming in at (going out of) the edge is followed through its first (last) slivers (``extend_at_border``);
- a track with under ``min_length`` frames of its own (clean or colour-split), under ``min_clean``
  clean ones, or not person-shaped (median height/width outside ``aspect``, or a jumpy height), is not kept.

A kept track is a ``PersonTrack``: its clean frames (the gait sequence) and its trajectory, every
frame from its first to its last with a box and a state (kept / merged / border / small /
interpolated). Every drop is counted in ``TrackStats`` (stored in each cache, shown by
``depthgait-prep status``).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.errors import InputError
from pipeline.extract.settings import TRACKERS
from pipeline.extract.track_colour import (
    BINS,
    ColourModels,
    colour_parts,
    histogram,
    inside_share,
    lab_codes,
    share_blob,
    similarity,
)
from pipeline.extract.track_link import (
    BORDER,
    KEPT,
    MERGED,
    SMALL,
    PersonTrack,
    coast,
    cut_segments,
    extend_at_border,
    merged_frames,
    stitch,
    trajectories,
)

CUT, COLOUR, FOREIGN = 1, 2, 3  # a part of a blob cut at a column / split by colour; another walker's colours


@dataclass(frozen=True)
class TrackFilter:
    """What a kept track must be; recorded in the cache fingerprint with ``--tracks all``."""

    min_height: float = 0.12  # share of the frame height
    min_length: int = 10  # frames of its own (clean, or split off a shared blob by colour) a track must have
    min_clean: int = 1  # clean frames (its gait sequence) a kept track must have
    border: int = 3  # pixels: a box this close to an image edge touches it (a body cut by the edge)
    aspect: tuple[float, float] = (1.2, 5.0)  # median box height / width of a person
    max_height_jump: float = 0.15  # median relative change of the box height between frames
    merge_share: float = 0.2  # two tracks' boxes sharing this much of the smaller one: the two merged
    max_gap: int = 5  # frames a track may miss and still be interpolated for the merge test
    stitch_gap: int = 30  # frames a person may be hidden and come back as the same track (0: never)
    cut_gap: int = 1  # frames a raw track may miss before it is cut there (and re-linked by motion)
    min_segment: int = 3  # frames of a piece of a raw track worth re-linking


@dataclass
class TrackStats:
    """Frames and tracks dropped by the quality filters of one video."""

    tracks_found: int = 0
    tracks_kept: int = 0
    tracks_short: int = 0
    tracks_not_person: int = 0
    frames_border: int = 0
    frames_small: int = 0
    frames_merged: int = 0
    blobs_split: int = 0
    blobs_shared: int = 0  # detections that are one track's part of a blob several tracks claimed
    blobs_colour_split: int = 0  # of those, parts split off by colour (kept in the track's line, merged for gait)
    segments: int = 0  # clean pieces the raw tracks were cut into
    segments_joined: int = 0  # joins made re-linking them
    frames_entering: int = 0  # border detections of a walker coming in / going out, added to its track
    frames_foreign: int = 0  # detections not in their track's colours (the tracker swapped people): cut there
    frames_fragment: int = 0  # detections in pieces shorter than min_segment (not re-linked)
    frames_interpolated: int = 0  # frames of kept tracks' trajectories placed on a line (not detected for it)

    def to_dict(self) -> dict[str, int]:
        return asdict(self)


class _Boxes:
    """The view of detections that ultralytics' trackers read (``conf``, ``cls``, ``xywh``, ``xyxy``)."""

    def __init__(self, cand: np.ndarray) -> None:
        self.data = np.asarray(cand, np.float32).reshape(-1, 5)

    @property
    def xyxy(self) -> np.ndarray:
        return self.data[:, :4]

    @property
    def xywh(self) -> np.ndarray:
        b = self.data[:, :4]
        return np.stack([(b[:, 0] + b[:, 2]) / 2, (b[:, 1] + b[:, 3]) / 2, b[:, 2] - b[:, 0], b[:, 3] - b[:, 1]], 1)

    @property
    def conf(self) -> np.ndarray:
        return self.data[:, 4]

    @property
    def cls(self) -> np.ndarray:
        return np.zeros(len(self.data), np.float32)

    def __len__(self) -> int:
        return len(self.data)

    def __getitem__(self, index: Any) -> _Boxes:
        return _Boxes(self.data[index])


def make_tracker(name: str = "bytetrack", fps: float = 25.0, blobs: bool = False) -> Any:
    """An ultralytics tracker with its shipped defaults (``cfg/trackers/<name>.yaml``).

    ``blobs``: the scores are background-subtraction blobs' foreground shares (0.2-0.5 for a person),
    not a detector's confidence, so they are not fused into the matching cost and a low one still counts."""
    import contextlib
    import sys

    with contextlib.redirect_stdout(sys.stderr):  # its first import greets on stdout, which --json - owns
        import ultralytics
        from ultralytics.trackers import BOTSORT, BYTETracker
        from ultralytics.utils import YAML, IterableSimpleNamespace

    if name not in TRACKERS:
        raise InputError(f"unknown tracker {name!r} (choose {' or '.join(TRACKERS)})")
    cfg = YAML.load(Path(ultralytics.__file__).parent / "cfg" / "trackers" / f"{name}.yaml")
    cfg["track_buffer"] = max(1, round(cfg["track_buffer"] * (fps or 30) / 30))
    if blobs:
        cfg.update(track_high_thresh=0.1, track_low_thresh=0.05, new_track_thresh=0.1, fuse_score=False)
    if name == "botsort":
        cfg.update(gmc_method="none", with_reid=False)  # a static camera; no appearance model
        return BOTSORT(IterableSimpleNamespace(**cfg))
    return BYTETracker(IterableSimpleNamespace(**cfg))


def split_blobs(fg: np.ndarray, cand: np.ndarray, max_width: float = 0.75) -> tuple[np.ndarray, int]:
    """Split blobs wider than ``max_width`` x their height at the valleys of their column profile.

    ``fg`` bool [H, W] is the foreground the blobs came from. A walker at full stride is about 0.6 of
    its height wide; a wider blob is cut where fewest foreground pixels stand in a column (the gap
    between two people), each part re-boxed on its own pixels. Returns the candidates and the splits made.
    """
    out, splits = [], 0
    for row in np.asarray(cand, np.float32).reshape(-1, 5):
        parts = _split(fg, row, max_width)
        splits += len(parts) - 1
        out.extend(parts)
    return (np.stack(out).astype(np.float32) if out else np.zeros((0, 5), np.float32)), splits


def _split(fg: np.ndarray, row: np.ndarray, max_width: float, depth: int = 0) -> list[np.ndarray]:
    x0, y0, x1, y1 = (int(v) for v in row[:4])
    w, h = x1 - x0, y1 - y0
    if depth > 3 or w <= max_width * h or w < 8:
        return [row]
    profile = fg[y0:y1, x0:x1].sum(0).astype(np.float64)
    smooth = np.convolve(profile, np.ones(5) / 5, mode="same")
    lo, hi = int(0.2 * w), int(0.8 * w)
    cut = lo + int(np.argmin(smooth[lo:hi]))
    if smooth[cut] > 0.5 * smooth.max():  # no valley: one broad shape, keep it whole
        return [row]
    parts = []
    for a, b in ((x0, x0 + cut), (x0 + cut, x1)):
        ys, xs = np.nonzero(fg[y0:y1, a:b])
        if len(ys) < 0.05 * profile.sum():
            continue
        box = np.array([a + xs.min(), y0 + ys.min(), a + xs.max() + 1, y0 + ys.max() + 1], np.float32)
        score = len(ys) / max(1.0, float((box[2] - box[0]) * (box[3] - box[1])))
        parts.extend(_split(fg, np.append(box, score).astype(np.float32), max_width, depth + 1))
    return parts or [row]


class BlobMasks:
    """Each candidate blob's foreground and colour codes (``lab_codes``), frame by frame (bgsub with
    ``--tracks all``): what ``run_tracker`` learns each track's colours from and what ``share_blob`` /
    ``split_by_colour`` cut when several tracks claim one blob. ``detect(detector, frames)`` runs a
    ``BgSubDetector``'s own steps (foreground, blobs, ``split_blobs``); ``crop`` gives the foreground only
    of blobs at least ``min_width`` of their height wide (a narrower one is one person: never column-cut)."""

    def __init__(self, min_width: float = 0.4) -> None:
        self.min_width = min_width
        # per frame, per candidate: packed foreground, its shape, the colour codes of its foreground pixels, wide
        self.crops: list[list[tuple[np.ndarray, tuple[int, int], np.ndarray, bool]]] = []

    def detect(self, detector: Any, frames: np.ndarray) -> list[np.ndarray]:
        out = []
        for frame in frames:
            fg = detector.model.foreground(frame)
            cand, n = split_blobs(fg, detector.model.blobs(fg))
            detector.splits += n
            self.crops.append([])
            for x0, y0, x1, y1 in cand[:, :4].astype(int):
                crop = fg[y0:y1, x0:x1]
                wide = x1 - x0 >= self.min_width * (y1 - y0)
                codes = lab_codes(frame[y0:y1, x0:x1])[crop]  # per pixel: only the blob's box is converted
                self.crops[-1].append((np.packbits(crop, axis=None), crop.shape, codes, wide))
            out.append(cand)
        return out

    def _fg(self, t: int, k: int) -> np.ndarray:
        packed, shape = self.crops[t][k][:2]
        return np.unpackbits(packed, count=shape[0] * shape[1]).reshape(shape).astype(bool)

    def crop(self, t: int, k: int) -> np.ndarray | None:
        """bool [h, w]: the foreground of wide blob ``k`` of frame ``t`` (None: a narrow one)."""
        return self._fg(t, k) if self.crops[t][k][3] else None

    def colours(self, t: int, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Blob ``k`` of frame ``t``: its foreground bool [h, w] and colour codes uint16 [h, w] (0 off it)."""
        fg = self._fg(t, k)
        codes = np.zeros(fg.shape, np.uint16)
        codes[fg] = self.crops[t][k][2]
        return fg, codes

    def codes(self, t: int, k: int) -> np.ndarray:
        """uint16 [n]: the colour codes of blob ``k``'s foreground pixels in frame ``t``."""
        return self.crops[t][k][2]


def _predicted(trk: Any) -> tuple[list[int], np.ndarray]:
    """Ids and boxes [M, 4]: where the tracker's confirmed tracks (followed or lost) will be in the next frame."""
    out, ids = [], []
    for track in (*trk.tracked_stracks, *trk.lost_stracks):
        if track.mean is None or not track.is_activated:
            continue
        mean = track.mean
        track.mean = mean.copy()
        track.mean[:4] += mean[4:8]  # one step of its Kalman filter's constant velocity
        out.append(np.asarray(track.xyxy, np.float32))
        ids.append(int(track.track_id))
        track.mean = mean
    return ids, (np.stack(out) if out else np.zeros((0, 4), np.float32))


def run_tracker(candidates: list[np.ndarray], tracker: str = "bytetrack", fps: float = 25.0,
                blobs: bool = False, masks: BlobMasks | None = None, colour: bool = True,
                size: tuple[int, int] | None = None, foreign: float = 0.5) -> dict[int, list]:
    """Raw tracks: tracker id -> [(frame, box [4], score, shared, colours)] for every frame the tracker matched
    a detection (``colours``: the whole blob's colour histogram, or None for a part of one); ``shared`` is ``CUT`` / ``COLOUR`` for a part of a blob cut at a column / split by colour,
    else 0. With ``masks`` each track's colours are learnt where its blob is its own, and a blob several
    tracks claim is first split between them by colour (``split_by_colour``; ``colour``), or else cut
    between them at a column (``share_blob``). ``size`` (width, height): predicted boxes are clipped to
    the picture (a walker entering at its edge still claims the blob it walks into). A whole blob whose
    colours are less than ``foreign`` alike (``similarity``) to its track's is ``FOREIGN``."""
    trk = make_tracker(tracker, fps, blobs)
    models = ColourModels()
    raw: dict[int, list] = {}
    for t, cand in enumerate(candidates):
        cand = np.asarray(cand, np.float32).reshape(-1, 5)
        shared, origin = np.zeros(len(cand), np.int64), np.arange(len(cand))
        claims = np.zeros((0, 4), np.float32)
        if masks is not None and len(cand):
            ids, claims = _predicted(trk)
            if size is not None:
                claims = np.clip(claims, 0, np.array([*size, *size], np.float32))
            rows, flags, origin_l = [], [], []
            for k, row in enumerate(cand):
                parts, kind = None, COLOUR
                if len(claims) > 1 and colour:
                    parts = colour_parts(row, masks.colours(t, k), ids, claims, models)
                if parts is None:
                    fg = masks.crop(t, k) if len(claims) > 1 else None
                    parts, kind = (share_blob(row, fg, claims) if fg is not None else [row]), CUT
                rows.extend(parts)
                flags.extend([kind if len(parts) > 1 else 0] * len(parts))
                origin_l.extend([k if len(parts) == 1 else -1] * len(parts))
            cand, shared, origin = np.stack(rows), np.array(flags), np.array(origin_l)
        boxes = _Boxes(cand)
        out = trk.update(boxes, None) if len(boxes) else trk.update(_Boxes(np.zeros((0, 5))), None)
        for row in np.asarray(out).reshape(-1, 8):
            idx = int(row[7])
            if 0 <= idx < len(boxes):  # the detection itself, not the Kalman estimate
                tid, kind, hist = int(row[4]), int(shared[idx]), None
                if masks is not None and origin[idx] >= 0:
                    codes = masks.codes(t, int(origin[idx]))
                    hist = histogram(codes).astype(np.float32)
                    if models.known(tid) and similarity(hist, models.hist[tid]) < foreign:
                        kind = FOREIGN  # not this walker's colours: the tracker handed its id to someone else
                    # a whole blob no other track's predicted box reaches into is this walker alone: learn it
                    elif not len(claims) or (inside_share(claims, boxes.data[idx]) >= 0.2).sum() <= 1:
                        models.learn(tid, codes)
                raw.setdefault(tid, []).append((t, boxes.data[idx, :4].copy(), float(boxes.data[idx, 4]), kind, hist))
    return raw


def track_people(
    candidates: list[np.ndarray], width: int, height: int, fps: float = 25.0, tracker: str = "bytetrack",
    filters: TrackFilter | None = None, blobs: bool = False, masks: BlobMasks | None = None,
) -> tuple[list[PersonTrack], TrackStats]:
    """Every kept person track (ordered by first frame) and the counts of what was dropped; ``masks``
    (the blobs' foreground, ``BlobMasks``) lets a blob several tracks claim be cut between them."""
    f = filters or TrackFilter()
    stats = TrackStats()
    raw = run_tracker(candidates, tracker, fps, blobs, masks, size=(width, height))
    stats.tracks_found = len(raw)
    tracks, shared, colours = [], [], []
    for tid in sorted(raw, key=lambda k: raw[k][0][0]):
        rows = raw[tid]
        tracks.append((np.array([r[0] for r in rows], np.int64), np.stack([r[1] for r in rows]).astype(np.float32),
                       np.array([r[2] for r in rows], np.float32)))
        shared.append(np.array([r[3] for r in rows], np.int64))
        colours.append(np.stack([np.zeros(BINS, np.float32) if r[4] is None else r[4] for r in rows]))
    merged = merged_frames([(fr, bx) for fr, bx, _ in tracks], f.merge_share, f.max_gap)
    pieces = []
    for piece, is_merged, is_shared, hists in zip(tracks, merged, shared, colours, strict=True):
        stats.frames_foreign += int((is_shared == FOREIGN).sum())
        stats.frames_merged += int((is_merged | ((is_shared > 0) & (is_shared != FOREIGN))).sum())
        stats.blobs_shared += int(((is_shared == CUT) | (is_shared == COLOUR)).sum())
        stats.blobs_colour_split += int((is_shared == COLOUR).sum())
        # a part cut at a column followed the person the tracker predicted, but the tracker may swap ids
        # inside a blob cut that way: it is cut out like a merged frame. A part split by colour is that
        # walker's own pixels: it stays in the track (its box on the line, merged for the gait sequence)
        by_colour = is_shared == COLOUR
        bad = (is_merged & ~by_colour) | (is_shared == CUT) | (is_shared == FOREIGN)
        cut, lost = cut_segments((*piece, by_colour, hists), bad, f.cut_gap if f.stitch_gap else len(candidates), f.min_segment)
        pieces.extend(cut)
        stats.frames_fragment += lost
        stats.tracks_short += not cut  # nothing of it is left to link
    stats.segments = len(pieces)
    if f.stitch_gap:
        pieces, stats.segments_joined = stitch(pieces, f.stitch_gap, fps=fps or 25.0)
    pieces, stats.frames_entering = extend_at_border(pieces, candidates, width, height, f.border)
    carried = coast(pieces, len(candidates), f.stitch_gap) if f.stitch_gap else None  # hidden in another's blob
    paths = trajectories(pieces, width, height, f.border, f.min_height, f.merge_share, carried)
    kept: list[PersonTrack] = []
    for (frames, boxes, scores, by_colour, _), path in zip(pieces, paths, strict=True):
        state = path.state[frames - path.frames[0]]  # of the detected frames
        stats.frames_border += int((state == BORDER).sum())
        stats.frames_small += int((state == SMALL).sum())
        # found merged once linked (a hidden person on its line); colour-split parts were counted above
        stats.frames_merged += int(((state == MERGED) & ~by_colour).sum())
        keep = state == KEPT
        if keep.sum() < f.min_clean or (keep | by_colour).sum() < f.min_length:
            stats.tracks_short += 1
            continue
        if not person_shaped(boxes[keep], f):
            stats.tracks_not_person += 1
            continue
        stats.frames_interpolated += len(path.frames) - len(frames)  # not detected: on its line
        kept.append(PersonTrack(frames[keep], boxes[keep], scores[keep], trajectory=path))
    stats.tracks_kept = len(kept)
    return kept, stats


def person_shaped(boxes: np.ndarray, f: TrackFilter) -> bool:
    """Median height/width within ``f.aspect`` and a height that changes smoothly between frames."""
    w = np.clip(boxes[:, 2] - boxes[:, 0], 1e-6, None)
    h = np.clip(boxes[:, 3] - boxes[:, 1], 1e-6, None)
    aspect = float(np.median(h / w))
    jump = float(np.median(np.abs(np.diff(h)) / h[1:])) if len(h) > 1 else 0.0
    return f.aspect[0] <= aspect <= f.aspect[1] and jump <= f.max_height_jump


__all__ = ["TRACKERS", "PersonTrack", "TrackFilter", "TrackStats", "make_tracker", "person_shaped", "split_blobs",
           "stitch", "track_people"]
