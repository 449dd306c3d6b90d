"""Cut raw tracker tracks where they may have changed person, re-link the clean pieces, fill the trajectory.

A tracker fed background-subtraction blobs loses people where they cross: for a few frames one blob
holds two walkers, one of the two tracks is fed the blob and the other starves, and when they part
the tracker may hand each id to the wrong walker. So a raw track is only trusted over a *segment*:
a run of consecutive frames none of which overlaps another track (``cut_segments``). Segments are
then re-linked by motion (``stitch``): where each one's straight-line walk (centre x, foot line y,
height) predicts the next, all candidate joins solved at once (``scipy.optimize.linear_sum_assignment``),
never joining two segments that walk opposite ways or share a frame. A walker swallowed by a
nearer one's blob is carried on along its line while that blob holds it (``coast``). A linked
track's trajectory (``trajectories``) covers every frame from its first to its last: the detected
box where there is one, the walk's straight line between detected boxes where there is none (merged,
hidden, missed), and a state per frame saying which frames a gait sequence may use. A linked track that was
seen only inside others' blobs for longer than a hidden walker may be re-linked across is cut there, unless its
two sides would be joined across that gap (``split_blind``).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pipeline.extract.detect import Track
from pipeline.extract.track_colour import covered_share, dense_histograms, inside_share, similarity
from pipeline.extract.track_gap import fill_walk
from pipeline.formats.video_cache import TRACK_STATES
from pipeline.geometry import touches_edge

KEPT, MERGED, BORDER, SMALL, INTERPOLATED = (TRACK_STATES.index(s) for s in
                                             ("kept", "merged", "border", "small", "interpolated"))
# frames int64 [n], boxes float32 [n, 4], scores float32 [n] (, split bool [n], colour histograms: float32 [n, BINS]
# or object [n] of track_colour.sparse_histogram pairs)
Piece = tuple[np.ndarray, ...]
FIT = 16  # frames at a segment's end fitted by a straight line (a last box cut by an occluder does not steer)
SLOPE = 5  # frames a line needs before its slope is trusted: fewer place a piece, but say nothing of its walk


@dataclass
class Trajectory:
    """Every frame of a track from its first to its last: box and state (``TRACK_STATES`` codes)."""

    frames: np.ndarray  # int64 [N], consecutive
    boxes: np.ndarray  # float32 [N, 4] x0 y0 x1 y1
    state: np.ndarray  # uint8 [N]


@dataclass
class PersonTrack(Track):
    """A kept track: its clean frames (the gait sequence: ``frames``, ``boxes``, ``scores``) and its trajectory."""

    trajectory: Trajectory | None = None


def _interpolated(frames: np.ndarray, boxes: np.ndarray, max_gap: int) -> dict[int, np.ndarray]:
    """The track's box at each frame it covers or misses by at most ``max_gap`` (linear in between)."""
    span = np.arange(int(frames[0]), int(frames[-1]) + 1)
    gaps = np.diff(frames)
    covered = np.repeat(gaps <= max_gap + 1, gaps)  # [len(span) - 1]: the frames after each detection up to the next
    keep = np.concatenate([covered, [True]]) | np.isin(span, frames)  # a detection before a long gap stays
    return {int(f): b for f, b in zip(span[keep], fill(frames, boxes, span)[keep], strict=True)}


def merged_frames(tracks: list[tuple[np.ndarray, np.ndarray]], share: float, max_gap: int,
                  fragment: float = 0.0) -> list[np.ndarray]:
    """Per track, bool [N]: frames where this box and another track's (detected, or interpolated over
    a gap of up to ``max_gap``: a hidden person is somewhere on the line) share at least ``share`` of
    the smaller box. A silhouette cut from such a box holds part of the other person too. Another box
    under ``fragment`` of this one's height is no person beside it but a piece of a body (a leg the
    foreground cut off as a blob of its own, followed as a track of its own): it merges nothing."""
    spans = [_interpolated(f, b, max_gap) for f, b in tracks]
    flags = []
    for i, (frames, boxes) in enumerate(tracks):
        bad = np.zeros(len(frames), bool)
        for n, (f, box) in enumerate(zip(frames, boxes, strict=True)):
            for j, span in enumerate(spans):
                other = span.get(int(f))
                if j == i or other is None or other[3] - other[1] < fragment * (box[3] - box[1]):
                    continue
                tl, br = np.maximum(box[:2], other[:2]), np.minimum(box[2:], other[2:])
                inter = float(np.prod(np.clip(br - tl, 0, None)))
                area = min(float(np.prod(np.clip(other[2:] - other[:2], 1e-6, None))),
                           float(np.prod(np.clip(box[2:] - box[:2], 1e-6, None))))
                if inter >= share * area:
                    bad[n] = True
                    break
        flags.append(bad)
    return flags


