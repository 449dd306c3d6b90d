"""OpenGait's pretreatment, applied identically to the silhouette and the depth map.

Per frame: drop it when the silhouette is nearly empty; keep rows from the top to the bottom
non-zero row; resize to height 64 keeping the aspect ratio; find the x where the column mass of the
silhouette passes half; take 32 px each side (zero padded) for a 64x64 frame. The depth map gets the
same crop, the same resize geometry and the same shift, so pixel (i, j) of both is the same body point.

Depth is normalised per frame inside the silhouette, before the geometry: robust percentiles of the
depth inside the mask map to [1, 255] with near = 255, and everything outside the mask is 0. The depth
is resized as a normalised convolution (``resize(d * m) / resize(m)``) so that pixels at the body's
edge are not darkened by the zeros outside it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import cv2
import numpy as np

from pipeline.errors import InputError
from pipeline.formats.aligned import AlignedSequence
from pipeline.formats.video_cache import VideoCache, absolute_video
from pipeline.geometry import FRAME_SIZE, MIN_FRAMES, unpack_canvas
from pipeline.manifest import SequenceId

_INTERPOLATIONS = {"area": cv2.INTER_AREA, "linear": cv2.INTER_LINEAR}


@dataclass(frozen=True)
class AlignSettings:
    """What changes the aligned output; all of it goes into the aligned file's fingerprint."""

    min_pixels: int = 100  # a frame with fewer silhouette pixels (in the crop) is nearly empty: dropped
    min_rows: int = 8  # a silhouette fewer rows tall cannot be stretched to 64 rows meaningfully: dropped
    depth_percentiles: tuple[float, float] = (2.0, 98.0)  # robust range of depth inside the mask
    interpolation: str = "area"  # one geometry for both modalities: "area" (anti-aliased) or "linear"
    min_frames: int = MIN_FRAMES  # sequences with fewer kept frames are reported as too short, not kept

    def __post_init__(self) -> None:
        if self.interpolation not in _INTERPOLATIONS:
            raise InputError(f"interpolation must be one of {sorted(_INTERPOLATIONS)}, got {self.interpolation!r}")
        lo, hi = self.depth_percentiles
        if not 0.0 <= lo < hi <= 100.0:
            raise InputError(f"depth_percentiles must satisfy 0 <= lo < hi <= 100, got {self.depth_percentiles}")
        if self.min_frames < 1 or self.min_pixels < 1 or self.min_rows < 1:
            raise InputError("min_frames, min_pixels and min_rows must be >= 1")

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["depth_percentiles"] = list(self.depth_percentiles)
        return d


def normalise_depth(
    depth: np.ndarray, mask: np.ndarray, near_is_large: bool, percentiles: tuple[float, float]
) -> np.ndarray:
    """Map one frame's depth inside ``mask`` to float [1, 255], near = 255, and 0 outside.

    Percentiles rather than min/max, so that a few wild pixels at the mask's edge (where the depth
    model blends person and background) do not squash the body's own range.
    """
    inside = mask > 0  # bool [H, W]
    d = np.nan_to_num(depth.astype(np.float32), nan=0.0, posinf=0.0, neginf=0.0)  # [H, W]
    values = d[inside]  # [N]
    out = np.zeros(d.shape, dtype=np.float32)  # [H, W]
    if values.size == 0:
        return out
    lo, hi = np.percentile(values, percentiles)
    if hi - lo <= 1e-6 * max(1.0, abs(hi)):
        unit = np.full(values.shape, 0.5, dtype=np.float32)  # a flat surface: no near or far
    else:
        unit = np.clip((values - lo) / (hi - lo), 0.0, 1.0)
    if not near_is_large:
        unit = 1.0 - unit
    out[inside] = 1.0 + 254.0 * unit
    return out


def _centre_cut(img: np.ndarray, x_centre: int) -> np.ndarray:
    """Columns ``x_centre - 32 .. x_centre + 32`` of ``img`` [64, W], zero where they fall outside."""
    out = np.zeros((FRAME_SIZE, FRAME_SIZE), dtype=img.dtype)  # [64, 64]
    lo, hi = x_centre - FRAME_SIZE // 2, x_centre + FRAME_SIZE // 2
    src_lo, src_hi = max(lo, 0), min(hi, img.shape[1])
    if src_hi > src_lo:
        out[:, src_lo - lo : src_hi - lo] = img[:, src_lo:src_hi]
    return out


def align_frame(
    mask: np.ndarray, depth: np.ndarray | None, near_is_large: bool, settings: AlignSettings
) -> tuple[np.ndarray, np.ndarray | None] | None:
    """Align one frame; ``None`` when the frame is nearly empty. Returns (sil [64, 64], depth [64, 64]) uint8."""
    m = mask > 0  # bool [H, W]
    if int(m.sum()) < settings.min_pixels:
        return None
    rows = np.flatnonzero(m.any(axis=1))
    top, bottom = int(rows[0]), int(rows[-1])
    if bottom - top + 1 < settings.min_rows:
        return None
    cols = np.flatnonzero(m.any(axis=0))
    left, right = int(cols[0]), int(cols[-1]) + 1  # columns outside the body change nothing but cost time
    m_box = m[top : bottom + 1, left:right]  # bool [h, w]: the silhouette's bounding box
    m_crop = m_box.astype(np.float32)  # [h, w]
    h, w = m_crop.shape
    new_w = max(1, int(round(FRAME_SIZE * w / h)))
    interp = _INTERPOLATIONS[settings.interpolation]
    cover = cv2.resize(m_crop, (new_w, FRAME_SIZE), interpolation=interp)  # [64, W'] in [0, 1]
    sil = cover >= 0.5  # bool [64, W'], re-binarised
    if not sil.any():
        return None
    column_mass = np.cumsum(sil.sum(axis=0))  # [W']
    x_centre = int(np.searchsorted(column_mass, column_mass[-1] / 2.0, side="right"))
    sil_out = _centre_cut(sil.astype(np.uint8) * 255, x_centre)  # uint8 [64, 64]
    if depth is None:
        return sil_out, None
    d_box = depth[top : bottom + 1, left:right]  # [h, w]: the whole silhouette is inside its box
    d_crop = normalise_depth(d_box, m_box, near_is_large, settings.depth_percentiles)  # [h, w], 0 outside
    weighted = cv2.resize(d_crop, (new_w, FRAME_SIZE), interpolation=interp)  # [64, W']
    d_small = np.where(sil, weighted / np.maximum(cover, 1e-6), 0.0)  # [64, W'], sil implies cover >= 0.5
    d_small = np.clip(np.rint(d_small), 0, 255).astype(np.uint8)
    d_small[sil & (d_small == 0)] = 1  # inside the silhouette depth is never 0
    return sil_out, _centre_cut(d_small, x_centre)


