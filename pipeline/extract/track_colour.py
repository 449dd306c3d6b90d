"""A blob several tracks claim: split between them by the colour of their clothes, or cut at a column.

Where two walkers overlap in the picture their foregrounds are one blob, and no cut of its columns
separates them (they walk the same way, one in front of the other). Their clothes differ, though:
while a track's blob is its own, the colours of its pixels are learnt (``ColourModels``: a histogram
of coarse Lab codes, ``lab_codes``); when several tracks claim one blob, each foreground pixel goes
to the claimant whose colours and predicted box explain it best (``split_by_colour``), and each
claimant is re-boxed on its own pixels. Those parts are candidates for the tracker only: the frames
stay "merged" for the gait silhouettes (a part's mask is cut by a colour rule, not by the body).
Claimants that dress alike, or whose colours are not known yet, are cut at the emptiest column
between their predicted centres instead (``share_blob``).
"""
from __future__ import annotations

import cv2
import numpy as np

BINS = 1024  # 4 lightness x 16 a x 16 b: coarse enough for shading, fine enough to tell clothes apart
PRIOR = 0.5 / BINS  # a colour never seen on a track is unlikely, not impossible


def lab_codes(frame: np.ndarray) -> np.ndarray:
    """uint16 [H, W]: each pixel's coarse CIE Lab colour code (``BINS`` of them) of a BGR uint8 frame."""
    lab = cv2.cvtColor(frame, cv2.COLOR_BGR2LAB)
    lab = lab.astype(np.uint16)
    return (lab[..., 0] >> 6) << 8 | (lab[..., 1] >> 4) << 4 | (lab[..., 2] >> 4)


def histogram(codes: np.ndarray) -> np.ndarray:
    """float64 [BINS]: the share of ``codes`` in each bin."""
    counts = np.bincount(np.asarray(codes, np.int64).ravel(), minlength=BINS).astype(np.float64)
    return counts / max(counts.sum(), 1.0)