def cut_segments(piece: Piece, bad: np.ndarray, max_miss: int, min_length: int) -> tuple[list[Piece], int]:
    """The runs of ``piece`` between its ``bad`` (merged) frames and gaps of more than ``max_miss`` frames
    (after a gap the tracker may have picked up someone else); runs shorter than ``min_length`` are
    dropped. Returns the runs and the frames dropped with the short ones."""
    frames = piece[0]
    good = np.flatnonzero(~np.asarray(bad, bool))
    if not len(good):
        return [], 0
    breaks = np.flatnonzero(np.diff(frames[good]) > max_miss + 1) + 1
    breaks = np.union1d(breaks, np.flatnonzero(np.diff(good) > 1) + 1)  # a bad frame between two good ones
    runs, lost = [], 0
    for run in np.split(good, breaks.astype(int)):
        if len(run) >= min_length:
            runs.append(tuple(a[run] for a in piece))
        else:
            lost += len(run)
    return runs, lost  # type: ignore[return-value]


def _line(frames: np.ndarray, values: np.ndarray, at_end: bool) -> tuple[float, np.ndarray, np.ndarray]:
    """``(t0, value at t0, slope per frame)`` of a least-squares line through the end (or start) of a
    segment; with fewer than ``SLOPE`` frames the slope is not trusted (0)."""
    sl = slice(max(0, len(frames) - FIT), None) if at_end else slice(0, FIT)
    t, v = frames[sl].astype(np.float64), np.asarray(values[sl], np.float64)
    t0 = float(t[-1] if at_end else t[0])
    if len(t) < SLOPE or np.ptp(t) == 0:
        return t0, np.median(v, 0), np.zeros(v.shape[1])
    slope, icpt = np.polyfit(t, v, 1)
    return t0, slope * t0 + icpt, slope


def _features(boxes: np.ndarray) -> np.ndarray:
    """[n, 3]: centre x, foot line y (how far from the camera on a ground plane), height."""
    return np.stack([(boxes[:, 0] + boxes[:, 2]) / 2, boxes[:, 3], boxes[:, 3] - boxes[:, 1]], 1)


EDGE_GAP = 8  # frames: the longest gap over which an end cut by the picture's edge is compared on its other side
SWING = 0.25  # heights: a side-on walker's width goes from about 0.2 to 0.75 of its height over a gait cycle
STILL = 0.2  # heights per second: under a quarter of a walking pace (about 0.75), a person stands
STAYS = 0.8  # share of a standing person's last box that a detection of the same height covers: they are still there


def _cut_side(box: np.ndarray, width: int | None, border: int) -> int:
    """-1 (1): the box touches the picture's left (right) edge, the walker's body cut there; 0: neither."""
    if width is None:
        return 0
    return -1 if box[0] <= border else (1 if box[2] >= width - border else 0)


def _end(piece: Piece, at_end: bool, side: int, sliver: bool) -> tuple[float, np.ndarray, np.ndarray]:
    """``_line`` of the piece's features, x taken on the box's side away from a cut edge (``side``); a
    ``sliver`` (a few frames cut by the edge: a walker coming in or going out, more of the body shown
    each frame) is taken at its frame nearest the gap, not at its median."""
    feats = _features(piece[1])
    if side:
        feats[:, 0] = piece[1][:, 2] if side < 0 else piece[1][:, 0]
    if sliver:
        k = -1 if at_end else 0
        return float(piece[0][k]), feats[k].astype(np.float64), np.zeros(3)
    return _line(piece[0], feats, at_end)


