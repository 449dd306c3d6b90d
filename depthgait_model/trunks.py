"""The trunks: what turns the input sequences into one feature map, read top to bottom.

1. ``Stage`` and ``Branch``: one modality's DeepGaitV2-style backbone. The fusion needs each stage's
   output on its own, so a branch runs stage by stage and describes its stages timm-style in
   ``feature_info`` (channels, stride). ``forward_stem`` / ``forward_stage`` work on frame-folded maps
   ``[N * T, C, H, W]`` (see blocks.py); ``forward_features`` / ``forward`` take ``[N, C, T, H, W]``.
2. The paper's multi-scale, cross-level fusion. The paper says only that fusion happens at several
   levels and scales; this is our reconstruction, with every choice a config option so that
   ablations are runs:
   - cross-level: after each of stages 1, 2, 3 (``fusion_levels``) a ``CrossModalBlock`` builds a
     fused feature from both branches and (operator ``gate``) a sigmoid gate per branch, computed
     from the fused feature, that re-weights that branch before its next stage: each modality learns
     where to trust the other;
   - multi-scale: ``MultiScaleAggregation`` brings every level's fused feature (strides 1, 2, 4) to
     the stage-3 resolution, concatenates them with both branches' stage-3 outputs and mixes them
     with a 1x1 conv;
   - a shared stage 4 works on the mixed feature.
   All of it is frame-wise, so ``T`` matters only to the branches' temporal convs and the mask.
3. The four trunks ``make_trunk`` builds from ``cfg.mode``: ``SingleBranch`` (silhouette-only,
   depth-only), ``LateFusion``, ``FullFusion``. Each maps folded inputs to ``[N * T, C, h, w]`` and has
   ``out_channels``.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from depthgait_model.blocks import (
    BasicBlock2D,
    BasicBlockP3D,
    FrameConv1x1,
    Pointwise,
    SetBlock,
    conv3x3,
    fold_frames,
    unfold_frames,
)
from depthgait_model.config import ModelConfig


# ---- 1. one modality's branch ---------------------------------------------------------------------
class Stage(nn.Module):
    """``blocks`` residual blocks; the first changes channels and stride. Stage 1 is frame-wise 2-D."""

    def __init__(self, index: int, in_ch: int, out_ch: int, blocks: int, stride: int) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        for b in range(blocks):
            cin, s = (in_ch, stride) if b == 0 else (out_ch, 1)
            layers.append(SetBlock(BasicBlock2D(cin, out_ch, s)) if index == 0 else BasicBlockP3D(cin, out_ch, s))
        self.blocks = nn.ModuleList(layers)

    def forward(self, x: torch.Tensor, frames: int, mask: torch.Tensor | None = None) -> torch.Tensor:
        for block in self.blocks:
            x = block(x, frames, mask)  # (N*T, C_out, H', W')
        return x


class Branch(nn.Module):
    """Stem (3x3 conv to ``channels[0]``) and the first ``num_stages`` stages of DeepGaitV2.

    ``feature_info[i]`` = ``{"num_chs", "reduction", "module"}`` of stage ``i + 1``, where
    ``reduction`` is the total spatial stride relative to the input frame.
    """

    def __init__(
        self,
        channels: tuple[int, ...],
        blocks: tuple[int, ...],
        strides: tuple[int, ...],
        num_stages: int = 4,
        in_channels: int = 1,
    ) -> None:
        super().__init__()
        assert 1 <= num_stages <= len(channels), f"num_stages {num_stages} not in 1..{len(channels)}"
        self.stem = SetBlock(
            nn.Sequential(conv3x3(in_channels, channels[0]), nn.BatchNorm2d(channels[0]), nn.ReLU(inplace=True))
        )
        self.stages = nn.ModuleList()
        self.feature_info: list[dict[str, int | str]] = []
        in_ch, reduction = channels[0], 1
        for i in range(num_stages):
            self.stages.append(Stage(i, in_ch, channels[i], blocks[i], strides[i]))
            reduction *= strides[i]
            self.feature_info.append({"num_chs": channels[i], "reduction": reduction, "module": f"stages.{i}"})
            in_ch = channels[i]

    @property
    def out_channels(self) -> int:
        return int(self.feature_info[-1]["num_chs"])

    def forward_stem(self, x: torch.Tensor) -> torch.Tensor:
        """Folded frames ``[N * T, C_in, H, W]`` -> ``[N * T, C0, H, W]``."""
        return self.stem(x)  # (N*T, C0, H, W)

    def forward_stage(self, index: int, x: torch.Tensor, frames: int, mask: torch.Tensor | None = None) -> torch.Tensor:
        """Folded frames in and out: ``[N * T, C_{i-1}, H, W] -> [N * T, C_i, H_i, W_i]``."""
        return self.stages[index](x, frames, mask)  # (N*T, C_i, H_i, W_i)

    def forward_folded(self, x: torch.Tensor, frames: int, mask: torch.Tensor | None = None) -> list[torch.Tensor]:
        """Every stage's output on folded frames, shallow to deep: ``[N * T, C_i, H_i, W_i]`` each."""
        x = self.forward_stem(x)  # (N*T, C0, H, W)
        features = []
        for index in range(len(self.stages)):
            x = self.forward_stage(index, x, frames, mask)  # (N*T, C_i, H_i, W_i)
            features.append(x)
        return features

    def forward_features(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> list[torch.Tensor]:
        """``[N, C_in, T, H, W]`` -> every stage's output, shallow to deep: ``[N, C_i, T, H / r_i, W / r_i]`` each."""
        frames = x.shape[2]
        return [unfold_frames(f, frames) for f in self.forward_folded(fold_frames(x), frames, mask)]

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        return self.forward_features(x, mask)[-1]  # (N, C_last, T, h, w)


# ---- 2. the cross-level, multi-scale fusion ------------------------------------------------------
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


# ---- 3. the trunks --------------------------------------------------------------------------------
class SingleBranch(nn.Module):
    """``silhouette-only`` / ``depth-only``: one DeepGaitV2 branch, stages 1-4, on one modality."""

    def __init__(self, cfg: ModelConfig, modality: str) -> None:
        super().__init__()
        self.modality = modality
        self.branch = Branch(cfg.channels, cfg.blocks, cfg.strides, num_stages=4)
        self.out_channels = self.branch.out_channels

    def forward(
        self, sil: torch.Tensor | None, depth: torch.Tensor | None, frames: int, mask: torch.Tensor | None
    ) -> torch.Tensor:
        x = sil if self.modality == "sil" else depth  # (N*T, 1, H, W)
        return self.branch.forward_folded(x, frames, mask)[-1]  # (N*T, C4, h, w)


class LateFusion(nn.Module):
    """``late-fusion``: two independent branches through stage 4, concatenated or summed."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.sil = Branch(cfg.channels, cfg.blocks, cfg.strides, num_stages=4)
        self.depth = Branch(cfg.channels, cfg.blocks, cfg.strides, num_stages=4)
        self.op = cfg.late_fusion_op
        self.out_channels = cfg.channels[3] * (2 if self.op == "concat" else 1)

    def forward(self, sil: torch.Tensor, depth: torch.Tensor, frames: int, mask: torch.Tensor | None) -> torch.Tensor:
        s = self.sil.forward_folded(sil, frames, mask)[-1]  # (N*T, C4, h, w)
        d = self.depth.forward_folded(depth, frames, mask)[-1]  # (N*T, C4, h, w)
        return torch.cat([s, d], dim=1) if self.op == "concat" else s + d  # (N*T, C4 or 2*C4, h, w)


class FullFusion(CrossLevelFusion):
    """``full``: the paper's multi-scale cross-level fusion with a shared stage 4 (section 2 above)."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__(
            cfg.channels, cfg.blocks, cfg.strides, cfg.fusion_levels, cfg.fusion_op, cfg.gate_reduction, cfg.multiscale
        )


def make_trunk(cfg: ModelConfig) -> nn.Module:
    """The trunk ``cfg.mode`` names."""
    if cfg.mode == "silhouette-only":
        return SingleBranch(cfg, "sil")
    if cfg.mode == "depth-only":
        return SingleBranch(cfg, "depth")
    if cfg.mode == "late-fusion":
        return LateFusion(cfg)
    return FullFusion(cfg)
