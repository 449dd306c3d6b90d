"""Geometry and shared facts of the pipeline, each defined once.

Every stage that places an image somewhere goes through these functions, so a pixel means the same
thing in extract, align, the depth model's input and the shipped model's training kit:

- ``crop_boxes``: the person crop of a frame (box plus a margin, clipped);
- ``fit_size`` / ``pack_canvas`` / ``pack_mask`` / ``unpack_canvas``: a crop scaled uniformly onto the
  per-video cache canvas, top-left, with the valid region recorded;
- ``fit_to_input``: a crop onto the depth model's fixed input (edge padding, same uniform scaling);
- ``box_iou`` / ``touches_edge``: box overlap and the picture's edge, for tracking and its scoring alike.

The facts: ``CANVAS`` (cache canvas), ``FRAME_SIZE`` (OpenGait's 64x64 aligned frame), ``CUT`` (pixels
cut from each side at load time: 64x44 model input), ``MIN_FRAMES`` (a gait sequence needs at least
this many frames).
"""
from __future__ import annotations

import cv2
import numpy as np

CANVAS = (128, 96)  # (height, width)
FRAME_SIZE = 64  # OpenGait's 64x64 aligned frame (sil and depth)
CUT = 10  # pixels cut from each side of an aligned frame at load time: 64x64 -> 64x44 model input
MIN_FRAMES = 5  # fewer frames than this cannot make a gait sequence (align drops them)
EDGE = 3  # pixels: a box this close to a picture's edge touches it (a body cut by the edge)


def crop_boxes(boxes: np.ndarray, margin: float, width: int, height: int) -> np.ndarray:
    """Boxes [T, 4] grown by ``margin`` of their size on each side, rounded outward, clipped: int32 [T, 4]."""
    size = np.concatenate([boxes[:, 2:] - boxes[:, :2]] * 2, axis=1)  # [T, 4] (w, h, w, h)
    grown = boxes + margin * size * np.array([-1, -1, 1, 1], np.float32)
    out = np.concatenate([np.floor(grown[:, :2]), np.ceil(grown[:, 2:])], axis=1)
    out = np.clip(out, 0, [width, height, width, height]).astype(np.int32)
    out[:, 2:] = np.maximum(out[:, 2:], out[:, :2] + 1)  # never empty
    return out


def fit_size(h: int, w: int, canvas: tuple[int, int] = CANVAS) -> tuple[int, int]:
    """(h', w') of an h x w image scaled uniformly to fit the canvas (each side >= 1)."""
    scale = min(canvas[0] / h, canvas[1] / w)
    return max(1, min(canvas[0], round(h * scale))), max(1, min(canvas[1], round(w * scale)))


def pack_canvas(
    image: np.ndarray, canvas: tuple[int, int] = CANVAS, interpolation: int = cv2.INTER_AREA
) -> tuple[np.ndarray, tuple[int, int]]:
    """Scale ``image`` [h, w, ...] uniformly to fit ``canvas``, place it top-left, zero elsewhere.

    Returns ``(canvas array [H, W, ...] of image's dtype, (h', w') valid region)``. Masks go in as
    0/255 uint8 and are re-binarised by the caller (INTER_AREA averages edges).
    """
    ch, cw = fit_size(image.shape[0], image.shape[1], canvas)
    out = np.zeros((canvas[0], canvas[1], *image.shape[2:]), dtype=image.dtype)
    out[:ch, :cw] = cv2.resize(image, (cw, ch), interpolation=interpolation).reshape(ch, cw, *image.shape[2:])
    return out, (ch, cw)


def pack_mask(mask: np.ndarray, canvas: tuple[int, int] = CANVAS) -> tuple[np.ndarray, tuple[int, int]]:
    """Pack a boolean or 0/255 mask [h, w]: area-averaged, then thresholded at half, as 0/255 uint8."""
    packed, size = pack_canvas(mask.astype(np.float32), canvas, cv2.INTER_AREA)
    scale = 255.0 if mask.dtype != bool and mask.max(initial=0) > 1 else 1.0
    return np.where(packed >= 0.5 * scale, 255, 0).astype(np.uint8), size


def unpack_canvas(packed: np.ndarray, crop_size: tuple[int, int] | np.ndarray) -> np.ndarray:
    """The valid top-left region of a canvas (the inverse of the placement, not of the scaling)."""
    return packed[: int(crop_size[0]), : int(crop_size[1])]


def fit_to_input(crop: np.ndarray, input_hw: tuple[int, int]) -> tuple[np.ndarray, tuple[int, int]]:
    """RGB crop [h, w, 3] -> model input [H_in, W_in, 3]: scaled uniformly to fit, top-left, edge padding.

    The one definition of the depth model's input geometry, shared with the shipped model's training
    script so that it is trained on exactly what extract feeds it. Returns the image and the (h, w) it fills.
    """
    h, w = fit_size(crop.shape[0], crop.shape[1], input_hw)
    interp = cv2.INTER_AREA if h < crop.shape[0] else cv2.INTER_LINEAR
    resized = cv2.resize(crop, (w, h), interpolation=interp)
    padded = cv2.copyMakeBorder(resized, 0, input_hw[0] - h, 0, input_hw[1] - w, cv2.BORDER_REPLICATE)
    return padded, (h, w)


def touches_edge(boxes: np.ndarray, width: int, height: int, border: int = EDGE) -> np.ndarray:
    """bool [N]: which of ``boxes`` [N, >= 4] (x0 y0 x1 y1) come within ``border`` px of the picture's edge."""
    return ((boxes[:, 0] <= border) | (boxes[:, 1] <= border) | (boxes[:, 2] >= width - border)
            | (boxes[:, 3] >= height - border))


def _box_rows(boxes: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """[N, 4] x0 y0 x1 y1 of boxes given as rows of >= 4 values, one box, or none."""
    boxes = np.asarray(boxes, dtype)
    return boxes.reshape(-1, 4) if boxes.size == 0 or boxes.ndim == 1 else boxes[:, :4]


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pairwise IoU [N, M] of x0 y0 x1 y1 boxes a [N, >= 4] and b [M, >= 4]; empty or NaN boxes give 0.

    Computed in the inputs' own float type (float32 boxes stay float32, as extract's association has
    always used them); anything else (ints, float64) in float64.
    """
    dtype = np.result_type(np.asarray(a).dtype, np.asarray(b).dtype, np.float32)
    a, b = _box_rows(a, dtype)[:, None], _box_rows(b, dtype)[None, :]
    w = np.clip(np.minimum(a[..., 2], b[..., 2]) - np.maximum(a[..., 0], b[..., 0]), 0, None)
    h = np.clip(np.minimum(a[..., 3], b[..., 3]) - np.maximum(a[..., 1], b[..., 1]), 0, None)
    inter = w * h
    area_a = np.clip(a[..., 2] - a[..., 0], 0, None) * np.clip(a[..., 3] - a[..., 1], 0, None)
    area_b = np.clip(b[..., 2] - b[..., 0], 0, None) * np.clip(b[..., 3] - b[..., 1], 0, None)
    union = area_a + area_b - inter
    with np.errstate(invalid="ignore", divide="ignore"):
        iou = np.where(union > 0, inter / union, 0)
    return np.nan_to_num(iou, nan=0.0).astype(dtype, copy=False)
