"""The tracker fed frame by frame as detection runs, so a long video's blob crops are never all held.

With ``--tracks all`` over background-subtraction blobs the tracker needs each blob's foreground and
colour codes (``BlobMasks``) when it reaches that blob's frame, and never after: the linking stages
(``pipeline.extract.track_link``) work on boxes, states and colour histograms. So ``RawTracker`` takes
one frame at a time (``update`` / ``feed``, called by ``pipeline.extract.job`` after each detected batch)
and releases that frame's crops once it has passed it: the crops held are one batch's, whatever the
video's length (a 300x150 person at 1080p is ~50 kB a frame; an hour with 3 people was ~13 GB). What a
raw track keeps per detection is its box, score, split flag and its blob's colour histogram as the bins
it fills (``sparse_histogram``: the same numbers as the dense one, a few hundred bytes, not 4 kB).
"""
from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from pipeline.errors import InputError
from pipeline.extract.blob_heads import head_columns
from pipeline.extract.settings import TRACKERS
from pipeline.extract.track_colour import (
    ColourModels,
    colour_parts,
    histogram,
    inside_share,
    lab_codes,
    share_blob,
    similarity,
    sparse_histogram,
)
from pipeline.geometry import touches_edge

# a part of a blob cut at a column / split by colour; another walker's colours; a whole blob with two heads;
# a whole candidate cut at a column from a walker pressed against it (touching)
CUT, COLOUR, FOREIGN, PAIR, TOUCH = 1, 2, 3, 4, 5
TOUCH_SHARE = 0.25  # of a part's height: bodies meeting across a column cut this far are pressed together


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
    """Each candidate blob's foreground and colour codes (``lab_codes``), per frame not yet tracked (bgsub
    with ``--tracks all``): what ``RawTracker`` learns each track's colours from and what ``share_blob`` /
    ``split_by_colour`` cut when several tracks claim one blob. ``detect(detector, frames)`` runs a
    ``BgSubDetector``'s own steps (foreground, blobs, ``split_blobs``) on the next frames of the video;
    ``release(t)`` drops frame ``t`` once tracked. ``crop`` gives the foreground only of blobs at least
    ``min_width`` of their height wide (a narrower one is one person: never column-cut)."""

    def __init__(self, min_width: float = 0.4) -> None:
        self.min_width = min_width
        # frame -> per candidate: packed foreground, its shape, the colour codes of its foreground pixels, wide
        self.crops: dict[int, list[tuple[np.ndarray, tuple[int, int], np.ndarray, bool]]] = {}
        self.next = 0  # the frame index of the next frame ``detect`` is given

    def detect(self, detector: Any, frames: np.ndarray) -> list[np.ndarray]:
        out = []
        for frame in frames:
            fg = detector.model.foreground(frame)
            cand, n = split_blobs(fg, detector.model.blobs(fg))
            detector.splits += n
            crops = self.crops[self.next] = []
            self.next += 1
            for x0, y0, x1, y1 in cand[:, :4].astype(int):
                crop = fg[y0:y1, x0:x1]
                wide = x1 - x0 >= self.min_width * (y1 - y0)
                codes = lab_codes(frame[y0:y1, x0:x1])[crop]  # per pixel: only the blob's box is converted
                crops.append((np.packbits(crop, axis=None), crop.shape, codes, wide))
            out.append(cand)
        return out

    def release(self, t: int) -> None:
        """Frame ``t`` is tracked: its crops are not needed again."""
        self.crops.pop(t, None)

    def foreground(self, t: int, k: int) -> np.ndarray:
        """bool [h, w]: the foreground of blob ``k`` of frame ``t``."""
        packed, shape = self.crops[t][k][:2]
        return np.unpackbits(packed, count=shape[0] * shape[1]).reshape(shape).astype(bool)

    def crop(self, t: int, k: int) -> np.ndarray | None:
        """bool [h, w]: the foreground of wide blob ``k`` of frame ``t`` (None: a narrow one)."""
        return self.foreground(t, k) if self.crops[t][k][3] else None

    def colours(self, t: int, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Blob ``k`` of frame ``t``: its foreground bool [h, w] and colour codes uint16 [h, w] (0 off it)."""
        fg = self.foreground(t, k)
        codes = np.zeros(fg.shape, np.uint16)
        codes[fg] = self.crops[t][k][2]
        return fg, codes

    def codes(self, t: int, k: int) -> np.ndarray:
        """uint16 [n]: the colour codes of blob ``k``'s foreground pixels in frame ``t``."""
        return self.crops[t][k][2]


def touching(cand: np.ndarray, masks: BlobMasks, t: int, share: float = TOUCH_SHARE) -> np.ndarray:
    """bool [K]: candidates of frame ``t`` that abut another at a column (``split_blobs`` cut one blob there)
    where the two foregrounds meet across the cut on at least ``share`` of the candidate's height. There
    two walkers press together, and the silhouette's edge is the cut, not a body (on PETS 2009 each of
    two walkers side by side kept a strip of the other): on its track's line, but no gait frame."""
    boxes = np.asarray(cand, np.float32).reshape(-1, 5)[:, :4].astype(int)
    out = np.zeros(len(boxes), bool)
    for i, j in zip(*np.nonzero(boxes[:, 2][:, None] == boxes[:, 0][None, :]), strict=True):
        y0, y1 = max(boxes[i, 1], boxes[j, 1]), min(boxes[i, 3], boxes[j, 3])
        if y1 <= y0:
            continue
        # the two columns each side of the cut: a mask's edge is ragged by a pixel
        left = masks.foreground(t, int(i))[y0 - boxes[i, 1]:y1 - boxes[i, 1], -2:].any(1)
        right = masks.foreground(t, int(j))[y0 - boxes[j, 1]:y1 - boxes[j, 1], :2].any(1)
        met = int((left & right).sum())
        for k in (i, j):
            out[k] |= met >= share * (boxes[k, 3] - boxes[k, 1])
    return out


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


class RawRow(NamedTuple):
    """One detection of a raw track, as ``RawTracker`` records it."""

    frame: int
    box: np.ndarray  # float32 [4] x0 y0 x1 y1
    score: float
    shared: int  # 0, or how the blob was shared or judged: CUT, COLOUR, FOREIGN, PAIR, TOUCH
    colours: tuple | None  # the whole blob's sparse_histogram; None for a part of one
    area: float = float("nan")  # the whole blob's foreground pixels; NaN for a part (or not measured)


class RawTracker:
    """Raw tracks, one frame at a time: ``raw`` maps tracker id -> [``RawRow``] for every frame the tracker
    matched a detection; ``shared`` is ``CUT`` / ``COLOUR`` for a part of a blob cut at a column / split
    by colour, ``PAIR`` for a whole blob that shows several heads, else 0. With ``masks`` each track's
    colours are learnt where its blob is its own, and a blob several tracks claim is first split between
    them by colour (``split_by_colour``; ``colour``), or else cut between them at a column (``share_blob``);
    each frame's crops are released once it is tracked.
    ``size`` (width, height): predicted boxes are clipped to the picture (a walker entering at its edge
    still claims the blob it walks into). A whole blob whose colours are less than ``foreign`` alike
    (``similarity``) to its track's is ``FOREIGN``. A colour-split part is recorded for the track it was
    split for, even where the tracker's matching handed it to another claimant (``_own_parts``). A whole
    blob away from the picture's edge whose top edge shows several heads (``blob_heads``; ``heads``) is
    ``PAIR``: walkers no track has seen apart, never one walker's colours or gait frame. A whole candidate
    cut at a column from a walker pressed against it (``touching``) is ``TOUCH``: no gait frame."""

    def __init__(self, tracker: str = "bytetrack", fps: float = 25.0, blobs: bool = False,
                 masks: BlobMasks | None = None, colour: bool = True, size: tuple[int, int] | None = None,
                 foreign: float = 0.5, heads: bool = True) -> None:
        self.trk = make_tracker(tracker, fps, blobs)
        self.masks, self.colour, self.size, self.foreign, self.heads = masks, colour, size, foreign, heads
        self.models = ColourModels()
        self.raw: dict[int, list] = {}
        self.t = 0  # the next frame

    def _at_border(self, box: np.ndarray) -> bool:
        """Whether ``box`` touches the picture's edge: a walker cut by it, or walkers coming in together."""
        return self.size is not None and bool(touches_edge(box[None], *self.size)[0])

    def feed(self, candidates: Iterable[np.ndarray]) -> None:
        """The next frames' candidates, in order."""
        for cand in candidates:
            self.update(cand)

    def update(self, cand: np.ndarray) -> None:
        """One frame's candidates ``float32 [K, 5]``."""
        t, masks, models = self.t, self.masks, self.models
        cand = np.asarray(cand, np.float32).reshape(-1, 5)
        shared, origin = np.zeros(len(cand), np.int64), np.arange(len(cand))
        owner: list[int] = []  # per candidate: the track a colour-split part was made for (-1: none)
        claims = np.zeros((0, 4), np.float32)
        if masks is not None and len(cand):
            ids, claims = _predicted(self.trk)
            if self.size is not None:
                claims = np.clip(claims, 0, np.array([*self.size, *self.size], np.float32))
            rows, flags, origin_l = [], [], []
            pressed = touching(cand, masks, t)
            for k, row in enumerate(cand):
                parts, kind, which = None, COLOUR, []
                if len(claims) > 1 and self.colour:
                    parts = colour_parts(row, masks.colours(t, k), ids, claims, models, owners=which)
                if parts is None:
                    fg = masks.crop(t, k) if len(claims) > 1 else None
                    parts, kind = (share_blob(row, fg, claims) if fg is not None else [row]), CUT
                if (len(parts) == 1 and self.heads and not self._at_border(row)
                        and len(head_columns(masks.foreground(t, k))) > 1):
                    kind = PAIR  # a whole blob showing several heads: walkers no track has seen apart
                elif len(parts) == 1 and pressed[k]:
                    kind = TOUCH  # cut at a column from a walker pressed against it
                owner.extend(which if kind == COLOUR and len(which) == len(parts) else [-1] * len(parts))
                rows.extend(parts)
                flags.extend([kind if len(parts) > 1 or kind in (PAIR, TOUCH) else 0] * len(parts))
                origin_l.extend([k if len(parts) == 1 else -1] * len(parts))
            cand, shared, origin = np.stack(rows), np.array(flags), np.array(origin_l)
        boxes = _Boxes(cand)
        out = self.trk.update(boxes, None) if len(boxes) else self.trk.update(_Boxes(np.zeros((0, 5))), None)
        out = self._own_parts(np.asarray(out).reshape(-1, 8), owner)
        for row in out:
            idx = int(row[7])
            if 0 <= idx < len(boxes):  # the detection itself, not the Kalman estimate
                tid, kind, hist, area = int(row[4]), int(shared[idx]), None, float("nan")
                if masks is not None and origin[idx] >= 0:
                    codes = masks.codes(t, int(origin[idx]))
                    area = float(len(codes))  # the whole blob's foreground pixels
                    dense = histogram(codes).astype(np.float32)
                    if models.known(tid) and similarity(dense, models.hist[tid]) < self.foreign:
                        kind = FOREIGN  # not this walker's colours: the tracker handed its id to someone else
                    # a whole blob no other track's predicted box reaches into is this walker alone: learn it
                    elif (kind != PAIR and not self._at_border(boxes.data[idx])
                          and (not len(claims) or (inside_share(claims, boxes.data[idx]) >= 0.2).sum() <= 1)):
                        models.learn(tid, codes, float(boxes.data[idx, 3] - boxes.data[idx, 1]))
                    hist = sparse_histogram(dense)
                self.raw.setdefault(tid, []).append(RawRow(t, boxes.data[idx, :4].copy(), float(boxes.data[idx, 4]), kind,
                                                           hist, area))
        if masks is not None:
            masks.release(t)
        self.t += 1

    def _own_parts(self, out: np.ndarray, owner: list[int]) -> np.ndarray:
        """``out`` (the tracker's rows) with each colour-split part recorded for the track it was split for.
        Inside a shared blob the parts' boxes overlap and the tracker's IoU matching may swap them between
        the claimants (BoT-SORT: 4 ID switches in one held-out crowd scene): the colours said whose pixels
        they are. Only where the owners are a permutation of the ids the tracker gave those parts (no id
        lost or doubled); the tracker's own tracks keep their ids (renaming them too made ByteTrack swap
        walkers on 2 held-out scenes: a wrong colour split then steers the Kalman filter)."""
        if not owner or not len(out):
            return out
        idx = out[:, 7].astype(int)
        want = np.array([owner[i] if 0 <= i < len(owner) and owner[i] >= 0 else int(tid)
                         for i, tid in zip(idx, out[:, 4], strict=True)])
        moved = want != out[:, 4].astype(int)
        if not moved.any() or len(set(want.tolist())) != len(want):
            return out
        given = out[moved, 4].astype(int)
        if sorted(given.tolist()) != sorted(want[moved].tolist()):
            return out  # not a swap among these tracks: an id would be lost or duplicated
        out = out.copy()
        out[moved, 4] = want[moved]
        return out


def run_tracker(candidates: list[np.ndarray], tracker: str = "bytetrack", fps: float = 25.0,
                blobs: bool = False, masks: BlobMasks | None = None, colour: bool = True,
                size: tuple[int, int] | None = None, foreign: float = 0.5, heads: bool = True) -> dict[int, list]:
    """``RawTracker.raw`` of a whole video's candidates (``masks``: its blobs' crops, all detected already)."""
    follow = RawTracker(tracker, fps, blobs, masks, colour, size, foreign, heads)
    follow.feed(candidates)
    return follow.raw


__all__ = ["COLOUR", "CUT", "FOREIGN", "PAIR", "TOUCH", "BlobMasks", "RawRow", "RawTracker", "make_tracker", "run_tracker", "split_blobs",
           "touching"]
