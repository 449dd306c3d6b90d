"""fill_walk: a gap in a walker's track carried by its walk (centre, foot line, height) and a stride's width."""
from __future__ import annotations

import numpy as np

from pipeline.extract.track_gap import fill_walk
from pipeline.extract.track_link import fill
from pipeline.tools.mot import box_iou


def _walker(t: np.ndarray) -> np.ndarray:
    """A walker's box over frames t: 4 px a frame to the right, its width swinging 30..70 px over a 16-frame stride."""
    centre, width = 40 + 4.0 * t, 50 + 20 * np.sin(2 * np.pi * t / 16)
    return np.stack([centre - width / 2, 40 + 0 * t, centre + width / 2, 190 + 0 * t], 1).astype(np.float32)


def test_short_gap_is_the_straight_line() -> None:
    frames = np.array([0, 1, 2, 5, 6, 9, 10])  # gaps of 2 frames: under MIN_GAP
    boxes = _walker(frames.astype(np.float64))
    span = np.arange(0, 11)
    np.testing.assert_allclose(fill_walk(frames, boxes, span), fill(frames.astype(np.float64), boxes, span),
                               atol=1e-3)


def test_long_gap_takes_the_stride_width_and_follows_the_walker_better() -> None:
    t = np.arange(60)
    truth = _walker(t.astype(np.float64))
    # hidden over frames 21..36: the last box before is mid-stride wide (t = 20: 70 px), the next a narrow one
    seen = np.concatenate([t[:21], t[37:]])
    span = np.arange(60)
    walk = fill_walk(seen, truth[seen], span)
    line = fill(seen.astype(np.float64), truth[seen], span)
    gap = slice(21, 37)
    np.testing.assert_allclose(walk[seen], truth[seen])  # detected frames keep their boxes
    pool = np.concatenate([truth[5:21], truth[37:53]])  # 16 detections each side
    np.testing.assert_allclose(walk[gap, 2] - walk[gap, 0], np.median(pool[:, 2] - pool[:, 0]), atol=1e-3)
    np.testing.assert_allclose((walk[gap, 0] + walk[gap, 2]) / 2, 40 + 4.0 * t[gap], atol=1e-3)  # on the walk
    np.testing.assert_allclose(walk[gap, 3], 190, atol=1e-3)
    iou_walk = np.array([box_iou(a, b)[0, 0] for a, b in zip(walk[gap], truth[gap], strict=True)])
    iou_line = np.array([box_iou(a, b)[0, 0] for a, b in zip(line[gap], truth[gap], strict=True)])
    assert (iou_walk >= 0.6).sum() > (iou_line >= 0.6).sum()
    assert iou_walk.min() >= 0.6 - 1e-6  # every hidden frame a hit (the narrowest: 30 px against 50)
