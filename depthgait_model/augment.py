"""Light training augmentation applied identically to both modalities of every frame.

Silhouette and depth of a clip are stacked as channels of one tensor [T, M, H, W] and each
geometric op runs once on that stack with one set of parameters, so pixel (i, j) stays the same
body point in both modalities. Parameters are drawn once per clip (the whole clip moves together,
as a camera change would) from a caller-given generator, which keeps resumed runs bit-for-bit.
The ops follow OpenGait's recipe: random perspective (a trapezoid warp that mimics a small view
change), horizontal flip and small rotation, each with probability p.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torchvision.transforms.v2 import functional as F

from pipeline.errors import InputError

BILINEAR = F.InterpolationMode.BILINEAR


@dataclass(frozen=True)
class ClipAugment:
    """Random perspective, horizontal flip and rotation, each with probability ``p``."""

    p: float = 0.2
    max_rotation: float = 10.0  # degrees, uniform in [-max, max]
    perspective_frac: float = 0.1  # corners move horizontally by up to this share of the width

    def __call__(self, clip: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """``clip`` [T, M, H, W] (uint8 or float) -> same shape and dtype, augmented."""
        if clip.ndim != 4:
            raise InputError(f"augmentation expects a clip [T, M, H, W], got shape {tuple(clip.shape)}")
        if self.p <= 0:
            return clip
        draws = torch.rand(3, generator=generator)  # one coin per op
        height, width = clip.shape[-2:]
        if draws[0] < self.p:
            clip = F.perspective(clip, *self._trapezoid(height, width, generator), interpolation=BILINEAR, fill=0)
        if draws[1] < self.p:
            clip = F.horizontal_flip(clip)
        if draws[2] < self.p:
            angle = float((torch.rand(1, generator=generator) * 2 - 1) * self.max_rotation)
            clip = F.rotate(clip, angle, interpolation=BILINEAR, fill=0)
        return clip

    def _trapezoid(self, height: int, width: int, generator: torch.Generator) -> tuple[list[list[int]], list[list[int]]]:
        """Start/end corners: the top and bottom edges are pulled in by random amounts."""
        reach = max(1, int(round(width * self.perspective_frac)))
        left = torch.randint(0, reach + 1, (2,), generator=generator).tolist()  # top-left, bottom-left x
        right = torch.randint(0, reach + 1, (2,), generator=generator).tolist()  # top-right, bottom-right x
        w, h = width - 1, height - 1
        start = [[left[0], 0], [w - right[0], 0], [w - right[1], h], [left[1], h]]
        end = [[0, 0], [w, 0], [w, h], [0, h]]
        return start, end
