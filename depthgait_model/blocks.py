"""Small gait layers shared by the branches, the fusion module and the head.

Feature maps are 5-D ``[N, C, T, H, W]`` throughout (sequences, channels, frames, rows, columns).
Padded batches carry a frame mask ``[N, T]`` (True = a real frame); only the layers that mix frames
(the temporal convolution, temporal pooling) look at it, so that a padded sequence embeds exactly as
the same sequence unpadded does.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def frame_mask(lengths: torch.Tensor, frames: int) -> torch.Tensor:
    """``lengths`` int [N] -> bool [N, T], True where frame t < lengths[n] (padding goes at the end)."""
    steps = torch.arange(frames, device=lengths.device)  # (T,)
    return steps[None, :] < lengths[:, None]  # (N, T)


def conv3x3(in_ch: int, out_ch: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(in_ch, out_ch, kernel_size=3, stride=stride, padding=1, bias=False)


class SetBlock(nn.Module):
    """Apply a 2-D module to every frame of a ``[N, C, T, H, W]`` sequence independently.

    Frames are folded into the batch, so a 2-D conv or BatchNorm sees ``N * T`` images; ``mask``
    is accepted and ignored (nothing here mixes frames) so stages can call every block alike.
    """

    def __init__(self, module: nn.Module) -> None:
        super().__init__()
        self.module = module

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        n, c, t, h, w = x.shape
        frames = x.transpose(1, 2).reshape(n * t, c, h, w)  # (N*T, C, H, W)
        out = self.module(frames)  # (N*T, C', H', W')
        return out.reshape(n, t, *out.shape[1:]).transpose(1, 2).contiguous()  # (N, C', T, H', W')


class BasicBlock2D(nn.Module):
    """ResNet basic block on single frames (stage 1 of DeepGaitV2): two 3x3 convs plus a shortcut."""

    def __init__(self, in_ch: int, out_ch: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = conv3x3(in_ch, out_ch, stride)
        self.bn1 = nn.BatchNorm2d(out_ch)
        self.conv2 = conv3x3(out_ch, out_ch)
        self.bn2 = nn.BatchNorm2d(out_ch)
        self.shortcut = nn.Identity()
        if stride != 1 or in_ch != out_ch:
            self.shortcut = nn.Sequential(nn.Conv2d(in_ch, out_ch, 1, stride, bias=False), nn.BatchNorm2d(out_ch))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))  # (B, C', H', W')
        out = self.bn2(self.conv2(out))  # (B, C', H', W')
        return F.relu(out + self.shortcut(x))  # (B, C', H', W')


class BasicBlockP3D(nn.Module):
    """Pseudo-3D residual block (DeepGaitV2 stages 2-4): a frame-wise 3x3 conv, a temporal 3x1x1 conv
    added residually, a second frame-wise 3x3 conv, and a (strided 1x1) shortcut.

    Padded frames are zeroed before the temporal conv so that the last real frame sees the same zero
    padding it would see in the unpadded sequence.
    """

    def __init__(self, in_ch: int, out_ch: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = SetBlock(nn.Sequential(conv3x3(in_ch, out_ch, stride), nn.BatchNorm2d(out_ch), nn.ReLU()))
        self.temporal = nn.Conv3d(out_ch, out_ch, kernel_size=(3, 1, 1), padding=(1, 0, 0), bias=False)
        self.temporal_bn = nn.BatchNorm3d(out_ch)
        self.conv2 = SetBlock(nn.Sequential(conv3x3(out_ch, out_ch), nn.BatchNorm2d(out_ch)))
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or in_ch != out_ch:
            self.shortcut = SetBlock(
                nn.Sequential(nn.Conv2d(in_ch, out_ch, 1, stride, bias=False), nn.BatchNorm2d(out_ch))
            )

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        out = self.conv1(x)  # (N, C', T, H', W')
        seen = out if mask is None else out * mask[:, None, :, None, None].to(out.dtype)  # (N, C', T, H', W')
        out = F.relu(out + self.temporal_bn(self.temporal(seen)))  # (N, C', T, H', W')
        out = self.conv2(out)  # (N, C', T, H', W')
        return F.relu(out + self.shortcut(x))  # (N, C', T, H', W')


def temporal_max(x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """Max over frames ``[N, C, T, H, W] -> [N, C, H, W]``, ignoring padded frames when ``mask`` is given."""
    if mask is not None:
        x = x.masked_fill(~mask[:, None, :, None, None], float("-inf"))  # (N, C, T, H, W)
    return x.amax(dim=2)  # (N, C, H, W)


class HorizontalPyramidPooling(nn.Module):
    """Split the map into ``bins`` horizontal strips; each strip -> mean + max over its pixels.

    ``[N, C, H, W] -> [N, C, bins]``. Adaptive pooling gives the usual equal strips when ``H`` is a
    multiple of ``bins`` (16 rows for 64x44 inputs) and still works when it is not.
    """

    def __init__(self, bins: int = 16) -> None:
        super().__init__()
        self.bins = bins

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        size = (self.bins, 1)
        pooled = F.adaptive_avg_pool2d(x, size) + F.adaptive_max_pool2d(x, size)  # (N, C, bins, 1)
        return pooled.squeeze(-1)  # (N, C, bins)


class SeparateFCs(nn.Module):
    """One linear map per horizontal part: ``[N, C_in, P] -> [N, C_out, P]``."""

    def __init__(self, parts: int, in_ch: int, out_ch: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(nn.init.xavier_uniform_(torch.empty(parts, in_ch, out_ch)))  # (P, C_in, C_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.einsum("ncp,pco->nop", x, self.weight)  # (N, C_out, P)


class SeparateBNNecks(nn.Module):
    """BNNeck per part: BatchNorm over all ``C * P`` features, then a cosine classifier per part.

    Returns the normalised features ``[N, C, P]`` and cosine logits ``[N, num_classes, P]`` in
    [-1, 1]; the cross-entropy loss multiplies them by its scale (16).
    """

    def __init__(self, parts: int, in_ch: int, num_classes: int) -> None:
        super().__init__()
        self.bn = nn.BatchNorm1d(in_ch * parts)
        self.weight = nn.Parameter(nn.init.xavier_uniform_(torch.empty(parts, in_ch, num_classes)))  # (P, C, K)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        n, c, p = x.shape
        feat = self.bn(x.reshape(n, c * p)).reshape(n, c, p)  # (N, C, P)
        unit = F.normalize(feat, dim=1)  # (N, C, P)
        weight = F.normalize(self.weight, dim=1)  # (P, C, K)
        logits = torch.einsum("ncp,pck->nkp", unit, weight)  # (N, K, P)
        return feat, logits
