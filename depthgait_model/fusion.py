"""The paper's multi-scale, cross-level fusion of silhouette and depth features (PAPER.md [ours]).

The paper's abstract says only that fusion happens at several levels and scales; this is our
reconstruction, with every choice a config option so that ablations are runs:

- cross-level: after each of stages 1, 2, 3 (``fusion_levels``) a ``CrossModalBlock`` builds a
  fused feature from both branches and (operator ``gate``) a sigmoid gate per branch, computed
  from the fused feature, that re-weights that branch before its next stage: each modality learns
  where to trust the other;
- multi-scale: ``MultiScaleAggregation`` brings every level's fused feature (strides 1, 2, 4) to
  the stage-3 resolution, concatenates them with both branches' stage-3 outputs and mixes them
  with a 1x1 conv;
- a shared stage 4 works on the mixed feature.

Everything here runs on frame-folded maps ``[N * T, C, H, W]`` (see blocks.py): all of it is
frame-wise, so ``T`` matters only to the branches' temporal convs and the mask.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from depthgait_model.blocks import FrameConv1x1, Pointwise
from depthgait_model.branch import Branch, Stage


class CrossModalBlock(nn.Module):
    """Exchange between the two branches at one level.

    ``gate``: fused = 1x1 conv of [sil, depth]; gates = sigmoid(expand(relu(squeeze(fused)))), one
    per branch, per pixel and channel; each branch is multiplied by its gate.
    ``concat``: the same fused path, branches unchanged. ``add``: fused = sil + depth, no parameters.
    """

    def __init__(self, channels: int, op: str = "gate", reduction: int = 4) -> None:
        super().__init__()
        assert op in ("gate", "add", "concat"), f"unknown fusion operator {op!r}"
        self.op = op
        if op in ("gate", "concat"):
            self.fuse = Pointwise(2 * channels, channels)
        if op == "gate":
            hidden = max(channels // reduction, 4)
            self.gate = nn.Sequential(
                FrameConv1x1(channels, hidden), nn.ReLU(inplace=True), FrameConv1x1(hidden, 2 * channels)
            )

    def forward(self, sil: torch.Tensor, depth: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        if self.op == "add":
            return sil, depth, sil + depth  # (N*T, C, H, W) each
        fused = self.fuse(sil, depth)  # (N*T, C, H, W), the 1x1 conv of [sil, depth]
        if self.op == "concat":
            return sil, depth, fused
        squeeze, relu, expand = self.gate
        hidden = relu(squeeze(fused))  # (N*T, C_hidden, H, W)
        gate_sil, gate_depth = (g.sigmoid_() for g in expand.forward_split(hidden, 2))  # (N*T, C, H, W) each
        return sil * gate_sil, depth * gate_depth, fused


class MultiScaleAggregation(nn.Module):
    """Pool each level's fused feature to the stage-3 size, concatenate with both stage-3 maps, mix.

    Average pooling (adaptive, so any input size works) keeps every pixel's contribution, where a
    strided 1x1 conv would drop 15 of 16 pixels of the stride-1 level.
    """

    def __init__(self, level_channels: list[int], branch_channels: int, out_channels: int) -> None:
        super().__init__()
        self.mix = Pointwise(sum(level_channels) + 2 * branch_channels, out_channels)

    def forward(self, fused: list[torch.Tensor], sil: torch.Tensor, depth: torch.Tensor) -> torch.Tensor:
        size = sil.shape[2:]  # (h, w) of stage 3
        levels = [f if f.shape[2:] == size else F.adaptive_avg_pool2d(f, size) for f in fused]  # (N*T, C_l, h, w) each
        return self.mix(*levels, sil, depth)  # (N*T, C_out, h, w), the 1x1 conv of their concatenation


class CrossLevelFusion(nn.Module):
    """The ``full`` trunk: two branches (stem + stages 1-3), cross-modal blocks at ``levels``,
    multi-scale aggregation (or, with ``multiscale`` off, only the stage-3 maps) and a shared stage 4.
    """

    def __init__(
        self,
        channels: tuple[int, ...],
        blocks: tuple[int, ...],
        strides: tuple[int, ...],
        levels: tuple[int, ...] = (1, 2, 3),
        op: str = "gate",
        reduction: int = 4,
        multiscale: bool = True,
    ) -> None:
        super().__init__()
        self.sil = Branch(channels, blocks, strides, num_stages=3)
        self.depth = Branch(channels, blocks, strides, num_stages=3)
        self.levels = tuple(levels)
        self.multiscale = multiscale
        self.cross = nn.ModuleDict({str(lvl): CrossModalBlock(channels[lvl - 1], op, reduction) for lvl in self.levels})
        level_channels = [channels[lvl - 1] for lvl in self.levels] if multiscale else []
        self.aggregate = MultiScaleAggregation(level_channels, channels[2], channels[2])
        self.stage4 = Stage(3, channels[2], channels[3], blocks[3], strides[3])
        self.out_channels = channels[3]

    def forward(self, sil: torch.Tensor, depth: torch.Tensor, frames: int, mask: torch.Tensor | None = None) -> torch.Tensor:
        """Folded frames ``[N * T, 1, H, W]`` of each modality -> ``[N * T, C4, h, w]``."""
        s = self.sil.forward_stem(sil)  # (N*T, C0, H, W)
        d = self.depth.forward_stem(depth)  # (N*T, C0, H, W)
        fused: list[torch.Tensor] = []
        for index in range(3):
            s = self.sil.forward_stage(index, s, frames, mask)  # (N*T, C_i, H_i, W_i)
            d = self.depth.forward_stage(index, d, frames, mask)  # (N*T, C_i, H_i, W_i)
            key = str(index + 1)
            if key in self.cross:
                s, d, f = self.cross[key](s, d)  # (N*T, C_i, H_i, W_i) each
                fused.append(f)
        mixed = self.aggregate(fused if self.multiscale else [], s, d)  # (N*T, C3, h, w)
        return self.stage4(mixed, frames, mask)  # (N*T, C4, h, w)
