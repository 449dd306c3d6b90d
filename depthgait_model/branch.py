"""One modality's backbone: a DeepGaitV2-style stem and stages that expose their features.

The fusion module needs each stage's output on its own (to fuse between stages), so a branch is
run stage by stage and describes its stages timm-style in ``feature_info`` (channels, stride).
``forward_stem`` / ``forward_stage`` work on frame-folded maps ``[N * T, C, H, W]`` (see blocks.py);
``forward_features`` / ``forward`` take and return ``[N, C, T, H, W]``.
"""
from __future__ import annotations

import torch
from torch import nn

from depthgait_model.blocks import BasicBlock2D, BasicBlockP3D, SetBlock, conv3x3, fold_frames, unfold_frames


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
