"""How tall one person stands at each row of a static camera's picture: a box much taller holds more than one.

Over flat ground, an upright person's height in the picture is a straight line of the row their feet stand
on: both the height and the feet's distance below the horizon shrink as 1 / distance (Hoiem, Efros and
Hebert, "Putting objects in perspective", 2006). The line is fitted to the video's own detections,
robustly, since most of them are one person; a box over ``TALL`` times its row's height is a walker with
someone standing behind them, a group, or a walker with clutter: in a track's line, but no gait frame.

Under that line a box can still hold two: a walker with someone close behind is only 1.25-1.4x as tall (on
PETS 2009, three tracks showed stretches at 1.24-1.39 between stretches of their walker alone at 1.04-1.11).
The line alone cannot tell them from a tall person, but the walker's own box can: ``taller_than_walker``
finds the stretches of one track that are a step taller than the same walker's stretches on both sides.

Two people side by side are no taller than one, and where their blob has no valley (pressed together, one
a little behind the other) it is no wider than a walker in full stride with the tape at his side. What grows
is the foreground: one person's silhouette covers about the same share of the square of their height
wherever they stand (``fill_of_one``: the video's median, most boxes being one person), and a box with
``FULL`` times that share holds two (``too_full``).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pipeline.geometry import touches_edge

TALL = 1.4  # people differ in height by well under this; two stacked in the picture are 1.5x and more
MIN_BOXES = 30  # detections needed to fit the line
STEP = 1.15  # a walker's box, relative to the line, keeps its height to within this between stretches of a track
TALLER = 1.25  # ... and a stretch that steps up is two people only above this share of the line (a tall walker is under it)
FULL = 1.6  # one person's foreground for their height: on PETS 2009, 99.5% of gait frames within 1.45x of the median
ASPECT = (1.5, 5.0)  # height / width of the boxes the line is fitted to (a lone upright person)


@dataclass(frozen=True)
class HeightLine:
    """A person's expected box height at the row of their feet: ``slope * y_foot + intercept`` pixels."""

    slope: float
    intercept: float

    def expected(self, y_foot: np.ndarray) -> np.ndarray:
        return np.maximum(self.slope * np.asarray(y_foot, np.float64) + self.intercept, 1.0)

    def too_tall(self, boxes: np.ndarray, ratio: float = TALL) -> np.ndarray:
        """bool [n]: boxes ``[n, 4]`` (x0, y0, x1, y1) over ``ratio`` times a person's height at their foot row."""
        boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
        return boxes[:, 3] - boxes[:, 1] > ratio * self.expected(boxes[:, 3])

    def too_full(self, boxes: np.ndarray, areas: np.ndarray, fill: float, ratio: float = FULL) -> np.ndarray:
        """bool [n]: boxes ``[n, 4]`` whose foreground ``areas [n]`` (pixels; NaN: not measured, never flagged)
        is over ``ratio`` times ``fill`` (one person's foreground / height squared) at their foot row."""
        boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
        with np.errstate(invalid="ignore"):
            return np.asarray(areas, np.float64) > ratio * fill * self.expected(boxes[:, 3]) ** 2

    def taller_than_walker(self, frames: np.ndarray, boxes: np.ndarray, step: float = STEP,
                           floor: float = TALLER) -> np.ndarray:
        """bool [n]: the frames of one track's gait sequence (``frames`` increasing, ``boxes [n, 4]``) in a
        stretch whose box is over ``step`` times as tall (as a share of the line) as the stretches on both
        sides of it, and over ``floor`` times the line: someone above or behind the walker there.

        Stretches are the runs of consecutive frames; neighbouring runs within ``step`` of each other are one
        level, so that a long stretch of two people cut by short gaps is measured against the walker alone, not
        against itself. A track with one level (always the same height) is never flagged: that is the line's
        ``too_tall`` to judge."""
        boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
        out = np.zeros(len(boxes), bool)
        if len(boxes) < 2:
            return out
        share = (boxes[:, 3] - boxes[:, 1]) / self.expected(boxes[:, 3])
        runs = np.split(np.arange(len(boxes)), np.flatnonzero(np.diff(frames) > 1) + 1)
        levels = [runs[0]]
        for run in runs[1:]:
            here, there = float(np.median(share[levels[-1]])), float(np.median(share[run]))
            if max(here / there, there / here) > step:
                levels.append(run)
            else:
                levels[-1] = np.concatenate([levels[-1], run])
        level = np.array([np.median(share[idx]) for idx in levels])
        for j, idx in enumerate(levels):
            beside = level[[k for k in (j - 1, j + 1) if 0 <= k < len(levels)]]
            if len(beside) and level[j] > step * beside.max() and level[j] > floor:
                out[idx] = True
        return out


def upright(boxes: np.ndarray) -> np.ndarray:
    """bool [n]: boxes ``[n, 4]`` shaped like one upright person (height / width within ``ASPECT``)."""
    boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
    aspect = (boxes[:, 3] - boxes[:, 1]) / np.clip(boxes[:, 2] - boxes[:, 0], 1e-6, None)
    return (aspect >= ASPECT[0]) & (aspect <= ASPECT[1])


def fill_of_one(line: HeightLine, boxes: np.ndarray, areas: np.ndarray) -> float | None:
    """One person's foreground pixels over the square of their expected height: the median over the measured
    (``areas`` finite) boxes shaped like one upright person and within ``TALL`` of the line. None with fewer
    than ``MIN_BOXES`` of them."""
    boxes, areas = np.asarray(boxes, np.float64).reshape(-1, 4), np.asarray(areas, np.float64)
    ok = np.isfinite(areas) & upright(boxes) & ~line.too_tall(boxes)
    if ok.sum() < MIN_BOXES:
        return None
    return float(np.median(areas[ok] / line.expected(boxes[ok, 3]) ** 2))


def fit_height_line(candidates: list[np.ndarray], width: int, height: int, border: int = 3,
                    rounds: int = 5) -> HeightLine | None:
    """The line through the person-shaped detections (``[K, 5]`` per frame) away from the picture's edge:
    least squares, each round on the boxes within 2.5 robust deviations of the last fit. None with fewer
    than ``MIN_BOXES`` of them. Where the feet hardly change rows (everyone at one distance) or the fit
    would make people taller further away, the line is flat at the median height."""
    rows = [np.asarray(c, np.float64).reshape(-1, 5)[:, :4] for c in candidates if len(c)]
    if not rows:
        return None
    boxes = np.concatenate(rows)
    ok = upright(boxes) & ~touches_edge(boxes, width, height, border)
    foot, h = boxes[ok, 3], boxes[ok, 3] - boxes[ok, 1]
    if len(h) < MIN_BOXES:
        return None
    inlier = np.ones(len(h), bool)
    slope, intercept = 0.0, float(np.median(h))
    for _ in range(rounds):
        if np.ptp(foot[inlier]) < 0.05 * height:
            slope, intercept = 0.0, float(np.median(h[inlier]))
        else:
            slope, intercept = (float(v) for v in np.polyfit(foot[inlier], h[inlier], 1))
        residual = h - (slope * foot + intercept)
        spread = 1.4826 * np.median(np.abs(residual[inlier] - np.median(residual[inlier]))) + 1.0
        inlier = np.abs(residual) <= 2.5 * spread
        if inlier.sum() < MIN_BOXES:
            break
    if slope < 0:
        slope, intercept = 0.0, float(np.median(h[inlier] if inlier.any() else h))
    return HeightLine(slope, intercept)


__all__ = ["FULL", "STEP", "TALL", "TALLER", "HeightLine", "fill_of_one", "fit_height_line", "upright"]
