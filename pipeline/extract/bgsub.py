"""Background subtraction for a static camera (CASIA-B's silhouettes were made this way).

The background is the per-pixel median of frames sampled over the video (a walker covers each pixel
only briefly), or of a background-only video beside it (CASIA-B ships ``001-bkgrd-090.avi``), needed
where the walker hardly moves in the frame (frontal views). It primes an OpenCV MOG2 model that is
then frozen (learning rate 0): the foreground of a frame depends on that frame alone, so the
``bgsub`` detector and segmenter agree, and MOG2 still labels shadows apart from the person.

Outdoors, thin clutter moves all the time: a barrier tape in the wind, a swaying wire. It is a line a
few rows thick and longer than a person is wide, which no part of a walker is: where a vertical
opening (``thin`` rows) removes a connected piece at least ``line`` columns wide, that piece goes.
A walker's thin parts (a hand, a foot, an arm) are short, so they stay; an opening everywhere erased
them (fewer synthetic walkers followed, mask IoU 0.872 -> 0.868).
"""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from pipeline.errors import InputError

EMPTY = np.zeros((0, 5), dtype=np.float32)  # no candidate boxes (x0, y0, x1, y1, score)
GAIN_CELL = 64  # pixels: a cell of the light's gain field, a few times a walker's width
GAIN_STEP = 8  # every 8th pixel of each row and column measures it
GAIN_MAX = 1.3  # frame / background luminance beyond this (or its inverse) is an object, not light
GAIN_DEAD = 0.03  # gains all within 3% of 1: the light did not change


def _grey(frame: np.ndarray) -> np.ndarray:
    """float32 luminance + 1 of every ``GAIN_STEP``-th pixel of a BGR frame (what the light's gain is measured on)."""
    return cv2.cvtColor(np.ascontiguousarray(frame[::GAIN_STEP, ::GAIN_STEP]), cv2.COLOR_BGR2GRAY).astype(np.float32) + 1


