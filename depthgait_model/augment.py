"""Training augmentation applied identically to both modalities of every frame.

Silhouette and depth of a clip are stacked as channels of one array [T, M, H, W] and each
geometric op runs once on that stack with one set of parameters, so pixel (i, j) stays the same
body point in both modalities. Parameters are drawn once per clip (the whole clip moves together,
as a camera change would) from a caller-given generator, which keeps resumed runs bit-for-bit.

Clips arrive uncut (the aligned 64x64 frames) and leave cut to 64x44, because the ``opengait``
recipe (DeepGaitV2_casiab.yaml's transform list) warps before the cut:

1. ``RandomPerspective`` on the 64x64 frame: the top and bottom corners are drawn from the 10-px
   margins (left x in 0..9, right x in 54..63) and stretched to the frame's corners, so the body
   is zoomed horizontally by 64 / (x_right - x_left), up to 64 / 45 = 1.42x, and margin pixels
   can move into the kept window;
2. the cut (``BaseSilCuttingTransform``), 10 columns per side;
3. ``RandomHorizontalFlip``;
4. ``RandomRotate`` by up to 10 degrees about OpenGait's centre ``(h // 2, w // 2)`` given as
   (x, y), i.e. (32, 22) on a 64x44 frame: not the frame centre (22, 32), kept as it is.

Each op fires with probability ``p``; the warps are OpenCV's, as OpenGait's (bilinear, zero
border, on the uint8 frames). The ``light`` recipe is the earlier, weaker one: cut first, then a
perspective whose corners move by up to 10% of the 44-px width, flip, and a rotation about the
frame centre (torchvision).
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import torch
from torchvision.transforms.v2 import functional as F

from pipeline.errors import InputError

BILINEAR = F.InterpolationMode.BILINEAR
RECIPES = ("opengait", "light")


@dataclass(frozen=True)
class ClipAugment:
    """Random perspective, horizontal flip and rotation, each with probability ``p``; cuts ``cut`` px per side."""

    p: float = 0.2
    recipe: str = "opengait"
    cut: int = 10
    max_rotation: float = 10.0  # degrees, uniform in [-max, max]
    perspective_frac: float = 0.1  # light recipe: corners move horizontally by up to this share of the width

    def __post_init__(self) -> None:
        if self.recipe not in RECIPES:
            raise InputError(f"augmentation recipe must be one of {', '.join(RECIPES)}, got {self.recipe!r}")

    def __call__(self, clip: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """``clip`` [T, M, H, W] uncut (uint8 or float) -> [T, M, H, W - 2 * cut], same dtype, augmented."""
        if clip.ndim != 4:
            raise InputError(f"augmentation expects a clip [T, M, H, W], got shape {tuple(clip.shape)}")
        draws = torch.rand(3, generator=generator)  # one coin per op
        fire = [bool(d < self.p) for d in draws]
        height, width = clip.shape[-2:]
        if self.recipe == "opengait":
            if fire[0]:
                clip = warp_perspective(clip, opengait_corners(height, width, generator))
            clip = cut_columns(clip, self.cut)
        else:
            clip = cut_columns(clip, self.cut)
            if fire[0]:
                start, end = self._trapezoid(height, clip.shape[-1], generator)
                clip = F.perspective(clip, start, end, interpolation=BILINEAR, fill=0)
        if fire[1]:
            clip = F.horizontal_flip(clip)
        if fire[2]:
            angle = float((torch.rand(1, generator=generator) * 2 - 1) * self.max_rotation)
            if self.recipe == "opengait":
                clip = rotate_opengait(clip, angle)
            else:
                clip = F.rotate(clip, angle, interpolation=BILINEAR, fill=0)
        return clip

    def _trapezoid(self, height: int, width: int, generator: torch.Generator) -> tuple[list[list[int]], list[list[int]]]:
        """Light recipe: start/end corners, the top and bottom edges pulled in by random amounts."""
        reach = max(1, int(round(width * self.perspective_frac)))
        left = torch.randint(0, reach + 1, (2,), generator=generator).tolist()  # top-left, bottom-left x
        right = torch.randint(0, reach + 1, (2,), generator=generator).tolist()  # top-right, bottom-right x
        w, h = width - 1, height - 1
        start = [[left[0], 0], [w - right[0], 0], [w - right[1], h], [left[1], h]]
        end = [[0, 0], [w, 0], [w, h], [0, h]]
        return start, end


def cut_columns(clip: torch.Tensor, cut: int) -> torch.Tensor:
    """Drop ``cut`` columns on each side: [..., W] -> [..., W - 2 * cut]."""
    return clip[..., cut : clip.shape[-1] - cut] if cut else clip


def opengait_corners(height: int, width: int, generator: torch.Generator) -> np.ndarray:
    """RandomPerspective's source corners TL, TR, BR, BL (x, y): x from the left / right margins.

    The margin is ``int(w // 44) * 10`` columns (10 on a 64-px frame); left x in ``[0, margin)``,
    right x in ``[w - margin, w)``; the corners are mapped onto ``(0, 0), (w, 0), (w, h), (0, h)``.
    """
    margin = int(width // 44) * 10
    left = torch.randint(0, margin, (2,), generator=generator).tolist()  # TL, BL
    right = torch.randint(width - margin, width, (2,), generator=generator).tolist()  # TR, BR
    return np.float32([[left[0], 0], [right[0], 0], [right[1], height], [left[1], height]])


def _per_frame(clip: torch.Tensor, warp) -> torch.Tensor:
    """Apply an OpenCV warp ``[H, W, M] -> [H', W', M]`` to every frame of ``[T, M, H, W]``."""
    frames = np.ascontiguousarray(clip.permute(0, 2, 3, 1).numpy())  # [T, H, W, M]
    out = [warp(f) for f in frames]  # OpenCV drops a single channel's axis
    out = np.stack([o if o.ndim == 3 else o[:, :, None] for o in out])  # [T, H', W', M]
    return torch.from_numpy(out).permute(0, 3, 1, 2).contiguous()  # [T, M, H', W']


def warp_perspective(clip: torch.Tensor, corners: np.ndarray) -> torch.Tensor:
    """OpenGait's RandomPerspective warp: ``corners`` (TL, TR, BR, BL) stretched to the frame's corners."""
    height, width = clip.shape[-2:]
    canvas = np.float32([[0, 0], [width, 0], [width, height], [0, height]])
    matrix = cv2.getPerspectiveTransform(corners, canvas)
    return _per_frame(clip, lambda f: cv2.warpPerspective(f, matrix, (width, height)))


def rotate_opengait(clip: torch.Tensor, angle: float) -> torch.Tensor:
    """OpenGait's RandomRotate: ``angle`` degrees about ``(h // 2, w // 2)`` taken as (x, y)."""
    height, width = clip.shape[-2:]
    matrix = cv2.getRotationMatrix2D((height // 2, width // 2), angle, 1)
    return _per_frame(clip, lambda f: cv2.warpAffine(f, matrix, (width, height)))