def still_there(last: np.ndarray, first: np.ndarray, present: np.ndarray) -> bool:
    """Whether a detection ``present`` [K, >= 4] at another piece's ``first`` box's frame, not that piece's own
    (a blob holding half of ``first`` holds that piece), covers ``STAYS`` of a person's ``last`` box at their
    height (within a fifth): they still stand there."""
    boxes = np.asarray(present, np.float64).reshape(-1, np.shape(present)[-1])[:, :4]
    last, first = np.asarray(last, np.float64), np.asarray(first, np.float64)
    ratio = (boxes[:, 3] - boxes[:, 1]) / max(float(last[3] - last[1]), 1e-6)
    there = (covered_share(last, boxes) >= STAYS) & (ratio >= 0.8) & (ratio <= 1.25)
    return bool((there & (covered_share(first, boxes) < 0.5)).any())


def join_cost(a: Piece, b: Piece, max_gap: int, max_offset: float = 0.5, fps: float = 25.0,
              min_alike: float = 0.75, width: int | None = None, border: int = 3,
              present: np.ndarray | None = None) -> float | None:
    """The cost of ``b`` continuing ``a`` (None: it cannot): each one's line carried to the middle of the
    gap must meet the other's within ``max_offset`` heights (x and foot line), heights within a third,
    the two must not walk opposite ways, and where both carry colours (``_alike``) they must be at least
    ``min_alike`` alike. An end cut by the picture's left or right edge (``width`` given, a gap of at
    most ``EDGE_GAP``) is compared on its uncut side, and a few such frames only bound the other's
    height from below: a walker coming in shows more of itself each frame. Lower is better: the offset
    plus the change of velocity (heights per second), of height and of colour. With ``present`` (every
    detection at ``b``'s first frame), a person who stood at ``a``'s end (under ``STILL``) and still stands
    there when ``b`` begins (``still_there``) is not ``b``: on PETS 2009 a man in jeans standing beside others
    was joined to a man in black who walked off from beside him 10 frames later."""
    gap = int(b[0][0] - a[0][-1])
    if not 0 < gap <= max_gap:
        return None
    near = gap <= EDGE_GAP  # an edge-cut end has no speed of its own to carry it farther
    cut_a = _cut_side(a[1][-1], width, border) if near else 0
    cut_b = _cut_side(b[1][0], width, border) if near else 0
    side = cut_a or cut_b  # a walker cut by a picture edge (``width`` given) is compared on its other side
    sliver_a, sliver_b = cut_a != 0 and len(a[0]) < 5, cut_b != 0 and len(b[0]) < 5
    ta, va, sa = _end(a, True, side, sliver_a)
    tb, vb, sb = _end(b, False, side, sliver_b)
    h = max(float(va[2]), float(vb[2]) if side else 0.0, 1.0)
    ratio = vb[2] / max(float(va[2]), 1.0)
    # a few frames cut by the edge may show less than the whole height: they bound the other's one way only
    if (ratio < 0.75 and not sliver_b) or (ratio > 1.33 and not sliver_a):
        return None
    mid = (ta + tb) / 2
    pa, pb = va[:2] + sa[:2] * (mid - ta), vb[:2] + sb[:2] * (mid - tb)
    dx, dy = np.abs(pa - pb)
    if side:  # the side left uncut swings with the legs: half a side-on walker's width change over a stride
        dx = max(0.0, dx - SWING * h)
    off = float(np.hypot(dx, dy)) / h
    if off > max_offset:
        return None
    speed = 0.01 * h  # below this (heights per frame) a walker is taken to stand: no direction to compare
    if abs(sa[0]) > speed and abs(sb[0]) > speed and np.sign(sa[0]) != np.sign(sb[0]):
        return None
    if present is not None and np.hypot(*sa[:2]) / h * fps < STILL and still_there(a[1][-1], b[1][0], present):
        return None
    dv = float(np.hypot(*(sa[:2] - sb[:2]))) / h * fps
    alike = _alike(a, b)
    if alike is not None and alike < min_alike:
        return None  # another walker's clothes
    return off + 0.5 * dv + abs(float(np.log(ratio))) + (0.0 if alike is None else 1.0 - alike)