class BackgroundModel:
    """A static camera's background: MOG2 primed on the median of sampled frames, then frozen."""

    def __init__(self, sample: np.ndarray, var_threshold: float = 16.0, min_area_frac: float = 0.002) -> None:
        """``sample`` uint8 [S, H, W, 3]: frames spread over the video (the person moves between them)."""
        if sample.ndim != 4 or len(sample) == 0:
            raise InputError(f"background sample must be [S, H, W, 3], got {sample.shape}")
        h, w = sample.shape[1:3]
        self.background = np.empty((h, w, 3), np.uint8)
        step = max(1, h // 16)  # the median in row stripes: a copy of 1/16 of the sample, not of all of it
        for r in range(0, h, step):
            self.background[r : r + step] = np.median(sample[:, r : r + step], axis=0)
        self.min_area = max(20, int(min_area_frac * h * w))
        self.mog = cv2.createBackgroundSubtractorMOG2(history=50, varThreshold=var_threshold, detectShadows=True)
        for _ in range(10):
            self.mog.apply(self.background, learningRate=-1)
        # Speckle is removed by component size, not by morphology: an opening erases thin limbs and a
        # closing fills the gap between the legs (both cost IoU on the synthetic truth).
        self.min_speckle = max(4, int(2e-4 * h * w))
        # 9 rows at 576 (the fluttering tape of PETS 2009 S2L1 is up to 8 thick), 3 at 240.
        self._thin = cv2.getStructuringElement(cv2.MORPH_RECT, (1, max(3, (h // 64) | 1)))
        k = max(3, (min(h, w) // 80) | 1)
        self._group = cv2.getStructuringElement(cv2.MORPH_RECT, (2 * k + 1, 4 * k + 1))
        self._reach = k  # columns the grouping reaches on each side
        self._grey = _grey(self.background)
        self._cells = (max(1, h // GAIN_CELL), max(1, w // GAIN_CELL))

    def _lit(self, frame: np.ndarray) -> np.ndarray:
        """``frame`` with the light brought back to the background's: outdoors the sun comes and goes, and a
        region 5% brighter than the background is foreground to MOG2. The gain is the median over cells of
        about ``GAIN_CELL`` pixels of frame / background luminance, over the pixels where it is a plausible
        change of light (a walker in dark clothes on a light road is not), smoothed over the picture;
        where no cell is off by ``GAIN_DEAD`` the frame is used as it is (a steady camera is untouched)."""
        ratio = _grey(frame) / self._grey
        ratio[(ratio < 1 / GAIN_MAX) | (ratio > GAIN_MAX)] = np.nan
        gh, gw = self._cells
        rh, rw = ratio.shape[0] // gh, ratio.shape[1] // gw
        cells = ratio[: gh * rh, : gw * rw].reshape(gh, rh, gw, rw).transpose(0, 2, 1, 3).reshape(gh, gw, -1)
        count = np.isfinite(cells).sum(axis=2)  # [gh, gw] plausible pixels per cell
        ordered = np.sort(cells, axis=2)  # NaN last: each cell's median is its (count // 2)-th value
        median = np.take_along_axis(ordered, (count // 2)[..., None], axis=2)[..., 0]
        gain = np.where(count >= 0.5 * cells.shape[2], median, 1.0).astype(np.float32)  # [gh, gw]
        if np.abs(gain - 1).max() < GAIN_DEAD:
            return frame
        field = cv2.resize(1 / gain, (frame.shape[1], frame.shape[0]), interpolation=cv2.INTER_LINEAR)
        return cv2.multiply(frame, cv2.merge([field] * frame.shape[2]), dtype=cv2.CV_8U)  # rounded, saturated

    def foreground(self, frame: np.ndarray) -> np.ndarray:
        """bool [H, W]: moving pixels, shadows (MOG2 value 127) and thin clutter excluded, specks dropped (before the
        clutter test, which then sees a tenth of the thin pixels, and again after it, for what it broke off)."""
        fg = self._despeckle(np.where(self.mog.apply(self._lit(frame), learningRate=0) == 255, np.uint8(1), np.uint8(0)))
        cleared = self._drop_lines(fg)
        return (fg if cleared is fg else self._despeckle(cleared)).astype(bool)

    def _despeckle(self, fg: np.ndarray) -> np.ndarray:
        """uint8 [H, W] ``fg`` without its connected pieces under ``min_speckle`` pixels."""
        n, labels, stats, _ = cv2.connectedComponentsWithStats(fg, connectivity=8)
        keep = stats[:, cv2.CC_STAT_AREA] >= self.min_speckle
        keep[0] = False
        return keep.astype(np.uint8)[labels]

    def _drop_lines(self, fg: np.ndarray) -> np.ndarray:
        """uint8 [H, W] ``fg`` without its thin pieces (what a vertical opening removes), except those inside a
        body's blob (its tall parts grouped as ``blobs`` groups them, at least half ``min_area``) and narrower
        than that blob: a hand, a foot, an arm stays; a tape wider than the walker it passes, or a flutter by
        itself, goes. ``fg`` itself where nothing goes."""
        tall = cv2.morphologyEx(fg, cv2.MORPH_OPEN, self._thin)
        thin = fg - tall  # the opening is a subset of fg
        n, labels, stats, _ = cv2.connectedComponentsWithStats(thin, connectivity=8)
        if n <= 1:
            return fg
        ng, group, group_stats, _ = cv2.connectedComponentsWithStats(cv2.dilate(tall, self._group), connectivity=8)
        body_area = np.bincount(group[tall > 0], minlength=ng)
        width = np.where(body_area >= self.min_area // 2, group_stats[:, cv2.CC_STAT_WIDTH] - 2 * self._reach, 0)
        width[0] = 0
        points = cv2.findNonZero(thin)[:, 0]  # [N, 2] x, y
        xs, ys = points[:, 0], points[:, 1]
        piece = labels[ys, xs]
        fits = stats[piece, cv2.CC_STAT_WIDTH] < width[group[ys, xs]]
        keep = np.zeros(n, bool)
        keep[piece[fits]] = True
        if keep[1:].all():
            return fg
        return tall | keep.astype(np.uint8)[labels]

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

BACKGROUND_NAMES = ("{subject}-bkgrd-{view}", "bkgrd-{view}", "background-{view}", "{subject}-bkgrd", "bkgrd", "background")

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
    from pipeline.extract.video import VideoReader

    if path.suffix.lower() in IMAGE_EXTS:
        image = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if image is None:
            raise InputError(f"{path}: not a readable background image")
        return image[None]
    return VideoReader(path).sample(max_frames)