def align_frames(
    masks: Sequence[np.ndarray] | np.ndarray,
    depths: Sequence[np.ndarray] | np.ndarray | None,
    near_is_large: bool = True,
    settings: AlignSettings | None = None,
) -> tuple[np.ndarray, np.ndarray | None, np.ndarray]:
    """Align a sequence of per-frame crops (each frame may have its own size).

    ``masks``: uint8 crops (0 / non-zero); ``depths``: the depth model's raw output on the same
    crops, or None for silhouette only. Returns ``sil`` uint8 [K, 64, 64] (0/255), ``depth`` uint8
    [K, 64, 64] (0 outside the silhouette, near = bright) or None, and ``kept`` bool [T] saying which
    of the T input frames survived (K = kept.sum()).
    """
    settings = settings or AlignSettings()
    if depths is not None and len(depths) != len(masks):
        raise InputError(f"{len(masks)} masks but {len(depths)} depth maps")
    sils: list[np.ndarray] = []
    deps: list[np.ndarray] = []
    kept = np.zeros(len(masks), dtype=bool)  # [T]
    for i, mask in enumerate(masks):
        depth = None if depths is None else depths[i]
        if depth is not None and depth.shape != mask.shape:
            raise InputError(f"frame {i}: mask {mask.shape} and depth {depth.shape} differ in size")
        result = align_frame(mask, depth, near_is_large, settings)
        if result is None:
            continue
        kept[i] = True
        sils.append(result[0])
        if result[1] is not None:
            deps.append(result[1])
    empty = np.zeros((0, FRAME_SIZE, FRAME_SIZE), dtype=np.uint8)
    sil = np.stack(sils) if sils else empty  # uint8 [K, 64, 64]
    if depths is None:
        return sil, None, kept
    return sil, (np.stack(deps) if deps else empty.copy()), kept


def align_canvas(
    seq_id: SequenceId,
    masks: np.ndarray,
    depths: np.ndarray | None,
    crop_size: np.ndarray,
    frames: np.ndarray,
    near_is_large: bool,
    settings: AlignSettings | None = None,
    *,
    boxes: np.ndarray | None = None,
    video: str | None = None,
    track: int = 0,
) -> tuple[AlignedSequence | None, np.ndarray]:
    """Frames packed on the cache canvas (``pipeline.geometry.pack_canvas``) -> one aligned sequence.

    ``masks`` uint8 [T, H, W] and ``depths`` float [T, H, W] (or None) share ``crop_size`` [T, 2], the
    valid top-left region of each frame. ``boxes`` [T, 4] (the person's box in each source frame),
    ``video`` and ``track`` are carried into the sequence, the boxes of the kept frames only.
    Returns the sequence, or None when fewer than ``settings.min_frames`` frames survive, and
    ``kept`` bool [T].
    """
    settings = settings or AlignSettings()
    valid_masks = [unpack_canvas(m, s) for m, s in zip(masks, crop_size, strict=True)]  # [h_i, w_i] each
    valid_depths = None if depths is None else [unpack_canvas(d, s) for d, s in zip(depths, crop_size, strict=True)]
    if boxes is not None and len(boxes) != len(masks):
        raise InputError(f"{seq_id.key}: {len(masks)} frames but {len(boxes)} boxes")
    sil, depth, kept = align_frames(valid_masks, valid_depths, near_is_large, settings)
    if int(kept.sum()) < settings.min_frames:
        return None, kept
    box = None if boxes is None else np.asarray(boxes, np.float32)[kept]
    return AlignedSequence(seq_id, sil, depth, np.asarray(frames, np.int32)[kept], box=box, video=video,
                           track=track), kept


def align_video_cache(
    cache: VideoCache, settings: AlignSettings | None = None, with_depth: bool = True, *, cwd: str | None = None
) -> tuple[AlignedSequence | None, np.ndarray]:
    """One per-video cache -> its aligned sequence (None when too short) and ``kept`` bool [T].

    The one path from a cache to aligned frames: ``align``, inference on videos and the tests use it.
    The sequence keeps each kept frame's source box, the video's absolute path and the cache's
    track number (``track``, 0 when the cache has none: one person per video). A relative video
    path is resolved against ``cwd`` (default: the current folder; see ``absolute_video``).
    """
    return align_canvas(
        cache.id, cache.mask, cache.depth if with_depth else None, cache.crop_size, cache.frames,
        cache.depth_near_is_large, settings, boxes=cache.box, video=absolute_video(cache, cwd),
        track=int(getattr(cache, "track", 0) or 0),
    )