def _alike(a: Piece, b: Piece) -> float | None:
    """How alike the colours of ``a``'s last and ``b``'s first ``FIT`` frames that carry colours are
    (Bhattacharyya coefficient of their mean histograms, a 5th array of a piece); None where one carries none.
    A piece's end inside other walkers' blobs has none of its own (parts of a blob carry no colours): its
    colours from before it went in still say who it is (an end without them joined another walker on PETS)."""
    if len(a) < 5 or len(b) < 5:
        return None
    ends = []
    for hists, at_end in ((dense_histograms(a[4]), True), (dense_histograms(b[4]), False)):
        seen = hists[hists.sum(1) > 0]
        if not len(seen):
            return None
        ends.append((seen[-FIT:] if at_end else seen[:FIT]).mean(0))
    return similarity(*ends)


def stitch(pieces: list[Piece], max_gap: int, max_offset: float = 0.5, fps: float = 25.0,
           width: int | None = None, border: int = 3,
           detections: list[np.ndarray] | None = None) -> tuple[list[Piece], int]:
    """Join segments that continue one another (``join_cost``), all candidate joins of a round solved
    as one assignment, rounds repeated on the joined tracks until none is left. A person hidden for up
    to ``max_gap`` frames, or cut out where they crossed another, comes back as the same track.
    ``detections``: every frame's candidates, to see who still stands where a piece ended (``still_there``).
    Returns the tracks (ordered by first frame) and the joins made."""
    from scipy.optimize import linear_sum_assignment

    tracks, joins = sorted(pieces, key=lambda p: int(p[0][0])), 0
    while len(tracks) > 1:
        n, big = len(tracks), 1e6
        cost = np.full((n, n), big)
        # every detection at each track's first frame: who still stands where another ended
        present = [None if detections is None else detections[int(t[0][0])] for t in tracks]
        for i in range(n):
            for j in range(n):
                c = (join_cost(tracks[i], tracks[j], max_gap, max_offset, fps, width=width, border=border,
                               present=present[j]) if i != j else None)
                if c is not None:
                    cost[i, j] = c
        rows, cols = linear_sum_assignment(cost)
        pairs = {int(i): int(j) for i, j in zip(rows, cols, strict=True) if cost[i, j] < big}
        if not pairs:
            break
        heads = set(range(n)) - set(pairs.values())  # a chain starts at a track nobody continues
        ends = {i for i in pairs if i in heads} | {j for j in pairs.values() if j not in pairs}  # joined on one side
        tracks = [_unsure(t) if k in ends and len(t[0]) < SLOPE else t for k, t in enumerate(tracks)]
        joined = []
        for i in heads:
            chain = [i]
            while chain[-1] in pairs:
                chain.append(pairs[chain[-1]])
            joined.append(tuple(np.concatenate([tracks[k][m] for k in chain]) for m in range(len(tracks[i]))))
        joins += len(pairs)
        tracks = sorted(joined, key=lambda p: int(p[0][0]))  # type: ignore[arg-type]
    return tracks, joins


def _unsure(piece: Piece) -> Piece:
    """``piece`` with every frame no gait frame (its 4th array), for a piece of under ``SLOPE`` frames joined on one
    side only (a linked track's first or last): it has no slope of its own, so it was joined by where it is, not by
    how it walks, and nothing after it confirms the join. On PETS 2009 such a 4-frame piece behind a sign post, two
    men in one blob that passed as one, ended the track of a man walking past it. A piece without that array
    (boxes only, as in hand-made tests) is left as it is."""
    if len(piece) < 4:
        return piece
    return (*piece[:3], np.ones(len(piece[0]), bool), *piece[4:])


def fill(frames: np.ndarray, boxes: np.ndarray, span: np.ndarray) -> np.ndarray:
    """float32 [len(span), 4]: ``boxes`` at ``frames``, straight lines in between (ends held)."""
    return np.stack([np.interp(span, frames, boxes[:, i]) for i in range(4)], 1).astype(np.float32)


def overlaps(a: np.ndarray, b: np.ndarray, share: float) -> np.ndarray:
    """bool [n]: boxes a [n, 4] and b [n, 4] share at least ``share`` of the smaller of the two."""
    inter = np.prod(np.clip(np.minimum(a[:, 2:], b[:, 2:]) - np.maximum(a[:, :2], b[:, :2]), 0, None), 1)
    area = np.minimum(*(np.prod(np.clip(x[:, 2:] - x[:, :2], 1e-6, None), 1) for x in (a, b)))
    return inter >= share * area


