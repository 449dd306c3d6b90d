"""Every person of a video as its own track: ultralytics' ByteTrack / BoT-SORT over any detector.

``select_track`` (``pipeline.extract.detect``) keeps one walker per video, which is right for a
dataset video and wrong for footage. Here the per-frame candidates ``float32 [K, 5]`` of either
detector (YOLO boxes, background-subtraction blobs) go through a well-kept multi-object tracker
(``ultralytics.trackers``: Kalman filter, two-stage IoU association), and what it returns is
kept only where it is one whole person:

- ``split_blobs``: a background-subtraction blob much wider than a person is split at the
  valleys of its column profile (two people side by side are two boxes, not one); where the two meet across
  the cut on a quarter of a part's height (``touching``: pressed together), the parts stay in their tracks'
  lines but are no gait frames (the silhouette's edge there is the cut, not a body);
- frames whose box touches the image border (a person half out of the picture) are dropped;
- frames whose box is below the minimum height are dropped;
- frames whose box is over 1.4x as tall as one person standing at its foot row (``ground_height``: a line
  fitted to the video's detections) hold a walker and someone behind them: on the line, no gait frame;
- a whole blob with over 1.6x the foreground one person covers at its foot row (``too_full``: the video's median
  silhouette for its height) holds two people side by side with no valley between them: on the line, no gait frame;
- a kept track's stretch whose box is a step (``STEP``, 15%) taller, for its foot row, than the same walker's
  stretches on both sides, and over 1.25x a person's height there (``taller_than_walker``), is someone close
  behind the walker: on the line, no gait frame;
- frames where a track's box overlaps another track's box (a blob holding two people: they
  merged; or one hides part of the other) are dropped for both, rather than keep a two-person
  silhouette; a person hidden for a while is placed on the line between where it was last and first seen;
- with the blobs' foreground and colours (``BlobMasks``), a blob that several tracks' predicted boxes
  lie in is split between them by each track's clothing colours (``split_by_colour``), or else cut at a
  column (``share_blob``), so the tracker keeps both; those frames are merged (never in a gait sequence);
- a raw track is cut at merged frames (colour-split ones excepted: those pixels are its walker's), where
  its box's height jumps by over ``JUMP`` in a frame (the tracker took another blob: BoT-SORT following a
  walker coming in), and where it missed more than ``cut_gap`` frames, and the pieces are re-linked by motion
  (``pipeline.extract.track_link``); a walker swallowed by another's blob is carried on (``coast``),
  and one coming in at (going out of) the edge is followed through its first (last) slivers (``extend_at_border``);
- a linked track seen only inside others' blobs for longer than ``stitch_seconds`` (merged, split off by colour)
  is cut there into two tracks unless its clean frames either side would be re-linked across that gap
  (``split_blind``): through such a stretch the tracker may have handed its id to someone else;
- a track with under ``min_length`` frames of its own (clean or colour-split), under ``min_clean``
  clean ones, or not person-shaped (median height/width outside ``aspect``, or a jumpy height), is not kept.

A kept track is a ``PersonTrack``: its clean frames (the gait sequence) and its trajectory, every
frame from its first to its last with a box and a state (kept / merged / border / small /
interpolated). Every drop is counted in ``TrackStats`` (stored in each cache, shown by
``depthgait-prep status``).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from pipeline.extract.ground_height import HeightLine, fill_of_one, fit_height_line
from pipeline.extract.settings import TRACKERS
from pipeline.extract.track_colour import BINS, share_blob
from pipeline.extract.track_link import (
    BORDER,
    KEPT,
    MERGED,
    SMALL,
    PersonTrack,
    Piece,
    Trajectory,
    between_merges,
    coast,
    cut_segments,
    extend_at_border,
    merged_frames,
    split_blind,
    stitch,
    trajectories,
)
from pipeline.extract.track_stream import (
    COLOUR,
    CUT,
    FOREIGN,
    PAIR,
    TOUCH,
    BlobMasks,
    RawRow,
    RawTracker,
    make_tracker,
    run_tracker,
    split_blobs,
)
from pipeline.geometry import EDGE, touches_edge

FRAGMENT = 0.4  # a box under this share of a track's height beside it is a piece of a body, not a person


JUMP = 1.2  # a walker's own box changes height by at most 7% a frame (crowd truth, both seeds): 20% is another blob


@dataclass(frozen=True)
class TrackFilter:
    """What a kept track must be; recorded in the cache fingerprint with ``--tracks all``."""

    min_height: float = 0.12  # share of the frame height
    min_length: int = 10  # frames of its own (clean, split off a shared blob by colour, or its pair's blob) a track must have
    min_clean: int = 1  # clean frames (its gait sequence) a kept track must have
    border: int = EDGE  # pixels: a box this close to an image edge touches it (a body cut by the edge)
    aspect: tuple[float, float] = (1.2, 5.0)  # median box height / width of a person
    max_height_jump: float = 0.15  # median relative change of the box height between frames
    merge_share: float = 0.2  # two tracks' boxes sharing this much of the smaller one: the two merged
    max_gap: int = 5  # frames a track may miss and still be interpolated for the merge test
    stitch_seconds: float = 1.2  # how long a person may be hidden and come back as the same track (0: never)
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
    blobs_two_heads: int = 0  # whole blobs showing two heads (walkers never seen apart): in the track's line, merged for gait
    blobs_pressed: int = 0  # parts cut at a column from a walker pressed against them (touching): in the line, no gait frame
    frames_too_tall: int = 0  # boxes over 1.4x a person's height at their foot row (ground_height): in the line, no gait frame
    segments: int = 0  # clean pieces the raw tracks were cut into
    segments_joined: int = 0  # joins made re-linking them
    frames_entering: int = 0  # border detections of a walker coming in / going out, added to its track
    frames_foreign: int = 0  # detections not in their track's colours (the tracker swapped people): cut there
    frames_fragment: int = 0  # detections in pieces shorter than min_segment (not re-linked)
    frames_interpolated: int = 0  # frames of kept tracks' trajectories placed on a line (not detected for it)
    frames_too_full: int = 0  # whole blobs (not too tall) with over 1.6x one person's foreground at their foot row: no gait frame
    frames_taller_than_walker: int = 0  # gait frames in a stretch a step taller than its walker either side: in the line, merged
    frames_between_merges: int = 0  # kept frames whose frames before and after are merged: in the line, merged
    frames_short_end: int = 0  # frames of pieces under 5 frames joined on one side only: in the line, no gait frame
    frames_short_side: int = 0  # kept frames of a side under 5 frames beyond a long blind stretch (split_blind): merged
    tracks_split: int = 0  # cuts of linked tracks where no clean frame was seen for over stitch_seconds (split_blind)

    def to_dict(self) -> dict[str, int]:
        return asdict(self)


def track_people(
    candidates: list[np.ndarray], width: int, height: int, fps: float = 25.0, tracker: str = "bytetrack",
    filters: TrackFilter | None = None, blobs: bool = False, masks: BlobMasks | None = None,
    raw: dict[int, list] | None = None,
) -> tuple[list[PersonTrack], TrackStats]:
    """Every kept person track (ordered by first frame) and the counts of what was dropped; ``masks``
    (the blobs' foreground, ``BlobMasks``) lets a blob several tracks claim be cut between them. ``raw``:
    the raw tracks of a ``RawTracker`` already fed the candidates as they were detected (``masks`` and
    ``tracker`` are then unused): the crops of a long video are never all held."""
    f = filters or TrackFilter()
    stats = TrackStats()
    # in seconds, not frames: 30 frames at 25 fps, 12 at PETS' 10 fps, where 30 frames (3 s) joined other walkers
    rate = fps or 25.0  # a video that reports no frame rate is taken at 25 frames/s
    stitch_gap = round(f.stitch_seconds * rate)
    if raw is None:
        raw = run_tracker(candidates, tracker, fps, blobs, masks, size=(width, height))
    stats.tracks_found = len(raw)
    tracks, shared, colours, areas = [], [], [], []
    for tid in sorted(raw, key=lambda k: raw[k][0][0]):
        rows = [RawRow(*r) for r in raw[tid]]  # plain tuples too (no area: not measured)
        tracks.append((np.array([r.frame for r in rows], np.int64), np.stack([r.box for r in rows]).astype(np.float32),
                       np.array([r.score for r in rows], np.float32)))
        shared.append(np.array([r.shared for r in rows], np.int64))
        areas.append(np.array([r.area for r in rows], np.float64))
        hists = np.empty(len(rows), object)  # sparse: filled in only where linking compares colours
        hists[:] = [r.colours for r in rows]
        colours.append(hists)
    merged = merged_frames([(fr, bx) for fr, bx, _ in tracks], f.merge_share, f.max_gap, FRAGMENT)
    line = fit_height_line(candidates, width, height, f.border)  # a person's height at each foot row
    fill = (fill_of_one(line, np.concatenate([bx for _, bx, _ in tracks]), np.concatenate(areas))
            if line is not None and tracks else None)  # and how much foreground they cover there
    pieces = []
    for piece, is_merged, is_shared, hists, area in zip(tracks, merged, shared, colours, areas, strict=True):
        stats.frames_foreign += int((is_shared == FOREIGN).sum())
        stats.frames_merged += int((is_merged | ((is_shared > 0) & (is_shared != FOREIGN))).sum())
        stats.blobs_shared += int(((is_shared == CUT) | (is_shared == COLOUR)).sum())
        stats.blobs_colour_split += int((is_shared == COLOUR).sum())
        stats.blobs_two_heads += int((is_shared == PAIR).sum())
        stats.blobs_pressed += int((is_shared == TOUCH).sum())
        # a part cut at a column followed the person the tracker predicted, but the tracker may swap ids
        # inside a blob cut that way: it is cut out like a merged frame. A part split by colour is that
        # walker's own pixels: it stays in the track (its box on the line, merged for the gait sequence)
        by_colour = is_shared == COLOUR
        # a box taller or shorter by a fifth from one frame to the next: the tracker moved onto another blob
        bad = (is_merged & ~by_colour) | (is_shared == CUT) | (is_shared == FOREIGN) | _jumps(*piece[:2], (width, height), f.border)
        # a whole blob with two heads, or a box too tall for one person where it stands, stays in the line too
        # (it is where its walker is), but is no gait frame
        tall = line.too_tall(piece[1]) if line is not None else np.zeros(len(piece[0]), bool)
        stats.frames_too_tall += int(tall.sum())
        full = line.too_full(piece[1], area, fill) & ~tall if fill is not None else np.zeros_like(tall)
        stats.frames_too_full += int(full.sum())
        not_gait = by_colour | (is_shared == PAIR) | (is_shared == TOUCH) | tall | full
        cut, lost = cut_segments((*piece, not_gait, hists), bad, f.cut_gap if stitch_gap else len(candidates), f.min_segment)
        pieces.extend(cut)
        stats.frames_fragment += lost
        stats.tracks_short += not cut  # nothing of it is left to link
    stats.segments = len(pieces)
    if stitch_gap:
        unsure = sum(int(p[3].sum()) for p in pieces)
        pieces, stats.segments_joined = stitch(pieces, stitch_gap, fps=rate, width=width,
                                              border=f.border, detections=candidates)
        stats.frames_short_end = sum(int(p[3].sum()) for p in pieces) - unsure  # short pieces joined on one side
    pieces, stats.frames_entering = extend_at_border(pieces, candidates, width, height, f.border)
    carried = (coast(pieces, len(candidates), stitch_gap, size=(width, height))  # hidden in another's blob
               if stitch_gap else None)
    paths = trajectories(pieces, width, height, f.border, f.min_height, f.merge_share, carried)
    kept: list[PersonTrack] = []
    for whole, whole_path in zip(pieces, paths, strict=True):
        state = whole_path.state[whole[0] - whole_path.frames[0]]  # of the detected frames
        stats.frames_border += int((state == BORDER).sum())
        stats.frames_small += int((state == SMALL).sum())
        # found merged once linked (a hidden person on its line); colour-split parts were counted above
        stats.frames_merged += int(((state == MERGED) & ~whole[3]).sum())
        lone = between_merges(whole_path.state)  # a frame clear of a neighbour between two merged with them
        whole_path.state[lone] = MERGED
        stats.frames_between_merges += int(lone.sum())
        state = whole_path.state[whole[0] - whole_path.frames[0]]
        kept.extend(_kept_parts(whole, whole_path, state == KEPT, stitch_gap, f, stats, rate, width, line))
    stats.tracks_kept = len(kept)
    return kept, stats


def _kept_parts(piece: Piece, path: Trajectory, clean: np.ndarray, blind_gap: int, f: TrackFilter,
                stats: TrackStats, fps: float, width: int, line: HeightLine | None = None) -> list[PersonTrack]:
    """The parts of one linked track (``split_blind``: cut where no clean frame is seen for over ``blind_gap``
    frames) that are long enough and person-shaped, as ``PersonTrack``; what is dropped is counted. With the
    video's height ``line``, stretches a step taller than the walker on both sides (``taller_than_walker``)
    stay on the part's line as merged frames, but leave its gait sequence."""
    parts = split_blind(piece, path, clean, blind_gap, fps=fps, width=width, border=f.border)
    stats.tracks_split += len(parts) - 1
    stats.frames_short_side += int((path.state == KEPT).sum()) - sum(int((p.state == KEPT).sum()) for _, p in parts)
    kept = []
    for (frames, boxes, scores, not_gait, _), part_path in parts:
        at = frames - part_path.frames[0]
        keep = part_path.state[at] == KEPT
        if line is not None:
            taller = np.zeros_like(keep)
            taller[keep] = line.taller_than_walker(frames[keep], boxes[keep])
            if taller.any():
                state = part_path.state.copy()
                state[at[taller]] = MERGED
                part_path = Trajectory(part_path.frames, part_path.boxes, state)
                keep &= ~taller
                stats.frames_taller_than_walker += int(taller.sum())
        if keep.sum() < f.min_clean or (keep | not_gait).sum() < f.min_length:
            stats.tracks_short += 1
            continue
        if not person_shaped(boxes[keep], f):
            stats.tracks_not_person += 1
            continue
        stats.frames_interpolated += len(part_path.frames) - len(frames)  # not detected: on its line
        kept.append(PersonTrack(frames[keep], boxes[keep], scores[keep], trajectory=part_path))
    return kept


def _jumps(frames: np.ndarray, boxes: np.ndarray, size: tuple[int, int] | None = None, border: int = 3,
           ratio: float = JUMP) -> np.ndarray:
    """bool [n]: detections whose box height changed by more than ``ratio`` from the frame before; not a
    growth where both boxes touch the edge of a picture of ``size`` (a walker coming in grows that fast)."""
    h = np.clip(boxes[:, 3] - boxes[:, 1], 1.0, None)
    out = np.zeros(len(frames), bool)
    step = np.maximum(h[1:] / h[:-1], h[:-1] / h[1:])
    out[1:] = (np.diff(frames) == 1) & (step > ratio)
    if size is not None:
        edge = touches_edge(boxes, size[0], size[1], border)
        out[1:] &= ~(edge[1:] & edge[:-1] & (h[1:] > h[:-1]))
    return out


def person_shaped(boxes: np.ndarray, f: TrackFilter) -> bool:
    """Median height/width within ``f.aspect`` and a height that changes smoothly between frames."""
    w = np.clip(boxes[:, 2] - boxes[:, 0], 1e-6, None)
    h = np.clip(boxes[:, 3] - boxes[:, 1], 1e-6, None)
    aspect = float(np.median(h / w))
    jump = float(np.median(np.abs(np.diff(h)) / h[1:])) if len(h) > 1 else 0.0
    return f.aspect[0] <= aspect <= f.aspect[1] and jump <= f.max_height_jump


__all__ = ["BINS", "TRACKERS", "BlobMasks", "PersonTrack", "RawTracker", "TrackFilter", "TrackStats", "make_tracker",
           "person_shaped", "share_blob", "split_blobs", "stitch", "track_people"]