def sparse_histogram(hist: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The bins a float32 histogram fills (uint16 [n]) and their shares (float32 [n]): what a raw track
    keeps per detection (a walker's blob fills tens of the ``BINS``; the dense one is 4 kB)."""
    bins = np.flatnonzero(hist)
    return bins.astype(np.uint16), hist[bins].astype(np.float32)


def dense_histograms(hists: np.ndarray) -> np.ndarray:
    """float32 [n, BINS] of a piece's colours: an object array of ``sparse_histogram`` pairs (None or 0:
    no colours) is filled in, a dense float array is passed through."""
    if hists.dtype != object:
        return hists
    out = np.zeros((len(hists), BINS), np.float32)
    for row, pair in zip(out, hists, strict=True):
        if isinstance(pair, tuple):
            row[pair[0]] = pair[1]
    return out


def similarity(a: np.ndarray, b: np.ndarray) -> float:
    """Bhattacharyya coefficient of two histograms: 1 for the same colours, 0 for none shared."""
    return float(np.sqrt(a * b).sum())


class ColourModels:
    """Per tracker id, the colours of its walker (learnt on frames where its blob is its own) and its
    usual foreground area and box height; ``rate`` is the weight of a new frame in the running mean."""

    def __init__(self, rate: float = 0.15, min_frames: int = 3) -> None:
        self.rate, self.min_frames = rate, min_frames
        self.hist: dict[int, np.ndarray] = {}
        self.area: dict[int, float] = {}
        self.frames: dict[int, int] = {}
        self.height: dict[int, float] = {}

    def learn(self, tid: int, codes: np.ndarray, height: float | None = None) -> None:
        """One more frame of track ``tid`` alone: ``codes`` are its blob's foreground colour codes,
        ``height`` its box height (how tall a part split off a shared blob for it may be)."""
        if len(codes) == 0:
            return
        h, n = histogram(codes), self.frames.get(tid, 0)
        rate = max(self.rate, 1.0 / (n + 1))  # the first frames weigh as a plain mean
        self.hist[tid] = h if n == 0 else (1 - rate) * self.hist[tid] + rate * h
        self.area[tid] = float(len(codes)) if n == 0 else (1 - rate) * self.area[tid] + rate * len(codes)
        if height is not None:
            old = self.height.get(tid)
            self.height[tid] = float(height) if old is None else (1 - rate) * old + rate * float(height)
        self.frames[tid] = n + 1

    def known(self, tid: int) -> bool:
        """Whether ``tid``'s colours were seen alone often enough to split by."""
        return self.frames.get(tid, 0) >= self.min_frames


def split_by_colour(row: np.ndarray, fg: np.ndarray, codes: np.ndarray, claims: np.ndarray,
                    hists: list[np.ndarray], areas: list[float], max_alike: float = 0.8,
                    min_part: float = 0.15, heights: list[float | None] | None = None,
                    tall: float = 1.15, owners: list[int] | None = None) -> list[np.ndarray] | None:
    """Split blob ``row`` [5] (foreground ``fg`` bool [h, w], colour codes ``codes`` uint16 [h, w]) between
    the predicted boxes ``claims`` [M, 4] (image coordinates) of tracks with colours ``hists`` and usual
    areas ``areas``. A pixel goes to the claimant maximising log p(colour) minus how far (in its box
    heights) it lies outside that claimant's box (a colour both wear goes to the one that wears more of it:
    spatial tie rules made the tracker swap ids on the crowd bench). Each claimant with at least ``min_part`` of its usual
    area is re-boxed on its pixels (2nd..98th percentile: a stray pixel does not widen the box). None:
    two claimants dress too much alike (``max_alike``) to split by colour, or no pixel is foreground.
    ``heights``: each claimant's usual box height (None: unknown); a part is cut at ``tall`` x it below
    its top (a farther walker's part takes the nearer one's legs down to the nearer one's foot line).
    ``owners``: filled with the claimant index of each part returned."""
    ys, xs = np.nonzero(fg)
    if len(ys) == 0 or len(claims) < 2:
        return None
    for i in range(len(hists)):
        for j in range(i + 1, len(hists)):
            if similarity(hists[i], hists[j]) > max_alike:
                return None
    px, py = xs + float(row[0]) + 0.5, ys + float(row[1]) + 0.5
    code = codes[ys, xs].astype(np.int64)
    score = np.empty((len(claims), len(ys)))
    for m, (box, hist) in enumerate(zip(claims, hists, strict=True)):
        h = max(float(box[3] - box[1]), 1.0)
        out_x = np.maximum(box[0] - px, 0) + np.maximum(px - box[2], 0)
        out_y = np.maximum(box[1] - py, 0) + np.maximum(py - box[3], 0)
        score[m] = np.log(hist[code] + PRIOR) - 20.0 * (out_x + out_y) / h
    owner = score.argmax(0)
    parts = []
    for m in range(len(claims)):
        mine = owner == m
        if mine.sum() < max(min_part * areas[m], 0.05 * len(ys)):
            continue  # hidden (or nearly): no detection, the tracker carries it on
        x, y = px[mine] - 0.5, py[mine] - 0.5
        box = np.array([np.percentile(x, 2), np.percentile(y, 1), np.percentile(x, 98) + 1,
                        np.percentile(y, 99) + 1], np.float32)
        if heights is not None and heights[m] is not None:
            box[3] = min(box[3], box[1] + tall * float(heights[m]))  # type: ignore[arg-type]
        parts.append(np.append(box, mine.sum() / max(1.0, float(np.prod(box[2:] - box[:2])))).astype(np.float32))
        if owners is not None:
            owners.append(m)
    return parts if len(parts) > 0 else None


def _intersection(boxes: np.ndarray, row: np.ndarray) -> np.ndarray:
    """float [M]: the area each of ``boxes`` [M, >= 4] shares with box ``row`` [>= 4]."""
    boxes = boxes[:, :4]
    return np.prod(np.clip(np.minimum(boxes[:, 2:], row[2:4]) - np.maximum(boxes[:, :2], row[:2]), 0, None), 1)


def inside_share(boxes: np.ndarray, row: np.ndarray) -> np.ndarray:
    """float [M]: the share of each of ``boxes`` [M, 4] that lies within box ``row`` [>= 4]."""
    area = np.prod(np.clip(boxes[:, 2:4] - boxes[:, :2], 1e-6, None), 1)
    return _intersection(boxes, row) / area


def covered_share(row: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """float [M]: the share of box ``row`` [>= 4] that lies within each of ``boxes`` [M, >= 4]
    (``inside_share`` the other way round)."""
    return _intersection(boxes, row) / max(float(np.prod(np.clip(row[2:4] - row[:2], 1e-6, None))), 1e-6)


def colour_parts(row: np.ndarray, blob: tuple[np.ndarray, np.ndarray], ids: list[int], claims: np.ndarray,
                 colours: ColourModels, inside: float = 0.6, owners: list[int] | None = None) -> list[np.ndarray] | None:
    """Blob ``row`` (``blob``: its foreground and colour codes, ``BlobMasks.colours``) split by colour
    between the tracks ``ids`` whose predicted boxes ``claims`` lie in it (``inside`` of their area) and
    whose colours are known; None where fewer than two such claim it. ``owners``: filled with the track
    id each part was split off for."""
    mine = [m for m in np.flatnonzero(inside_share(claims, row) >= inside) if colours.known(ids[m])]
    if len(mine) < 2:
        return None
    which: list[int] = []
    parts = split_by_colour(row, *blob, claims[mine], [colours.hist[ids[m]] for m in mine],
                            [colours.area[ids[m]] for m in mine], heights=[colours.height.get(ids[m]) for m in mine],
                            owners=which)
    if owners is not None and parts is not None:
        owners.extend(ids[mine[k]] for k in which)
    return parts


def share_blob(row: np.ndarray, fg: np.ndarray, claims: np.ndarray, inside: float = 0.6) -> list[np.ndarray]:
    """Cut one blob ``row`` [5] (foreground crop ``fg`` [h, w]) between the predicted boxes ``claims``
    [M, 4] that lie mostly (``inside`` of their area) within it: at the emptiest column between each
    two neighbours' centres, each part re-boxed on its own pixels. Two people the tracker knows are in
    one blob stay two boxes. One claim, or claims whose centres are too close to cut between: [row]."""
    x0, y0 = float(row[0]), float(row[1])
    mine = claims[inside_share(claims, row) >= inside]
    if len(mine) < 2 or not fg.any() or row[2] - row[0] < 1.3 * float((mine[:, 2] - mine[:, 0]).max()):
        return [row]  # one claim, or a blob no wider than one of its claimants: one person
    centres = np.sort((mine[:, 0] + mine[:, 2]) / 2 - x0)
    width = float(np.median(mine[:, 2] - mine[:, 0]))
    if np.diff(centres).min() < 0.25 * width:
        return [row]
    profile = np.convolve(fg.sum(0).astype(np.float64), np.ones(5) / 5, mode="same")
    cuts = [0]
    for a, b in zip(centres[:-1], centres[1:], strict=True):
        lo, hi = int(np.clip(a + 0.25 * (b - a), 0, fg.shape[1] - 1)), int(np.clip(b - 0.25 * (b - a), 1, fg.shape[1]))
        cuts.append(lo + int(np.argmin(profile[lo:max(hi, lo + 1)])))
    cuts.append(fg.shape[1])
    parts = []
    for a, b in zip(cuts[:-1], cuts[1:], strict=True):
        ys, xs = np.nonzero(fg[:, a:b])
        if len(ys) < 0.1 * fg.sum():
            return [row]
        box = np.array([x0 + a + xs.min(), y0 + ys.min(), x0 + a + xs.max() + 1, y0 + ys.max() + 1], np.float32)
        parts.append(np.append(box, len(ys) / max(1.0, float(np.prod(box[2:] - box[:2])))).astype(np.float32))
    return parts


__all__ = ["BINS", "ColourModels", "colour_parts", "covered_share", "dense_histograms", "histogram", "inside_share", "lab_codes", "share_blob", "similarity",
           "sparse_histogram", "split_by_colour"]