def coast(tracks: list[Piece], n_frames: int, max_frames: int, inside: float = 0.8,
          size: tuple[int, int] | None = None) -> list[tuple[Piece, Piece]]:
    """Per track, the frames before its first and after its last detection where it walks on hidden in
    another track's blob: its line carried on (centre x, foot line, height; median width) for as long
    as at least ``inside`` of the carried box lies within a box detected for another track, up to
    ``max_frames``. ``(before, after)``: frames [k] and boxes [k, 4] each. A walker swallowed by a
    nearer one's blob is followed there, and that blob is known to hold two people. ``size`` (width,
    height): the carried box is clipped to the picture (what is seen of a walker coming in, or going
    out, at the edge inside another's blob), and the carrying stops where nothing of it is left."""
    seen = [dict(zip(p[0].tolist(), p[1], strict=True)) for p in tracks]
    out = []
    for i, piece in enumerate(tracks):
        ends = []
        for at_end in (False, True):
            t0, v0, slope = _line(piece[0], _features(piece[1]), at_end)
            sl = slice(-FIT, None) if at_end else slice(0, FIT)
            w = float(np.median(piece[1][sl, 2] - piece[1][sl, 0]))
            step = 1 if at_end else -1
            frames, boxes = [], []
            for t in range(int(t0) + step, int(t0) + step * (max_frames + 1), step):
                x, foot, h = v0 + slope * (t - t0)
                box = np.array([x - w / 2, foot - h, x + w / 2, foot], np.float32)
                if size is not None:
                    box = np.clip(box, 0, np.array([*size, *size], np.float32))
                hosts = [d[t] for j, d in enumerate(seen) if j != i and t in d]
                if (not 0 <= t < n_frames or not hosts or min(box[2] - box[0], box[3] - box[1]) < 1
                        or not any(inside_share(box[None], host)[0] >= inside for host in hosts)):
                    break
                frames.append(t)
                boxes.append(box)
            order = slice(None) if at_end else slice(None, None, -1)
            ends.append((np.array(frames[order], np.int64), np.array(boxes[order], np.float32).reshape(-1, 4)))
        out.append((ends[0], ends[1]))
    return out


def extend_at_border(tracks: list[Piece], candidates: list[np.ndarray], width: int, height: int, border: int,
                     inside: float = 0.7, max_frames: int = 30) -> tuple[list[Piece], int]:
    """Each track carried back from its first frame (and on from its last) through the candidates of a
    walker coming in at (going out of) the picture's edge: a box touching the edge that lies mostly
    (``inside`` of it) within the track's next (previous) box, taken by no other track. A walker's first
    frames in the picture are small, fast-growing boxes no tracker matches. Returns the tracks and the
    frames added."""
    taken = [dict(zip(p[0].tolist(), p[1], strict=True)) for p in tracks]
    out, added = [], 0
    for i, piece in enumerate(tracks):
        new: dict[bool, list[tuple[int, np.ndarray, float]]] = {False: [], True: []}
        for at_end in (False, True):
            t, box = (int(piece[0][-1]), piece[1][-1]) if at_end else (int(piece[0][0]), piece[1][0])
            step = 1 if at_end else -1
            for _ in range(max_frames):
                t += step
                if not 0 <= t < len(candidates) or t in taken[i]:
                    break
                cand = np.asarray(candidates[t], np.float32).reshape(-1, 5)
                edge = touches_edge(cand, width, height, border)
                grow = np.array([0.1, 0.1, 0.1, 0.1]) * np.tile(box[2:] - box[:2], 2) * [-1, -1, 1, 1]
                ok = edge & (inside_share(cand[:, :4], box + grow) >= inside)
                for j, d in enumerate(taken):
                    if j != i and t in d:
                        held = np.array([inside_share(d[t][None], c)[0] for c in cand[:, :4]])
                        ok &= (inside_share(cand[:, :4], d[t]) < 0.5) & (held < 0.5)  # its box, or one inside it
                if not ok.any():
                    break
                k = int(np.flatnonzero(ok)[np.argmax(np.prod(cand[ok, 2:4] - cand[ok, :2], 1))])
                box = cand[k, :4]
                new[at_end].append((t, box, float(cand[k, 4])))
        if not new[False] and not new[True]:
            out.append(piece)
            continue
        before, after = new[False][::-1], new[True]
        added += len(before) + len(after)
        parts = [piece[0], piece[1], piece[2]]
        extra = [(np.array([r[0] for r in rows], np.int64), np.array([r[1] for r in rows], np.float32).reshape(-1, 4),
                  np.array([r[2] for r in rows], np.float32)) for rows in (before, after)]
        cols = [np.concatenate([extra[0][m], parts[m], extra[1][m]]) for m in range(3)]
        for m in range(3, len(piece)):  # split flags / colours: none for the added frames
            pad = [np.zeros((len(x[0]), *piece[m].shape[1:]), piece[m].dtype) if piece[m].dtype != object
                   else np.full(len(x[0]), None, object) for x in extra]
            cols.append(np.concatenate([pad[0], piece[m], pad[1]]))
        out.append(tuple(cols))
    return out, added


SEEN = SLOPE  # clean frames a part cut off by ``split_blind`` must have on each side of the cut


def split_blind(piece: Piece, path: Trajectory, clean: np.ndarray, max_gap: int, fps: float = 25.0,
                width: int | None = None, border: int = 3) -> list[tuple[Piece, Trajectory]]:
    """A linked track cut into tracks of their own where no ``clean`` frame (bool [n] of its detections) is
    seen for more than ``max_gap`` frames and its clean frames either side would not be joined across that
    gap (``join_cost``: motion and colours). Through a long stretch inside other walkers' blobs (merged,
    split off by colour) the tracker may hand the id to someone else; on PETS 2009 it did (a man in jeans,
    then one in a leather jacket, under one id). Seen no better than hidden, such a stretch is trusted no
    more than a hidden one (``stitch``). Each cut is at the middle of the stretch; every trajectory frame
    goes to one part. A side with under ``SEEN`` clean frames is not cut off (a line through fewer has no
    slope to compare, and a gait sequence of so few is none), but its clean frames become merged ones: too
    little is seen there to tell whether it is still the same walker (on PETS 2009 with BoT-SORT, the 3 frames
    after a 1.5 s stretch inside others' blobs were two other men). A track with no such stretch comes back
    whole (its state copied where such a side was marked)."""
    clean = np.asarray(clean, bool)
    state = path.state.copy()
    seen = piece[0][clean]
    long = np.flatnonzero(np.diff(seen) > max_gap + 1) if max_gap > 0 else np.zeros(0, np.int64)
    cuts, lo = [], int(path.frames[0]) - 1
    for k in long:
        before = clean & (piece[0] > lo) & (piece[0] <= seen[k])
        after = clean & (piece[0] >= seen[k + 1])
        after &= piece[0] <= (seen[long[long > k][0]] if (long > k).any() else piece[0][-1])
        if min(before.sum(), after.sum()) < SEEN:
            for side in (before, after):  # too little seen there to tell whether it is someone else
                if side.sum() < SEEN:
                    state[piece[0][side] - path.frames[0]] = MERGED
            continue
        a, b = (tuple(x[m] for x in piece) for m in (before, after))
        if join_cost(a, b, int(seen[k + 1] - seen[k]), fps=fps, width=width, border=border) is None:
            lo = int((seen[k] + seen[k + 1]) // 2)  # the last frame of this part
            cuts.append(lo)
    if not cuts:
        return [(piece, path if np.array_equal(state, path.state) else Trajectory(path.frames, path.boxes, state))]
    bounds = [int(path.frames[0]) - 1, *cuts, int(path.frames[-1])]
    parts = []
    for lo, hi in zip(bounds[:-1], bounds[1:], strict=True):
        mine = (piece[0] > lo) & (piece[0] <= hi)  # at least SEEN clean frames each
        span = slice(lo + 1 - int(path.frames[0]), hi + 1 - int(path.frames[0]))  # every frame in one part
        parts.append((tuple(a[mine] for a in piece), Trajectory(path.frames[span], path.boxes[span], state[span])))
    return parts


def between_merges(state: np.ndarray) -> np.ndarray:
    """bool [N]: the ``kept`` frames of a trajectory's ``state`` whose nearest frames before and after that are
    not ``interpolated`` (no detection there: no sign of anything) are both merged. A walker with someone (in a
    blob of two, split off one, in their box) before and after is not rid of them for one frame between: the
    blob's tests missed them there. On PETS 2009 two of 18 such frames with merged frames beside them held two
    people (a handshake, a man stacked behind); with BoT-SORT one more, amid interpolated frames, was a woman
    where the track was following a man walking beside her. The others are single walkers."""
    state = np.asarray(state)
    seen = np.flatnonzero(state != INTERPOLATED)  # frames with a detection or a merge
    marks = state[seen]
    lone = np.zeros(len(state), bool)
    lone[seen[1:-1]] = (marks[1:-1] == KEPT) & (marks[:-2] == MERGED) & (marks[2:] == MERGED)
    return lone


def trajectories(tracks: list[Piece], width: int, height: int, border: int, min_height: float,
                 share: float, coasted: list[tuple[Piece, Piece]] | None = None) -> list[Trajectory]:
    """Per linked track, its trajectory. A frame is ``merged`` where its box (detected or on the line)
    shares ``share`` of the smaller box with another track's, or where it is carried on hidden in
    another's blob (``coasted``, from ``coast``); else ``border`` / ``small`` where the detected box
    touches the image edge / is lower than ``min_height`` of the frame; else ``kept`` where detected
    and ``interpolated`` where not (a piece's 4th array, its frames split off a shared blob by colour:
    ``merged``). The box is the detected one where there is one (a blob the tracker saw holding two
    people and cut at a column was cut out before linking) and the walk between detected boxes elsewhere
    (``track_gap.fill_walk``: a long gap takes a stride's median width; the merged test still compares the
    straight corner lines, so which frames a gait sequence keeps is as before): measured on synthetic
    crowds, a detected box beside a hidden person follows its walker better than the line does."""
    empty = (np.zeros(0, np.int64), np.zeros((0, 4), np.float32))
    coasted = coasted or [(empty, empty)] * len(tracks)
    spans, lines, walks = [], [], []
    for p, (before, after) in zip(tracks, coasted, strict=True):
        inner = np.arange(p[0][0], p[0][-1] + 1)
        spans.append(np.arange(inner[0] - len(before[0]), inner[-1] + 1 + len(after[0])))
        lines.append(np.concatenate([before[1], fill(p[0].astype(np.float64), p[1], inner), after[1]]))
        walks.append(np.concatenate([before[1], fill_walk(p[0], p[1], inner), after[1]]))
    out = []
    for i, (piece, span) in enumerate(zip(tracks, spans, strict=True)):
        frames, boxes = piece[:2]
        state = np.full(len(span), INTERPOLATED, np.uint8)
        state[:len(coasted[i][0][0])] = MERGED
        state[len(span) - len(coasted[i][1][0]):] = MERGED
        at = frames - span[0]
        edge = touches_edge(boxes, width, height, border)
        small = boxes[:, 3] - boxes[:, 1] < min_height * height
        state[at] = np.where(edge, BORDER, np.where(small, SMALL, KEPT))
        if len(piece) > 3:  # a 4th array: frames on the line but no gait frame (a colour-split part, a pair's blob)
            state[at[np.asarray(piece[3], bool)]] = MERGED
        for j, (other, oline) in enumerate(zip(spans, lines, strict=True)):
            lo, hi = max(span[0], other[0]), min(span[-1], other[-1]) + 1
            if j != i and lo < hi:
                mine = slice(lo - span[0], hi - span[0])
                state[mine][overlaps(lines[i][mine], oline[lo - other[0]:hi - other[0]], share)] = MERGED
        out.append(Trajectory(span.astype(np.int64), walks[i], state))
    return out


__all__ = ["PersonTrack", "Piece", "Trajectory", "between_merges", "coast", "cut_segments", "extend_at_border", "merged_frames", "join_cost", "split_blind", "still_there",
           "stitch", "trajectories"]
